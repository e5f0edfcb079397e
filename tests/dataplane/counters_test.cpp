// SPDX-License-Identifier: Apache-2.0
// dataplane/stats/counters.h: every counter is declared once and rendered
// by one visitor; telemetry, the exit report and the Redis status take
// their names from it, so a name must be unique and every counter visited.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>

#include "dataplane/stats/counters.h"

namespace turn::dp {
namespace {

constexpr size_t kPaths = static_cast<size_t>(Path::Count);
constexpr size_t kDrops = static_cast<size_t>(Drop::Count);
constexpr size_t kPunts = static_cast<size_t>(PuntReason::Count);

std::map<std::string, uint64_t> flat(const CounterTotals& t) {
  std::map<std::string, uint64_t> out;
  visit_counters(t, [&](CounterKind k, std::string_view key, uint64_t v) {
    auto [it, fresh] = out.emplace(std::string(flat_prefix(k)) + std::string(key), v);
    EXPECT_TRUE(fresh) << "two counters flatten to one name: " << it->first;
  });
  return out;
}

TEST(Counters, EveryCounterIsVisitedOnceUnderItsOwnName) {
  CounterTotals t;
  size_t visits = 0;
  std::set<std::string> names;
  visit_counters(t, [&](CounterKind k, std::string_view key, uint64_t) {
    ++visits;
    EXPECT_FALSE(key.empty());
    EXPECT_EQ(key.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_"), std::string_view::npos) << key;
    names.insert(std::string(flat_prefix(k)) + std::string(key));
  });
  EXPECT_EQ(visits, 2 + kPaths + kDrops + kPunts);
  EXPECT_EQ(names.size(), visits);
  EXPECT_TRUE(names.count("rx_packets") && names.count("tx_packets"));
  EXPECT_TRUE(names.count("hairpin") && names.count("drop_tx_full") && names.count("punt_unknown_flow"));
}

TEST(Counters, TotalsAddEveryWorkersCounters) {
  WorkerCounters a, b;
  a.rx_packets = 10, b.rx_packets = 5;
  a.tx_packets = 7, b.tx_packets = 1;
  for (size_t i = 0; i < kPaths; ++i) a.paths[i] = 100 + i, b.paths[i] = 1000 * (i + 1);
  for (size_t i = 0; i < kDrops; ++i) a.drops[i] = 200 + i, b.drops[i] = 2;
  for (size_t i = 0; i < kPunts; ++i) a.punts[i] = 300 + i, b.punts[i] = 3;
  CounterTotals t;
  t.add(a);
  t.add(b);
  auto m = flat(t);
  EXPECT_EQ(m["rx_packets"], 15u);
  EXPECT_EQ(m["tx_packets"], 8u);
  for (size_t i = 0; i < kPaths; ++i) EXPECT_EQ(m[std::string(kPathKeys[i])], 100 + i + 1000 * (i + 1)) << kPathKeys[i];
  for (size_t i = 0; i < kDrops; ++i) EXPECT_EQ(m["drop_" + std::string(kDropKeys[i])], 202 + i) << kDropKeys[i];
  for (size_t i = 0; i < kPunts; ++i) EXPECT_EQ(m["punt_" + std::string(kPuntKeys[i])], 303 + i) << kPuntKeys[i];
  EXPECT_EQ(t.path(Path::Hairpin), t.paths[static_cast<size_t>(Path::Hairpin)]);
}

TEST(Counters, WorkerCountersStayOnTheirOwnCacheLines) {
  // One per worker, written only by it: no false sharing between workers.
  EXPECT_EQ(alignof(WorkerCounters), 64u);
  EXPECT_EQ(sizeof(WorkerCounters) % 64, 0u);
}

}  // namespace
}  // namespace turn::dp
