// SPDX-License-Identifier: Apache-2.0
// RFC 6062 TCP allocations against a real turn-control on loopback: the
// Allocate rules (§5.1), Connect (§5.2) and its refusals, incoming peer
// connections and ConnectionAttempt (§5.3), ConnectionBind (§5.4) on any
// thread, relaying in both directions with back-pressure, and teardown.
// Peers are plain TCP sockets of this test.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "common/stun/attributes.h"
#include "tests/controlplane/turn_fixture.h"

namespace turn::cptest {
namespace {

using stun::Attr;
using stun::Method;
using Clock = std::chrono::steady_clock;

void tcp_transport(stun::MessageBuilder& b) { b.add_requested_transport(stun::kTransportTcp); }

sockaddr_in v4(const SocketAddress& a) {
  sockaddr_in s{};
  s.sin_family = AF_INET;
  s.sin_port = htons(a.port);
  std::memcpy(&s.sin_addr, a.ip.v4_bytes(), 4);
  return s;
}

SocketAddress peer_of(int fd, bool remote) {
  sockaddr_in s{};
  socklen_t l = sizeof s;
  if (remote)
    getpeername(fd, reinterpret_cast<sockaddr*>(&s), &l);
  else
    getsockname(fd, reinterpret_cast<sockaddr*>(&s), &l);
  return SocketAddress{IpAddress::v4(reinterpret_cast<const uint8_t*>(&s.sin_addr)), ntohs(s.sin_port)};
}

// Reads exactly n bytes (bounded by timeout); fewer on EOF or timeout.
std::vector<uint8_t> read_n(int fd, size_t n, int timeout_ms = 3000) {
  std::vector<uint8_t> out;
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  uint8_t buf[65536];
  while (out.size() < n && Clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    ssize_t r = recv(fd, buf, std::min(sizeof buf, n - out.size()), MSG_DONTWAIT);
    if (r == 0) break;
    if (r < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      break;
    }
    out.insert(out.end(), buf, buf + r);
  }
  return out;
}

// True once the other end closed (EOF or reset) within timeout.
bool sees_close(int fd, int timeout_ms = 3000) {
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  uint8_t buf[4096];
  while (Clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    ssize_t r = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) return true;
  }
  return false;
}

void write_all(int fd, const std::vector<uint8_t>& d) {
  size_t done = 0;
  while (done < d.size()) {
    ssize_t w = send(fd, d.data() + done, d.size() - done, MSG_NOSIGNAL);
    if (w <= 0) {
      pollfd p{fd, POLLOUT, 0};
      poll(&p, 1, 100);
      if (w < 0 && errno != EAGAIN && errno != EINTR) return;
      continue;
    }
    done += static_cast<size_t>(w);
  }
}

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 31 + (i >> 8));
  return v;
}

// A TCP listener on 127.0.0.1 playing the peer.
class TcpPeer {
 public:
  TcpPeer() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a = v4(SocketAddress{IpAddress::v4(0x7f000001), 0});
    bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    listen(fd_, 16);
  }
  ~TcpPeer() { close(fd_); }
  [[nodiscard]] SocketAddress address() const { return peer_of(fd_, false); }
  // The next accepted connection, or -1 after timeout_ms.
  int accept_one(int timeout_ms = 3000) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0) return -1;
    return accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
  }

 private:
  int fd_ = -1;
};

int connect_to(const SocketAddress& to) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a = v4(to);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

class TcpAlloc : public TurnServerFixture {
 protected:
  // A control connection with a TCP allocation; its relayed address in *relay.
  std::unique_ptr<TurnClient> tcp_allocation(SocketAddress* relay, const char* user = kAlice,
                                             const char* pass = kAlicePass) {
    auto c = client(Proto::Tcp, user, pass);
    Reply r = c->request(Method::Allocate, tcp_transport);
    EXPECT_TRUE(r.success()) << "TCP Allocate: " << r.error();
    if (relay) *relay = r.xor_address(Attr::XorRelayedAddress).value_or(SocketAddress{});
    return c;
  }

  // A new connection to the server binding CONNECTION-ID `id`: the reply,
  // and the client (its socket then carries the peer's bytes).
  std::pair<Reply, std::unique_ptr<TurnClient>> bind(uint32_t id, const char* user = kAlice,
                                                     const char* pass = kAlicePass) {
    auto d = client(Proto::Tcp, user, pass);
    Reply r = d->request(Method::ConnectionBind, [id](stun::MessageBuilder& b) { b.add_u32(Attr::ConnectionId, id); });
    return {r, std::move(d)};
  }

  // Bytes of the data connection: what the client read past the response, then more.
  static std::vector<uint8_t> data_read(TurnClient& d, size_t n) {
    auto got = d.take_buffered();
    if (got.size() < n) {
      auto more = read_n(d.fd(), n - got.size());
      got.insert(got.end(), more.begin(), more.end());
    }
    return got;
  }
};

TEST_F(TcpAlloc, AllocateRules) {
  // §5.1: a UDP control connection cannot have a TCP allocation ...
  auto udp = client();
  EXPECT_EQ(udp->request(Method::Allocate, tcp_transport).error(), 400);
  // ... nor DONT-FRAGMENT, EVEN-PORT or RESERVATION-TOKEN go with one.
  for (auto extra : std::vector<Attrs>{[](stun::MessageBuilder& b) { b.add_flag(Attr::DontFragment); },
                                       [](stun::MessageBuilder& b) { b.add_even_port(false); },
                                       [](stun::MessageBuilder& b) { b.add_reservation_token(7); }}) {
    auto c = client(Proto::Tcp);
    EXPECT_EQ(c->request(Method::Allocate,
                         [&](stun::MessageBuilder& b) {
                           tcp_transport(b);
                           extra(b);
                         })
                  .error(),
              400);
  }
  // A TCP allocation: a relayed address that listens for TCP.
  SocketAddress relay;
  auto c = tcp_allocation(&relay);
  int probe = connect_to(relay);
  EXPECT_GE(probe, 0) << "nothing listens on " << relay.to_string();
  if (probe >= 0) close(probe);
  // Not a UDP relay: channels and Send indications have no place here.
  EXPECT_EQ(c->channel_bind(0x4000, SocketAddress{IpAddress::v4(0x7f000001), 9}).error(), 400);
  // no-tcp-relay: 442, as coturn.
  restart({"no-tcp-relay"});
  EXPECT_EQ(client(Proto::Tcp)->request(Method::Allocate, tcp_transport).error(), 442);
}

TEST_F(TcpAlloc, ConnectThenBindRelaysBothWays) {
  SocketAddress relay;
  auto c = tcp_allocation(&relay);
  TcpPeer peer;
  Reply r = c->request(Method::Connect,
                       [&](stun::MessageBuilder& b) { b.add_xor_address(Attr::XorPeerAddress, peer.address()); });
  ASSERT_TRUE(r.success()) << r.error();
  auto id = r.u32(Attr::ConnectionId);
  ASSERT_TRUE(id);
  int p = peer.accept_one();
  ASSERT_GE(p, 0);
  EXPECT_EQ(peer_of(p, true), relay) << "the connection comes from the relayed address (§5.2)";
  // The peer talks first: held until the bind, then delivered in order.
  auto early = pattern(1000, 1);
  write_all(p, early);
  auto [br, d] = bind(*id);
  ASSERT_TRUE(br.success()) << br.error();
  EXPECT_EQ(data_read(*d, early.size()), early);
  // Both ways, larger than any buffer on the way (back-pressure, no loss).
  auto up = pattern(3 << 20, 2);
  std::thread writer([&] { write_all(d->fd(), up); });
  EXPECT_EQ(read_n(p, up.size(), 10000), up);
  writer.join();
  auto down = pattern(3 << 20, 3);
  std::thread writer2([&] { write_all(p, down); });
  EXPECT_EQ(read_n(d->fd(), down.size(), 10000), down);
  writer2.join();
  // One side closes: so does the other.
  close(p);
  EXPECT_TRUE(sees_close(d->fd()));
  uint64_t to_peer = 0;
  for (const auto& info : runtime().shared().registry.snapshot()) to_peer += info->bytes_to_peer.load();
  EXPECT_EQ(to_peer, up.size());
}

TEST_F(TcpAlloc, ConnectRefusals) {
  SocketAddress relay;
  auto c = tcp_allocation(&relay);
  auto connect = [&](const SocketAddress& to) {
    return c->request(Method::Connect, [&](stun::MessageBuilder& b) { b.add_xor_address(Attr::XorPeerAddress, to); })
        .error();
  };
  TcpPeer peer;
  ASSERT_EQ(connect(peer.address()), 0);
  EXPECT_EQ(connect(peer.address()), 446) << "§5.2: a connection to that peer exists";
  SocketAddress gone;
  {
    TcpPeer closed_peer;  // a port that refuses once this one is closed
    gone = closed_peer.address();
  }
  EXPECT_EQ(connect(gone), 447) << "connection refused";
  EXPECT_EQ(connect(SocketAddress::parse("169.254.169.254:80").value()), 403);
  EXPECT_EQ(connect(SocketAddress::parse("[2001:db8::1]:80").value()), 443);
  EXPECT_EQ(c->request(Method::Connect, {}).error(), 400);
  // On a UDP allocation, and without one.
  auto u = allocated(nullptr);
  EXPECT_EQ(u->request(Method::Connect,
                       [&](stun::MessageBuilder& b) { b.add_xor_address(Attr::XorPeerAddress, peer.address()); })
                .error(),
            400);
  auto none = client(Proto::Tcp);
  EXPECT_EQ(none->request(Method::Connect,
                          [&](stun::MessageBuilder& b) { b.add_xor_address(Attr::XorPeerAddress, peer.address()); })
                .error(),
            437);
}

TEST_F(TcpAlloc, PeerConnectionsNeedAPermissionThenAreOffered) {
  SocketAddress relay;
  auto c = tcp_allocation(&relay);
  // No permission: accepted and closed at once, counted.
  int early = connect_to(relay);
  ASSERT_GE(early, 0);
  EXPECT_TRUE(sees_close(early));
  close(early);
  EXPECT_EQ(drops(cp::CpDrop::TcpPeerRefused), 1u);
  EXPECT_FALSE(c->next_frame(200)) << "no ConnectionAttempt without a permission";
  // With one: a ConnectionAttempt indication names the peer and the id.
  ASSERT_TRUE(c->create_permission(SocketAddress{IpAddress::v4(0x7f000001), 0}).success());
  int p = connect_to(relay);
  ASSERT_GE(p, 0);
  SocketAddress from = peer_of(p, false);
  auto f = c->next_frame(kReplyTimeoutMs);
  ASSERT_TRUE(f);
  Reply attempt{*f};
  EXPECT_EQ(attempt.method(), Method::ConnectionAttempt);
  EXPECT_EQ(attempt.cls(), stun::Class::Indication);
  EXPECT_EQ(attempt.xor_address(Attr::XorPeerAddress), from);
  auto id = attempt.u32(Attr::ConnectionId);
  ASSERT_TRUE(id);
  auto [br, d] = bind(*id);
  ASSERT_TRUE(br.success()) << br.error();
  auto hello = pattern(777, 9);
  write_all(d->fd(), hello);
  EXPECT_EQ(read_n(p, hello.size()), hello);
  write_all(p, hello);
  EXPECT_EQ(data_read(*d, hello.size()), hello);
  close(p);
}

TEST_F(TcpAlloc, ConnectionBindRules) {
  SocketAddress relay;
  auto c = tcp_allocation(&relay);
  TcpPeer peer;
  Reply r = c->request(Method::Connect,
                       [&](stun::MessageBuilder& b) { b.add_xor_address(Attr::XorPeerAddress, peer.address()); });
  ASSERT_TRUE(r.success());
  uint32_t id = *r.u32(Attr::ConnectionId);
  EXPECT_EQ(bind(id ^ 0x5a5a5a5a).first.error(), 400) << "unknown CONNECTION-ID";
  EXPECT_EQ(
      c->request(Method::ConnectionBind, [id](stun::MessageBuilder& b) { b.add_u32(Attr::ConnectionId, id); }).error(),
      400)
      << "not over the control connection";
  EXPECT_EQ(client()
                ->request(Method::ConnectionBind, [id](stun::MessageBuilder& b) { b.add_u32(Attr::ConnectionId, id); })
                .error(),
            400)
      << "not over UDP";
  EXPECT_EQ(bind(id, kBob, kBobPass).first.error(), 441) << "another user's connection";
  // The refusals above did not spend it: the right user binds, once.
  auto [ok, d] = bind(id);
  EXPECT_TRUE(ok.success()) << ok.error();
  EXPECT_EQ(bind(id).first.error(), 400) << "bound already";
}

TEST_F(TcpAlloc, DataConnectionsLandingOnOtherThreadsAreMovedToTheAllocation) {
  restart({"relay-threads=4"});
  SocketAddress relay;
  auto c = tcp_allocation(&relay);
  std::vector<std::unique_ptr<TcpPeer>> peers;
  std::vector<std::unique_ptr<TurnClient>> datas;
  std::vector<int> ends;
  for (int i = 0; i < 12; ++i) {  // SO_REUSEPORT spreads these over the 4 threads
    peers.push_back(std::make_unique<TcpPeer>());
    Reply r = c->request(Method::Connect, [&](stun::MessageBuilder& b) {
      b.add_xor_address(Attr::XorPeerAddress, peers.back()->address());
    });
    ASSERT_TRUE(r.success()) << i << ": " << r.error();
    ends.push_back(peers.back()->accept_one());
    auto [br, d] = bind(*r.u32(Attr::ConnectionId));
    ASSERT_TRUE(br.success()) << i << ": " << br.error();
    datas.push_back(std::move(d));
  }
  for (size_t i = 0; i < datas.size(); ++i) {
    auto m = pattern(5000 + i, static_cast<uint8_t>(i));
    write_all(datas[i]->fd(), m);
    EXPECT_EQ(read_n(ends[i], m.size()), m) << i;
  }
  for (int e : ends) close(e);
}

TEST_F(TcpAlloc, ReleasingTheAllocationClosesItsConnections) {
  SocketAddress relay;
  auto c = tcp_allocation(&relay);
  TcpPeer peer;
  Reply r = c->request(Method::Connect,
                       [&](stun::MessageBuilder& b) { b.add_xor_address(Attr::XorPeerAddress, peer.address()); });
  ASSERT_TRUE(r.success());
  int p = peer.accept_one();
  auto [br, d] = bind(*r.u32(Attr::ConnectionId));
  ASSERT_TRUE(br.success());
  ASSERT_TRUE(c->refresh(0).success());
  EXPECT_TRUE(sees_close(p)) << "peer connection";
  EXPECT_TRUE(sees_close(d->fd())) << "data connection";
  EXPECT_LT(connect_to(relay), 0) << "the relayed address stops listening";
  close(p);
  // Closing the control connection does the same (RFC 8656 §3.1).
  auto c2 = tcp_allocation(&relay);
  r = c2->request(Method::Connect,
                  [&](stun::MessageBuilder& b) { b.add_xor_address(Attr::XorPeerAddress, peer.address()); });
  ASSERT_TRUE(r.success());
  int p2 = peer.accept_one();
  c2.reset();
  EXPECT_TRUE(sees_close(p2));
  close(p2);
}

}  // namespace
}  // namespace turn::cptest
