// SPDX-License-Identifier: Apache-2.0
// Keys and values of the data plane's allocation tables. Keys are
// fixed-size, padding-free PODs compared as raw bytes by rte_hash; all
// addresses and ports are in network order, exactly as they appear in
// packets, so the fast path builds keys without byte swaps. IPv4 and IPv6
// flows have their own keys (and tables): an IPv4 lookup never pays for
// 16-byte addresses.
//
// Families: an allocation is keyed by its client's family (client tables);
// its permissions and channels by the relayed address of the peer's family
// (permission and peer tables), because a permission or channel for an
// IPv6 peer belongs to the IPv6 relayed address (RFC 8656 §7.2 dual-stack
// allocations, §9, §12). An allocation whose client is of the other family
// than one of its relayed addresses (a dual-stack allocation's other half,
// or REQUESTED-ADDRESS-FAMILY across families) relays that half with the
// IP version translated (pipeline/fastpath.h, "cross-family").
//
// Concurrency: entries are written by the single table writer (the sync
// thread) before they are published in a table, and freed only after an
// RCU grace period; workers read them lock-free. The expiry fields are the
// only ones changed in place (refresh), with atomic stores.
#pragma once

#include <atomic>
#include <cstdint>
#include <type_traits>

#include "dataplane/net_types.h"

namespace turn::dp {

// Keys are 8-byte aligned and a multiple of 8 bytes long (explicit zero
// padding, never implicit): rte_hash_crc reads them 8 bytes at a time.

// The client side of an allocation (RFC 8656 "5-tuple", UDP).
struct alignas(8) ClientKey {
  uint32_t client_ip;
  uint32_t server_ip;
  uint16_t client_port;
  uint16_t server_port;
  uint32_t zero = 0;
  friend bool operator==(const ClientKey&, const ClientKey&) = default;
};

// Client -> peer ChannelData: which binding does (5-tuple, channel) name?
// Flat and 16 bytes, so rte_hash compares it with its 16-byte SIMD
// comparator rather than memcmp (profiled: memcmp was 8% of the loop).
struct alignas(8) ChannelKey {
  uint32_t client_ip;
  uint32_t server_ip;
  uint16_t client_port;
  uint16_t server_port;
  uint16_t channel;  // network order
  uint16_t zero = 0;
  [[nodiscard]] static ChannelKey of(const ClientKey& c, uint16_t channel_n) noexcept {
    return ChannelKey{c.client_ip, c.server_ip, c.client_port, c.server_port, channel_n, 0};
  }
  friend bool operator==(const ChannelKey&, const ChannelKey&) = default;
};

// Peer -> relay: is (relay address, peer address) bound to a channel?
struct alignas(8) PeerKey {
  uint32_t relay_ip;
  uint32_t peer_ip;
  uint16_t relay_port;
  uint16_t peer_port;
  uint32_t zero = 0;
  friend bool operator==(const PeerKey&, const PeerKey&) = default;
};

// Permission (RFC 8656 §9): (relay address, peer IP).
struct alignas(8) PermissionKey {
  uint32_t relay_ip;
  uint32_t peer_ip;
  uint16_t relay_port;
  uint16_t zero = 0;
  uint32_t zero2 = 0;
  friend bool operator==(const PermissionKey&, const PermissionKey&) = default;
};

// The same four keys for IPv6 flows, 48 bytes each: 40 of addresses,
// ports and channel, 8 of zero padding so that rte_hash compares them with
// its 48-byte SIMD comparator rather than memcmp (memcmp was 3% of the
// worker in the IPv6 ChannelData profile).
struct alignas(8) ClientKey6 {
  Ip6 client_ip;
  Ip6 server_ip;
  uint16_t client_port;
  uint16_t server_port;
  uint32_t zero = 0;
  uint64_t pad = 0;
  friend bool operator==(const ClientKey6&, const ClientKey6&) = default;
};
struct alignas(8) ChannelKey6 {
  Ip6 client_ip;
  Ip6 server_ip;
  uint16_t client_port;
  uint16_t server_port;
  uint16_t channel;  // network order
  uint16_t zero = 0;
  uint64_t pad = 0;
  [[nodiscard]] static ChannelKey6 of(const ClientKey6& c, uint16_t channel_n) noexcept {
    return ChannelKey6{c.client_ip, c.server_ip, c.client_port, c.server_port, channel_n, 0};
  }
  friend bool operator==(const ChannelKey6&, const ChannelKey6&) = default;
};
struct alignas(8) PeerKey6 {
  Ip6 relay_ip;
  Ip6 peer_ip;
  uint16_t relay_port;
  uint16_t peer_port;
  uint32_t zero = 0;
  uint64_t pad = 0;
  friend bool operator==(const PeerKey6&, const PeerKey6&) = default;
};
struct alignas(8) PermissionKey6 {
  Ip6 relay_ip;
  Ip6 peer_ip;
  uint16_t relay_port;
  uint16_t zero = 0;
  uint32_t zero2 = 0;
  uint64_t pad = 0;
  friend bool operator==(const PermissionKey6&, const PermissionKey6&) = default;
};

static_assert(sizeof(ClientKey6) == 48 && std::has_unique_object_representations_v<ClientKey6>);
static_assert(sizeof(ChannelKey6) == 48 && std::has_unique_object_representations_v<ChannelKey6>);
static_assert(sizeof(PeerKey6) == 48 && std::has_unique_object_representations_v<PeerKey6>);
static_assert(sizeof(PermissionKey6) == 48 && std::has_unique_object_representations_v<PermissionKey6>);
static_assert(sizeof(ClientKey) == 16 && std::has_unique_object_representations_v<ClientKey>);
static_assert(sizeof(ChannelKey) == 16 && std::has_unique_object_representations_v<ChannelKey>);
static_assert(sizeof(PeerKey) == 16 && std::has_unique_object_representations_v<PeerKey>);
static_assert(sizeof(PermissionKey) == 16 && std::has_unique_object_representations_v<PermissionKey>);

// One cache line: the IPv4 fast path reads nothing else of an allocation.
struct alignas(64) AllocEntry {
  ClientKey client;       // where to send peer data (client ip/port from server ip/port); IPv4 clients
  uint32_t relay_ip;      // the IPv4 relayed address, if the allocation has one
  uint16_t relay_port;    // the port of the relayed address of the client's family (0: none)
  uint16_t alt_port = 0;  // the port of the relayed address of the other family (0: none; RFC 8656 §7.2)
  uint32_t index;         // slot: per-worker counters are indexed by it
  uint8_t client6 = 0;    // 1: the client is IPv6 (its 5-tuple is in AllocEntry6)
  std::atomic<Tsc> expires{0};
};
static_assert(sizeof(AllocEntry) == 64);

// The IPv6 addresses of an allocation, in a side array at the same slot, so
// that IPv4 entries stay one cache line: an IPv6 client's 5-tuple, and the
// IPv6 relayed address (an IPv6 allocation's, or a dual-stack one's second).
struct AllocEntry6 {
  ClientKey6 client;
  Ip6 relay_ip;
};

struct PermissionEntry {
  uint32_t alloc;
  std::atomic<Tsc> expires{0};
};

// One cache line: client -> peer ChannelData reads nothing else of its
// allocation or permission (with a million flows each line is a DRAM
// access; bench/micro/dp_table_bench DecideBurst32 measures it), and the
// IPv4 channel and peer tables (flow_index.h) compare their keys here.
struct alignas(64) ChannelEntry {
  uint32_t alloc;           // AllocEntry slot
  uint32_t peer_ip;         // network order (IPv6 peers: the side array at `index`)
  uint16_t peer_port;       // network order
  uint16_t channel;         // network order
  uint32_t index : 31 = 0;  // this entry's slot
  // The peer is of the other family than the client (RFC 8656 §7.2, §12: the
  // channel is bound on the relayed address of the peer's family): the fast
  // path translates. In the cache line the same-family path reads anyway.
  uint32_t cross : 1 = 0;
  std::atomic<Tsc> expires{0};
  // The permission for peer_ip on this allocation, linked by the writer so
  // that ChannelData needs no permission lookup: its slot + 1 (0: look it
  // up; Tables::linked_permission). Both live until their allocation is
  // removed, so the link never dangles.
  std::atomic<uint32_t> perm{0};
  uint32_t relay_ip = 0;  // network order; IPv4 peers
  // Copies the writer keeps in step with their sources, each stored with
  // it (refresh, link, removal), so that the ChannelData path reads only
  // this line: the allocation's expiry (AllocEntry::expires; 0 once the
  // channel or its allocation is removed), the linked permission's expiry
  // (valid while `perm` is set: stored before the link is published), and
  // the relayed address of the peer's family the data leaves from (its
  // port; the IPv4 address above; an IPv6 one is in the allocation's side
  // array).
  std::atomic<Tsc> alloc_expires{0};
  std::atomic<Tsc> perm_expires{0};
  // The IPv4 client's 5-tuple (zero for IPv6 clients): the channel key's
  // other half, compared by the channel table (key_matches).
  uint32_t client_ip = 0, server_ip = 0;  // network order
  uint16_t client_port = 0, server_port = 0;
  uint16_t relay_port = 0;  // network order
};
static_assert(sizeof(ChannelEntry) == 64);

// Does the entry hold the key? (FlowIndex compares whole keys here: a tag
// two keys share never answers for the other one.) An IPv4 client's
// channel: its 5-tuple and number; an IPv4 peer's binding: the relayed
// address it arrives on and the peer's transport address.
[[nodiscard, gnu::always_inline]] inline bool key_matches(const ChannelEntry& e, const ChannelKey& k) noexcept {
  return e.client_ip == k.client_ip && e.server_ip == k.server_ip && e.client_port == k.client_port &&
         e.server_port == k.server_port && e.channel == k.channel;
}
[[nodiscard, gnu::always_inline]] inline bool key_matches(const ChannelEntry& e, const PeerKey& k) noexcept {
  return e.relay_ip == k.relay_ip && e.peer_ip == k.peer_ip && e.relay_port == k.relay_port &&
         e.peer_port == k.peer_port;
}

// Per worker and allocation: what the fast path relayed (summed by the
// sync thread into Redis every second).
struct AllocCounters {
  uint64_t to_peer_packets, to_peer_bytes;
  uint64_t to_client_packets, to_client_bytes;
};

}  // namespace turn::dp
