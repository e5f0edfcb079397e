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

// One key looked up alone, by its kind.
template <class T>
[[gnu::always_inline]] inline const ChannelEntry* find(const T& t, const ChannelKey& k) noexcept {
  return t.channel(k);
}
template <class T>
[[gnu::always_inline]] inline const AllocEntry* find(const T& t, const ClientKey& k) noexcept {
  return t.client(k);
}
template <class T>
[[gnu::always_inline]] inline const PermissionEntry* find(const T& t, const PermissionKey& k) noexcept {
  return t.permission(k);
}
template <class T>
[[gnu::always_inline]] inline const ChannelEntry* find(const T& t, const PeerKey& k) noexcept {
  return t.peer(k);
}
template <class T>
[[gnu::always_inline]] inline const ChannelEntry* find(const T& t, const ChannelKey6& k) noexcept {
  return t.channel(k);
}
template <class T>
[[gnu::always_inline]] inline const AllocEntry* find(const T& t, const ClientKey6& k) noexcept {
  return t.client(k);
}
template <class T>
[[gnu::always_inline]] inline const PermissionEntry* find(const T& t, const PermissionKey6& k) noexcept {
  return t.permission(k);
}
template <class T>
[[gnu::always_inline]] inline const ChannelEntry* find(const T& t, const PeerKey6& k) noexcept {
  return t.peer(k);
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
    perms.run(t);
    peers.run(t);
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
      if (peers.found[j]) prefetch0(peers.found[j]);
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

// Up to kMaxBurst frames (decide_burst splits longer runs).
template <class Tables>
TURN_DP_STAGE void decide_chunk(Frame* frames, Verdict* out, uint16_t n, Tables& t, const PortContext& pc, Tsc now,
                                AllocCounters* counters) noexcept {
  union View {
    Udp4View v4;
    Udp6View v6;
  };
  View views[kMaxBurst];
  Stage stage[kMaxBurst];
  bool v6[kMaxBurst];
  uint8_t slot[kMaxBurst];  // the frame's index in its kind's BulkLookup
  FamilyLookups<V4> l4;
  FamilyLookups<V6> l6;

  // Pass 1: classify, and gather each frame's keys.
  constexpr uint16_t kAhead = 3;
  for (uint16_t i = 0; i < n && i < kAhead; ++i) prefetch0(frames[i].data());
  for (uint16_t i = 0; i < n; ++i) {
    if (i + kAhead < n) prefetch0(frames[i + kAhead].data());
    const Frame& f = frames[i];
    stage[i] = Stage::Decided;
    slot[i] = 0;
    v6[i] = false;
    out[i] = Verdict{};
    if (f.len >= kEthHeader && load_be16(f.data() + 12) == kEtherTypeIpv6) {
      v6[i] = true;
      switch (parse_udp6(f.data(), f.len, views[i].v6)) {
        case FrameKind::Udp6:
          stage[i] = classify_udp<V6>(f, pc, views[i].v6, out[i]);
          slot[i] = l6.add(f, views[i].v6, stage[i]);
          break;
        case FrameKind::Malformed:
          out[i] = Verdict::dropped(Drop::Malformed);
          break;
        default:
          out[i] = Verdict::punted(PuntReason::Ipv6);
          break;  // NDP, extension headers, TCP: the kernel's
      }
      continue;
    }
    switch (parse_udp4(f.data(), f.len, views[i].v4)) {
      case FrameKind::Udp4:
        stage[i] = classify_udp<V4>(f, pc, views[i].v4, out[i]);
        slot[i] = l4.add(f, views[i].v4, stage[i]);
        break;
      case FrameKind::Malformed:
        out[i] = Verdict::dropped(Drop::Malformed);
        break;
      case FrameKind::Arp:
        out[i] = Verdict::punted(PuntReason::Arp);
        break;
      default:
        out[i] = Verdict::punted(PuntReason::Other);
        break;
    }
  }

  // Pass 2: the lookups in bulk, per family and kind.
  l4.run(t, counters);
  l6.run(t, counters);

  // Pass 3: each frame's stage, with what was found for it.
  for (uint16_t i = 0; i < n; ++i) {
    if (stage[i] == Stage::Decided) continue;
    if (v6[i])
      out[i] = run_stage<V6>(frames[i], t, pc, views[i].v6, stage[i], l6.found(stage[i], slot[i]), now);
    else
      out[i] = run_stage<V4>(frames[i], t, pc, views[i].v4, stage[i], l4.found(stage[i], slot[i]), now);
  }
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
