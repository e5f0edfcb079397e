// SPDX-License-Identifier: Apache-2.0
// rte_hash and FlowIndex tables with RCU-deferred reclamation (one queue).
#include "dataplane/table/tables.h"

#include <rte_errno.h>
#include <rte_hash_crc.h>
#include <rte_malloc.h>

#include <algorithm>
#include <random>
#include <stdexcept>

namespace turn::dp {

namespace {

rte_hash* make_hash(const char* name, uint32_t entries, uint32_t key_len, int socket) {
  rte_hash_parameters p{};
  p.name = name;
  p.entries = entries;
  p.key_len = key_len;
  p.hash_func = rte_hash_crc;
  p.hash_func_init_val = 0x9e3779b9;
  p.socket_id = socket;
  p.extra_flag = RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF;
  rte_hash* h = rte_hash_create(&p);
  if (!h) throw std::runtime_error(std::string("rte_hash_create(") + name + "): " + rte_strerror(rte_errno));
  return h;
}

template <class T>
T* make_array(const char* name, uint32_t n, int socket) {
  void* p = rte_zmalloc_socket(name, sizeof(T) * n, 64, socket);
  if (!p)
    throw std::runtime_error(std::string("rte_zmalloc(") + name + "): out of hugepage memory for " + std::to_string(n) +
                             " entries");
  return static_cast<T*>(p);
}

// A hash seed a client cannot know (flow_index.h).
uint64_t index_seed() {
  std::random_device rd;
  return (uint64_t{rd()} << 32) ^ rd();
}

}  // namespace

Tables::Tables(const TableSizes& sizes, rte_rcu_qsbr* qsbr, int socket) : sizes_(sizes), qsbr_(qsbr) {
  // rte_hash needs some slack over the live count (cuckoo displacement).
  uint32_t ha = sizes.allocations + sizes.allocations / 4;
  uint32_t hc = sizes.channels + sizes.channels / 4;
  client_ = make_hash("dp_client", ha, sizeof(ClientKey), socket);
  // The IPv4 ChannelData tables: sized for the channel entries they index.
  channel_mem_ = make_array<FlowIndex<ChannelKey>::Bucket>("dp_channel",
                                                           FlowIndex<ChannelKey>::buckets_for(sizes.channels), socket);
  channel_.emplace(channel_mem_, sizes.channels, index_seed());
  peer_mem_ =
      make_array<FlowIndex<PeerKey>::Bucket>("dp_peer", FlowIndex<PeerKey>::buckets_for(sizes.channels), socket);
  peer_.emplace(peer_mem_, sizes.channels, index_seed());
  perm_ = make_hash("dp_perm", hc, sizeof(PermissionKey), socket);
  neigh_ = make_hash("dp_neigh", 1 << 16, sizeof(uint32_t), socket);
  // IPv6: a quarter of the capacity (at least 1024 entries each).
  uint32_t ha6 = std::max<uint32_t>(1024, ha / 4), hc6 = std::max<uint32_t>(1024, hc / 4);
  client6_ = make_hash("dp_client6", ha6, sizeof(ClientKey6), socket);
  channel6_ = make_hash("dp_channel6", hc6, sizeof(ChannelKey6), socket);
  peer6_ = make_hash("dp_peer6", hc6, sizeof(PeerKey6), socket);
  perm6_ = make_hash("dp_perm6", hc6, sizeof(PermissionKey6), socket);
  neigh6_ = make_hash("dp_neigh6", 1 << 14, sizeof(Ip6), socket);
  allocs_ = make_array<AllocEntry>("dp_allocs", sizes.allocations, socket);
  allocs6_ = make_array<AllocEntry6>("dp_allocs6", sizes.allocations, socket);
  chan_peers6_ = make_array<Ip6>("dp_chan_peers6", sizes.channels, socket);
  channels_ = make_array<ChannelEntry>("dp_channels", sizes.channels, socket);
  perms_ = make_array<PermissionEntry>("dp_perms", sizes.channels, socket);
  // Every slot and rte_hash key position that leaves a table waits out the
  // grace period in one queue (defer(), reclaim()): rte_hash's own defer
  // queues reclaim a table's positions only on that table's later deletes,
  // which strands slots of free lists two tables share (perms_: perm_ and
  // perm6_). RW_CONCURRENCY_LF without RCU keeps a deleted key's position
  // until rte_hash_free_key_with_position.
  free_allocs_.reserve(sizes.allocations);
  for (uint32_t i = sizes.allocations; i-- > 0;) free_allocs_.push_back(i);
  free_channels_.reserve(sizes.channels);
  for (uint32_t i = sizes.channels; i-- > 0;) free_channels_.push_back(i);
  free_perms_.reserve(sizes.channels);
  for (uint32_t i = sizes.channels; i-- > 0;) free_perms_.push_back(i);
}

Tables::~Tables() {
  for (rte_hash* h : {client_, perm_, neigh_, client6_, channel6_, peer6_, perm6_, neigh6_})
    if (h) rte_hash_free(h);
  channel_.reset();
  peer_.reset();
  rte_free(channel_mem_);
  rte_free(peer_mem_);
  rte_free(allocs_);
  rte_free(allocs6_);
  rte_free(chan_peers6_);
  rte_free(channels_);
  rte_free(perms_);
}

void Tables::defer(std::vector<uint32_t>* free_list, uint32_t slot, rte_hash* h, int32_t pos) {
  deferred_.push_back(Deferred{rte_rcu_qsbr_start(qsbr_), free_list, slot, h, pos});
  reclaim();
}

void Tables::reclaim() noexcept {
  while (!deferred_.empty() && rte_rcu_qsbr_check(qsbr_, deferred_.front().token, false) == 1) {
    const Deferred& d = deferred_.front();
    if (d.table) rte_hash_free_key_with_position(d.table, d.pos);
    if (d.free_list) d.free_list->push_back(d.slot);
    deferred_.pop_front();
  }
}

void Tables::unpublish(rte_hash* h, const void* key, const void* entry, std::vector<uint32_t>* free_list,
                       uint32_t slot) {
  void* mapped = nullptr;
  if (rte_hash_lookup_data(h, key, &mapped) >= 0 && mapped == entry) {
    int32_t pos = rte_hash_del_key(h, key);
    defer(free_list, slot, pos >= 0 ? h : nullptr, pos);
    return;
  }
  // rte_hash_add_key_data replaced this entry with a later owner's (the
  // same key under another allocation id: a late delete after a resync, a
  // reused 5-tuple or relayed port): that mapping stays; this slot, which
  // readers may still hold, waits out the grace period all the same.
  if (free_list) defer(free_list, slot, nullptr, 0);
}

size_t Tables::channel_count() const noexcept {
  return static_cast<size_t>(channel_->size()) + static_cast<size_t>(rte_hash_count(channel6_));
}
size_t Tables::permission_count() const noexcept {
  return static_cast<size_t>(rte_hash_count(perm_)) + static_cast<size_t>(rte_hash_count(perm6_));
}

void Tables::set_static_neighbour(uint32_t ip, const Mac& mac) {
  static_neighbours_.push_back(ip);
  uintptr_t v = 0;
  for (int i = 0; i < 6; ++i) v = (v << 8) | mac.b[i];
  rte_hash_add_key_data(neigh_, &ip, reinterpret_cast<void*>(v));
  neigh_gen_.fetch_add(1, std::memory_order_release);
}

void Tables::learn(uint32_t ip, const Mac& mac) noexcept {
  for (uint32_t s : static_neighbours_)
    if (s == ip) return;
  uintptr_t v = 0;
  for (int i = 0; i < 6; ++i) v = (v << 8) | mac.b[i];
  void* old;
  if (rte_hash_lookup_data(neigh_, &ip, &old) >= 0 && reinterpret_cast<uintptr_t>(old) == v) return;
  rte_hash_add_key_data(neigh_, &ip, reinterpret_cast<void*>(v));  // LF: readers see old or new
  neigh_gen_.fetch_add(1, std::memory_order_release);
}

bool Tables::add_allocation(const std::string& id, WriterAlloc w, Tsc expires) {
  // Empty: every slot is live or waiting out its RCU grace period (the
  // queue also reclaims on every delete).
  if (free_allocs_.empty()) reclaim();
  if (free_allocs_.empty()) return false;
  // Take the slot before adding: an add may run RCU reclamation, which
  // pushes freed slots onto the same list.
  uint32_t idx = free_allocs_.back();
  free_allocs_.pop_back();
  AllocEntry& e = allocs_[idx];
  const AllocationSpec& s = w.spec;
  e.client = s.client;
  e.relay_ip = s.relay4;
  // The client's family's relayed address, and the other one (RFC 8656
  // §7.2): the fast path translates between families for the latter.
  e.relay_port = s.client_v6 ? s.relay6_port : s.relay4_port;
  e.alt_port = s.client_v6 ? s.relay4_port : s.relay6_port;
  e.client6 = s.client_v6 ? 1 : 0;
  allocs6_[idx] = AllocEntry6{s.client6, s.relay6};
  e.index = idx;
  e.expires.store(expires, std::memory_order_relaxed);
  int rc =
      s.client_v6 ? rte_hash_add_key_data(client6_, &s.client6, &e) : rte_hash_add_key_data(client_, &s.client, &e);
  if (rc != 0) {
    free_allocs_.push_back(idx);
    return false;
  }
  w.index = idx;
  by_id_.emplace(id, std::move(w));
  live_allocs_.store(by_id_.size(), std::memory_order_relaxed);
  return true;
}

void Tables::learn(const Ip6& ip, const Mac& mac) noexcept {
  uintptr_t v = 0;
  for (int i = 0; i < 6; ++i) v = (v << 8) | mac.b[i];
  void* old;
  if (rte_hash_lookup_data(neigh6_, &ip, &old) >= 0 && reinterpret_cast<uintptr_t>(old) == v) return;
  rte_hash_add_key_data(neigh6_, &ip, reinterpret_cast<void*>(v));
  neigh_gen_.fetch_add(1, std::memory_order_release);
}

bool Tables::upsert_allocation(const std::string& id, const AllocationSpec& spec, Tsc expires) {
  if (spec.relay4_port == 0 && spec.relay6_port == 0) return false;
  auto it = by_id_.find(id);
  if (it != by_id_.end()) {
    WriterAlloc& w = it->second;
    if (w.spec == spec) {
      set_alloc_expiry(w, expires);
      return true;
    }
    remove_allocation(id);  // same id, different tuple or relays: replace
  }
  WriterAlloc w{};
  w.spec = spec;
  return add_allocation(id, std::move(w), expires);
}

bool Tables::upsert_allocation(const std::string& id, const ClientKey& client, uint32_t relay_ip, uint16_t relay_port,
                               Tsc expires) {
  AllocationSpec s;
  s.client = client;
  s.relay4 = relay_ip;
  s.relay4_port = relay_port;
  return upsert_allocation(id, s, expires);
}

bool Tables::upsert_allocation(const std::string& id, const ClientKey6& client, const Ip6& relay_ip,
                               uint16_t relay_port, Tsc expires) {
  AllocationSpec s;
  s.client_v6 = true;
  s.client6 = client;
  s.relay6 = relay_ip;
  s.relay6_port = relay_port;
  return upsert_allocation(id, s, expires);
}

bool Tables::refresh_allocation(const std::string& id, Tsc expires) {
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return false;
  set_alloc_expiry(it->second, expires);
  return true;
}

void Tables::set_alloc_expiry(WriterAlloc& w, Tsc expires) noexcept {
  allocs_[w.index].expires.store(expires, std::memory_order_relaxed);
  for (const auto& [num, slot] : w.channels) channels_[slot].alloc_expires.store(expires, std::memory_order_relaxed);
}

void Tables::set_perm_expiry(WriterAlloc& w, uint32_t perm_slot, Tsc expires) noexcept {
  perms_[perm_slot].expires.store(expires, std::memory_order_relaxed);
  for (const auto& [num, slot] : w.channels)
    if (channels_[slot].perm.load(std::memory_order_relaxed) == perm_slot + 1)
      channels_[slot].perm_expires.store(expires, std::memory_order_relaxed);
}

void Tables::link_permission(WriterAlloc& w, const PermissionEntry* p, bool v6, const PeerRef& peer) noexcept {
  // Channels bound before their permission arrived: readers see nullptr
  // (and look the permission up) or the link, whose expiry copy is
  // stored first.
  for (const auto& [num, slot] : w.channels) {
    if (peer_v6(w, slot) != v6 || (v6 ? chan_peers6_[slot] != peer.ip6 : channels_[slot].peer_ip != peer.ip4)) continue;
    channels_[slot].perm_expires.store(p->expires.load(std::memory_order_relaxed), std::memory_order_relaxed);
    channels_[slot].perm.store(static_cast<uint32_t>(p - perms_) + 1, std::memory_order_release);
  }
}

void Tables::remove_channel(WriterAlloc& w, uint16_t channel_n) {
  auto it = w.channels.find(channel_n);
  if (it == w.channels.end()) return;
  ChannelEntry& e = channels_[it->second];
  e.alloc_expires.store(0, std::memory_order_relaxed);  // stop forwarding at once (readers holding it)
  const AllocationSpec& s = w.spec;
  // The peer key is on the relayed address of the peer's family, the
  // channel key on the client's 5-tuple.
  if (peer_v6(w, it->second)) {
    PeerKey6 pk{s.relay6, chan_peers6_[it->second], s.relay6_port, e.peer_port};
    unpublish(peer6_, &pk, &e, nullptr, it->second);  // the channel table's removal frees the slot
  } else {
    peer_->erase(PeerKey{s.relay4, e.peer_ip, s.relay4_port, e.peer_port}, it->second);
  }
  if (s.client_v6) {
    ChannelKey6 ck = ChannelKey6::of(s.client6, channel_n);
    unpublish(channel6_, &ck, &e, &free_channels_, it->second);
  } else {
    channel_->erase(ChannelKey::of(s.client, channel_n), it->second);  // erases only this entry's mapping
    defer(&free_channels_, it->second, nullptr, 0);
  }
  w.channels.erase(it);
}

void Tables::remove_allocation(const std::string& id) {
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return;
  WriterAlloc& w = it->second;
  while (!w.channels.empty()) remove_channel(w, w.channels.begin()->first);
  for (const auto& [peer_ip, slot] : w.perms) {
    PermissionKey k{w.spec.relay4, peer_ip, w.spec.relay4_port, 0};
    unpublish(perm_, &k, &perms_[slot], &free_perms_, slot);
  }
  for (const auto& [peer_ip, slot] : w.perms6) {
    PermissionKey6 k{w.spec.relay6, peer_ip, w.spec.relay6_port, 0, 0};
    unpublish(perm6_, &k, &perms_[slot], &free_perms_, slot);
  }
  allocs_[w.index].expires.store(0, std::memory_order_relaxed);  // stop forwarding at once
  if (w.spec.client_v6)
    unpublish(client6_, &w.spec.client6, &allocs_[w.index], &free_allocs_, w.index);
  else
    unpublish(client_, &w.spec.client, &allocs_[w.index], &free_allocs_, w.index);
  by_id_.erase(it);
  live_allocs_.store(by_id_.size(), std::memory_order_relaxed);
}

PermissionEntry* Tables::add_permission(WriterAlloc& w, Tsc expires, const void* key, rte_hash* table) {
  if (free_perms_.empty()) reclaim();
  if (free_perms_.empty()) return nullptr;
  uint32_t slot = free_perms_.back();
  free_perms_.pop_back();
  PermissionEntry& e = perms_[slot];
  e.alloc = w.index;
  e.expires.store(expires, std::memory_order_relaxed);
  if (rte_hash_add_key_data(table, key, &e) != 0) {
    free_perms_.push_back(slot);
    return nullptr;
  }
  return &e;
}

bool Tables::upsert_permission(const std::string& id, uint32_t peer_ip, Tsc expires) {
  auto it = by_id_.find(id);
  if (it == by_id_.end() || it->second.spec.relay4_port == 0) return false;
  WriterAlloc& w = it->second;
  if (auto p = w.perms.find(peer_ip); p != w.perms.end()) {
    set_perm_expiry(w, p->second, expires);
    return true;
  }
  PermissionKey k{w.spec.relay4, peer_ip, w.spec.relay4_port, 0};
  PermissionEntry* e = add_permission(w, expires, &k, perm_);
  if (!e) return false;
  w.perms.emplace(peer_ip, static_cast<uint32_t>(e - perms_));
  link_permission(w, e, false, PeerRef{peer_ip, {}, 0});
  return true;
}

bool Tables::upsert_permission(const std::string& id, const Ip6& peer_ip, Tsc expires) {
  auto it = by_id_.find(id);
  if (it == by_id_.end() || it->second.spec.relay6_port == 0) return false;
  WriterAlloc& w = it->second;
  if (auto p = w.perms6.find(peer_ip); p != w.perms6.end()) {
    set_perm_expiry(w, p->second, expires);
    return true;
  }
  PermissionKey6 k{w.spec.relay6, peer_ip, w.spec.relay6_port, 0, 0};
  PermissionEntry* e = add_permission(w, expires, &k, perm6_);
  if (!e) return false;
  w.perms6.emplace(peer_ip, static_cast<uint32_t>(e - perms_));
  link_permission(w, e, true, PeerRef{0, peer_ip, 0});
  return true;
}

// The family-independent part of a channel binding (RFC 8656 §12): the
// caller has checked that the allocation has a relayed address of the
// peer's family (v6). Publishes a new entry in the channel table of the
// client's family and the peer table of the peer's (§7.2, §12: the binding
// belongs to the relayed address of the peer's family).
bool Tables::add_channel(WriterAlloc& w, uint16_t channel_n, const PeerRef& peer, bool v6, Tsc expires) {
  if (free_channels_.empty()) reclaim();
  if (free_channels_.empty()) return false;
  uint32_t slot = free_channels_.back();
  free_channels_.pop_back();
  const AllocationSpec& s = w.spec;
  ChannelEntry& dst = channels_[slot];
  dst.alloc = w.index;
  dst.index = slot & 0x7FFFFFFFu;
  dst.cross = v6 != s.client_v6 ? 1u : 0u;
  dst.peer_ip = v6 ? 0 : peer.ip4;
  chan_peers6_[slot] = v6 ? peer.ip6 : Ip6{};
  dst.peer_port = peer.port;
  dst.channel = channel_n;
  // The channel key's 5-tuple, compared by the IPv4 channel table.
  dst.client_ip = s.client_v6 ? 0 : s.client.client_ip;
  dst.server_ip = s.client_v6 ? 0 : s.client.server_ip;
  dst.client_port = s.client_v6 ? 0 : s.client.client_port;
  dst.server_port = s.client_v6 ? 0 : s.client.server_port;
  dst.expires.store(expires, std::memory_order_relaxed);
  dst.alloc_expires.store(allocs_[w.index].expires.load(std::memory_order_relaxed), std::memory_order_relaxed);
  dst.relay_ip = s.relay4;
  dst.relay_port = v6 ? s.relay6_port : s.relay4_port;  // the relayed address of the peer's family
  const PermissionEntry* perm = nullptr;
  if (v6) {
    if (auto p = w.perms6.find(peer.ip6); p != w.perms6.end()) perm = &perms_[p->second];
  } else {
    if (auto p = w.perms.find(peer.ip4); p != w.perms.end()) perm = &perms_[p->second];
  }
  dst.perm_expires.store(perm ? perm->expires.load(std::memory_order_relaxed) : 0, std::memory_order_relaxed);
  dst.perm.store(perm ? static_cast<uint32_t>(perm - perms_) + 1 : 0, std::memory_order_release);
  // Publish in the channel table of the client's family, then the peer
  // table of the peer's; undo the first if the second is full.
  ChannelKey ck = ChannelKey::of(s.client, channel_n);
  ChannelKey6 ck6 = ChannelKey6::of(s.client6, channel_n);
  bool channel_ok =
      s.client_v6 ? rte_hash_add_key_data(channel6_, &ck6, &dst) == 0 : channel_->insert(ck, slot, channels_);
  if (!channel_ok) {
    free_channels_.push_back(slot);  // never published
    return false;
  }
  bool peer_ok = false;
  if (v6) {
    PeerKey6 pk6{s.relay6, peer.ip6, s.relay6_port, peer.port};
    peer_ok = rte_hash_add_key_data(peer6_, &pk6, &dst) == 0;
  } else {
    peer_ok = peer_->insert(PeerKey{s.relay4, peer.ip4, s.relay4_port, peer.port}, slot, channels_);
  }
  if (!peer_ok) {
    // Published a moment in the channel table: readers may hold it, so the
    // slot comes back after the grace period.
    if (s.client_v6) {
      unpublish(channel6_, &ck6, &dst, &free_channels_, slot);
    } else {
      channel_->erase(ck, slot);
      defer(&free_channels_, slot, nullptr, 0);
    }
    return false;
  }
  w.channels.emplace(channel_n, slot);
  return true;
}

bool Tables::same_peer(const WriterAlloc& w, uint32_t slot, const PeerRef& p, bool v6) const {
  const ChannelEntry& e = channels_[slot];
  return peer_v6(w, slot) == v6 && e.peer_port == p.port && (v6 ? chan_peers6_[slot] == p.ip6 : e.peer_ip == p.ip4);
}

bool Tables::upsert_channel_any(const std::string& id, uint16_t channel_n, const PeerRef& peer, bool v6, Tsc expires) {
  auto it = by_id_.find(id);
  if (it == by_id_.end() || (v6 ? it->second.spec.relay6_port : it->second.spec.relay4_port) == 0) return false;
  WriterAlloc& w = it->second;
  if (auto c = w.channels.find(channel_n); c != w.channels.end()) {
    if (same_peer(w, c->second, peer, v6)) {
      channels_[c->second].expires.store(expires, std::memory_order_relaxed);
      return true;
    }
    remove_channel(w, channel_n);  // rebound elsewhere (after expiry): replace
  }
  // The same peer under another (expired) channel number: that binding goes,
  // or deleting it later would take the new channel's peer mapping with it.
  for (auto c = w.channels.begin(); c != w.channels.end(); ++c)
    if (same_peer(w, c->second, peer, v6)) {
      remove_channel(w, c->first);
      break;
    }
  return add_channel(w, channel_n, peer, v6, expires);
}

bool Tables::upsert_channel(const std::string& id, uint16_t channel_n, uint32_t peer_ip, uint16_t peer_port,
                            Tsc expires) {
  return upsert_channel_any(id, channel_n, PeerRef{peer_ip, {}, peer_port}, false, expires);
}

bool Tables::upsert_channel(const std::string& id, uint16_t channel_n, const Ip6& peer_ip, uint16_t peer_port,
                            Tsc expires) {
  return upsert_channel_any(id, channel_n, PeerRef{0, peer_ip, peer_port}, true, expires);
}

void Tables::expire(Tsc now, Tsc grace) {
  std::vector<std::string> dead;
  for (const auto& [id, w] : by_id_)
    if (allocs_[w.index].expires.load(std::memory_order_relaxed) + grace < now) dead.push_back(id);
  for (const auto& id : dead) remove_allocation(id);
}

void Tables::clear() {
  while (!by_id_.empty()) remove_allocation(by_id_.begin()->first);
}

}  // namespace turn::dp
