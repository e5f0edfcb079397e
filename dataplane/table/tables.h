// SPDX-License-Identifier: Apache-2.0
// Tables: the data plane's shared allocation tables, and the only code that
// names rte_hash. Four lock-free tables per family (client 5-tuple,
// channel, peer, permission) plus a neighbour table, with entries in
// hugepage arrays sized at start-up. The IPv4 channel and peer tables, the
// ChannelData paths, are FlowIndex (flow_index.h: one index line, then the
// entry, which holds the key); the others are rte_hash.
//
// Concurrency contract:
//   - one writer for the allocation tables: the sync thread (upsert_*,
//     remove_*); one writer for the neighbour table: the service lcore
//     (learn()).
//   - any number of readers: the workers (lookups below), lock-free
//     (RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF; FlowIndex's own contract is
//     the same). Each worker is registered with the RCU QSBR variable and
//     reports quiescent once per loop; a deleted entry's slot is reused
//     only after every worker has done so (one token queue for every
//     table's slots and rte_hash key positions: defer(), reclaim()).
//   - a key added again under another allocation id replaces the older
//     owner's mapping (the newest event wins); the older owner's removal
//     then leaves that mapping alone (unpublish()).
#pragma once

#include <rte_hash.h>
#include <rte_rcu_qsbr.h>

#include <atomic>
#include <deque>
#include <map>
#include <optional>
#include <cstdint>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "common/net/address.h"
#include "dataplane/pipeline/headers.h"
#include "dataplane/table/entries.h"
#include "dataplane/table/flow_index.h"
#include "dataplane/table/routes.h"

namespace turn::dp {

struct TableSizes {
  uint32_t allocations = 1 << 16;
  uint32_t channels = 1 << 18;  // channels and permissions each
};

// What the writer installs for one allocation: its client 5-tuple (IPv4 or
// IPv6) and its relayed addresses, one per family at most (RFC 8656 §7.2: a
// dual-stack allocation has both). Addresses and ports in network order.
struct AllocationSpec {
  bool client_v6 = false;
  ClientKey client{};    // IPv4 clients
  ClientKey6 client6{};  // IPv6 clients
  uint32_t relay4 = 0;
  uint16_t relay4_port = 0;  // 0: no IPv4 relayed address
  Ip6 relay6{};
  uint16_t relay6_port = 0;  // 0: no IPv6 relayed address
  friend bool operator==(const AllocationSpec&, const AllocationSpec&) = default;
};

class Tables {
 public:
  Tables(const TableSizes& sizes, rte_rcu_qsbr* qsbr, int socket);  // throws on failure
  ~Tables();
  Tables(const Tables&) = delete;
  Tables& operator=(const Tables&) = delete;

  // ---- readers (workers) -------------------------------------------------
  [[nodiscard]] const AllocEntry* client(const ClientKey& k) const noexcept {
    void* d;
    return rte_hash_lookup_data(client_, &k, &d) >= 0 ? static_cast<const AllocEntry*>(d) : nullptr;
  }
  [[nodiscard]] const ChannelEntry* channel(const ChannelKey& k) const noexcept { return channel_->find(k, channels_); }
  [[nodiscard]] const ChannelEntry* peer(const PeerKey& k) const noexcept { return peer_->find(k, channels_); }
  [[nodiscard]] const PermissionEntry* permission(const PermissionKey& k) const noexcept {
    void* d;
    return rte_hash_lookup_data(perm_, &k, &d) >= 0 ? static_cast<const PermissionEntry*>(d) : nullptr;
  }
  // IPv6 flows: the same four tables over 48-byte keys.
  [[nodiscard]] const AllocEntry* client(const ClientKey6& k) const noexcept {
    void* d;
    return rte_hash_lookup_data(client6_, &k, &d) >= 0 ? static_cast<const AllocEntry*>(d) : nullptr;
  }
  [[nodiscard]] const ChannelEntry* channel(const ChannelKey6& k) const noexcept {
    void* d;
    return rte_hash_lookup_data(channel6_, &k, &d) >= 0 ? static_cast<const ChannelEntry*>(d) : nullptr;
  }
  [[nodiscard]] const ChannelEntry* peer(const PeerKey6& k) const noexcept {
    void* d;
    return rte_hash_lookup_data(peer6_, &k, &d) >= 0 ? static_cast<const ChannelEntry*>(d) : nullptr;
  }
  [[nodiscard]] const PermissionEntry* permission(const PermissionKey6& k) const noexcept {
    void* d;
    return rte_hash_lookup_data(perm6_, &k, &d) >= 0 ? static_cast<const PermissionEntry*>(d) : nullptr;
  }
  // Bulk lookups for a burst (l3fwd's pattern: the hashes, buckets and
  // keys of up to RTE_HASH_LOOKUP_BULK_MAX keys fetched in parallel);
  // out[i] is nullptr on a miss.
  template <class K, class E>
  void lookup_bulk(const K* const* keys, uint32_t n, const E** out) const noexcept {
    if constexpr (std::is_same_v<K, ChannelKey>) {
      static_assert(std::is_same_v<E, ChannelEntry>);
      channel_->find_bulk(keys, n, channels_, out);
    } else if constexpr (std::is_same_v<K, PeerKey>) {
      static_assert(std::is_same_v<E, ChannelEntry>);
      peer_->find_bulk(keys, n, channels_, out);
    } else {
      bulk(table_for<K, E>(), keys, n, out);
    }
  }
  // The permission a channel is linked to (ChannelEntry::perm), or nullptr.
  [[nodiscard]] const PermissionEntry* linked_permission(const ChannelEntry& c) const noexcept {
    uint32_t p = c.perm.load(std::memory_order_acquire);
    return p ? &perms_[p - 1] : nullptr;
  }
  [[nodiscard]] const AllocEntry& alloc(uint32_t index) const noexcept { return allocs_[index]; }
  // The slot of an entry this table returned, without reading the entry
  // (the worker prefetches the slot's counters before the entry arrives).
  [[nodiscard]] uint32_t slot_of(const AllocEntry* e) const noexcept { return static_cast<uint32_t>(e - allocs_); }
  [[nodiscard]] const AllocEntry6& alloc6(uint32_t index) const noexcept { return allocs6_[index]; }
  [[nodiscard]] const Ip6& channel_peer6(uint32_t index) const noexcept { return chan_peers6_[index]; }
  // Where a packet for ip leaves (routes.h); the worker caches the
  // neighbour lookup that follows (WorkerTables::next_hop).
  [[nodiscard, gnu::always_inline]] bool route(uint32_t ip, uint8_t& port, uint32_t& hop) const noexcept {
    return routes_.route(ip, port, hop);
  }
  // The MAC of an on-link neighbour (IPv4 network order, or IPv6).
  [[nodiscard]] bool neighbour(uint32_t hop, Mac& mac) const noexcept { return lookup_mac(neigh_, &hop, mac); }
  [[nodiscard]] bool neighbour(const Ip6& hop, Mac& mac) const noexcept { return lookup_mac(neigh6_, &hop, mac); }
  [[nodiscard]] bool next_hop(const Ip6& ip, Hop& out) const noexcept {
    Ip6 hop;
    return routes6_.route(ip, out.port, hop) && neighbour(hop, out.mac);
  }
  // Is ip on the link of port `port` (a neighbour we may learn there)?
  [[nodiscard]] bool on_link(uint8_t port, uint32_t ip) const noexcept { return routes_.on_link(port, ip); }
  [[nodiscard]] bool on_link(uint8_t port, const Ip6& ip) const noexcept { return routes6_.on_link(port, ip); }

  // ---- set-up (before the workers start) ---------------------------------
  void set_routes(const RouteTable& r, const RouteTable6& r6) noexcept {
    routes_ = r;
    routes6_ = r6;
  }

  // ---- neighbour writer (service lcore) ----------------------------------
  void learn(uint32_t ip, const Mac& mac) noexcept;
  void learn(const Ip6& ip, const Mac& mac) noexcept;
  // Bumped (release) whenever a neighbour changes: workers' caches check it.
  [[nodiscard]] uint32_t neighbour_generation() const noexcept { return neigh_gen_.load(std::memory_order_acquire); }
  // A configured next hop: learning never overrides it (no spoofing it away).
  void set_static_neighbour(uint32_t ip, const Mac& mac);
  [[nodiscard]] bool is_static_neighbour(uint32_t ip) const noexcept {
    for (uint32_t s : static_neighbours_)
      if (s == ip) return true;
    return false;
  }
  [[nodiscard]] uint32_t neighbours() const noexcept {
    return static_cast<uint32_t>(rte_hash_count(neigh_) + rte_hash_count(neigh6_));
  }

  // ---- allocation writer (sync thread) -----------------------------------
  // Every call is idempotent: applying an event twice leaves the same state.
  // Times are TSC deadlines. Return false when a table is full (counted).
  // An allocation with at least one relayed address; the client's family
  // need not be a relayed address's (the fast path translates).
  bool upsert_allocation(const std::string& id, const AllocationSpec& spec, Tsc expires);
  // Single-family shorthands: client and relay IPv4, or both IPv6.
  bool upsert_allocation(const std::string& id, const ClientKey& client, uint32_t relay_ip, uint16_t relay_port,
                         Tsc expires);
  bool upsert_allocation(const std::string& id, const ClientKey6& client, const Ip6& relay_ip, uint16_t relay_port,
                         Tsc expires);
  bool refresh_allocation(const std::string& id, Tsc expires);
  void remove_allocation(const std::string& id);
  // Permissions and channels go to the relayed address of the peer's family
  // (RFC 8656 §9, §12; §7.2 for dual-stack allocations). An allocation
  // without a relayed address of that family refuses them (false):
  // turn-control answers 443 for those, so none should arrive.
  bool upsert_permission(const std::string& id, uint32_t peer_ip, Tsc expires);
  bool upsert_channel(const std::string& id, uint16_t channel_n, uint32_t peer_ip, uint16_t peer_port, Tsc expires);
  bool upsert_permission(const std::string& id, const Ip6& peer_ip, Tsc expires);
  bool upsert_channel(const std::string& id, uint16_t channel_n, const Ip6& peer_ip, uint16_t peer_port, Tsc expires);
  // Drops entries whose deadline passed long ago (the control plane deletes
  // them too; this bounds memory if a delete is ever missed).
  void expire(Tsc now, Tsc grace);
  void clear();
  // Any thread (telemetry reads it while the writer changes by_id_).
  [[nodiscard]] size_t allocation_count() const noexcept { return live_allocs_.load(std::memory_order_relaxed); }
  [[nodiscard]] size_t channel_count() const noexcept;
  [[nodiscard]] size_t permission_count() const noexcept;
  [[nodiscard]] uint32_t capacity() const noexcept { return sizes_.allocations; }
  // The slot of an allocation, or -1 (the slot widened first: `? -1 :` a
  // uint32_t would make the -1 4294967295).
  [[nodiscard]] int64_t index_of(const std::string& id) const {
    auto it = by_id_.find(id);
    return it == by_id_.end() ? int64_t{-1} : int64_t{it->second.index};
  }
  // Calls f(id, index) for every allocation (counter export).
  template <class F>
  void for_each(F&& f) const {
    for (const auto& [id, w] : by_id_) f(id, w.index);
  }

 private:
  // The table of a key kind of either family; E must be what it holds.
  template <class K, class E>
  [[nodiscard]] rte_hash* table_for() const noexcept {
    constexpr bool v6 = std::is_same_v<K, ChannelKey6> || std::is_same_v<K, ClientKey6> ||
                        std::is_same_v<K, PermissionKey6> || std::is_same_v<K, PeerKey6>;
    if constexpr (std::is_same_v<K, ChannelKey6>) {
      static_assert(std::is_same_v<E, ChannelEntry>);
      return channel6_;
    } else if constexpr (std::is_same_v<K, ClientKey> || std::is_same_v<K, ClientKey6>) {
      static_assert(std::is_same_v<E, AllocEntry>);
      return v6 ? client6_ : client_;
    } else if constexpr (std::is_same_v<K, PermissionKey> || std::is_same_v<K, PermissionKey6>) {
      static_assert(std::is_same_v<E, PermissionEntry>);
      return v6 ? perm6_ : perm_;
    } else {
      static_assert(std::is_same_v<K, PeerKey6> && std::is_same_v<E, ChannelEntry>,
                    "not a table key, or not the entry its table holds");
      return peer6_;
    }
  }
  template <class K, class E>
  static void bulk(rte_hash* h, const K* const* keys, uint32_t n, const E** out) noexcept {
    uint64_t hits = 0;
    void* data[RTE_HASH_LOOKUP_BULK_MAX];
    rte_hash_lookup_bulk_data(h, reinterpret_cast<const void**>(const_cast<const K**>(keys)), n, &hits, data);
    for (uint32_t i = 0; i < n; ++i) out[i] = (hits >> i) & 1 ? static_cast<const E*>(data[i]) : nullptr;
  }
  // Neighbour tables keep the MAC in the data pointer (48 bits).
  static bool lookup_mac(const rte_hash* h, const void* key, Mac& mac) noexcept {
    void* d;
    if (rte_hash_lookup_data(h, key, &d) < 0) return false;
    auto v = reinterpret_cast<uintptr_t>(d);
    for (int i = 0; i < 6; ++i) mac.b[i] = static_cast<uint8_t>(v >> (8 * (5 - i)));
    return true;
  }
  struct WriterAlloc {
    uint32_t index;
    AllocationSpec spec;
    std::unordered_map<uint32_t, uint32_t> perms;     // IPv4 peer ip -> PermissionEntry slot
    std::map<Ip6, uint32_t> perms6;                   // IPv6 peer ip -> PermissionEntry slot
    std::unordered_map<uint16_t, uint32_t> channels;  // channel (net order) -> ChannelEntry slot
  };
  bool add_allocation(const std::string& id, WriterAlloc w, Tsc expires);
  PermissionEntry* add_permission(WriterAlloc& w, Tsc expires, const void* key, rte_hash* table);
  struct PeerRef {
    uint32_t ip4;   // IPv4 peers
    Ip6 ip6;        // IPv6 peers
    uint16_t port;  // network order
  };
  // Is the channel in `slot` (of allocation w) bound to an IPv6 peer?
  [[nodiscard]] bool peer_v6(const WriterAlloc& w, uint32_t slot) const noexcept {
    return w.spec.client_v6 != static_cast<bool>(channels_[slot].cross);
  }
  bool add_channel(WriterAlloc& w, uint16_t channel_n, const PeerRef& peer, bool v6, Tsc expires);
  bool same_peer(const WriterAlloc& w, uint32_t slot, const PeerRef& p, bool v6) const;
  bool upsert_channel_any(const std::string& id, uint16_t channel_n, const PeerRef& peer, bool v6, Tsc expires);
  void remove_channel(WriterAlloc& w, uint16_t channel_n);
  // Expiry stores that keep the channels' copies (ChannelEntry::
  // alloc_expires, perm_expires) in step with their sources.
  void set_alloc_expiry(WriterAlloc& w, Tsc expires) noexcept;
  void set_perm_expiry(WriterAlloc& w, uint32_t perm_slot, Tsc expires) noexcept;
  // Links a new permission into the channels of w bound to its peer.
  void link_permission(WriterAlloc& w, const PermissionEntry* p, bool v6, const PeerRef& peer) noexcept;
  // What left a table waits out a grace period here: the entry's slot goes
  // back to free_list (nullptr: none, another table's removal frees it),
  // the key's position in table h (nullptr: none) is freed.
  void defer(std::vector<uint32_t>* free_list, uint32_t slot, rte_hash* h, int32_t pos);
  void reclaim() noexcept;
  // Removes key from h if it still maps to entry (slot of free_list);
  // otherwise leaves the later owner's mapping. Either way the slot is
  // deferred.
  void unpublish(rte_hash* h, const void* key, const void* entry, std::vector<uint32_t>* free_list, uint32_t slot);

  TableSizes sizes_;
  rte_rcu_qsbr* qsbr_;
  rte_hash* client_ = nullptr;
  void* channel_mem_ = nullptr;  // channel_'s and peer_'s buckets (rte_zmalloc)
  void* peer_mem_ = nullptr;
  std::optional<FlowIndex<ChannelKey>> channel_;
  std::optional<FlowIndex<PeerKey>> peer_;
  rte_hash* perm_ = nullptr;
  rte_hash* neigh_ = nullptr;
  rte_hash* client6_ = nullptr;
  rte_hash* channel6_ = nullptr;
  rte_hash* peer6_ = nullptr;
  rte_hash* perm6_ = nullptr;
  rte_hash* neigh6_ = nullptr;
  AllocEntry* allocs_ = nullptr;
  AllocEntry6* allocs6_ = nullptr;  // IPv6 addresses of allocs_[i]
  Ip6* chan_peers6_ = nullptr;      // IPv6 peer of channels_[i]
  ChannelEntry* channels_ = nullptr;
  PermissionEntry* perms_ = nullptr;
  std::vector<uint32_t> free_allocs_, free_channels_, free_perms_;
  struct Deferred {
    uint64_t token;                    // rte_rcu_qsbr_start() when the entry left its tables
    std::vector<uint32_t>* free_list;  // where slot goes back, or nullptr
    uint32_t slot;
    rte_hash* table;  // whose key position pos is freed, or nullptr
    int32_t pos;
  };
  std::deque<Deferred> deferred_;
  std::unordered_map<std::string, WriterAlloc> by_id_;
  std::atomic<size_t> live_allocs_{0};  // by_id_.size(), for readers on other threads
  RouteTable routes_;
  RouteTable6 routes6_;
  std::vector<uint32_t> static_neighbours_;  // service-lcore (writer) side only
  std::atomic<uint32_t> neigh_gen_{1};
};

// What a worker hands to the fast path: the shared tables plus its own
// transaction-id counter for Data indications.
struct WorkerTables {
  const Tables* t;
  uint64_t txn = 0;
  uint32_t last_hop_ip = 0, last_gen = 0;
  Mac last_mac{};
  [[nodiscard]] const AllocEntry* client(const ClientKey6& k) const noexcept { return t->client(k); }
  [[nodiscard]] const ChannelEntry* channel(const ChannelKey6& k) const noexcept { return t->channel(k); }
  [[nodiscard]] const ChannelEntry* peer(const PeerKey6& k) const noexcept { return t->peer(k); }
  [[nodiscard]] const PermissionEntry* permission(const PermissionKey6& k) const noexcept { return t->permission(k); }
  [[nodiscard]] bool next_hop(const Ip6& ip, Hop& h) const noexcept { return t->next_hop(ip, h); }
  [[nodiscard]] const ChannelEntry* channel(const ChannelKey& k) const noexcept { return t->channel(k); }
  [[nodiscard]] const AllocEntry* client(const ClientKey& k) const noexcept { return t->client(k); }
  [[nodiscard]] const ChannelEntry* peer(const PeerKey& k) const noexcept { return t->peer(k); }
  [[nodiscard]] const PermissionEntry* permission(const PermissionKey& k) const noexcept { return t->permission(k); }
  // A burst's IPv4 keys (pipeline/burst.h), whichever kind.
  template <class K, class E>
  void lookup_bulk(const K* const* keys, uint32_t n, const E** out) const noexcept {
    t->lookup_bulk(keys, n, out);
  }
  [[nodiscard]] uint32_t slot_of(const AllocEntry* e) const noexcept { return t->slot_of(e); }
  [[nodiscard]] const AllocEntry& alloc(uint32_t i) const noexcept { return t->alloc(i); }
  [[nodiscard]] const AllocEntry6& alloc6(uint32_t i) const noexcept { return t->alloc6(i); }
  [[nodiscard]] const Ip6& channel_peer6(uint32_t i) const noexcept { return t->channel_peer6(i); }
  // Most packets leave through the same next hop (the gateway, or a few
  // on-link hosts in runs): the route is a few compares, the neighbour
  // lookup is remembered while the neighbour table has not changed
  // (generation).
  [[nodiscard, gnu::always_inline]] bool next_hop(uint32_t ip, Hop& h) noexcept {
    uint32_t hop;
    if (!t->route(ip, h.port, hop)) return false;
    uint32_t gen = t->neighbour_generation();
    if (hop == last_hop_ip && gen == last_gen && hop != 0) {
      h.mac = last_mac;
      return true;
    }
    if (!t->neighbour(hop, h.mac)) return false;
    last_hop_ip = hop;
    last_gen = gen;
    last_mac = h.mac;
    return true;
  }
  [[nodiscard]] uint64_t next_transaction_id() noexcept { return ++txn; }
};

}  // namespace turn::dp
