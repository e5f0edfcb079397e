// SPDX-License-Identifier: Apache-2.0
// Peer to client (ChannelData, Data indication) and relay to relay
// (hairpin), exact output bytes (tests/dataplane/fastpath_fixture.h).
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
