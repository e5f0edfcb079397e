// SPDX-License-Identifier: Apache-2.0
// The instance's snapshot + change stream -> tables (sync.h).
#include "dataplane/table/sync.h"

#include <arpa/inet.h>
#include <rte_cycles.h>

#include <cstdio>
#include <cstring>
#include <ctime>

#include "common/log/log.h"
#include "common/net/address.h"
#include "common/redis/client.h"
#include "common/state/store.h"
#include "dataplane/table/tables.h"

namespace turn::dp {

namespace {

bool v4(const SocketAddress& a, uint32_t& ip, uint16_t& port) {
  if (!a.ip.is_v4()) return false;
  std::memcpy(&ip, a.ip.v4_bytes(), 4);
  port = htons(a.port);
  return true;
}

bool v6(const SocketAddress& a, Ip6& ip, uint16_t& port) {
  if (a.ip.is_v4()) return false;
  std::memcpy(ip.b, a.ip.bytes.data(), 16);
  port = htons(a.port);
  return true;
}

Tsc deadline(uint64_t expires_s) {
  auto now_s = static_cast<uint64_t>(std::time(nullptr));
  if (expires_s <= now_s) return 0;
  return rte_get_tsc_cycles() + (expires_s - now_s) * rte_get_tsc_hz();
}

void log(const std::string& s) { log_info("sync: " + s); }

}  // namespace

StateSync::StateSync(Options o, Tables& tables, std::vector<const AllocCounters*> counters)
    : o_(std::move(o)),
      tables_(tables),
      counters_(std::move(counters)),
      baseline_(tables.capacity()),
      slot_ids_(tables.capacity()),
      seen_(tables.capacity()),
      client_(std::make_unique<redis::Client>(o_.store)) {}

StateSync::~StateSync() { stop(); }

void StateSync::start() {
  thread_ = std::thread([this] { run(); });
}

void StateSync::stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  client_->disconnect();
}

bool StateSync::wait_ready(int timeout_ms) const {
  for (int i = 0; i < timeout_ms / 10 && !ready_.load(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  return ready_.load();
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

void StateSync::create(const state::AllocationRecord& rec) {
  const std::string& id = rec.id;
  unconfirmed_.erase(id);
  if (rec.transport != Transport::Udp) {
    stats_.skipped++;  // TCP/TLS clients stay on the kernel path
    return;
  }
  // The client 5-tuple in the tables of its family; the relayed addresses
  // one per family: `relay`, and a dual-stack allocation's `relay6` (RFC
  // 8656 §7.2). Halves whose family is not the client's are relayed with
  // the IP version translated (docs/dataplane.md).
  AllocationSpec spec;
  bool client_ok;
  if (rec.client.ip.is_v4()) {
    client_ok = v4(rec.client, spec.client.client_ip, spec.client.client_port) &&
                v4(rec.server, spec.client.server_ip, spec.client.server_port);
  } else {
    spec.client_v6 = true;
    client_ok = v6(rec.client, spec.client6.client_ip, spec.client6.client_port) &&
                v6(rec.server, spec.client6.server_ip, spec.client6.server_port);
  }
  bool relay_ok = v4(rec.relay, spec.relay4, spec.relay4_port) || v6(rec.relay, spec.relay6, spec.relay6_port);
  if (rec.dual()) relay_ok = relay_ok && spec.relay6_port == 0 && v6(rec.relay6, spec.relay6, spec.relay6_port);
  if (!client_ok || !relay_ok || (spec.relay4_port == 0 && spec.relay6_port == 0)) {
    stats_.skipped++;
    return;
  }
  if (!tables_.upsert_allocation(id, spec, deadline(rec.expires_s))) {
    stats_.table_full++;
    return;
  }
  int64_t slot = tables_.index_of(id);
  if (slot < 0) return;
  auto idx = static_cast<size_t>(slot);
  seen_[idx] = snapshot_gen_;
  // New slot: what its counters already hold belongs to an earlier allocation.
  if (slot_ids_[idx] != id) {
    slot_ids_[idx] = id;
    baseline_[idx] = sum_counters(static_cast<uint32_t>(idx));
  }
}

void StateSync::permission(const std::string& id, const state::PermissionRecord& p) {
  // On the relayed address of the peer's family (RFC 8656 §9, §7.2). One
  // the allocation does not have is refused (false): turn-control answers
  // 443 for those, so none should arrive. (An allocation we do not hold,
  // e.g. TCP, is no table overflow.)
  bool ok;
  if (p.peer.is_v4()) {
    uint32_t ip;
    std::memcpy(&ip, p.peer.v4_bytes(), 4);
    ok = tables_.upsert_permission(id, ip, deadline(p.expires_s));
  } else {
    Ip6 ip6;
    std::memcpy(ip6.b, p.peer.bytes.data(), 16);
    ok = tables_.upsert_permission(id, ip6, deadline(p.expires_s));
  }
  if (!ok && tables_.index_of(id) >= 0) stats_.table_full++;
}

void StateSync::channel(const std::string& id, const state::ChannelRecord& c) {
  uint32_t ip;
  Ip6 ip6;
  uint16_t port;
  auto ch_n = htons(c.number);
  bool ok = v4(c.peer, ip, port)
                ? tables_.upsert_channel(id, ch_n, ip, port, deadline(c.expires_s))
                : v6(c.peer, ip6, port) && tables_.upsert_channel(id, ch_n, ip6, port, deadline(c.expires_s));
  if (!ok && tables_.index_of(id) >= 0) stats_.table_full++;
}

void StateSync::apply(const state::Event& e) {
  using state::EventType;
  switch (e.type) {
    case EventType::Create:
      create(e.record);
      break;
    case EventType::Refresh:
      tables_.refresh_allocation(e.id, deadline(e.expires_s));
      break;
    case EventType::Permission:
      permission(e.id, e.permission);
      break;
    case EventType::Channel:
      channel(e.id, e.channel);
      break;
    case EventType::Delete:
      unconfirmed_.erase(e.id);
      tables_.remove_allocation(e.id);
      break;
    case EventType::Resync:
      // turn-control has rewritten every live record of the instance: what
      // is still unconfirmed has ended.
      if (e.id == o_.instance) settle_unconfirmed(true);
      break;
  }
}

void StateSync::settle_unconfirmed(bool all) {
  auto now = std::chrono::steady_clock::now();
  for (auto it = unconfirmed_.begin(); it != unconfirmed_.end();) {
    if (all || it->second <= now) {
      tables_.remove_allocation(it->first);
      it = unconfirmed_.erase(it);
    } else {
      ++it;
    }
  }
  stats_.unconfirmed = unconfirmed_.size();
}

void StateSync::snapshot() {
  auto t0 = std::chrono::steady_clock::now();
  ++snapshot_gen_;
  size_t loaded = 0;
  auto snap = state::visit_snapshot(*client_, o_.instance, static_cast<uint64_t>(std::time(nullptr)),
                                    [&](const state::AllocationState& a) {
                                      create(a.record);
                                      for (const auto& p : a.permissions) permission(a.record.id, p);
                                      for (const auto& c : a.channels) channel(a.record.id, c);
                                      ++loaded;
                                    });
  last_id_ = snap.stream_position;
  if (snap.malformed) {
    stats_.bad_events += snap.malformed;
    log(std::to_string(snap.malformed) + " malformed record(s) skipped; first: " + snap.first_error);
  }
  // What we hold that the snapshot lacks: gone, unless the master changed
  // (then it may be a write the new master never received; turn-control's
  // resync settles it).
  bool master_changed = !last_run_id_.empty() && client_->run_id() != last_run_id_;
  last_run_id_ = client_->run_id();
  std::vector<std::string> stale;
  tables_.for_each([&](const std::string& id, uint32_t idx) {
    if (seen_[idx] != snapshot_gen_) stale.push_back(id);
  });
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(kUnconfirmedGraceS);
  for (const auto& id : stale) {
    if (master_changed) {
      unconfirmed_.emplace(id, until);
      stats_.kept_unconfirmed++;
    } else {
      tables_.remove_allocation(id);
      stats_.snapshot_dropped++;
    }
  }
  stats_.unconfirmed = unconfirmed_.size();
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count();
  stats_.snapshots++;
  stats_.last_snapshot_allocations = loaded;
  stats_.last_snapshot_us = static_cast<uint64_t>(us);
  log("snapshot of instance " + o_.instance + " from " + client_->where() + ": " + std::to_string(loaded) +
      " allocation(s) in " + std::to_string(us / 1000) + " ms; tailing from " + last_id_ +
      (master_changed && !stale.empty()
           ? "; " + std::to_string(stale.size()) + " held until turn-control's resync (the master changed)"
           : ""));
}

void StateSync::tail() {
  auto entries = state::read_events(*client_, o_.instance, last_id_, 1024, 200);
  for (const auto& entry : entries) {
    last_id_ = entry.id;
    std::string why;
    auto e = state::Event::from_fields(entry.fields, &why);
    if (!e) {
      if (stats_.bad_events++ == 0) log("event " + entry.id + " skipped: " + why);
      continue;
    }
    apply(*e);
    stats_.events++;
  }
  stats_.unconfirmed = unconfirmed_.size();
  if (entries.empty()) return;
  // Lag: stream ids start with the producer's millisecond clock.
  uint64_t ms = std::strtoull(last_id_.c_str(), nullptr, 10);
  auto now_ms = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
  stats_.lag_ms = now_ms > ms ? now_ms - ms : 0;
}

void StateSync::push_counters() {
  // A bounded sweep: at most kCounterPushesPerCycle allocations' deltas per
  // cycle (one cycle a second), resuming where the last cycle stopped, and
  // replies read every kCounterPipeline commands. Pushing every active
  // allocation every second was 4M HINCRBYs a second at 1M allocations: a
  // 240 MB client buffer, page clearing and formatting that took the sync
  // thread's core and the shared cache (the 1M-allocation profile in
  // bench/RESULTS.md). Now at most ~1.3 MB is buffered, 64k commands a
  // second at most, and at 1M active allocations each one's traffic
  // reaches the store within ~64 s.
  const size_t cap = slot_ids_.size();
  size_t pending = 0, pushed = 0;
  auto drain = [&] {
    if (pending == 0) return;
    client_->replies([](redis::ReplyRef) {});
    pending = 0;
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
    state::append_fast_traffic(
        *client_, id,
        {sum.to_peer_packets - base.to_peer_packets, sum.to_peer_bytes - base.to_peer_bytes,
         sum.to_client_packets - base.to_client_packets, sum.to_client_bytes - base.to_client_bytes});
    pending += state::kFastTrafficCommands;
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
  state::DataplaneStatus s = stats_fn_();
  s.instance = o_.instance;
  s.updated_s = static_cast<uint64_t>(std::time(nullptr));
  s.allocations = tables_.allocation_count();
  s.sync_lag_ms = stats_.lag_ms.load();
  s.sync_events = stats_.events.load();
  s.snapshots = stats_.snapshots.load();
  s.disconnects = stats_.disconnects.load();
  s.bad_events = stats_.bad_events.load();
  s.table_full = stats_.table_full.load();
  s.bytes_to_peer = stats_.bytes_to_peer.load();
  s.bytes_to_client = stats_.bytes_to_client.load();
  state::append_dataplane_status(*client_, s);
  (void)client_->replies();
}

void StateSync::run() {
  int backoff_ms = 250;
  auto last_push = std::chrono::steady_clock::now();
  auto last_expire = last_push;
  std::string last_error;
  while (!stop_.load()) {
    if (client_->connected() && client_->master_switched()) {
      log("the sentinels announced a new master; taking a snapshot from it");
      client_->disconnect();
    }
    if (!client_->connected()) {
      try {
        client_->connect();
        snapshot();
        stats_.connected = true;
        ready_ = true;
        backoff_ms = 250;
        last_error.clear();
      } catch (const std::exception& e) {
        if (stats_.connected.exchange(false)) stats_.disconnects++;
        if (last_error != e.what()) {
          last_error = e.what();
          log(last_error + "; forwarding from the tables as they are, new flows stay on the kernel path");
        }
        client_->disconnect();
        for (int i = 0; i < backoff_ms / 50 && !stop_.load(); ++i)
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
        backoff_ms = std::min(backoff_ms * 2, 500);  // a failover takes ~3 s: look again soon
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
        settle_unconfirmed(false);
      }
      if (now - last_expire >= std::chrono::seconds(5)) {
        last_expire = now;
        tables_.expire(rte_get_tsc_cycles(), 60 * rte_get_tsc_hz());
        // Fallen so far behind that the stream was trimmed past us: the
        // events in between are gone; a snapshot says what is live.
        if (last_id_ != "0-0" && state::stream_gap(*client_, o_.instance, last_id_)) {
          log("the stream was trimmed past " + last_id_ + "; taking a snapshot");
          snapshot();
        }
      }
    } catch (const std::exception& e) {
      log(std::string("lost the store: ") + e.what() + "; established flows keep forwarding");
      if (stats_.connected.exchange(false)) stats_.disconnects++;
      client_->disconnect();
    }
  }
}

}  // namespace turn::dp
