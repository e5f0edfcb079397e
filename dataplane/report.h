// SPDX-License-Identifier: Apache-2.0
// What turn-dataplane shows of itself, each under the counters' one set of
// names (dataplane/stats/counters.h): the DPDK telemetry commands
// (/dpturn/stats, /dpturn/workers, /dpturn/ports), the status it publishes
// in Redis (dpturn:dataplane:<instance>), the start-up lines and the exit
// report. Off the packet path.
#pragma once

#include <string>

#include "common/state/records.h"
#include "dataplane/service.h"
#include "dataplane/setup.h"
#include "dataplane/table/sync.h"

namespace turn::dp {

// The telemetry commands read these objects while the scope lives; they are
// registered once per process (DPDK cannot unregister them) and answer
// with an empty dictionary before and after.
class TelemetryScope {
 public:
  TelemetryScope(const Dataplane& dp, const StateSync& sync, const ServiceContext& service);
  ~TelemetryScope();
  TelemetryScope(const TelemetryScope&) = delete;
  TelemetryScope& operator=(const TelemetryScope&) = delete;
};

// The status the sync thread publishes every second (it adds its own figures).
[[nodiscard]] state::DataplaneStatus dataplane_status(const Dataplane& dp);
// One line per port and one for the whole, in the log.
void print_startup(const Dataplane& dp, unsigned allocations);
// key=value lines: every counter, the af_packet ring drops, the allocations.
[[nodiscard]] std::string exit_report(const Dataplane& dp);

}  // namespace turn::dp
