// SPDX-License-Identifier: Apache-2.0
#include "controlplane/server/source_limits.h"

#include <algorithm>

namespace turn::cp {

SourceLimits::SourceLimits(const Config& cfg, const Clock& clock) : cfg_(cfg), clock_(clock) {
  unearned_.configure(uint64_t{cfg_.reflection_burst} * 16);
}

SourceLimits::Bucket& SourceLimits::bucket(const IpAddress& source) {
  auto now = clock_.now();
  auto [it, fresh] = by_source_.try_emplace(source);
  Bucket& b = it->second;
  if (fresh) {
    b.tokens = cfg_.request_rate_limit;
    b.unauth_tokens = cfg_.unauth_rate_limit;
    b.allowance = cfg_.reflection_burst;
    b.last = now;
  }
  double elapsed = std::chrono::duration<double>(now - b.last).count();
  b.last = now;
  b.tokens = std::min<double>(cfg_.request_rate_limit, b.tokens + elapsed * cfg_.request_rate_limit);
  b.unauth_tokens = std::min<double>(cfg_.unauth_rate_limit, b.unauth_tokens + elapsed * cfg_.unauth_rate_limit);
  return b;
}

bool SourceLimits::rate_limited(const IpAddress& source, bool unauthenticated) {
  uint32_t limit = unauthenticated ? cfg_.unauth_rate_limit : cfg_.request_rate_limit;
  if (limit == 0) return false;
  Bucket& b = bucket(source);
  double& t = unauthenticated ? b.unauth_tokens : b.tokens;
  if (t < 1.0) return true;
  t -= 1.0;
  return false;
}

void SourceLimits::note_received(const IpAddress& source, size_t bytes) {
  if (cfg_.reflection_burst == 0) return;
  Bucket& b = bucket(source);
  b.earned = static_cast<uint32_t>(std::min<size_t>(cfg_.reflection_burst, b.earned + bytes));
}

bool SourceLimits::reflection_allows(const IpAddress& source, size_t bytes) {
  // Anti-amplification (RFC 8489 §6.3, RFC 8656 §21.1): over UDP the source
  // address may be forged, so what we send without authentication to an
  // address is paid for by bytes received from it. Beyond that, a fresh
  // source gets one reflection-burst (so that a client's first 401,
  // larger than its Allocate, is answered), and all sources together at
  // most 16 bursts a second. A forged flood from one address is answered
  // with at most its own bytes plus one burst.
  if (cfg_.reflection_burst == 0) return true;
  Bucket& b = bucket(source);
  if (b.earned >= bytes) {
    b.earned -= static_cast<uint32_t>(bytes);
    return true;
  }
  size_t rest = bytes - b.earned;
  if (rest > b.allowance || !unearned_.take(rest, clock_.now())) return false;
  b.allowance -= static_cast<uint32_t>(rest);
  b.earned = 0;
  return true;
}

void SourceLimits::forget_idle() {
  auto now = clock_.now();
  for (auto it = by_source_.begin(); it != by_source_.end();)
    if (now - it->second.last > std::chrono::seconds(10))
      it = by_source_.erase(it);
    else
      ++it;
}

}  // namespace turn::cp
