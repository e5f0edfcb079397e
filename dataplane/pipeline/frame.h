// SPDX-License-Identifier: Apache-2.0
// Frame: the part of an rte_mbuf the pipeline touches (one segment: buffer,
// data offset, data length), so that the stages are plain C++ over bytes
// and run in unit tests without EAL. The worker copies these three fields
// back into the mbuf after the stages ran.
#pragma once

#include <cstdint>

namespace turn::dp {

struct Frame {
  uint8_t* base = nullptr;  // start of the buffer (mbuf->buf_addr)
  uint16_t off = 0;         // data offset (mbuf->data_off)
  uint16_t len = 0;         // data length (mbuf->data_len)
  uint16_t cap = 0;         // buffer length (mbuf->buf_len)

  [[nodiscard, gnu::always_inline]] uint8_t* data() const noexcept { return base + off; }
  // Grow at the front by n bytes (headroom).
  [[nodiscard, gnu::always_inline]] bool prepend(uint16_t n) noexcept {
    if (off < n) return false;
    off = static_cast<uint16_t>(off - n);
    len = static_cast<uint16_t>(len + n);
    return true;
  }
  // Drop n bytes at the front.
  [[gnu::always_inline]] void adj(uint16_t n) noexcept {
    off = static_cast<uint16_t>(off + n);
    len = static_cast<uint16_t>(len - n);
  }
  [[nodiscard, gnu::always_inline]] bool set_len(uint32_t n) noexcept {
    if (off + n > cap) return false;
    len = static_cast<uint16_t>(n);
    return true;
  }
};

}  // namespace turn::dp
