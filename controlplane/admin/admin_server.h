// SPDX-License-Identifier: Apache-2.0
// AdminServer: turn-control's HTTP admin API (docs/admin-api.md), the
// status page and Prometheus /metrics. Bound to admin-ip (127.0.0.1 by
// default); every API request needs the admin token ("Authorization: Bearer
// <token>"), compared in constant time. The status page logs in with the
// same token and gets a session cookie, which is accepted for GET only.
// With coturn's `prometheus` key, the same /metrics text is also served
// without a token on its own port (9641, coturn's), bound to admin-ip
// unless prometheus-address says otherwise.
// Runs its own threads (httplib's pool); reads shared state only through
// thread-safe interfaces (Registry, CredentialStore, Stats atomics).
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace turn::cp {

class Runtime;
class TurnServerRegistry;
struct Config;

class AdminServer {
 public:
  AdminServer(const Config& cfg, Runtime& rt);
  ~AdminServer();
  void start();  // throws if the port cannot be bound
  void stop();

  // Prometheus text exposition of every counter (also used by tests).
  [[nodiscard]] std::string metrics() const;

  static constexpr const char* kSessionCookie = "dpturn_session";
  static constexpr std::chrono::hours kSessionLifetime{12};
  static constexpr size_t kMaxSessions = 256;

 private:
  void routes();
  // GET /api/v1/allocations?scope=fleet: every instance's, from the store.
  void fleet_allocations(httplib::Response& res, uint64_t now) const;
  void page_routes();
  [[nodiscard]] bool token_ok(const std::string& token) const;
  [[nodiscard]] bool session_ok(const httplib::Request& req);
  std::string new_session();
  void end_session(const httplib::Request& req);
  void login_redirect(httplib::Response& res, const std::string& to);

  struct Session {
    std::string id;
    std::chrono::steady_clock::time_point expires;
  };
  std::mutex sessions_mutex_;
  std::vector<Session> sessions_;
  const Config& cfg_;
  Runtime& rt_;
  std::unique_ptr<TurnServerRegistry> turn_servers_;
  std::unique_ptr<httplib::Server> http_;
  std::thread thread_;
  // coturn's `prometheus`: GET <prometheus-path> (the same text as /metrics)
  // and GET / (health), no token, on prometheus-address:prometheus-port.
  std::unique_ptr<httplib::Server> metrics_http_;
  std::thread metrics_thread_;
};

}  // namespace turn::cp
