// SPDX-License-Identifier: Apache-2.0
// The data plane's small network value types, shared by its config, its
// tables and its pipeline (so that neither includes the other for them).
// Plain bytes in network order, comparable, no constructors.
#pragma once

#include <cstdint>

namespace turn::dp {

struct Mac {
  uint8_t b[6];
  friend bool operator==(const Mac&, const Mac&) = default;
};

struct Ip6 {
  uint8_t b[16];
  friend bool operator==(const Ip6&, const Ip6&) = default;
  friend auto operator<=>(const Ip6&, const Ip6&) = default;
};

// The next hop of a packet: which of our ports it leaves by, and the MAC
// it is addressed to there.
struct Hop {
  Mac mac;
  uint8_t port = 0;  // index into the data plane's ports (config order)
};

// A TSC reading (rte_rdtsc): deadlines on the fast path.
using Tsc = uint64_t;

}  // namespace turn::dp
