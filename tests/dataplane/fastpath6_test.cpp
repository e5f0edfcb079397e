// SPDX-License-Identifier: Apache-2.0
// IPv6 flows (tests/dataplane/fastpath_fixture.h).
#include "tests/dataplane/fastpath_fixture.h"

namespace turn::dp::fastpath_test {
namespace {

TEST_F(FastPath6, ChannelDataToPeerExactBytes) {
  for (size_t len : {0u, 1u, 3u, 160u, 1201u}) {
    auto data = pattern(len, static_cast<uint8_t>(len));
    for (size_t padding : {0u, 3u}) {
      Buf b(from_client6(channel_data(0x4000, data, padding, 0xE7)));
      Verdict v = run(b);
      ASSERT_EQ(v.kind, Verdict::Tx) << len;
      EXPECT_EQ(v.path, Path::ChannelDataToPeer);
      EXPECT_EQ(v.port, 1) << "the peer's next hop is on port 1";
      EXPECT_EQ(v.alloc, a6_);
      EXPECT_EQ(v.bytes, len);
      EXPECT_FALSE(v.offload) << "IPv6 has no header checksum; the UDP one is updated incrementally";
      auto want = udp6_frame(kPeerHopMac, kPort1Mac, kServer6, kPeer6, kRelayAPort, kPeer1Port, data);
      EXPECT_EQ(b.out(), want) << "len " << len << " padding " << padding << "\ngot\n"
                               << hex(b.out()) << "\nwant\n"
                               << hex(want);
    }
  }
}

TEST_F(FastPath6, SendIndicationToPeerExactBytes) {
  for (unsigned shape : {0u, 1u, 3u, 15u}) {
    for (size_t len : {0u, 5u, 200u}) {
      auto& data = static_data(pattern(len, static_cast<uint8_t>(shape)));
      SocketAddress peer = *SocketAddress::parse("[2001:db8:2::5]:6000");
      Buf b(from_client6(send_indication(peer, &data, shape)));
      Verdict v = run(b);
      ASSERT_EQ(v.kind, Verdict::Tx) << shape << " " << len;
      EXPECT_EQ(v.path, Path::SendIndicationToPeer);
      EXPECT_EQ(b.out(), udp6_frame(kPeerHopMac, kPort1Mac, kServer6, kPeer6, kRelayAPort, kPeer1Port, data));
    }
  }
  // An IPv4 peer on an IPv6 relay cannot be reached (RFC 8656 §10.2): dropped and counted.
  auto& data = static_data(pattern(8));
  expect_drop(from_client6(send_indication(*SocketAddress::parse("203.0.113.5:6000"), &data, 0)), Drop::FamilyMismatch);
  // An IPv6 peer without a permission: the kernel path decides.
  expect_punt(from_client6(send_indication(*SocketAddress::parse("[2001:db8:2::99]:6000"), &data, 0)),
              PuntReason::NoPermission);
}

TEST_F(FastPath6, PeerToClientChannelDataAndDataIndication) {
  auto data = pattern(77);
  Buf b(from_peer6(data));
  Verdict v = run(b);
  ASSERT_EQ(v.kind, Verdict::Tx);
  EXPECT_EQ(v.path, Path::PeerToClientChannelData);
  EXPECT_EQ(v.port, 0);
  EXPECT_EQ(b.out(), udp6_frame(kClientHopMac, kPortMac, kServer6, kClient6, kTurnPort, kClientAPort,
                                channel_data(0x4000, data)));
  // From a permitted peer port without a channel: a Data indication whose
  // XOR-PEER-ADDRESS (IPv6: XORed with cookie and transaction id) decodes.
  Buf d(udp6_frame(kPort1Mac, kRouterMac, kPeer6, kServer6, 6001, kRelayAPort, data, 51));
  Verdict w = run(d);
  ASSERT_EQ(w.kind, Verdict::Tx);
  EXPECT_EQ(w.path, Path::PeerToClientDataIndication);
  auto out = d.out();
  ASSERT_GT(out.size(), 62u);
  EXPECT_EQ(load_be16(out.data() + 12), 0x86DD);
  EXPECT_EQ(load_be16(out.data() + 14 + 40 + 6),
            ref_udp6_checksum(out.data() + 22, out.data() + 38, out.data() + 54, out.size() - 54));
  Bytes payload(out.data() + 62, out.size() - 62);
  stun::MessageView m;
  ASSERT_EQ(stun::parse(payload, m), stun::ParseError::Ok);
  EXPECT_EQ(m.method(), stun::Method::Data);
  const stun::AttributeRef* xp = m.find(stun::Attr::XorPeerAddress);
  ASSERT_NE(xp, nullptr);
  auto addr = stun::read_xor_address(m.value(*xp), m.xor_mask());
  ASSERT_TRUE(addr.ok());
  EXPECT_EQ(addr.value(), *SocketAddress::parse("[2001:db8:2::5]:6001")) << addr.value().to_string();
  const stun::AttributeRef* dd = m.find(stun::Attr::Data);
  ASSERT_NE(dd, nullptr);
  Bytes got = m.value(*dd);
  EXPECT_EQ(std::vector<uint8_t>(got.begin(), got.end()), data);
}

// As ClientOnAnotherInterfaceIsPunted, for an IPv6 client that reached an
// address no port carries.
TEST_F(FastPath6, ClientOnAnotherInterfaceIsPunted) {
  pc_.local6.add(kServer6);
  const Ip6 inside_server = ip6("fd00:10::10"), inside_client = ip6("fd00:10::50");
  uint32_t c = t_.add_alloc6(inside_client, 40010, inside_server, kTurnPort, kServer6, 49410);
  t_.add_neighbour6(inside_client, kClientBHopMac, 0);
  t_.add_permission6(c, kPeer6);
  expect_punt(udp6_frame(kPort1Mac, kRouterMac, kPeer6, kServer6, kPeer1Port, 49410, pattern(8), 51),
              PuntReason::NoNeighbour);
  Buf b(from_peer6(pattern(8)));  // a client of the port's own address: fast path
  EXPECT_EQ(run(b).kind, Verdict::Tx);
}

TEST_F(FastPath6, HairpinBetweenTwoIpv6Allocations) {
  uint32_t b6 = t_.add_alloc6(ip6("2001:db8:c::3"), kClientBPort, kServer6, kTurnPort, kRelay6b, kRelayBPort);
  t_.add_neighbour6(ip6("2001:db8:c::3"), kClientBHopMac, 0);
  t_.add_permission6(b6, kServer6);
  t_.add_permission6(a6_, kRelay6b);
  auto& data = static_data(pattern(50));
  SocketAddress to_b = *SocketAddress::parse("[2001:db8:1::11]:49300");
  Buf b(from_client6(send_indication(to_b, &data, 0)));
  Verdict v = run(b);
  ASSERT_EQ(v.kind, Verdict::Tx);
  EXPECT_EQ(v.path, Path::Hairpin);
  EXPECT_EQ(v.alloc, b6);
  EXPECT_EQ(v.from_alloc, a6_);
  auto out = b.out();
  EXPECT_EQ(load_be16(out.data() + 14 + 40 + 6),
            ref_udp6_checksum(out.data() + 22, out.data() + 38, out.data() + 54, out.size() - 54));
}

TEST_F(FastPath6, WhatTheKernelKeepsAndWhatIsDropped) {
  auto cd = from_client6(channel_data(0x4000, pattern(20)));
  auto zero = cd;
  set16(zero, 14 + 40 + 6, 0);  // UDP checksum 0 is invalid over IPv6
  expect_drop(zero, Drop::Malformed);
  auto lying = cd;
  set16(lying, 14 + 4, 2000);  // payload length beyond the frame
  expect_drop(lying, Drop::Malformed);
  auto ext = cd;
  ext.at(14 + 6) = 0;  // hop-by-hop extension header
  expect_punt(ext, PuntReason::Ipv6);
  auto icmp = cd;
  icmp.at(14 + 6) = 58;  // ICMPv6 (neighbour discovery)
  expect_punt(icmp, PuntReason::Ipv6);
  expect_punt(from_client6(channel_data(0x4001, pattern(20))), PuntReason::UnknownFlow);
  expect_drop(std::vector<uint8_t>(cd.begin(), cd.begin() + 40), Drop::Malformed);
}

TEST_F(FastPath6, MutatedFramesNeverEscapeTheBuffer) {
  std::mt19937 rng(6);
  auto& data = static_data(pattern(40));
  std::vector<std::vector<uint8_t>> seeds = {
      from_client6(channel_data(0x4000, pattern(40))),
      from_client6(send_indication(*SocketAddress::parse("[2001:db8:2::5]:6000"), &data, 3)), from_peer6(pattern(33))};
  for (int round = 0; round < 3000; ++round) {
    auto f = seeds[static_cast<size_t>(round) % seeds.size()];
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) f[14 + rng() % (f.size() - 14)] = static_cast<uint8_t>(rng());
    if (rng() % 4 == 0) f.resize(14 + rng() % (f.size() - 14));
    Buf b(f, 64, 16);
    run(b);
  }
}

}  // namespace
}  // namespace turn::dp::fastpath_test
