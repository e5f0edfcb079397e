// SPDX-License-Identifier: Apache-2.0
// Allocation helpers: hashing, token buckets.
#include "controlplane/allocation/allocation.h"

#include <cstring>

namespace turn::cp {

const char* transport_name(Transport t) noexcept {
  switch (t) {
    case Transport::Udp: return "udp";
    case Transport::Tcp: return "tcp";
    case Transport::Tls: return "tls";
    case Transport::Dtls: return "dtls";
  }
  return "?";
}

namespace {
inline uint64_t mix(uint64_t h, uint64_t v) noexcept {
  h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  return h;
}
uint64_t hash_ip(const IpAddress& a) noexcept {
  uint64_t lo, hi;
  std::memcpy(&lo, a.bytes.data(), 8);
  std::memcpy(&hi, a.bytes.data() + 8, 8);
  return mix(mix(0, lo), hi);
}
}  // namespace

size_t AddressHash::operator()(const IpAddress& a) const noexcept { return hash_ip(a); }
size_t AddressHash::operator()(const SocketAddress& a) const noexcept { return mix(hash_ip(a.ip), a.port); }
size_t AddressHash::operator()(const FiveTuple& t) const noexcept {
  return mix(mix((*this)(t.client), (*this)(t.server)), static_cast<uint64_t>(t.transport));
}

bool TokenBucket::take(uint64_t n, TimePoint now) noexcept {
  if (rate_ == 0) return true;
  double elapsed = std::chrono::duration<double>(now - last_).count();
  last_ = now;
  tokens_ = std::min(static_cast<double>(rate_), tokens_ + elapsed * static_cast<double>(rate_));
  if (tokens_ < static_cast<double>(n)) return false;
  tokens_ -= static_cast<double>(n);
  return true;
}

}  // namespace turn::cp
