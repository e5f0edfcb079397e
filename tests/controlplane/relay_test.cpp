// SPDX-License-Identifier: Apache-2.0
// turn-control end to end, relay side (RFC 8656 §10-§12): Send and Data
// indications, ChannelData both ways, permissions, TCP framing of relayed
// data, and expiry of permissions and allocations. The peer is a plain UDP
// socket on loopback.
#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "common/turn/channel_data.h"
#include "tests/controlplane/turn_fixture.h"

namespace turn::cptest {
namespace {

using stun::Attr;
using stun::Class;
using stun::Method;

class TurnRelay : public TurnServerFixture {};

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr int kNegativeWaitMs = 300;  // how long "does not arrive" waits

std::vector<uint8_t> payload(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 7);
  return v;
}

Bytes view(const std::vector<uint8_t>& v) { return {v.data(), v.size()}; }

// The next frame must be a Data indication from `peer` carrying `data`.
void expect_data_indication(TurnClient& c, const SocketAddress& peer, const std::vector<uint8_t>& data) {
  auto f = c.next_frame(kReplyTimeoutMs);
  ASSERT_TRUE(f) << "no Data indication";
  Reply r{*f};
  ASSERT_TRUE(r.parses());
  EXPECT_EQ(r.method(), Method::Data);
  EXPECT_EQ(r.cls(), Class::Indication);
  EXPECT_EQ(r.xor_address(Attr::XorPeerAddress), peer);
  EXPECT_EQ(r.data(), data);
}

// The next frame must be ChannelData on `channel` carrying `data`.
void expect_channel_data(TurnClient& c, uint16_t channel, const std::vector<uint8_t>& data) {
  auto f = c.next_frame(kReplyTimeoutMs);
  ASSERT_TRUE(f) << "no ChannelData";
  auto cd = parse_channel_frame(view(*f));
  ASSERT_TRUE(cd);
  EXPECT_EQ(cd->channel, channel);
  EXPECT_EQ(cd->data, data);
  if (c.proto() == Proto::Udp)
    EXPECT_EQ(f->size(), kChannelDataHeaderSize + data.size());  // no padding over UDP
  else
    EXPECT_EQ(f->size(), kChannelDataHeaderSize + pad4(data.size()));  // §12.5
}

TEST_F(TurnRelay, SendIndicationWithPermissionReachesThePeer) {
  SocketAddress relay;
  auto c = allocated(&relay);
  UdpPeer peer;
  ASSERT_TRUE(c->create_permission(peer.address()).success());
  for (size_t n : {1u, 5u, 100u, 1200u}) {
    auto data = payload(n, static_cast<uint8_t>(n));
    c->send_indication(peer.address(), view(data));
    auto d = peer.receive(kReplyTimeoutMs);
    ASSERT_TRUE(d) << n;
    EXPECT_EQ(d->data, data);
    EXPECT_EQ(d->from, relay);
  }
}

TEST_F(TurnRelay, SendIndicationWithoutPermissionIsDropped) {
  SocketAddress relay;
  auto c = allocated(&relay);
  UdpPeer peer;
  c->send_indication(peer.address(), as_bytes(std::string("no permission")));
  EXPECT_FALSE(peer.receive(kNegativeWaitMs));
  EXPECT_GE(drops(cp::CpDrop::NoPermission), 1u);
}

TEST_F(TurnRelay, SendIndicationWithoutAllocationIsDropped) {
  auto c = client();
  UdpPeer peer;
  c->send_indication(peer.address(), as_bytes(std::string("no allocation")));
  EXPECT_FALSE(peer.receive(kNegativeWaitMs));
  EXPECT_GE(drops(cp::CpDrop::NoAllocation), 1u);
}

TEST_F(TurnRelay, PeerDataArrivesAsDataIndication) {
  SocketAddress relay;
  auto c = allocated(&relay);
  UdpPeer peer;
  ASSERT_TRUE(c->create_permission(peer.address()).success());
  for (size_t n : {1u, 3u, 4u, 333u}) {
    auto data = payload(n, 1);
    peer.send_to(relay, view(data));
    expect_data_indication(*c, peer.address(), data);
  }
}

TEST_F(TurnRelay, PermissionCoversEveryPortOfThePeerAddress) {
  // RFC 8656 §9: permissions are per IP address, not per port.
  SocketAddress relay;
  auto c = allocated(&relay);
  UdpPeer a, b;
  ASSERT_TRUE(c->create_permission(a.address()).success());
  auto data = payload(17, 3);
  b.send_to(relay, view(data));
  expect_data_indication(*c, b.address(), data);
}

TEST_F(TurnRelay, PeerWithoutPermissionIsNotDelivered) {
  SocketAddress relay;
  auto c = allocated(&relay);
  UdpPeer allowed;                              // 127.0.0.1
  UdpPeer stranger(IpAddress::v4(0x7f000002));  // 127.0.0.2
  ASSERT_TRUE(c->create_permission(allowed.address()).success());
  auto before = drops(cp::CpDrop::NoPermission);
  stranger.send_to(relay, as_bytes(std::string("let me in")));
  EXPECT_FALSE(c->next_frame(kNegativeWaitMs));
  EXPECT_GT(drops(cp::CpDrop::NoPermission), before);
  // The permitted peer still gets through afterwards.
  auto data = payload(8, 9);
  allowed.send_to(relay, view(data));
  expect_data_indication(*c, allowed.address(), data);
}

TEST_F(TurnRelay, ChannelDataBothWays) {
  SocketAddress relay;
  auto c = allocated(&relay);
  UdpPeer peer;
  constexpr uint16_t kChannel = 0x4001;
  Reply bind = c->channel_bind(kChannel, peer.address());
  ASSERT_TRUE(bind.success()) << bind.error();
  // Peer -> client: ChannelData with the channel number (the binding also
  // installed the permission).
  for (size_t n : {1u, 2u, 7u, 8u, 500u}) {
    auto data = payload(n, 5);
    peer.send_to(relay, view(data));
    expect_channel_data(*c, kChannel, data);
  }
  // Client -> peer.
  for (size_t n : {1u, 6u, 1000u}) {
    auto data = payload(n, 11);
    c->send_channel_data(kChannel, view(data));
    auto d = peer.receive(kReplyTimeoutMs);
    ASSERT_TRUE(d) << n;
    EXPECT_EQ(d->data, data);
    EXPECT_EQ(d->from, relay);
  }
  // Send indications to a channel-bound peer still work.
  auto data = payload(12, 1);
  c->send_indication(peer.address(), view(data));
  auto d = peer.receive(kReplyTimeoutMs);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->data, data);
}

TEST_F(TurnRelay, ChannelDataOnAnUnboundChannelIsDropped) {
  SocketAddress relay;
  auto c = allocated(&relay);
  UdpPeer peer;
  ASSERT_TRUE(c->channel_bind(0x4001, peer.address()).success());
  c->send_channel_data(0x4002, as_bytes(std::string("unbound")));
  EXPECT_FALSE(peer.receive(kNegativeWaitMs));
  EXPECT_GE(drops(cp::CpDrop::UnboundChannel), 1u);
  // A length field that overruns the datagram is dropped too.
  const uint8_t lying[] = {0x40, 0x01, 0x00, 0x40, 'x', 'y'};
  c->send_raw(Bytes{lying, sizeof lying});
  EXPECT_FALSE(peer.receive(kNegativeWaitMs));
  EXPECT_GE(drops(cp::CpDrop::MalformedChannelData), 1u);
}

TEST_F(TurnRelay, ChannelDataWithPaddingOverUdpIsAccepted) {
  // §12.5: over UDP a client may pad; the length field governs.
  SocketAddress relay;
  auto c = allocated(&relay);
  UdpPeer peer;
  ASSERT_TRUE(c->channel_bind(0x4003, peer.address()).success());
  const uint8_t padded[] = {0x40, 0x03, 0x00, 0x03, 'a', 'b', 'c', 0x00};
  c->send_raw(Bytes{padded, sizeof padded});
  auto d = peer.receive(kReplyTimeoutMs);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->data, to_vec("abc"));
}

TEST_F(TurnRelay, RelayToRelayOnTheSameServer) {
  // Two clients of the same server, each relayed: the usual WebRTC case.
  SocketAddress ra, rb;
  auto a = allocated(&ra);
  auto b = allocated(&rb, Proto::Udp, kBob, kBobPass);
  ASSERT_NE(ra, rb);
  ASSERT_TRUE(a->create_permission(rb).success());
  ASSERT_TRUE(b->create_permission(ra).success());
  auto data = payload(40, 2);
  a->send_indication(rb, view(data));
  expect_data_indication(*b, ra, data);
  ASSERT_TRUE(b->channel_bind(0x4100, ra).success());
  auto back = payload(41, 4);
  b->send_channel_data(0x4100, view(back));
  expect_data_indication(*a, rb, back);
}

TEST_F(TurnRelay, TcpClientChannelDataIsPaddedAndFramingHolds) {
  SocketAddress relay;
  auto c = allocated(&relay, Proto::Tcp);
  UdpPeer bound, unbound;  // same IP: the channel's permission covers both
  constexpr uint16_t kChannel = 0x4ABC;
  ASSERT_TRUE(c->channel_bind(kChannel, bound.address()).success());

  // 50 odd-length messages, alternating ChannelData (bound peer) and Data
  // indications (other port), with a request/response in the middle.
  std::vector<std::vector<uint8_t>> sent;
  for (int i = 0; i < 50; ++i) {
    auto data = payload(static_cast<size_t>(2 * i + 1 + (i % 7) * 100), static_cast<uint8_t>(i));
    sent.push_back(data);
    (i % 2 == 0 ? bound : unbound).send_to(relay, view(data));
    if (i == 25) {
      // transact() keeps the frames it skips for next_frame().
      Reply r = c->refresh(600);
      ASSERT_TRUE(r.success()) << r.error();
    }
  }
  for (int i = 0; i < 50; ++i) {
    SCOPED_TRACE("message " + std::to_string(i));
    if (i % 2 == 0)
      expect_channel_data(*c, kChannel, sent[static_cast<size_t>(i)]);
    else
      expect_data_indication(*c, unbound.address(), sent[static_cast<size_t>(i)]);
  }
  // And the other way: padded ChannelData from a TCP client reaches the
  // peer without the padding.
  for (size_t n : {1u, 2u, 3u, 5u}) {
    auto data = payload(n, 77);
    c->send_channel_data(kChannel, view(data));
    auto d = bound.receive(kReplyTimeoutMs);
    ASSERT_TRUE(d) << n;
    EXPECT_EQ(d->data, data);
  }
  auto b = c->transact(c->build(Method::Binding, {}, [] {
    Signing s;
    s.integrity = Integrity::None;
    return s;
  }()));
  EXPECT_TRUE(b.success());
}

TEST_F(TurnRelay, TcpSendIndicationReachesThePeer) {
  SocketAddress relay;
  auto c = allocated(&relay, Proto::Tcp);
  UdpPeer peer;
  ASSERT_TRUE(c->create_permission(peer.address()).success());
  auto data = payload(13, 1);
  c->send_indication(peer.address(), view(data));
  auto d = peer.receive(kReplyTimeoutMs);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->data, data);
  EXPECT_EQ(d->from, relay);
}

TEST_F(TurnRelay, OversizedPeerDatagramIsNeverTruncated) {
  // The largest UDP datagram (65507 bytes over IPv4) from a peer to a TCP
  // client fits a Data indication; whatever the server does with it, it
  // must not relay a cut-off copy.
  SocketAddress relay;
  auto c = allocated(&relay, Proto::Tcp);
  UdpPeer peer;
  ASSERT_TRUE(c->create_permission(peer.address()).success());
  auto big = payload(65507, 42);
  peer.send_to(relay, view(big));
  auto f = c->next_frame(1000);
  if (f) {
    Reply r{*f};
    ASSERT_TRUE(r.parses());
    auto d = r.data();
    ASSERT_TRUE(d);
    EXPECT_EQ(d->size(), big.size()) << "relayed a truncated copy of the peer's datagram";
    EXPECT_TRUE(*d == big);
  }
  // Normal traffic still flows.
  auto small = payload(100, 1);
  peer.send_to(relay, view(small));
  expect_data_indication(*c, peer.address(), small);
}

TEST_F(TurnRelay, TwoThreadsShareQuotasAndRelay) {
  restart({"relay-threads=2", "user-quota=3"});
  UdpPeer peer;
  std::vector<std::unique_ptr<TurnClient>> clients;
  for (int i = 0; i < 6; ++i) {
    SCOPED_TRACE("client " + std::to_string(i));
    bool bob = i % 2 == 1;
    Proto p = i < 2 ? Proto::Tcp : Proto::Udp;
    SocketAddress relay;
    auto c = allocated(&relay, p, bob ? kBob : kAlice, bob ? kBobPass : kAlicePass);
    ASSERT_TRUE(c->create_permission(peer.address()).success());
    auto data = payload(20 + static_cast<size_t>(i), static_cast<uint8_t>(i));
    peer.send_to(relay, view(data));
    expect_data_indication(*c, peer.address(), data);
    c->send_indication(peer.address(), view(data));
    auto d = peer.receive(kReplyTimeoutMs);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->data, data);
    EXPECT_EQ(d->from, relay);
    clients.push_back(std::move(c));
  }
  EXPECT_TRUE(allocations_become(6)) << live_allocations();
  // Three each: a fourth for either user is over quota, whichever thread.
  for (int i = 0; i < 4; ++i) {
    auto c = client(i % 2 ? Proto::Tcp : Proto::Udp, i < 2 ? kAlice : kBob, i < 2 ? kAlicePass : kBobPass);
    EXPECT_EQ(c->allocate().error(), 486);
  }
}

// ---- expiry ----------------------------------------------------------------------------

TEST_F(TurnRelay, PermissionExpires) {
  restart({"permission-lifetime=1"});
  SocketAddress relay;
  auto c = allocated(&relay);
  UdpPeer peer;
  ASSERT_TRUE(c->create_permission(peer.address()).success());
  auto data = payload(10, 1);
  peer.send_to(relay, view(data));
  expect_data_indication(*c, peer.address(), data);
  sleep_ms(2500);
  peer.send_to(relay, view(data));
  EXPECT_FALSE(c->next_frame(kNegativeWaitMs)) << "peer data delivered after the permission expired";
  c->send_indication(peer.address(), view(data));
  EXPECT_FALSE(peer.receive(kNegativeWaitMs)) << "Send indication relayed after the permission expired";
  // The allocation itself is alive, and a new permission works again.
  ASSERT_TRUE(c->create_permission(peer.address()).success());
  peer.send_to(relay, view(data));
  expect_data_indication(*c, peer.address(), data);
}

TEST_F(TurnRelay, ChannelExpiresPermissionStays) {
  restart({"channel-lifetime=1"});
  SocketAddress relay;
  auto c = allocated(&relay);
  UdpPeer peer;
  ASSERT_TRUE(c->channel_bind(0x4000, peer.address()).success());
  auto data = payload(9, 1);
  peer.send_to(relay, view(data));
  expect_channel_data(*c, 0x4000, data);
  sleep_ms(2500);
  // The binding is gone; the permission it installed (300 s) is not: peer
  // data comes as a Data indication, and the channel no longer carries data.
  peer.send_to(relay, view(data));
  expect_data_indication(*c, peer.address(), data);
  c->send_channel_data(0x4000, view(data));
  EXPECT_FALSE(peer.receive(kNegativeWaitMs)) << "ChannelData relayed on an expired channel";
  ASSERT_TRUE(c->channel_bind(0x4000, peer.address()).success());
  peer.send_to(relay, view(data));
  expect_channel_data(*c, 0x4000, data);
}

TEST_F(TurnRelay, AllocationExpires) {
  restart({"default-allocate-lifetime=2", "max-allocate-lifetime=2"});
  SocketAddress relay;
  auto c = client();
  Reply r = c->allocate();
  auto granted = Clock::now();
  ASSERT_TRUE(r.success()) << r.error();
  EXPECT_EQ(r.u32(Attr::Lifetime), 2u);
  relay = r.xor_address(Attr::XorRelayedAddress).value();
  UdpPeer peer;
  ASSERT_TRUE(c->channel_bind(0x4000, peer.address()).success());
  auto data = payload(10, 1);
  peer.send_to(relay, view(data));
  expect_channel_data(*c, 0x4000, data);
  EXPECT_TRUE(allocations_become(1)) << live_allocations();

  // Deleted by the once-a-second sweep: not before the lifetime ends, and
  // within about a second after.
  ASSERT_TRUE(allocations_become(0, 4000)) << live_allocations();
  auto gone_after = std::chrono::duration_cast<milliseconds>(Clock::now() - granted).count();
  EXPECT_GE(gone_after, 1800);
  EXPECT_LE(gone_after, 3300);
  peer.send_to(relay, view(data));
  EXPECT_FALSE(c->next_frame(kNegativeWaitMs)) << "relay port still delivers after expiry";
  Reply rf = c->refresh(600);
  ASSERT_TRUE(rf.received());
  EXPECT_EQ(rf.error(), 437);
  // The relay socket is closed: its port can be bound again.
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(relay.port);
  sa.sin_addr.s_addr = htonl(0x7f000001);
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0) << "relay port " << relay.port << " still bound";
  close(fd);
}

// An allocation whose lifetime has ended is dead at once, not at the next
// sweep (DESIGN.md: "expired entries are never forwarded, even before the
// delete arrives"); nor can a Refresh bring it back.
TEST_F(TurnRelay, ExpiredAllocationIsNotUsedBeforeTheSweep) {
  restart({"default-allocate-lifetime=2", "max-allocate-lifetime=2"});
  // Learn the phase of the once-a-second sweep from a first allocation.
  {
    auto x = client();
    ASSERT_TRUE(x->allocate().success());
    ASSERT_TRUE(allocations_become(1));
    for (int i = 0; i < 800 && live_allocations() != 0; ++i) sleep_ms(5);
    ASSERT_EQ(live_allocations(), 0u);
  }
  auto sweep = Clock::now();  // a sweep just ran; the next ones follow a second apart
  std::this_thread::sleep_until(sweep + milliseconds(200));
  SocketAddress relay;
  UdpPeer peer;
  auto c = client();
  Reply r = c->allocate();
  auto granted = Clock::now();
  ASSERT_TRUE(r.success()) << r.error();
  relay = r.xor_address(Attr::XorRelayedAddress).value();
  ASSERT_TRUE(c->channel_bind(0x4000, peer.address()).success());
  // Expired for 300 ms, and about 500 ms before the sweep deletes it.
  std::this_thread::sleep_until(granted + milliseconds(2300));
  if (Clock::now() > sweep + milliseconds(2800)) GTEST_SKIP() << "too slow to hit the window";
  auto data = payload(10, 1);
  peer.send_to(relay, view(data));
  EXPECT_FALSE(c->next_frame(150)) << "peer data relayed by an expired allocation";
  c->send_channel_data(0x4000, view(data));
  EXPECT_FALSE(peer.receive(150)) << "client data relayed by an expired allocation";
  Reply rf = c->refresh(600);
  EXPECT_EQ(rf.error(), 437) << "Refresh revived an expired allocation";
}

// A TCP client that resets its connection while its peer keeps sending:
// the write of a Data indication fails, which closes the connection and
// deletes the allocation in the middle of relaying. Nothing may touch the
// allocation afterwards (under ASan, a heap-use-after-free shows here).
TEST_F(TurnRelay, TcpResetWhilePeerSends) {
  UdpPeer peer;
  auto data = payload(200, 1);
  for (int round = 0; round < 20; ++round) {
    SocketAddress relay;
    auto c = allocated(&relay, Proto::Tcp);
    ASSERT_TRUE(c->create_permission(peer.address()).success());
    for (int i = 0; i < 100; ++i) {
      peer.send_to(relay, view(data));
      if (i == 50) c->abort_connection();
    }
    EXPECT_TRUE(allocations_become(0, 1000)) << "round " << round;
  }
  // Still serving.
  auto c = client();
  EXPECT_TRUE(c->allocate().success());
}

}  // namespace
}  // namespace turn::cptest
