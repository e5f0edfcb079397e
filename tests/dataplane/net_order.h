// SPDX-License-Identifier: Apache-2.0
// IPv4 addresses and ports in network order, the way the data plane's keys
// and PortContext hold them: for its EAL-free tests (fake_tables.h) and its
// micro-benchmarks (bench/micro/dp_frames.h).
#pragma once

#include <cstdint>
#include <cstring>

#include "common/util/bytes.h"

namespace turn::dp::fake {

inline uint32_t ip4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {  // a.b.c.d, network order
  const uint8_t x[4] = {a, b, c, d};
  uint32_t v;
  std::memcpy(&v, x, 4);
  return v;
}
inline uint16_t np(uint16_t host) {  // a port, network order
  uint8_t x[2];
  store_be16(x, host);
  uint16_t v;
  std::memcpy(&v, x, 2);
  return v;
}

}  // namespace turn::dp::fake
