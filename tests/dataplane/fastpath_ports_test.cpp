// SPDX-License-Identifier: Apache-2.0
// Several ports (route-based egress, the egress port's MAC, tx checksum
// offload), the route table, and the neighbour probes (tests/dataplane/fastpath_fixture.h).
#include "tests/dataplane/fastpath_fixture.h"

namespace turn::dp::fastpath_test {
namespace {

// ---- several ports: route-based egress, the egress port's MAC, tx checksum offload

// ChannelData from a client on port 0 to a peer whose next hop is on port 1
// (the internal side of a dual-homed edge): leaves by port 1 with port 1's
// MAC as the source; the reply from the peer leaves by port 0.
TEST_F(FastPath, EgressPortAndSourceMacFollowTheRoute) {
  t_.add_neighbour(kPeer1, kPeerHopMac, 1);
  auto data = pattern(100);
  Buf b(from_client_a(channel_data(0x4000, data)));
  Verdict v = run(b);
  ASSERT_EQ(v.kind, Verdict::Tx);
  EXPECT_EQ(v.port, 1);
  EXPECT_FALSE(v.offload);
  EXPECT_EQ(b.out(), udp_frame(kPeerHopMac, kPort1Mac, kServer, kPeer1, kRelayAPort, kPeer1Port, data, kOut));
  Buf r(from_peer1(data));
  Verdict w = run(r);
  ASSERT_EQ(w.kind, Verdict::Tx);
  EXPECT_EQ(w.port, 0);
  EXPECT_EQ(0, std::memcmp(r.out().data() + 6, kPortMac.b, 6));
}

// A client that reached turn-control on an address none of our ports
// carries (the kernel-owned interface of a dual-homed host): its peer data
// goes to the kernel, which answers from that address over that interface.
TEST_F(FastPath, ClientOfAnotherInterfaceIsTheKernelsToAnswer) {
  auto data = pattern(30);
  pc_.local4.add(kServer);
  Buf ours(from_peer1(data));
  EXPECT_EQ(run(ours).kind, Verdict::Tx) << "the client talks to this port's address";
  pc_.local4 = {};
  pc_.local4.add(ip4(192, 0, 2, 99));
  expect_punt(from_peer1(data), PuntReason::NoNeighbour);
}

TEST_F(FastPath, ChecksumOffloadLeavesExactlyWhatTheNicCompletes) {
  for (bool to_port1 : {false, true}) {
    t_.add_neighbour(kPeer1, kPeerHopMac, to_port1 ? 1 : 0);
    for (size_t len : {0u, 1u, 7u, 200u, 1201u}) {
      auto data = pattern(len, static_cast<uint8_t>(len));
      // Software checksums (no offload anywhere) are the reference.
      pc_.csum_offload = 0;
      Buf soft(from_client_a(channel_data(0x4000, data)));
      ASSERT_EQ(run(soft).kind, Verdict::Tx);
      // Offload on port 1 only: only frames leaving by port 1 use it.
      pc_.csum_offload = 0b10;
      Buf hard(from_client_a(channel_data(0x4000, data)));
      Verdict v = run(hard);
      ASSERT_EQ(v.kind, Verdict::Tx);
      EXPECT_EQ(v.offload, to_port1);
      EXPECT_EQ(v.port, to_port1 ? 1 : 0);
      auto got = to_port1 ? complete_offload(hard.out()) : hard.out();
      EXPECT_EQ(got, soft.out()) << "len " << len << " port " << to_port1;
      // Peer -> client (ChannelData and Data indication) through port 1 too.
    }
  }
  pc_.csum_offload = 0b01;
  auto data = pattern(33);
  Buf soft_in(from_peer1(data));
  pc_.csum_offload = 0;
  ASSERT_EQ(run(soft_in).kind, Verdict::Tx);
  pc_.csum_offload = 0b01;
  Buf hard_in(from_peer1(data));
  Verdict v = run(hard_in);
  ASSERT_EQ(v.kind, Verdict::Tx);
  EXPECT_TRUE(v.offload);
  EXPECT_EQ(complete_offload(hard_in.out()), soft_in.out());
}

uint32_t cidr_mask(unsigned bits) { return bits == 0 ? 0 : htonl(~uint32_t{0} << (32 - bits)); }

TEST(RouteTable, LinksThenLongestRouteThenDefault) {
  RouteTable rt;
  // port 0: external 192.0.2.10/24 with the default gateway .1;
  // port 1: internal 10.1.0.10/16; 10.2.0.0/16 and 10.2.5.0/24 behind internal routers.
  rt.set({{ip4(192, 0, 2, 10), cidr_mask(24), ip4(192, 0, 2, 1)}, {ip4(10, 1, 0, 10), cidr_mask(16), 0}},
         {{ip4(10, 2, 0, 0), cidr_mask(16), ip4(10, 1, 0, 1)}, {ip4(10, 2, 5, 0), cidr_mask(24), ip4(10, 1, 0, 2)}});
  uint8_t port = 99;
  uint32_t hop = 0;
  ASSERT_TRUE(rt.route(ip4(192, 0, 2, 77), port, hop));
  EXPECT_EQ(port, 0);
  EXPECT_EQ(hop, ip4(192, 0, 2, 77)) << "on link: the destination itself";
  ASSERT_TRUE(rt.route(ip4(10, 1, 200, 3), port, hop));
  EXPECT_EQ(port, 1);
  EXPECT_EQ(hop, ip4(10, 1, 200, 3));
  ASSERT_TRUE(rt.route(ip4(10, 2, 9, 9), port, hop));
  EXPECT_EQ(port, 1);
  EXPECT_EQ(hop, ip4(10, 1, 0, 1));
  ASSERT_TRUE(rt.route(ip4(10, 2, 5, 9), port, hop));
  EXPECT_EQ(hop, ip4(10, 1, 0, 2)) << "longest prefix wins whatever the config order";
  ASSERT_TRUE(rt.route(ip4(8, 8, 8, 8), port, hop));
  EXPECT_EQ(port, 0);
  EXPECT_EQ(hop, ip4(192, 0, 2, 1)) << "default gateway";
  EXPECT_TRUE(rt.on_link(1, ip4(10, 1, 3, 4)));
  EXPECT_FALSE(rt.on_link(0, ip4(10, 1, 3, 4)));
  EXPECT_FALSE(rt.on_link(7, ip4(10, 1, 3, 4))) << "no such port";

  RouteTable no_default;
  no_default.set({{ip4(10, 1, 0, 10), cidr_mask(16), 0}}, {});
  EXPECT_FALSE(no_default.route(ip4(8, 8, 8, 8), port, hop)) << "nothing routes it: the kernel path decides";

  RouteTable bad;
  EXPECT_THROW(bad.set({{ip4(10, 1, 0, 10), cidr_mask(16), 0}}, {{ip4(10, 2, 0, 0), cidr_mask(16), ip4(10, 9, 0, 1)}}),
               std::invalid_argument);
  EXPECT_THROW(bad.set({}, {}), std::invalid_argument);
}

// ---- neighbour probes (the service lcore asks for its gateways itself) ---------

TEST(NeighbourProbe, ArpRequestForTheGateway) {
  uint8_t f[64];
  std::memset(f, 0xEE, sizeof f);
  ASSERT_EQ(write_arp_request(f, kPortMac, ip4(192, 0, 2, 10), ip4(192, 0, 2, 1)), 42u);
  const uint8_t want[42] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0,  0, 0xAA, 0x08, 0x06,  // Ethernet
                            0,    1,    0x08, 0,    6,    4,    0,    1,                              // request
                            0x02, 0,    0,    0,    0,    0xAA, 192,  0, 2, 10,                       // sender
                            0,    0,    0,    0,    0,    0,    192,  0, 2, 1};                       // target
  EXPECT_EQ(0, std::memcmp(f, want, 42));
  EXPECT_EQ(f[42], 0xEE) << "nothing written past the frame";
}

TEST(NeighbourProbe, NeighbourSolicitationToTheSolicitedNodeAddress) {
  uint8_t f[100];
  std::memset(f, 0xEE, sizeof f);
  Ip6 src{}, dst{};
  inet_pton(AF_INET6, "2001:db8:1::10", src.b);
  inet_pton(AF_INET6, "2001:db8:1::1:2:3", dst.b);
  ASSERT_EQ(write_neighbour_solicitation(f, kPortMac, src, dst), 86u);
  EXPECT_EQ(f[86], 0xEE);
  const uint8_t want_mac[6] = {0x33, 0x33, 0xff, dst.b[13], dst.b[14], dst.b[15]};  // RFC 2464 §7
  EXPECT_EQ(0, std::memcmp(f, want_mac, 6));
  EXPECT_EQ(load_be16(f + 12), 0x86DD);
  const uint8_t* ip = f + 14;
  EXPECT_EQ(ip[6], 58);
  EXPECT_EQ(ip[7], 255) << "RFC 4861 §7.1.1: hop limit 255";
  Ip6 solicited{};
  inet_pton(AF_INET6, "ff02::1:ff00:0", solicited.b);
  for (int i = 13; i < 16; ++i) solicited.b[i] = dst.b[i];
  EXPECT_EQ(0, std::memcmp(ip + 24, solicited.b, 16));
  const uint8_t* ns = ip + 40;
  EXPECT_EQ(ns[0], 135);
  EXPECT_EQ(0, std::memcmp(ns + 8, dst.b, 16));
  EXPECT_EQ(ns[24], 1);
  EXPECT_EQ(0, std::memcmp(ns + 26, kPortMac.b, 6));
  // ICMPv6 checksum over the pseudo header: the whole sum folds to 0xFFFF.
  std::vector<uint8_t> b(ip + 8, ip + 40);
  b.insert(b.end(), {0, 0, 0, 32, 0, 0, 0, 58});
  b.insert(b.end(), ns, ns + 32);
  EXPECT_EQ(ref_fold_complement(b), 0) << "checksum verifies";
}

}  // namespace
}  // namespace turn::dp::fastpath_test
