// SPDX-License-Identifier: Apache-2.0
// One received burst, decided the same way in the worker (worker.cpp), in
// the unit tests and in the fastpath_fuzz target:
//
//   1. classify each frame once: parse it, choose its stage, build the key
//      its stage needs (fastpath.h: classify_udp, *_key);
//   2. look each family's and kind's keys up in bulk (Tables::lookup_bulk;
//      in the worker rte_hash's bulk lookup, l3fwd's pattern) and prefetch
//      what the stages read next: with a million flows each is a DRAM
//      access, and here they overlap;
//   3. each frame's stage, handed what was found for it (run_stage).
//
// The caller owns the frames (the worker: mbufs, whose offsets it copies
// back) and acts on the verdicts. Templated on the tables: the worker's
// WorkerTables over rte_hash, the tests' std::unordered_map fakes. No
// allocation, locks, syscalls or exceptions.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "dataplane/pipeline/fastpath.h"

namespace turn::dp {

// The most frames decided together (the worker's rx burst is at most this).
inline constexpr uint16_t kMaxBurst = 64;
// The most keys one bulk lookup takes (RTE_HASH_LOOKUP_BULK_MAX in DPDK
// 22.11; dataplane/table/tables.cpp checks it).
inline constexpr uint32_t kBulkLookupMax = 64;

// rte_prefetch0 without DPDK's headers (the tests and the fuzz target build
// without them): into every cache level.
[[gnu::always_inline]] inline void prefetch0(const void* p) noexcept { __builtin_prefetch(p, 0, 3); }

namespace detail {

// One key looked up alone, by its kind (either family).
template <class T, class K>
[[gnu::always_inline]] inline auto find(const T& t, const K& k) noexcept {
  if constexpr (std::is_same_v<K, ChannelKey> || std::is_same_v<K, ChannelKey6>) {
    return t.channel(k);
  } else if constexpr (std::is_same_v<K, ClientKey> || std::is_same_v<K, ClientKey6>) {
    return t.client(k);
  } else if constexpr (std::is_same_v<K, PermissionKey> || std::is_same_v<K, PermissionKey6>) {
    return t.permission(k);
  } else {
    static_assert(std::is_same_v<K, PeerKey> || std::is_same_v<K, PeerKey6>, "not a table key");
    return t.peer(k);
  }
}

// Keys of one kind looked up at once: the tables' lookup_bulk (rte_hash's
// bulk lookup) where they have it, else key by key (the tests' fakes).
template <class Tables, class K, class E>
[[gnu::always_inline]] inline void lookup_keys(const Tables& t, const K* const* keys, uint32_t m,
                                               const E** found) noexcept {
  if constexpr (requires { t.lookup_bulk(keys, m, found); })
    t.lookup_bulk(keys, m, found);
  else
    for (uint32_t j = 0; j < m; ++j) found[j] = find(t, *keys[j]);
}

// One burst's lookups of one kind: keys gathered in pass 1, looked up in
// bulk, the answers read back by slot in pass 3.
template <class K, class E>
struct BulkLookup {
  K keys[kMaxBurst];
  const K* ptrs[kMaxBurst];
  const E* found[kMaxBurst];
  uint32_t n = 0;
  [[gnu::always_inline]] uint8_t add(const K& k) noexcept {
    keys[n] = k;
    ptrs[n] = &keys[n];
    return static_cast<uint8_t>(n++);
  }
  template <class Tables>
  [[gnu::always_inline]] void run(const Tables& t) noexcept {
    for (uint32_t b = 0; b < n; b += kBulkLookupMax)
      lookup_keys(t, ptrs + b, std::min<uint32_t>(kBulkLookupMax, n - b), found + b);
  }
  // Only the keys for which need(slot) holds; the others find nullptr.
  template <class Tables, class Need>
  [[gnu::always_inline]] void run_where(const Tables& t, Need&& need) noexcept {
    const K* sub[kMaxBurst];
    const E* got[kMaxBurst];
    uint8_t at[kMaxBurst];
    uint32_t m = 0;
    for (uint32_t j = 0; j < n; ++j) {
      found[j] = nullptr;
      if (need(j)) {
        sub[m] = ptrs[j];
        at[m++] = static_cast<uint8_t>(j);
      }
    }
    for (uint32_t b = 0; b < m; b += kBulkLookupMax)
      lookup_keys(t, sub + b, std::min<uint32_t>(kBulkLookupMax, m - b), got + b);
    for (uint32_t i = 0; i < m; ++i) found[at[i]] = got[i];
  }
};

// The slot of an allocation entry the tables returned, without reading the
// entry where the tables can tell (Tables::slot_of), else its index.
template <class Tables>
[[gnu::always_inline]] inline uint32_t slot_of(const Tables& t, const AllocEntry* a) noexcept {
  if constexpr (requires { t.slot_of(a); })
    return t.slot_of(a);
  else
    return a->index;
}

// One burst's lookups for the frames of one family F (detail::V4 or V6):
// each stage's keys gathered in pass 1 (add: the frame's slot in its
// kind's BulkLookup), looked up in bulk in pass 2 (run), what was found
// handed to the frame's stage in pass 3 (found).
template <class F>
struct FamilyLookups {
  BulkLookup<typename F::ChannelKey, ChannelEntry> channels;
  BulkLookup<typename F::ClientKey, AllocEntry> clients;
  BulkLookup<typename F::PermissionKey, PermissionEntry> perms;
  BulkLookup<typename F::PeerKey, ChannelEntry> peers;

  [[gnu::always_inline]] uint8_t add(const Frame& f, const typename F::View& u, Stage s) noexcept {
    switch (s) {
      case Stage::ChannelData:
        return channels.add(channel_key<F>(f, u));
      case Stage::Stun:
        return clients.add(client_key<F>(u));
      case Stage::PeerData:
        peers.add(peer_key<F>(u));
        return perms.add(permission_key<F>(u));  // the same slot in both
      case Stage::Decided:
        break;
    }
    return 0;
  }

  // The lookups, and prefetches of what the stages read next: with a
  // million flows each is a DRAM access, and here they overlap.
  template <class Tables>
  [[gnu::always_inline]] void run(const Tables& t, AllocCounters* counters) noexcept {
    channels.run(t);
    clients.run(t);
    peers.run(t);
    // Peer data whose channel carries its client and its permission's
    // expiry (fastpath.h, channel_carries_client) needs no permission
    // lookup: with a million flows that is rte_hash's three lines and the
    // permission's, and the allocation's after it.
    if constexpr (F::kV6)
      perms.run(t);
    else
      perms.run_where(t, [&](uint32_t j) { return !channel_carries_client<F>(peers.found[j]); });
    // ChannelData reads its channel's entry alone (one line: entries.h;
    // an IPv6 relayed address or peer also a side array), and counts on
    // its allocation's counters. The entries first, all of them: reading
    // ch->alloc is a demand load, and with a million flows each would wait
    // for DRAM in turn (the profile of the 1M point had 10% of
    // decide_burst on that load when it came first).
    for (uint32_t j = 0; j < channels.n; ++j)
      if (channels.found[j]) prefetch0(channels.found[j]);
    if (counters)
      for (uint32_t j = 0; j < channels.n; ++j)
        if (const ChannelEntry* ch = channels.found[j]) prefetch0(&counters[ch->alloc]);
    for (uint32_t j = 0; j < clients.n; ++j)
      if (const AllocEntry* a = clients.found[j]) {
        prefetch0(a);
        if (counters) prefetch0(&counters[slot_of(t, a)]);
      }
    for (uint32_t j = 0; j < perms.n; ++j) {
      if (perms.found[j]) prefetch0(perms.found[j]);
      if (const ChannelEntry* ch = peers.found[j]) {
        prefetch0(ch);
        if (counters && channel_carries_client<F>(ch)) prefetch0(&counters[ch->alloc]);
      }
    }
  }

  [[gnu::always_inline]] Found found(Stage s, uint8_t slot) const noexcept {
    Found e;
    switch (s) {
      case Stage::ChannelData:
        e.channel = channels.found[slot];
        break;
      case Stage::Stun:
        e.client = clients.found[slot];
        break;
      case Stage::PeerData:
        e.permission = perms.found[slot];
        e.peer = peers.found[slot];
        break;
      case Stage::Decided:
        break;
    }
    return e;
  }
};

// The frames idx[0..m) of family F (detail::V4 or V6) of a chunk, through
// the three passes: classify and gather keys, look up in bulk, run each
// frame's stage. IPv4 is inlined into the chunk; IPv6 is a call of its own
// (its 48-byte keys' lookup state stays off the IPv4 path's stack: with it
// there, ChannelData at 1k allocations took 8% longer in
// dp_table_bench DecideBurst32).
template <class F, class Tables>
[[gnu::always_inline]] inline void decide_family(Frame* frames, Verdict* out, const uint8_t* idx, uint16_t m, Tables& t,
                                                 const PortContext& pc, Tsc now, AllocCounters* counters) noexcept {
  typename F::View views[kMaxBurst];
  Stage stage[kMaxBurst];
  uint8_t slot[kMaxBurst];  // the frame's index in its kind's BulkLookup
  FamilyLookups<F> l;

  // Pass 1 (the frames' first lines were read by decide_chunk): parse,
  // classify, and gather each frame's keys.
  for (uint16_t k = 0; k < m; ++k) {
    const Frame& f = frames[idx[k]];
    Verdict& v = out[idx[k]];
    stage[k] = Stage::Decided;
    slot[k] = 0;
    const FrameKind kind = F::parse(f.data(), f.len, views[k]);
    if (kind == F::kUdp) {
      stage[k] = classify_udp<F>(f, pc, views[k], v);
      slot[k] = l.add(f, views[k], stage[k]);
    } else if (kind == FrameKind::Malformed) {
      v = Verdict::dropped(Drop::Malformed);
    } else if (kind == FrameKind::Arp) {
      v = Verdict::punted(PuntReason::Arp);
    } else {
      v = Verdict::punted(F::kNotUdp);
    }
  }

  // Pass 2: the lookups in bulk, per kind.
  l.run(t, counters);

  // Pass 3: each frame's stage, with what was found for it.
  for (uint16_t k = 0; k < m; ++k)
    if (stage[k] != Stage::Decided)
      out[idx[k]] = run_stage<F>(frames[idx[k]], t, pc, views[k], stage[k], l.found(stage[k], slot[k]), now);
}

template <class Tables>
[[gnu::noinline]] void decide_ipv6(Frame* frames, Verdict* out, const uint8_t* idx, uint16_t m, Tables& t,
                                   const PortContext& pc, Tsc now, AllocCounters* counters) noexcept {
  decide_family<V6>(frames, out, idx, m, t, pc, now, counters);
}

// Up to kMaxBurst frames (decide_burst splits longer runs), each family's
// together.
template <class Tables>
TURN_DP_STAGE void decide_chunk(Frame* frames, Verdict* out, uint16_t n, Tables& t, const PortContext& pc, Tsc now,
                                AllocCounters* counters) noexcept {
  uint8_t idx4[kMaxBurst], idx6[kMaxBurst];
  uint16_t n4 = 0, n6 = 0;
  constexpr uint16_t kAhead = 3;
  for (uint16_t i = 0; i < n && i < kAhead; ++i) prefetch0(frames[i].data());
  for (uint16_t i = 0; i < n; ++i) {
    if (i + kAhead < n) prefetch0(frames[i + kAhead].data());
    out[i] = Verdict{};
    const Frame& f = frames[i];
    if (f.len >= kEthHeader && load_be16(f.data() + 12) == kEtherTypeIpv6)
      idx6[n6++] = static_cast<uint8_t>(i);
    else
      idx4[n4++] = static_cast<uint8_t>(i);
  }
  if (n4) decide_family<V4>(frames, out, idx4, n4, t, pc, now, counters);
  if (n6) [[unlikely]]
    decide_ipv6(frames, out, idx6, n6, t, pc, now, counters);
}

}  // namespace detail

// Decides frames[0..n): out[i] is frames[i]'s verdict; a Tx frame has been
// rewritten in place (its offsets in frames[i]), a punted one is as
// received. counters: the worker's per-allocation counters, prefetched for
// the frames that will count on them (nullptr: none).
template <class Tables>
inline void decide_burst(Frame* frames, Verdict* out, uint16_t n, Tables& t, const PortContext& pc, Tsc now,
                         AllocCounters* counters = nullptr) noexcept {
  for (uint16_t at = 0; at < n; at = static_cast<uint16_t>(at + kMaxBurst))
    detail::decide_chunk(frames + at, out + at, std::min<uint16_t>(kMaxBurst, static_cast<uint16_t>(n - at)), t, pc,
                         now, counters);
}

// The decision for one frame: a burst of one, through the same passes.
template <class Tables>
inline Verdict process_frame(Frame& f, Tables& t, const PortContext& pc, Tsc now) noexcept {
  Verdict v;
  decide_burst(&f, &v, 1, t, pc, now);
  return v;
}

}  // namespace turn::dp
