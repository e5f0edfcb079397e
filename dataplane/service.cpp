// SPDX-License-Identifier: Apache-2.0
// The service loop (dataplane/service.h): neighbour learning and probes on
// the main lcore, off the packet path.
#include "dataplane/service.h"

#include <rte_cycles.h>
#include <rte_mbuf.h>
#include <rte_ring_elem.h>

#include <algorithm>
#include <cstring>

#include "dataplane/pipeline/neighbour_probe.h"

namespace turn::dp {

namespace {

void send_probes(ServiceContext& s, bool all) {
  for (const ProbeTarget& p : s.probes) {
    Mac known;
    bool have = p.v6 ? s.tables->neighbour(p.target6, known) : s.tables->neighbour(p.target, known);
    if (have && (!all || (!p.v6 && s.tables->is_static_neighbour(p.target)))) continue;
    rte_mbuf* m = rte_pktmbuf_alloc(s.pool);
    if (!m) return;
    auto* f = rte_pktmbuf_mtod(m, uint8_t*);
    size_t n = p.v6 ? write_neighbour_solicitation(f, p.mac, p.sender6, p.target6)
                    : write_arp_request(f, p.mac, p.sender, p.target);
    m->data_len = static_cast<uint16_t>(n);
    m->pkt_len = static_cast<uint32_t>(n);
    m->port = p.port;
    if (rte_ring_sp_enqueue(s.inject, m) == 0)
      ++s.probes_sent;
    else
      rte_pktmbuf_free(m);
  }
}

}  // namespace

void service_loop(ServiceContext& s) {
  Observation obs[32];
  const uint64_t hz = rte_get_tsc_hz();
  uint64_t next_probe = 0, next_refresh = rte_get_tsc_cycles() + 30 * hz;
  unsigned idle_us = 100;
  while (!s.quit->load(std::memory_order_relaxed)) {
    uint64_t now = rte_get_tsc_cycles();
    if (!s.probes.empty() && now >= next_probe) {
      bool all = now >= next_refresh;
      send_probes(s, all);
      next_probe = now + hz;
      if (all) next_refresh = now + 30 * hz;
    }
    unsigned got = rte_ring_sc_dequeue_burst_elem(s.learn, obs, sizeof(Observation), 32, nullptr);
    for (unsigned i = 0; i < got; ++i) {
      Mac mac;
      std::memcpy(mac.b, obs[i].mac, 6);
      if (obs[i].v6) {
        Ip6 ip;
        std::memcpy(ip.b, obs[i].ip, 16);
        s.tables->learn(ip, mac);
      } else {
        uint32_t ip;
        std::memcpy(&ip, obs[i].ip, 4);
        s.tables->learn(ip, mac);
      }
    }
    // The service core may idle: sleep 100 us after work, doubling while
    // idle up to 2 ms (learning a neighbour waits at most that long; probes
    // are due once a second). A fixed 100 us sleep cost 85 ms of CPU a
    // second in wake-ups alone: most of turn-dataplane's CPU at low load
    // (bench/RESULTS.md, dpturn vs coturn).
    if (got == 0) {
      rte_delay_us_sleep(idle_us);
      idle_us = std::min(idle_us * 2, 2000u);
    } else {
      idle_us = 100;
    }
  }
}

}  // namespace turn::dp
