// SPDX-License-Identifier: Apache-2.0
// Regression tests for the ten bugs of the protocol audit (issue 16), one
// group per bug, each against a real turn-control Runtime on loopback:
//  1 RESERVATION-TOKEN from an IPv6 EVEN-PORT reservation
//  2 Data indications whose length cannot be represented
//  3 DONT-FRAGMENT on reserved sockets and on Send indications
//  4 Send indications with unknown comprehension-required attributes
//  5 what the parser used to drop silently (integrity order, > 40 attributes)
//  6 the legacy channel range up to 0x7FFF
//  7 permissions per allocation capped
//  8 IPv6 peer policy: metadata, NAT64, 6to4, IPv4-mapped
//  9 client datagrams over 2,048 bytes
// 10 coturn's Redis per-realm options (user-quota, total-quota, max-bps)
#include <dirent.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "common/stun/attributes.h"
#include "common/turn/channel_data.h"
#include "controlplane/auth/realm_options.h"
#include "tests/controlplane/redis_server.h"
#include "tests/controlplane/turn_fixture.h"

namespace turn::cptest {
namespace {

using stun::Attr;
using stun::Class;
using stun::Method;

class Audit : public TurnServerFixture {};

constexpr int kNegativeWaitMs = 300;
const IpAddress kLoopback6 = *IpAddress::parse("::1");

SocketAddress addr(const char* text) { return SocketAddress::parse(text).value(); }
Bytes view(const std::vector<uint8_t>& v) { return {v.data(), v.size()}; }

std::vector<uint8_t> payload(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 13);
  return v;
}

void family_v6(stun::MessageBuilder& b) { b.add_address_family(Attr::RequestedAddressFamily, Family::V6); }

// The relay socket of turn-control (same process) bound to `relay`: its fd.
int relay_socket_fd(const SocketAddress& relay) {
  DIR* d = opendir("/proc/self/fd");
  if (!d) return -1;
  int found = -1;
  while (dirent* e = readdir(d)) {
    int fd = atoi(e->d_name);
    if (fd <= 2) continue;
    int type = 0;
    socklen_t tl = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) != 0 || type != SOCK_DGRAM) continue;
    sockaddr_storage ss{};
    socklen_t sl = sizeof ss;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &sl) != 0) continue;
    uint16_t port = 0;
    if (ss.ss_family == AF_INET) port = ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    if (ss.ss_family == AF_INET6) port = ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
    bool v4 = ss.ss_family == AF_INET;
    if (port == relay.port && v4 == relay.ip.is_v4()) {
      found = fd;
      break;
    }
  }
  closedir(d);
  return found;
}

int pmtu_mode(int fd, bool v4) {
  int mode = -1;
  socklen_t len = sizeof mode;
  if (v4)
    getsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &mode, &len);
  else
    getsockopt(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, &mode, &len);
  return mode;
}

// The next frame must be a Data indication from `peer` carrying `data`.
void expect_data_indication(TurnClient& c, const SocketAddress& peer, const std::vector<uint8_t>& data) {
  auto f = c.next_frame(kReplyTimeoutMs);
  ASSERT_TRUE(f) << "no Data indication";
  Reply r{*f};
  ASSERT_TRUE(r.parses());
  EXPECT_EQ(r.method(), Method::Data);
  EXPECT_EQ(r.xor_address(Attr::XorPeerAddress), peer);
  EXPECT_EQ(r.data(), data);
}

// Appends one attribute after everything (after MESSAGE-INTEGRITY too) and
// fixes the header's length; the integrity stays valid (it covers only
// what precedes it, RFC 8489 §14.5).
void append_attr(std::vector<uint8_t>& m, uint16_t type, const std::vector<uint8_t>& value) {
  uint8_t h[4];
  store_be16(h, type);
  store_be16(h + 2, static_cast<uint16_t>(value.size()));
  m.insert(m.end(), h, h + 4);
  m.insert(m.end(), value.begin(), value.end());
  m.resize(m.size() + pad4(value.size()) - value.size(), 0);
  store_be16(m.data() + 2, static_cast<uint16_t>(m.size() - stun::kHeaderSize));
}

// ---- 1: RESERVATION-TOKEN from an IPv6 reservation ---------------------------------------

TEST_F(Audit, ReservationTokenFromAnIpv6ReservationGivesTheIpv6Relay) {
  restart({"relay-ip=::1"});
  auto c1 = client();
  Reply r1 = c1->allocate([](stun::MessageBuilder& b) {
    family_v6(b);
    b.add_even_port(true);
  });
  ASSERT_TRUE(r1.success()) << r1.error();
  auto relay1 = r1.xor_address(Attr::XorRelayedAddress);
  ASSERT_TRUE(relay1);
  ASSERT_EQ(relay1->ip, kLoopback6);
  auto token = r1.reservation_token();
  ASSERT_TRUE(token);

  auto c2 = client(Proto::Udp, kBob, kBobPass);
  Reply r2 = c2->allocate([t = *token](stun::MessageBuilder& b) { b.add_reservation_token(t); });
  ASSERT_TRUE(r2.success()) << r2.error();
  auto relay2 = r2.xor_address(Attr::XorRelayedAddress);
  ASSERT_TRUE(relay2);
  // Before: 127.0.0.1 with the IPv6 socket's port (a dead allocation).
  EXPECT_EQ(*relay2, (SocketAddress{kLoopback6, static_cast<uint16_t>(relay1->port + 1)}));

  // What the registry (and Redis, and a data plane) learn is the same.
  ASSERT_TRUE(allocations_become(2));
  bool listed = false;
  for (const auto& info : runtime().shared().registry.snapshot())
    if (info->username == kBob) {
      EXPECT_EQ(info->relay, *relay2);
      EXPECT_EQ(info->relay_advertised, *relay2);
      listed = true;
    }
  EXPECT_TRUE(listed);

  // And the allocation relays both ways.
  UdpPeer peer(kLoopback6);
  ASSERT_TRUE(c2->create_permission(peer.address()).success());
  auto up = payload(40, 1);
  c2->send_indication(peer.address(), view(up));
  auto got = peer.receive(kReplyTimeoutMs);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->data, up);
  EXPECT_EQ(got->from, *relay2);
  auto down = payload(33, 2);
  peer.send_to(*relay2, view(down));
  expect_data_indication(*c2, peer.address(), down);
}

// ---- 2: Data indications that cannot be represented -----------------------------------

TEST_F(Audit, Ipv6PeerDatagramTooLargeForADataIndicationIsDroppedNotWrapped) {
  restart({"relay-ip=::1"});
  auto c = client(Proto::Tcp);
  Reply r = c->allocate(family_v6);
  ASSERT_TRUE(r.success()) << r.error();
  auto relay = *r.xor_address(Attr::XorRelayedAddress);
  UdpPeer peer(kLoopback6);
  ASSERT_TRUE(c->create_permission(peer.address()).success());

  // 65,504 bytes: message length 8 + 20 + 65,504 = 65,532, the largest that fits.
  auto largest = payload(65504, 3);
  peer.send_to(relay, view(largest));
  auto f = c->next_frame(kReplyTimeoutMs);
  ASSERT_TRUE(f);
  EXPECT_EQ(load_be16(f->data() + 2), 65532);
  EXPECT_EQ(Reply{*f}.data(), largest);

  // 65,520 bytes cannot be carried: before, the length field wrapped (12)
  // and the TCP client lost its framing. Now it is dropped and counted.
  uint64_t before = drops(cp::CpDrop::FrameTooLarge);
  peer.send_to(relay, view(payload(65520, 4)));
  auto small = payload(10, 5);
  peer.send_to(relay, view(small));
  expect_data_indication(*c, peer.address(), small);  // the stream is intact
  EXPECT_EQ(drops(cp::CpDrop::FrameTooLarge), before + 1);
}

TEST_F(Audit, DataIndicationLargerThanAUdpDatagramIsDroppedAndCounted) {
  SocketAddress relay;
  auto c = allocated(&relay);
  UdpPeer peer;
  ASSERT_TRUE(c->create_permission(peer.address()).success());
  // 20 + 16 + 65,472 = 65,508 > 65,507: no UDP datagram to an IPv4 client can carry it.
  peer.send_to(relay, view(payload(65472, 6)));
  EXPECT_FALSE(c->next_frame(kNegativeWaitMs));
  EXPECT_EQ(drops(cp::CpDrop::FrameTooLarge), 1u);
  auto fits = payload(65468, 7);  // 65,504 bytes in all
  peer.send_to(relay, view(fits));
  expect_data_indication(*c, peer.address(), fits);
}

// ---- 3: DONT-FRAGMENT --------------------------------------------------------------------

TEST_F(Audit, DontFragmentAppliesToAReservedSocket) {
  for (bool df : {true, false}) {
    auto c1 = client();
    Reply r1 = c1->allocate([](stun::MessageBuilder& b) { b.add_even_port(true); });
    ASSERT_TRUE(r1.success()) << r1.error();
    auto token = r1.reservation_token();
    ASSERT_TRUE(token);
    auto c2 = client(Proto::Udp, kBob, kBobPass);
    Reply r2 = c2->allocate([t = *token, df](stun::MessageBuilder& b) {
      b.add_reservation_token(t);
      if (df) b.add_flag(Attr::DontFragment);
    });
    ASSERT_TRUE(r2.success()) << r2.error();
    auto relay2 = *r2.xor_address(Attr::XorRelayedAddress);
    int fd = relay_socket_fd(relay2);
    ASSERT_GE(fd, 0) << relay2.to_string();
    if (df)
      EXPECT_EQ(pmtu_mode(fd, true), IP_PMTUDISC_DO) << "reserved socket ignores DONT-FRAGMENT";
    else
      EXPECT_NE(pmtu_mode(fd, true), IP_PMTUDISC_DO);
    ASSERT_TRUE(c2->refresh(0).success());
    ASSERT_TRUE(c1->refresh(0).success());
  }
}

TEST_F(Audit, SendIndicationWithDontFragmentIsNeverFragmented) {
  // IPv6 on loopback (MTU 65,536): 65,500 bytes of UDP payload need 65,548
  // bytes of IPv6 packet, so they leave fragmented, or (DF) not at all.
  restart({"relay-ip=::1"});
  auto c = client(Proto::Tcp);
  Reply r = c->allocate(family_v6);
  ASSERT_TRUE(r.success()) << r.error();
  auto relay = *r.xor_address(Attr::XorRelayedAddress);
  int fd = relay_socket_fd(relay);
  ASSERT_GE(fd, 0);
  int mode_before = pmtu_mode(fd, false);
  UdpPeer peer(kLoopback6);
  ASSERT_TRUE(c->create_permission(peer.address()).success());
  auto big = payload(65500, 8);

  c->send_indication(peer.address(), view(big), [](stun::MessageBuilder& b) { b.add_flag(Attr::DontFragment); });
  EXPECT_FALSE(peer.receive(kNegativeWaitMs)) << "a DONT-FRAGMENT datagram left fragmented";
  EXPECT_EQ(drops(cp::CpDrop::TooBigForPath), 1u);
  EXPECT_EQ(pmtu_mode(fd, false), mode_before) << "the socket's own setting is restored";

  c->send_indication(peer.address(), view(big));  // no DF: fragmented, delivered
  auto got = peer.receive(kReplyTimeoutMs);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->data, big);
  // A small one with DF goes through.
  auto small = payload(100, 9);
  c->send_indication(peer.address(), view(small), [](stun::MessageBuilder& b) { b.add_flag(Attr::DontFragment); });
  got = peer.receive(kReplyTimeoutMs);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->data, small);
}

// ---- 4: unknown comprehension-required attributes in Send indications -------------------

TEST_F(Audit, SendIndicationWithAnUnknownRequiredAttributeIsDiscarded) {
  SocketAddress relay;
  auto c = allocated(&relay);
  UdpPeer peer;
  ASSERT_TRUE(c->create_permission(peer.address()).success());
  auto data = payload(20, 10);
  c->send_indication(peer.address(), view(data), [](stun::MessageBuilder& b) { b.add(0x0033, Bytes{}); });
  EXPECT_FALSE(peer.receive(kNegativeWaitMs)) << "RFC 8489 §6.3.2: must be discarded";
  EXPECT_EQ(drops(cp::CpDrop::UnknownRequiredAttribute), 1u);
  // An unknown comprehension-optional one is ignored.
  c->send_indication(peer.address(), view(data), [](stun::MessageBuilder& b) { b.add(0x8033, Bytes{}); });
  auto got = peer.receive(kReplyTimeoutMs);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->data, data);
  EXPECT_EQ(drops(cp::CpDrop::UnknownRequiredAttribute), 1u);
}

// ---- 5: integrity attributes out of place, too many attributes -------------------------

TEST_F(Audit, SecondMessageIntegrityIsIgnoredAndTheRequestServed) {
  auto c = client();
  ASSERT_EQ(c->challenge().error(), 401);
  auto m = c->build(Method::Allocate, [](stun::MessageBuilder& b) { b.add_requested_transport(stun::kTransportUdp); });
  append_attr(m, static_cast<uint16_t>(Attr::MessageIntegrity), std::vector<uint8_t>(20, 0xEE));
  Reply r = c->transact(m);
  ASSERT_TRUE(r.received()) << "dropped silently";
  EXPECT_TRUE(r.success()) << r.error();
  EXPECT_EQ(drops(cp::CpDrop::MalformedStun), 0u);
}

TEST_F(Audit, MessageIntegrityAfterSha256IsIgnoredAndTheRequestServed) {
  auto c = client();
  ASSERT_EQ(c->challenge().error(), 401);
  Signing s;
  s.integrity = Integrity::Sha256;
  auto m = c->build(
      Method::Allocate, [](stun::MessageBuilder& b) { b.add_requested_transport(stun::kTransportUdp); }, s);
  append_attr(m, static_cast<uint16_t>(Attr::MessageIntegrity), std::vector<uint8_t>(20, 0xEE));
  Reply r = c->transact(m);
  ASSERT_TRUE(r.received()) << "dropped silently";
  EXPECT_TRUE(r.success()) << r.error();
  EXPECT_TRUE(r.has(Attr::MessageIntegritySha256));
}

TEST_F(Audit, TooManyAttributesIsAnswered400OrDroppedAndCounted) {
  auto c = client();
  auto m = c->build(Method::Binding, {}, [] {
    Signing s;
    s.integrity = Integrity::None;
    return s;
  }());
  for (size_t i = 0; i <= stun::MessageView::kMaxAttributes; ++i) append_attr(m, 0x8022, {'x'});
  Reply r = c->transact(m);
  ASSERT_TRUE(r.received()) << "dropped silently";
  EXPECT_EQ(r.error(), 400);
  EXPECT_LT(r.raw.size(), m.size());  // no amplification
  EXPECT_EQ(drops(cp::CpDrop::TooManyAttributes), 1u);
  // An indication has no answer: dropped, counted.
  SocketAddress relay;
  auto a = allocated(&relay);
  UdpPeer peer;
  ASSERT_TRUE(a->create_permission(peer.address()).success());
  a->send_indication(peer.address(), as_bytes(std::string("x")), [](stun::MessageBuilder& b) {
    for (size_t i = 0; i <= stun::MessageView::kMaxAttributes; ++i) b.add(0x8022, Bytes{});
  });
  EXPECT_FALSE(peer.receive(kNegativeWaitMs));
  EXPECT_EQ(drops(cp::CpDrop::TooManyAttributes), 2u);
}

// ---- 6: legacy channel range up to 0x7FFF ------------------------------------------------

TEST_F(Audit, LegacyChannel0x7FFFRelaysBothWays) {
  restart({"legacy-channel-range"});
  SocketAddress relay;
  auto c = allocated(&relay);
  UdpPeer peer;
  ASSERT_TRUE(c->channel_bind(0x7FFF, peer.address()).success());
  auto up = payload(30, 11);
  c->send_channel_data(0x7FFF, view(up));
  auto got = peer.receive(kReplyTimeoutMs);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->data, up);
  auto down = payload(31, 12);
  peer.send_to(relay, view(down));
  auto f = c->next_frame(kReplyTimeoutMs);
  ASSERT_TRUE(f);
  auto cd = parse_channel_frame(view(*f));
  ASSERT_TRUE(cd);
  EXPECT_EQ(cd->channel, 0x7FFF);
  EXPECT_EQ(cd->data, down);
}

// ---- 7: permissions per allocation ---------------------------------------------------------

TEST_F(Audit, PermissionsPerAllocationAreCappedWith508) {
  EXPECT_EQ(cfg_->max_permissions, 1000u);  // the default, far above what ICE needs
  restart({"max-permissions-per-allocation=3"});
  auto c = allocated(nullptr);
  auto perm = [&](std::vector<SocketAddress> peers) {
    return c->request(Method::CreatePermission, [peers](stun::MessageBuilder& b) {
      for (const auto& p : peers) b.add_xor_address(Attr::XorPeerAddress, p);
    });
  };
  ASSERT_TRUE(perm({addr("198.51.100.1:1"), addr("198.51.100.2:1"), addr("198.51.100.1:2")}).success());
  ASSERT_TRUE(perm({addr("198.51.100.3:1")}).success());
  // A fourth peer: 508, and nothing of the request is installed.
  EXPECT_EQ(perm({addr("198.51.100.1:3"), addr("198.51.100.4:1")}).error(), 508);
  // Refreshing existing permissions is always possible.
  EXPECT_TRUE(perm({addr("198.51.100.2:9"), addr("198.51.100.3:9")}).success());
  // ChannelBind installs a permission: the same limit; to a permitted peer it works.
  EXPECT_EQ(c->channel_bind(0x4000, addr("198.51.100.5:1")).error(), 508);
  EXPECT_TRUE(c->channel_bind(0x4001, addr("198.51.100.1:7")).success());
  uint64_t refused = 0;
  for (const auto* s : runtime().stats())
    refused += s->refusals[static_cast<size_t>(cp::CpRefusal::PermissionQuota)].load();
  EXPECT_EQ(refused, 2u);
  size_t installed = 0;
  for (const auto& info : runtime().shared().registry.snapshot()) {
    std::lock_guard lock(info->mutex);
    installed += info->permissions.size();
  }
  EXPECT_EQ(installed, 3u);
}

// ---- 8: IPv6 peer policy -------------------------------------------------------------------

TEST_F(Audit, Ipv6PeersThatReachIpv4OrMetadataFollowTheIpv4Policy) {
  restart({"relay-ip=::1", "denied-peer-ip=198.51.100.0/24"});
  auto c = client();
  ASSERT_TRUE(c->allocate(family_v6).success());
  auto perm = [&](const char* peer) { return c->create_permission(addr(peer)).error(); };
  EXPECT_EQ(perm("[fd00:ec2::254]:80"), 403);         // metadata over IPv6
  EXPECT_EQ(perm("[64:ff9b::a9fe:a9fe]:80"), 403);    // NAT64 of 169.254.169.254
  EXPECT_EQ(perm("[64:ff9b::e000:1]:5000"), 403);     // NAT64 of 224.0.0.1 (multicast)
  EXPECT_EQ(perm("[64:ff9b::c633:6405]:5000"), 403);  // NAT64 of a denied range
  EXPECT_EQ(perm("[2002:a9fe:a9fe::1]:80"), 403);     // 6to4 of 169.254.169.254
  EXPECT_EQ(perm("[2002:c633:6407::1]:5000"), 403);   // 6to4 of a denied range
  EXPECT_EQ(perm("[64:ff9b::cb00:7105]:5000"), 0);    // NAT64 of 203.0.113.5: allowed
  EXPECT_EQ(perm("[2002:cb00:7105::1]:5000"), 0);     // 6to4 of 203.0.113.5: allowed
  EXPECT_EQ(perm("[2001:db8::5]:5000"), 0);
  EXPECT_EQ(c->channel_bind(0x4000, addr("[64:ff9b::a9fe:a9fe]:80")).error(), 403);
}

TEST_F(Audit, Ipv4MappedPeerFollowsTheIpv4Policy) {
  restart({"denied-peer-ip=198.51.100.0/24", "no-loopback-peers"});
  auto c = allocated(nullptr);
  // XOR-PEER-ADDRESS of family IPv6 holding ::ffff:a.b.c.d.
  auto mapped = [&](uint32_t v4) {
    return c->request(Method::CreatePermission, [v4](stun::MessageBuilder& b) {
      uint8_t raw[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
      store_be32(raw + 12, v4);
      std::vector<uint8_t> v(20, 0);
      v[1] = stun::kFamilyIpv6;
      store_be16(v.data() + 2, static_cast<uint16_t>(5000 ^ (stun::kMagicCookie >> 16)));
      for (int i = 0; i < 16; ++i) v[4 + i] = raw[i] ^ b.xor_mask()[i];
      b.add(Attr::XorPeerAddress, Bytes{v.data(), v.size()});
    });
  };
  EXPECT_EQ(mapped(0xA9FEA9FE).error(), 403);  // 169.254.169.254
  EXPECT_EQ(mapped(0x7F000001).error(), 403);  // 127.0.0.1
  EXPECT_EQ(mapped(0xC6336401).error(), 403);  // 198.51.100.1, denied range
  EXPECT_TRUE(mapped(0xCB007105).success());   // 203.0.113.5
}

// ---- 9: client datagrams over 2,048 bytes ------------------------------------------------------

TEST_F(Audit, LargeClientDatagramsAreRelayed) {
  SocketAddress relay;
  auto c = allocated(&relay);
  UdpPeer peer;
  ASSERT_TRUE(c->channel_bind(0x4000, peer.address()).success());
  for (size_t n : {2049u, 3000u, 9000u, 65000u}) {
    auto data = payload(n, static_cast<uint8_t>(n));
    c->send_indication(peer.address(), view(data));
    auto got = peer.receive(kReplyTimeoutMs);
    ASSERT_TRUE(got) << "Send indication of " << n;
    EXPECT_EQ(got->data, data);
    c->send_channel_data(0x4000, view(data));
    got = peer.receive(kReplyTimeoutMs);
    ASSERT_TRUE(got) << "ChannelData of " << n;
    EXPECT_EQ(got->data, data);
  }
  // The largest UDP datagram (65,507 bytes of ChannelData) too.
  auto largest = payload(65503, 1);
  c->send_channel_data(0x4000, view(largest));
  auto got = peer.receive(kReplyTimeoutMs);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->data.size(), largest.size());
  EXPECT_EQ(drops(cp::CpDrop::FrameTooLarge), 0u);
}

// ---- 10: coturn's per-realm options in the Redis user database ------------------------------

TEST(RealmOptions, ParsesCoturnValuesAndRefusesBadOnes) {
  std::vector<std::string> errors;
  auto o = cp::parse_realm_options(std::string("3"), std::nullopt, std::string("64000"), errors);
  EXPECT_EQ(o.user_quota, 3u);
  EXPECT_FALSE(o.total_quota);
  EXPECT_EQ(o.max_bps, 64000u);
  EXPECT_TRUE(errors.empty());
  o = cp::parse_realm_options(std::string("-1"), std::string("ten"), std::string("99999999999999"), errors);
  EXPECT_FALSE(o.user_quota);
  EXPECT_FALSE(o.total_quota);
  EXPECT_FALSE(o.max_bps);
  ASSERT_EQ(errors.size(), 3u);
  EXPECT_NE(errors[0].find("user-quota=-1"), std::string::npos);
  EXPECT_NE(errors[1].find("total-quota=ten"), std::string::npos);
  EXPECT_EQ(cp::realm_option_key("north.gov", "max-bps"), "turn/realm/north.gov/max-bps");
}

TEST_F(Audit, RedisRealmOptionsAreHonoured) {
  SKIP_WITHOUT_HIREDIS();
  RedisServer redis;
  ASSERT_TRUE(redis.up()) << "redis-server (scripts/setup.sh installs it) did not start";
  redis::Client admin(redis.endpoint());
  admin.connect();
  admin.command({"SET", cp::realm_option_key(kRealm, "user-quota"), "1"});
  restart({"redis-userdb=ip=127.0.0.1 port=" + std::to_string(redis.endpoint().port) + " connect_timeout=1",
           "user-quota=5"});
  // The runtime's poller applies it (it reads every 3 s; the first read is at start).
  auto first = allocated(nullptr);
  bool limited = false;
  for (int i = 0; i < 50 && !limited; ++i) {
    auto c = client();
    int e = c->allocate().error();
    if (e == 486) {
      limited = true;
    } else if (e == 0) {
      ASSERT_TRUE(c->refresh(0).success());
    }
    if (!limited) sleep_ms(100);
  }
  EXPECT_TRUE(limited) << "turn/realm/<realm>/user-quota=1 was not applied";

  // total-quota and max-bps, and falling back to the config when deleted.
  cp::RealmOptionsPoller poll(*cfg_, runtime().shared().limits);
  admin.command({"DEL", cp::realm_option_key(kRealm, "user-quota")});
  admin.command({"SET", cp::realm_option_key(kRealm, "total-quota"), "2"});
  admin.command({"SET", cp::realm_option_key(kRealm, "max-bps"), "2000"});
  poll.poll_once();
  auto second = client();
  SocketAddress relay;
  Reply r = second->allocate();
  ASSERT_TRUE(r.success()) << r.error();  // user-quota back to the config's 5
  relay = *r.xor_address(Attr::XorRelayedAddress);
  EXPECT_EQ(client(Proto::Udp, kBob, kBobPass)->allocate().error(), 486);  // total-quota 2
  UdpPeer peer;
  ASSERT_TRUE(second->create_permission(peer.address()).success());
  uint64_t capped = drops(cp::CpDrop::BandwidthCap);
  auto chunk = payload(1000, 1);
  for (int i = 0; i < 10; ++i) peer.send_to(relay, view(chunk));  // 10,000 bytes at once
  int delivered = 0;
  while (second->next_frame(kNegativeWaitMs)) ++delivered;
  EXPECT_LE(delivered, 3) << "max-bps=2000 from the realm's options";
  EXPECT_GE(drops(cp::CpDrop::BandwidthCap), capped + 7);

  admin.command({"DEL", cp::realm_option_key(kRealm, "total-quota")});
  admin.command({"SET", cp::realm_option_key(kRealm, "max-bps"), "not-a-number"});
  poll.poll_once();
  EXPECT_TRUE(client(Proto::Udp, kBob, kBobPass)->allocate().success());  // the config's total-quota (none)
  EXPECT_EQ(runtime().shared().limits.max_bps(), 0u);                     // a bad value: the config's (none)
}

}  // namespace
}  // namespace turn::cptest
