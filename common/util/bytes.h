// SPDX-License-Identifier: Apache-2.0
// Big-endian loads and stores over raw bytes. No alignment assumptions:
// packets arrive at any offset.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace turn {

using Bytes = std::span<const uint8_t>;
using MutableBytes = std::span<uint8_t>;

[[nodiscard]] constexpr uint16_t load_be16(const uint8_t* p) noexcept {
  return static_cast<uint16_t>((p[0] << 8) | p[1]);
}
[[nodiscard]] constexpr uint32_t load_be32(const uint8_t* p) noexcept {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}
constexpr void store_be16(uint8_t* p, uint16_t v) noexcept {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
constexpr void store_be32(uint8_t* p, uint32_t v) noexcept {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

// STUN attributes and TCP-framed ChannelData are padded to 4 bytes.
[[nodiscard]] constexpr size_t pad4(size_t n) noexcept { return (n + 3) & ~size_t{3}; }

}  // namespace turn
