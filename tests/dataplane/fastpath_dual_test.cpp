// SPDX-License-Identifier: Apache-2.0
// Dual-stack allocations: both halves, across families
// (tests/dataplane/fastpath_fixture.h).
#include "tests/dataplane/fastpath_fixture.h"

namespace turn::dp::fastpath_test {
namespace {

// ---- dual-stack allocations: both halves, across families -------------------------
//
// RFC 8656 §7.2 (ADDITIONAL-ADDRESS-FAMILY): one allocation, an IPv4 and an
// IPv6 relayed address; a permission or channel for a peer belongs to the
// relayed address of the peer's family (§9, §12). The half of the other
// family than the client's relays with the IP version translated: IPv4 in,
// IPv6 out and the reverse, headers of another size, checksums that must
// still be exact (a full recomputation by the reference, never by the code
// under test).

class FastPathDual : public FastPath6 {
 protected:
  const uint32_t kClientD4 = ip4(198, 51, 100, 30);  // IPv4 client of the dual allocation d4_
  const Ip6 kClientD6 = ip6("2001:db8:c::7");        // IPv6 client of the dual allocation d6_
  const Ip6 kPeer6b = ip6("2001:db8:2::6");          // an IPv6 peer without a permission
  static constexpr uint16_t kClientD4Port = 50030, kClientD6Port = 50040;
  static constexpr uint16_t kD4Relay4 = 49500, kD4Relay6 = 49600, kD6Relay6 = 49700, kD6Relay4 = 49800;
  void SetUp() override {
    FastPath6::SetUp();
    // d4_: IPv4 client; IPv4 relay kServer:49500, IPv6 relay [kServer6]:49600.
    d4_ = t_.add_dual4(kClientD4, kClientD4Port, kServer, kD4Relay4, kServer6, kD4Relay6);
    t_.add_permission(d4_, kPeer1);
    t_.add_permission6(d4_, kPeer6);
    t_.add_channel6(d4_, 0x4000, kPeer6, kPeer1Port);  // across: IPv6 peer, IPv4 client
    t_.add_channel(d4_, 0x4001, kPeer1, kPeer1Port);   // the same-family half
    t_.add_neighbour(kClientD4, kClientHopMac, 0);
    // d6_: IPv6 client; IPv6 relay [kServer6]:49700, IPv4 relay kServer:49800.
    d6_ = t_.add_dual6(kClientD6, kClientD6Port, kServer6, kTurnPort, kServer6, kD6Relay6, kServer, kD6Relay4);
    t_.add_permission(d6_, kPeer2);
    t_.add_permission6(d6_, kPeer6);
    t_.add_channel(d6_, 0x4000, kPeer2, kPeer2Port);   // across: IPv4 peer, IPv6 client
    t_.add_channel6(d6_, 0x4002, kPeer6, kPeer1Port);  // the same-family half
    t_.add_neighbour6(kClientD6, kClientBHopMac, 0);
  }
  std::vector<uint8_t> from_d4(const std::vector<uint8_t>& payload, const Ip4Opts& o = kIn) {
    return udp_frame(kPortMac, kRouterMac, kClientD4, kServer, kClientD4Port, kTurnPort, payload, o);
  }
  std::vector<uint8_t> from_d6(const std::vector<uint8_t>& payload) {
    return udp6_frame(kPortMac, kRouterMac, kClientD6, kServer6, kClientD6Port, kTurnPort, payload, 51, 0x54321);
  }
  // The IPv6 peer to d4_'s IPv6 relay, and the IPv4 peer to d6_'s IPv4 relay.
  std::vector<uint8_t> peer6_to_d4(const std::vector<uint8_t>& payload, uint16_t from_port = kPeer1Port) {
    return udp6_frame(kPort1Mac, kRouterMac, kPeer6, kServer6, from_port, kD4Relay6, payload, 51);
  }
  std::vector<uint8_t> peer4_to_d6(const std::vector<uint8_t>& payload, const Ip4Opts& o = kIn,
                                   uint16_t from_port = kPeer2Port) {
    return udp_frame(kPortMac, kRouterMac, kPeer2, kServer, from_port, kD6Relay4, payload, o);
  }
  // An IPv6 frame's UDP checksum against a full recomputation.
  static void expect_udp6_checksum(const std::vector<uint8_t>& out) {
    ASSERT_GT(out.size(), 62u);
    ASSERT_EQ(load_be16(out.data() + 12), 0x86DD);
    ASSERT_EQ(load_be16(out.data() + 14 + 4) + 54u, out.size()) << "IPv6 payload length vs frame";
    EXPECT_EQ(load_be16(out.data() + 54 + 6),
              ref_udp6_checksum(out.data() + 22, out.data() + 38, out.data() + 54, out.size() - 54));
  }
  SocketAddress peer6_addr(uint16_t port) const {
    SocketAddress a;
    a.ip = IpAddress::v6(kPeer6.b);
    a.port = port;
    return a;
  }
  uint32_t d4_ = 0, d6_ = 0;
};

// IPv4 client -> IPv6 peer: ChannelData on the channel bound to the IPv6
// peer leaves as IPv6/UDP from the IPv6 relayed address, 20 bytes more of
// header, with an exact UDP checksum, also when the IPv4 datagram had none
// (RFC 8200 §8.1: mandatory over IPv6).
TEST_F(FastPathDual, Ipv4ClientChannelDataToIpv6Peer) {
  for (size_t len : {0u, 1u, 3u, 160u, 1201u}) {
    auto data = pattern(len, static_cast<uint8_t>(len + 3));
    for (size_t padding : {0u, 3u}) {
      for (bool checksum : {true, false}) {
        SCOPED_TRACE("len " + std::to_string(len) + " padding " + std::to_string(padding) +
                     (checksum ? " checksum" : " no checksum"));
        Buf b(from_d4(channel_data(0x4000, data, padding, 0xE7), checksum ? kIn : kInNoCsum));
        Verdict v = run(b);
        ASSERT_EQ(v.kind, Verdict::Tx);
        EXPECT_EQ(v.path, Path::ChannelDataToPeer);
        EXPECT_TRUE(v.to_peer);
        EXPECT_EQ(v.alloc, d4_);
        EXPECT_EQ(v.bytes, len);
        EXPECT_EQ(v.port, 1) << "the IPv6 peer's next hop is on port 1";
        EXPECT_FALSE(v.offload) << "IPv6 out: software checksum";
        auto want = udp6_frame(kPeerHopMac, kPort1Mac, kServer6, kPeer6, kD4Relay6, kPeer1Port, data);
        EXPECT_EQ(b.out(), want) << "got\n" << hex(b.out()) << "\nwant\n" << hex(want);
      }
    }
  }
}

TEST_F(FastPathDual, Ipv4ClientSendIndicationToIpv6Peer) {
  for (unsigned shape : {0u, 1u, 3u, 15u}) {
    for (size_t len : {0u, 5u, 200u}) {
      for (bool checksum : {true, false}) {
        SCOPED_TRACE("shape " + std::to_string(shape) + " len " + std::to_string(len));
        auto& data = static_data(pattern(len, static_cast<uint8_t>(shape + 40)));
        Buf b(from_d4(send_indication(peer6_addr(kPeer1Port), &data, shape), checksum ? kIn : kInNoCsum));
        Verdict v = run(b);
        ASSERT_EQ(v.kind, Verdict::Tx);
        EXPECT_EQ(v.path, Path::SendIndicationToPeer);
        EXPECT_EQ(v.alloc, d4_);
        EXPECT_EQ(v.bytes, len);
        EXPECT_EQ(b.out(), udp6_frame(kPeerHopMac, kPort1Mac, kServer6, kPeer6, kD4Relay6, kPeer1Port, data));
      }
    }
  }
}

// IPv6 peer -> IPv4 client: ChannelData (channel bound) or a Data
// indication whose XOR-PEER-ADDRESS is the IPv6 peer, over IPv4 from the
// address the client sent to, with IPv4 and UDP checksums exact.
TEST_F(FastPathDual, Ipv6PeerToIpv4Client) {
  for (size_t len : {0u, 1u, 2u, 3u, 99u, 1201u}) {
    SCOPED_TRACE("len " + std::to_string(len));
    auto data = pattern(len, 21);
    Buf b(peer6_to_d4(data));
    Verdict v = run(b);
    ASSERT_EQ(v.kind, Verdict::Tx);
    EXPECT_EQ(v.path, Path::PeerToClientChannelData);
    EXPECT_FALSE(v.to_peer);
    EXPECT_EQ(v.alloc, d4_);
    EXPECT_EQ(v.bytes, len);
    EXPECT_EQ(v.port, 0);
    expect_output(b, udp_frame(kClientHopMac, kPortMac, kServer, kClientD4, kTurnPort, kClientD4Port,
                               channel_data(0x4000, data), kOut));
    // From a permitted peer port without a channel: a Data indication.
    Buf d(peer6_to_d4(data, 6001));
    Verdict w = run(d);
    ASSERT_EQ(w.kind, Verdict::Tx);
    EXPECT_EQ(w.path, Path::PeerToClientDataIndication);
    EXPECT_EQ(w.alloc, d4_);
    expect_data_indication(d.out(), kClientHopMac, kClientD4, kClientD4Port, peer6_addr(6001), data, t_.txn, d4_);
  }
}

// IPv6 client -> IPv4 peer: 20 bytes less of header.
TEST_F(FastPathDual, Ipv6ClientChannelDataAndSendIndicationToIpv4Peer) {
  for (size_t len : {0u, 1u, 3u, 160u, 1201u}) {
    SCOPED_TRACE("len " + std::to_string(len));
    auto data = pattern(len, static_cast<uint8_t>(len + 7));
    for (size_t padding : {0u, 3u}) {
      Buf b(from_d6(channel_data(0x4000, data, padding, 0xE7)));
      Verdict v = run(b);
      ASSERT_EQ(v.kind, Verdict::Tx);
      EXPECT_EQ(v.path, Path::ChannelDataToPeer);
      EXPECT_EQ(v.alloc, d6_);
      EXPECT_EQ(v.bytes, len);
      expect_output(b, udp_frame(kPeer2HopMac, kPortMac, kServer, kPeer2, kD6Relay4, kPeer2Port, data, kOut));
    }
    for (unsigned shape : {0u, 3u, 15u}) {
      auto& sdata = static_data(data);
      Buf b(from_d6(send_indication(sa(kPeer2, kPeer2Port), &sdata, shape)));
      Verdict v = run(b);
      ASSERT_EQ(v.kind, Verdict::Tx) << shape;
      EXPECT_EQ(v.path, Path::SendIndicationToPeer);
      expect_output(b, udp_frame(kPeer2HopMac, kPortMac, kServer, kPeer2, kD6Relay4, kPeer2Port, data, kOut));
    }
  }
}

// IPv4 peer -> IPv6 client, also from a datagram without a UDP checksum
// (IPv6 needs one: computed over the data).
TEST_F(FastPathDual, Ipv4PeerToIpv6Client) {
  for (size_t len : {0u, 1u, 2u, 3u, 99u, 1201u}) {
    for (bool checksum : {true, false}) {
      SCOPED_TRACE("len " + std::to_string(len) + (checksum ? " checksum" : " no checksum"));
      auto data = pattern(len, 23);
      Buf b(peer4_to_d6(data, checksum ? kIn : kInNoCsum));
      Verdict v = run(b);
      ASSERT_EQ(v.kind, Verdict::Tx);
      EXPECT_EQ(v.path, Path::PeerToClientChannelData);
      EXPECT_EQ(v.alloc, d6_);
      EXPECT_EQ(v.bytes, len);
      auto want = udp6_frame(kClientBHopMac, kPortMac, kServer6, kClientD6, kTurnPort, kClientD6Port,
                             channel_data(0x4000, data));
      EXPECT_EQ(b.out(), want) << "got\n" << hex(b.out()) << "\nwant\n" << hex(want);
      Buf d(peer4_to_d6(data, checksum ? kIn : kInNoCsum, 7001));
      Verdict w = run(d);
      ASSERT_EQ(w.kind, Verdict::Tx);
      EXPECT_EQ(w.path, Path::PeerToClientDataIndication);
      auto out = d.out();
      EXPECT_EQ(0, std::memcmp(out.data(), kClientBHopMac.b, 6));
      EXPECT_EQ(0, std::memcmp(out.data() + 22, kServer6.b, 16));
      EXPECT_EQ(0, std::memcmp(out.data() + 38, kClientD6.b, 16));
      expect_udp6_checksum(out);
      expect_data_indication_at(out, 62, sa(kPeer2, 7001), data);
    }
  }
}

// The same-family halves of both dual-stack allocations are the ordinary paths.
TEST_F(FastPathDual, SameFamilyHalvesAsBefore) {
  auto data = pattern(64);
  Buf b(from_d4(channel_data(0x4001, data)));
  ASSERT_EQ(run(b).kind, Verdict::Tx);
  expect_output(b, udp_frame(kPeerHopMac, kPortMac, kServer, kPeer1, kD4Relay4, kPeer1Port, data, kOut));
  Buf r(udp_frame(kPortMac, kRouterMac, kPeer1, kServer, kPeer1Port, kD4Relay4, data));
  ASSERT_EQ(run(r).kind, Verdict::Tx);
  expect_output(r, udp_frame(kClientHopMac, kPortMac, kServer, kClientD4, kTurnPort, kClientD4Port,
                             channel_data(0x4001, data), kOut));
  Buf c(from_d6(channel_data(0x4002, data)));
  ASSERT_EQ(run(c).kind, Verdict::Tx);
  EXPECT_EQ(c.out(), udp6_frame(kPeerHopMac, kPort1Mac, kServer6, kPeer6, kD6Relay6, kPeer1Port, data));
  Buf p(udp6_frame(kPort1Mac, kRouterMac, kPeer6, kServer6, kPeer1Port, kD6Relay6, data, 51));
  ASSERT_EQ(run(p).kind, Verdict::Tx);
  EXPECT_EQ(p.out(), udp6_frame(kClientBHopMac, kPortMac, kServer6, kClientD6, kTurnPort, kClientD6Port,
                                channel_data(0x4002, data)));
}

// Relay -> relay across families: d4_'s IPv4 client sends to d6_'s IPv6
// relayed address; d6_ (IPv6 client) has a permission for d4_'s IPv6
// relayed address and gets a Data indication, never on the wire. Also from
// a datagram without a UDP checksum.
TEST_F(FastPathDual, HairpinAcrossFamilies) {
  t_.add_permission6(d6_, kServer6);
  SocketAddress to_d6;
  to_d6.ip = IpAddress::v6(kServer6.b);
  to_d6.port = kD6Relay6;
  SocketAddress from_d4_relay = to_d6;
  from_d4_relay.port = kD4Relay6;
  t_.add_permission6(d4_, kServer6);
  for (bool checksum : {true, false}) {
    auto& data = static_data(pattern(50));
    Buf b(from_d4(send_indication(to_d6, &data, 0), checksum ? kIn : kInNoCsum));
    Verdict v = run(b);
    ASSERT_EQ(v.kind, Verdict::Tx);
    EXPECT_EQ(v.path, Path::Hairpin);
    EXPECT_EQ(v.alloc, d6_);
    EXPECT_EQ(v.from_alloc, d4_);
    auto out = b.out();
    EXPECT_EQ(0, std::memcmp(out.data() + 38, kClientD6.b, 16));
    expect_udp6_checksum(out);
    expect_data_indication_at(out, 62, from_d4_relay, data);
  }
}

// What stays on the kernel path or is dropped, each under its reason; a
// punted frame is unchanged although the stage had moved its start for the
// other family's headers.
TEST_F(FastPathDual, PuntsAndDropsAcrossFamilies) {
  auto data = pattern(40);
  auto& sdata = static_data(data);
  SocketAddress peer6b;
  peer6b.ip = IpAddress::v6(kPeer6b.b);
  peer6b.port = 6000;
  // No permission for that IPv6 peer on the IPv6 half: the kernel path decides.
  expect_punt(from_d4(send_indication(peer6b, &sdata, 0)), PuntReason::NoPermission);
  // Its datagrams to the IPv6 relayed address: no permission, unknown flow.
  expect_punt(udp6_frame(kPort1Mac, kRouterMac, kPeer6b, kServer6, 6000, kD4Relay6, data, 51), PuntReason::UnknownFlow);
  // An IPv4 peer of d4_ without a permission (same family, as before).
  expect_punt(from_d4(send_indication(sa(kPeer2, kPeer2Port), &sdata, 0)), PuntReason::NoPermission);
  // Expired permission on the other half.
  t_.add_permission6(d4_, kPeer6b, kNow);
  expect_punt(from_d4(send_indication(peer6b, &sdata, 0)), PuntReason::NoPermission);
  // The IPv6 peer's next hop unknown (after the frame's start was moved
  // for the IPv6 headers): punted as received.
  const Ip6 kPeer6NoHop = ip6("2001:db8:2::99");
  t_.add_permission6(d4_, kPeer6NoHop);
  t_.add_channel6(d4_, 0x4005, kPeer6NoHop, 6000);
  expect_punt(from_d4(channel_data(0x4005, data)), PuntReason::NoNeighbour);
  // The IPv4 client's next hop unknown, for an IPv6 peer's reply.
  uint32_t lonely = t_.add_dual4(ip4(198, 51, 100, 77), 50077, kServer, 49555, kServer6, 49666);
  t_.add_permission6(lonely, kPeer6);
  expect_punt(udp6_frame(kPort1Mac, kRouterMac, kPeer6, kServer6, kPeer1Port, 49666, data, 51),
              PuntReason::NoNeighbour);
  // Expired channel across families: the kernel path.
  t_.add_channel6(d4_, 0x4006, kPeer6, 6002, kNow);
  expect_punt(from_d4(channel_data(0x4006, data)), PuntReason::Expired);
  // An allocation without a relayed address of the peer's family: the
  // Send indication is dropped and counted (family_mismatch).
  expect_drop(from_client_a(send_indication(peer6_addr(kPeer1Port), &sdata, 0)), Drop::FamilyMismatch);
  expect_drop(from_client6(send_indication(sa(kPeer1, kPeer1Port), &sdata, 0)), Drop::FamilyMismatch);
  // An IPv6-family XOR-PEER-ADDRESS of the wrong length: malformed, not translated.
  auto bad = send_indication(peer6_addr(kPeer1Port), &sdata, 0);
  ASSERT_EQ(load_be16(bad.data() + 20), static_cast<uint16_t>(stun::Attr::XorPeerAddress));
  store_be16(bad.data() + 22, 8);
  expect_drop(from_d4(bad), Drop::BadSendIndication);
  // No headroom for the 20 more bytes of the IPv6 header: too big, counted.
  Buf small(from_d4(channel_data(0x4000, data)), 8);
  EXPECT_EQ(run(small).drop, Drop::TooBig);
  Buf small_di(peer4_to_d6(data, kIn, 7001), 40);  // the Data indication's 36 + 20 bytes
  Verdict v = run(small_di);
  EXPECT_EQ(v.kind, Verdict::Drop);
  EXPECT_EQ(v.drop, Drop::TooBig);
}

// Checksum offload on the IPv4 egress port: the IPv6 -> IPv4 translation
// leaves exactly what the NIC completes into the software result.
TEST_F(FastPathDual, ChecksumOffloadOnTheIpv4Side) {
  auto data = pattern(201);
  pc_.csum_offload = 0;
  Buf soft(from_d6(channel_data(0x4000, data)));
  ASSERT_EQ(run(soft).kind, Verdict::Tx);
  pc_.csum_offload = 0b01;
  Buf hard(from_d6(channel_data(0x4000, data)));
  Verdict v = run(hard);
  ASSERT_EQ(v.kind, Verdict::Tx);
  EXPECT_TRUE(v.offload);
  EXPECT_EQ(complete_offload(hard.out()), soft.out());
}

TEST_F(FastPathDual, NeverAllocates) {
  auto data = pattern(77);
  auto& sdata = static_data(data);
  std::vector<Buf> bufs;
  bufs.emplace_back(from_d4(channel_data(0x4000, data)));
  bufs.emplace_back(from_d4(send_indication(peer6_addr(kPeer1Port), &sdata, 3)));
  bufs.emplace_back(peer6_to_d4(data));
  bufs.emplace_back(peer6_to_d4(data, 6001));
  bufs.emplace_back(from_d6(channel_data(0x4000, data)));
  bufs.emplace_back(peer4_to_d6(data, kInNoCsum, 7001));
  std::vector<Verdict> verdicts(bufs.size());
  uint64_t before = g_allocations.load();
  g_count_allocations = true;
  for (int i = 0; i < 500; ++i)
    for (size_t k = 0; k < bufs.size(); ++k) {
      bufs[k].reset();
      verdicts[k] = process_frame(bufs[k].f, t_, pc_, kNow);
    }
  g_count_allocations = false;
  EXPECT_EQ(g_allocations.load() - before, 0u);
  for (size_t k = 0; k < verdicts.size(); ++k)
    EXPECT_EQ(verdicts[k].kind, Verdict::Tx) << k << " " << kPuntKeys[static_cast<size_t>(verdicts[k].punt)];
}

TEST_F(FastPathDual, MutatedFramesNeverEscapeTheBuffer) {
  std::mt19937 rng(46);
  auto& data = static_data(pattern(40));
  std::vector<std::vector<uint8_t>> seeds = {from_d4(channel_data(0x4000, pattern(40))),
                                             from_d4(send_indication(peer6_addr(kPeer1Port), &data, 3)),
                                             peer6_to_d4(pattern(33)),
                                             from_d6(channel_data(0x4000, pattern(40))),
                                             from_d6(send_indication(sa(kPeer2, kPeer2Port), &data, 1)),
                                             peer4_to_d6(pattern(33), kInNoCsum, 7001)};
  for (int round = 0; round < 6000; ++round) {
    auto f = seeds[static_cast<size_t>(round) % seeds.size()];
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) f[14 + rng() % (f.size() - 14)] = static_cast<uint8_t>(rng());
    if (rng() % 4 == 0) f.resize(14 + rng() % (f.size() - 14));
    Buf b(f, static_cast<uint16_t>(rng() % 2 ? 64 : 24), 16);
    run(b);
  }
}

}  // namespace
}  // namespace turn::dp::fastpath_test
