// SPDX-License-Identifier: Apache-2.0
// Client to peer: ChannelData and Send indications, exact output bytes
// (tests/dataplane/fastpath_fixture.h).
#include "tests/dataplane/fastpath_fixture.h"

namespace turn::dp::fastpath_test {
namespace {

// ---- client -> peer, ChannelData ---------------------------------------------

struct CdCase {
  size_t len;
  size_t padding;
  bool checksum;
};

class ChannelDataToPeer : public FastPath, public ::testing::WithParamInterface<CdCase> {};

TEST_P(ChannelDataToPeer, ExactOutputBytes) {
  const CdCase c = GetParam();
  auto data = pattern(c.len, static_cast<uint8_t>(c.len));
  // Padding bytes are not zero on purpose: their sum must come out too.
  Buf b(from_client_a(channel_data(0x4000, data, c.padding, 0xE7), c.checksum ? kIn : kInNoCsum));
  Verdict v = run(b);
  ASSERT_EQ(v.kind, Verdict::Tx);
  EXPECT_EQ(v.path, Path::ChannelDataToPeer);
  EXPECT_TRUE(v.to_peer);
  EXPECT_EQ(v.alloc, a_);
  EXPECT_EQ(v.bytes, c.len);
  Ip4Opts o = kOut;
  o.udp_checksum = c.checksum;
  auto want = udp_frame(kPeerHopMac, kPortMac, kServer, kPeer1, kRelayAPort, kPeer1Port, data, o);
  expect_output(b, want, c.checksum);
}

INSTANTIATE_TEST_SUITE_P(Lengths, ChannelDataToPeer,
                         ::testing::Values(CdCase{0, 0, true}, CdCase{1, 0, true}, CdCase{1, 3, true},
                                           CdCase{2, 0, true}, CdCase{2, 2, true}, CdCase{3, 1, true},
                                           CdCase{4, 0, true}, CdCase{33, 3, true}, CdCase{100, 0, true},
                                           CdCase{101, 0, true}, CdCase{101, 3, true}, CdCase{102, 2, true},
                                           CdCase{1199, 1, true}, CdCase{1200, 0, true}, CdCase{1201, 0, true},
                                           CdCase{1, 0, false}, CdCase{101, 3, false}, CdCase{1200, 0, false},
                                           CdCase{33, 7, true}, CdCase{32, 5, true}));

TEST_F(FastPath, ChannelDataLegacyRangeWhenEnabled) {
  t_.add_channel(a_, 0x6000, kPeer2, kPeer2Port);
  auto data = pattern(50);
  expect_drop(from_client_a(channel_data(0x6000, data)), Drop::BadChannelData);  // RFC 8656 range
  pc_ = port_context(kMaxLegacyChannel);
  Buf b(from_client_a(channel_data(0x6000, data)));
  Verdict v = run(b);
  ASSERT_EQ(v.kind, Verdict::Tx);
  EXPECT_EQ(b.out(), udp_frame(kPeer2HopMac, kPortMac, kServer, kPeer2, kRelayAPort, kPeer2Port, data, kOut));
  // RFC 5766 §11: the legacy range includes 0x7FFF.
  t_.add_channel(a_, 0x7FFF, kPeer2, kPeer2Port);
  Buf last(from_client_a(channel_data(0x7FFF, data)));
  EXPECT_EQ(run(last).kind, Verdict::Tx);
}

// A checksum whose sum comes out as 0 must be sent as 0xFFFF (RFC 768), not 0.
// sum16 sums the body as native 32-bit words: it must equal the plain
// big-endian 16-bit word sum (after folding) for every length, start parity
// and content, all-zero and all-0xFF included.
TEST(Checksum, Sum16MatchesTheByteWiseDefinition) {
  auto reference = [](const uint8_t* p, size_t n, bool odd) {
    uint32_t s = 0;
    size_t i = 0;
    if (odd && n > 0) s += p[i++];
    for (; i + 1 < n; i += 2) s += (uint32_t{p[i]} << 8) | p[i + 1];
    if (i < n) s += uint32_t{p[i]} << 8;
    return fold(s);
  };
  std::mt19937 rng(7);
  std::vector<uint8_t> buf(1600);
  for (int fill = 0; fill < 3; ++fill) {
    for (auto& b : buf) b = fill == 0 ? 0 : fill == 1 ? 0xFF : static_cast<uint8_t>(rng());
    for (size_t n = 0; n <= 200; ++n)
      for (size_t off = 0; off < 4; ++off)
        for (bool odd : {false, true})
          ASSERT_EQ(fold(sum16(buf.data() + off, n, odd)), reference(buf.data() + off, n, odd))
              << "fill " << fill << " n " << n << " off " << off << " odd " << odd;
    ASSERT_EQ(fold(sum16(buf.data(), 1600)), reference(buf.data(), 1600, false));
  }
}

TEST_F(FastPath, ChannelDataChecksumThatFoldsToZeroIsSentAsFFFF) {
  auto data = pattern(20);
  // Tune the last data word so that the relayed datagram's sum is 0xFFFF.
  data[18] = data[19] = 0;
  auto probe = udp_frame(kPeerHopMac, kPortMac, kServer, kPeer1, kRelayAPort, kPeer1Port, data, kOut);
  uint16_t c0 = load_be16(probe.data() + 40);  // ~fold(sum) with the word at 0
  store_be16(data.data() + 18, static_cast<uint16_t>(0xFFFF - static_cast<uint16_t>(~c0)));
  Buf b(from_client_a(channel_data(0x4000, data)));
  ASSERT_EQ(run(b).kind, Verdict::Tx);
  auto out = b.out();
  EXPECT_EQ(load_be16(out.data() + 40), 0xFFFF);
  expect_valid_checksums(out);
}

// ---- client -> peer, Send indication ------------------------------------------

class SendToPeer : public FastPath, public ::testing::WithParamInterface<std::tuple<size_t, unsigned, bool>> {};

TEST_P(SendToPeer, ExactOutputBytes) {
  auto [len, shape, checksum] = GetParam();
  auto data = pattern(len, 3);
  auto msg = send_indication(sa(kPeer2, kPeer2Port), &data, shape);
  Buf b(from_client_a(msg, checksum ? kIn : kInNoCsum));
  Verdict v = run(b);
  ASSERT_EQ(v.kind, Verdict::Tx);
  EXPECT_EQ(v.path, Path::SendIndicationToPeer);
  EXPECT_TRUE(v.to_peer);
  EXPECT_EQ(v.alloc, a_);
  EXPECT_EQ(v.bytes, len);
  Ip4Opts o = kOut;
  o.udp_checksum = checksum;
  auto want = udp_frame(kPeer2HopMac, kPortMac, kServer, kPeer2, kRelayAPort, kPeer2Port, data, o);
  expect_output(b, want, checksum);
}

INSTANTIATE_TEST_SUITE_P(Shapes, SendToPeer,
                         ::testing::Combine(::testing::Values(size_t{0}, size_t{1}, size_t{2}, size_t{3}, size_t{160},
                                                              size_t{161}, size_t{1203}),
                                            ::testing::Values(0u, kSoftwareBefore | kFingerprint,
                                                              kDataFirst | kFingerprint,
                                                              kSoftwareBefore | kUnknownOptional | kFingerprint,
                                                              kSoftwareBefore | kDataFirst | kUnknownOptional),
                                            ::testing::Bool()));

}  // namespace
}  // namespace turn::dp::fastpath_test
