// SPDX-License-Identifier: Apache-2.0
// What goes to the kernel unchanged, what is dropped and why, and frames
// with no room to grow (tests/dataplane/fastpath_fixture.h).
#include "tests/dataplane/fastpath_fixture.h"

namespace turn::dp::fastpath_test {
namespace {

// ---- punts: unchanged, to the kernel -------------------------------------------------

// A dual-homed host: client C reached turn-control on the internal
// address, which another (kernel) interface owns. Data for C, from a peer
// or hairpinned from A (the case ClientOfAnotherInterfaceIsTheKernelsToAnswer
// leaves out), goes to the kernel unchanged instead of out of
// this port towards the gateway.
TEST_F(FastPath, ClientOnAnotherInterfaceIsPunted) {
  pc_.local4.add(kServer);
  const uint32_t inside_server = ip4(10, 10, 0, 10), inside_client = ip4(10, 10, 0, 50);
  t_.add_neighbour(inside_client, kClientBHopMac);
  uint32_t c = t_.add_alloc(inside_client, 40010, kServer, 49410, kLive, inside_server);
  t_.add_permission(c, kPeer1);
  t_.add_permission(c, kServer);
  expect_punt(udp_frame(kPortMac, kRouterMac, kPeer1, kServer, kPeer1Port, 49410, pattern(8)), PuntReason::NoNeighbour);
  t_.add_channel(a_, 0x4020, kServer, 49410);
  t_.add_permission(a_, kServer);
  expect_punt(from_client_a(channel_data(0x4020, pattern(12))), PuntReason::NoNeighbour);
  // Clients on this port's address still take the fast path.
  Buf b(from_peer1(pattern(8), kIn));
  EXPECT_EQ(run(b).kind, Verdict::Tx);
}

TEST_F(FastPath, PuntUnknownChannel) {
  expect_punt(from_client_a(channel_data(0x4ABC, pattern(10))), PuntReason::UnknownFlow);
  // Bound, but by another client.
  expect_punt(from_client_b(channel_data(0x4000, pattern(10))), PuntReason::UnknownFlow);
}

TEST_F(FastPath, PuntExpired) {
  auto cd = from_client_a(channel_data(0x4000, pattern(10)));
  auto send = from_client_a(send_indication(sa(kPeer2, kPeer2Port), &static_data(pattern(10)), 0));
  // Allocation expired (expires == now, and in the past).
  for (Tsc e : {kNow, kNow - 1}) {
    t_.set_alloc_expiry(a_, e);
    expect_punt(cd, PuntReason::Expired);
    expect_punt(send, PuntReason::Expired);
    expect_punt(from_peer1(pattern(10)), PuntReason::Expired);
    expect_punt(from_peer2(pattern(10)), PuntReason::Expired);
  }
  t_.set_alloc_expiry(a_, kLive);
  // Channel expired (the peer then gets a Data indication; tested above).
  t_.add_channel(a_, 0x4003, kPeer2, kPeer2Port, kNow);
  expect_punt(from_client_a(channel_data(0x4003, pattern(10))), PuntReason::Expired);
  // Same frames at a later time: the entries expire with the clock.
  expect_punt(cd, PuntReason::Expired, kLive);
  expect_punt(from_peer1(pattern(10)), PuntReason::Expired, kLive + 5);
}

TEST_F(FastPath, PuntExpiredPermission) {
  uint32_t c = t_.add_alloc(ip4(198, 51, 100, 30), 40000, kServer, 49400);
  t_.add_neighbour(ip4(198, 51, 100, 30), kClientHopMac);
  t_.add_permission(c, kPeer1, kNow);
  t_.add_channel(c, 0x4000, kPeer1, kPeer1Port);
  auto cd = udp_frame(kPortMac, kRouterMac, ip4(198, 51, 100, 30), kServer, 40000, kTurnPort,
                      channel_data(0x4000, pattern(8)));
  expect_punt(cd, PuntReason::NoPermission);
  auto send = udp_frame(kPortMac, kRouterMac, ip4(198, 51, 100, 30), kServer, 40000, kTurnPort,
                        send_indication(sa(kPeer1, kPeer1Port), &static_data(pattern(8)), 0));
  expect_punt(send, PuntReason::NoPermission);
  auto from_peer = udp_frame(kPortMac, kRouterMac, kPeer1, kServer, kPeer1Port, 49400, pattern(8));
  expect_punt(from_peer, PuntReason::Expired);
}

TEST_F(FastPath, PuntNoPermission) {
  const uint32_t stranger = ip4(203, 0, 113, 77);
  t_.add_neighbour(stranger, kPeer2HopMac);
  // Channel bound but the permission is gone (the sync removed only the permission).
  uint32_t c = t_.add_alloc(ip4(198, 51, 100, 31), 40001, kServer, 49401);
  t_.add_channel(c, 0x4000, stranger, 9);
  expect_punt(udp_frame(kPortMac, kRouterMac, ip4(198, 51, 100, 31), kServer, 40001, kTurnPort,
                        channel_data(0x4000, pattern(8))),
              PuntReason::NoPermission);
  expect_punt(from_client_a(send_indication(sa(stranger, 9), &static_data(pattern(8)), 0)), PuntReason::NoPermission);
  expect_punt(udp_frame(kPortMac, kRouterMac, stranger, kServer, 9, kRelayAPort, pattern(8)), PuntReason::UnknownFlow);
}

TEST_F(FastPath, PuntUnknownNextHop) {
  // Peer without a neighbour entry.
  expect_punt(from_client_a(channel_data(0x4001, pattern(8))), PuntReason::NoNeighbour);
  expect_punt(from_client_a(send_indication(sa(kPeerNoHop, 5), &static_data(pattern(8)), 0)), PuntReason::NoNeighbour);
  // Client without one.
  uint32_t c = t_.add_alloc(ip4(198, 51, 100, 40), 40002, kServer, 49402);
  t_.add_permission(c, kPeer1);
  expect_punt(udp_frame(kPortMac, kRouterMac, kPeer1, kServer, kPeer1Port, 49402, pattern(8)), PuntReason::NoNeighbour);
}

TEST_F(FastPath, PuntStunRequestsAndOtherMethods) {
  std::vector<uint8_t> buf(512);
  stun::MessageBuilder allocate(MutableBytes(buf), stun::Method::Allocate, stun::Class::Request, Bytes(kTxid));
  allocate.add_requested_transport(17).add_fingerprint();
  Bytes m = allocate.finish();
  expect_punt(from_client_a({m.begin(), m.end()}), PuntReason::Control);
  stun::MessageBuilder refresh(MutableBytes(buf), stun::Method::Refresh, stun::Class::Request, Bytes(kTxid));
  refresh.add_u32(stun::Attr::Lifetime, 0);
  m = refresh.finish();
  expect_punt(from_client_a({m.begin(), m.end()}), PuntReason::Control);
  stun::MessageBuilder binding(MutableBytes(buf), stun::Method::Binding, stun::Class::Request, Bytes(kTxid));
  m = binding.finish();
  expect_punt(from_client_b({m.begin(), m.end()}), PuntReason::Control);
  // Not STUN (no magic cookie) and not ChannelData: the kernel decides.
  expect_punt(from_client_a(pattern(30, 0)), PuntReason::NotTurn);  // first byte 0x00
  std::vector<uint8_t> rtp = pattern(30);
  rtp[0] = 0x80;
  expect_punt(from_client_a(rtp), PuntReason::NotTurn);
  expect_punt(from_client_a({}), PuntReason::NotTurn);
  // Channel number 0x3FFF is in the STUN range of the first byte (RFC 7983):
  // not a ChannelData message; without a cookie it is the kernel's to reject.
  expect_punt(from_client_a(channel_data(0x3FFF, pattern(20))), PuntReason::NotTurn);
  // UDP to a port that is neither the TURN port nor a relay port.
  expect_punt(udp_frame(kPortMac, kRouterMac, kPeer1, kServer, kPeer1Port, 22, pattern(8)), PuntReason::NotTurn);
  // Relay port range, but not one of our relay addresses.
  expect_punt(udp_frame(kPortMac, kRouterMac, kPeer1, ip4(192, 0, 2, 99), kPeer1Port, kRelayAPort, pattern(8)),
              PuntReason::NotTurn);
}

// An IPv6 peer in a Send indication on an IPv4 relay: the relay cannot
// reach it (RFC 8656 §10.2 discards); dropped and counted as such.
TEST_F(FastPath, DropIpv6PeerInSendIndicationOnIpv4Relay) {
  SocketAddress v6 = *SocketAddress::parse("[2001:db8::5]:6000");
  auto data = pattern(12);
  expect_drop(from_client_a(send_indication(v6, &data, kSoftwareBefore | kFingerprint)), Drop::FamilyMismatch);
}

TEST_F(FastPath, PuntNonIpv4UdpFrames) {
  // ARP request.
  std::vector<uint8_t> arp(42, 0);
  std::memset(arp.data(), 0xFF, 6);
  std::memcpy(arp.data() + 6, kRouterMac.b, 6);
  store_be16(arp.data() + 12, 0x0806);
  const uint8_t arp_body[] = {0, 1, 8, 0, 6, 4, 0, 1};
  std::memcpy(arp.data() + 14, arp_body, sizeof arp_body);
  std::memcpy(arp.data() + 22, kRouterMac.b, 6);
  expect_punt(arp, PuntReason::Arp);
  // IPv4 with options (IHL 6).
  auto opt = from_client_a(channel_data(0x4000, pattern(8)));
  opt.insert(opt.begin() + 34, {1, 1, 1, 1});
  opt[14] = 0x46;
  store_be16(opt.data() + 16, static_cast<uint16_t>(load_be16(opt.data() + 16) + 4));
  expect_punt(opt, PuntReason::Other);
  // Fragments: first (MF), middle, last (offset only), and DF+MF.
  for (uint16_t frag : {0x2000, 0x2010, 0x0010, 0x6000}) {
    auto f = from_client_a(channel_data(0x4000, pattern(8)));
    store_be16(f.data() + 20, frag);
    refresh_checksums(f);
    expect_punt(f, PuntReason::Other);
  }
  // An IPv6 EtherType over an IPv4 header lies: dropped. VLAN, TCP, ICMP: the kernel's.
  auto v6 = from_client_a(channel_data(0x4000, pattern(8)));
  store_be16(v6.data() + 12, 0x86DD);
  expect_drop(v6, Drop::Malformed);
  auto vlan = from_client_a(channel_data(0x4000, pattern(8)));
  store_be16(vlan.data() + 12, 0x8100);
  expect_punt(vlan, PuntReason::Other);
  for (uint8_t proto : {6, 1}) {
    auto f = from_client_a(channel_data(0x4000, pattern(8)));
    f[23] = proto;
    refresh_checksums(f);
    expect_punt(f, PuntReason::Other);
  }
}

// ---- drops ------------------------------------------------------------------------------

TEST_F(FastPath, DropMalformedFrames) {
  auto good = from_client_a(channel_data(0x4000, pattern(20)));
  // IPv4 total length beyond the frame.
  auto f = good;
  set16(f, 16, static_cast<uint16_t>(((f.at(16) << 8) | f.at(17)) + 1));
  expect_drop(f, Drop::Malformed);
  // Frame cut short (length fields as received).
  expect_drop(std::vector<uint8_t>(good.begin(), good.end() - 5), Drop::Malformed);
  expect_drop(std::vector<uint8_t>(good.begin(), good.begin() + 30), Drop::Malformed);
  expect_drop(std::vector<uint8_t>(good.begin(), good.begin() + 10), Drop::Malformed);
  // UDP length longer than the IP payload.
  f = good;
  store_be16(f.data() + 38, static_cast<uint16_t>(load_be16(f.data() + 38) + 1));
  expect_drop(f, Drop::Malformed);
  // UDP length below its header, IPv4 total below its header / below IP+UDP.
  f = good;
  store_be16(f.data() + 38, 7);
  expect_drop(f, Drop::Malformed);
  f = good;
  store_be16(f.data() + 16, 19);
  expect_drop(f, Drop::Malformed);
  f = good;
  store_be16(f.data() + 16, 27);
  expect_drop(f, Drop::Malformed);
  // Not version 4.
  f = good;
  f[14] = 0x55;
  expect_drop(f, Drop::Malformed);
}

TEST_F(FastPath, DropCorruptedIpv4HeaderChecksum) {
  // A header whose checksum does not verify (a TTL bit flipped in transit)
  // must not be forwarded under a freshly computed checksum.
  auto f = from_client_a(channel_data(0x4000, pattern(20)));
  f[14 + 8] ^= 0x01;
  expect_drop(f, Drop::Malformed);
}

TEST_F(FastPath, DropBadChannelData) {
  // Length field beyond the datagram.
  auto p = channel_data(0x4000, pattern(20));
  store_be16(p.data() + 2, 21);
  expect_drop(from_client_a(p), Drop::BadChannelData);
  // Shorter than its header.
  expect_drop(from_client_a({0x40, 0x00, 0x00}), Drop::BadChannelData);
  // Reserved channel numbers (RFC 8656 §12).
  expect_drop(from_client_a(channel_data(0x5000, pattern(4))), Drop::BadChannelData);
  expect_drop(from_client_a(channel_data(0x7FFF, pattern(4))), Drop::BadChannelData);
}

TEST_F(FastPath, DropBadSendIndication) {
  auto data = pattern(10);
  expect_drop(from_client_a(send_indication(sa(kPeer2, kPeer2Port), nullptr, kSoftwareBefore | kFingerprint)),
              Drop::BadSendIndication);
  expect_drop(from_client_a(send_indication(sa(kPeer2, kPeer2Port), &data, kSoftwareBefore, false)),
              Drop::BadSendIndication);
  // STUN length disagreeing with the datagram.
  auto m = send_indication(sa(kPeer2, kPeer2Port), &data, 0);
  auto longer = m;
  longer.push_back(0);
  expect_drop(from_client_a(longer), Drop::BadSendIndication);
  // An attribute running past the message.
  auto overrun = m;
  store_be16(overrun.data() + 20 + 12 + 2, 200);  // DATA's length (after the 12-byte XOR-PEER-ADDRESS)
  expect_drop(from_client_a(overrun), Drop::BadSendIndication);
  // XOR-PEER-ADDRESS of the wrong size or family.
  auto bad = m;
  bad[20 + 5] = 0x03;
  expect_drop(from_client_a(bad), Drop::BadSendIndication);
  bad = m;
  store_be16(bad.data() + 22, 4);  // length 4: the following bytes become attributes
  expect_drop(from_client_a(bad), Drop::BadSendIndication);
}

// ---- no room: never write outside the buffer ---------------------------------------------

TEST_F(FastPath, NoHeadroomForDataIndicationIsTooBig) {
  auto data = pattern(100);
  for (uint16_t headroom : {0, 1, 20, 35}) {
    Buf b(from_peer2(data), headroom);
    Verdict v = run(b);
    EXPECT_EQ(v.kind, Verdict::Drop) << headroom;
    EXPECT_EQ(v.drop, Drop::TooBig);
  }
  Buf ok(from_peer2(data), 36, 0);  // exactly enough: 36 bytes in front, 100 needs no padding
  EXPECT_EQ(run(ok).kind, Verdict::Tx);
  // Tailroom for the padding: 101 bytes need 3 more at the end.
  auto odd = pattern(101);
  Buf tight(from_peer2(odd), 64, 2);
  Verdict v = run(tight);
  EXPECT_EQ(v.kind, Verdict::Drop);
  EXPECT_EQ(v.drop, Drop::TooBig);
  Buf fits(from_peer2(odd), 36, 3);
  ASSERT_EQ(run(fits).kind, Verdict::Tx);
  expect_data_indication(fits.out(), kClientHopMac, kClientA, kClientAPort, sa(kPeer2, kPeer2Port), odd, t_.txn, a_);
}

TEST_F(FastPath, NoHeadroomForChannelDataToClientIsTooBig) {
  for (uint16_t headroom : {0, 3}) {
    Buf b(from_peer1(pattern(50)), headroom, 0);
    Verdict v = run(b);
    EXPECT_EQ(v.kind, Verdict::Drop);
    EXPECT_EQ(v.drop, Drop::TooBig);
  }
  Buf b(from_peer1(pattern(50)), 4, 0);
  EXPECT_EQ(run(b).kind, Verdict::Tx);
  // Hairpin into a Data indication with no room.
  t_.add_channel(a_, 0x4010, kRelay2, kRelayBPort);
  t_.add_permission(a_, kRelay2);
  t_.add_permission(b_, kServer);
  Buf h(from_client_a(channel_data(0x4010, pattern(50))), 31, 0);  // 4 come free from the ChannelData header
  Verdict v = run(h);
  EXPECT_EQ(v.kind, Verdict::Drop);
  EXPECT_EQ(v.drop, Drop::TooBig);
}

}  // namespace
}  // namespace turn::dp::fastpath_test
