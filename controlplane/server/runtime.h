// SPDX-License-Identifier: Apache-2.0
// Runtime: the whole turn-control process once configured: shared state,
// one event loop + TurnServer + listeners per thread, the state store, the
// admin API. start() makes every thread it starts block SIGINT, SIGTERM
// and SIGHUP, and leaves the caller's own signal mask as it found it:
// turn-control's main blocks them itself and sigwait()s them; any other
// program (a test) still dies of them. stop() ends everything in order.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "common/state/records.h"
#include "controlplane/config/config.h"
#include "controlplane/server/listeners.h"
#include "controlplane/server/shared_state.h"

namespace turn::cp {

class EventLoop;
class TurnServer;
class TlsContext;
class RedisStateStore;
class RedisUserDb;
class RealmOptionsPoller;
class AdminServer;

// What `turnctl adopt INSTANCE` did (POST /api/v1/adopt; docs/fleet.md).
struct AdoptResult {
  int status = 200;  // 200 adopted; 400 bad request; 404 nothing to adopt; 409 alive or not here; 503 no store
  std::string error;
  size_t adopted = 0;
  size_t skipped = 0;                  // TCP/TLS allocations (their connections died with the host)
  std::vector<std::string> listeners;  // client-facing addresses opened for it
  double waited_s = 0;                 // waiting for its membership to expire
};

class Runtime {
 public:
  explicit Runtime(Config& cfg);
  ~Runtime();

  void start();
  void stop();
  void reload_tls();

  [[nodiscard]] SharedState& shared() noexcept { return *shared_; }
  [[nodiscard]] const std::vector<ListenerStatus>& listeners() const noexcept { return listener_status_; }
  // Sum of every thread's counters.
  [[nodiscard]] std::vector<const Stats*> stats() const;
  [[nodiscard]] RedisStateStore* state_store() const noexcept { return state_store_.get(); }
  [[nodiscard]] RedisUserDb* userdb() const noexcept { return userdb_.get(); }
  [[nodiscard]] size_t thread_count() const noexcept { return workers_.size(); }

  // Takes over a dead instance of the fleet from the state store: its
  // client-facing UDP listeners, relay ports, allocations, permissions and
  // channels, rewritten as this instance's (the data plane here learns
  // them). Fencing: only once its membership record has expired (waiting
  // up to `wait_for_expiry` for that); never a live instance. Nothing is
  // taken unless every address can be bound here.
  AdoptResult adopt(const std::string& instance, std::chrono::milliseconds wait_for_expiry);

 private:
  struct Worker;
  Config& cfg_;
  std::unique_ptr<SharedState> shared_;
  std::unique_ptr<TlsContext> tls_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<ListenerStatus> listener_status_;
  void restore_from_redis();
  [[nodiscard]] state::MembershipRecord membership(uint64_t started_s) const;
  void apply_drain_request(const std::string& request);
  std::unique_ptr<RedisStateStore> state_store_;
  std::unique_ptr<RedisUserDb> userdb_;
  std::unique_ptr<RealmOptionsPoller> realm_options_;
  std::unique_ptr<AdminServer> admin_;
  std::mutex adopt_mutex_;           // one adoption at a time
  mutable std::mutex listen_mutex_;  // guards adopted_listen_ (read by the membership writer)
  std::vector<state::ListenAddress> adopted_listen_;
};

}  // namespace turn::cp
