// SPDX-License-Identifier: Apache-2.0
// State publication to the shared store (docs/state.md, docs/fleet.md).
#include "controlplane/sync/redis_state_store.h"

#include <chrono>
#include <ctime>
#include <unordered_set>

#include "common/redis/client.h"
#include "common/state/store.h"
#include "common/log/log.h"

namespace turn::cp {

using state::Event;
using state::EventType;

namespace {

state::AllocationRecord record_of(const AllocationInfo& a, const std::string& instance) {
  state::AllocationRecord r;
  r.id = a.id;
  r.instance = instance;
  r.transport = a.tuple.transport;
  r.client = a.tuple.client;
  r.server = a.tuple.server;
  r.relay = a.relay;
  r.relay6 = a.relay6;  // a dual-stack allocation's IPv6 half (port 0: none)
  r.username = a.username;
  r.realm = a.realm;
  r.expires_s = a.expires_s.load();
  return r;
}

uint64_t now_s() { return static_cast<uint64_t>(std::time(nullptr)); }

// coturn's allocation status publications
// (turn/realm/<realm>/user/<user>/allocation/<id>/status, .../total_traffic).
void append_coturn(redis::Client& c, const Event& e, const AllocationInfo& a) {
  const std::string status = state::coturn_allocation_prefix(a.realm, a.username, a.id) + "/status";
  auto lifetime_msg = [&](const char* what, uint64_t lifetime) {
    std::string msg = std::string(what) + " lifetime=" + std::to_string(lifetime);
    c.append({"SET", status, msg, "EX", std::to_string(lifetime + state::kRecordGraceS)});
    c.append({"PUBLISH", status, msg});
  };
  switch (e.type) {
    case EventType::Create:
      lifetime_msg("new", e.expires_s > a.created_s ? e.expires_s - a.created_s : 0);
      break;
    case EventType::Refresh: {
      uint64_t now = now_s();
      lifetime_msg("refreshed", e.expires_s > now ? e.expires_s - now : 0);
      break;
    }
    case EventType::Delete:
      c.append({"DEL", status});
      c.append({"PUBLISH", status, "deleted"});
      c.append({"PUBLISH", state::coturn_allocation_prefix(a.realm, a.username, a.id) + "/total_traffic",
                "rcvp=" + std::to_string(a.packets_to_peer.load()) + ", rcvb=" +
                    std::to_string(a.bytes_to_peer.load()) + ", sentp=" + std::to_string(a.packets_to_client.load()) +
                    ", sentb=" + std::to_string(a.bytes_to_client.load())});
      break;
    default:
      break;
  }
}

}  // namespace

RedisStateStore::RedisStateStore(const Config& cfg, Registry& registry)
    : cfg_(cfg), registry_(registry), client_(std::make_unique<redis::Client>(cfg.state_redis)) {}

RedisStateStore::~RedisStateStore() { stop(); }

void RedisStateStore::start() {
  try {
    client_->connect();
    connected_ = true;
    master_ = client_->where();
    last_run_id_ = client_->run_id();
    log_info("state: connected to " + cfg_.state_redis.describe() + " (master " + master_ + ")");
  } catch (const redis::Error& e) {
    last_error_ = e.what();
    log_warn(std::string("state: ") + e.what() +
             "; allocations are answered on the kernel path and their events queued until the store answers");
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

StateStoreStatus RedisStateStore::status() const {
  StateStoreStatus s;
  {
    std::lock_guard lock(mutex_);
    s.queue_depth = queue_.size();
    s.resync_pending = need_resync_;
    if (!queue_.empty())
      s.lag_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - queue_.front().queued).count();
    s.master = connected_ ? master_ : "";
    s.last_error = last_error_;
    s.master_changes = master_changes_;
    s.readonly_replies = client_stats_.readonly_replies;
    s.refused_replicas = client_stats_.refused_replicas;
    s.bad_replies = client_stats_.bad_replies;
    s.switch_messages = client_stats_.switch_messages;
  }
  s.connected = connected_.load();
  s.endpoint = cfg_.state_redis.describe();
  s.queue_limit = cfg_.state_queue_limit;
  s.events_written = written_.load();
  s.overflows = overflows_.load();
  s.resyncs = resyncs_.load();
  s.replays = replays_.load();
  s.disconnects = disconnects_.load();
  return s;
}

void RedisStateStore::request_resync() {
  {
    std::lock_guard lock(mutex_);
    need_resync_ = true;
  }
  cv_.notify_one();
}

void RedisStateStore::push(Pending p) {
  p.queued = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(mutex_);
    if (queue_.size() >= cfg_.state_queue_limit) {
      // Bounded memory: drop the queue; the reconnection rewrites every
      // live allocation from the registry instead (a full resync).
      if (!need_resync_) {
        ++overflows_;
        log_warn("state: " + std::to_string(queue_.size()) +
                 " events queued while the store is away (state-queue-limit); dropped, a full resync follows");
      }
      queue_.clear();
      need_resync_ = true;
    }
    // While away with a resync due anyway, the registry will say it all.
    if (connected_ || !need_resync_) queue_.push_back(std::move(p));
  }
  cv_.notify_one();
}

void RedisStateStore::allocation_created(const std::shared_ptr<AllocationInfo>& a) {
  push({Event::create(record_of(*a, cfg_.instance_id)), a, {}});
}
void RedisStateStore::allocation_refreshed(const std::shared_ptr<AllocationInfo>& a) {
  push({Event::refresh(a->id, a->expires_s.load()), a, {}});
}
void RedisStateStore::allocation_deleted(const std::shared_ptr<AllocationInfo>& a) {
  push({Event::deleted(a->id), a, {}});
}
void RedisStateStore::permission_installed(const std::shared_ptr<AllocationInfo>& a, const IpAddress& peer,
                                           uint64_t expires_s) {
  push({Event::permission_installed(a->id, {peer, expires_s}), a, {}});
}
void RedisStateStore::channel_bound(const std::shared_ptr<AllocationInfo>& a, uint16_t channel,
                                    const SocketAddress& peer, uint64_t expires_s) {
  push({Event::channel_bound(a->id, {channel, peer, expires_s}), a, {}});
}

void RedisStateStore::write(redis::Client& c, const std::vector<Pending>& batch) {
  for (const auto& p : batch) {
    state::append_event(c, cfg_.instance_id, p.event, p.alloc->expires_s.load());
    append_coturn(c, p.event, *p.alloc);
  }
  for (const auto& r : c.replies())
    if (r.is_error()) log_every(LogKey::State, IpAddress{}, "state: redis error reply: " + r.str);
  written_ += batch.size();
}

void RedisStateStore::resync(redis::Client& c) {
  // Rewrite every live allocation of this instance from the registry; the
  // data plane applies records idempotently.
  auto live = registry_.snapshot();
  std::vector<Pending> batch;
  std::unordered_set<std::string> alive;
  for (const auto& a : live) {
    alive.insert(a->id);
    batch.push_back({Event::create(record_of(*a, cfg_.instance_id)), a, {}});
    std::lock_guard lock(a->mutex);
    for (const auto& p : a->permissions)
      batch.push_back({Event::permission_installed(a->id, {p.peer, p.expires_s}), a, {}});
    for (const auto& ch : a->channels)
      batch.push_back({Event::channel_bound(a->id, {ch.number, ch.peer, ch.expires_s}), a, {}});
  }
  // Records of this instance that are no longer live (ended while the
  // store was away, or written to a master that failed over).
  auto ids = c.command({"ZRANGE", state::alloc_index_key(cfg_.instance_id), "0", "-1"});
  size_t gone = 0;
  for (const auto& id : ids.elements)
    if (!alive.count(id.str)) {
      state::append_event(c, cfg_.instance_id, Event::deleted(id.str), 0);
      ++gone;
    }
  if (gone) c.replies();
  constexpr size_t kBatch = 1024;
  for (size_t b = 0; b < batch.size(); b += kBatch)
    write(c, std::vector<Pending>(batch.begin() + static_cast<long>(b),
                                  batch.begin() + static_cast<long>(std::min(batch.size(), b + kBatch))));
  state::append_event(c, cfg_.instance_id, Event::resync(cfg_.instance_id), 0);
  c.replies();
  ++resyncs_;
  log_info("state: rewrote " + std::to_string(live.size()) + " live allocation(s) of instance " + cfg_.instance_id +
           " to " + c.where() + (gone ? ", deleted " + std::to_string(gone) + " ended meanwhile" : ""));
}

void RedisStateStore::flush_traffic(redis::Client& c) {
  // Kernel-path counters of the allocations whose count moved since the
  // last write (with a data plane in front, few do); the data plane adds
  // its own dp_*. Replies read every kPipeline allocations.
  constexpr size_t kPipeline = 1024;
  size_t pending = 0;
  for (const auto& a : registry_.snapshot()) {
    uint64_t packets = a->packets_to_peer.load() + a->packets_to_client.load();
    if (packets == a->flushed_packets) continue;
    state::append_kernel_traffic(
        c, a->id,
        {a->packets_to_peer.load(), a->bytes_to_peer.load(), a->packets_to_client.load(), a->bytes_to_client.load()},
        a->expires_s.load());
    a->flushed_packets = packets;
    if (++pending == kPipeline) {
      c.replies([](redis::ReplyRef) {});
      pending = 0;
    }
  }
  if (pending) c.replies([](redis::ReplyRef) {});
}

void RedisStateStore::publish_membership(redis::Client& c, bool read_fleet) {
  if (!membership_) return;
  state::MembershipRecord m = membership_();
  uint64_t now = now_s();
  state::append_membership(c, m, state::kMemberTtlMs, now);
  if (!read_fleet) {
    c.replies([](redis::ReplyRef) {});
    return;
  }
  c.append({"GETDEL", state::drain_request_key(cfg_.instance_id)});
  auto r = c.replies();
  if (drain_requests_ && r.back().type == redis::Reply::Type::String) drain_requests_(r.back().str);
  if (members_sink_) members_sink_(state::read_members(c, now));
}

bool RedisStateStore::reconnect() {
  try {
    client_->connect();
  } catch (const redis::Error& e) {
    std::lock_guard lock(mutex_);
    last_error_ = e.what();
    client_stats_ = client_->stats();
    return false;
  }
  std::string run_id = client_->run_id();
  std::lock_guard lock(mutex_);
  bool same = !last_run_id_.empty() && run_id == last_run_id_;
  if (!same) {
    // Another master, or the same one restarted: what it holds of ours may
    // be older than what we wrote. Rewrite everything.
    if (!master_.empty() && master_ != client_->where()) ++master_changes_;
    need_resync_ = true;
  }
  if (need_resync_) queue_.clear();
  master_ = client_->where();
  last_run_id_ = run_id;
  client_stats_ = client_->stats();
  log_info("state: reconnected to " + cfg_.state_redis.describe() + " (master " + master_ + "); " +
           (need_resync_ ? "rewriting this instance's records"
                         : "writing the " + std::to_string(queue_.size()) + " queued event(s)"));
  if (!need_resync_) ++replays_;
  return true;
}

void RedisStateStore::run() {
  auto backoff = std::chrono::milliseconds(250);
  auto last_second = std::chrono::steady_clock::now() - std::chrono::seconds(1);
  auto last_member = last_second;
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      if (stop_) break;
    }
    if (client_->connected() && client_->master_switched()) {
      log_warn("state: sentinels announced a new master for '" + cfg_.state_redis.master + "'");
      client_->disconnect();
    }
    if (!client_->connected()) {
      if (!reconnect()) {
        if (connected_.exchange(false)) ++disconnects_;
        std::unique_lock lock(mutex_);
        cv_.wait_for(lock, backoff, [this] { return stop_; });
        // At most 0.5 s between attempts: a failover takes ~3 s and new
        // calls wait for the fast path meanwhile; an attempt is a few cheap
        // queries (the sentinels, then ROLE on the master they name).
        backoff = std::min(backoff * 2, std::chrono::milliseconds(500));
        continue;
      }
    }
    backoff = std::chrono::milliseconds(250);
    std::vector<Pending> batch;
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
      if (resync_now) {
        resync(*client_);
        publish_membership(*client_, true);
      }
      if (!connected_.exchange(true))
        log_info("state: store " + client_->where() + " is up to date; fast path follows");
      {
        std::unique_lock lock(mutex_);
        cv_.wait_for(lock, std::chrono::milliseconds(200), [this] { return stop_ || !queue_.empty(); });
        while (!queue_.empty() && batch.size() < 512) {
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
      }
      if (!batch.empty()) write(*client_, batch);
      batch.clear();
      // The membership record every kMemberRefreshMs (the fence); what the
      // fleet asks of us, its members and our traffic once a second.
      auto now = std::chrono::steady_clock::now();
      bool second = now - last_second >= std::chrono::seconds(1);
      if (second || now - last_member >= std::chrono::milliseconds(state::kMemberRefreshMs)) {
        last_member = now;
        publish_membership(*client_, second);
      }
      if (second) {
        last_second = now;
        flush_traffic(*client_);
      }
    } catch (const redis::Error& e) {
      if (connected_.exchange(false)) ++disconnects_;
      log_warn(std::string("state: lost the store: ") + e.what() +
               "; new allocations go on, on the kernel path; events are queued");
      client_->disconnect();
      std::lock_guard lock(mutex_);
      last_error_ = e.what();
      client_stats_ = client_->stats();
      // What was taken off the queue may not have landed: it goes back first.
      for (auto it = batch.rbegin(); it != batch.rend(); ++it) queue_.push_front(std::move(*it));
    }
  }
  // Drain what is queued before exiting (best effort).
  try {
    std::vector<Pending> rest;
    {
      std::lock_guard lock(mutex_);
      rest.assign(queue_.begin(), queue_.end());
    }
    if (client_->connected() && !rest.empty()) write(*client_, rest);
  } catch (const redis::Error&) {
  }
}

std::vector<std::pair<state::AllocationRecord, std::shared_ptr<AllocationInfo>>> RedisStateStore::load_own() {
  std::vector<std::pair<state::AllocationRecord, std::shared_ptr<AllocationInfo>>> out;
  redis::Client c(cfg_.state_redis);
  c.connect();
  auto now = now_s();
  auto snap = state::read_snapshot(c, cfg_.instance_id, now + 1);
  if (snap.malformed)
    log_warn("restore: " + std::to_string(snap.malformed) + " malformed record(s) skipped; first: " + snap.first_error);
  for (auto& s : snap.allocations) {
    auto info = std::make_shared<AllocationInfo>();
    info->id = s.record.id;
    info->relay = s.record.relay;
    info->relay6 = s.record.relay6;
    info->username = s.record.username;
    info->realm = s.record.realm;
    info->expires_s = s.record.expires_s;
    for (const auto& p : s.permissions)
      if (p.expires_s > now) info->permissions.push_back({p.peer, p.expires_s});
    for (const auto& ch : s.channels)
      if (ch.expires_s > now) info->channels.push_back({ch.number, ch.peer, ch.expires_s});
    out.emplace_back(std::move(s.record), std::move(info));
  }
  return out;
}

}  // namespace turn::cp
