// SPDX-License-Identifier: Apache-2.0
// StateSync: the single writer of the allocation tables. Loads its own
// instance's snapshot from the shared store (common/state/store.h: the one
// snapshot reader), then tails its instance's change stream, applying each
// typed event idempotently. Only this host's allocations: tables, memory
// and sync work grow with the host, not with the fleet (docs/fleet.md).
//
// On every (re)connection it takes a fresh snapshot and removes what is no
// longer live, so a gap in the stream (store restarted, stream trimmed)
// cannot leave stale state. After a failover or a restart of the store
// (another master, or its run_id changed), the new master may lack the last
// writes of turn-control; what the tables hold but the snapshot lacks is
// then kept until turn-control's "resync" event says its records are whole
// again (or kUnconfirmedGraceS passes): established flows keep forwarding.
// While the store is away the tables stay as they are.
//
// Every second it adds the fast path's per-allocation traffic to the store
// (TrafficRecord's dp_* fields, HINCRBY): up to 16,384 allocations a
// second, round robin beyond that; and rewrites the data plane's status.
//
// Runs on its own (non-EAL) thread; the only Redis user of the data plane.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/redis/endpoint.h"
#include "common/state/records.h"
#include "dataplane/table/entries.h"

namespace turn::redis {
class Client;
}

namespace turn::dp {

class Tables;

struct SyncStats {
  std::atomic<bool> connected{false};
  std::atomic<uint64_t> events{0};
  std::atomic<uint64_t> snapshots{0};
  std::atomic<uint64_t> disconnects{0};
  std::atomic<uint64_t> last_snapshot_allocations{0};
  std::atomic<uint64_t> last_snapshot_us{0};
  std::atomic<uint64_t> bad_events{0};  // events or records that did not decode: skipped
  std::atomic<uint64_t> skipped{0};  // records the fast path cannot take (TCP/TLS clients, no usable relayed address)
  std::atomic<uint64_t> table_full{0};
  std::atomic<uint64_t> kept_unconfirmed{0};  // held across a failover until turn-control's resync
  std::atomic<uint64_t> snapshot_dropped{0};  // held allocations a snapshot of the same master lacked: removed
  std::atomic<uint64_t> unconfirmed{0};       // held so now (a gauge)
  std::atomic<uint64_t> lag_ms{0};            // age of the last applied event
  // Relayed payload bytes, summed from the per-allocation counters as they
  // are pushed to the store (every second).
  std::atomic<uint64_t> bytes_to_peer{0};
  std::atomic<uint64_t> bytes_to_client{0};
};

class StateSync {
 public:
  struct Options {
    redis::Endpoint store;
    std::string instance;  // this host's instance: the one turn-control writes as
  };
  // Every second the sync thread publishes the data plane's status
  // (dpturn:dataplane:<instance>); the provider fills what the workers
  // count, the sync thread adds its own figures.
  using StatsFn = std::function<state::DataplaneStatus()>;
  void set_stats_provider(StatsFn f) { stats_fn_ = std::move(f); }
  // counters[w] is worker w's per-allocation counter array (capacity entries).
  StateSync(Options o, Tables& tables, std::vector<const AllocCounters*> counters);
  ~StateSync();
  void start();
  void stop();
  // Blocks until the first snapshot is applied or `timeout_ms` passes.
  bool wait_ready(int timeout_ms) const;
  [[nodiscard]] const SyncStats& stats() const noexcept { return stats_; }
  [[nodiscard]] const Options& options() const noexcept { return o_; }

  // Applies one event to the tables (public for tests: the typed contract
  // drives the writer exactly as the stream does).
  void apply(const state::Event& e);

  static constexpr uint64_t kUnconfirmedGraceS = 30;

 private:
  void run();
  void snapshot();
  void tail();
  void push_counters();
  void push_stats();
  void settle_unconfirmed(bool all);
  void create(const state::AllocationRecord& rec);  // marks its slot seen_ by this snapshot
  void permission(const std::string& id, const state::PermissionRecord& p);
  void channel(const std::string& id, const state::ChannelRecord& c);
  [[nodiscard]] AllocCounters sum_counters(uint32_t idx) const;

  Options o_;
  Tables& tables_;
  std::vector<const AllocCounters*> counters_;
  std::vector<AllocCounters> baseline_;  // per slot: what was already pushed
  std::vector<std::string> slot_ids_;    // per slot: the allocation id
  std::vector<uint32_t> seen_;           // per slot: the last snapshot that held it
  uint32_t snapshot_gen_ = 0;
  // push_counters: allocations pushed per cycle at most, commands per
  // pipelined round trip, and where the next cycle's sweep starts.
  static constexpr size_t kCounterPushesPerCycle = 16384;
  static constexpr size_t kCounterPipeline = 1024;
  size_t counter_cursor_ = 0;
  std::unique_ptr<redis::Client> client_;
  std::string last_id_ = "0-0";
  std::string last_run_id_;  // of the master of the last snapshot
  // Held but missing from a snapshot after a master change: id -> when the
  // grace ends (steady clock).
  std::unordered_map<std::string, std::chrono::steady_clock::time_point> unconfirmed_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> ready_{false};
  SyncStats stats_;
  StatsFn stats_fn_;
};

}  // namespace turn::dp
