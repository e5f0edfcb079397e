// SPDX-License-Identifier: Apache-2.0
// RedisStateStore: publishes every allocation state change of this
// instance to the shared store (docs/state.md: records, the instance's
// change stream, its membership record) and coturn's allocation status
// publications. Event-loop threads enqueue (a short mutex, never I/O); one
// writer thread talks to Redis through the one client (common/redis), which
// finds the master through Sentinel when configured so.
//
// A store outage costs speed, never calls (docs/fleet.md): Allocates go on
// being answered; events wait in a bounded queue (state-queue-limit). When
// the store answers again:
//   * the same master (same run_id) and nothing dropped: the queue is
//     written in order (events are idempotent);
//   * another master (a failover: asynchronous replication may have lost
//     the last writes), a restarted one (run_id changed), or a queue that
//     overflowed: the queue is dropped and every live allocation of this
//     instance is rewritten from the registry (the registry is the truth),
//     records that ended meanwhile are deleted, and a "resync" event tells
//     the data plane that the instance's records are whole again.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/redis/client.h"
#include "common/state/records.h"
#include "controlplane/server/shared_state.h"

namespace turn::cp {

struct StateStoreStatus {
  bool connected = false;  // false: degraded (new calls on the kernel path, events queued)
  std::string master;      // "host:port" of the master written to ("" when none)
  std::string endpoint;    // what is configured (redis::Endpoint::describe())
  std::string last_error;  // why the store was last lost
  size_t queue_depth = 0;
  bool resync_pending = false;  // the next connection rewrites everything (nothing needs queueing)
  size_t queue_limit = 0;
  double lag_s = 0;  // age of the oldest queued event
  uint64_t events_written = 0;
  uint64_t overflows = 0;         // times the queue filled up (a resync followed)
  uint64_t resyncs = 0;           // full rewrites of this instance's records
  uint64_t replays = 0;           // reconnections that wrote the queue instead
  uint64_t disconnects = 0;       // times the store was lost
  uint64_t master_changes = 0;    // reconnections that found another master (failovers)
  uint64_t readonly_replies = 0;  // writes refused by a demoted master
  uint64_t refused_replicas = 0;  // addresses refused: ROLE not master (never written to)
  uint64_t bad_replies = 0;       // sentinel or ROLE replies that made no sense
  uint64_t switch_messages = 0;   // +switch-master messages for our master
};

class RedisStateStore final : public StateSink {
 public:
  using MembershipFn = std::function<state::MembershipRecord()>;
  using MembersFn = std::function<void(std::vector<state::MembershipRecord>)>;
  using DrainRequestFn = std::function<void(const std::string&)>;

  RedisStateStore(const Config& cfg, Registry& registry);
  ~RedisStateStore() override;

  // What the instance publishes about itself every kMemberRefreshMs (set before start()).
  void set_membership_source(MembershipFn f) { membership_ = std::move(f); }
  // The fleet's live members, every second (the redirector's targets).
  void set_members_sink(MembersFn f) { members_sink_ = std::move(f); }
  // A drain asked of this instance through another's API
  // (dpturn:drain-request:<instance>), taken at most once a second.
  void set_drain_requests(DrainRequestFn f) { drain_requests_ = std::move(f); }
  // Connects once synchronously so start-up can say whether the store is
  // there, then starts the writer thread (which keeps retrying).
  void start();
  void stop();

  // Live allocations this instance had before a restart (before start()).
  // Throws redis::Error when the store cannot be read.
  [[nodiscard]] std::vector<std::pair<state::AllocationRecord, std::shared_ptr<AllocationInfo>>> load_own();

  void allocation_created(const std::shared_ptr<AllocationInfo>& a) override;
  void allocation_refreshed(const std::shared_ptr<AllocationInfo>& a) override;
  void allocation_deleted(const std::shared_ptr<AllocationInfo>& a) override;
  void permission_installed(const std::shared_ptr<AllocationInfo>& a, const IpAddress& peer,
                            uint64_t expires_s) override;
  void channel_bound(const std::shared_ptr<AllocationInfo>& a, uint16_t channel, const SocketAddress& peer,
                     uint64_t expires_s) override;

  [[nodiscard]] bool connected() const { return connected_.load(); }
  [[nodiscard]] uint64_t events_written() const { return written_.load(); }
  [[nodiscard]] size_t queue_depth() const;
  // Age of the oldest event still waiting for the writer (0 when none): how
  // far the store, and the data planes reading it, are behind this instance.
  [[nodiscard]] double sync_lag_seconds() const;
  [[nodiscard]] StateStoreStatus status() const;
  // Rewrite every live allocation of this instance at the next chance
  // (after an adoption added some that bypassed the events).
  void request_resync();

 private:
  struct Pending {
    state::Event event;
    std::shared_ptr<AllocationInfo> alloc;
    std::chrono::steady_clock::time_point queued{};  // set by push()
  };
  void push(Pending p);
  void run();
  bool reconnect();
  void write(redis::Client& c, const std::vector<Pending>& batch);
  void resync(redis::Client& c);
  void flush_traffic(redis::Client& c);
  // Writes the membership record; with read_fleet also takes a drain request
  // and reads the fleet's members.
  void publish_membership(redis::Client& c, bool read_fleet);

  const Config& cfg_;
  Registry& registry_;
  MembershipFn membership_;
  MembersFn members_sink_;
  DrainRequestFn drain_requests_;
  std::unique_ptr<redis::Client> client_;
  std::thread thread_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Pending> queue_;
  bool stop_ = false;
  bool need_resync_ = true;  // the first connection rewrites everything
  std::string last_run_id_;  // of the master last written to
  std::string last_error_;
  std::string master_;
  uint64_t master_changes_ = 0;      // guarded by mutex_
  redis::ClientStats client_stats_;  // guarded by mutex_: the writer's copy of client_->stats()
  std::atomic<bool> connected_{false};
  std::atomic<uint64_t> written_{0}, overflows_{0}, resyncs_{0}, replays_{0}, disconnects_{0};
};

}  // namespace turn::cp
