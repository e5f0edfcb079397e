// SPDX-License-Identifier: Apache-2.0
// Internet checksum helpers (RFC 1071) and incremental update (RFC 1624),
// over plain bytes so that they are testable without DPDK. The fast path
// keeps the UDP checksum right without reading the payload: it subtracts
// what it removes and adds what it writes.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace turn::dp {

// One's-complement sum of bytes as big-endian 16-bit words, not folded.
// `odd_start` = the first byte is the low half of a word (the region starts
// at an odd offset of the checksummed data). The body is summed as native
// 32-bit words and the folded result byte-swapped into the big-endian
// domain (the sum is byte-order independent, RFC 1071 §2(B)): a byte loop
// was 7% of the Send-indication path.
[[nodiscard, gnu::always_inline]] inline uint32_t sum16(const uint8_t* p, size_t n, bool odd_start = false) noexcept {
  uint32_t s = 0;
  size_t i = 0;
  if (odd_start && n > 0) {
    s += p[0];
    i = 1;
  }
  if (n - i >= 8) {
    uint64_t acc = 0;
    for (; i + 4 <= n; i += 4) {
      uint32_t w;
      std::memcpy(&w, p + i, 4);
      acc += w;
    }
    while (acc >> 16) acc = (acc & 0xFFFF) + (acc >> 16);
    auto folded = static_cast<uint16_t>(acc);
    if constexpr (std::endian::native == std::endian::little)
      folded = static_cast<uint16_t>((folded >> 8) | (folded << 8));
    s += folded;
  }
  for (; i + 1 < n; i += 2) s += (uint32_t{p[i]} << 8) | p[i + 1];
  if (i < n) s += uint32_t{p[i]} << 8;
  return s;
}

[[nodiscard, gnu::always_inline]] inline uint16_t fold(uint32_t s) noexcept {
  while (s >> 16) s = (s & 0xFFFF) + (s >> 16);
  return static_cast<uint16_t>(s);
}

// Full checksum of the region (complemented), as placed in a header.
[[nodiscard]] inline uint16_t checksum(const uint8_t* p, size_t n) noexcept {
  return static_cast<uint16_t>(~fold(sum16(p, n)));
}

// RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m') over accumulated sums. `removed`
// and `added` are unfolded one's-complement sums of the old and new words.
[[nodiscard, gnu::always_inline]] inline uint16_t checksum_update(uint16_t old_checksum, uint32_t removed,
                                                                  uint32_t added) noexcept {
  uint32_t s = static_cast<uint16_t>(~old_checksum);
  s += static_cast<uint16_t>(~fold(removed));
  s += fold(added);
  return static_cast<uint16_t>(~fold(s));
}

// The one's-complement sum of a 20-byte IPv4 header, folded, in the
// machine's byte order: five 32-bit loads instead of ten 16-bit ones. The
// sum is byte-order independent (RFC 1071 §2(B)), so 0xFFFF still means
// "valid" and the complement can be stored as it is (native order).
[[nodiscard, gnu::always_inline]] inline uint16_t ipv4_header_fold_native(const uint8_t* ip) noexcept {
  uint64_t s = 0;
  for (int i = 0; i < 20; i += 4) {
    uint32_t w;
    std::memcpy(&w, ip + i, 4);
    s += w;
  }
  s = (s & 0xFFFFFFFF) + (s >> 32);
  s = (s & 0xFFFF) + (s >> 16);
  s = (s & 0xFFFF) + (s >> 16);
  s = (s & 0xFFFF) + (s >> 16);
  return static_cast<uint16_t>(s);
}

// UDP over IPv4 pseudo-header sum (RFC 768): addresses, protocol, length.
[[nodiscard]] inline uint32_t pseudo_sum_v4(const uint8_t* src4, const uint8_t* dst4, uint16_t udp_length) noexcept {
  return sum16(src4, 4) + sum16(dst4, 4) + 17u + udp_length;
}

}  // namespace turn::dp
