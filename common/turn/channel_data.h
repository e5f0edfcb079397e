// SPDX-License-Identifier: Apache-2.0
// ChannelData messages (RFC 8656 §12.4) and the first-byte demultiplexer
// (RFC 8656 §12, RFC 7983 §7). Header-only and allocation-free: the data
// plane inlines these on every packet.
#pragma once

#include <cstdint>
#include <string_view>

#include "common/util/bytes.h"

namespace turn {

// Valid channel numbers (RFC 8656 §12): 0x4000 through 0x4FFF. 0x5000-0x7FFF
// are reserved and must not be used or accepted.
inline constexpr uint16_t kMinChannel = 0x4000;
inline constexpr uint16_t kMaxChannel = 0x4FFF;
// RFC 5766 §11 (obsoleted by 8656) allowed 0x4000-0x7FFF ("0x4000 through
// 0x7FFF", as coturn accepts), and some clients (coturn's own tools among
// them) still pick numbers there. Servers that must serve them opt in
// ("legacy-channel-range").
inline constexpr uint16_t kMaxLegacyChannel = 0x7FFF;
inline constexpr size_t kChannelDataHeaderSize = 4;

[[nodiscard]] constexpr bool is_valid_channel(uint16_t ch) noexcept { return ch >= kMinChannel && ch <= kMaxChannel; }

// What a packet arriving on a TURN listening port is, from its first byte.
enum class Demux : uint8_t {
  Stun,             // 0x00-0x3F (RFC 8489 §5: first two bits zero)
  ChannelData,      // 0x40-0x4F
  ReservedChannel,  // 0x50-0x7F: ChannelData range reserved by RFC 8656
  Other,            // 0x80-0xFF and empty: not TURN on a client port
};

[[nodiscard]] constexpr Demux demux_first_byte(Bytes b) noexcept {
  if (b.empty()) return Demux::Other;
  uint8_t x = b[0];
  if (x < 0x40) return Demux::Stun;
  if (x < 0x50) return Demux::ChannelData;
  if (x < 0x80) return Demux::ReservedChannel;
  return Demux::Other;
}

#define TURN_CHANNEL_DATA_ERRORS(X)                         \
  X(Ok, "ok")                                               \
  X(TooShort, "shorter than the 4-byte ChannelData header") \
  X(BadChannel, "channel number outside 0x4000-0x4FFF")     \
  X(LengthOverrun, "length field exceeds the bytes received")

enum class ChannelDataError : uint8_t {
#define TURN_X(name, text) name,
  TURN_CHANNEL_DATA_ERRORS(TURN_X)
#undef TURN_X
};

[[nodiscard]] constexpr std::string_view channel_data_error_name(ChannelDataError e) noexcept {
  switch (e) {
#define TURN_X(name, text)     \
  case ChannelDataError::name: \
    return text;
    TURN_CHANNEL_DATA_ERRORS(TURN_X)
#undef TURN_X
  }
  return "invalid";
}

struct ChannelDataView {
  uint16_t channel = 0;
  Bytes data;  // exactly `length` bytes; any padding after it is ignored
};

// Parses a ChannelData message. Over UDP the datagram may carry padding
// after the data (RFC 8656 §12.5: "the padding is not reflected in the
// length field"), so bytes beyond 4 + length are allowed and ignored.
// max_channel: kMaxChannel (RFC 8656) or kMaxLegacyChannel (RFC 5766).
[[nodiscard]] constexpr ChannelDataError parse_channel_data(Bytes b, ChannelDataView& out,
                                                            uint16_t max_channel = kMaxChannel) noexcept {
  if (b.size() < kChannelDataHeaderSize) return ChannelDataError::TooShort;
  uint16_t ch = load_be16(b.data());
  if (ch < kMinChannel || ch > max_channel) return ChannelDataError::BadChannel;
  size_t len = load_be16(b.data() + 2);
  if (len > b.size() - kChannelDataHeaderSize) return ChannelDataError::LengthOverrun;
  out.channel = ch;
  out.data = b.subspan(kChannelDataHeaderSize, len);
  return ChannelDataError::Ok;
}

constexpr void write_channel_data_header(uint8_t* out, uint16_t channel, uint16_t length) noexcept {
  store_be16(out, channel);
  store_be16(out + 2, length);
}

}  // namespace turn
