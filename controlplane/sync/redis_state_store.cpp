// SPDX-License-Identifier: Apache-2.0
// State publication to Redis (docs/state.md).
#include "controlplane/sync/redis_state_store.h"

#include <chrono>

#include "controlplane/log.h"
#include "controlplane/sync/redis_client.h"

namespace turn::cp {

using state::EventType;

namespace {
constexpr size_t kMaxQueue = 200000;  // while Redis is away; a resync follows anyway
constexpr uint64_t kGraceS = 60;      // keys outlive their expiry this long (clock skew)

std::string coturn_prefix(const AllocationInfo& a) {
  return "turn/realm/" + a.realm + "/user/" + a.username + "/allocation/" + a.id;
}

state::AllocationRecord record_of(const AllocationInfo& a, const std::string& instance) {
  state::AllocationRecord r;
  r.id = a.id;
  r.instance = instance;
  r.transport = transport_name(a.tuple.transport);
  r.client = a.tuple.client;
  r.server = a.tuple.server;
  r.relay = a.relay;
  r.username = a.username;
  r.realm = a.realm;
  r.expires_s = a.expires_s.load();
  return r;
}

std::vector<std::string> xadd(EventType t, const std::string& id, std::vector<std::string> more = {}) {
  std::vector<std::string> args = {"XADD", std::string(state::kEventStream), "MAXLEN", "~",
                                   std::to_string(state::kEventStreamMaxLen), "*", "type",
                                   std::string(state::event_name(t)), "id", id};
  for (auto& m : more) args.push_back(std::move(m));
  return args;
}
}  // namespace

RedisStateStore::RedisStateStore(const Config& cfg, Registry& registry)
    : cfg_(cfg), registry_(registry), client_(std::make_unique<RedisClient>(cfg.state_redis)) {}

RedisStateStore::~RedisStateStore() { stop(); }

void RedisStateStore::start() {
  try {
    client_->connect();
    connected_ = true;
    log_info("state: connected to redis " + client_->where());
  } catch (const RedisError& e) {
    log_warn(std::string("state: ") + e.what() + "; new allocations are refused (508) until it is reachable");
  }
  thread_ = std::thread([this] { run(); });
}

void RedisStateStore::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stop_ && !thread_.joinable()) return;
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

size_t RedisStateStore::queue_depth() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

double RedisStateStore::sync_lag_seconds() const {
  std::lock_guard lock(mutex_);
  if (queue_.empty()) return 0;
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - queue_.front().queued).count();
}

void RedisStateStore::push(Event e) {
  e.queued = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(mutex_);
    if (queue_.size() >= kMaxQueue) {
      queue_.clear();  // the resync after reconnecting rewrites everything
      need_resync_ = true;
    }
    queue_.push_back(std::move(e));
  }
  cv_.notify_one();
}

void RedisStateStore::allocation_created(const std::shared_ptr<AllocationInfo>& a) {
  push({EventType::Create, a, {}, {}, 0, a->expires_s.load()});
}
void RedisStateStore::allocation_refreshed(const std::shared_ptr<AllocationInfo>& a) {
  push({EventType::Refresh, a, {}, {}, 0, a->expires_s.load()});
}
void RedisStateStore::allocation_deleted(const std::shared_ptr<AllocationInfo>& a) {
  push({EventType::Delete, a, {}, {}, 0, 0});
}
void RedisStateStore::permission_installed(const std::shared_ptr<AllocationInfo>& a, const IpAddress& peer,
                                           uint64_t expires_s) {
  push({EventType::Permission, a, peer, {}, 0, expires_s});
}
void RedisStateStore::channel_bound(const std::shared_ptr<AllocationInfo>& a, uint16_t channel,
                                    const SocketAddress& peer, uint64_t expires_s) {
  push({EventType::Channel, a, {}, peer, channel, expires_s});
}


void RedisStateStore::write(RedisClient& c, const std::vector<Event>& batch) {
  for (const auto& e : batch) {
    const AllocationInfo& a = *e.alloc;
    const std::string key = state::alloc_key(a.id);
    switch (e.type) {
      case EventType::Create: {
        auto rec = record_of(a, cfg_.instance_id);
        std::vector<std::string> hset = {"HSET", key};
        for (auto& [k, v] : rec.to_fields()) {
          hset.push_back(k);
          hset.push_back(v);
        }
        c.append(hset);
        c.append({"EXPIREAT", key, std::to_string(e.expires_s + kGraceS)});
        c.append({"ZADD", std::string(state::kAllocIndex), std::to_string(e.expires_s), a.id});
        std::vector<std::string> more;
        for (auto& [k, v] : rec.to_fields())
          if (k != "id") {
            more.push_back(k);
            more.push_back(v);
          }
        c.append(xadd(EventType::Create, a.id, more));
        // coturn: turn/realm/<realm>/user/<user>/allocation/<id>/status
        uint64_t lifetime = e.expires_s > a.created_s ? e.expires_s - a.created_s : 0;
        c.append({"SET", coturn_prefix(a) + "/status", "new lifetime=" + std::to_string(lifetime), "EX",
                  std::to_string(lifetime + kGraceS)});
        c.append({"PUBLISH", coturn_prefix(a) + "/status", "new lifetime=" + std::to_string(lifetime)});
        break;
      }
      case EventType::Refresh: {
        c.append({"HSET", key, "expires", std::to_string(e.expires_s)});
        c.append({"EXPIREAT", key, std::to_string(e.expires_s + kGraceS)});
        c.append({"EXPIREAT", state::permissions_key(a.id), std::to_string(e.expires_s + kGraceS)});
        c.append({"EXPIREAT", state::channels_key(a.id), std::to_string(e.expires_s + kGraceS)});
        c.append({"ZADD", std::string(state::kAllocIndex), std::to_string(e.expires_s), a.id});
        c.append(xadd(EventType::Refresh, a.id, {"expires", std::to_string(e.expires_s)}));
        uint64_t now = static_cast<uint64_t>(std::time(nullptr));
        uint64_t lifetime = e.expires_s > now ? e.expires_s - now : 0;
        c.append({"SET", coturn_prefix(a) + "/status", "refreshed lifetime=" + std::to_string(lifetime), "EX",
                  std::to_string(lifetime + kGraceS)});
        c.append({"PUBLISH", coturn_prefix(a) + "/status", "refreshed lifetime=" + std::to_string(lifetime)});
        break;
      }
      case EventType::Permission: {
        std::string pk = state::permissions_key(a.id);
        c.append({"HSET", pk, e.peer_ip.to_string(), std::to_string(e.expires_s)});
        c.append({"EXPIREAT", pk, std::to_string(a.expires_s.load() + kGraceS)});
        c.append(xadd(EventType::Permission, a.id, {"peer", e.peer_ip.to_string(), "expires", std::to_string(e.expires_s)}));
        break;
      }
      case EventType::Channel: {
        std::string ck = state::channels_key(a.id);
        state::ChannelRecord ch{e.channel, e.peer, e.expires_s};
        c.append({"HSET", ck, std::to_string(e.channel), ch.value()});
        c.append({"EXPIREAT", ck, std::to_string(a.expires_s.load() + kGraceS)});
        c.append(xadd(EventType::Channel, a.id,
                      {"channel", std::to_string(e.channel), "peer", e.peer.to_string(), "expires", std::to_string(e.expires_s)}));
        break;
      }
      case EventType::Delete: {
        c.append({"DEL", key, state::permissions_key(a.id), state::channels_key(a.id), state::traffic_key(a.id)});
        c.append({"ZREM", std::string(state::kAllocIndex), a.id});
        c.append(xadd(EventType::Delete, a.id));
        c.append({"DEL", coturn_prefix(a) + "/status"});
        c.append({"PUBLISH", coturn_prefix(a) + "/status", "deleted"});
        c.append({"PUBLISH", coturn_prefix(a) + "/total_traffic",
                  "rcvp=" + std::to_string(a.packets_to_peer.load()) + ", rcvb=" + std::to_string(a.bytes_to_peer.load()) +
                      ", sentp=" + std::to_string(a.packets_to_client.load()) +
                      ", sentb=" + std::to_string(a.bytes_to_client.load())});
        break;
      }
      case EventType::Resync:
        break;
    }
  }
  for (const auto& r : c.replies())
    if (r.type == RedisReply::Type::Error) log_warn("state: redis error reply: " + r.str);
  written_ += batch.size();
}

void RedisStateStore::resync(RedisClient& c) {
  // Rewrite every live allocation of this instance from the registry; the
  // data plane treats records idempotently.
  auto live = registry_.snapshot();
  std::vector<Event> batch;
  for (const auto& a : live) {
    batch.push_back({EventType::Create, a, {}, {}, 0, a->expires_s.load()});
    std::lock_guard lock(a->mutex);
    for (const auto& p : a->permissions) batch.push_back({EventType::Permission, a, p.peer, {}, 0, p.expires_s});
    for (const auto& ch : a->channels) batch.push_back({EventType::Channel, a, {}, ch.peer, ch.number, ch.expires_s});
  }
  // Records of this instance that are no longer live (deleted while Redis was away).
  auto ids = c.command({"ZRANGE", std::string(state::kAllocIndex), "0", "-1"});
  std::string mine = cfg_.instance_id + "/";
  for (const auto& id : ids.elements) {
    if (id.str.rfind(mine, 0) != 0) continue;
    bool alive = false;
    for (const auto& a : live) alive |= a->id == id.str;
    if (!alive) {
      c.append({"DEL", state::alloc_key(id.str), state::permissions_key(id.str), state::channels_key(id.str),
                state::traffic_key(id.str)});
      c.append({"ZREM", std::string(state::kAllocIndex), id.str});
      c.append(xadd(EventType::Delete, id.str));
    }
  }
  c.replies();
  write(c, batch);
  c.command(xadd(EventType::Resync, cfg_.instance_id));
  log_info("state: resynced " + std::to_string(live.size()) + " allocation(s) to redis");
}

void RedisStateStore::flush_traffic(RedisClient& c) {
  // Control-plane (kernel path) counters; the data plane adds its own dp_*.
  for (const auto& a : registry_.snapshot()) {
    c.append({"HSET", state::traffic_key(a->id), "cp_packets_to_peer", std::to_string(a->packets_to_peer.load()),
              "cp_bytes_to_peer", std::to_string(a->bytes_to_peer.load()), "cp_packets_to_client",
              std::to_string(a->packets_to_client.load()), "cp_bytes_to_client",
              std::to_string(a->bytes_to_client.load())});
    c.append({"EXPIREAT", state::traffic_key(a->id), std::to_string(a->expires_s.load() + kGraceS)});
  }
  c.replies();
}

void RedisStateStore::run() {
  auto backoff = std::chrono::milliseconds(250);
  auto last_traffic = std::chrono::steady_clock::now();
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      if (stop_) break;
    }
    if (!client_->connected()) {
      try {
        client_->connect();
        log_info("state: reconnected to redis " + client_->where());
        std::lock_guard lock(mutex_);
        need_resync_ = true;
        queue_.clear();
      } catch (const RedisError& e) {
        if (connected_.exchange(false)) log_warn(std::string("state: lost redis: ") + e.what());
        std::unique_lock lock(mutex_);
        cv_.wait_for(lock, backoff, [this] { return stop_; });
        backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
        continue;
      }
    }
    backoff = std::chrono::milliseconds(250);
    try {
      bool resync_now = false;
      {
        std::lock_guard lock(mutex_);
        resync_now = need_resync_;
        if (resync_now) {
          need_resync_ = false;
          queue_.clear();
        }
      }
      if (resync_now) resync(*client_);
      connected_ = true;
      std::vector<Event> batch;
      {
        std::unique_lock lock(mutex_);
        cv_.wait_for(lock, std::chrono::milliseconds(200), [this] { return stop_ || !queue_.empty(); });
        while (!queue_.empty() && batch.size() < 512) {
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
      }
      if (!batch.empty()) write(*client_, batch);
      if (std::chrono::steady_clock::now() - last_traffic > std::chrono::seconds(1)) {
        last_traffic = std::chrono::steady_clock::now();
        flush_traffic(*client_);
      }
    } catch (const RedisError& e) {
      connected_ = false;
      log_warn(std::string("state: lost redis: ") + e.what() + "; refusing new allocations until it returns");
      client_->disconnect();
      std::lock_guard lock(mutex_);
      need_resync_ = true;
    }
  }
  // Drain what is queued before exiting (best effort).
  try {
    std::vector<Event> rest;
    {
      std::lock_guard lock(mutex_);
      rest.assign(queue_.begin(), queue_.end());
    }
    if (client_->connected() && !rest.empty()) write(*client_, rest);
  } catch (const RedisError&) {
  }
}

std::vector<std::pair<state::AllocationRecord, std::shared_ptr<AllocationInfo>>> RedisStateStore::load_own() {
  std::vector<std::pair<state::AllocationRecord, std::shared_ptr<AllocationInfo>>> out;
  RedisClient c(cfg_.state_redis);
  c.connect();
  auto now = static_cast<uint64_t>(std::time(nullptr));
  auto ids = c.command({"ZRANGEBYSCORE", std::string(state::kAllocIndex), std::to_string(now + 1), "+inf"});
  std::string mine = cfg_.instance_id + "/";
  for (const auto& id : ids.elements) {
    if (id.str.rfind(mine, 0) != 0) continue;
    auto h = c.command({"HGETALL", state::alloc_key(id.str)});
    state::Fields f;
    for (size_t i = 0; i + 1 < h.elements.size(); i += 2) f.emplace_back(h.elements[i].str, h.elements[i + 1].str);
    auto rec = state::AllocationRecord::from_fields(f);
    if (!rec) continue;
    auto info = std::make_shared<AllocationInfo>();
    info->id = rec->id;
    info->relay = rec->relay;
    info->username = rec->username;
    info->realm = rec->realm;
    info->expires_s = rec->expires_s;
    auto perms = c.command({"HGETALL", state::permissions_key(id.str)});
    for (size_t i = 0; i + 1 < perms.elements.size(); i += 2) {
      auto ip = IpAddress::parse(perms.elements[i].str);
      auto exp = state::parse_u64(perms.elements[i + 1].str);
      if (ip && exp && *exp > now) info->permissions.push_back({*ip, *exp});
    }
    auto chans = c.command({"HGETALL", state::channels_key(id.str)});
    for (size_t i = 0; i + 1 < chans.elements.size(); i += 2) {
      auto ch = state::ChannelRecord::parse(chans.elements[i].str, chans.elements[i + 1].str);
      if (ch && ch->expires_s > now) info->channels.push_back({ch->number, ch->peer, ch->expires_s});
    }
    out.emplace_back(*rec, info);
  }
  return out;
}

}  // namespace turn::cp
