// SPDX-License-Identifier: Apache-2.0
// turn-dataplane: the DPDK fast path for relayed TURN media.
//
//   turn-dataplane [EAL options] -- -c dataplane.conf [--key=value ...]
//
// The main lcore runs the service loop (neighbour learning); every other
// lcore is a worker with its own rx/tx queue (dataplane/worker.h). A sync
// thread feeds the tables from Redis (dataplane/table/sync.h). What they run
// on is built by dataplane/setup.h; setup may throw: main catches, prints
// and exits 1.
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <stdexcept>

#include "common/log/log.h"
#include "dataplane/report.h"
#include "dataplane/setup.h"

using namespace turn::dp;

namespace {
std::atomic<bool> g_quit{false};
void on_signal(int) { g_quit.store(true); }
}  // namespace

int main(int argc, char** argv) {
  const int eal = rte_eal_init(argc, argv);
  if (eal < 0) {
    turn::log_error(std::string("turn-dataplane: EAL initialisation failed: ") + rte_strerror(rte_errno) +
                    " (hugepages reserved? cores valid? see docs/dataplane.md)");
    return 1;
  }
  int rc = 0;
  try {
    DpConfig cfg;
    const Action action = parse_command_line(argc - eal, argv + eal, cfg);
    const unsigned workers = rte_lcore_count() - 1;
    if (action == Action::Help) print_usage();
    if (action != Action::Help && workers == 0)
      throw DpConfigError("needs at least 2 lcores (EAL -l 0-1): one service core and one worker");
    if (action == Action::CheckConfig) std::puts("config ok");
    if (action == Action::Run) {
      std::signal(SIGINT, on_signal);
      std::signal(SIGTERM, on_signal);
      Dataplane dp(cfg, workers, &g_quit);
      StateSync sync({cfg.store, cfg.instance_id}, dp.tables(), dp.alloc_counters());
      sync.set_stats_provider([&dp] { return dataplane_status(dp); });  // on the sync thread
      ServiceContext service = dp.service_context(cfg);
      const TelemetryScope telemetry(dp, sync, service);
      sync.start();
      if (!sync.wait_ready(5000))
        turn::log_warn("state store (" + cfg.store.describe() +
                       ") not reachable yet; forwarding starts when it is (new flows go to the kernel path meanwhile)");
      dp.launch_workers();
      print_startup(dp, cfg.allocations);
      service_loop(service);  // until SIGINT or SIGTERM
      // Graceful stop: the workers leave their loops, the sync thread ends,
      // then the report; the ports stop as dp goes.
      dp.stop_workers();
      sync.stop();
      const std::string report = exit_report(dp);
      turn::log_info("stopping\n" + report);
      if (!cfg.stats_file.empty()) std::ofstream(cfg.stats_file) << report;
    }
  } catch (const std::exception& e) {
    turn::log_error(std::string("turn-dataplane: ") + e.what());
    rc = 1;
  }
  rte_eal_cleanup();
  return rc;
}
