// SPDX-License-Identifier: Apache-2.0
// Runtime: the whole turn-control process once configured: shared state,
// one event loop + TurnServer + listeners per thread, the state store, the
// admin API. start() makes every thread it starts block SIGINT, SIGTERM
// and SIGHUP, and leaves the caller's own signal mask as it found it:
// turn-control's main blocks them itself and sigwait()s them; any other
// program (a test) still dies of them. stop() ends everything in order.
#pragma once

#include <memory>
#include <thread>
#include <vector>

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

private:
  struct Worker;
  Config& cfg_;
  std::unique_ptr<SharedState> shared_;
  std::unique_ptr<TlsContext> tls_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<ListenerStatus> listener_status_;
  void restore_from_redis();
  std::unique_ptr<RedisStateStore> state_store_;
  std::unique_ptr<RedisUserDb> userdb_;
  std::unique_ptr<RealmOptionsPoller> realm_options_;
  std::unique_ptr<AdminServer> admin_;
};

}  // namespace turn::cp
