// SPDX-License-Identifier: Apache-2.0
// Limits shared by the configuration, the route table, the fast path and
// the worker loop (one place, so that they cannot disagree). Not named
// limits.h: the dataplane directory is on the include path and would
// shadow the C library header.
#pragma once

#include <cstddef>

namespace turn::dp {

// Ports (`port=` lines) one turn-dataplane drives; each has its own
// exception TAP, MAC, addresses and link in the route table.
inline constexpr size_t kMaxPorts = 8;

// Relay addresses per family (`relay-ip`), known to the fast path.
inline constexpr size_t kMaxRelayAddresses = 4;

}  // namespace turn::dp
