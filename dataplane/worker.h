// SPDX-License-Identifier: Apache-2.0
// The worker loop and its immutable context. Built before the lcores are
// launched; afterwards a worker touches only its own context, its queues,
// the shared tables (read-only) and its own counters.
#pragma once

#include <rte_mempool.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>

#include <atomic>
#include <cstdint>

#include "dataplane/pipeline/fastpath.h"
#include "dataplane/stats/counters.h"
#include "dataplane/table/tables.h"

namespace turn::dp {

// A neighbour seen in a punted frame (worker -> service lcore, on an
// rte_ring of these elements).
struct Observation {
  uint8_t ip[16];  // IPv4 in the first 4 bytes (network order) unless v6
  uint8_t mac[6];
  uint8_t v6;
  uint8_t pad;
};
static_assert(sizeof(Observation) % 4 == 0);

struct alignas(64) WorkerContext {
  unsigned worker_id = 0;          // 0..n-1: RCU thread id and queue index
  uint8_t nports = 1;              // network ports (config order); each has an exception port
  uint16_t ports[kMaxPorts] = {};  // DPDK port ids facing the network
  uint16_t taps[kMaxPorts] = {};   // their exception ports (TAP): what one punts, the other sends out
  uint16_t queue = 0;              // this worker's rx/tx queue on every port and TAP
  uint16_t burst = 32;
  uint64_t tx_drain_tsc = 0;   // hold relayed frames up to this long for a fuller tx burst (tx-drain-us)
  uint32_t idle_sleep_us = 0;  // idle-sleep-us (dataplane/idle_sleep.h); 0: spin
  const Tables* tables = nullptr;
  rte_rcu_qsbr* qsbr = nullptr;
  rte_ring* learn = nullptr;   // Observations from punted frames -> service lcore
  rte_ring* inject = nullptr;  // worker 0 only: the service lcore's frames to send (mbuf->port = port index)
  PortContext pc;
  AllocCounters* alloc_counters = nullptr;  // this worker's, indexed by allocation slot
  WorkerCounters* counters = nullptr;
  const std::atomic<bool>* quit = nullptr;
};

// Runs until *ctx.quit; launched with rte_eal_remote_launch.
int worker_main(void* ctx);

}  // namespace turn::dp
