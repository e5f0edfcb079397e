// SPDX-License-Identifier: Apache-2.0
// TurnServerRegistry: the admin API's registry of TURN servers, the
// application side (docs/admin-api.md): an application registers the TURN
// servers it hands to its clients (serverAddress, the internal address they
// are probed at; clientAddress, the external address clients use;
// username, password, type) and asks whether each one works. A status is a
// real authenticated Allocate then Refresh(0) against serverAddress
// (probe_turn_server, the same code as `turnctl probe`).
//
// Persistence: with state-redis configured, the registry lives in the Redis
// hash "dpturn:turn-servers" (id -> JSON, password included: the probe
// needs it), so it survives restarts and every turn-control sharing that
// Redis sees the same registry. Each read re-reads the hash; while Redis is
// unreachable the registry keeps working from memory and writes what
// changed once Redis answers again. Without state-redis it is in memory only.
//
// Thread-safe. Probes run on the calling (admin HTTP worker) thread without
// holding the registry lock; at most kMaxConcurrentProbes run at once and
// concurrent status requests for one server share one probe.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "controlplane/client/turn_client.h"
#include "common/state/keys.h"
#include "controlplane/config/config.h"

namespace turn::redis {
class Client;
}

namespace turn::cp {

struct TurnServerStatus {
  bool reachable = false;
  std::optional<double> rtt_ms;
  std::string error;       // empty when reachable
  uint64_t checked_s = 0;  // Unix seconds of the probe
};

struct TurnServerEntry {
  std::string id;
  std::string server_address;  // as registered (trimmed)
  std::string client_address;
  std::string username;
  std::string password;
  std::string type;  // "udp", "tcp", "tls"
  uint64_t created_s = 0;
  TurnTarget target;  // server_address parsed, transport = type
  std::optional<TurnServerStatus> last_status;

  // The public view: never the password.
  [[nodiscard]] nlohmann::json to_json(bool with_status = false) const;
};

// A request field that is missing or wrong: the 400 answer.
struct FieldError {
  std::string field;
  nlohmann::json value;  // the offending value (null when missing)
  std::string message;
  [[nodiscard]] nlohmann::json to_json() const;
};

class TurnServerRegistry {
 public:
  static constexpr size_t kMaxServers = 1000;
  static constexpr int kMaxConcurrentProbes = 4;
  // Per transaction; a probe makes at most 3 (401 challenge, Allocate, Refresh).
  static constexpr std::chrono::milliseconds kProbeTimeout{1000};
  static inline const std::string kRedisKey{state::kTurnServers};

  explicit TurnServerRegistry(const Config& cfg);
  ~TurnServerRegistry();

  // Validates a POST body. On success *out is filled (id and created_s too).
  static std::optional<FieldError> parse(const nlohmann::json& body, TurnServerEntry& out);

  // Adds a validated entry; false when the registry is full.
  bool add(TurnServerEntry e);
  [[nodiscard]] std::vector<TurnServerEntry> list();
  [[nodiscard]] std::optional<TurnServerEntry> get(const std::string& id);
  bool remove(const std::string& id);

  // Probes the server now (nullopt: unknown id). A probe of the same id
  // that is already running is waited for and its result returned.
  // busy: too many probes of other servers in flight (the caller answers 503).
  [[nodiscard]] std::optional<TurnServerStatus> probe(const std::string& id, bool& busy);

  // "memory" or "redis" (+ whether Redis answered on the last attempt).
  [[nodiscard]] std::string persistence() const;

  // True while the state store writer has lost the store: the registry then
  // keeps its changes in memory without waiting on Redis (set once, before
  // the admin API serves).
  void set_store_away(std::function<bool()> away) { store_away_ = std::move(away); }

 private:
  void sync_locked();  // flushes pending writes and re-reads Redis; mutex_ held
  static std::string record_json(const TurnServerEntry& e);
  static std::optional<TurnServerEntry> from_record(const std::string& id, const std::string& json_text);

  const Config& cfg_;
  mutable std::mutex mutex_;
  std::map<std::string, TurnServerEntry> entries_;
  std::set<std::string> pending_put_, pending_del_;
  std::unique_ptr<redis::Client> redis_;
  std::chrono::steady_clock::time_point next_attempt_{};
  bool redis_ok_ = false;
  std::function<bool()> store_away_;

  std::mutex probe_mutex_;
  std::map<std::string, std::shared_ptr<std::mutex>> probing_;  // per-id probe locks
  int probes_in_flight_ = 0;
};

}  // namespace turn::cp
