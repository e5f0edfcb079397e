// SPDX-License-Identifier: Apache-2.0
// StateSync (dataplane/table/sync.{h,cpp}), the tables' single writer,
// against the typed state contract (common/state/) in a real redis-server
// (tests/common/redis/redis_procs.h; never mocked). The store is written as
// turn-control writes it: records and events through state::append_event.
// The sync thread runs as in turn-dataplane (start(): connect, snapshot,
// tail); the test thread reads the real Tables (under EAL) with the
// workers' lookups, registered with the QSBR variable as a worker is and
// reporting quiescent between polls. Rules (sync.h):
//   - the first snapshot loads this instance's live allocations with their
//     permissions and channels, nothing of other instances, nothing expired;
//   - events apply in stream order: create, permission, channel, refresh,
//     delete;
//   - what does not decode is counted (bad_events) and skipped, and what
//     follows still applies;
//   - TCP/TLS allocations are skipped (counted), and their permissions are
//     not table overflows; a full table is counted (table_full);
//   - every reconnection takes a fresh snapshot and drops what is gone;
//     after the store restarts (another run_id) what the tables hold but the
//     store lacks is kept until turn-control's resync event.
#include "dataplane/table/sync.h"

#include <gtest/gtest.h>
#include <rte_cycles.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_rcu_qsbr.h>

#include <chrono>
#include <cstring>
#include <ctime>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/state/keys.h"
#include "common/state/store.h"
#include "dataplane/table/tables.h"
#include "tests/common/redis/redis_procs.h"
#include "tests/dataplane/net_order.h"
#include "tests/dataplane/qsbr_reader.h"

namespace turn::dp {
namespace {

using fake::ip4;
using fake::np;

constexpr uint32_t kAllocs = 8;
constexpr uint32_t kChannels = 16;
const std::string kInstance = "hostA";

SocketAddress sa(const std::string& text) { return *SocketAddress::parse(text); }
IpAddress ip(const std::string& text) { return *IpAddress::parse(text); }

// Allocation n of `instance`: client 198.51.100.n:5000n -> 203.0.113.10:3478,
// relayed address 203.0.113.10:(49152 + n).
state::AllocationRecord record(uint8_t n, uint64_t expires_s, const std::string& instance = kInstance) {
  state::AllocationRecord r;
  r.instance = instance;
  r.relay = sa("203.0.113.10:" + std::to_string(49152 + n));
  r.id = state::allocation_id(instance, r.relay.to_string());
  r.transport = Transport::Udp;
  r.client = sa("198.51.100." + std::to_string(n) + ":" + std::to_string(50000 + n));
  r.server = sa("203.0.113.10:3478");
  r.username = "alice";
  r.realm = "example.org";
  r.expires_s = expires_s;
  return r;
}
ClientKey client_key(uint8_t n) {
  return ClientKey{ip4(198, 51, 100, n), ip4(203, 0, 113, 10), np(static_cast<uint16_t>(50000 + n)), np(3478)};
}
const uint32_t kRelay = ip4(203, 0, 113, 10);
uint16_t relay_port(uint8_t n) { return np(static_cast<uint16_t>(49152 + n)); }

class TableSync : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!turn::test::have_redis_server()) GTEST_SKIP() << "redis-server not installed";
    node_ = std::make_unique<turn::test::RedisNode>();
    ASSERT_TRUE(node_->up());
    writer_ = std::make_unique<redis::Client>(turn::test::direct(node_->port()));
    writer_->connect();
    size_t sz = rte_rcu_qsbr_get_memsize(1);
    qsbr_ = static_cast<rte_rcu_qsbr*>(rte_zmalloc("sync_test_qsbr", sz, RTE_CACHE_LINE_SIZE));
    ASSERT_NE(qsbr_, nullptr);
    ASSERT_EQ(rte_rcu_qsbr_init(qsbr_, 1), 0);
    tables_ = std::make_unique<Tables>(TableSizes{kAllocs, kChannels}, qsbr_, static_cast<int>(rte_socket_id()));
    reader_ = std::make_unique<dptest::QsbrReader>(qsbr_, 0);
    counters_.assign(kAllocs, AllocCounters{});  // one worker's, all zero
  }
  void TearDown() override {
    sync_.reset();  // stops the writer thread first
    reader_.reset();
    tables_.reset();
    rte_free(qsbr_);
  }
  void start_sync() {
    StateSync::Options o;
    o.store = turn::test::direct(node_->port());
    o.instance = kInstance;
    sync_ = std::make_unique<StateSync>(o, *tables_, std::vector<const AllocCounters*>{counters_.data()});
    sync_->start();
    ASSERT_TRUE(sync_->wait_ready(5000)) << "no snapshot within 5 s";
  }
  // turn-control's write of one event (records and stream entry).
  void write(const state::Event& e, uint64_t alloc_expires_s, const std::string& instance = kInstance) {
    state::append_event(*writer_, instance, e, alloc_expires_s);
    for (const auto& r : writer_->replies()) ASSERT_FALSE(r.is_error()) << r.str;
  }
  void create(const state::AllocationRecord& r) { write(state::Event::create(r), r.expires_s, r.instance); }
  // Polls (as a worker: quiescent between looks) until `pred` holds, 5 s at most.
  bool eventually(const std::function<bool()>& pred) {
    for (int i = 0; i < 500; ++i) {
      if (pred()) return true;
      reader_->quiescent();
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return pred();
  }
  [[nodiscard]] const AllocEntry* alloc(uint8_t n) const { return tables_->client(client_key(n)); }
  [[nodiscard]] const SyncStats& stats() const { return sync_->stats(); }

  const uint64_t now_ = static_cast<uint64_t>(std::time(nullptr));
  std::unique_ptr<turn::test::RedisNode> node_;
  std::unique_ptr<redis::Client> writer_;
  rte_rcu_qsbr* qsbr_ = nullptr;
  std::unique_ptr<Tables> tables_;
  std::unique_ptr<dptest::QsbrReader> reader_;
  std::vector<AllocCounters> counters_;
  std::unique_ptr<StateSync> sync_;
};

TEST_F(TableSync, FirstSnapshotLoadsThisInstancesLiveAllocationsWithTheirBindings) {
  auto a = record(1, now_ + 600);
  create(a);
  write(state::Event::permission_installed(a.id, {ip("192.0.2.7"), now_ + 300}), a.expires_s);
  write(state::Event::channel_bound(a.id, {0x4000, sa("192.0.2.7:7000"), now_ + 600}), a.expires_s);
  create(record(2, now_ + 600, "hostB"));  // another instance's
  create(record(3, now_ - 5));             // expired
  // A record in the index that does not decode.
  const std::string bad = state::allocation_id(kInstance, "203.0.113.10:49999");
  writer_->command({"HSET", state::alloc_key(bad), "garbage", "1"});
  writer_->command({"ZADD", state::alloc_index_key(kInstance), std::to_string(now_ + 600), bad});

  start_sync();  // ready: the snapshot is applied
  const AllocEntry* e = alloc(1);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->relay_ip, kRelay);
  EXPECT_EQ(e->relay_port, relay_port(1));
  EXPECT_GT(e->expires.load(), rte_get_tsc_cycles()) << "a deadline ahead, in TSC cycles";
  const PermissionEntry* p = tables_->permission(PermissionKey{kRelay, ip4(192, 0, 2, 7), relay_port(1)});
  ASSERT_NE(p, nullptr);
  const ChannelEntry* c = tables_->channel(ChannelKey::of(client_key(1), np(0x4000)));
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->peer_ip, ip4(192, 0, 2, 7));
  EXPECT_EQ(c->peer_port, np(7000));
  EXPECT_EQ(tables_->linked_permission(*c), p) << "linked to its permission";
  EXPECT_EQ(tables_->peer(PeerKey{kRelay, ip4(192, 0, 2, 7), relay_port(1), np(7000)}), c);
  EXPECT_EQ(alloc(2), nullptr) << "hostB's allocation is not this data plane's";
  EXPECT_EQ(alloc(3), nullptr) << "expired";
  EXPECT_EQ(tables_->allocation_count(), 1u);
  EXPECT_EQ(stats().snapshots.load(), 1u);
  EXPECT_EQ(stats().last_snapshot_allocations.load(), 1u);
  EXPECT_EQ(stats().bad_events.load(), 1u) << "the record that did not decode";
  EXPECT_EQ(stats().table_full.load(), 0u);
}

TEST_F(TableSync, StreamEventsCreatePermitBindRefreshAndDelete) {
  start_sync();
  auto a = record(1, now_ + 600);
  create(a);
  ASSERT_TRUE(eventually([&] { return alloc(1) != nullptr; })) << "create";
  const AllocEntry* e = alloc(1);
  EXPECT_EQ(e->relay_port, relay_port(1));

  const PermissionKey pk{kRelay, ip4(192, 0, 2, 7), relay_port(1)};
  write(state::Event::permission_installed(a.id, {ip("192.0.2.7"), now_ + 300}), a.expires_s);
  ASSERT_TRUE(eventually([&] { return tables_->permission(pk) != nullptr; })) << "permission";

  const ChannelKey ck = ChannelKey::of(client_key(1), np(0x4001));
  const PeerKey peer{kRelay, ip4(192, 0, 2, 7), relay_port(1), np(7000)};
  write(state::Event::channel_bound(a.id, {0x4001, sa("192.0.2.7:7000"), now_ + 600}), a.expires_s);
  ASSERT_TRUE(eventually([&] { return tables_->channel(ck) != nullptr; })) << "channel bind";
  EXPECT_EQ(tables_->peer(peer), tables_->channel(ck));
  EXPECT_EQ(tables_->linked_permission(*tables_->channel(ck)), tables_->permission(pk));

  // Refresh to 20 minutes: the deadline moves by ~10 minutes of TSC cycles.
  const Tsc before = e->expires.load();
  write(state::Event::refresh(a.id, now_ + 1200), now_ + 1200);
  ASSERT_TRUE(eventually([&] { return e->expires.load() > before + 300 * rte_get_tsc_hz(); })) << "refresh";
  EXPECT_EQ(alloc(1), e) << "refreshed in place";

  write(state::Event::deleted(a.id), 0);
  ASSERT_TRUE(eventually([&] { return alloc(1) == nullptr; })) << "delete";
  EXPECT_EQ(tables_->permission(pk), nullptr);
  EXPECT_EQ(tables_->channel(ck), nullptr);
  EXPECT_EQ(tables_->peer(peer), nullptr);
  EXPECT_EQ(tables_->allocation_count(), 0u);
  EXPECT_EQ(stats().events.load(), 5u);
  EXPECT_EQ(stats().bad_events.load(), 0u);
  EXPECT_EQ(stats().table_full.load(), 0u);
}

TEST_F(TableSync, DualStackAllocationTakesAnIPv6PeerOnItsIPv6RelayedAddress) {
  start_sync();
  auto a = record(1, now_ + 600);
  a.relay6 = sa("[2001:db8:1::10]:49200");  // RFC 8656 §7.2, ADDITIONAL-ADDRESS-FAMILY
  create(a);
  write(state::Event::permission_installed(a.id, {ip("2001:db8:3::7"), now_ + 300}), a.expires_s);
  write(state::Event::channel_bound(a.id, {0x4000, sa("[2001:db8:3::7]:7000"), now_ + 600}), a.expires_s);
  const ChannelKey ck = ChannelKey::of(client_key(1), np(0x4000));
  ASSERT_TRUE(eventually([&] { return tables_->channel(ck) != nullptr; }));
  const AllocEntry* e = alloc(1);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->relay_port, relay_port(1));
  EXPECT_EQ(e->alt_port, np(49200));
  Ip6 relay6{}, peer6{};
  std::memcpy(relay6.b, ip("2001:db8:1::10").bytes.data(), 16);
  std::memcpy(peer6.b, ip("2001:db8:3::7").bytes.data(), 16);
  const PermissionEntry* p = tables_->permission(PermissionKey6{relay6, peer6, np(49200)});
  ASSERT_NE(p, nullptr);
  const ChannelEntry* c = tables_->channel(ck);
  EXPECT_EQ(c->cross, 1u);
  EXPECT_EQ(tables_->linked_permission(*c), p);
  EXPECT_EQ(tables_->peer(PeerKey6{relay6, peer6, np(49200), np(7000)}), c);
  EXPECT_EQ(stats().table_full.load(), 0u);
}

TEST_F(TableSync, MalformedEventsAreCountedAndSkippedAndTheNextOneApplies) {
  start_sync();
  const std::string stream = state::event_stream_key(kInstance);
  writer_->command({"XADD", stream, "*", "type", "no-such-event", "id", "hostA/x"});
  writer_->command({"XADD", stream, "*", "type", "create", "id", "hostA/x"});  // no record fields
  writer_->command({"XADD", stream, "*", "type", "refresh", "id", "hostA/x", "expires", "soon"});
  create(record(1, now_ + 600));
  ASSERT_TRUE(eventually([&] { return alloc(1) != nullptr; }));
  EXPECT_EQ(stats().bad_events.load(), 3u);
  EXPECT_EQ(stats().events.load(), 1u);
}

TEST_F(TableSync, TcpAllocationIsSkippedAndItsBindingsAreNoTableOverflow) {
  start_sync();
  auto tcp = record(1, now_ + 600);
  tcp.transport = Transport::Tcp;  // stays on the kernel path
  create(tcp);
  write(state::Event::permission_installed(tcp.id, {ip("192.0.2.7"), now_ + 300}), tcp.expires_s);
  write(state::Event::channel_bound(tcp.id, {0x4000, sa("192.0.2.7:7000"), now_ + 600}), tcp.expires_s);
  create(record(2, now_ + 600));  // applied after them: a barrier
  ASSERT_TRUE(eventually([&] { return alloc(2) != nullptr; }));
  EXPECT_EQ(alloc(1), nullptr);
  EXPECT_EQ(stats().skipped.load(), 1u);
  EXPECT_EQ(stats().table_full.load(), 0u) << "an allocation it does not hold is no table overflow";
}

TEST_F(TableSync, AllocationBeyondTheTablesCapacityIsCountedAndTheRestApply) {
  start_sync();
  for (uint8_t n = 1; n <= kAllocs + 1; ++n) create(record(n, now_ + 600));
  ASSERT_TRUE(eventually([&] { return stats().events.load() == kAllocs + 1; }));
  EXPECT_EQ(stats().table_full.load(), 1u);
  EXPECT_EQ(tables_->allocation_count(), kAllocs);
  for (uint8_t n = 1; n <= kAllocs; ++n) EXPECT_NE(alloc(n), nullptr) << "allocation " << int{n};
  EXPECT_EQ(alloc(kAllocs + 1), nullptr);
}

TEST_F(TableSync, ReconnectionTakesAFreshSnapshotAndDropsWhatIsGone) {
  start_sync();
  auto a = record(1, now_ + 600), b = record(2, now_ + 600);
  create(a);
  create(b);
  ASSERT_TRUE(eventually([&] { return alloc(1) && alloc(2); }));
  // Behind the stream's back (a gap: a trimmed stream, a lost event): b
  // goes, c comes with a permission, in the records only.
  writer_->command({"DEL", state::alloc_key(b.id)});
  writer_->command({"ZREM", state::alloc_index_key(kInstance), b.id});
  state::AllocationState c{record(3, now_ + 600), {{ip("192.0.2.9"), now_ + 300}}, {}};
  std::vector<std::string> hset{"HSET", state::alloc_key(c.record.id)};
  for (const auto& [k, v] : c.to_fields()) hset.insert(hset.end(), {k, v});
  writer_->command(hset);
  writer_->command({"ZADD", state::alloc_index_key(kInstance), std::to_string(c.record.expires_s), c.record.id});
  EXPECT_NE(alloc(2), nullptr) << "no event said so: b is still held";

  node_->raw("CLIENT KILL TYPE normal");  // the sync thread's connection (and the writer's)
  ASSERT_TRUE(eventually([&] { return stats().snapshots.load() == 2 && alloc(3) != nullptr; }))
      << "snapshots: " << stats().snapshots.load();
  EXPECT_EQ(alloc(2), nullptr) << "gone from the store: dropped";
  EXPECT_EQ(stats().snapshot_dropped.load(), 1u);
  EXPECT_NE(alloc(1), nullptr);
  EXPECT_NE(tables_->permission(PermissionKey{kRelay, ip4(192, 0, 2, 9), relay_port(3)}), nullptr);
  EXPECT_GE(stats().disconnects.load(), 1u);
}

TEST_F(TableSync, AfterTheStoreRestartsWhatItLacksIsHeldUntilTurnControlsResync) {
  start_sync();
  auto a = record(1, now_ + 600), b = record(2, now_ + 600);
  create(a);
  create(b);
  ASSERT_TRUE(eventually([&] { return alloc(1) && alloc(2); }));

  // The store restarts empty (no persistence): another run_id.
  const uint16_t port = node_->port();
  node_->kill();
  node_ = std::make_unique<turn::test::RedisNode>(0, "", port);
  ASSERT_TRUE(node_->up());
  ASSERT_TRUE(eventually([&] { return stats().snapshots.load() == 2; }));
  EXPECT_EQ(stats().kept_unconfirmed.load(), 2u);
  EXPECT_EQ(stats().snapshot_dropped.load(), 0u) << "another master: nothing dropped";
  EXPECT_EQ(stats().unconfirmed.load(), 2u);
  EXPECT_NE(alloc(1), nullptr) << "established flows keep forwarding";
  EXPECT_NE(alloc(2), nullptr);

  writer_->disconnect();
  writer_->connect();
  // Another instance's resync settles nothing of ours.
  write(state::Event::resync("hostB"), 0);
  create(record(3, now_ + 600));  // a barrier
  ASSERT_TRUE(eventually([&] { return alloc(3) != nullptr; }));
  EXPECT_NE(alloc(2), nullptr);
  // turn-control rewrites its live records (a), then says they are whole.
  create(a);
  write(state::Event::resync(kInstance), 0);
  ASSERT_TRUE(eventually([&] { return alloc(2) == nullptr; })) << "b was not rewritten: it has ended";
  EXPECT_NE(alloc(1), nullptr) << "a was rewritten: confirmed";
  EXPECT_NE(alloc(3), nullptr);
  EXPECT_EQ(stats().unconfirmed.load(), 0u);
}

}  // namespace
}  // namespace turn::dp
