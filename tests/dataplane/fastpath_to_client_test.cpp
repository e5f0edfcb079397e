// SPDX-License-Identifier: Apache-2.0
// Peer to client (ChannelData, Data indication) and relay to relay
// (hairpin), exact output bytes (tests/dataplane/fastpath_fixture.h).
#include <algorithm>
#include <vector>

#include "tests/dataplane/fastpath_fixture.h"

namespace turn::dp::fastpath_test {
namespace {

// ---- peer -> client -------------------------------------------------------------

TEST_F(FastPath, PeerToClientChannelData) {
  for (size_t len : {0, 1, 2, 3, 99, 100, 1201}) {
    for (bool checksum : {true, false}) {
      SCOPED_TRACE("len " + std::to_string(len) + (checksum ? " checksum" : " no checksum"));
      auto data = pattern(len, 9);
      Buf b(from_peer1(data, checksum ? kIn : kInNoCsum));
      Verdict v = run(b);
      ASSERT_EQ(v.kind, Verdict::Tx);
      EXPECT_EQ(v.path, Path::PeerToClientChannelData);
      EXPECT_FALSE(v.to_peer);
      EXPECT_EQ(v.alloc, a_);
      EXPECT_EQ(v.bytes, len);
      Ip4Opts o = kOut;
      o.udp_checksum = checksum;
      auto want =
          udp_frame(kClientHopMac, kPortMac, kServer, kClientA, kTurnPort, kClientAPort, channel_data(0x4000, data), o);
      expect_output(b, want, checksum);
    }
  }
}

TEST_F(FastPath, PeerToClientDataIndication) {
  uint64_t txn = 0;
  for (size_t len : {0, 1, 2, 3, 4, 5, 99, 100, 1201}) {
    for (bool checksum : {true, false}) {
      SCOPED_TRACE("len " + std::to_string(len) + (checksum ? " checksum" : " no checksum"));
      auto data = pattern(len, 5);
      Buf b(from_peer2(data, checksum ? kIn : kInNoCsum));
      Verdict v = run(b);
      ASSERT_EQ(v.kind, Verdict::Tx);
      EXPECT_EQ(v.path, Path::PeerToClientDataIndication);
      EXPECT_FALSE(v.to_peer);
      EXPECT_EQ(v.alloc, a_);
      EXPECT_EQ(v.bytes, len);
      expect_data_indication(b.out(), kClientHopMac, kClientA, kClientAPort, sa(kPeer2, kPeer2Port), data, ++txn, a_,
                             checksum);
    }
  }
}

TEST_F(FastPath, PeerToClientExpiredChannelFallsBackToDataIndication) {
  t_.add_channel(a_, 0x4002, kPeer2, kPeer2Port, kNow);  // expires == now: expired
  auto data = pattern(40);
  Buf b(from_peer2(data));
  ASSERT_EQ(run(b).kind, Verdict::Tx);
  expect_data_indication(b.out(), kClientHopMac, kClientA, kClientAPort, sa(kPeer2, kPeer2Port), data, 1, a_);
}

// ---- peer -> client through a linked channel -------------------------------------

// Tables' writer links a channel to the permission for its peer
// (tables.cpp); then peer data reads the channel's entry alone: its copy of
// the client's 5-tuple and of the permission's and the allocation's
// expiry (fastpath.h, channel_carries_client). The same frame as through
// the permission and the allocation, and no permission lookup, alone or
// in a burst.
class LinkedChannel : public FastPath {
 protected:
  void SetUp() override {
    FastPath::SetUp();
    la_ = linked_.add_alloc(kClientA, kClientAPort, kServer, kRelayAPort);
    const PermissionEntry* p1 = linked_.add_permission(la_, kPeer1);
    linked_.add_channel(la_, 0x4000, kPeer1, kPeer1Port, kLive, p1);
    linked_.add_neighbour(kClientA, kClientHopMac);
  }
  FakeTables linked_;
  uint32_t la_ = 0;
};

TEST_F(LinkedChannel, PeerDataIsTheSameChannelDataWithoutAPermissionLookup) {
  for (size_t len : {0, 1, 3, 100, 1201}) {
    for (bool checksum : {true, false}) {
      SCOPED_TRACE("len " + std::to_string(len) + (checksum ? " checksum" : " no checksum"));
      auto data = pattern(len, 4);
      Buf via_perm(from_peer1(data, checksum ? kIn : kInNoCsum));
      Buf via_channel(from_peer1(data, checksum ? kIn : kInNoCsum));
      Verdict want = run(via_perm);
      uint64_t lookups = linked_.permission_lookups;
      Verdict got = run_on(linked_, via_channel);
      EXPECT_EQ(linked_.permission_lookups, lookups) << "the channel carries its permission's expiry";
      ASSERT_EQ(got.kind, Verdict::Tx);
      EXPECT_EQ(got.path, Path::PeerToClientChannelData);
      EXPECT_EQ(got.path, want.path);
      EXPECT_EQ(got.alloc, la_);
      EXPECT_EQ(got.bytes, want.bytes);
      expect_output(via_channel, via_perm.out(), checksum);
    }
  }
}

TEST_F(LinkedChannel, ABurstOfPeerDataLooksNoPermissionUp) {
  auto data = pattern(80, 2);
  constexpr size_t kN = 12;
  std::vector<Buf> bufs;
  std::vector<Frame> frames;
  for (size_t k = 0; k < kN; ++k) bufs.emplace_back(from_peer1(data));
  for (auto& b : bufs) frames.push_back(b.f);
  std::vector<Verdict> got(kN);
  uint64_t lookups = linked_.permission_lookups;
  decide_burst(frames.data(), got.data(), static_cast<uint16_t>(kN), linked_, pc_, kNow);
  EXPECT_EQ(linked_.permission_lookups, lookups);
  Buf alone(from_peer1(data));
  ASSERT_EQ(run(alone).kind, Verdict::Tx);
  for (size_t k = 0; k < kN; ++k) {
    bufs[k].f = frames[k];
    EXPECT_EQ(got[k].kind, Verdict::Tx) << "frame " << k;
    EXPECT_EQ(got[k].path, Path::PeerToClientChannelData) << "frame " << k;
    EXPECT_EQ(bufs[k].out(), alone.out()) << "frame " << k;
  }
  // Unlinked (the fixture's tables): one permission lookup a frame.
  lookups = t_.permission_lookups;
  std::vector<Buf> plain;
  std::vector<Frame> plain_frames;
  for (size_t k = 0; k < kN; ++k) plain.emplace_back(from_peer1(data));
  for (auto& b : plain) plain_frames.push_back(b.f);
  decide_burst(plain_frames.data(), got.data(), static_cast<uint16_t>(kN), t_, pc_, kNow);
  EXPECT_EQ(t_.permission_lookups, lookups + kN);
}

// A burst mixing the two lanes (burst.h): peer data for a linked channel
// (no permission lookup) between peer data that has only a permission
// (a Data indication, looked up). Each frame gets the verdict, the bytes
// and the transaction id it gets alone, in order, and only the unlinked
// frames cost a permission lookup.
TEST_F(LinkedChannel, AMixedBurstOfLinkedAndUnlinkedPeerDataDecidesEachAsAlone) {
  linked_.add_permission(la_, kPeer2);  // no channel: Data indications
  auto data = pattern(45, 7);
  const std::vector<bool> linked = {true, false, true, true, false, false, true, false, true, true, false, true, false};
  auto frames_of = [&] {
    std::vector<Buf> v;
    for (bool l : linked) v.emplace_back(l ? from_peer1(data) : from_peer2(data));
    return v;
  };
  std::vector<Buf> alone = frames_of(), burst = frames_of();
  const size_t n = linked.size();
  linked_.txn = 500;
  std::vector<Verdict> want(n);
  for (size_t k = 0; k < n; ++k) want[k] = run_on(linked_, alone[k]);
  linked_.txn = 500;
  std::vector<Frame> frames(n);
  for (size_t k = 0; k < n; ++k) frames[k] = burst[k].f;
  std::vector<Verdict> got(n);
  uint64_t lookups = linked_.permission_lookups;
  decide_burst(frames.data(), got.data(), static_cast<uint16_t>(n), linked_, pc_, kNow);
  const auto unlinked = static_cast<uint64_t>(std::count(linked.begin(), linked.end(), false));
  EXPECT_EQ(linked_.permission_lookups, lookups + unlinked) << "one lookup for each frame without a linked channel";
  for (size_t k = 0; k < n; ++k) {
    burst[k].f = frames[k];
    EXPECT_TRUE(burst[k].guards_ok() && burst[k].in_bounds()) << "frame " << k;
    ASSERT_EQ(got[k].kind, Verdict::Tx) << "frame " << k;
    EXPECT_EQ(got[k].path, linked[k] ? Path::PeerToClientChannelData : Path::PeerToClientDataIndication)
        << "frame " << k;
    EXPECT_EQ(got[k].path, want[k].path) << "frame " << k;
    EXPECT_EQ(got[k].alloc, la_) << "frame " << k;
    EXPECT_EQ(burst[k].out(), alone[k].out()) << "frame " << k;
  }
}

TEST_F(LinkedChannel, ExpiredAllocationOrPermissionStopsItFromTheChannelsCopies) {
  auto data = pattern(20);
  linked_.set_alloc_expiry(la_, kNow);  // the writer's copy in the channel follows
  {
    Buf b(from_peer1(data));
    Verdict v = run_on(linked_, b);
    EXPECT_EQ(v.kind, Verdict::Punt);
    EXPECT_EQ(static_cast<int>(v.punt), static_cast<int>(PuntReason::Expired));
    EXPECT_EQ(b.out(), b.original()) << "punted unchanged";
  }
  FakeTables perm_gone;
  uint32_t a = perm_gone.add_alloc(kClientA, kClientAPort, kServer, kRelayAPort);
  const PermissionEntry* p = perm_gone.add_permission(a, kPeer1, kNow);  // expires now (RFC 8656 §9)
  perm_gone.add_channel(a, 0x4000, kPeer1, kPeer1Port, kLive, p);
  perm_gone.add_neighbour(kClientA, kClientHopMac);
  Buf b(from_peer1(data));
  Verdict v = run_on(perm_gone, b);
  EXPECT_EQ(v.kind, Verdict::Punt);
  EXPECT_EQ(static_cast<int>(v.punt), static_cast<int>(PuntReason::Expired));
}

TEST_F(LinkedChannel, ExpiredChannelWithALivePermissionIsADataIndication) {
  FakeTables t;
  uint32_t a = t.add_alloc(kClientA, kClientAPort, kServer, kRelayAPort);
  const PermissionEntry* p = t.add_permission(a, kPeer1);
  t.add_channel(a, 0x4000, kPeer1, kPeer1Port, kNow, p);  // the channel expires now (§12)
  t.add_neighbour(kClientA, kClientHopMac);
  auto data = pattern(33);
  Buf b(from_peer1(data));
  uint64_t lookups = t.permission_lookups;
  ASSERT_EQ(run_on(t, b).kind, Verdict::Tx);
  EXPECT_EQ(t.permission_lookups, lookups);
  expect_data_indication(b.out(), kClientHopMac, kClientA, kClientAPort, sa(kPeer1, kPeer1Port), data, 1, a);
}

// Ethernet padding after a short datagram (60-byte minimum frames) is not data.
TEST_F(FastPath, EthernetTrailerIsIgnored) {
  auto data = pattern(3);
  auto f = from_peer1(data);
  f.resize(60, 0x77);
  Buf b(f);
  ASSERT_EQ(run(b).kind, Verdict::Tx);
  EXPECT_EQ(b.out(), udp_frame(kClientHopMac, kPortMac, kServer, kClientA, kTurnPort, kClientAPort,
                               channel_data(0x4000, data), kOut));
  auto g = from_client_a(channel_data(0x4000, data));
  g.resize(64, 0x66);
  Buf c(g);
  ASSERT_EQ(run(c).kind, Verdict::Tx);
  EXPECT_EQ(c.out(), udp_frame(kPeerHopMac, kPortMac, kServer, kPeer1, kRelayAPort, kPeer1Port, data, kOut));
}

// ---- relay -> relay (hairpin) -----------------------------------------------------

// A's ChannelData to B's relay address; B has a permission for A's relay IP
// but no channel: a Data indication for client B from A's relay address.
TEST_F(FastPath, HairpinChannelDataToDataIndication) {
  t_.add_channel(a_, 0x4010, kRelay2, kRelayBPort);
  t_.add_permission(a_, kRelay2);
  t_.add_permission(b_, kServer);
  for (size_t len : {1, 2, 77, 1000}) {
    for (bool checksum : {true, false}) {
      SCOPED_TRACE("len " + std::to_string(len));
      auto data = pattern(len, 11);
      Buf b(from_client_a(channel_data(0x4010, data, len & 1 ? 1 : 0, 0xEE), checksum ? kIn : kInNoCsum));
      Verdict v = run(b);
      ASSERT_EQ(v.kind, Verdict::Tx);
      EXPECT_EQ(v.path, Path::Hairpin);
      EXPECT_FALSE(v.to_peer);
      EXPECT_EQ(v.alloc, b_);
      expect_data_indication(b.out(), kClientBHopMac, kClientB, kClientBPort, sa(kServer, kRelayAPort), data, t_.txn,
                             b_, checksum);
    }
  }
}

// ... and with a channel bound on B to A's relay address: ChannelData for B.
TEST_F(FastPath, HairpinSendIndicationToChannelData) {
  t_.add_permission(a_, kRelay2);
  t_.add_permission(b_, kServer);
  t_.add_channel(b_, 0x4567, kServer, kRelayAPort);
  for (size_t len : {0, 1, 2, 333}) {
    SCOPED_TRACE("len " + std::to_string(len));
    auto data = pattern(len, 13);
    Buf b(from_client_a(send_indication(sa(kRelay2, kRelayBPort), &data, kSoftwareBefore | kFingerprint)));
    Verdict v = run(b);
    ASSERT_EQ(v.kind, Verdict::Tx);
    EXPECT_EQ(v.path, Path::Hairpin);
    EXPECT_EQ(v.alloc, b_);
    auto want = udp_frame(kClientBHopMac, kPortMac, kServer, kClientB, kTurnPort, kClientBPort,
                          channel_data(0x4567, data), kOut);
    expect_output(b, want);
  }
}

// The relay -> relay datagram never exists on the wire, but its checksum
// is an intermediate value: one that comes out as 0 means "sum is 0xFFFF",
// not "no checksum", and the client must still get a checksummed datagram.
TEST_F(FastPath, HairpinIntermediateChecksumZero) {
  t_.add_channel(a_, 0x4010, kRelay2, kRelayBPort);
  t_.add_permission(a_, kRelay2);
  t_.add_permission(b_, kServer);
  t_.add_channel(b_, 0x4567, kServer, kRelayAPort);
  auto data = pattern(64, 21);
  data[62] = data[63] = 0;
  // The intermediate datagram: A's relay address -> B's relay address.
  auto mid = udp_frame(kPortMac, kPortMac, kServer, kRelay2, kRelayAPort, kRelayBPort, data, kOut);
  uint16_t c0 = load_be16(mid.data() + 40);
  store_be16(data.data() + 62, static_cast<uint16_t>(0xFFFF - static_cast<uint16_t>(~c0)));
  mid = udp_frame(kPortMac, kPortMac, kServer, kRelay2, kRelayAPort, kRelayBPort, data, kOut);
  ASSERT_EQ(load_be16(mid.data() + 40), 0xFFFF) << "test set-up: the intermediate sum must fold to 0xFFFF";
  Buf b(from_client_a(channel_data(0x4010, data)));
  Verdict v = run(b);
  ASSERT_EQ(v.kind, Verdict::Tx);
  EXPECT_EQ(v.path, Path::Hairpin);
  auto want =
      udp_frame(kClientBHopMac, kPortMac, kServer, kClientB, kTurnPort, kClientBPort, channel_data(0x4567, data), kOut);
  expect_output(b, want);
}

TEST_F(FastPath, HairpinWithoutPermissionOnTheOtherSideIsPunted) {
  t_.add_channel(a_, 0x4010, kRelay2, kRelayBPort);
  t_.add_permission(a_, kRelay2);
  // B has no permission for A's relay IP.
  expect_punt(from_client_a(channel_data(0x4010, pattern(10))), PuntReason::UnknownFlow);
  // A relay IP of ours but a port no allocation holds.
  t_.add_channel(a_, 0x4011, kRelay2, 60000);
  expect_punt(from_client_a(channel_data(0x4011, pattern(10))), PuntReason::UnknownFlow);
  // B expired.
  t_.add_permission(b_, kServer);
  t_.set_alloc_expiry(b_, kNow);
  expect_punt(from_client_a(channel_data(0x4010, pattern(10))), PuntReason::Expired);
}

}  // namespace
}  // namespace turn::dp::fastpath_test
