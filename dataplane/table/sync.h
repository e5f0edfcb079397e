// SPDX-License-Identifier: Apache-2.0
// StateSync: the single writer of the allocation tables. Reads the Redis
// snapshot (docs/state.md), then tails the change stream dpturn:events,
// applying each event idempotently. On every (re)connection it takes a
// fresh snapshot and removes what is no longer live, so a gap in the
// stream (Redis restarted, stream trimmed) cannot leave stale state.
// While Redis is away the tables stay as they are: established flows keep
// forwarding. Every second it adds the fast path's per-allocation traffic
// to Redis (HINCRBY dp_* on dpturn:alloc:<id>:traffic): up to 16,384
// allocations a second, round robin beyond that.
//
// Runs on its own (non-EAL) thread; the only hiredis user of the data plane.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <thread>
#include <vector>

#include "dataplane/stats/drop_reasons.h"
#include "dataplane/table/entries.h"

struct redisContext;

namespace turn::dp {

class Tables;

struct SyncStats {
  std::atomic<bool> connected{false};
  std::atomic<uint64_t> events{0};
  std::atomic<uint64_t> snapshots{0};
  std::atomic<uint64_t> last_snapshot_allocations{0};
  std::atomic<uint64_t> last_snapshot_us{0};
  std::atomic<uint64_t> skipped{0};     // records the fast path cannot take (IPv6, TCP clients)
  std::atomic<uint64_t> table_full{0};
  std::atomic<uint64_t> lag_ms{0};      // age of the last applied event
  // Relayed payload bytes, summed from the per-allocation counters as they
  // are pushed to Redis (every second).
  std::atomic<uint64_t> bytes_to_peer{0};
  std::atomic<uint64_t> bytes_to_client{0};
};

class StateSync {
public:
  struct Options {
    std::string host = "127.0.0.1";
    uint16_t port = 6379;
    int db = 0;
    std::string password;
    std::string instance = "dataplane";  // names this data plane in Redis
  };
  // Every second the sync thread publishes these counters (name, value) to
  // dpturn:dataplane:<instance> for turn-control's status and /metrics.
  using StatsFn = std::function<std::vector<std::pair<std::string, uint64_t>>()>;
  void set_stats_provider(StatsFn f) { stats_fn_ = std::move(f); }
  // counters[w] is worker w's per-allocation counter array (capacity entries).
  StateSync(Options o, Tables& tables, std::vector<const AllocCounters*> counters);
  ~StateSync();
  void start();
  void stop();
  // Blocks until the first snapshot is applied or `timeout_ms` passes.
  bool wait_ready(int timeout_ms) const;
  [[nodiscard]] const SyncStats& stats() const noexcept { return stats_; }

private:
  void run();
  bool connect();
  void snapshot();
  void tail();
  void push_counters();
  void push_stats();
  [[nodiscard]] AllocCounters sum_counters(uint32_t idx) const;
  void apply_event(const std::vector<std::pair<std::string, std::string>>& f);

  Options o_;
  Tables& tables_;
  std::vector<const AllocCounters*> counters_;
  std::vector<AllocCounters> baseline_;   // per slot: what was already pushed
  std::vector<std::string> slot_ids_;     // per slot: the allocation id
  // push_counters: allocations pushed per cycle at most, commands per
  // pipelined round trip, and where the next cycle's sweep starts.
  static constexpr size_t kCounterPushesPerCycle = 16384;
  static constexpr size_t kCounterPipeline = 1024;
  size_t counter_cursor_ = 0;
  redisContext* ctx_ = nullptr;
  std::string last_id_ = "0-0";
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> ready_{false};
  SyncStats stats_;
  StatsFn stats_fn_;
};

}  // namespace turn::dp
