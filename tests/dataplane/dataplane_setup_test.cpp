// SPDX-License-Identifier: Apache-2.0
// Dataplane (dataplane/setup.h) built and torn down over net_null ports:
// what is left in its rings at exit is freed as what it is.
#include <gtest/gtest.h>
#include <rte_dev.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <atomic>
#include <cstring>
#include <string>

#include "dataplane/config.h"
#include "dataplane/setup.h"

namespace turn::dp {
namespace {

uint16_t null_port(const std::string& name) {
  EXPECT_EQ(rte_dev_probe((name + ",no-rx=1").c_str()), 0) << name;
  uint16_t id = 0;
  EXPECT_EQ(rte_eth_dev_get_port_by_name(name.c_str(), &id), 0) << name;
  return id;
}

DpConfig small_config(uint16_t port, uint16_t exception) {
  DpConfig cfg;
  apply_dp_line("ip=10.78.0.2/24", "test:1", cfg);
  apply_dp_line("allocations=1024", "test:2", cfg);
  apply_dp_line("channels=1024", "test:3", cfg);
  apply_dp_line("mbufs=2047", "test:4", cfg);
  cfg.interfaces[0].port_id = port;
  cfg.interfaces[0].exception_port = exception;
  finish_dp_config(cfg);
  return cfg;
}

// The learn ring holds Observations, not mbufs: its teardown once read
// them as mbuf pointers and crashed turn-dataplane's exit whenever a
// learned neighbour was still queued (an IPv6 benchmark run, 2026-12-03:
// SIGSEGV in rte_pktmbuf_free from Dataplane::~Dataplane).
TEST(Dataplane, ExitsWithObservationsAndFramesLeftInItsRings) {
  const DpConfig cfg = small_config(null_port("net_null_setup0"), null_port("net_null_setup1"));
  std::atomic<bool> quit{false};
  {
    Dataplane dp(cfg, 1, &quit);
    const WorkerContext& w = dp.workers().at(0);
    ASSERT_NE(w.learn, nullptr);
    for (int i = 0; i < 8; ++i) {
      Observation o{};
      std::memset(o.ip, 0xA0 + i, sizeof o.ip);  // would be a wild pointer if read as one
      std::memset(o.mac, 0x5A, sizeof o.mac);
      o.v6 = 1;
      ASSERT_EQ(rte_ring_mp_enqueue_elem(w.learn, &o, sizeof o), 0);
    }
    EXPECT_EQ(rte_ring_count(w.learn), 8u);
    // The inject ring does hold mbufs: those left there go back to the pool.
    ASSERT_NE(w.inject, nullptr);
    rte_mempool* pool = rte_mempool_lookup("dp_mbufs");
    ASSERT_NE(pool, nullptr);
    rte_mbuf* m = rte_pktmbuf_alloc(pool);
    ASSERT_NE(m, nullptr);
    ASSERT_EQ(rte_ring_enqueue(w.inject, m), 0);
  }  // ~Dataplane: no crash, nothing leaked into a freed pool
  SUCCEED();
}

}  // namespace
}  // namespace turn::dp
