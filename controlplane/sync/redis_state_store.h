// SPDX-License-Identifier: Apache-2.0
// RedisStateStore: publishes every allocation state change to Redis as
// records plus an ordered change log (docs/state.md), and coturn's
// allocation status/traffic publications. Event-loop threads enqueue
// (a short mutex, never I/O); one writer thread talks to Redis.
//
// Redis down: accepting() turns false (new Allocates get 508), existing
// allocations keep relaying, the writer reconnects with backoff and then
// rewrites the complete state from the Registry (no event is lost: the
// registry is the truth) and appends a "resync" event.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/state/records.h"
#include "controlplane/server/shared_state.h"

namespace turn::cp {

class RedisClient;

class RedisStateStore final : public StateSink {
public:
  RedisStateStore(const Config& cfg, Registry& registry);
  ~RedisStateStore() override;

  // Connects once synchronously so start-up can report an unreachable
  // Redis clearly, then starts the writer thread (which keeps retrying).
  void start();
  void stop();

  // Live allocations this instance had before a restart (start() first).
  [[nodiscard]] std::vector<std::pair<state::AllocationRecord, std::shared_ptr<AllocationInfo>>> load_own();

  void allocation_created(const std::shared_ptr<AllocationInfo>& a) override;
  void allocation_refreshed(const std::shared_ptr<AllocationInfo>& a) override;
  void allocation_deleted(const std::shared_ptr<AllocationInfo>& a) override;
  void permission_installed(const std::shared_ptr<AllocationInfo>& a, const IpAddress& peer,
                            uint64_t expires_s) override;
  void channel_bound(const std::shared_ptr<AllocationInfo>& a, uint16_t channel, const SocketAddress& peer,
                     uint64_t expires_s) override;
  [[nodiscard]] bool accepting() const override { return connected_.load(); }

  [[nodiscard]] bool connected() const { return connected_.load(); }
  [[nodiscard]] uint64_t events_written() const { return written_.load(); }
  [[nodiscard]] size_t queue_depth() const;
  // Age of the oldest event still waiting for the writer (0 when none): how
  // far Redis, and the data planes reading it, are behind this instance.
  [[nodiscard]] double sync_lag_seconds() const;

private:
  struct Event {
    state::EventType type;
    std::shared_ptr<AllocationInfo> alloc;
    IpAddress peer_ip;
    SocketAddress peer;
    uint16_t channel = 0;
    uint64_t expires_s = 0;
    std::chrono::steady_clock::time_point queued{};  // set by push()
  };
  void push(Event e);
  void run();
  void write(RedisClient& c, const std::vector<Event>& batch);
  void resync(RedisClient& c);
  void flush_traffic(RedisClient& c);

  const Config& cfg_;
  Registry& registry_;
  std::unique_ptr<RedisClient> client_;
  std::thread thread_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Event> queue_;
  bool stop_ = false;
  bool need_resync_ = true;
  std::atomic<bool> connected_{false};
  std::atomic<uint64_t> written_{0};
};

}  // namespace turn::cp
