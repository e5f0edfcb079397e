// SPDX-License-Identifier: Apache-2.0
// turn-dataplane's setup, off the packet path (it may throw; main() catches,
// prints and exits 1): the command line, and a Dataplane that owns what the
// workers run on (the mbuf pool, RCU, the tables, every port and its
// exception port, the rings, the workers' contexts and counters) and gives
// it back to DPDK in the right order, also when setup fails half way.
#pragma once

#include <rte_mempool.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/config.h"
#include "dataplane/service.h"
#include "dataplane/stats/counters.h"
#include "dataplane/stats/ring_drops.h"
#include "dataplane/table/tables.h"
#include "dataplane/worker.h"

namespace turn::dp {

// What the command line after EAL's options asks for. -c FILE and --key=value
// land in cfg (overrides after the file, whatever their order); the config is
// finished (finish_dp_config) unless the answer is Help; an instance id not
// given is the host's name.
enum class Action { Run, Help, CheckConfig };
Action parse_command_line(int argc, char** argv, DpConfig& cfg);  // throws DpConfigError
void print_usage();

// A started network port and its exception port, as telemetry, the exit
// report and the status in Redis show them.
struct PortReport {
  uint16_t port = 0, tap = 0;
  std::string name, tap_name;
  Mac mac{};
  uint32_t ip = 0;
  bool checksum_offload = false;
  std::shared_ptr<RingDrops> ring_drops;  // net_af_packet: the kernel ring's drops (no sockets otherwise)
};

class Dataplane {
 public:
  // Builds everything for `workers` workers (one per worker lcore, one
  // rx/tx queue pair each on every port); the workers stop when *quit.
  Dataplane(const DpConfig& cfg, unsigned workers, std::atomic<bool>* quit);
  // Stops launched workers (sets *quit, waits for them), then stops the
  // ports and frees the rest.
  ~Dataplane();
  Dataplane(const Dataplane&) = delete;
  Dataplane& operator=(const Dataplane&) = delete;

  void launch_workers();
  // Sets *quit and waits for the workers to leave their loops.
  void stop_workers();
  // The service lcore's context: the tables' neighbour writer and the
  // prober of every port's gateways (IPv4 and IPv6) and routes' next hops.
  [[nodiscard]] ServiceContext service_context(const DpConfig& cfg) const;

  [[nodiscard]] Tables& tables() noexcept { return *tables_; }
  [[nodiscard]] const Tables& tables() const noexcept { return *tables_; }
  [[nodiscard]] const std::vector<WorkerContext>& workers() const noexcept { return ctx_; }
  [[nodiscard]] const std::vector<PortReport>& ports() const noexcept { return ports_.list; }
  // Worker w's per-allocation counters (what StateSync sums per allocation).
  [[nodiscard]] std::vector<const AllocCounters*> alloc_counters() const;
  // Every worker's counters added up (read racily while they run, which
  // x86-64 keeps untorn).
  [[nodiscard]] CounterTotals totals() const;

 private:
  struct RteFree {
    void operator()(void* p) const;
  };
  struct PoolFree {
    void operator()(rte_mempool* p) const;
  };
  struct RingFree {  // a ring of values (the learn ring's Observations)
    void operator()(rte_ring* r) const;
  };
  struct MbufRingFree {  // a ring of mbufs: frees those left in it first
    void operator()(rte_ring* r) const;
  };
  static constexpr uint16_t kNoTap = UINT16_MAX;
  struct StartedPorts {  // stopped before the pool their queues draw from goes
    std::vector<PortReport> list;
    ~StartedPorts();
  };

  void build_routes(const DpConfig& cfg);
  PortContext start_ports(const DpConfig& cfg, uint16_t queues);
  void build_workers(const DpConfig& cfg, const PortContext& pc, unsigned workers);

  std::atomic<bool>* quit_;
  std::unique_ptr<rte_mempool, PoolFree> pool_;
  std::unique_ptr<rte_rcu_qsbr, RteFree> qsbr_;
  std::unique_ptr<Tables> tables_;
  StartedPorts ports_;
  std::unique_ptr<rte_ring, RingFree> learn_;
  std::unique_ptr<rte_ring, MbufRingFree> inject_;
  std::unique_ptr<WorkerCounters, RteFree> counters_;
  std::vector<std::unique_ptr<AllocCounters, RteFree>> alloc_counters_;
  std::vector<WorkerContext> ctx_;
  bool launched_ = false;
};

}  // namespace turn::dp
