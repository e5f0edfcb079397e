// SPDX-License-Identifier: Apache-2.0
// TURN server registry (docs/admin-api.md, "TURN server registry").
#include "controlplane/admin/turn_registry.h"

#include <algorithm>
#include <ctime>

#include "common/crypto/integrity.h"
#include "common/util/text.h"
#include "common/log/log.h"
#include "common/redis/client.h"

namespace turn::cp {

using json = nlohmann::json;

namespace {

const char* const kFields[] = {"serverAddress", "clientAddress", "username", "password", "type"};

uint64_t unix_now() { return static_cast<uint64_t>(std::time(nullptr)); }

bool has_control_chars(const std::string& s) {
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7f) return true;
  return false;
}

std::string new_id() {
  uint8_t raw[8];
  crypto::random_bytes(raw);
  return to_hex(raw, sizeof raw);
}

std::optional<Transport> transport_from(const std::string& type) {  // what the probe client speaks
  const auto t = parse_transport(type);
  if (t == Transport::Dtls) return std::nullopt;
  return t;
}

}  // namespace

json TurnServerEntry::to_json(bool with_status) const {
  json j = {{"id", id},
            {"serverAddress", server_address},
            {"clientAddress", client_address},
            {"username", username},
            {"type", type}};
  if (with_status) {
    if (last_status)
      j["lastStatus"] = {{"reachable", last_status->reachable},
                         {"roundTripTimeMs", last_status->rtt_ms ? json(*last_status->rtt_ms) : json(nullptr)},
                         {"error", last_status->reachable ? json(nullptr) : json(last_status->error)},
                         {"checkedAt", last_status->checked_s}};
    else
      j["lastStatus"] = nullptr;
  }
  return j;
}

json FieldError::to_json() const { return {{"error", message}, {"field", field}, {"value", value}}; }

std::optional<FieldError> TurnServerRegistry::parse(const json& body, TurnServerEntry& out) {
  if (!body.is_object())
    return FieldError{"body", body.is_discarded() ? json(nullptr) : body, "the body must be a JSON object"};
  for (const auto& [k, v] : body.items()) {
    bool known = false;
    for (const char* f : kFields) known = known || k == f;
    if (!known)
      return FieldError{k, v,
                        "unknown field '" + k + "' = " + v.dump() +
                            " (expected serverAddress, clientAddress, username, password, type)"};
  }
  // Every field is a required string.
  for (const char* f : kFields) {
    if (!body.contains(f)) return FieldError{f, nullptr, std::string("\"") + f + "\" is required"};
    const json& v = body[f];
    bool secret = std::string(f) == "password";
    if (!v.is_string())
      return FieldError{f, secret ? json(std::string("(a ") + v.type_name() + ")") : v,
                        std::string("\"") + f + "\" must be a string, got " + v.type_name()};
  }
  TurnServerEntry e;
  e.server_address = trim(body["serverAddress"].get<std::string>());
  e.client_address = trim(body["clientAddress"].get<std::string>());
  e.username = body["username"].get<std::string>();
  e.password = body["password"].get<std::string>();
  e.type = body["type"].get<std::string>();

  auto type = transport_from(e.type);
  if (!type) return FieldError{"type", e.type, "invalid type '" + e.type + "': expected udp, tcp or tls"};
  std::string err;
  if (!parse_turn_target(e.server_address, e.target, &err))
    return FieldError{"serverAddress", body["serverAddress"], "invalid serverAddress " + err};
  if (e.target.transport_given && e.target.transport != *type)
    return FieldError{"type", e.type,
                      "type '" + e.type + "' contradicts serverAddress '" + e.server_address + "' (" +
                          transport_name(e.target.transport) + ")"};
  e.target.transport = *type;
  TurnTarget client;
  if (!parse_turn_target(e.client_address, client, &err))
    return FieldError{"clientAddress", body["clientAddress"], "invalid clientAddress " + err};
  // RFC 8489 §14.3: USERNAME is fewer than 509 bytes of UTF-8.
  if (e.username.empty() || e.username.size() > 508 || has_control_chars(e.username))
    return FieldError{"username", e.username,
                      "invalid username '" + e.username + "': 1-508 bytes, no control characters"};
  if (e.password.empty() || e.password.size() > 256 || has_control_chars(e.password))
    return FieldError{
        "password", "(hidden, " + std::to_string(e.password.size()) + " bytes)",
        "invalid password (" + std::to_string(e.password.size()) + " bytes): 1-256 bytes, no control characters"};
  e.id = new_id();
  e.created_s = unix_now();
  out = std::move(e);
  return std::nullopt;
}

TurnServerRegistry::TurnServerRegistry(const Config& cfg) : cfg_(cfg) {
  if (cfg_.state_redis.enabled) {
    redis::Endpoint ep = cfg_.state_redis;
    ep.connect_timeout_ms = 1000;  // an admin request waits at most this long for a Redis that is away
    redis_ = std::make_unique<redis::Client>(ep);
    std::lock_guard lock(mutex_);
    sync_locked();
    if (redis_ok_)
      log_info("admin: " + std::to_string(entries_.size()) + " registered TURN server(s) loaded from redis");
  }
}

TurnServerRegistry::~TurnServerRegistry() = default;

std::string TurnServerRegistry::record_json(const TurnServerEntry& e) {
  return json{{"serverAddress", e.server_address},
              {"clientAddress", e.client_address},
              {"username", e.username},
              {"password", e.password},
              {"type", e.type},
              {"createdAt", e.created_s}}
      .dump();
}

std::optional<TurnServerEntry> TurnServerRegistry::from_record(const std::string& id, const std::string& text) {
  json j = json::parse(text, nullptr, false);
  TurnServerEntry e;
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  uint64_t created = j.value("createdAt", uint64_t{0});
  j.erase("createdAt");
  if (parse(j, e)) return std::nullopt;
  e.id = id;
  e.created_s = created;
  return e;
}

void TurnServerRegistry::sync_locked() {
  if (!redis_) return;
  auto now = std::chrono::steady_clock::now();
  if (!redis_ok_ && now < next_attempt_) return;  // Redis was away a moment ago: do not wait on it again yet
  if (store_away_ && store_away_()) {
    if (redis_ok_)
      log_warn(
          "admin: TURN server registry not persisted (kept in memory until redis answers): the state store is "
          "unreachable");
    redis_ok_ = false;
    next_attempt_ = now;  // "back in sync" is logged when it answers again
    return;
  }
  try {
    if (!redis_->connected()) redis_->connect();
    for (const auto& id : pending_del_) redis_->append({"HDEL", kRedisKey, id});
    for (const auto& id : pending_put_)
      if (auto it = entries_.find(id); it != entries_.end())
        redis_->append({"HSET", kRedisKey, id, record_json(it->second)});
    redis_->append({"HGETALL", kRedisKey});
    auto replies = redis_->replies();
    for (const auto& r : replies)
      if (r.type == redis::Reply::Type::Error) throw redis::Error("redis " + redis_->where() + ": " + r.str);
    if (replies.back().type != redis::Reply::Type::Array)
      throw redis::Error("redis " + redis_->where() + ": HGETALL " + kRedisKey + " did not answer a list");
    pending_del_.clear();
    pending_put_.clear();
    const redis::Reply& all = replies.back();
    std::map<std::string, TurnServerEntry> fresh;
    for (size_t i = 0; i + 1 < all.elements.size(); i += 2) {
      const std::string& id = all.elements[i].str;
      auto e = from_record(id, all.elements[i + 1].str);
      if (!e) {
        log_warn("admin: redis " + kRedisKey + " field '" + id + "' is not a valid TURN server record; ignored");
        continue;
      }
      if (auto old = entries_.find(id); old != entries_.end()) e->last_status = old->second.last_status;
      fresh.emplace(id, std::move(*e));
    }
    entries_ = std::move(fresh);
    if (!redis_ok_ && next_attempt_ != std::chrono::steady_clock::time_point{})
      log_info("admin: TURN server registry back in sync with redis " + redis_->where());
    redis_ok_ = true;
  } catch (const std::exception& ex) {
    if (redis_ok_ || next_attempt_ == std::chrono::steady_clock::time_point{})
      log_warn(std::string("admin: TURN server registry not persisted (kept in memory until redis answers): ") +
               ex.what());
    redis_ok_ = false;
    redis_->disconnect();
    next_attempt_ = now + std::chrono::seconds(2);
  }
}

bool TurnServerRegistry::add(TurnServerEntry e) {
  std::lock_guard lock(mutex_);
  sync_locked();
  if (entries_.size() >= kMaxServers) return false;
  std::string id = e.id;
  entries_[id] = std::move(e);
  pending_put_.insert(id);
  pending_del_.erase(id);
  sync_locked();
  return true;
}

std::vector<TurnServerEntry> TurnServerRegistry::list() {
  std::lock_guard lock(mutex_);
  sync_locked();
  std::vector<TurnServerEntry> out;
  out.reserve(entries_.size());
  for (const auto& [id, e] : entries_) out.push_back(e);
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return a.created_s != b.created_s ? a.created_s < b.created_s : a.id < b.id;
  });
  return out;
}

std::optional<TurnServerEntry> TurnServerRegistry::get(const std::string& id) {
  std::lock_guard lock(mutex_);
  sync_locked();
  auto it = entries_.find(id);
  if (it == entries_.end()) return std::nullopt;
  return it->second;
}

bool TurnServerRegistry::remove(const std::string& id) {
  {
    std::lock_guard lock(mutex_);
    sync_locked();
    if (entries_.erase(id) == 0) return false;
    pending_put_.erase(id);
    pending_del_.insert(id);
    sync_locked();
  }
  std::lock_guard lock(probe_mutex_);
  probing_.erase(id);
  return true;
}

std::optional<TurnServerStatus> TurnServerRegistry::probe(const std::string& id, bool& busy) {
  busy = false;
  auto e = get(id);
  if (!e) return std::nullopt;
  std::shared_ptr<std::mutex> lock_for_id;
  {
    std::lock_guard lock(probe_mutex_);
    auto& slot = probing_[id];
    if (!slot) slot = std::make_shared<std::mutex>();
    lock_for_id = slot;
  }
  std::unique_lock one(*lock_for_id, std::try_to_lock);
  if (!one.owns_lock()) {
    // A probe of this server is running: its answer is as fresh as ours would be.
    one.lock();
    std::lock_guard lock(mutex_);
    if (auto it = entries_.find(id); it != entries_.end() && it->second.last_status) return it->second.last_status;
    if (entries_.find(id) == entries_.end()) return std::nullopt;
  }
  {
    std::lock_guard lock(probe_mutex_);
    if (probes_in_flight_ >= kMaxConcurrentProbes) {
      busy = true;
      return std::nullopt;
    }
    ++probes_in_flight_;
  }
  ProbeResult r = probe_turn_server(e->target, e->username, e->password, kProbeTimeout);
  {
    std::lock_guard lock(probe_mutex_);
    --probes_in_flight_;
  }
  TurnServerStatus s;
  s.reachable = r.reachable;
  if (r.reachable) s.rtt_ms = r.rtt_ms;
  s.error = r.error;
  s.checked_s = unix_now();
  std::lock_guard lock(mutex_);
  if (auto it = entries_.find(id); it != entries_.end()) it->second.last_status = s;
  return s;
}

std::string TurnServerRegistry::persistence() const {
  std::lock_guard lock(mutex_);
  if (!redis_) return "memory";
  return redis_ok_ ? "redis" : "memory (redis unreachable, will be written when it answers)";
}

}  // namespace turn::cp
