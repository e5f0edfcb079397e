// SPDX-License-Identifier: Apache-2.0
// The real data-plane tables (dataplane/table/tables.{h,cpp}) under EAL:
// real rte_hash tables, hugepage-style arrays from rte_malloc and RCU QSBR
// reclamation, driven through the writer API the sync thread uses and read
// through the lookups the workers use (Tables' readers, WorkerTables, the
// bulk lookups). fake_tables.h stands in for these in the EAL-free fast-path
// tests; this is where the real ones are held to their rules:
//   - every writer call is idempotent (tables.h "allocation writer");
//   - a re-sent allocation only moves its deadline; a changed one replaces it;
//   - permissions and channels sit on the relayed address of the peer's
//     family (RFC 8656 §7.2, §9, §12), and a channel is linked to its
//     permission whichever arrives first;
//   - a removed entry disappears from lookups at once, but its slot is
//     reused only after every registered reader has reported quiescent
//     (tables.h "Concurrency contract");
//   - a key added again under another allocation id belongs to the newer
//     owner until that owner's own removal;
//   - a full table refuses (false) and keeps what it holds.
// Tables small enough (8 allocations, 8 channels and 8 permissions) to
// fill in a test. Tables' rte_hash names are fixed: one Tables at a time.
// channel_count() and permission_count() are rte_hash_count(), which counts
// deleted keys until they are reclaimed: after a removal the tests look up
// keys instead.
#include "dataplane/table/tables.h"

#include <gtest/gtest.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_rcu_qsbr.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "tests/dataplane/net_order.h"
#include "tests/dataplane/qsbr_reader.h"

namespace turn::dp {
namespace {

using fake::ip4;
using fake::np;

constexpr uint32_t kAllocs = 8;
constexpr uint32_t kChannels = 8;  // channel and permission entries each
constexpr uint32_t kReaders = 2;

const uint32_t kServer = ip4(203, 0, 113, 10);
const uint32_t kRelay = ip4(203, 0, 113, 10);
const uint16_t kTurnPort = np(3478);
const uint16_t kCh0 = np(0x4000), kCh1 = np(0x4001);

ClientKey client4(uint8_t n) {
  return ClientKey{ip4(198, 51, 100, n), kServer, np(static_cast<uint16_t>(50000 + n)), kTurnPort};
}
uint16_t relay_port(uint8_t n) { return np(static_cast<uint16_t>(49152 + n)); }
uint32_t peer4(uint8_t n) { return ip4(192, 0, 2, n); }
std::string id_of(uint8_t n) { return "hostA/203.0.113.10:" + std::to_string(49152 + n); }

// 2001:db8:<net>::<host>
Ip6 ip6(uint8_t net, uint8_t host) {
  Ip6 a{};
  a.b[0] = 0x20;
  a.b[1] = 0x01;
  a.b[2] = 0x0d;
  a.b[3] = 0xb8;
  a.b[5] = net;
  a.b[15] = host;
  return a;
}
const Ip6 kServer6 = ip6(1, 0x10), kRelay6 = ip6(1, 0x10);
ClientKey6 client6(uint8_t n) {
  return ClientKey6{ip6(2, n), kServer6, np(static_cast<uint16_t>(50000 + n)), kTurnPort};
}
Ip6 peer6(uint8_t n) { return ip6(3, n); }

PermissionKey perm_key(uint8_t alloc, uint32_t peer) { return PermissionKey{kRelay, peer, relay_port(alloc)}; }
PeerKey peer_key(uint8_t alloc, uint32_t peer, uint16_t port) { return PeerKey{kRelay, peer, relay_port(alloc), port}; }

using Reader = dptest::QsbrReader;  // one worker

class TablesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    size_t sz = rte_rcu_qsbr_get_memsize(kReaders);
    qsbr_ = static_cast<rte_rcu_qsbr*>(rte_zmalloc("test_qsbr", sz, RTE_CACHE_LINE_SIZE));
    ASSERT_NE(qsbr_, nullptr);
    ASSERT_EQ(rte_rcu_qsbr_init(qsbr_, kReaders), 0);
    t_ = std::make_unique<Tables>(TableSizes{kAllocs, kChannels}, qsbr_, static_cast<int>(rte_socket_id()));
  }
  void TearDown() override {
    t_.reset();
    rte_free(qsbr_);
  }
  // Allocation n: IPv4 client n, relayed address kRelay:relay_port(n).
  bool add4(uint8_t n, Tsc expires = 1000) {
    return t_->upsert_allocation(id_of(n), client4(n), kRelay, relay_port(n), expires);
  }
  const AllocEntry* entry4(uint8_t n) const { return t_->client(client4(n)); }
  // RFC 8656 §7.2: IPv4 client 1 with an IPv4 (port 1) and an IPv6 (port 2) relayed address.
  static AllocationSpec dual4() {
    AllocationSpec s;
    s.client = client4(1);
    s.relay4 = kRelay;
    s.relay4_port = relay_port(1);
    s.relay6 = kRelay6;
    s.relay6_port = relay_port(2);
    return s;
  }

  rte_rcu_qsbr* qsbr_ = nullptr;
  std::unique_ptr<Tables> t_;
};

// ---- allocations: idempotent upserts, replacement, refresh -----------------------

TEST_F(TablesTest, SameAllocationUpsertedTwiceIsOneEntryInOneSlot) {
  ASSERT_TRUE(add4(1));
  const AllocEntry* first = entry4(1);
  ASSERT_NE(first, nullptr);
  const int64_t slot = t_->index_of(id_of(1));
  ASSERT_TRUE(add4(1));
  EXPECT_EQ(entry4(1), first) << "the same entry, not a new one";
  EXPECT_EQ(t_->index_of(id_of(1)), slot);
  EXPECT_EQ(t_->allocation_count(), 1u);
}

TEST_F(TablesTest, UpsertingTheSameAllocationManyTimesLeaksNoSlot) {
  // Three times the capacity of re-sent Create events, then the table still
  // takes capacity - 1 other allocations: no slot was taken by a repeat.
  for (uint32_t i = 0; i < 3 * kAllocs; ++i) ASSERT_TRUE(add4(0)) << "repeat " << i;
  for (uint8_t n = 1; n < kAllocs; ++n) EXPECT_TRUE(add4(n)) << "allocation " << int{n};
  EXPECT_EQ(t_->allocation_count(), kAllocs);
}

TEST_F(TablesTest, ResentAllocationMovesOnlyItsDeadlineAndKeepsPermissionsAndChannels) {
  ASSERT_TRUE(add4(1, 1000));
  ASSERT_TRUE(t_->upsert_permission(id_of(1), peer4(7), 1000));
  ASSERT_TRUE(t_->upsert_channel(id_of(1), kCh0, peer4(7), np(7000), 1000));
  const AllocEntry* e = entry4(1);
  ASSERT_TRUE(add4(1, 5000));
  EXPECT_EQ(entry4(1), e) << "updated in place";
  EXPECT_EQ(e->expires.load(), 5000u);
  EXPECT_NE(t_->permission(perm_key(1, peer4(7))), nullptr) << "a re-sent Create must not drop the permission";
  EXPECT_NE(t_->channel(ChannelKey::of(client4(1), kCh0)), nullptr) << "nor the channel";
}

TEST_F(TablesTest, AllocationWithAnotherClientTupleReplacesTheOldOneAndItsBindings) {
  // Same id, different 5-tuple: the old key must stop matching, and what
  // hung off the old entry goes with it (turn-control re-sends what is live).
  ASSERT_TRUE(add4(1));
  ASSERT_TRUE(t_->upsert_permission(id_of(1), peer4(7), 1000));
  ASSERT_TRUE(t_->upsert_channel(id_of(1), kCh0, peer4(7), np(7000), 1000));
  ASSERT_TRUE(t_->upsert_allocation(id_of(1), client4(2), kRelay, relay_port(1), 2000));
  EXPECT_EQ(t_->client(client4(1)), nullptr);
  const AllocEntry* e = t_->client(client4(2));
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->expires.load(), 2000u);
  EXPECT_EQ(t_->allocation_count(), 1u);
  EXPECT_EQ(t_->permission(perm_key(1, peer4(7))), nullptr);
  EXPECT_EQ(t_->channel(ChannelKey::of(client4(1), kCh0)), nullptr);
  EXPECT_EQ(t_->peer(peer_key(1, peer4(7), np(7000))), nullptr);
}

TEST_F(TablesTest, AllocationWithAnotherRelayedAddressMovesItsEntryToTheNewRelay) {
  ASSERT_TRUE(add4(1));
  ASSERT_TRUE(t_->upsert_allocation(id_of(1), client4(1), kRelay, relay_port(9), 1000));
  const AllocEntry* e = entry4(1);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->relay_port, relay_port(9));
  EXPECT_EQ(t_->allocation_count(), 1u);
}

TEST_F(TablesTest, RefreshMovesTheDeadlineInPlaceAndCreatesNothing) {
  ASSERT_TRUE(add4(1, 1000));
  const AllocEntry* e = entry4(1);
  EXPECT_TRUE(t_->refresh_allocation(id_of(1), 3000));
  EXPECT_EQ(entry4(1), e);
  EXPECT_EQ(e->expires.load(), 3000u);
  EXPECT_FALSE(t_->refresh_allocation(id_of(2), 3000)) << "an allocation it does not hold";
  EXPECT_EQ(t_->allocation_count(), 1u);
}

TEST_F(TablesTest, AllocationWithoutARelayedAddressIsRefused) {
  AllocationSpec s;
  s.client = client4(1);
  EXPECT_FALSE(t_->upsert_allocation(id_of(1), s, 1000));
  EXPECT_EQ(t_->client(client4(1)), nullptr);
  EXPECT_EQ(t_->allocation_count(), 0u);
  EXPECT_EQ(t_->index_of(id_of(1)), -1);
}

// ---- what the readers see ------------------------------------------------------------

TEST_F(TablesTest, ReadersSeeTheIPv4AllocationPermissionAndChannelAsWritten) {
  ASSERT_TRUE(add4(1, 1000));
  ASSERT_TRUE(t_->upsert_permission(id_of(1), peer4(7), 1100));
  ASSERT_TRUE(t_->upsert_channel(id_of(1), kCh0, peer4(7), np(7000), 1200));
  const auto slot = static_cast<uint32_t>(t_->index_of(id_of(1)));

  const AllocEntry* a = entry4(1);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->client, client4(1));
  EXPECT_EQ(a->relay_ip, kRelay);
  EXPECT_EQ(a->relay_port, relay_port(1));
  EXPECT_EQ(a->alt_port, 0) << "no relayed address of the other family";
  EXPECT_EQ(a->client6, 0);
  EXPECT_EQ(a->index, slot);
  EXPECT_EQ(t_->slot_of(a), slot);
  EXPECT_EQ(&t_->alloc(slot), a);
  EXPECT_EQ(a->expires.load(), 1000u);

  const PermissionEntry* p = t_->permission(perm_key(1, peer4(7)));
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->alloc, slot);
  EXPECT_EQ(p->expires.load(), 1100u);
  EXPECT_EQ(t_->permission(perm_key(1, peer4(8))), nullptr) << "another peer IP has no permission";

  const ChannelEntry* c = t_->channel(ChannelKey::of(client4(1), kCh0));
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->alloc, slot);
  EXPECT_EQ(c->peer_ip, peer4(7));
  EXPECT_EQ(c->peer_port, np(7000));
  EXPECT_EQ(c->channel, kCh0);
  EXPECT_EQ(c->cross, 0u);
  EXPECT_EQ(c->expires.load(), 1200u);
  EXPECT_EQ(t_->linked_permission(*c), p);
  EXPECT_EQ(t_->peer(peer_key(1, peer4(7), np(7000))), c) << "the peer table shares the channel's entry";
  EXPECT_EQ(t_->peer(peer_key(1, peer4(7), np(7001))), nullptr) << "a channel binds a transport address, not an IP";
  EXPECT_EQ(t_->channel(ChannelKey::of(client4(1), kCh1)), nullptr);
}

// The ChannelData path reads the channel's entry alone (entries.h): its
// copies of the allocation's expiry and relayed address and of the linked
// permission's expiry must follow every write to their sources.
TEST_F(TablesTest, ChannelCopiesFollowTheAllocationAndPermissionThroughEveryWrite) {
  ASSERT_TRUE(add4(1, 1000));
  ASSERT_TRUE(t_->upsert_channel(id_of(1), kCh0, peer4(7), np(7000), 1200));
  ASSERT_TRUE(t_->upsert_channel(id_of(1), kCh1, peer4(8), np(7000), 1200));
  const ChannelEntry* c = t_->channel(ChannelKey::of(client4(1), kCh0));
  const ChannelEntry* c2 = t_->channel(ChannelKey::of(client4(1), kCh1));
  ASSERT_NE(c, nullptr);
  ASSERT_NE(c2, nullptr);
  EXPECT_EQ(c->relay_ip, kRelay);
  EXPECT_EQ(c->relay_port, relay_port(1));
  EXPECT_EQ(c->alloc_expires.load(), 1000u) << "copied when bound";
  EXPECT_EQ(c->perm_expires.load(), 0u) << "no permission linked";

  ASSERT_TRUE(t_->upsert_permission(id_of(1), peer4(7), 1100));
  EXPECT_EQ(c->perm_expires.load(), 1100u) << "copied when linked";
  EXPECT_EQ(c2->perm_expires.load(), 0u) << "another peer's permission";
  ASSERT_TRUE(t_->upsert_permission(id_of(1), peer4(7), 4100));
  EXPECT_EQ(c->perm_expires.load(), 4100u) << "a permission refresh";
  EXPECT_EQ(c2->perm_expires.load(), 0u);

  EXPECT_TRUE(t_->refresh_allocation(id_of(1), 3000));
  EXPECT_EQ(c->alloc_expires.load(), 3000u) << "refresh_allocation";
  EXPECT_EQ(c2->alloc_expires.load(), 3000u);
  ASSERT_TRUE(add4(1, 5000));
  EXPECT_EQ(c->alloc_expires.load(), 5000u) << "the allocation resent (upsert_allocation)";

  // A channel bound later copies what is current.
  ASSERT_TRUE(t_->upsert_channel(id_of(1), np(0x4002), peer4(7), np(7001), 1200));
  const ChannelEntry* c3 = t_->channel(ChannelKey::of(client4(1), np(0x4002)));
  ASSERT_NE(c3, nullptr);
  EXPECT_EQ(c3->alloc_expires.load(), 5000u);
  EXPECT_EQ(c3->perm_expires.load(), 4100u);

  // Removed: an entry a worker still holds stops forwarding at once.
  t_->remove_allocation(id_of(1));
  EXPECT_EQ(c->alloc_expires.load(), 0u);
  EXPECT_EQ(c2->alloc_expires.load(), 0u);
  EXPECT_EQ(c3->alloc_expires.load(), 0u);
}

TEST_F(TablesTest, DualStackChannelCopiesTheRelayedPortOfThePeersFamily) {
  ASSERT_TRUE(t_->upsert_allocation(id_of(1), dual4(), 1000));
  ASSERT_TRUE(t_->upsert_channel(id_of(1), kCh0, peer6(7), np(7000), 1200));
  const ChannelEntry* c = t_->channel(ChannelKey::of(client4(1), kCh0));
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->cross, 1u);
  EXPECT_EQ(c->relay_port, relay_port(2)) << "an IPv6 peer: the IPv6 relayed address's port";
  ASSERT_TRUE(t_->upsert_channel(id_of(1), kCh1, peer4(7), np(7000), 1200));
  const ChannelEntry* c4 = t_->channel(ChannelKey::of(client4(1), kCh1));
  ASSERT_NE(c4, nullptr);
  EXPECT_EQ(c4->relay_port, relay_port(1));
  EXPECT_EQ(c4->relay_ip, kRelay);
}

TEST_F(TablesTest, BulkAndWorkerLookupsAnswerAsTheSingleOnes) {
  ASSERT_TRUE(add4(1));
  ASSERT_TRUE(add4(2));
  ASSERT_TRUE(t_->upsert_permission(id_of(1), peer4(7), 1000));
  ASSERT_TRUE(t_->upsert_channel(id_of(2), kCh0, peer4(7), np(7000), 1000));
  // A hit, a miss, a hit: out[i] is the entry or nullptr.
  const ClientKey ck[3] = {client4(1), client4(3), client4(2)};
  const ClientKey* ckp[3] = {&ck[0], &ck[1], &ck[2]};
  const AllocEntry* ca[3];
  t_->lookup_bulk(ckp, 3, ca);
  EXPECT_EQ(ca[0], entry4(1));
  EXPECT_EQ(ca[1], nullptr);
  EXPECT_EQ(ca[2], entry4(2));
  ASSERT_NE(ca[0], nullptr);

  const ChannelKey chk[2] = {ChannelKey::of(client4(2), kCh0), ChannelKey::of(client4(1), kCh0)};
  const ChannelKey* chkp[2] = {&chk[0], &chk[1]};
  const ChannelEntry* cha[2];
  t_->lookup_bulk(chkp, 2, cha);
  EXPECT_EQ(cha[0], t_->channel(chk[0]));
  ASSERT_NE(cha[0], nullptr);
  EXPECT_EQ(cha[1], nullptr);

  const PermissionKey pk[2] = {perm_key(1, peer4(7)), perm_key(2, peer4(7))};
  const PermissionKey* pkp[2] = {&pk[0], &pk[1]};
  const PermissionEntry* pa[2];
  t_->lookup_bulk(pkp, 2, pa);
  EXPECT_EQ(pa[0], t_->permission(pk[0]));
  ASSERT_NE(pa[0], nullptr);
  EXPECT_EQ(pa[1], nullptr);

  const PeerKey prk[2] = {peer_key(2, peer4(7), np(7000)), peer_key(1, peer4(7), np(7000))};
  const PeerKey* prkp[2] = {&prk[0], &prk[1]};
  const ChannelEntry* pra[2];
  t_->lookup_bulk(prkp, 2, pra);
  EXPECT_EQ(pra[0], cha[0]);
  EXPECT_EQ(pra[1], nullptr);

  // The worker's view (WorkerTables) answers as the tables do, key by key
  // and in bulk; slot_of names an entry's slot without reading it.
  WorkerTables wt{t_.get()};
  EXPECT_EQ(wt.client(client4(1)), entry4(1));
  EXPECT_EQ(wt.channel(chk[0]), cha[0]);
  EXPECT_EQ(wt.permission(pk[0]), pa[0]);
  EXPECT_EQ(wt.peer(prk[0]), cha[0]);
  const AllocEntry* wa[3];
  wt.lookup_bulk(ckp, 3, wa);
  EXPECT_EQ(wa[0], entry4(1));
  EXPECT_EQ(wa[1], nullptr);
  EXPECT_EQ(wa[2], entry4(2));
  EXPECT_EQ(wt.slot_of(entry4(2)), entry4(2)->index);
  const ChannelEntry* wpr[2];
  wt.lookup_bulk(prkp, 2, wpr);
  EXPECT_EQ(wpr[0], cha[0]);
  EXPECT_EQ(wpr[1], nullptr);
}

TEST_F(TablesTest, IPv6BulkLookupsAnswerAsTheSingleOnes) {
  ASSERT_TRUE(t_->upsert_allocation(id_of(1), client6(1), kRelay6, relay_port(1), 1000));
  ASSERT_TRUE(t_->upsert_allocation(id_of(2), client6(2), kRelay6, relay_port(2), 1000));
  ASSERT_TRUE(t_->upsert_permission(id_of(1), peer6(7), 1000));
  ASSERT_TRUE(t_->upsert_channel(id_of(2), kCh0, peer6(7), np(7000), 1000));
  WorkerTables wt{t_.get()};
  // A hit, a miss, a hit, through the worker's view as the burst calls it.
  const ClientKey6 ck[3] = {client6(1), client6(3), client6(2)};
  const ClientKey6* ckp[3] = {&ck[0], &ck[1], &ck[2]};
  const AllocEntry* ca[3];
  wt.lookup_bulk(ckp, 3, ca);
  EXPECT_EQ(ca[0], t_->client(ck[0]));
  ASSERT_NE(ca[0], nullptr);
  EXPECT_EQ(ca[1], nullptr);
  EXPECT_EQ(ca[2], t_->client(ck[2]));
  ASSERT_NE(ca[2], nullptr);

  const ChannelKey6 chk[2] = {ChannelKey6::of(client6(2), kCh0), ChannelKey6::of(client6(1), kCh0)};
  const ChannelKey6* chkp[2] = {&chk[0], &chk[1]};
  const ChannelEntry* cha[2];
  wt.lookup_bulk(chkp, 2, cha);
  EXPECT_EQ(cha[0], t_->channel(chk[0]));
  ASSERT_NE(cha[0], nullptr);
  EXPECT_EQ(cha[1], nullptr);

  const PermissionKey6 pk[2] = {PermissionKey6{kRelay6, peer6(7), relay_port(1)},
                                PermissionKey6{kRelay6, peer6(7), relay_port(2)}};
  const PermissionKey6* pkp[2] = {&pk[0], &pk[1]};
  const PermissionEntry* pa[2];
  wt.lookup_bulk(pkp, 2, pa);
  EXPECT_EQ(pa[0], t_->permission(pk[0]));
  ASSERT_NE(pa[0], nullptr);
  EXPECT_EQ(pa[1], nullptr);

  const PeerKey6 prk[2] = {PeerKey6{kRelay6, peer6(7), relay_port(2), np(7000)},
                           PeerKey6{kRelay6, peer6(7), relay_port(1), np(7000)}};
  const PeerKey6* prkp[2] = {&prk[0], &prk[1]};
  const ChannelEntry* pra[2];
  wt.lookup_bulk(prkp, 2, pra);
  EXPECT_EQ(pra[0], cha[0]);
  EXPECT_EQ(pra[1], nullptr);
}

TEST_F(TablesTest, ReadersSeeTheIPv6AllocationPermissionAndChannelAsWritten) {
  ASSERT_TRUE(t_->upsert_allocation(id_of(1), client6(1), kRelay6, relay_port(1), 1000));
  ASSERT_TRUE(t_->upsert_permission(id_of(1), peer6(7), 1000));
  ASSERT_TRUE(t_->upsert_channel(id_of(1), kCh0, peer6(7), np(7000), 1000));
  const auto slot = static_cast<uint32_t>(t_->index_of(id_of(1)));

  const AllocEntry* a = t_->client(client6(1));
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->client6, 1);
  EXPECT_EQ(a->relay_port, relay_port(1));
  EXPECT_EQ(a->alt_port, 0);
  EXPECT_EQ(a->index, slot);
  EXPECT_EQ(t_->alloc6(slot).client, client6(1));
  EXPECT_EQ(t_->alloc6(slot).relay_ip, kRelay6);
  EXPECT_EQ(t_->client(client4(1)), nullptr) << "not in the IPv4 client table";

  const PermissionEntry* p = t_->permission(PermissionKey6{kRelay6, peer6(7), relay_port(1)});
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->alloc, slot);
  const ChannelEntry* c = t_->channel(ChannelKey6::of(client6(1), kCh0));
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->alloc, slot);
  EXPECT_EQ(c->cross, 0u);
  EXPECT_EQ(t_->channel_peer6(c->index), peer6(7));
  EXPECT_EQ(t_->linked_permission(*c), p);
  EXPECT_EQ(t_->peer(PeerKey6{kRelay6, peer6(7), relay_port(1), np(7000)}), c);
}

TEST_F(TablesTest, DualStackAllocationTakesEachPeerOnTheRelayedAddressOfItsFamily) {
  // RFC 8656 §7.2: an IPv4 client with an IPv4 and an IPv6 relayed address.
  ASSERT_TRUE(t_->upsert_allocation(id_of(1), dual4(), 1000));
  const AllocEntry* a = entry4(1);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->relay_port, relay_port(1)) << "the client's family's relayed address";
  EXPECT_EQ(a->alt_port, relay_port(2)) << "the other family's";

  ASSERT_TRUE(t_->upsert_permission(id_of(1), peer6(7), 1000));
  EXPECT_NE(t_->permission(PermissionKey6{kRelay6, peer6(7), relay_port(2)}), nullptr);
  ASSERT_TRUE(t_->upsert_channel(id_of(1), kCh0, peer6(7), np(7000), 1000));
  // The channel key is the client's (IPv4) 5-tuple; the peer key is on the
  // IPv6 relayed address; the entry says the families differ.
  const ChannelEntry* c = t_->channel(ChannelKey::of(client4(1), kCh0));
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->cross, 1u);
  EXPECT_EQ(t_->channel_peer6(c->index), peer6(7));
  EXPECT_EQ(t_->peer(PeerKey6{kRelay6, peer6(7), relay_port(2), np(7000)}), c);
  EXPECT_EQ(t_->linked_permission(*c), t_->permission(PermissionKey6{kRelay6, peer6(7), relay_port(2)}));

  // An IPv4 peer on the same allocation: the IPv4 relayed address.
  ASSERT_TRUE(t_->upsert_permission(id_of(1), peer4(7), 1000));
  EXPECT_NE(t_->permission(perm_key(1, peer4(7))), nullptr);
}

TEST_F(TablesTest, PeerOfAFamilyTheAllocationHasNoRelayedAddressForIsRefused) {
  // turn-control answers 443 for those; the tables refuse them too.
  ASSERT_TRUE(add4(1));
  EXPECT_FALSE(t_->upsert_permission(id_of(1), peer6(7), 1000));
  EXPECT_FALSE(t_->upsert_channel(id_of(1), kCh0, peer6(7), np(7000), 1000));
  EXPECT_EQ(t_->permission_count(), 0u);
  EXPECT_EQ(t_->channel_count(), 0u);
}

// ---- permissions and channels: idempotence and linking ----------------------------------

TEST_F(TablesTest, PermissionOrChannelOfAnUnknownAllocationIsRefused) {
  EXPECT_FALSE(t_->upsert_permission(id_of(1), peer4(7), 1000));
  EXPECT_FALSE(t_->upsert_channel(id_of(1), kCh0, peer4(7), np(7000), 1000));
  EXPECT_EQ(t_->permission_count(), 0u);
  EXPECT_EQ(t_->channel_count(), 0u);
}

TEST_F(TablesTest, SamePermissionTwiceIsOneEntryWithTheNewDeadline) {
  ASSERT_TRUE(add4(1));
  ASSERT_TRUE(t_->upsert_permission(id_of(1), peer4(7), 1000));
  const PermissionEntry* p = t_->permission(perm_key(1, peer4(7)));
  ASSERT_TRUE(t_->upsert_permission(id_of(1), peer4(7), 4000));
  EXPECT_EQ(t_->permission(perm_key(1, peer4(7))), p);
  EXPECT_EQ(p->expires.load(), 4000u);
  EXPECT_EQ(t_->permission_count(), 1u);
}

TEST_F(TablesTest, SameChannelTwiceIsOneEntryWithTheNewDeadline) {
  ASSERT_TRUE(add4(1));
  ASSERT_TRUE(t_->upsert_channel(id_of(1), kCh0, peer4(7), np(7000), 1000));
  const ChannelEntry* c = t_->channel(ChannelKey::of(client4(1), kCh0));
  ASSERT_TRUE(t_->upsert_channel(id_of(1), kCh0, peer4(7), np(7000), 4000));
  EXPECT_EQ(t_->channel(ChannelKey::of(client4(1), kCh0)), c);
  EXPECT_EQ(c->expires.load(), 4000u);
  EXPECT_EQ(t_->channel_count(), 1u);
}

TEST_F(TablesTest, ChannelBoundBeforeItsPermissionIsLinkedWhenThePermissionArrives) {
  ASSERT_TRUE(add4(1));
  ASSERT_TRUE(t_->upsert_channel(id_of(1), kCh0, peer4(7), np(7000), 1000));
  const ChannelEntry* c = t_->channel(ChannelKey::of(client4(1), kCh0));
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(t_->linked_permission(*c), nullptr) << "no permission yet: readers look it up";
  ASSERT_TRUE(t_->upsert_permission(id_of(1), peer4(8), 1000));
  EXPECT_EQ(t_->linked_permission(*c), nullptr) << "another peer's permission is not this channel's";
  ASSERT_TRUE(t_->upsert_permission(id_of(1), peer4(7), 1000));
  EXPECT_EQ(t_->linked_permission(*c), t_->permission(perm_key(1, peer4(7))));
  EXPECT_NE(t_->linked_permission(*c), nullptr);
}

TEST_F(TablesTest, ChannelBoundAfterItsPermissionIsLinkedAtOnce) {
  ASSERT_TRUE(add4(1));
  ASSERT_TRUE(t_->upsert_permission(id_of(1), peer4(7), 1000));
  ASSERT_TRUE(t_->upsert_channel(id_of(1), kCh0, peer4(7), np(7000), 1000));
  const ChannelEntry* c = t_->channel(ChannelKey::of(client4(1), kCh0));
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(t_->linked_permission(*c), t_->permission(perm_key(1, peer4(7))));
  EXPECT_NE(t_->linked_permission(*c), nullptr);
}

TEST_F(TablesTest, IPv6ChannelBoundBeforeItsPermissionIsLinkedWhenThePermissionArrives) {
  ASSERT_TRUE(t_->upsert_allocation(id_of(1), client6(1), kRelay6, relay_port(1), 1000));
  ASSERT_TRUE(t_->upsert_channel(id_of(1), kCh0, peer6(7), np(7000), 1000));
  const ChannelEntry* c = t_->channel(ChannelKey6::of(client6(1), kCh0));
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(t_->linked_permission(*c), nullptr);
  ASSERT_TRUE(t_->upsert_permission(id_of(1), peer6(8), 1000));
  EXPECT_EQ(t_->linked_permission(*c), nullptr);
  ASSERT_TRUE(t_->upsert_permission(id_of(1), peer6(7), 1000));
  EXPECT_EQ(t_->linked_permission(*c), t_->permission(PermissionKey6{kRelay6, peer6(7), relay_port(1)}));
  EXPECT_NE(t_->linked_permission(*c), nullptr);
}

TEST_F(TablesTest, ChannelNumberReboundToAnotherPeerDropsTheOldPeer) {
  ASSERT_TRUE(add4(1));
  ASSERT_TRUE(t_->upsert_channel(id_of(1), kCh0, peer4(7), np(7000), 1000));
  ASSERT_TRUE(t_->upsert_channel(id_of(1), kCh0, peer4(8), np(8000), 1000));
  EXPECT_EQ(t_->peer(peer_key(1, peer4(7), np(7000))), nullptr) << "the old peer no longer maps to a channel";
  const ChannelEntry* c = t_->channel(ChannelKey::of(client4(1), kCh0));
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->peer_ip, peer4(8));
  EXPECT_EQ(t_->peer(peer_key(1, peer4(8), np(8000))), c);
}

TEST_F(TablesTest, PeerRenumberedToAnotherChannelDropsTheOldNumber) {
  // Otherwise deleting the old binding later would take the new one's peer
  // mapping with it (tables.cpp upsert_channel_any).
  ASSERT_TRUE(add4(1));
  ASSERT_TRUE(t_->upsert_channel(id_of(1), kCh0, peer4(7), np(7000), 1000));
  ASSERT_TRUE(t_->upsert_channel(id_of(1), kCh1, peer4(7), np(7000), 1000));
  EXPECT_EQ(t_->channel(ChannelKey::of(client4(1), kCh0)), nullptr);
  const ChannelEntry* c = t_->channel(ChannelKey::of(client4(1), kCh1));
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(t_->peer(peer_key(1, peer4(7), np(7000))), c);
  EXPECT_EQ(c->channel, kCh1);
}

TEST_F(TablesTest, RemovedAllocationTakesItsPermissionsAndChannelsAndComesBackWhole) {
  ASSERT_TRUE(add4(1));
  ASSERT_TRUE(add4(2));
  for (uint8_t p : {7, 8}) ASSERT_TRUE(t_->upsert_permission(id_of(1), peer4(p), 1000));
  ASSERT_TRUE(t_->upsert_channel(id_of(1), kCh0, peer4(7), np(7000), 1000));
  ASSERT_TRUE(t_->upsert_channel(id_of(1), kCh1, peer4(8), np(8000), 1000));
  ASSERT_TRUE(t_->upsert_permission(id_of(2), peer4(7), 1000));

  t_->remove_allocation(id_of(1));
  EXPECT_EQ(entry4(1), nullptr);
  EXPECT_EQ(t_->index_of(id_of(1)), -1);
  for (uint8_t p : {7, 8}) EXPECT_EQ(t_->permission(perm_key(1, peer4(p))), nullptr);
  EXPECT_EQ(t_->channel(ChannelKey::of(client4(1), kCh0)), nullptr);
  EXPECT_EQ(t_->channel(ChannelKey::of(client4(1), kCh1)), nullptr);
  EXPECT_EQ(t_->peer(peer_key(1, peer4(7), np(7000))), nullptr);
  EXPECT_EQ(t_->peer(peer_key(1, peer4(8), np(8000))), nullptr);
  EXPECT_EQ(t_->allocation_count(), 1u);
  EXPECT_NE(t_->permission(perm_key(2, peer4(7))), nullptr) << "allocation 2's permission stays";
  t_->remove_allocation(id_of(1));  // a second delete: nothing happens
  EXPECT_EQ(t_->allocation_count(), 1u);

  // Re-added (channel first this time): everything resolves and links again.
  ASSERT_TRUE(add4(1));
  ASSERT_TRUE(t_->upsert_channel(id_of(1), kCh0, peer4(7), np(7000), 1000));
  ASSERT_TRUE(t_->upsert_permission(id_of(1), peer4(7), 1000));
  const ChannelEntry* c = t_->channel(ChannelKey::of(client4(1), kCh0));
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->alloc, static_cast<uint32_t>(t_->index_of(id_of(1))));
  EXPECT_EQ(t_->linked_permission(*c), t_->permission(perm_key(1, peer4(7))));
  EXPECT_NE(t_->linked_permission(*c), nullptr);
  EXPECT_EQ(t_->peer(peer_key(1, peer4(7), np(7000))), c);
}

// ---- removal and RCU reclamation -----------------------------------------------------------

TEST_F(TablesTest, RemovedAllocationStopsMatchingAtOnceButItsSlotWaitsForTheReaders) {
  Reader worker(qsbr_, 0);
  ASSERT_TRUE(add4(0));
  const AllocEntry* held = entry4(0);  // a worker in the middle of a burst
  ASSERT_NE(held, nullptr);
  const auto slot = static_cast<uint32_t>(held->index);

  t_->remove_allocation(id_of(0));
  EXPECT_EQ(entry4(0), nullptr) << "new lookups miss at once";
  EXPECT_EQ(held->expires.load(), 0u) << "the held entry stops forwarding at once";

  // While the worker has not reported quiescent, no new allocation takes
  // the slot, however many are added: the table holds one fewer.
  uint32_t added = 0;
  for (uint8_t n = 1; n <= kAllocs; ++n) {
    if (!add4(n)) break;
    ++added;
    EXPECT_NE(t_->index_of(id_of(n)), int64_t{slot}) << "allocation " << int{n} << " took the slot a reader may hold";
  }
  EXPECT_EQ(added, kAllocs - 1);
  EXPECT_EQ(held->client, client4(0)) << "the held entry is intact";

  // The worker reports quiescent; the next delete runs the grace-period
  // queue's reclamation (Tables::reclaim), which returns the slot.
  worker.quiescent();
  t_->remove_allocation(id_of(1));
  ASSERT_TRUE(add4(20));
  EXPECT_EQ(t_->index_of(id_of(20)), int64_t{slot}) << "the reclaimed slot is the one free";
  // Allocation 1's slot was removed after the quiescent report: still held.
  EXPECT_FALSE(add4(21));
}

TEST_F(TablesTest, SlotIsHeldUntilEveryReaderHasReportedQuiescent) {
  Reader w0(qsbr_, 0), w1(qsbr_, 1);
  for (uint8_t n = 0; n < kAllocs; ++n) ASSERT_TRUE(add4(n));
  t_->remove_allocation(id_of(0));
  w0.quiescent();                   // one worker of two
  t_->remove_allocation(id_of(1));  // reclamation runs: 0 is still held by w1
  EXPECT_FALSE(add4(20)) << "worker 1 may still hold allocation 0's entry";
  w1.quiescent();
  t_->remove_allocation(id_of(2));  // reclamation runs again: 0 is past its grace period
  EXPECT_TRUE(add4(20));
  EXPECT_FALSE(add4(21)) << "allocation 1 was removed after worker 0's report: still held";
}

TEST_F(TablesTest, IPv4ChannelSlotIsHeldUntilEveryReaderHasReportedQuiescent) {
  // The IPv4 channel table (FlowIndex) returns its entries through
  // Tables' own grace-period queue, not rte_hash's: the same rule.
  Reader w0(qsbr_, 0), w1(qsbr_, 1);
  ASSERT_TRUE(add4(1));
  for (uint8_t n = 0; n < kChannels; ++n)
    ASSERT_TRUE(t_->upsert_channel(id_of(1), np(static_cast<uint16_t>(0x4000 + n)), peer4(10 + n), np(7000), 1000));
  const ChannelEntry* held = t_->channel(ChannelKey::of(client4(1), kCh0));  // a worker holds it
  ASSERT_NE(held, nullptr);
  // Rebinding channel 0x4000 drops its old binding at once; the new one
  // needs a slot, and the only one freed may still be read.
  EXPECT_FALSE(t_->upsert_channel(id_of(1), kCh0, peer4(99), np(7000), 1000)) << "no slot past its grace period";
  EXPECT_EQ(t_->channel(ChannelKey::of(client4(1), kCh0)), nullptr) << "the old binding is gone at once";
  EXPECT_EQ(t_->peer(peer_key(1, peer4(10), np(7000))), nullptr);
  EXPECT_EQ(held->peer_ip, peer4(10)) << "what the reader holds is unchanged";
  w0.quiescent();
  EXPECT_FALSE(t_->upsert_channel(id_of(1), kCh0, peer4(99), np(7000), 1000)) << "worker 1 may still hold it";
  w1.quiescent();
  ASSERT_TRUE(t_->upsert_channel(id_of(1), kCh0, peer4(99), np(7000), 1000));
  const ChannelEntry* c = t_->channel(ChannelKey::of(client4(1), kCh0));
  EXPECT_EQ(c, held) << "the reclaimed slot is the one free";
  EXPECT_EQ(c->peer_ip, peer4(99));
  EXPECT_EQ(t_->peer(peer_key(1, peer4(99), np(7000))), c);
}

TEST_F(TablesTest, ReboundChannelSlotsAreFreedOnceEach) {
  // A channel entry sits in the channel and the peer table; only the channel
  // table's reclamation returns its slot. Freed twice, two live channels
  // would share an entry. Rebind one channel number to many peers (each
  // rebind deletes the old binding), then fill the table: every channel
  // keeps its own entry and peer.
  Reader worker(qsbr_, 0);
  ASSERT_TRUE(add4(1));
  for (uint8_t p = 1; p <= 4 * kChannels; ++p) {
    ASSERT_TRUE(t_->upsert_channel(id_of(1), kCh0, peer4(p), np(7000), 1000)) << "rebind " << int{p};
    worker.quiescent();
  }
  std::vector<uint16_t> bound{kCh0};
  for (uint16_t n = 1; n < kChannels; ++n) {
    uint16_t ch = np(static_cast<uint16_t>(0x4000 + n));
    if (!t_->upsert_channel(id_of(1), ch, peer4(static_cast<uint8_t>(100 + n)), np(7000), 1000)) break;
    bound.push_back(ch);
  }
  // Every slot: the last rebind's old entry is reclaimed when the free
  // list runs out (the worker has reported quiescent since).
  EXPECT_EQ(bound.size(), kChannels);
  std::set<const ChannelEntry*> entries;
  for (size_t i = 0; i < bound.size(); ++i) {
    const ChannelEntry* c = t_->channel(ChannelKey::of(client4(1), bound[i]));
    ASSERT_NE(c, nullptr);
    entries.insert(c);
    EXPECT_EQ(c->channel, bound[i]) << "channel " << i << " shares its entry with another";
  }
  EXPECT_EQ(entries.size(), bound.size());
}

// A key added again under another allocation id takes the mapping (the
// newest event wins); the older owner's late removal must leave it alone.
// Both owners below share the client 5-tuple and the relayed port, so every
// key collides: the client, permission, channel and peer tables.
const char* const kLater = "hostB/203.0.113.10:49153";

TEST_F(TablesTest, LateRemovalOfAnOlderOwnerLeavesTheNewerOwnersIPv4Entries) {
  Reader worker(qsbr_, 0);
  ASSERT_TRUE(add4(1));
  ASSERT_TRUE(t_->upsert_permission(id_of(1), peer4(7), 1000));
  ASSERT_TRUE(t_->upsert_channel(id_of(1), kCh0, peer4(7), np(7000), 1000));
  ASSERT_TRUE(t_->upsert_allocation(kLater, client4(1), kRelay, relay_port(1), 2000));
  ASSERT_TRUE(t_->upsert_permission(kLater, peer4(7), 2000));
  ASSERT_TRUE(t_->upsert_channel(kLater, kCh0, peer4(7), np(7000), 2000));
  const auto later = static_cast<uint32_t>(t_->index_of(kLater));

  t_->remove_allocation(id_of(1));  // the older owner's delete arrives late
  const AllocEntry* a = entry4(1);
  ASSERT_NE(a, nullptr) << "the newer owner keeps the 5-tuple";
  EXPECT_EQ(a->index, later);
  const PermissionEntry* p = t_->permission(perm_key(1, peer4(7)));
  ASSERT_NE(p, nullptr) << "and its permission";
  EXPECT_EQ(p->alloc, later);
  const ChannelEntry* c = t_->channel(ChannelKey::of(client4(1), kCh0));
  ASSERT_NE(c, nullptr) << "and its channel";
  EXPECT_EQ(c->alloc, later);
  EXPECT_EQ(t_->peer(peer_key(1, peer4(7), np(7000))), c);
  EXPECT_EQ(t_->linked_permission(*c), p);

  // The older owner's slots come back once (after the grace period), the
  // newer owner's never while it lives: every other slot fills, none of
  // them the newer owner's, and the newer owner's entries stay intact.
  worker.quiescent();
  std::set<int64_t> slots{later};
  for (uint8_t n = 2; n <= kAllocs; ++n) {
    ASSERT_TRUE(add4(n)) << "allocation " << int{n};
    EXPECT_TRUE(slots.insert(t_->index_of(id_of(n))).second) << "allocation " << int{n} << " shares a slot";
  }
  EXPECT_FALSE(add4(kAllocs + 1)) << "exactly the table's capacity";
  for (uint16_t n = 1; n < kChannels; ++n) {
    const auto ch = np(static_cast<uint16_t>(0x4000 + n));
    ASSERT_TRUE(t_->upsert_permission(kLater, peer4(static_cast<uint8_t>(10 + n)), 2000)) << "permission " << n;
    ASSERT_TRUE(t_->upsert_channel(kLater, ch, peer4(static_cast<uint8_t>(10 + n)), np(7000), 2000)) << "channel " << n;
    const ChannelEntry* other = t_->channel(ChannelKey::of(client4(1), ch));
    ASSERT_NE(other, nullptr);
    EXPECT_NE(other, c) << "channel " << n << " took the live channel's slot";
  }
  EXPECT_EQ(t_->permission(perm_key(1, peer4(7))), p);
  EXPECT_EQ(c->channel, kCh0);
  EXPECT_EQ(c->peer_ip, peer4(7));
  EXPECT_EQ(entry4(1)->index, later);
}

TEST_F(TablesTest, LateRemovalOfAnOlderOwnerLeavesTheNewerOwnersIPv6Entries) {
  Reader worker(qsbr_, 0);
  const PermissionKey6 pk{kRelay6, peer6(7), relay_port(1), 0, 0};
  const PeerKey6 peer{kRelay6, peer6(7), relay_port(1), np(7000)};
  ASSERT_TRUE(t_->upsert_allocation(id_of(1), client6(1), kRelay6, relay_port(1), 1000));
  ASSERT_TRUE(t_->upsert_permission(id_of(1), peer6(7), 1000));
  ASSERT_TRUE(t_->upsert_channel(id_of(1), kCh0, peer6(7), np(7000), 1000));
  ASSERT_TRUE(t_->upsert_allocation(kLater, client6(1), kRelay6, relay_port(1), 2000));
  ASSERT_TRUE(t_->upsert_permission(kLater, peer6(7), 2000));
  ASSERT_TRUE(t_->upsert_channel(kLater, kCh0, peer6(7), np(7000), 2000));
  const auto later = static_cast<uint32_t>(t_->index_of(kLater));

  t_->remove_allocation(id_of(1));
  const AllocEntry* a = t_->client(client6(1));
  ASSERT_NE(a, nullptr) << "the newer owner keeps the 5-tuple";
  EXPECT_EQ(a->index, later);
  const PermissionEntry* p = t_->permission(pk);
  ASSERT_NE(p, nullptr) << "and its permission";
  EXPECT_EQ(p->alloc, later);
  const ChannelEntry* c = t_->channel(ChannelKey6::of(client6(1), kCh0));
  ASSERT_NE(c, nullptr) << "and its channel";
  EXPECT_EQ(c->alloc, later);
  EXPECT_EQ(t_->peer(peer), c);

  // The newer owner's own removal then frees everything: after the grace
  // period the tables take their full capacity again.
  t_->remove_allocation(kLater);
  EXPECT_EQ(t_->client(client6(1)), nullptr);
  EXPECT_EQ(t_->permission(pk), nullptr);
  EXPECT_EQ(t_->channel(ChannelKey6::of(client6(1), kCh0)), nullptr);
  EXPECT_EQ(t_->peer(peer), nullptr);
  worker.quiescent();
  ASSERT_TRUE(add4(20));
  t_->remove_allocation(id_of(20));  // a delete runs rte_hash's reclamation
  worker.quiescent();
  for (uint8_t n = 1; n <= kAllocs; ++n) ASSERT_TRUE(add4(n)) << "allocation " << int{n};
  EXPECT_FALSE(add4(kAllocs + 1));
  for (uint16_t n = 0; n < kChannels; ++n) {
    ASSERT_TRUE(t_->upsert_permission(id_of(1), peer4(static_cast<uint8_t>(n)), 1000)) << "permission " << n;
    ASSERT_TRUE(t_->upsert_channel(id_of(1), np(static_cast<uint16_t>(0x4000 + n)), peer4(static_cast<uint8_t>(n)),
                                   np(7000), 1000))
        << "channel " << n;
  }
}

TEST_F(TablesTest, PermissionAndChannelSlotsFreedByOneFamilyServeTheOther) {
  // IPv4 and IPv6 permissions (and channels) share one array of entries;
  // slots an IPv6 allocation frees come back for IPv4 ones after the grace
  // period, with no further IPv6 delete to run a reclamation.
  Reader worker(qsbr_, 0);
  ASSERT_TRUE(t_->upsert_allocation(id_of(2), client6(2), kRelay6, relay_port(2), 1000));
  for (uint8_t n = 0; n < kChannels; ++n) {
    ASSERT_TRUE(t_->upsert_permission(id_of(2), peer6(n), 1000)) << "permission " << int{n};
    ASSERT_TRUE(t_->upsert_channel(id_of(2), np(static_cast<uint16_t>(0x4000 + n)), peer6(n), np(7000), 1000))
        << "channel " << int{n};
  }
  t_->remove_allocation(id_of(2));
  ASSERT_TRUE(add4(1));
  EXPECT_FALSE(t_->upsert_permission(id_of(1), peer4(0), 1000)) << "the worker may still hold every IPv6 entry";
  worker.quiescent();
  for (uint8_t n = 0; n < kChannels; ++n) {
    EXPECT_TRUE(t_->upsert_permission(id_of(1), peer4(n), 1000)) << "permission " << int{n};
    EXPECT_TRUE(t_->upsert_channel(id_of(1), np(static_cast<uint16_t>(0x4000 + n)), peer4(n), np(7000), 1000))
        << "channel " << int{n};
  }
}

// ---- capacity ---------------------------------------------------------------------------------

TEST_F(TablesTest, FullAllocationTableRefusesTheNextAndKeepsTheRest) {
  for (uint8_t n = 0; n < kAllocs; ++n) ASSERT_TRUE(add4(n)) << "allocation " << int{n};
  EXPECT_FALSE(add4(kAllocs));
  EXPECT_EQ(t_->client(client4(kAllocs)), nullptr);
  EXPECT_EQ(t_->index_of(id_of(kAllocs)), -1);
  EXPECT_EQ(t_->allocation_count(), kAllocs);
  for (uint8_t n = 0; n < kAllocs; ++n) EXPECT_NE(entry4(n), nullptr) << "allocation " << int{n};
  EXPECT_TRUE(add4(0, 2000)) << "a full table still refreshes what it holds";
}

TEST_F(TablesTest, FullPermissionTableRefusesTheNextAndKeepsTheRest) {
  ASSERT_TRUE(add4(1));
  ASSERT_TRUE(t_->upsert_allocation(id_of(2), client6(2), kRelay6, relay_port(2), 1000));
  // IPv4 and IPv6 permissions share the entries.
  for (uint8_t p = 0; p < kChannels / 2; ++p) {
    ASSERT_TRUE(t_->upsert_permission(id_of(1), peer4(p), 1000));
    ASSERT_TRUE(t_->upsert_permission(id_of(2), peer6(p), 1000));
  }
  EXPECT_FALSE(t_->upsert_permission(id_of(1), peer4(100), 1000));
  EXPECT_FALSE(t_->upsert_permission(id_of(2), peer6(100), 1000));
  EXPECT_EQ(t_->permission(perm_key(1, peer4(100))), nullptr);
  EXPECT_EQ(t_->permission_count(), kChannels);
  EXPECT_TRUE(t_->upsert_permission(id_of(1), peer4(0), 2000)) << "a full table still refreshes what it holds";
}

TEST_F(TablesTest, FullChannelTableRefusesTheNextAndKeepsTheRest) {
  ASSERT_TRUE(add4(1));
  for (uint16_t n = 0; n < kChannels; ++n)
    ASSERT_TRUE(t_->upsert_channel(id_of(1), np(static_cast<uint16_t>(0x4000 + n)), peer4(static_cast<uint8_t>(n)),
                                   np(7000), 1000));
  EXPECT_FALSE(t_->upsert_channel(id_of(1), np(0x4100), peer4(100), np(7000), 1000));
  EXPECT_EQ(t_->channel(ChannelKey::of(client4(1), np(0x4100))), nullptr);
  EXPECT_EQ(t_->peer(peer_key(1, peer4(100), np(7000))), nullptr);
  EXPECT_EQ(t_->channel_count(), kChannels);
  EXPECT_TRUE(t_->upsert_channel(id_of(1), kCh0, peer4(0), np(7000), 2000)) << "a full table still refreshes";
}

// add_channel publishes in the channel table of the client's family, then
// the peer table of the peer's, and takes the first back when the second
// refuses. The IPv6 tables are a quarter of the IPv4 ones (tables.cpp), so
// an IPv4 client's channels to IPv6 peers fill the IPv6 peer table first:
// each refusal after that must leave no channel key and no lost slot.
TEST_F(TablesTest, ChannelRefusedByAFullIPv6PeerTableIsTakenBackWhole) {
  constexpr uint32_t kBig = 8192;  // peer6_: a quarter of 1.25 x kBig positions
  t_.reset();                      // its rte_hash names are taken until it is gone
  t_ = std::make_unique<Tables>(TableSizes{kAllocs, kBig}, qsbr_, static_cast<int>(rte_socket_id()));
  ASSERT_TRUE(t_->upsert_allocation(id_of(1), dual4(), 1000));
  auto channel_n = [](uint32_t n) { return np(static_cast<uint16_t>(0x4000 + n)); };
  auto peer_port = [](uint32_t n) { return np(static_cast<uint16_t>(1024 + n)); };
  uint32_t bound = 0;
  while (bound < kBig && t_->upsert_channel(id_of(1), channel_n(bound), peer6(7), peer_port(bound), 1000)) ++bound;
  ASSERT_LT(bound, kBig) << "the IPv6 peer table never refused";
  ASSERT_GT(bound, kBig / 8);
  EXPECT_EQ(t_->channel_count(), bound);
  // The refused one is in neither table.
  EXPECT_EQ(t_->channel(ChannelKey::of(client4(1), channel_n(bound))), nullptr);
  EXPECT_EQ(t_->peer(PeerKey6{kRelay6, peer6(7), relay_port(2), peer_port(bound)}), nullptr);
  // Refused more times than there are free slots: a slot lost per refusal
  // would leave none for the IPv4 peer after them.
  for (uint32_t k = 0; k < kBig - bound + 8; ++k)
    ASSERT_FALSE(t_->upsert_channel(id_of(1), channel_n(bound), peer6(7), peer_port(bound), 1000)) << k;
  EXPECT_EQ(t_->channel_count(), bound);
  ASSERT_TRUE(t_->upsert_channel(id_of(1), channel_n(bound + 1), peer4(9), np(7000), 1000)) << "no slot left";
  EXPECT_NE(t_->channel(ChannelKey::of(client4(1), channel_n(bound + 1))), nullptr);
  // A position freed in the IPv6 peer table takes the refused channel.
  t_->upsert_channel(id_of(1), channel_n(0), peer4(10), np(7000), 1000);  // channel 0 rebound to an IPv4 peer
  EXPECT_EQ(t_->peer(PeerKey6{kRelay6, peer6(7), relay_port(2), peer_port(0)}), nullptr);
  EXPECT_TRUE(t_->upsert_channel(id_of(1), channel_n(bound), peer6(7), peer_port(bound), 1000));
  EXPECT_NE(t_->peer(PeerKey6{kRelay6, peer6(7), relay_port(2), peer_port(bound)}), nullptr);
  EXPECT_EQ(t_->channel_count(), bound + 2);
}

// ---- expiry and clear -------------------------------------------------------------------------

TEST_F(TablesTest, ExpireDropsOnlyAllocationsPastTheirDeadlinePlusGrace) {
  ASSERT_TRUE(add4(1, 100));
  ASSERT_TRUE(add4(2, 1000));
  ASSERT_TRUE(t_->upsert_permission(id_of(1), peer4(7), 100));
  t_->expire(/*now=*/150, /*grace=*/50);
  EXPECT_NE(entry4(1), nullptr) << "deadline + grace == now: not yet";
  t_->expire(/*now=*/151, /*grace=*/50);
  EXPECT_EQ(entry4(1), nullptr);
  EXPECT_EQ(t_->permission(perm_key(1, peer4(7))), nullptr) << "with its permissions";
  EXPECT_NE(entry4(2), nullptr);
  EXPECT_EQ(t_->allocation_count(), 1u);
}

TEST_F(TablesTest, ClearEmptiesEveryTable) {
  ASSERT_TRUE(add4(1));
  ASSERT_TRUE(t_->upsert_allocation(id_of(2), client6(2), kRelay6, relay_port(2), 1000));
  ASSERT_TRUE(t_->upsert_permission(id_of(1), peer4(7), 1000));
  ASSERT_TRUE(t_->upsert_channel(id_of(2), kCh0, peer6(7), np(7000), 1000));
  t_->clear();
  EXPECT_EQ(t_->allocation_count(), 0u);
  EXPECT_EQ(entry4(1), nullptr);
  EXPECT_EQ(t_->client(client6(2)), nullptr);
  EXPECT_EQ(t_->permission(perm_key(1, peer4(7))), nullptr);
  EXPECT_EQ(t_->channel(ChannelKey6::of(client6(2), kCh0)), nullptr);
  EXPECT_EQ(t_->peer(PeerKey6{kRelay6, peer6(7), relay_port(2), np(7000)}), nullptr);
}

}  // namespace
}  // namespace turn::dp
