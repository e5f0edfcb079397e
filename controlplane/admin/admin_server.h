// SPDX-License-Identifier: Apache-2.0
// AdminServer: turn-control's HTTP admin API (docs/admin-api.md) and
// Prometheus /metrics. Bound to admin-ip (127.0.0.1 by default); every
// request needs the admin token ("Authorization: Bearer <token>"), compared
// in constant time. Runs its own thread; reads shared state only through
// thread-safe interfaces (Registry, CredentialStore, Stats atomics).
#pragma once

#include <memory>
#include <string>
#include <thread>

namespace httplib {
class Server;
}

namespace turn::cp {

class Runtime;
struct Config;

class AdminServer {
public:
  AdminServer(const Config& cfg, Runtime& rt);
  ~AdminServer();
  void start();  // throws if the port cannot be bound
  void stop();

  // Prometheus text exposition of every counter (also used by tests).
  [[nodiscard]] std::string metrics() const;

private:
  void routes();
  const Config& cfg_;
  Runtime& rt_;
  std::unique_ptr<httplib::Server> http_;
  std::thread thread_;
};

}  // namespace turn::cp
