// SPDX-License-Identifier: Apache-2.0
// FlowIndex (dataplane/table/flow_index.h), the IPv4 channel and peer
// tables' index, over real ChannelEntry arrays and heap memory (no EAL):
//   - every key inserted is found, erased ones are not, the rest stay;
//   - keys whose primary bucket is full spill to their secondary and stay
//     found when their primary empties again (nothing moves once placed);
//   - a key is refused only when both its buckets are full, and the
//     refusal changes nothing;
//   - the whole key is compared in the entry: a slot whose tag matches but
//     whose entry holds another key never answers;
//   - find_bulk answers as find, for hits, misses and spilled keys;
//   - a reader running beside the writer always finds the keys that stay
//     and never gets another key's entry, also when they live in their
//     secondary bucket and other keys churn through both their buckets.
#include "dataplane/table/flow_index.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <memory>
#include <set>
#include <thread>
#include <vector>

#include "dataplane/table/entries.h"

namespace turn::dp {
namespace {

struct FreeDeleter {
  void operator()(void* p) const noexcept { std::free(p); }
};

// An index of `capacity` keys over `entries` ChannelEntry slots; the
// entry for key i holds key_of(i).
class FlowIndexTest : public ::testing::Test {
 protected:
  void make(uint32_t capacity, uint32_t entries) {
    size_t bytes = FlowIndex<ChannelKey>::bytes_for(capacity);
    mem_.reset(std::aligned_alloc(64, bytes));
    std::memset(mem_.get(), 0, bytes);
    index_ = std::make_unique<FlowIndex<ChannelKey>>(mem_.get(), capacity, 0x1234567890ABCDEFULL);
    entries_ = std::vector<ChannelEntry>(entries);
  }
  static ChannelKey key_of(uint32_t i) {
    return ChannelKey{0x0A000000u + i,
                      0x0A4E0002u,
                      static_cast<uint16_t>(10000 + (i & 7)),
                      3478,
                      static_cast<uint16_t>(0x4000 + (i >> 20)),
                      0};
  }
  // Writes key into entry slot e and maps it (as Tables' writer does:
  // entry first, then the index).
  bool put(const ChannelKey& k, uint32_t e) {
    ChannelEntry& c = entries_[e];
    c.client_ip = k.client_ip;
    c.server_ip = k.server_ip;
    c.client_port = k.client_port;
    c.server_port = k.server_port;
    c.channel = k.channel;
    c.index = e;
    return index_->insert(k, e, entries_.data());
  }
  const ChannelEntry* find(const ChannelKey& k) const { return index_->find(k, entries_.data()); }
  // Keys (from `from` on) whose primary bucket is `bucket`.
  std::vector<ChannelKey> keys_in_bucket(uint32_t bucket, size_t n, uint32_t from = 0) const {
    std::vector<ChannelKey> out;
    for (uint32_t i = from; out.size() < n; ++i)
      if (index_->primary_bucket(key_of(i)) == bucket) out.push_back(key_of(i));
    return out;
  }

  // A reader beside the writer: until stopped, looks keys[i] up (find, then
  // all at once with find_bulk) and counts in `wrong` every answer that is
  // not entries_[i]; `passes` counts its rounds. Stopped and joined when it
  // goes out of scope too (a failed ASSERT in the writer's loop).
  struct Reader {
    std::atomic<bool> done{false};
    std::atomic<uint64_t> wrong{0}, passes{0};
    std::thread thread;
    // The writer's churn entries come in two halves used in turn; a half is
    // reused only once the reader has finished two passes since it was
    // erased (Tables waits for a grace period the same way). Round r: the
    // half to use, when it may be used; then mark it erased.
    uint64_t erased_at[2] = {0, 0};
    uint32_t begin_round(uint32_t r) {
      uint32_t half = r % 2;
      while (r >= 2 && passes.load(std::memory_order_acquire) < erased_at[half] + 2) std::this_thread::yield();
      return half;
    }
    void end_round(uint32_t r) { erased_at[r % 2] = passes.load(std::memory_order_acquire); }
    void stop() {
      done.store(true, std::memory_order_release);
      if (thread.joinable()) thread.join();
    }
    ~Reader() { stop(); }
  };
  void read_beside(const std::vector<ChannelKey>& keys, Reader& r) const {
    r.thread = std::thread([this, &keys, &r] {
      const auto n = static_cast<uint32_t>(keys.size());
      std::vector<const ChannelKey*> ptrs(n);
      std::vector<const ChannelEntry*> out(n);
      for (uint32_t i = 0; i < n; ++i) ptrs[i] = &keys[i];
      while (!r.done.load(std::memory_order_acquire)) {
        for (uint32_t i = 0; i < n; ++i)
          if (index_->find(keys[i], entries_.data()) != &entries_[i]) r.wrong.fetch_add(1);
        index_->find_bulk(ptrs.data(), n, entries_.data(), out.data());
        for (uint32_t i = 0; i < n; ++i)
          if (out[i] != &entries_[i]) r.wrong.fetch_add(1);
        r.passes.fetch_add(1, std::memory_order_release);
      }
    });
  }

  std::unique_ptr<void, FreeDeleter> mem_;
  std::unique_ptr<FlowIndex<ChannelKey>> index_;
  std::vector<ChannelEntry> entries_;
};

TEST_F(FlowIndexTest, EveryInsertedKeyIsFoundAndErasedOnesAreNot) {
  constexpr uint32_t kN = 4096;
  make(kN, kN);
  for (uint32_t i = 0; i < kN; ++i) ASSERT_TRUE(put(key_of(i), i)) << "key " << i;
  EXPECT_EQ(index_->size(), kN);
  for (uint32_t i = 0; i < kN; ++i) ASSERT_EQ(find(key_of(i)), &entries_[i]) << "key " << i;
  EXPECT_EQ(find(key_of(kN)), nullptr) << "never inserted";
  for (uint32_t i = 0; i < kN; i += 2) ASSERT_TRUE(index_->erase(key_of(i), i));
  EXPECT_EQ(index_->size(), kN / 2);
  for (uint32_t i = 0; i < kN; ++i) EXPECT_EQ(find(key_of(i)), i % 2 ? &entries_[i] : nullptr) << "key " << i;
  EXPECT_FALSE(index_->erase(key_of(0), 0)) << "erased twice";
  EXPECT_FALSE(index_->erase(key_of(1), 2)) << "mapped to another entry: not this mapping";
  EXPECT_EQ(find(key_of(1)), &entries_[1]);
}

TEST_F(FlowIndexTest, KeysOfAFullBucketSpillAndStayFoundWhenItEmpties) {
  make(1024, 64);
  auto keys = keys_in_bucket(5, FlowIndex<ChannelKey>::kSlots + 3);
  for (uint32_t e = 0; e < keys.size(); ++e) ASSERT_TRUE(put(keys[e], e)) << "key " << e;
  EXPECT_EQ(index_->spilled(), 3u) << "three keys live in their secondary bucket";
  for (uint32_t e = 0; e < keys.size(); ++e) EXPECT_EQ(find(keys[e]), &entries_[e]) << "key " << e;
  // The primary's residents go: the spilled keys are still found where they are.
  for (uint32_t e = 0; e < FlowIndex<ChannelKey>::kSlots; ++e) ASSERT_TRUE(index_->erase(keys[e], e));
  for (uint32_t e = FlowIndex<ChannelKey>::kSlots; e < keys.size(); ++e)
    EXPECT_EQ(find(keys[e]), &entries_[e]) << "spilled key " << e;
  // Erasing a spilled key takes it off its primary's count.
  ASSERT_TRUE(index_->erase(keys[FlowIndex<ChannelKey>::kSlots], FlowIndex<ChannelKey>::kSlots));
  EXPECT_EQ(index_->spilled(), 2u);
  EXPECT_EQ(index_->size(), 2u);
}

TEST_F(FlowIndexTest, KeyIsRefusedOnlyWhenBothItsBucketsAreFullAndTheRefusalChangesNothing) {
  make(2, 64);  // two buckets: every key's secondary is the other one
  ASSERT_EQ(index_->buckets(), 2u);
  constexpr uint32_t kAll = 2 * FlowIndex<ChannelKey>::kSlots;
  for (uint32_t i = 0; i < kAll; ++i) ASSERT_TRUE(put(key_of(i), i)) << "slot " << i << " of " << kAll;
  EXPECT_FALSE(put(key_of(kAll), kAll)) << "both buckets full";
  EXPECT_EQ(index_->size(), kAll);
  EXPECT_EQ(find(key_of(kAll)), nullptr);
  for (uint32_t i = 0; i < kAll; ++i) EXPECT_EQ(find(key_of(i)), &entries_[i]) << "key " << i;
  ASSERT_TRUE(index_->erase(key_of(3), 3));
  EXPECT_TRUE(put(key_of(kAll), kAll)) << "a freed slot takes the next key";
  EXPECT_EQ(find(key_of(kAll)), &entries_[kAll]);
}

TEST_F(FlowIndexTest, SlotWhoseEntryHoldsAnotherKeyNeverAnswers) {
  make(1024, 8);
  ASSERT_TRUE(put(key_of(1), 1));
  ASSERT_EQ(find(key_of(1)), &entries_[1]);
  // The slot still carries key 1's tag, but its entry now holds another
  // 5-tuple: as if two keys shared bucket and tag.
  entries_[1].client_port = 1;
  EXPECT_EQ(find(key_of(1)), nullptr);
  const ChannelKey* k = nullptr;
  ChannelKey key = key_of(1);
  k = &key;
  const ChannelEntry* out = &entries_[0];
  index_->find_bulk(&k, 1, entries_.data(), &out);
  EXPECT_EQ(out, nullptr) << "bulk lookups compare the key too";
}

TEST_F(FlowIndexTest, InsertingAKeyAgainPointsItAtTheNewEntryInPlace) {
  make(1024, 8);
  ASSERT_TRUE(put(key_of(1), 1));
  ASSERT_TRUE(put(key_of(1), 2));
  EXPECT_EQ(index_->size(), 1u);
  EXPECT_EQ(find(key_of(1)), &entries_[2]);
  EXPECT_FALSE(index_->erase(key_of(1), 1)) << "the old mapping is gone";
  EXPECT_TRUE(index_->erase(key_of(1), 2));
  EXPECT_EQ(find(key_of(1)), nullptr);
}

TEST_F(FlowIndexTest, BulkLookupsAnswerAsSingleOnesForHitsMissesAndSpilledKeys) {
  make(1024, 256);
  std::vector<ChannelKey> keys = keys_in_bucket(9, FlowIndex<ChannelKey>::kSlots + 4);  // 4 spill
  for (uint32_t i = 0; keys.size() < 100; ++i) keys.push_back(key_of(1000000 + i));
  for (uint32_t e = 0; e < keys.size(); ++e) {
    if (e % 3 == 2) continue;  // every third key is a miss
    ASSERT_TRUE(put(keys[e], e));
  }
  for (uint32_t from = 0; from < keys.size(); from += FlowIndex<ChannelKey>::kBulkMax) {
    uint32_t n = std::min<uint32_t>(FlowIndex<ChannelKey>::kBulkMax, static_cast<uint32_t>(keys.size() - from));
    const ChannelKey* ptrs[FlowIndex<ChannelKey>::kBulkMax];
    const ChannelEntry* out[FlowIndex<ChannelKey>::kBulkMax];
    for (uint32_t j = 0; j < n; ++j) ptrs[j] = &keys[from + j];
    index_->find_bulk(ptrs, n, entries_.data(), out);
    for (uint32_t j = 0; j < n; ++j) {
      uint32_t e = from + j;
      EXPECT_EQ(out[j], find(keys[e])) << "key " << e;
      EXPECT_EQ(out[j], e % 3 != 2 ? &entries_[e] : nullptr) << "key " << e;
    }
  }
}

TEST_F(FlowIndexTest, CapacityOutsideItsRangeIsRefusedWithTheValue) {
  alignas(64) unsigned char mem[256]{};
  try {
    FlowIndex<ChannelKey> bad(mem, 0, 1);
    FAIL() << "capacity 0 accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("capacity 0"), std::string::npos) << e.what();
  }
}

// One writer inserting and erasing churn keys into the buckets of a set of
// stable keys, one reader looking the stable keys up all the while: no
// stable key is ever missed or answered with another entry. Churn entries
// are reused only after the reader has finished two passes since they were
// erased (Tables waits for a grace period the same way), which also keeps
// the two threads interleaved round after round.
TEST_F(FlowIndexTest, ReaderBesideTheWriterAlwaysFindsTheKeysThatStay) {
  constexpr uint32_t kStable = 64, kChunk = 128, kRounds = 2000;
  make(256, kStable + 2 * kChunk);
  for (uint32_t i = 0; i < kStable; ++i) ASSERT_TRUE(put(key_of(i), i));
  std::vector<ChannelKey> keys;
  for (uint32_t i = 0; i < kStable; ++i) keys.push_back(key_of(i));
  Reader rd;
  read_beside(keys, rd);
  uint64_t spilled_seen = 0;
  for (uint32_t r = 0; r < kRounds; ++r) {
    uint32_t base = kStable + rd.begin_round(r) * kChunk;
    std::vector<uint32_t> placed;
    for (uint32_t c = 0; c < kChunk; ++c)
      if (put(key_of(100000 + r * kChunk + c), base + c)) placed.push_back(c);
    spilled_seen = std::max(spilled_seen, index_->spilled());
    for (uint32_t c : placed) ASSERT_TRUE(index_->erase(key_of(100000 + r * kChunk + c), base + c));
    rd.end_round(r);
  }
  rd.stop();
  EXPECT_GE(rd.passes.load(), kRounds) << "the reader ran beside every round";
  EXPECT_GT(spilled_seen, 0u) << "the churn filled buckets: spilled keys were placed and erased under the reader";
  EXPECT_EQ(rd.wrong.load(), 0u) << "of " << rd.passes.load() * 2 * kStable << " lookups";
  EXPECT_EQ(index_->size(), kStable);
  EXPECT_EQ(index_->spilled(), 0u) << "every churn key gone";
}

// Stable keys that live in their secondary bucket (their primary was full
// when they came, then emptied), looked up by a reader all the while the
// writer churns keys through both of each one's buckets: churn keys fill
// the primary again and spill from it (its spill count rises and falls
// around the stable key's), take and free the secondary's other slots,
// and each is erased twice (the second finds nothing, as a late removal by
// an older owner does), and the stable keys themselves get erases for an
// entry they do not map to. A reader must find them in every state between
// those stores; at the end their buckets count only them as spilled.
TEST_F(FlowIndexTest, SpilledKeysStayFoundWhileOtherKeysChurnThroughBothTheirBuckets) {
  constexpr uint32_t kStable = 8, kFill = FlowIndex<ChannelKey>::kSlots, kRounds = 1500;
  constexpr uint32_t kPerStable = kFill + 1 + (kFill - 1);  // fill + spill the primary, fill the secondary
  constexpr uint32_t kChunk = kStable * kPerStable;
  constexpr uint32_t kFillerBase = kStable, kChurnBase = kFillerBase + kStable * kFill;
  make(256, kChurnBase + 2 * kChunk);
  ASSERT_GE(index_->buckets(), 2 * kStable);

  // Stable key j: its primary bucket is j, its secondary one no other
  // stable key uses (so each churn key below has one role). The primary's
  // residents come first and go once it has spilled (nothing reads yet).
  std::vector<ChannelKey> stable;
  std::vector<uint32_t> secondary;
  std::set<uint32_t> used;
  for (uint32_t j = 0; j < kStable; ++j) used.insert(j);
  for (uint32_t j = 0; j < kStable; ++j) {
    auto keys = keys_in_bucket(j, kFill + 40, 1000000 * j);
    auto pick = std::find_if(keys.begin() + kFill, keys.end(),
                             [&](const ChannelKey& k) { return !used.contains(index_->secondary_bucket(k)); });
    ASSERT_NE(pick, keys.end()) << "no key of bucket " << j << " with a free secondary";
    for (uint32_t f = 0; f < kFill; ++f) ASSERT_TRUE(put(keys[f], kFillerBase + j * kFill + f));
    ASSERT_TRUE(put(*pick, j)) << "stable key " << j;
    ASSERT_EQ(index_->spilled(), j + 1) << "stable key " << j << " lives in its secondary";
    for (uint32_t f = 0; f < kFill; ++f) ASSERT_TRUE(index_->erase(keys[f], kFillerBase + j * kFill + f));
    stable.push_back(*pick);
    secondary.push_back(index_->secondary_bucket(*pick));
    used.insert(secondary.back());
  }
  for (uint32_t j = 0; j < kStable; ++j) ASSERT_EQ(find(stable[j]), &entries_[j]);

  // The churn: per stable key, kFill + 1 keys of its primary (one spills)
  // and kFill - 1 of its secondary (which then holds no free slot).
  std::vector<ChannelKey> churn;
  for (uint32_t j = 0; j < kStable; ++j) {
    auto p = keys_in_bucket(j, kFill + 1, 10000000);
    auto s = keys_in_bucket(secondary[j], kFill - 1, 10000000);
    churn.insert(churn.end(), p.begin(), p.end());
    churn.insert(churn.end(), s.begin(), s.end());
  }
  ASSERT_EQ(churn.size(), kChunk);

  Reader rd;
  read_beside(stable, rd);
  uint64_t spilled_most = 0;
  for (uint32_t r = 0; r < kRounds; ++r) {
    uint32_t base = kChurnBase + rd.begin_round(r) * kChunk;
    std::vector<uint32_t> placed;
    for (uint32_t c = 0; c < kChunk; ++c)
      if (put(churn[c], base + c)) placed.push_back(c);
    spilled_most = std::max(spilled_most, index_->spilled());
    for (uint32_t j = 0; j < kStable; ++j)
      ASSERT_FALSE(index_->erase(stable[j], base)) << "stable key " << j << " maps to another entry";
    for (uint32_t c : placed) ASSERT_TRUE(index_->erase(churn[c], base + c));
    for (uint32_t c : placed) ASSERT_FALSE(index_->erase(churn[c], base + c)) << "erased twice";
    rd.end_round(r);
  }
  rd.stop();
  EXPECT_GE(rd.passes.load(), kRounds) << "the reader ran beside every round";
  EXPECT_GT(spilled_most, kStable) << "churn keys spilled from the stable keys' primaries too";
  EXPECT_EQ(rd.wrong.load(), 0u) << "of " << rd.passes.load() * 2 * kStable << " lookups";
  EXPECT_EQ(index_->size(), kStable);
  EXPECT_EQ(index_->spilled(), kStable) << "only the stable keys live in their secondary";
  for (uint32_t j = 0; j < kStable; ++j) EXPECT_EQ(find(stable[j]), &entries_[j]) << "stable key " << j;
}

}  // namespace
}  // namespace turn::dp
