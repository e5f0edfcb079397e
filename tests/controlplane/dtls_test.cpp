// SPDX-License-Identifier: Apache-2.0
// DTLS client transport (RFC 7350) on the TLS port's UDP side: stateless
// cookies first (no state and no answer larger than the ClientHello before
// the client proves its address, RFC 6347 §4.2.1), DTLS 1.2 only, then
// STUN/TURN over DTLS records (one message per record, ChannelData
// unpadded), relaying to a peer both ways. Real Runtime on loopback, an
// OpenSSL DTLS client here.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "common/stun/attributes.h"
#include "tests/controlplane/turn_fixture.h"

namespace turn::cptest {
namespace {

using stun::Attr;
using stun::Method;

int udp_to(uint16_t port, uint16_t local_port = 0) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (local_port != 0) {
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in l{};
    l.sin_family = AF_INET;
    l.sin_port = htons(local_port);
    l.sin_addr.s_addr = htonl(0x7f000001);
    bind(fd, reinterpret_cast<sockaddr*>(&l), sizeof l);
  }
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(0x7f000001);
  connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  timeval tv{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

// An OpenSSL DTLS client on a connected UDP socket.
class DtlsClient {
 public:
  // local_port: bind the client's socket to 127.0.0.1:local_port first (0: any).
  DtlsClient(uint16_t port, int max_version = DTLS1_2_VERSION, uint16_t local_port = 0) {
    ctx_ = SSL_CTX_new(DTLS_client_method());
    SSL_CTX_set_max_proto_version(ctx_, max_version);
    if (max_version == DTLS1_VERSION) {
      SSL_CTX_set_min_proto_version(ctx_, DTLS1_VERSION);
      SSL_CTX_set_security_level(ctx_, 0);
    }
    fd_ = udp_to(port, local_port);
    ssl_ = SSL_new(ctx_);
    BIO* bio = BIO_new_dgram(fd_, BIO_NOCLOSE);
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    getpeername(fd_, reinterpret_cast<sockaddr*>(&peer), &len);
    BIO_ctrl(bio, BIO_CTRL_DGRAM_SET_CONNECTED, 0, &peer);
    SSL_set_bio(ssl_, bio, bio);
    connected_ = SSL_connect(ssl_) == 1;
    ERR_clear_error();
  }
  // Vanishes without a close_notify, as a crashed client does.
  void vanish() {
    SSL_free(ssl_);
    ssl_ = nullptr;
    close(fd_);
    fd_ = -1;
  }
  [[nodiscard]] uint16_t local_port() const {
    sockaddr_in l{};
    socklen_t len = sizeof l;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&l), &len);
    return ntohs(l.sin_port);
  }
  ~DtlsClient() {
    if (ssl_) {
      SSL_shutdown(ssl_);
      SSL_free(ssl_);
    }
    SSL_CTX_free(ctx_);
    if (fd_ >= 0) close(fd_);
  }
  [[nodiscard]] bool connected() const { return connected_; }
  [[nodiscard]] std::string version() const { return connected_ ? SSL_get_version(ssl_) : ""; }
  void send(const std::vector<uint8_t>& m) { SSL_write(ssl_, m.data(), static_cast<int>(m.size())); }
  void send(Bytes m) { SSL_write(ssl_, m.data(), static_cast<int>(m.size())); }
  std::optional<std::vector<uint8_t>> receive() {
    std::vector<uint8_t> buf(70000);
    int n = SSL_read(ssl_, buf.data(), static_cast<int>(buf.size()));
    ERR_clear_error();
    if (n <= 0) return std::nullopt;
    buf.resize(static_cast<size_t>(n));
    return buf;
  }
  // Sends a request and waits for the answer with its transaction id.
  Reply transact(const std::vector<uint8_t>& req) {
    send(req);
    for (int i = 0; i < 10; ++i) {
      auto r = receive();
      if (!r) return Reply{};
      if (r->size() >= 20 && std::equal(req.begin() + 8, req.begin() + 20, r->begin() + 8)) return Reply{*r};
    }
    return Reply{};
  }

 private:
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  int fd_ = -1;
  bool connected_ = false;
};

// A DTLS ClientHello as a client would send it first (no cookie yet).
std::vector<uint8_t> first_client_hello() {
  SSL_CTX* ctx = SSL_CTX_new(DTLS_client_method());
  SSL* ssl = SSL_new(ctx);
  BIO* rb = BIO_new(BIO_s_mem());
  BIO* wb = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl, rb, wb);
  SSL_connect(ssl);  // writes the hello, then wants to read
  std::vector<uint8_t> out(static_cast<size_t>(BIO_pending(wb)));
  BIO_read(wb, out.data(), static_cast<int>(out.size()));
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  ERR_clear_error();
  return out;
}

class Dtls : public TurnServerFixture {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("dpturn-dtls-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
    std::string cmd =
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
        "-subj /CN=dpturn-test -keyout " +
        (dir_ / "key.pem").string() + " -out " + (dir_ / "cert.pem").string() + " >/dev/null 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << "openssl (scripts/setup.sh installs it) made no certificate";
    tls_port_ = free_port();
    restart({"no-tls=no", "tls-listening-port=" + std::to_string(tls_port_), "cert=" + (dir_ / "cert.pem").string(),
             "pkey=" + (dir_ / "key.pem").string()});
  }
  void TearDown() override {
    TurnServerFixture::TearDown();
    std::filesystem::remove_all(dir_);
  }
  std::filesystem::path dir_;
  uint16_t tls_port_ = 0;
};

TEST_F(Dtls, HelloWithoutCookieGetsASmallerStatelessAnswer) {
  auto hello = first_client_hello();
  ASSERT_GT(hello.size(), 13u);
  ASSERT_EQ(hello[0], 22);  // handshake record
  int fd = udp_to(tls_port_);
  for (int i = 0; i < 3; ++i) {  // the same each time: nothing was kept
    ASSERT_EQ(::send(fd, hello.data(), hello.size(), 0), static_cast<ssize_t>(hello.size()));
    uint8_t buf[2048];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    ASSERT_GT(n, 13) << "no HelloVerifyRequest";
    EXPECT_EQ(buf[0], 22);
    EXPECT_EQ(buf[13], 3) << "handshake type 3: HelloVerifyRequest (RFC 6347 §4.2.1)";
    EXPECT_LT(n, static_cast<ssize_t>(hello.size())) << "answered with more than it got";
  }
  // Garbage on the DTLS port gets nothing.
  uint8_t junk[100] = {1, 2, 3};
  ::send(fd, junk, sizeof junk, 0);
  pollfd p{fd, POLLIN, 0};
  EXPECT_EQ(poll(&p, 1, 300), 0);
  close(fd);
}

TEST_F(Dtls, Dtls12HandshakeThenTurnOverDtls) {
  DtlsClient d(tls_port_);
  ASSERT_TRUE(d.connected());
  EXPECT_EQ(d.version(), "DTLSv1.2");
  // Binding over DTLS.
  TurnClient builder(Proto::Udp, server());
  builder.set_credentials(kAlice, kAlicePass, kRealm);
  Signing none;
  none.integrity = Integrity::None;
  Reply b = d.transact(builder.build(Method::Binding, {}, none));
  ASSERT_TRUE(b.success());
  // Allocate: 401, then signed.
  Reply ch = d.transact(builder.build(
      Method::Allocate, [](stun::MessageBuilder& m) { m.add_requested_transport(stun::kTransportUdp); }, none));
  ASSERT_EQ(ch.error(), 401);
  builder.set_nonce(*ch.text(Attr::Nonce));
  Reply a = d.transact(
      builder.build(Method::Allocate, [](stun::MessageBuilder& m) { m.add_requested_transport(stun::kTransportUdp); }));
  ASSERT_TRUE(a.success()) << a.error();
  auto relay = *a.xor_address(Attr::XorRelayedAddress);
  bool dtls_record = false;
  ASSERT_TRUE(allocations_become(1));
  for (const auto& info : runtime().shared().registry.snapshot())
    dtls_record |= info->tuple.transport == cp::Transport::Dtls;
  EXPECT_TRUE(dtls_record) << "the allocation's transport is dtls";
  // ChannelBind and ChannelData both ways; over DTLS ChannelData is not padded.
  UdpPeer peer;
  Reply cb = d.transact(builder.build(Method::ChannelBind, [&](stun::MessageBuilder& m) {
    m.add_channel_number(0x4000);
    m.add_xor_address(Attr::XorPeerAddress, peer.address());
  }));
  ASSERT_TRUE(cb.success()) << cb.error();
  std::vector<uint8_t> cd = {0x40, 0x00, 0x00, 0x05, 'h', 'e', 'l', 'l', 'o'};
  d.send(cd);
  auto got = peer.receive(kReplyTimeoutMs);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->data, to_vec("hello"));
  peer.send_to(relay, as_bytes(std::string("world")));
  auto back = d.receive();
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, (std::vector<uint8_t>{0x40, 0x00, 0x00, 0x05, 'w', 'o', 'r', 'l', 'd'})) << "unpadded ChannelData";
}

TEST_F(Dtls, AClientStartingOverFromTheSameAddressGetsANewSession) {
  // RFC 6347 §4.2.8: a new association from an address and port that has a
  // session (a client that crashed, a NAT that reused the mapping) is
  // accepted once it answers a cookie; the stale session and its
  // allocation go. Before, its ClientHello fed the stale session and the
  // client could not connect until the session timed out.
  TurnClient builder(Proto::Udp, server());
  builder.set_credentials(kAlice, kAlicePass, kRealm);
  Signing none;
  none.integrity = Integrity::None;
  auto allocate_req = [&](const Signing& s) {
    return builder.build(
        Method::Allocate, [](stun::MessageBuilder& m) { m.add_requested_transport(stun::kTransportUdp); }, s);
  };
  uint16_t port = 0;
  {
    DtlsClient first(tls_port_);
    ASSERT_TRUE(first.connected());
    port = first.local_port();
    Reply ch = first.transact(allocate_req(none));
    ASSERT_EQ(ch.error(), 401);
    builder.set_nonce(*ch.text(Attr::Nonce));
    ASSERT_TRUE(first.transact(allocate_req({})).success());
    ASSERT_TRUE(allocations_become(1));
    first.vanish();
  }
  DtlsClient again(tls_port_, DTLS1_2_VERSION, port);
  ASSERT_TRUE(again.connected()) << "the stale session held the address";
  EXPECT_TRUE(again.transact(builder.build(Method::Binding, {}, none)).success());
  // The stale allocation went with its session: the same 5-tuple allocates again.
  EXPECT_TRUE(allocations_become(0));
  EXPECT_TRUE(again.transact(allocate_req({})).success());
}

TEST_F(Dtls, OlderDtlsIsRefused) {
  DtlsClient d(tls_port_, DTLS1_VERSION);
  EXPECT_FALSE(d.connected()) << "DTLS 1.0 accepted";
}

TEST_F(Dtls, NoDtlsTurnsItOff) {
  restart({"no-tls=no", "tls-listening-port=" + std::to_string(tls_port_), "cert=" + (dir_ / "cert.pem").string(),
           "pkey=" + (dir_ / "key.pem").string(), "no-dtls"});
  auto hello = first_client_hello();
  int fd = udp_to(tls_port_);
  ::send(fd, hello.data(), hello.size(), 0);
  // Nothing listens: port unreachable (the connected socket reports
  // ECONNREFUSED), never an answer.
  uint8_t buf[2048];
  ssize_t n = recv(fd, buf, sizeof buf, 0);
  EXPECT_LT(n, 0) << "answered on a port with DTLS off";
  close(fd);
}

}  // namespace
}  // namespace turn::cptest
