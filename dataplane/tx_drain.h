// SPDX-License-Identifier: Apache-2.0
// When a worker sends what it holds for a port (the `tx-drain-us` rule of
// docs/dataplane.md), apart from the worker so that the unit tests see it.
#pragma once

#include <cstdint>

namespace turn::dp {

// A worker's transmit list for one port leaves as one tx burst when it holds
// a whole rx burst's worth or its first frame, queued at `since`, has waited
// `drain` TSC cycles (0: at once). The list never holds more than two bursts.
constexpr bool tx_list_due(uint16_t queued, uint16_t burst, uint64_t since, uint64_t now, uint64_t drain) noexcept {
  return queued != 0 && (queued >= burst || now - since >= drain);
}

}  // namespace turn::dp
