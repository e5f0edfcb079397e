// SPDX-License-Identifier: Apache-2.0
// When a worker may sleep (the `idle-sleep-us` rule of docs/dataplane.md),
// apart from the worker so that the unit tests see it.
#pragma once

#include <cstdint>

namespace turn::dp {

// A poll-mode worker spins by default: a core of its own, the lowest latency.
// With idle-sleep-us, a worker whose loop found nothing to do on any port for
// kIdleLoopsBeforeSleep loops in a row, and holds no frame for a later tx
// burst, sleeps that long (VPP's poll-sleep-usec; l3fwd-power's idle
// heuristic). It gives the core back to the host on shared machines and test
// beds; under load it never sleeps, and a frame that arrives meanwhile waits
// in the port's ring at most the sleep.
inline constexpr uint32_t kIdleLoopsBeforeSleep = 256;

struct IdleBackoff {
  uint32_t idle_loops = 0;
  // One loop's outcome -> whether to sleep now (idle_us, idle-sleep-us: 0 never).
  constexpr bool after_loop(bool work, bool frames_held, uint32_t idle_us) noexcept {
    if (work || frames_held) {
      idle_loops = 0;
      return false;
    }
    if (idle_us == 0 || ++idle_loops < kIdleLoopsBeforeSleep) return false;
    idle_loops = 0;
    return true;
  }
};

}  // namespace turn::dp
