// SPDX-License-Identifier: Apache-2.0
// Per-realm options of coturn's Redis user database (schema.userdb.redis):
// "turn/realm/<realm>/user-quota", ".../total-quota" and ".../max-bps", each
// a decimal string. Where a key is set it replaces the config file's value
// for this realm (0 = unlimited, as in coturn); where it is absent the
// config value applies again. A poller thread reads them every few seconds
// (next to the user poller) and applies them to the live limits, so
// requests never wait on Redis.
//
// Thread-safe: RealmLimits is read by every event-loop thread (atomics and
// Quotas' own mutex); only the poller writes.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/util/periodic_thread.h"
#include "controlplane/config/config.h"

namespace turn::cp {

class Quotas;

struct RealmOptions {
  std::optional<uint32_t> user_quota;
  std::optional<uint32_t> total_quota;
  std::optional<uint64_t> max_bps;
  friend bool operator==(const RealmOptions&, const RealmOptions&) = default;
};

// The three key names for `realm`.
[[nodiscard]] std::string realm_option_key(const std::string& realm, const char* option);

// Reads the values of the keys (nullopt: key absent). A value that is not a
// decimal number in range is ignored (the config value applies) and named
// in `errors` as "key=value: why".
[[nodiscard]] RealmOptions parse_realm_options(const std::optional<std::string>& user_quota,
                                               const std::optional<std::string>& total_quota,
                                               const std::optional<std::string>& max_bps,
                                               std::vector<std::string>& errors);

// The limits in force: config values overridden by the realm's options.
class RealmLimits {
 public:
  RealmLimits(const Config& cfg, Quotas& quotas);
  // Applies `o` (absent options fall back to the config). Returns true if
  // anything changed.
  bool apply(const RealmOptions& o);
  [[nodiscard]] uint64_t max_bps() const noexcept { return max_bps_.load(std::memory_order_relaxed); }

 private:
  const Config& cfg_;
  Quotas& quotas_;
  std::atomic<uint64_t> max_bps_;
  std::mutex mutex_;
  RealmOptions last_;
};

class RealmOptionsPoller {
 public:
  RealmOptionsPoller(const Config& cfg, RealmLimits& limits);
  ~RealmOptionsPoller();
  void start();
  void stop();
  // One read and apply (the poller's step; tests call it directly). Throws
  // redis::Error when Redis cannot be read: the limits then stay as they are.
  void poll_once();

 private:
  const Config& cfg_;
  RealmLimits& limits_;
  PeriodicThread thread_;
};

}  // namespace turn::cp
