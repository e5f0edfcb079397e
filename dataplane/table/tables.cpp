// SPDX-License-Identifier: Apache-2.0
// rte_hash tables with RCU-deferred reclamation.
#include "dataplane/table/tables.h"

#include <rte_errno.h>
#include <rte_hash_crc.h>
#include <rte_malloc.h>

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

void attach_rcu(rte_hash* h, rte_rcu_qsbr* v, void* ctx, rte_hash_free_key_data fn, const char* name) {
  rte_hash_rcu_config c{};
  c.v = v;
  c.mode = RTE_HASH_QSBR_MODE_DQ;
  c.key_data_ptr = ctx;
  c.free_key_data_func = fn;
  if (rte_hash_rcu_qsbr_add(h, &c) != 0)
    throw std::runtime_error(std::string("rte_hash_rcu_qsbr_add(") + name + "): " + rte_strerror(rte_errno));
}

template <class T>
T* make_array(const char* name, uint32_t n, int socket) {
  void* p = rte_zmalloc_socket(name, sizeof(T) * n, 64, socket);
  if (!p) throw std::runtime_error(std::string("rte_zmalloc(") + name + "): out of hugepage memory for " +
                                   std::to_string(n) + " entries");
  return static_cast<T*>(p);
}

}  // namespace

Tables::Tables(const TableSizes& sizes, rte_rcu_qsbr* qsbr, int socket) : sizes_(sizes) {
  // rte_hash needs some slack over the live count (cuckoo displacement).
  uint32_t ha = sizes.allocations + sizes.allocations / 4;
  uint32_t hc = sizes.channels + sizes.channels / 4;
  client_ = make_hash("dp_client", ha, sizeof(ClientKey), socket);
  channel_ = make_hash("dp_channel", hc, sizeof(ChannelKey), socket);
  peer_ = make_hash("dp_peer", hc, sizeof(PeerKey), socket);
  perm_ = make_hash("dp_perm", hc, sizeof(PermissionKey), socket);
  neigh_ = make_hash("dp_neigh", 1 << 16, sizeof(uint32_t), socket);
  allocs_ = make_array<AllocEntry>("dp_allocs", sizes.allocations, socket);
  channels_ = make_array<ChannelEntry>("dp_channels", sizes.channels, socket);
  perms_ = make_array<PermissionEntry>("dp_perms", sizes.channels, socket);
  // Channel entries are shared by the channel and peer tables: the slot is
  // freed from the channel table's callback only (the peer table frees nothing).
  attach_rcu(client_, qsbr, this, &Tables::free_alloc, "client");
  attach_rcu(channel_, qsbr, this, &Tables::free_channel, "channel");
  attach_rcu(peer_, qsbr, this, [](void*, void*) {}, "peer");
  attach_rcu(perm_, qsbr, this, &Tables::free_perm, "perm");
  free_allocs_.reserve(sizes.allocations);
  for (uint32_t i = sizes.allocations; i-- > 0;) free_allocs_.push_back(i);
  free_channels_.reserve(sizes.channels);
  for (uint32_t i = sizes.channels; i-- > 0;) free_channels_.push_back(i);
  free_perms_.reserve(sizes.channels);
  for (uint32_t i = sizes.channels; i-- > 0;) free_perms_.push_back(i);
}

Tables::~Tables() {
  for (rte_hash* h : {client_, channel_, peer_, perm_, neigh_})
    if (h) rte_hash_free(h);
  rte_free(allocs_);
  rte_free(channels_);
  rte_free(perms_);
}

void Tables::free_alloc(void* ctx, void* data) {
  auto* self = static_cast<Tables*>(ctx);
  self->free_allocs_.push_back(static_cast<uint32_t>(static_cast<AllocEntry*>(data) - self->allocs_));
}
void Tables::free_channel(void* ctx, void* data) {
  auto* self = static_cast<Tables*>(ctx);
  self->free_channels_.push_back(static_cast<uint32_t>(static_cast<ChannelEntry*>(data) - self->channels_));
}
void Tables::free_perm(void* ctx, void* data) {
  auto* self = static_cast<Tables*>(ctx);
  self->free_perms_.push_back(static_cast<uint32_t>(static_cast<PermissionEntry*>(data) - self->perms_));
}

size_t Tables::channel_count() const noexcept { return static_cast<size_t>(rte_hash_count(channel_)); }
size_t Tables::permission_count() const noexcept { return static_cast<size_t>(rte_hash_count(perm_)); }

void Tables::set_static_neighbor(uint32_t ip, const Mac& mac) {
  static_neighbors_.push_back(ip);
  uintptr_t v = 0;
  for (int i = 0; i < 6; ++i) v = (v << 8) | mac.b[i];
  rte_hash_add_key_data(neigh_, &ip, reinterpret_cast<void*>(v));
  neigh_gen_.fetch_add(1, std::memory_order_release);
}

void Tables::learn(uint32_t ip, const Mac& mac) noexcept {
  for (uint32_t s : static_neighbors_)
    if (s == ip) return;
  uintptr_t v = 0;
  for (int i = 0; i < 6; ++i) v = (v << 8) | mac.b[i];
  void* old;
  if (rte_hash_lookup_data(neigh_, &ip, &old) >= 0 && reinterpret_cast<uintptr_t>(old) == v) return;
  rte_hash_add_key_data(neigh_, &ip, reinterpret_cast<void*>(v));  // LF: readers see old or new
  neigh_gen_.fetch_add(1, std::memory_order_release);
}

bool Tables::upsert_allocation(const std::string& id, const ClientKey& client, uint32_t relay_ip, uint16_t relay_port,
                               Tsc expires) {
  auto it = by_id_.find(id);
  if (it != by_id_.end()) {
    WriterAlloc& w = it->second;
    if (w.client == client && w.relay_ip == relay_ip && w.relay_port == relay_port) {
      allocs_[w.index].expires.store(expires, std::memory_order_relaxed);
      return true;
    }
    remove_allocation(id);  // same id, different tuple: replace
  }
  // Empty: every slot is live or waiting out its RCU grace period (the
  // defer queue reclaims on later deletes and adds).
  if (free_allocs_.empty()) return false;
  // Take the slot before adding: an add may run RCU reclamation, which
  // pushes freed slots onto the same list.
  uint32_t idx = free_allocs_.back();
  free_allocs_.pop_back();
  AllocEntry& e = allocs_[idx];
  e.client = client;
  e.relay_ip = relay_ip;
  e.relay_port = relay_port;
  e.index = idx;
  e.expires.store(expires, std::memory_order_relaxed);
  if (rte_hash_add_key_data(client_, &client, &e) != 0) {
    free_allocs_.push_back(idx);
    return false;
  }
  by_id_.emplace(id, WriterAlloc{idx, client, relay_ip, relay_port, {}, {}});
  live_allocs_.store(by_id_.size(), std::memory_order_relaxed);
  return true;
}

bool Tables::refresh_allocation(const std::string& id, Tsc expires) {
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return false;
  allocs_[it->second.index].expires.store(expires, std::memory_order_relaxed);
  return true;
}

void Tables::remove_channel(WriterAlloc& w, uint16_t channel_n) {
  auto it = w.channels.find(channel_n);
  if (it == w.channels.end()) return;
  ChannelEntry& e = channels_[it->second];
  PeerKey pk{w.relay_ip, e.peer_ip, w.relay_port, e.peer_port};
  rte_hash_del_key(peer_, &pk);
  ChannelKey ck = ChannelKey::of(w.client, channel_n);
  rte_hash_del_key(channel_, &ck);  // frees the entry after the grace period
  w.channels.erase(it);
}

void Tables::remove_allocation(const std::string& id) {
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return;
  WriterAlloc& w = it->second;
  while (!w.channels.empty()) remove_channel(w, w.channels.begin()->first);
  for (const auto& [peer_ip, slot] : w.perms) {
    PermissionKey k{w.relay_ip, peer_ip, w.relay_port, 0};
    rte_hash_del_key(perm_, &k);
  }
  allocs_[w.index].expires.store(0, std::memory_order_relaxed);  // stop forwarding at once
  rte_hash_del_key(client_, &w.client);
  by_id_.erase(it);
  live_allocs_.store(by_id_.size(), std::memory_order_relaxed);
}

bool Tables::upsert_permission(const std::string& id, uint32_t peer_ip, Tsc expires) {
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return false;
  WriterAlloc& w = it->second;
  if (auto p = w.perms.find(peer_ip); p != w.perms.end()) {
    perms_[p->second].expires.store(expires, std::memory_order_relaxed);
    return true;
  }
  if (free_perms_.empty()) return false;
  uint32_t slot = free_perms_.back();
  free_perms_.pop_back();
  PermissionEntry& e = perms_[slot];
  e.alloc = w.index;
  e.expires.store(expires, std::memory_order_relaxed);
  PermissionKey k{w.relay_ip, peer_ip, w.relay_port, 0};
  if (rte_hash_add_key_data(perm_, &k, &e) != 0) {
    free_perms_.push_back(slot);
    return false;
  }
  w.perms.emplace(peer_ip, slot);
  // Channels bound before their permission arrived: link them now
  // (readers see nullptr, and look the permission up, or the entry).
  for (const auto& [num, cslot] : w.channels)
    if (channels_[cslot].peer_ip == peer_ip)
      channels_[cslot].perm.store(&e, std::memory_order_release);
  return true;
}

bool Tables::upsert_channel(const std::string& id, uint16_t channel_n, uint32_t peer_ip, uint16_t peer_port,
                            Tsc expires) {
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return false;
  WriterAlloc& w = it->second;
  if (auto c = w.channels.find(channel_n); c != w.channels.end()) {
    ChannelEntry& e = channels_[c->second];
    if (e.peer_ip == peer_ip && e.peer_port == peer_port) {
      e.expires.store(expires, std::memory_order_relaxed);
      return true;
    }
    remove_channel(w, channel_n);  // rebound elsewhere (after expiry): replace
  }
  // The same peer under another (expired) channel number: that binding goes,
  // or deleting it later would take the new channel's peer mapping with it.
  for (auto c = w.channels.begin(); c != w.channels.end(); ++c) {
    const ChannelEntry& old = channels_[c->second];
    if (old.peer_ip == peer_ip && old.peer_port == peer_port) {
      remove_channel(w, c->first);
      break;
    }
  }
  if (free_channels_.empty()) return false;
  uint32_t slot = free_channels_.back();
  free_channels_.pop_back();
  ChannelEntry& e = channels_[slot];
  e.alloc = w.index;
  e.peer_ip = peer_ip;
  e.peer_port = peer_port;
  e.channel = channel_n;
  e.expires.store(expires, std::memory_order_relaxed);
  auto p = w.perms.find(peer_ip);
  e.perm.store(p == w.perms.end() ? nullptr : &perms_[p->second], std::memory_order_release);
  ChannelKey ck = ChannelKey::of(w.client, channel_n);
  PeerKey pk{w.relay_ip, peer_ip, w.relay_port, peer_port};
  if (rte_hash_add_key_data(channel_, &ck, &e) != 0) {
    free_channels_.push_back(slot);
    return false;
  }
  if (rte_hash_add_key_data(peer_, &pk, &e) != 0) {
    rte_hash_del_key(channel_, &ck);  // its callback returns the slot after the grace period
    return false;
  }
  w.channels.emplace(channel_n, slot);
  return true;
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
