// SPDX-License-Identifier: Apache-2.0
// The main lcore's service loop: off the packet path (it may sleep), beside
// the workers (dataplane/worker.h).
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

#include "dataplane/worker.h"

namespace turn::dp {

// A next hop the service lcore asks for itself (neighbour_probe.h): the
// ports' gateways.
struct ProbeTarget {
  uint8_t port = 0;  // port index (config order)
  Mac mac{};         // its MAC
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
