// SPDX-License-Identifier: Apache-2.0
// Security properties of turn-control (issue 7), each with a test, on a real
// Runtime over loopback:
//   - no relay without valid credentials: a request that fails integrity
//     installs nothing, and nothing is relayed for it;
//   - nonces: bound to the realm and the client address; one issued by a
//     server of another realm (same server-secret) or to another client is
//     stale (438 with a fresh NONCE, RFC 8489 §9.2.4);
//   - secrets are compared in constant time (crypto::equal_ct, CRYPTO_memcmp);
//     tests/controlplane/check_ct_compare.sh checks the call sites;
//   - passwords, keys and secrets never reach the log, even verbose;
//   - peer policy (RFC 8656 §21, the TURN-as-SSRF pivot): loopback,
//     link-local, 169.254.169.254 and configured denied ranges are refused
//     with 403 in ChannelBind too, and Send indications / ChannelData never
//     reach a listener on a refused address;
//   - a relay port reused after an allocation expired carries nothing of
//     the old flow;
//   - quotas hold under a flood of Allocate requests from many source
//     addresses and from many ports of one address.
// Existing tests in turn_server_test.cpp cover 401/438 basics, forged
// nonces and CreatePermission's policy; these extend them.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/crypto/integrity.h"
#include "common/stun/attributes.h"
#include "common/log/log.h"
#include "tests/controlplane/turn_fixture.h"

namespace turn::cptest {
namespace {

using stun::Attr;
using stun::Class;
using stun::Method;

SocketAddress addr(const char* text) { return SocketAddress::parse(text).value(); }
void requested_udp(stun::MessageBuilder& b) { b.add_requested_transport(stun::kTransportUdp); }
Bytes text_bytes(const std::string& s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }

// A UDP socket on 127.0.0.<octet> (every 127/8 address is local on Linux):
// a distinct client source address for nonce binding and many-source floods.
class SourceSocket {
 public:
  explicit SourceSocket(uint8_t octet, uint16_t port = 0) {
    fd_ = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd_ < 0) throw std::runtime_error("socket");
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(0x7f000000u | octet);
    if (bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) throw std::runtime_error("bind 127.0.0.x");
  }
  ~SourceSocket() { close(fd_); }
  SourceSocket(const SourceSocket&) = delete;
  SourceSocket& operator=(const SourceSocket&) = delete;

  void send(const SocketAddress& to, const std::vector<uint8_t>& msg) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(to.port);
    a.sin_addr.s_addr = htonl(to.ip.v4_host_order());
    (void)sendto(fd_, msg.data(), msg.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof a);
  }
  // The answer with `msg`'s transaction id, or an empty Reply after timeout.
  Reply transact(const SocketAddress& to, const std::vector<uint8_t>& msg, int timeout_ms = kReplyTimeoutMs) {
    send(to, msg);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    std::vector<uint8_t> buf(2048);
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return {};
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left.count())) <= 0) return {};
      ssize_t n = recv(fd_, buf.data(), buf.size(), 0);
      if (n >= 20 && std::memcmp(buf.data() + 8, msg.data() + 8, 12) == 0)
        return Reply{std::vector<uint8_t>(buf.begin(), buf.begin() + n)};
    }
  }

 private:
  int fd_ = -1;
};

class Security : public TurnServerFixture {
 protected:
  // challenge + signed Allocate from `src` with `builder`'s credentials.
  Reply allocate_from(SourceSocket& src, TurnClient& builder) {
    Signing none;
    none.integrity = Integrity::None;
    Reply challenge = src.transact(server(), builder.build(Method::Allocate, requested_udp, none));
    if (!challenge.received() || challenge.error() != 401) return challenge;
    builder.set_nonce(challenge.text(Attr::Nonce).value_or(""));
    return src.transact(server(), builder.build(Method::Allocate, requested_udp));
  }
};

// ---- constant-time comparison --------------------------------------------------

TEST(ConstantTime, EqualCtComparesWholeValues) {
  const std::vector<uint8_t> a(20, 0x5A);
  for (size_t i : {size_t{0}, size_t{10}, size_t{19}}) {
    std::vector<uint8_t> b = a;
    b[i] ^= 1;  // one bit, first / middle / last byte
    EXPECT_FALSE(crypto::equal_ct(a, b)) << i;
  }
  EXPECT_TRUE(crypto::equal_ct(a, std::vector<uint8_t>(20, 0x5A)));
  EXPECT_FALSE(crypto::equal_ct(a, Bytes(a).first(19)));  // a prefix is not equal
  EXPECT_FALSE(crypto::equal_ct(Bytes(a).first(0), a));
  EXPECT_TRUE(crypto::equal_ct(Bytes{}, Bytes{}));
}

// check_integrity goes through equal_ct: a MAC that differs in any one byte,
// or is cut short, fails.
TEST(ConstantTime, IntegrityFailsOnAnyChangedMacByte) {
  std::vector<uint8_t> buf(512);
  const std::array<uint8_t, 12> txid{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  stun::MessageBuilder b(MutableBytes(buf), Method::Binding, Class::Request, Bytes(txid));
  b.add_text(Attr::Username, "alice");
  auto key = crypto::long_term_key(stun::PasswordAlgorithm::Md5, "alice", "r", "pw");
  crypto::add_integrity(b, key.view());
  Bytes msg = b.finish();
  ASSERT_FALSE(msg.empty());
  std::vector<uint8_t> good(msg.begin(), msg.end());
  stun::MessageView m;
  ASSERT_EQ(stun::parse(good, m), stun::ParseError::Ok);
  EXPECT_TRUE(crypto::check_integrity(m, key.view()));
  for (size_t i = good.size() - 20; i < good.size(); ++i) {
    auto bad = good;
    bad[i] ^= 0x80;
    stun::MessageView mb;
    ASSERT_EQ(stun::parse(bad, mb), stun::ParseError::Ok);
    EXPECT_FALSE(crypto::check_integrity(mb, key.view())) << "MAC byte " << i;
  }
}

// ---- no relay without valid credentials ------------------------------------------

TEST_F(Security, RequestsThatFailIntegrityInstallNothing) {
  SocketAddress relay;
  auto c = allocated(&relay);
  UdpPeer peer;
  // Same 5-tuple, same user, wrong password: 401, nothing installed.
  c->set_credentials(kAlice, "not-alices-password", kRealm);
  EXPECT_EQ(c->create_permission(peer.address()).error(), 401);
  EXPECT_EQ(c->channel_bind(0x4000, peer.address()).error(), 401);
  EXPECT_EQ(c->refresh(0).error(), 401);  // and cannot delete the allocation
  EXPECT_TRUE(allocations_become(1));
  // Nothing flows either way without the permission a 401 did not grant.
  c->send_indication(peer.address(), text_bytes("no permission was installed"));
  c->send_channel_data(0x4000, text_bytes("no channel was bound"));
  EXPECT_FALSE(peer.receive(300));
  peer.send_to(relay, text_bytes("to the relay"));
  EXPECT_FALSE(c->next_frame(300));
  EXPECT_GE(drops(cp::CpDrop::NoPermission), 1u);
  EXPECT_GE(drops(cp::CpDrop::UnboundChannel), 1u);
  // With the right password the same requests succeed (the test could fail).
  c->set_credentials(kAlice, kAlicePass, kRealm);
  EXPECT_TRUE(c->create_permission(peer.address()).success());
  c->send_indication(peer.address(), text_bytes("now it may"));
  EXPECT_TRUE(peer.receive(2000));
}

// ---- nonces -----------------------------------------------------------------------------

// Two servers with the same server-secret but different realms: a nonce
// from one is stale at the other, in either direction (the nonce binds the
// realm), and the answer is 438 with a fresh NONCE for the right realm.
TEST_F(Security, NonceFromAnotherRealmIs438WithAFreshNonce) {
  const std::string secret = "server-secret=shared-0123456789abcdef";
  restart({secret});
  auto c = client();
  ASSERT_EQ(c->challenge().error(), 401);
  std::string realm_a_nonce = c->nonce();
  ASSERT_FALSE(realm_a_nonce.empty());

  restart({secret, "realm=other.realm"});
  auto d = std::make_unique<TurnClient>(Proto::Udp, server());
  d->set_credentials(kAlice, kAlicePass, "other.realm");
  d->set_nonce(realm_a_nonce);
  std::vector<uint8_t> req = d->build(Method::Allocate, requested_udp);
  Reply r = d->transact(req);
  EXPECT_EQ(r.error(), 438);
  auto fresh = r.text(Attr::Nonce);
  ASSERT_TRUE(fresh);
  EXPECT_NE(*fresh, realm_a_nonce);
  EXPECT_EQ(r.text(Attr::Realm).value_or(""), "other.realm");
  EXPECT_FALSE(r.has(Attr::MessageIntegrity));
  // The fresh nonce works (so 438 was about the nonce, not the key).
  EXPECT_TRUE(d->transact(d->build(Method::Allocate, requested_udp)).success());

  // A nonce of this realm replayed with the other realm's name: 438.
  auto e = std::make_unique<TurnClient>(Proto::Udp, server());
  e->set_credentials(kAlice, kAlicePass, kRealm);
  e->set_nonce(*fresh);
  EXPECT_EQ(e->transact(e->build(Method::Allocate, requested_udp)).error(), 438);
  EXPECT_TRUE(allocations_become(1));
}

// A nonce is bound to the client's address: captured and replayed from
// another address, it is stale.
TEST_F(Security, NonceReplayedFromAnotherAddressIs438) {
  auto c = client();
  ASSERT_EQ(c->challenge().error(), 401);  // nonce for 127.0.0.1
  SourceSocket other(42);                  // 127.0.0.42
  auto req = c->build(Method::Allocate, requested_udp);
  Reply r = other.transact(server(), req);
  EXPECT_EQ(r.error(), 438);
  EXPECT_TRUE(r.has(Attr::Nonce));
  EXPECT_EQ(live_allocations(), 0u);
  // The same request from the address it was issued to succeeds.
  EXPECT_TRUE(c->transact(c->build(Method::Allocate, requested_udp)).success());
}

// ---- secrets never logged ----------------------------------------------------------

TEST_F(Security, PasswordsAndSecretsNeverReachTheLog) {
  char path[] = "/tmp/dpturn-seclog.XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  const std::string rest_secret = "rest-secret-7a7a7a7a7a";
  const std::string server_secret = "nonce-secret-8b8b8b8b8b";
  turn::log_open(path, true);  // verbose: debug lines too
  restart({"use-auth-secret", "static-auth-secret=" + rest_secret, "server-secret=" + server_secret, carol_line()});
  {
    // Successful and failed authentication, from a source of its own (the
    // log limits repeats per source).
    SourceSocket src(77);
    auto good = client();
    (void)allocate_from(src, *good);
    for (const char* wrong : {"wrong-password-1", "alice-secret-but-wrong"}) {
      SourceSocket s2(78);
      auto bad = client(Proto::Udp, kAlice, wrong);
      EXPECT_EQ(allocate_from(s2, *bad).error(), 401);
    }
    SourceSocket s3(79);
    auto unknown = client(Proto::Udp, "mallory", "mallory-pass");
    EXPECT_EQ(allocate_from(s3, *unknown).error(), 401);
    // REST credential (expired) with the right secret-derived password.
    auto rest = client(Proto::Udp, "1:alice", "irrelevant");
    SourceSocket s4(80);
    EXPECT_EQ(allocate_from(s4, *rest).error(), 401);
    auto carol = client(Proto::Udp, kCarol, kCarolPass);
    SourceSocket s5(81);
    EXPECT_TRUE(allocate_from(s5, *carol).success());
  }
  stop();
  turn::log_open("-", false);
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string log = ss.str();
  std::remove(path);
  // The log is not empty and did record the failures (else this proves nothing).
  EXPECT_NE(log.find("authentication failed for 'alice'"), std::string::npos) << log;
  EXPECT_NE(log.find("mallory"), std::string::npos) << log;
  for (const std::string& secret :
       {std::string(kAlicePass), std::string(kBobPass), std::string(kCarolPass), std::string("wrong-password-1"),
        std::string("alice-secret-but-wrong"), std::string("mallory-pass"), rest_secret, server_secret,
        carol_line().substr(carol_line().find(":0x") + 3)})
    EXPECT_EQ(log.find(secret), std::string::npos) << "secret '" << secret << "' in the log:\n" << log;
}

// ---- peer policy: the SSRF pivot --------------------------------------------------

TEST_F(Security, ChannelBindRefusesForbiddenPeers) {
  restart({"no-loopback-peers", "denied-peer-ip=198.51.100.0/24"});
  auto c = allocated(nullptr);
  uint16_t ch = 0x4000;
  for (const char* bad : {"169.254.169.254:80", "169.254.1.1:5000", "127.0.0.1:6379", "127.1.2.3:80",
                          "198.51.100.99:5000", "0.0.0.0:80", "224.0.0.251:5353", "255.255.255.255:9"}) {
    Reply r = c->channel_bind(ch++, addr(bad));
    ASSERT_TRUE(r.received()) << bad;
    EXPECT_EQ(r.error(), 403) << bad;
  }
  EXPECT_GE(runtime().stats()[0]->forbidden_peers.load(), 8u);
  EXPECT_TRUE(c->channel_bind(ch, addr("203.0.113.9:5000")).success());  // an ordinary peer
}

// A listener on a forbidden address (here loopback: the metadata address
// cannot be bound on a test machine) receives nothing, whatever the client
// sends: Send indications, ChannelData, to every port.
TEST_F(Security, ForbiddenPeerIsNeverReachedBySendOrChannelData) {
  for (const std::vector<std::string>& policy :
       {std::vector<std::string>{"no-loopback-peers"},
        std::vector<std::string>{"allow-loopback-peers", "denied-peer-ip=127.0.0.0/8"}}) {
    restart(policy);
    UdpPeer victim;  // 127.0.0.1: what an SSRF would aim at (Redis, admin API ...)
    auto c = allocated(nullptr);
    EXPECT_EQ(c->create_permission(victim.address()).error(), 403) << policy.back();
    EXPECT_EQ(c->channel_bind(0x4000, victim.address()).error(), 403) << policy.back();
    uint64_t before = drops(cp::CpDrop::NoPermission) + drops(cp::CpDrop::UnboundChannel);
    for (int i = 0; i < 5; ++i) {
      c->send_indication(victim.address(), text_bytes("GET /latest/meta-data/ HTTP/1.0\r\n\r\n"));
      c->send_channel_data(0x4000, text_bytes("FLUSHALL\r\n"));
    }
    EXPECT_FALSE(victim.receive(500)) << policy.back();
    EXPECT_TRUE(allocations_become(1));
    // Each refused packet counted (bounded wait: the server thread may lag
    // under CPU contention).
    uint64_t after = 0;
    for (int waited = 0; waited <= 2000; waited += 20) {
      after = drops(cp::CpDrop::NoPermission) + drops(cp::CpDrop::UnboundChannel);
      if (after - before >= 10) break;
      sleep_ms(20);
    }
    EXPECT_EQ(after - before, 10u) << "each refused packet counted";
  }
}

// ---- relay port reuse after expiry -------------------------------------------------

// One relay port: after an allocation expires, the next allocation gets the
// same port, and the old flow (its peer still sending, its client still
// sending ChannelData) reaches neither the new client nor the old peer.
TEST_F(Security, RelayPortReusedAfterExpiryCarriesNoOldFlow) {
  uint16_t port = free_port_range(1);
  const std::string p = std::to_string(port);
  restart({"default-allocate-lifetime=2", "max-allocate-lifetime=2", "min-port=" + p, "max-port=" + p});
  SocketAddress relay_a, relay_b;
  auto a = allocated(&relay_a);
  ASSERT_EQ(relay_a.port, port);
  UdpPeer old_peer;
  ASSERT_TRUE(a->channel_bind(0x4000, old_peer.address()).success());
  old_peer.send_to(relay_a, text_bytes("old flow, live"));
  ASSERT_TRUE(a->next_frame(2000));
  auto b = client();
  EXPECT_EQ(b->allocate().error(), 508);  // the only port is taken
  ASSERT_TRUE(allocations_become(0, 4000)) << "allocation did not expire";

  Reply rb = b->allocate();
  ASSERT_TRUE(rb.success()) << rb.error();
  relay_b = rb.xor_address(Attr::XorRelayedAddress).value();
  EXPECT_EQ(relay_b.port, port) << "the port was reused";
  uint64_t no_perm = drops(cp::CpDrop::NoPermission), no_alloc = drops(cp::CpDrop::NoAllocation);
  for (int i = 0; i < 5; ++i) {
    old_peer.send_to(relay_b, text_bytes("old flow, after expiry"));
    a->send_channel_data(0x4000, text_bytes("old client, after expiry"));
  }
  EXPECT_FALSE(b->next_frame(500)) << "the new allocation received the old flow";
  EXPECT_FALSE(a->next_frame(100));
  EXPECT_FALSE(old_peer.receive(100)) << "the old client still reached its peer";
  for (int waited = 0; waited <= 2000 && (drops(cp::CpDrop::NoPermission) - no_perm < 5 ||
                                          drops(cp::CpDrop::NoAllocation) - no_alloc < 5);
       waited += 20)
    sleep_ms(20);
  EXPECT_EQ(drops(cp::CpDrop::NoPermission) - no_perm, 5u);
  EXPECT_EQ(drops(cp::CpDrop::NoAllocation) - no_alloc, 5u);
  // The new owner's own flow works on the reused port.
  UdpPeer new_peer;
  ASSERT_TRUE(b->create_permission(new_peer.address()).success());
  new_peer.send_to(relay_b, text_bytes("new flow"));
  EXPECT_TRUE(b->next_frame(2000));
}

// ---- quotas under floods ---------------------------------------------------------------

// 40 source addresses race for a total quota of 5: exactly 5 allocations,
// everyone else 486, nothing more in the registry.
TEST_F(Security, TotalQuotaHoldsUnderAnAllocateFloodFromManySources) {
  restart({"total-quota=5", "user-quota=100"});
  int ok = 0, quota = 0, other = 0;
  std::vector<std::unique_ptr<SourceSocket>> sources;
  for (int i = 0; i < 40; ++i) {
    sources.push_back(std::make_unique<SourceSocket>(static_cast<uint8_t>(100 + i)));
    auto b = client();
    Reply r = allocate_from(*sources.back(), *b);
    if (r.success())
      ++ok;
    else if (r.error() == 486)
      ++quota;
    else
      ++other;
  }
  EXPECT_EQ(ok, 5);
  EXPECT_EQ(quota, 35);
  EXPECT_EQ(other, 0);
  EXPECT_TRUE(allocations_become(5));
  EXPECT_EQ(runtime().shared().quotas.total(), 5u);
  EXPECT_GE(runtime().stats()[0]->quota_refusals.load(), 35u);
}

// One address, 30 ports (30 5-tuples), one user: the user quota holds; after
// the allocations are released the quota is free again (nothing leaked).
TEST_F(Security, UserQuotaHoldsUnderAFloodFromOneSource) {
  restart({"user-quota=3"});
  std::vector<std::unique_ptr<TurnClient>> clients;
  int ok = 0, quota = 0;
  for (int i = 0; i < 30; ++i) {
    clients.push_back(client());
    Reply r = clients.back()->allocate();
    if (r.success())
      ++ok;
    else if (r.error() == 486)
      ++quota;
  }
  EXPECT_EQ(ok, 3);
  EXPECT_EQ(quota, 27);
  EXPECT_TRUE(allocations_become(3));
  for (auto& c : clients) (void)c->refresh(0);  // the 3 holders delete theirs; the others get 437
  EXPECT_TRUE(allocations_become(0));
  EXPECT_EQ(runtime().shared().quotas.total(), 0u);
  auto again = client();
  EXPECT_TRUE(again->allocate().success());
}

}  // namespace
}  // namespace turn::cptest
