// SPDX-License-Identifier: Apache-2.0
// SourceLimits: what one source IP may draw from a TURN server thread.
// Many clients share one address (carrier-grade NAT, an enterprise NAT
// when a 300-person meeting starts), so nothing here counts requests per
// address by default; what is limited by default is what a forged source
// address could abuse: answers sent without authentication over UDP
// (reflection and amplification), and 401/438 answers (credential
// guessing), each with room for a meeting's start.
#pragma once

#include <cstddef>
#include <cstdint>
#include <unordered_map>

#include "common/net/address.h"
#include "controlplane/allocation/allocation.h"
#include "controlplane/config/config.h"
#include "controlplane/net/clock.h"

namespace turn::cp {

class SourceLimits {
 public:
  SourceLimits(const Config& cfg, const Clock& clock);

  // request-rate-limit (every request) or unauth-rate-limit (401, 438 and
  // 300 answers): true when `source` has no token left (the request is
  // dropped, and counted by the caller).
  [[nodiscard]] bool rate_limited(const IpAddress& source, bool unauthenticated);
  // Reflection budget (UDP only): bytes received from `source` earn the
  // right to answer it without authentication.
  void note_received(const IpAddress& source, size_t bytes);
  // May `bytes` be sent unauthenticated to `source`? Takes them if so.
  [[nodiscard]] bool reflection_allows(const IpAddress& source, size_t bytes);
  // Forgets sources idle for 10 s (a full bucket carries no information).
  void forget_idle();

 private:
  struct Bucket {
    double tokens = 0;         // request-rate-limit
    double unauth_tokens = 0;  // unauth-rate-limit
    // Reflection budget, bytes: `earned` by what the source sent over UDP
    // (capped at reflection-burst), `allowance` the one-off burst a fresh
    // source may be answered beyond that.
    uint32_t earned = 0;
    uint32_t allowance = 0;
    TimePoint last{};
  };
  Bucket& bucket(const IpAddress& source);

  const Config& cfg_;
  const Clock& clock_;
  std::unordered_map<IpAddress, Bucket, AddressHash> by_source_;
  // Unearned answer bytes of all sources together (16 x reflection-burst
  // per second): spoofing many sources reflects no more than that.
  TokenBucket unearned_;
};

}  // namespace turn::cp
