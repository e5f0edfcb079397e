// SPDX-License-Identifier: Apache-2.0
// The state contract through a real redis-server (common/state/store.h):
// what the writers append is what the one snapshot reader and the stream
// tail read back, per instance; malformed records in the store are skipped
// and counted, not half-applied.
#include "common/state/store.h"

#include <gtest/gtest.h>

#include "tests/common/redis/redis_procs.h"

namespace turn::state {
namespace {

SocketAddress sa(const char* text) { return *SocketAddress::parse(text); }
IpAddress ip(const char* text) { return *IpAddress::parse(text); }

AllocationRecord record(const std::string& instance, const char* relay, uint64_t expires) {
  AllocationRecord r;
  r.instance = instance;
  r.id = allocation_id(instance, relay);
  r.transport = Transport::Udp;
  r.client = sa("198.51.100.7:50123");
  r.server = sa("203.0.113.10:3478");
  r.relay = sa(relay);
  r.username = "alice";
  r.realm = "example.org";
  r.expires_s = expires;
  return r;
}

class Store : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!test::have_redis_server()) GTEST_SKIP() << "redis-server not installed";
    node_ = std::make_unique<test::RedisNode>();
    ASSERT_TRUE(node_->up());
    c_ = std::make_unique<redis::Client>(test::direct(node_->port()));
    c_->connect();
  }
  void write(const std::string& instance, const Event& e, uint64_t alloc_expires) {
    append_event(*c_, instance, e, alloc_expires);
    for (const auto& r : c_->replies()) ASSERT_FALSE(r.is_error()) << r.str;
  }
  std::unique_ptr<test::RedisNode> node_;
  std::unique_ptr<redis::Client> c_;
  const uint64_t now_ = static_cast<uint64_t>(std::time(nullptr));
};

TEST_F(Store, WhatIsWrittenIsWhatTheSnapshotReadsPerInstance) {
  auto a = record("hostA", "203.0.113.10:49152", now_ + 600);
  auto b = record("hostA", "[2001:db8::10]:49153", now_ + 600);
  auto other = record("hostB", "203.0.113.20:49152", now_ + 600);
  auto over = record("hostA", "203.0.113.10:49154", now_ - 5);
  for (const auto& r : {a, b, other, over}) write(r.instance, Event::create(r), r.expires_s);
  write("hostA", Event::permission_installed(a.id, {ip("198.51.100.9"), now_ + 300}), a.expires_s);
  write("hostA", Event::permission_installed(a.id, {ip("198.51.100.10"), now_ - 1}), a.expires_s);
  write("hostA", Event::channel_bound(a.id, {0x4001, sa("198.51.100.9:7000"), now_ + 600}), a.expires_s);
  write("hostA", Event::refresh(b.id, now_ + 900), now_ + 900);
  b.expires_s = now_ + 900;

  auto snap = read_snapshot(*c_, "hostA", now_);
  EXPECT_EQ(snap.malformed, 0u) << snap.first_error;
  ASSERT_EQ(snap.allocations.size(), 2u) << "hostA's live two; not hostB's, not the expired one";
  std::map<std::string, AllocationState> by_id;
  for (auto& s : snap.allocations) by_id[s.record.id] = s;
  EXPECT_EQ(by_id[a.id].record, a);
  EXPECT_EQ(by_id[b.id].record, b);
  EXPECT_EQ(by_id[a.id].permissions, (std::vector<PermissionRecord>{{ip("198.51.100.9"), now_ + 300}}))
      << "the live permission only";
  EXPECT_EQ(by_id[a.id].channels, (std::vector<ChannelRecord>{{0x4001, sa("198.51.100.9:7000"), now_ + 600}}));
  EXPECT_EQ(read_snapshot(*c_, "hostB", now_).allocations.size(), 1u);
  EXPECT_EQ(read_snapshot(*c_, "hostC", now_).allocations.size(), 0u);

  // The stream: from the snapshot's position on, typed events of hostA only.
  write("hostA", Event::deleted(a.id), 0);
  write("hostB", Event::deleted(other.id), 0);
  auto events = read_events(*c_, "hostA", snap.stream_position, 100, 0);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(Event::from_fields(events[0].fields), Event::deleted(a.id));
  EXPECT_EQ(c_->command({"EXISTS", alloc_key(a.id)}).integer, 0);
  EXPECT_EQ(read_snapshot(*c_, "hostA", now_).allocations.size(), 1u);
  // Records expire with their allocation (plus the grace).
  auto ttl = c_->command({"TTL", alloc_key(b.id)}).integer;
  EXPECT_GT(ttl, static_cast<long long>(900 + kRecordGraceS - 5));
  EXPECT_LE(ttl, static_cast<long long>(900 + kRecordGraceS));
}

TEST_F(Store, AStreamTrimmedPastAReaderIsAGap) {
  auto a = record("hostA", "203.0.113.10:49152", now_ + 600);
  write("hostA", Event::create(a), a.expires_s);
  auto first = read_events(*c_, "hostA", "0-0", 10, 0).at(0).id;
  write("hostA", Event::refresh(a.id, now_ + 700), now_ + 700);
  write("hostA", Event::refresh(a.id, now_ + 800), now_ + 800);
  auto all = read_events(*c_, "hostA", "0-0", 10, 0);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_FALSE(stream_gap(*c_, "hostA", first));
  c_->command({"XTRIM", event_stream_key("hostA"), "MAXLEN", "1"});
  EXPECT_TRUE(stream_gap(*c_, "hostA", first)) << "the second event is gone: a reader after the first missed it";
  EXPECT_FALSE(stream_gap(*c_, "hostA", all[2].id));
  EXPECT_FALSE(stream_gap(*c_, "nobody", "0-0"));
}

TEST_F(Store, MalformedRecordsAreSkippedAndCounted) {
  auto a = record("hostA", "203.0.113.10:49152", now_ + 600);
  write("hostA", Event::create(a), a.expires_s);
  // Garbage where a record should be: a bad relay, a record naming another
  // instance, a permission that is not an address.
  auto bad = record("hostA", "203.0.113.10:49153", now_ + 600);
  write("hostA", Event::create(bad), bad.expires_s);
  c_->command({"HSET", alloc_key(bad.id), "relay", "nowhere"});
  auto foreign = record("hostA", "203.0.113.10:49154", now_ + 600);
  write("hostA", Event::create(foreign), foreign.expires_s);
  c_->command({"HSET", alloc_key(foreign.id), "instance", "hostZ"});
  c_->command({"HSET", alloc_key(a.id), "perm:not-an-ip", "5"});
  auto snap = read_snapshot(*c_, "hostA", now_);
  ASSERT_EQ(snap.allocations.size(), 1u);
  EXPECT_EQ(snap.allocations[0].record, a);
  EXPECT_EQ(snap.malformed, 3u);
  EXPECT_FALSE(snap.first_error.empty());
}

TEST_F(Store, TrafficFromBothWritersAddsUp) {
  auto a = record("hostA", "203.0.113.10:49152", now_ + 600);
  write("hostA", Event::create(a), a.expires_s);
  // The traffic hash exists from the create on, expiring with the allocation.
  auto ttl0 = c_->command({"TTL", traffic_key(a.id)}).integer;
  EXPECT_GT(ttl0, static_cast<long long>(600 + kRecordGraceS - 5));
  append_kernel_traffic(*c_, a.id, {1, 100, 2, 200}, a.expires_s);
  append_fast_traffic(*c_, a.id, {10, 1000, 20, 2000});
  append_fast_traffic(*c_, a.id, {5, 500, 0, 0});
  for (const auto& r : c_->replies()) ASSERT_FALSE(r.is_error()) << r.str;
  auto t = read_traffic(*c_, {a.id, "hostA/203.0.113.10:1"});
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0], (TrafficRecord{{1, 100, 2, 200}, {15, 1500, 20, 2000}}));
  EXPECT_EQ(t[1], TrafficRecord{});
  EXPECT_GT(c_->command({"TTL", traffic_key(a.id)}).integer, static_cast<long long>(600 + kRecordGraceS - 5))
      << "the data plane's increments keep the allocation's expiry";
  write("hostA", Event::refresh(a.id, now_ + 3000), now_ + 3000);
  EXPECT_GT(c_->command({"TTL", traffic_key(a.id)}).integer, static_cast<long long>(3000 + kRecordGraceS - 5))
      << "a refresh extends it";
  // A push after the allocation's delete recreates the key: it expires anyway.
  write("hostA", Event::deleted(a.id), 0);
  append_fast_traffic(*c_, a.id, {1, 1, 1, 1});
  (void)c_->replies();
  auto ttl = c_->command({"TTL", traffic_key(a.id)}).integer;
  EXPECT_GT(ttl, 0);
  EXPECT_LE(ttl, static_cast<long long>(kOrphanTrafficTtlS));
}

TEST_F(Store, MembershipExpiresAndListsTheFleet) {
  MembershipRecord m;
  m.instance = "hostA";
  m.listen = {{Transport::Udp, sa("203.0.113.10:3478")}};
  m.relay = {ip("203.0.113.10")};
  m.allocations = 3;
  m.updated_ms = now_ * 1000;
  m.started_s = now_;
  append_membership(*c_, m, 400, now_);
  auto other = m;
  other.instance = "hostB";
  other.state = MemberState::Draining;
  append_membership(*c_, other, 60000, now_);
  for (const auto& r : c_->replies()) ASSERT_FALSE(r.is_error()) << r.str;
  auto members = read_members(*c_, now_);
  ASSERT_EQ(members.size(), 2u);
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  uint64_t malformed = 0;
  members = read_members(*c_, now_, &malformed);
  ASSERT_EQ(members.size(), 1u) << "hostA's key expired";
  EXPECT_EQ(members[0], other);
  EXPECT_EQ(read_instances(*c_, now_, 60), (std::vector<std::string>{"hostA", "hostB"}))
      << "the fleet index keeps both until they age out";
  c_->command({"HSET", member_key("hostC"), "instance", "hostC", "state", "asleep"});
  c_->command({"ZADD", std::string(kInstanceIndex), std::to_string(now_), "hostC"});
  (void)read_members(*c_, now_, &malformed);
  EXPECT_EQ(malformed, 1u);
}

TEST_F(Store, DataplaneStatusRoundTripsThroughTheStore) {
  DataplaneStatus s;
  s.instance = "hostA";
  s.updated_s = now_;
  s.rx_packets = 10;
  s.paths = {{"hairpin", 2}};
  s.workers = {{1, 2, 3, 4, 5}, {6, 7, 8, 9, 10}};
  append_dataplane_status(*c_, s);
  // A restarted data plane with one worker: no stale worker1_* left.
  s.workers.pop_back();
  append_dataplane_status(*c_, s);
  for (const auto& r : c_->replies()) ASSERT_FALSE(r.is_error()) << r.str;
  auto all = read_dataplanes(*c_, now_);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0], s);
  EXPECT_EQ(c_->command({"HEXISTS", dataplane_key("hostA"), "worker1_rx_packets"}).integer, 0);
  EXPECT_GT(c_->command({"TTL", dataplane_key("hostA")}).integer, 0);
}

}  // namespace
}  // namespace turn::state
