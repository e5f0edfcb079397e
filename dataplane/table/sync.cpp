// SPDX-License-Identifier: Apache-2.0
// Redis snapshot + change stream -> tables.
#include "dataplane/table/sync.h"

#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <rte_cycles.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <unordered_set>

#include "common/net/address.h"
#include "common/state/records.h"
#include "dataplane/table/tables.h"

namespace turn::dp {

namespace {

using Fields = std::vector<std::pair<std::string, std::string>>;

struct Reply {
  redisReply* r;
  explicit Reply(void* p) : r(static_cast<redisReply*>(p)) {}
  ~Reply() {
    if (r) freeReplyObject(r);
  }
  Reply(const Reply&) = delete;
  Reply& operator=(const Reply&) = delete;
};

Fields pairs(const redisReply* r) {
  Fields f;
  if (!r || r->type != REDIS_REPLY_ARRAY) return f;
  for (size_t i = 0; i + 1 < r->elements; i += 2)
    f.emplace_back(std::string(r->element[i]->str, r->element[i]->len),
                   std::string(r->element[i + 1]->str, r->element[i + 1]->len));
  return f;
}

bool v4(const std::string& text, uint32_t& ip, uint16_t& port) {
  auto a = SocketAddress::parse(text);
  if (!a || !a->ip.is_v4()) return false;
  std::memcpy(&ip, a->ip.v4_bytes(), 4);
  port = htons(a->port);
  return true;
}

bool v6(const std::string& text, Ip6& ip, uint16_t& port) {
  auto a = SocketAddress::parse(text);
  if (!a || a->ip.is_v4()) return false;
  std::memcpy(ip.b, a->ip.bytes.data(), 16);
  port = htons(a->port);
  return true;
}

bool v6ip(const std::string& text, Ip6& ip) {
  auto a = IpAddress::parse(text);
  if (!a || a->is_v4()) return false;
  std::memcpy(ip.b, a->bytes.data(), 16);
  return true;
}

bool v4ip(const std::string& text, uint32_t& ip) {
  auto a = IpAddress::parse(text);
  if (!a || !a->is_v4()) return false;
  std::memcpy(&ip, a->v4_bytes(), 4);
  return true;
}

Tsc deadline(uint64_t expires_s) {
  auto now_s = static_cast<uint64_t>(std::time(nullptr));
  if (expires_s <= now_s) return 0;
  return rte_get_tsc_cycles() + (expires_s - now_s) * rte_get_tsc_hz();
}

void log(const std::string& s) { std::fprintf(stderr, "turn-dataplane: sync: %s\n", s.c_str()); }

}  // namespace

StateSync::StateSync(Options o, Tables& tables, std::vector<const AllocCounters*> counters)
    : o_(std::move(o)), tables_(tables), counters_(std::move(counters)),
      baseline_(tables.capacity()), slot_ids_(tables.capacity()) {}

StateSync::~StateSync() { stop(); }

void StateSync::start() { thread_ = std::thread([this] { run(); }); }

void StateSync::stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  if (ctx_) redisFree(ctx_);
  ctx_ = nullptr;
}

bool StateSync::wait_ready(int timeout_ms) const {
  for (int i = 0; i < timeout_ms / 10 && !ready_.load(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  return ready_.load();
}

bool StateSync::connect() {
  if (ctx_) redisFree(ctx_);
  timeval tv{2, 0};
  ctx_ = redisConnectWithTimeout(o_.host.c_str(), o_.port, tv);
  if (!ctx_ || ctx_->err) {
    if (ctx_) redisFree(ctx_);
    ctx_ = nullptr;
    return false;
  }
  timeval io{3, 0};
  redisSetTimeout(ctx_, io);
  if (!o_.password.empty()) Reply a(redisCommand(ctx_, "AUTH %s", o_.password.c_str()));
  if (o_.db != 0) Reply s(redisCommand(ctx_, "SELECT %d", o_.db));
  return ctx_->err == 0;
}

AllocCounters StateSync::sum_counters(uint32_t idx) const {
  // Every worker's counters for one slot (read while workers write them:
  // aligned 64-bit loads, a count may be one packet behind).
  AllocCounters sum{};
  for (const auto* c : counters_) {
    sum.to_peer_packets += c[idx].to_peer_packets;
    sum.to_peer_bytes += c[idx].to_peer_bytes;
    sum.to_client_packets += c[idx].to_client_packets;
    sum.to_client_bytes += c[idx].to_client_bytes;
  }
  return sum;
}

void StateSync::apply_event(const Fields& f) {
  auto type = state::event_type(state::field(f, "type"));
  std::string id(state::field(f, "id"));
  if (!type || id.empty()) return;
  switch (*type) {
    case state::EventType::Create: {
      auto rec = state::AllocationRecord::from_fields(f);
      if (!rec) return;
      if (rec->transport != "udp") {
        stats_.skipped++;  // TCP/TLS clients stay on the kernel path
        return;
      }
      // Client and relay of one family: IPv4 or IPv6 tables. Across
      // families (RFC 8656 §7.2) the kernel path relays.
      ClientKey ck{};
      ClientKey6 ck6{};
      uint32_t relay_ip;
      Ip6 relay_ip6;
      uint16_t relay_port;
      bool ok4 = v4(rec->client.to_string(), ck.client_ip, ck.client_port) &&
                 v4(rec->server.to_string(), ck.server_ip, ck.server_port) &&
                 v4(rec->relay.to_string(), relay_ip, relay_port);
      bool ok6 = !ok4 && v6(rec->client.to_string(), ck6.client_ip, ck6.client_port) &&
                 v6(rec->server.to_string(), ck6.server_ip, ck6.server_port) &&
                 v6(rec->relay.to_string(), relay_ip6, relay_port);
      if (!ok4 && !ok6) {
        stats_.skipped++;
        return;
      }
      if (ok4 ? !tables_.upsert_allocation(id, ck, relay_ip, relay_port, deadline(rec->expires_s))
              : !tables_.upsert_allocation(id, ck6, relay_ip6, relay_port, deadline(rec->expires_s))) {
        stats_.table_full++;
        return;
      }
      // New slot: what its counters already hold belongs to an earlier allocation.
      if (int64_t slot = tables_.index_of(id); slot >= 0 && slot_ids_[static_cast<size_t>(slot)] != id) {
        auto idx = static_cast<size_t>(slot);
        slot_ids_[idx] = id;
        baseline_[idx] = sum_counters(static_cast<uint32_t>(idx));
      }
      break;
    }
    case state::EventType::Refresh:
      if (auto e = state::parse_u64(state::field(f, "expires"))) tables_.refresh_allocation(id, deadline(*e));
      break;
    case state::EventType::Permission: {
      uint32_t ip;
      Ip6 ip6;
      auto e = state::parse_u64(state::field(f, "expires"));
      std::string peer(state::field(f, "peer"));
      if (!e) break;
      // A family that does not match the allocation's is refused (false):
      // turn-control answers 443 for those, so none should arrive.
      // (An allocation we do not hold, e.g. TCP, is no table overflow.)
      if ((v4ip(peer, ip) ? !tables_.upsert_permission(id, ip, deadline(*e))
                          : v6ip(peer, ip6) && !tables_.upsert_permission(id, ip6, deadline(*e))) &&
          tables_.index_of(id) >= 0)
        stats_.table_full++;
      break;
    }
    case state::EventType::Channel: {
      uint32_t ip;
      Ip6 ip6;
      uint16_t port;
      auto e = state::parse_u64(state::field(f, "expires"));
      auto ch = state::parse_u64(state::field(f, "channel"));
      std::string peer(state::field(f, "peer"));
      if (!e || !ch || *ch < 0x4000 || *ch > 0x7FFF) break;
      auto ch_n = htons(static_cast<uint16_t>(*ch));
      if ((v4(peer, ip, port) ? !tables_.upsert_channel(id, ch_n, ip, port, deadline(*e))
                              : v6(peer, ip6, port) && !tables_.upsert_channel(id, ch_n, ip6, port, deadline(*e))) &&
          tables_.index_of(id) >= 0)
        stats_.table_full++;
      break;
    }
    case state::EventType::Delete:
      tables_.remove_allocation(id);
      break;
    case state::EventType::Resync:
      break;
  }
}

void StateSync::snapshot() {
  auto t0 = std::chrono::steady_clock::now();
  // 1. Where the stream stands now: events after this are tailed.
  {
    Reply r(redisCommand(ctx_, "XREVRANGE %s + - COUNT 1", std::string(state::kEventStream).c_str()));
    if (!r.r) throw std::runtime_error("XREVRANGE failed");
    last_id_ = (r.r->type == REDIS_REPLY_ARRAY && r.r->elements > 0) ? std::string(r.r->element[0]->element[0]->str) : "0-0";
  }
  // 2. Every live allocation, pipelined.
  auto now_s = static_cast<uint64_t>(std::time(nullptr));
  std::vector<std::string> ids;
  {
    Reply r(redisCommand(ctx_, "ZRANGEBYSCORE %s %llu +inf", std::string(state::kAllocIndex).c_str(),
                         static_cast<unsigned long long>(now_s)));
    if (!r.r || r.r->type != REDIS_REPLY_ARRAY) throw std::runtime_error("ZRANGEBYSCORE failed");
    for (size_t i = 0; i < r.r->elements; ++i) ids.emplace_back(r.r->element[i]->str, r.r->element[i]->len);
  }
  std::unordered_set<std::string> live;
  constexpr size_t kBatch = 512;
  for (size_t b = 0; b < ids.size(); b += kBatch) {
    size_t e = std::min(ids.size(), b + kBatch);
    for (size_t i = b; i < e; ++i) {
      redisAppendCommand(ctx_, "HGETALL %s", state::alloc_key(ids[i]).c_str());
      redisAppendCommand(ctx_, "HGETALL %s", state::permissions_key(ids[i]).c_str());
      redisAppendCommand(ctx_, "HGETALL %s", state::channels_key(ids[i]).c_str());
    }
    for (size_t i = b; i < e; ++i) {
      void *ra, *rp, *rc;
      if (redisGetReply(ctx_, &ra) != REDIS_OK) throw std::runtime_error("snapshot read failed");
      Reply a(ra);
      if (redisGetReply(ctx_, &rp) != REDIS_OK) throw std::runtime_error("snapshot read failed");
      Reply p(rp);
      if (redisGetReply(ctx_, &rc) != REDIS_OK) throw std::runtime_error("snapshot read failed");
      Reply c(rc);
      Fields af = pairs(a.r);
      if (af.empty()) continue;  // deleted meanwhile
      af.emplace_back("type", "create");
      apply_event(af);
      live.insert(ids[i]);
      for (const auto& [peer, exp] : pairs(p.r))
        apply_event({{"type", "perm"}, {"id", ids[i]}, {"peer", peer}, {"expires", exp}});
      for (const auto& [num, val] : pairs(c.r)) {
        auto ch = state::ChannelRecord::parse(num, val);
        if (ch)
          apply_event({{"type", "chan"}, {"id", ids[i]}, {"channel", num}, {"peer", ch->peer.to_string()},
                       {"expires", std::to_string(ch->expires_s)}});
      }
    }
  }
  // 3. What we hold that is no longer live goes.
  std::vector<std::string> stale;
  tables_.for_each([&](const std::string& id, uint32_t) {
    if (!live.count(id)) stale.push_back(id);
  });
  for (const auto& id : stale) tables_.remove_allocation(id);
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count();
  stats_.snapshots++;
  stats_.last_snapshot_allocations = live.size();
  stats_.last_snapshot_us = static_cast<uint64_t>(us);
  log("snapshot: " + std::to_string(live.size()) + " allocation(s) in " + std::to_string(us / 1000) + " ms; tailing from " + last_id_);
}

void StateSync::tail() {
  Reply r(redisCommand(ctx_, "XREAD COUNT 1024 BLOCK 200 STREAMS %s %s", std::string(state::kEventStream).c_str(),
                       last_id_.c_str()));
  if (!r.r) throw std::runtime_error(ctx_->errstr);
  if (r.r->type != REDIS_REPLY_ARRAY || r.r->elements == 0) return;
  const redisReply* entries = r.r->element[0]->element[1];
  for (size_t i = 0; i < entries->elements; ++i) {
    const redisReply* e = entries->element[i];
    last_id_ = e->element[0]->str;
    apply_event(pairs(e->element[1]));
    stats_.events++;
  }
  // Lag: stream ids start with the producer's millisecond clock.
  uint64_t ms = std::strtoull(last_id_.c_str(), nullptr, 10);
  auto now_ms = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::system_clock::now().time_since_epoch()).count());
  stats_.lag_ms = now_ms > ms ? now_ms - ms : 0;
}

void StateSync::push_counters() {
  // A bounded sweep: at most kCounterPushesPerCycle allocations' deltas per
  // cycle (one cycle a second), resuming where the last cycle stopped, and
  // replies read every kCounterPipeline commands. Pushing every active
  // allocation every second was 4M HINCRBYs a second at 1M allocations: a
  // 240 MB hiredis buffer grown by realloc, page clearing and formatting
  // that took the sync thread's core and the shared cache (the 1M-allocation
  // profile in bench/RESULTS.md). Now at most ~1.3 MB is buffered, 64k
  // commands a second at most, and at 1M active allocations each one's
  // traffic reaches Redis within ~64 s.
  const size_t cap = slot_ids_.size();
  size_t pending = 0, pushed = 0;
  auto drain = [&] {
    for (; pending > 0; --pending) {
      void* r;
      if (redisGetReply(ctx_, &r) != REDIS_OK) throw std::runtime_error("counter push failed");
      freeReplyObject(r);
    }
  };
  for (size_t visited = 0; visited < cap && pushed < kCounterPushesPerCycle; ++visited) {
    const auto idx = static_cast<uint32_t>(counter_cursor_);
    counter_cursor_ = counter_cursor_ + 1 == cap ? 0 : counter_cursor_ + 1;
    const std::string& id = slot_ids_[idx];
    if (id.empty()) continue;
    AllocCounters sum = sum_counters(idx);
    AllocCounters& base = baseline_[idx];
    if (sum.to_peer_packets == base.to_peer_packets && sum.to_client_packets == base.to_client_packets) continue;
    if (tables_.index_of(id) != int64_t{idx}) continue;  // a freed slot keeps its last id
    std::string key = state::traffic_key(id);
    redisAppendCommand(ctx_, "HINCRBY %s dp_packets_to_peer %llu", key.c_str(),
                       static_cast<unsigned long long>(sum.to_peer_packets - base.to_peer_packets));
    redisAppendCommand(ctx_, "HINCRBY %s dp_bytes_to_peer %llu", key.c_str(),
                       static_cast<unsigned long long>(sum.to_peer_bytes - base.to_peer_bytes));
    redisAppendCommand(ctx_, "HINCRBY %s dp_packets_to_client %llu", key.c_str(),
                       static_cast<unsigned long long>(sum.to_client_packets - base.to_client_packets));
    redisAppendCommand(ctx_, "HINCRBY %s dp_bytes_to_client %llu", key.c_str(),
                       static_cast<unsigned long long>(sum.to_client_bytes - base.to_client_bytes));
    pending += 4;
    ++pushed;
    stats_.bytes_to_peer += sum.to_peer_bytes - base.to_peer_bytes;
    stats_.bytes_to_client += sum.to_client_bytes - base.to_client_bytes;
    base = sum;
    if (pending >= kCounterPipeline) drain();
  }
  drain();
}

void StateSync::push_stats() {
  if (!stats_fn_) return;
  auto values = stats_fn_();
  std::vector<std::string> args = {"HSET", std::string(state::kDataplanePrefix) + o_.instance};
  for (auto& [k, v] : values) {
    args.push_back(k);
    args.push_back(std::to_string(v));
  }
  args.push_back("updated");
  args.push_back(std::to_string(std::time(nullptr)));
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  Reply r(redisCommandArgv(ctx_, static_cast<int>(argv.size()), argv.data(), lens.data()));
  if (!r.r) throw std::runtime_error("stats push failed");
  Reply e(redisCommand(ctx_, "EXPIRE %s%s 10", std::string(state::kDataplanePrefix).c_str(), o_.instance.c_str()));
}

void StateSync::run() {
  int backoff_ms = 250;
  auto last_push = std::chrono::steady_clock::now();
  auto last_expire = last_push;
  while (!stop_.load()) {
    if (!ctx_) {
      if (!connect()) {
        if (stats_.connected.exchange(false)) log("redis " + o_.host + ":" + std::to_string(o_.port) + " unreachable; forwarding from the tables as they are");
        std::this_thread::sleep_for(std::chrono::milliseconds(backoff_ms));
        backoff_ms = std::min(backoff_ms * 2, 5000);
        continue;
      }
      try {
        snapshot();
        stats_.connected = true;
        ready_ = true;
        backoff_ms = 250;
      } catch (const std::exception& e) {
        log(std::string("snapshot failed: ") + e.what());
        redisFree(ctx_);
        ctx_ = nullptr;
        continue;
      }
    }
    try {
      tail();
      auto now = std::chrono::steady_clock::now();
      if (now - last_push >= std::chrono::seconds(1)) {
        last_push = now;
        push_counters();
        push_stats();
      }
      if (now - last_expire >= std::chrono::seconds(5)) {
        last_expire = now;
        tables_.expire(rte_get_tsc_cycles(), 60 * rte_get_tsc_hz());
      }
    } catch (const std::exception& e) {
      log(std::string("lost redis: ") + e.what() + "; established flows keep forwarding");
      stats_.connected = false;
      redisFree(ctx_);
      ctx_ = nullptr;
    }
  }
}

}  // namespace turn::dp
