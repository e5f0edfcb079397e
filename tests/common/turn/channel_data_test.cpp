// SPDX-License-Identifier: Apache-2.0
// ChannelData parsing (RFC 8656 §12.4-§12.5), the first-byte demultiplexer
// (RFC 7983), and stream framing of STUN and ChannelData over TCP/TLS.
#include "common/turn/channel_data.h"

#include <gtest/gtest.h>

#include <vector>

#include "common/state/records.h"
#include "common/stun/message.h"

namespace turn {
namespace {

ChannelDataError parse_vec(const std::vector<uint8_t>& b, ChannelDataView& out) {
  return parse_channel_data(Bytes{b}, out);
}

TEST(ChannelData, Valid) {
  const std::vector<uint8_t> m = {0x40, 0x00, 0x00, 0x04, 1, 2, 3, 4};
  ChannelDataView v;
  ASSERT_EQ(parse_vec(m, v), ChannelDataError::Ok);
  EXPECT_EQ(v.channel, 0x4000);
  ASSERT_EQ(v.data.size(), 4u);
  EXPECT_EQ(v.data.data(), m.data() + 4);
  EXPECT_EQ(v.data[3], 4);
}

TEST(ChannelData, EmptyPayload) {
  const std::vector<uint8_t> m = {0x4F, 0xFF, 0x00, 0x00};
  ChannelDataView v;
  ASSERT_EQ(parse_vec(m, v), ChannelDataError::Ok);
  EXPECT_EQ(v.channel, 0x4FFF);
  EXPECT_TRUE(v.data.empty());
}

TEST(ChannelData, PaddingAfterDataIsIgnored) {
  // 5 bytes of data padded to 8, as over TCP (and allowed over UDP).
  const std::vector<uint8_t> m = {0x41, 0x23, 0x00, 0x05, 'h', 'e', 'l', 'l', 'o', 0, 0, 0};
  ChannelDataView v;
  ASSERT_EQ(parse_vec(m, v), ChannelDataError::Ok);
  EXPECT_EQ(v.channel, 0x4123);
  ASSERT_EQ(v.data.size(), 5u);
  EXPECT_EQ(v.data[4], 'o');
}

TEST(ChannelData, TooShort) {
  for (size_t n = 0; n < 4; ++n) {
    const std::vector<uint8_t> m(n, 0x40);
    ChannelDataView v;
    EXPECT_EQ(parse_vec(m, v), ChannelDataError::TooShort) << n;
  }
}

TEST(ChannelData, ChannelOutsideTheValidRange) {
  for (uint16_t ch : {uint16_t{0x0000}, uint16_t{0x3FFF}, uint16_t{0x5000}, uint16_t{0x7FFF}, uint16_t{0xFFFF}}) {
    std::vector<uint8_t> m = {0, 0, 0x00, 0x00};
    store_be16(m.data(), ch);
    ChannelDataView v;
    EXPECT_EQ(parse_vec(m, v), ChannelDataError::BadChannel) << std::hex << ch;
  }
  EXPECT_FALSE(is_valid_channel(0x3FFF));
  EXPECT_TRUE(is_valid_channel(0x4000));
  EXPECT_TRUE(is_valid_channel(0x4FFF));
  EXPECT_FALSE(is_valid_channel(0x5000));
}

// RFC 5766 §11: 0x4000 through 0x7FFF. The codec, the state record and the
// data plane's reader share the bound (they stopped at 0x7FFE before).
TEST(ChannelData, LegacyRangeEndsAt0x7FFF) {
  for (uint16_t ch : {uint16_t{0x4000}, uint16_t{0x5000}, uint16_t{0x7FFE}, uint16_t{0x7FFF}}) {
    std::vector<uint8_t> m = {0, 0, 0x00, 0x01, 9};
    store_be16(m.data(), ch);
    ChannelDataView v;
    EXPECT_EQ(parse_channel_data(Bytes{m}, v, kMaxLegacyChannel), ChannelDataError::Ok) << std::hex << ch;
    EXPECT_EQ(v.channel, ch);
    auto rec = state::ChannelRecord::parse(std::to_string(ch), "192.0.2.1:5000 100");
    ASSERT_TRUE(rec) << std::hex << ch;
    EXPECT_EQ(rec->number, ch);
  }
  for (uint16_t ch : {uint16_t{0x3FFF}, uint16_t{0x8000}, uint16_t{0xFFFF}}) {
    std::vector<uint8_t> m = {0, 0, 0x00, 0x00};
    store_be16(m.data(), ch);
    ChannelDataView v;
    EXPECT_EQ(parse_channel_data(Bytes{m}, v, kMaxLegacyChannel), ChannelDataError::BadChannel) << std::hex << ch;
    EXPECT_FALSE(state::ChannelRecord::parse(std::to_string(ch), "192.0.2.1:5000 100")) << std::hex << ch;
  }
}

TEST(ChannelData, LengthOverrun) {
  const std::vector<uint8_t> m = {0x40, 0x01, 0x00, 0x05, 1, 2, 3, 4};
  ChannelDataView v;
  EXPECT_EQ(parse_vec(m, v), ChannelDataError::LengthOverrun);
  const std::vector<uint8_t> huge = {0x40, 0x01, 0xFF, 0xFF, 1, 2, 3, 4};
  EXPECT_EQ(parse_vec(huge, v), ChannelDataError::LengthOverrun);
}

TEST(ChannelData, HeaderWriterRoundTrips) {
  std::vector<uint8_t> m(4 + 3);
  write_channel_data_header(m.data(), 0x4ABC, 3);
  EXPECT_EQ(m[0], 0x4A);
  EXPECT_EQ(m[1], 0xBC);
  EXPECT_EQ(m[2], 0x00);
  EXPECT_EQ(m[3], 0x03);
  ChannelDataView v;
  ASSERT_EQ(parse_vec(m, v), ChannelDataError::Ok);
  EXPECT_EQ(v.channel, 0x4ABC);
  EXPECT_EQ(v.data.size(), 3u);
}

TEST(ChannelData, UsableInConstantExpressions) {
  // The data plane inlines the parser; it must stay constexpr.
  constexpr auto parsed = [] {
    const uint8_t m[] = {0x40, 0x02, 0x00, 0x01, 0x99};
    ChannelDataView v;
    auto e = parse_channel_data(Bytes{m}, v);
    return e == ChannelDataError::Ok && v.channel == 0x4002 && v.data.size() == 1 && v.data[0] == 0x99;
  }();
  static_assert(parsed);
  EXPECT_TRUE(parsed);
}

TEST(ChannelData, ErrorNames) {
  EXPECT_EQ(channel_data_error_name(ChannelDataError::Ok), "ok");
  EXPECT_EQ(channel_data_error_name(ChannelDataError::BadChannel), "channel number outside 0x4000-0x4FFF");
  EXPECT_EQ(channel_data_error_name(static_cast<ChannelDataError>(200)), "invalid");
}

TEST(Demux, EveryFirstByte) {
  EXPECT_EQ(demux_first_byte(Bytes{}), Demux::Other);
  for (unsigned x = 0; x < 256; ++x) {
    const uint8_t b[1] = {static_cast<uint8_t>(x)};
    Demux want = x <= 0x3F   ? Demux::Stun
                 : x <= 0x4F ? Demux::ChannelData
                 : x <= 0x7F ? Demux::ReservedChannel
                             : Demux::Other;  // 0x80-0xBF RTP/RTCP, 0xC0+ QUIC etc.
    EXPECT_EQ(demux_first_byte(Bytes{b}), want) << x;
  }
  // Boundaries, spelled out.
  const uint8_t b3f[1] = {0x3F}, b40[1] = {0x40}, b4f[1] = {0x4F}, b50[1] = {0x50}, b80[1] = {0x80};
  EXPECT_EQ(demux_first_byte(Bytes{b3f}), Demux::Stun);
  EXPECT_EQ(demux_first_byte(Bytes{b40}), Demux::ChannelData);
  EXPECT_EQ(demux_first_byte(Bytes{b4f}), Demux::ChannelData);
  EXPECT_EQ(demux_first_byte(Bytes{b50}), Demux::ReservedChannel);
  EXPECT_EQ(demux_first_byte(Bytes{b80}), Demux::Other);
}

// --- stream framing ------------------------------------------------------------

TEST(StreamFrameLength, Stun) {
  // Only the first 4 bytes are needed: 20 + the length field.
  const std::vector<uint8_t> hdr = {0x00, 0x03, 0x00, 0x24};
  EXPECT_EQ(stun::stream_frame_length(Bytes{hdr}), 20 + 0x24);
  const std::vector<uint8_t> empty_body = {0x01, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42};
  EXPECT_EQ(stun::stream_frame_length(Bytes{empty_body}), 20);
  const std::vector<uint8_t> largest = {0x00, 0x01, 0xFF, 0xFC};
  EXPECT_EQ(stun::stream_frame_length(Bytes{largest}), 20 + 0xFFFC);
}

TEST(StreamFrameLength, ChannelDataIsPaddedToFour) {
  const std::vector<uint8_t> len5 = {0x40, 0x00, 0x00, 0x05};
  EXPECT_EQ(stun::stream_frame_length(Bytes{len5}), 4 + 8);
  const std::vector<uint8_t> len8 = {0x4F, 0xFF, 0x00, 0x08};
  EXPECT_EQ(stun::stream_frame_length(Bytes{len8}), 4 + 8);
  const std::vector<uint8_t> len0 = {0x40, 0x01, 0x00, 0x00};
  EXPECT_EQ(stun::stream_frame_length(Bytes{len0}), 4);
  const std::vector<uint8_t> len_max = {0x40, 0x01, 0xFF, 0xFF};
  EXPECT_EQ(stun::stream_frame_length(Bytes{len_max}), 4 + 0x10000);
  // Reserved channels (0x5000-0x7FFF) are still framed by their length so
  // the stream stays in sync; parse_channel_data() then rejects the frame.
  const std::vector<uint8_t> reserved = {0x50, 0x00, 0x00, 0x01};
  EXPECT_EQ(stun::stream_frame_length(Bytes{reserved}), 4 + 4);
}

TEST(StreamFrameLength, PartialHeaderNeedsMore) {
  const std::vector<uint8_t> three = {0x00, 0x01, 0x00};
  EXPECT_EQ(stun::stream_frame_length(Bytes{three}), 0);
  EXPECT_EQ(stun::stream_frame_length(Bytes{}), 0);
  const std::vector<uint8_t> one_cd = {0x40};
  EXPECT_EQ(stun::stream_frame_length(Bytes{one_cd}), 0);
}

TEST(StreamFrameLength, NotStunOrTurn) {
  // 0x80-0xFF: RTP/RTCP, DTLS records would be 0x14-0x3F (RFC 7983) and
  // are framed as STUN here; they then fail stun::parse.
  for (uint8_t first : {uint8_t{0x80}, uint8_t{0xBF}, uint8_t{0xC0}, uint8_t{0xFF}}) {
    const std::vector<uint8_t> b = {first, 0x03, 0x01, 0x00};
    EXPECT_EQ(stun::stream_frame_length(Bytes{b}), -1) << int{first};
  }
  const std::vector<uint8_t> rtp = {0x80, 0x60, 0x00, 0x01};
  EXPECT_EQ(stun::stream_frame_length(Bytes{rtp}), -1);
  // A TLS ClientHello record (0x16 0x03 0x01 len, then handshake type 1):
  // STUN's first bits, but no magic cookie once 8 bytes are there.
  const std::vector<uint8_t> hello = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xFC};
  EXPECT_EQ(stun::stream_frame_length(Bytes{hello}.first(4)), 20 + 0x0102);  // cannot tell yet
  EXPECT_EQ(stun::stream_frame_length(Bytes{hello}), -1);
}

TEST(StreamFrameLength, WalksAStreamOfMixedFrames) {
  // STUN (20 + 8), ChannelData with 3 bytes padded to 4, ChannelData with 4.
  std::vector<uint8_t> s = {0x00, 0x01, 0x00, 0x08, 0x21, 0x12, 0xa4, 0x42};
  s.resize(20, 0x11);
  s.insert(s.end(), {0x80, 0x22, 0x00, 0x02, 'o', 'k', 0, 0});
  s.insert(s.end(), {0x40, 0x00, 0x00, 0x03, 'a', 'b', 'c', 0});
  s.insert(s.end(), {0x40, 0x01, 0x00, 0x04, 'w', 'x', 'y', 'z'});
  size_t pos = 0;
  std::vector<long> frames;
  while (pos < s.size()) {
    long n = stun::stream_frame_length(Bytes{s}.subspan(pos));
    ASSERT_GT(n, 0);
    ASSERT_LE(pos + static_cast<size_t>(n), s.size());
    frames.push_back(n);
    pos += static_cast<size_t>(n);
  }
  EXPECT_EQ(frames, (std::vector<long>{28, 8, 8}));
  stun::MessageView m;
  EXPECT_EQ(stun::parse(Bytes{s}.first(28), m), stun::ParseError::Ok);
  ChannelDataView cd;
  ASSERT_EQ(parse_channel_data(Bytes{s}.subspan(28, 8), cd), ChannelDataError::Ok);
  EXPECT_EQ(cd.data.size(), 3u);
}

}  // namespace
}  // namespace turn
