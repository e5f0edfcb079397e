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
#include <vector>

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
  unsigned worker_id = 0;       // 0..n-1: RCU thread id and queue index
  uint8_t nports = 1;           // network ports (config order); each has an exception port
  uint16_t ports[kMaxPorts] = {};  // DPDK port ids facing the network
  uint16_t taps[kMaxPorts] = {};   // their exception ports (TAP): what one punts, the other sends out
  uint16_t queue = 0;           // this worker's rx/tx queue on every port and TAP
  uint16_t burst = 32;
  const Tables* tables = nullptr;
  rte_rcu_qsbr* qsbr = nullptr;
  rte_ring* learn = nullptr;    // Observations from punted frames -> service lcore
  rte_ring* inject = nullptr;   // worker 0 only: the service lcore's frames to send (mbuf->port = port index)
  PortContext pc;
  AllocCounters* alloc_counters = nullptr;  // this worker's, indexed by allocation slot
  WorkerCounters* counters = nullptr;
  const std::atomic<bool>* quit = nullptr;
};

// Runs until *ctx.quit; launched with rte_eal_remote_launch.
int worker_main(void* ctx);

// A next hop the service lcore asks for itself (neighbour_probe.h): the
// ports' gateways.
struct ProbeTarget {
  uint8_t port = 0;    // port index (config order)
  Mac mac{};           // its MAC
  bool v6 = false;
  uint32_t sender = 0, target = 0;  // IPv4, network order
  Ip6 sender6{}, target6{};
};

// The service loop on the main lcore: the neighbour table's single writer
// (fed by the workers' learn ring), and the neighbour prober: every second
// it asks for a probe target whose MAC is unknown, every 30 s for every
// target that is not configured statically (a router's MAC may change).
// Hands the frames to worker 0 (inject ring; mbuf->port = port index),
// which sends them on its own queue. Returns when *quit.
struct ServiceContext {
  Tables* tables = nullptr;
  rte_ring* learn = nullptr;
  const std::atomic<bool>* quit = nullptr;
  std::vector<ProbeTarget> probes;
  rte_mempool* pool = nullptr;
  rte_ring* inject = nullptr;
  uint64_t probes_sent = 0;  // (read racily by telemetry)
};
void service_loop(ServiceContext& s);

}  // namespace turn::dp
