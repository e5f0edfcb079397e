// SPDX-License-Identifier: Apache-2.0
// FlowIndex: key -> entry slot for the two IPv4 ChannelData tables (the
// channel table, client -> peer; the peer table, peer -> client), built so
// that a lookup reads one cache line of index and then the entry itself.
//
// Why not rte_hash there: rte_hash keeps its keys apart from the data, so a
// hit reads the primary and the secondary bucket, then the key slot, then
// the entry the slot points to: four lines, three of them one after the
// other, and with a million flows every one of them is a DRAM access
// (bench/micro/dp_table_bench: Lookup/ChannelBulk32 45 ns a key at 1M,
// 21 ns at 1k). Here the key is compared in the entry, which the fast path
// reads anyway: one bucket line, then the entry.
//
// Layout: a power-of-two array of 64-byte buckets, each with 7 slots of
// (32-bit tag, entry slot + 1) and a count of the keys that overflowed to
// their second bucket. A key lives in its primary bucket, or in its
// secondary one when the primary was full at insertion (and then the
// primary's `spilled` counts it); nothing ever moves once placed, so a
// reader never misses a key that stays in the table. Sized at 2 buckets
// per 4 keys of capacity (at most 2 keys a bucket on average, under 2/7 of
// the slots): a bucket overflows with a probability of about 0.1% at full
// capacity, and a key is refused only when both its buckets are full
// (filling to capacity with random keys refused about 2 inserts in a
// million, all near the end: 262144 and 1048576 entries, 4 seeds each).
//
// Concurrency (the same contract as rte_hash's RW_CONCURRENCY_LF, tables.h):
// one writer, any number of lock-free readers. The writer fills an entry
// before it publishes the slot (release store); readers load slots with
// acquire and compare the whole key in the entry, so a tag that two keys
// share never answers for the wrong one (RFC 8656 §12: the channel is
// bound to the client's 5-tuple; a hash collision must not reach another
// client's peer). Erasing clears the slot; the caller frees the entry only
// after an RCU grace period (Tables: rte_rcu_qsbr), so a reader holding an
// erased entry still reads what was published.
//
// The hash is seeded at construction (a random seed in turn-dataplane): a
// client that picks its ports cannot aim its keys at one bucket.
#pragma once

#include <algorithm>
#include <atomic>
#include <bit>
#include <concepts>
#include <cstdint>
#include <cstring>
#include <limits>
#include <new>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace turn::dp {

// Entries tell whether they hold a key: key_matches(entry, key), found by
// argument-dependent lookup (entries.h).
template <class K, class E>
concept IndexedBy = requires(const E& e, const K& k) {
  { key_matches(e, k) } -> std::same_as<bool>;
};

template <class K>
class FlowIndex {
  static_assert(sizeof(K) % 8 == 0 && alignof(K) >= 8 && std::has_unique_object_representations_v<K>,
                "keys are padding-free multiples of 8 bytes");

 public:
  static constexpr uint32_t kSlots = 7;
  // The most keys find_bulk takes at once.
  static constexpr uint32_t kBulkMax = 64;

  struct alignas(64) Bucket {
    std::atomic<uint32_t> spilled;  // keys whose primary bucket this is that live in their secondary
    uint32_t reserved;
    std::atomic<uint64_t> slot[kSlots];  // (tag << 32) | (entry + 1); 0: empty
  };
  static_assert(sizeof(Bucket) == 64);

  // Memory for the buckets comes from the caller (hugepages in turn-
  // dataplane: rte_zmalloc), zeroed, of bytes_for(capacity) bytes, 64-byte
  // aligned; the caller frees it after the index is gone.
  [[nodiscard]] static constexpr uint32_t buckets_for(uint32_t capacity) noexcept {
    return std::bit_ceil(std::max<uint32_t>(2, capacity / 2));
  }
  [[nodiscard]] static constexpr size_t bytes_for(uint32_t capacity) noexcept {
    return size_t{buckets_for(capacity)} * sizeof(Bucket);
  }

  FlowIndex(void* zeroed_memory, uint32_t capacity, uint64_t seed)
      : buckets_(static_cast<Bucket*>(zeroed_memory)), mask_(buckets_for(capacity) - 1), seed_(seed) {
    if (capacity == 0 || capacity >= std::numeric_limits<uint32_t>::max())
      throw std::invalid_argument("FlowIndex: capacity " + std::to_string(capacity) + " is not in 1..2^32-2");
    for (uint32_t i = 0; i <= mask_; ++i) new (&buckets_[i]) Bucket{};  // the atomics' lifetimes begin
  }

  // ---- readers -----------------------------------------------------------
  // The entry of `entries` that holds k, or nullptr.
  template <class E>
  requires IndexedBy<K, E>
  [[nodiscard]] const E* find(const K& k, const E* entries) const noexcept {
    Hash h = hash(k);
    const Bucket& b = buckets_[h.primary];
    if (const E* e = scan(b, h.tag, k, entries)) return e;
    if (b.spilled.load(std::memory_order_acquire) == 0) return nullptr;
    return scan(buckets_[h.secondary], h.tag, k, entries);
  }

  // find() for n <= kBulkMax keys (worker.cpp checks the burst's bound), their memory accesses overlapped: every
  // primary bucket is fetched, then every first candidate entry, then the
  // keys are compared; a key whose first candidate is not its entry (a
  // shared tag, or a spilled key) takes find()'s full walk. out[i] is the
  // entry of *keys[i], or nullptr.
  template <class E>
  requires IndexedBy<K, E>
  void find_bulk(const K* const* keys, uint32_t n, const E* entries, const E** out) const noexcept {
    Hash h[kBulkMax];
    uint32_t first[kBulkMax];
    for (uint32_t i = 0; i < n; ++i) {
      h[i] = hash(*keys[i]);
      __builtin_prefetch(&buckets_[h[i].primary], 0, 3);
    }
    for (uint32_t i = 0; i < n; ++i) {
      first[i] = first_candidate(buckets_[h[i].primary], h[i].tag);
      if (first[i] != kNone) __builtin_prefetch(&entries[first[i]], 0, 3);
    }
    for (uint32_t i = 0; i < n; ++i) {
      if (first[i] != kNone && key_matches(entries[first[i]], *keys[i])) {
        out[i] = &entries[first[i]];
        continue;
      }
      const Bucket& b = buckets_[h[i].primary];
      if (first[i] == kNone && b.spilled.load(std::memory_order_acquire) == 0) {
        out[i] = nullptr;  // the common miss: no tag in the primary, nothing spilled
        continue;
      }
      out[i] = find(*keys[i], entries);
    }
  }

  // ---- the writer --------------------------------------------------------
  // Maps k to entry; entries[entry] must already hold k (key_matches) and
  // everything a reader reads. A key already present is pointed at the new
  // entry in place (readers see the old or the new one). False: both
  // buckets of k are full (nothing changed).
  template <class E>
  requires IndexedBy<K, E>
  bool insert(const K& k, uint32_t entry, const E* entries) noexcept {
    Hash h = hash(k);
    uint64_t v = value(h.tag, entry);
    Bucket& p = buckets_[h.primary];
    Bucket& s = buckets_[h.secondary];
    for (Bucket* b : {&p, &s})
      for (auto& slot : b->slot) {
        uint64_t old = slot.load(std::memory_order_relaxed);
        if (old != 0 && tag_of(old) == h.tag && key_matches(entries[entry_of(old)], k)) {
          slot.store(v, std::memory_order_release);
          return true;
        }
      }
    if (place(p, v)) {
      count_.fetch_add(1, std::memory_order_relaxed);
      return true;
    }
    // Counted before the slot is published: a reader that finds the slot
    // has looked at the count first only if it looked before both stores
    // (then the key is new to it either way).
    p.spilled.fetch_add(1, std::memory_order_release);
    if (place(s, v)) {
      count_.fetch_add(1, std::memory_order_relaxed);
      return true;
    }
    p.spilled.fetch_sub(1, std::memory_order_relaxed);
    return false;
  }

  // Unmaps k if it maps to `entry`. True: it did (the caller frees the
  // entry after a grace period).
  bool erase(const K& k, uint32_t entry) noexcept {
    Hash h = hash(k);
    uint64_t v = value(h.tag, entry);
    Bucket& p = buckets_[h.primary];
    if (clear(p, v)) {
      count_.fetch_sub(1, std::memory_order_relaxed);
      return true;
    }
    if (p.spilled.load(std::memory_order_relaxed) != 0 && clear(buckets_[h.secondary], v)) {
      p.spilled.fetch_sub(1, std::memory_order_release);
      count_.fetch_sub(1, std::memory_order_relaxed);
      return true;
    }
    return false;
  }

  // Any thread.
  [[nodiscard]] uint32_t size() const noexcept { return count_.load(std::memory_order_relaxed); }
  [[nodiscard]] uint32_t buckets() const noexcept { return mask_ + 1; }
  // Keys living in their secondary bucket (the writer's thread).
  [[nodiscard]] uint64_t spilled() const noexcept {
    uint64_t n = 0;
    for (uint32_t i = 0; i <= mask_; ++i) n += buckets_[i].spilled.load(std::memory_order_relaxed);
    return n;
  }
  // Where k may live (tests aim keys at one bucket with them).
  [[nodiscard]] uint32_t primary_bucket(const K& k) const noexcept { return hash(k).primary; }
  [[nodiscard]] uint32_t secondary_bucket(const K& k) const noexcept { return hash(k).secondary; }

 private:
  // ---- readers' helpers (the packet path: scripts/check-hotpath.sh) -------
  static constexpr uint32_t kNone = std::numeric_limits<uint32_t>::max();
  struct Hash {
    uint32_t primary, secondary, tag;
  };

  // A multiply-xorshift over the key's 64-bit words (2 multiplies a word),
  // finished as splitmix64; the low bits pick the primary bucket, the high
  // 32 are the tag, and the secondary bucket is the primary moved by a
  // non-zero offset drawn from the tag.
  [[nodiscard, gnu::always_inline]] Hash hash(const K& k) const noexcept {
    uint64_t w[sizeof(K) / 8];
    std::memcpy(w, &k, sizeof(K));
    uint64_t x = seed_;
    for (uint64_t word : w) {
      x = (x ^ word) * 0x9E3779B97F4A7C15ULL;
      x ^= x >> 32;
    }
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ULL;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBULL;
    x ^= x >> 31;
    Hash h;
    h.primary = static_cast<uint32_t>(x) & mask_;
    h.tag = static_cast<uint32_t>(x >> 32);
    uint32_t offset = ((h.tag * 0x5BD1E995u) | 1u) & mask_;  // odd, so non-zero (mask_ >= 1)
    h.secondary = h.primary ^ offset;
    return h;
  }
  [[nodiscard]] static uint64_t value(uint32_t tag, uint32_t entry) noexcept {
    return (uint64_t{tag} << 32) | (uint64_t{entry} + 1);
  }
  [[nodiscard]] static uint32_t tag_of(uint64_t v) noexcept { return static_cast<uint32_t>(v >> 32); }
  [[nodiscard]] static uint32_t entry_of(uint64_t v) noexcept { return static_cast<uint32_t>(v) - 1; }

  template <class E>
  [[gnu::always_inline]] static const E* scan(const Bucket& b, uint32_t tag, const K& k, const E* entries) noexcept {
    for (const auto& slot : b.slot) {
      uint64_t v = slot.load(std::memory_order_acquire);
      if (v != 0 && tag_of(v) == tag && key_matches(entries[entry_of(v)], k)) return &entries[entry_of(v)];
    }
    return nullptr;
  }
  [[gnu::always_inline]] static uint32_t first_candidate(const Bucket& b, uint32_t tag) noexcept {
    for (const auto& slot : b.slot) {
      uint64_t v = slot.load(std::memory_order_acquire);
      if (v != 0 && tag_of(v) == tag) return entry_of(v);
    }
    return kNone;
  }
  // ---- the writer's helpers -----------------------------------------------
  static bool place(Bucket& b, uint64_t v) noexcept {
    for (auto& slot : b.slot)
      if (slot.load(std::memory_order_relaxed) == 0) {
        slot.store(v, std::memory_order_release);
        return true;
      }
    return false;
  }
  static bool clear(Bucket& b, uint64_t v) noexcept {
    for (auto& slot : b.slot)
      if (slot.load(std::memory_order_relaxed) == v) {
        slot.store(0, std::memory_order_release);
        return true;
      }
    return false;
  }

  Bucket* buckets_;
  uint32_t mask_;
  uint64_t seed_;
  std::atomic<uint32_t> count_{0};
};

}  // namespace turn::dp
