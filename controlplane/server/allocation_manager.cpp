// SPDX-License-Identifier: Apache-2.0
#include "controlplane/server/allocation_manager.h"

#include <cerrno>

#include "common/log/log.h"
#include "controlplane/net/socket.h"

namespace turn::cp {

// ---- relay ports -------------------------------------------------------------

int KernelRelayPorts::open_random(const IpAddress& ip, uint16_t min, uint16_t max, bool even, bool dont_fragment,
                                  bool tcp, uint16_t& port_out) {
  uint32_t span = uint32_t{max} - min + 1;
  for (int attempt = 0; attempt < 128; ++attempt) {
    uint32_t p = min + rng_() % span;
    if (even) p &= ~1u;
    if (p < min || p > max) continue;
    SocketAddress at{ip, static_cast<uint16_t>(p)};
    int fd = tcp ? try_open_tcp_relay_listener(at) : try_open_relay_socket(at, dont_fragment);
    if (fd >= 0) {
      port_out = static_cast<uint16_t>(p);
      return fd;
    }
  }
  return -1;
}

int KernelRelayPorts::open_at(const SocketAddress& at, bool dont_fragment) {
  return try_open_relay_socket(at, dont_fragment);
}

// ---- the allocations ---------------------------------------------------------

AllocationManager::AllocationManager(SharedState& shared, const Clock& clock, RelayPorts& ports, AllocationIo& io)
    : shared_(shared), cfg_(shared.cfg), clock_(clock), ports_(ports), io_(io) {}

AllocationManager::~AllocationManager() { clear(); }

Allocation* AllocationManager::find(const FiveTuple& t) {
  auto it = by_tuple_.find(t);
  if (it == by_tuple_.end()) return nullptr;
  if (it->second->expires <= clock_.now()) {
    destroy(*it->second, "lifetime expired");
    return nullptr;
  }
  return it->second.get();
}

Allocation& AllocationManager::create(const FiveTuple& tuple, const ClientLink& link, const std::string& username,
                                      const RelaySockets& sockets, uint32_t lifetime_s) {
  auto info = std::make_shared<AllocationInfo>();
  info->id = cfg_.instance_id + "/" + sockets.relay.to_string();
  info->relay = sockets.relay;
  if (sockets.fd6 >= 0) info->relay6 = sockets.relay6;
  info->username = username;
  info->realm = cfg_.realm;
  info->expires_s = clock_.now_s() + lifetime_s;
  Allocation& a = install(tuple, link, sockets, info, clock_.now() + std::chrono::seconds(lifetime_s));
  for (auto* s : shared_.sinks) s->allocation_created(info);
  return a;
}

bool AllocationManager::restore(const FiveTuple& tuple, const ClientLink& link,
                                const std::shared_ptr<AllocationInfo>& info) {
  RelaySockets sockets;
  sockets.fd = ports_.open_at(info->relay, false);
  sockets.relay = info->relay;
  if (sockets.fd < 0) {
    log_warn("restore: cannot bind relay " + info->relay.to_string() + " again: " + errno_text(errno));
    return false;
  }
  // A dual-stack allocation's IPv6 half (RFC 8656 §7.2) comes back with it;
  // when its port cannot be bound again the allocation stays IPv4 only.
  if (info->relay6.port != 0) {
    sockets.fd6 = ports_.open_at(info->relay6, false);
    sockets.relay6 = info->relay6;
    if (sockets.fd6 < 0) {
      log_warn("restore: cannot bind relay " + info->relay6.to_string() + " again (" + errno_text(errno) +
               "); allocation " + info->id + " keeps its IPv4 half only");
      info->relay6 = {};
    }
  }
  uint64_t now_s = clock_.now_s();
  auto to_steady = [&](uint64_t wall) { return clock_.now() + std::chrono::seconds(wall > now_s ? wall - now_s : 0); };
  (void)take_quota(info->username);  // counted, even if over a lowered quota
  Allocation& a = install(tuple, link, sockets, info, to_steady(info->expires_s.load()));
  std::lock_guard lock(info->mutex);
  for (const auto& p : info->permissions) a.permissions[p.peer] = to_steady(p.expires_s);
  for (const auto& ch : info->channels) {
    a.channels[ch.number] = Channel{ch.peer, to_steady(ch.expires_s)};
    a.channel_by_peer[ch.peer] = ch.number;
  }
  return true;
}

// The one place that puts an allocation into service, for Allocate and for
// restore: its relayed sockets watched, then the allocation findable by
// its 5-tuple and its id.
Allocation& AllocationManager::install(const FiveTuple& tuple, const ClientLink& link, const RelaySockets& sockets,
                                       std::shared_ptr<AllocationInfo> info, TimePoint expires) {
  auto a = std::make_unique<Allocation>();
  a->tuple = tuple;
  a->link = link;
  a->relay_fd = sockets.fd;
  a->relay_fd6 = sockets.fd6;
  a->tcp = sockets.tcp;
  a->dont_fragment = sockets.dont_fragment;
  a->username = info->username;
  a->expires = expires;
  // max-bps: the config's, or the realm's from the user database.
  a->to_peer_bucket.configure(shared_.limits.max_bps());
  a->to_client_bucket.configure(shared_.limits.max_bps());
  info->tuple = tuple;
  info->relay_advertised = advertised(info->relay);
  if (sockets.fd6 >= 0) info->relay6_advertised = advertised(info->relay6);
  info->created_s = clock_.now_s();
  a->info = info;
  Allocation& raw = *a;
  io_.serve(raw);
  by_tuple_[tuple] = std::move(a);
  shared_.registry.add(info);
  return raw;
}

void AllocationManager::destroy(Allocation& a, const char* why) {
  log_info("allocation " + a.info->id + " for " + a.username + " (" + transport_name(a.tuple.transport) + " " +
           a.tuple.client.to_string() + ") released: " + why);
  // Out of the registry before the store hears of it: a resync that reads
  // the registry after the delete event was queued cannot bring it back.
  shared_.registry.remove(a.info->id);
  for (auto* s : shared_.sinks) s->allocation_deleted(a.info);
  return_quota(a.username);
  io_.release(a);
  FiveTuple key = a.tuple;
  by_tuple_.erase(key);
}

void AllocationManager::close_stream(StreamConnection* s) {
  Hold hold(*this);
  closed_streams_.push_back(s);
}

void AllocationManager::end_hold() {
  if (holds_ > 1) {
    --holds_;
    return;
  }
  // Still held while they go: a stream that closes during one of these
  // destroys queues behind them instead of destroying under this loop.
  while (!closed_streams_.empty()) {
    StreamConnection* s = closed_streams_.front();
    closed_streams_.erase(closed_streams_.begin());
    std::vector<FiveTuple> doomed;
    for (auto& [t, a] : by_tuple_)
      if (a->link.stream == s) doomed.push_back(t);
    for (const auto& t : doomed)
      if (auto it = by_tuple_.find(t); it != by_tuple_.end()) destroy(*it->second, "client connection closed");
  }
  holds_ = 0;
}

void AllocationManager::clear() {
  Hold hold(*this);
  while (!by_tuple_.empty()) destroy(*by_tuple_.begin()->second, "shutdown");
}

void AllocationManager::refresh(Allocation& a, uint32_t lifetime_s) {
  a.expires = clock_.now() + std::chrono::seconds(lifetime_s);
  a.info->expires_s = clock_.now_s() + lifetime_s;
  for (auto* s : shared_.sinks) s->allocation_refreshed(a.info);
}

void AllocationManager::permit(Allocation& a, const IpAddress& peer) {
  TimePoint exp = clock_.now() + std::chrono::seconds(cfg_.permission_lifetime_s);
  a.permissions[peer] = exp;
  // RFC 8656 §9: a permission is per peer IP; a dual-stack allocation's
  // IPv6 peers belong to its IPv6 relayed address (§7.2), so the peer's
  // family says which half the record's `perm:` field is for.
  for (auto* s : shared_.sinks) s->permission_installed(a.info, peer, wall_expiry(exp));
}

void AllocationManager::bind_channel(Allocation& a, uint16_t channel, const SocketAddress& peer) {
  TimePoint exp = clock_.now() + std::chrono::seconds(cfg_.channel_lifetime_s);
  a.channels[channel] = Channel{peer, exp};
  a.channel_by_peer[peer] = channel;
  // §11.2: binding a channel also installs or refreshes the permission.
  permit(a, peer.ip);
  // §12: the channel belongs to the relayed address of the peer's family
  // (a dual-stack allocation's IPv6 half for an IPv6 peer, §7.2).
  for (auto* s : shared_.sinks) s->channel_bound(a.info, channel, peer, wall_expiry(exp));
}

void AllocationManager::publish(Allocation& a) {
  std::lock_guard lock(a.info->mutex);
  a.info->permissions.clear();
  for (const auto& [ip, exp] : a.permissions) a.info->permissions.push_back({ip, wall_expiry(exp)});
  a.info->channels.clear();
  for (const auto& [num, ch] : a.channels) a.info->channels.push_back({num, ch.peer, wall_expiry(ch.expires)});
}

size_t AllocationManager::live_permissions(const Allocation& a) const {
  auto now = clock_.now();
  size_t live = 0;
  for (const auto& [ip, exp] : a.permissions) live += exp > now;
  return live;
}

void AllocationManager::sweep() {
  Hold hold(*this);
  auto now = clock_.now();
  std::vector<Allocation*> expired;
  for (auto& [t, a] : by_tuple_) {
    if (a->expires <= now) {
      expired.push_back(a.get());
      continue;
    }
    bool changed = std::erase_if(a->permissions, [&](const auto& p) { return p.second <= now; }) > 0;
    for (auto it = a->channels.begin(); it != a->channels.end();) {
      if (it->second.expires <= now) {
        a->channel_by_peer.erase(it->second.peer);
        it = a->channels.erase(it);
        changed = true;
      } else {
        ++it;
      }
    }
    if (changed) publish(*a);
  }
  for (auto* a : expired) destroy(*a, "lifetime expired");
}

bool AllocationManager::take_quota(const std::string& username) { return shared_.quotas.acquire(username); }

void AllocationManager::return_quota(const std::string& username) { shared_.quotas.release(username); }

SocketAddress AllocationManager::advertised(const SocketAddress& relay) const {
  for (const auto& e : cfg_.external_ips)
    if (e.private_ip.is_unspecified() || e.private_ip == relay.ip)
      if (e.public_ip.is_v4() == relay.ip.is_v4()) return SocketAddress{e.public_ip, relay.port};
  return relay;
}

uint64_t AllocationManager::wall_expiry(TimePoint t) const {
  auto left = std::chrono::duration_cast<std::chrono::seconds>(t - clock_.now()).count();
  return clock_.now_s() + static_cast<uint64_t>(std::max<long long>(0, left));
}

}  // namespace turn::cp
