// SPDX-License-Identifier: Apache-2.0
// Clock: the time the request handlers and the allocation manager read.
// The event loop is the real one (read once per loop iteration, so every
// handler of one batch sees the same instant); tests move their own.
#pragma once

#include <chrono>
#include <cstdint>

namespace turn::cp {

using TimePoint = std::chrono::steady_clock::time_point;

class Clock {
 public:
  virtual ~Clock() = default;
  // Monotonic: lifetimes and expiries.
  [[nodiscard]] virtual TimePoint now() const noexcept = 0;
  // Wall clock, seconds since the epoch: what the state store and the
  // admin API show, and what nonces carry.
  [[nodiscard]] virtual uint64_t now_s() const noexcept = 0;
};

}  // namespace turn::cp
