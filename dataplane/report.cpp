// SPDX-License-Identifier: Apache-2.0
#include "dataplane/report.h"

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_telemetry.h>

#include <arpa/inet.h>

#include <cstdio>
#include <mutex>

#include "common/log/log.h"

namespace turn::dp {

namespace {

// DPDK's telemetry callbacks take no argument: what they read is here,
// under a lock the telemetry thread and the scope's end share (never the
// workers').
struct Shown {
  const Dataplane* dp = nullptr;
  const StateSync* sync = nullptr;
  const ServiceContext* service = nullptr;
};
std::mutex g_shown_mutex;
Shown g_shown;
bool g_registered = false;

std::string mac_text(const Mac& m) {
  char s[18];
  std::snprintf(s, sizeof s, "%02x:%02x:%02x:%02x:%02x:%02x", m.b[0], m.b[1], m.b[2], m.b[3], m.b[4], m.b[5]);
  return s;
}

std::string ip_text(uint32_t ip) {
  char s[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &ip, s, sizeof s);
  return s;
}

void add_u64(rte_tel_data* d, const std::string& key, uint64_t v) { rte_tel_data_add_dict_u64(d, key.c_str(), v); }

int telemetry_stats(const char*, const char*, rte_tel_data* d) {
  rte_tel_data_start_dict(d);
  const std::lock_guard lock(g_shown_mutex);
  if (!g_shown.dp) return 0;
  const Tables& t = g_shown.dp->tables();
  visit_counters(g_shown.dp->totals(), [d](CounterKind k, std::string_view key, uint64_t v) {
    add_u64(d, std::string(flat_prefix(k)).append(key), v);
  });
  add_u64(d, "allocations", t.allocation_count());
  add_u64(d, "channels", t.channel_count());
  add_u64(d, "permissions", t.permission_count());
  add_u64(d, "neighbours", t.neighbours());
  add_u64(d, "neighbour_probes", g_shown.service->probes_sent);
  const SyncStats& s = g_shown.sync->stats();
  add_u64(d, "sync_connected", s.connected.load());
  add_u64(d, "sync_events", s.events.load());
  add_u64(d, "sync_lag_ms", s.lag_ms.load());
  add_u64(d, "sync_snapshot_us", s.last_snapshot_us.load());
  add_u64(d, "sync_snapshots", s.snapshots.load());
  add_u64(d, "sync_disconnects", s.disconnects.load());
  add_u64(d, "sync_kept_unconfirmed", s.kept_unconfirmed.load());
  add_u64(d, "sync_snapshot_dropped", s.snapshot_dropped.load());
  add_u64(d, "sync_unconfirmed", s.unconfirmed.load());
  add_u64(d, "sync_bad_events", s.bad_events.load());
  add_u64(d, "sync_skipped", s.skipped.load());        // records the fast path cannot take (TCP/TLS, no relay)
  add_u64(d, "sync_table_full", s.table_full.load());  // records a full table could not take
  return 0;
}

int telemetry_workers(const char*, const char*, rte_tel_data* d) {
  rte_tel_data_start_dict(d);
  const std::lock_guard lock(g_shown_mutex);
  if (!g_shown.dp) return 0;
  for (const WorkerContext& w : g_shown.dp->workers()) {
    const std::string p = "worker" + std::to_string(w.worker_id) + "_";
    add_u64(d, p + "rx_packets", w.counters->rx_packets);
    add_u64(d, p + "tx_packets", w.counters->tx_packets);
    add_u64(d, p + "busy_polls", w.counters->busy_polls);
    add_u64(d, p + "idle_polls", w.counters->idle_polls);
    add_u64(d, p + "idle_sleeps", w.counters->idle_sleeps);
    add_u64(d, p + "busy_cycles", w.counters->busy_cycles);
    add_u64(d, p + "total_cycles", rte_rdtsc() - w.counters->start_tsc);
  }
  add_u64(d, "tsc_hz", rte_get_tsc_hz());
  return 0;
}

// Per port: the ethdev counters of the network port and of its exception
// port, with what the port is.
int telemetry_ports(const char*, const char*, rte_tel_data* d) {
  rte_tel_data_start_dict(d);
  const std::lock_guard lock(g_shown_mutex);
  if (!g_shown.dp) return 0;
  const auto& ports = g_shown.dp->ports();
  for (size_t i = 0; i < ports.size(); ++i) {
    const PortReport& r = ports[i];
    const std::string p = "port" + std::to_string(i) + "_";
    rte_tel_data_add_dict_string(d, (p + "name").c_str(), r.name.c_str());
    rte_tel_data_add_dict_string(d, (p + "mac").c_str(), mac_text(r.mac).c_str());
    rte_tel_data_add_dict_string(d, (p + "ip").c_str(), ip_text(r.ip).c_str());
    rte_tel_data_add_dict_string(d, (p + "exception").c_str(), r.tap_name.c_str());
    add_u64(d, p + "checksum_offload", r.checksum_offload ? 1 : 0);
    rte_eth_stats st{};
    if (rte_eth_stats_get(r.port, &st) == 0) {
      add_u64(d, p + "rx_packets", st.ipackets);
      add_u64(d, p + "tx_packets", st.opackets);
      add_u64(d, p + "rx_bytes", st.ibytes);
      add_u64(d, p + "tx_bytes", st.obytes);
      add_u64(d, p + "rx_missed", st.imissed);
      add_u64(d, p + "rx_errors", st.ierrors);
      add_u64(d, p + "tx_errors", st.oerrors);
      add_u64(d, p + "rx_nombuf", st.rx_nombuf);
    }
    if (r.ring_drops->sockets() > 0) {  // net_af_packet: what the kernel's rx rings could not take
      const RingDrops::Figures f = r.ring_drops->read();
      add_u64(d, p + "af_packet_rx_drops", f.drops);
      add_u64(d, p + "af_packet_rx_offered", f.packets);
    }
    if (rte_eth_stats_get(r.tap, &st) == 0) {
      add_u64(d, p + "exception_rx_packets", st.ipackets);
      add_u64(d, p + "exception_tx_packets", st.opackets);
    }
  }
  return 0;
}

}  // namespace

TelemetryScope::TelemetryScope(const Dataplane& dp, const StateSync& sync, const ServiceContext& service) {
  {
    const std::lock_guard lock(g_shown_mutex);
    g_shown = {&dp, &sync, &service};
  }
  if (g_registered) return;
  g_registered = true;
  rte_telemetry_register_cmd("/dpturn/stats", telemetry_stats,
                             "dpturn data plane totals: paths, drops, punts, tables, sync");
  rte_telemetry_register_cmd("/dpturn/workers", telemetry_workers,
                             "dpturn per-worker counters and load (busy/total TSC cycles)");
  rte_telemetry_register_cmd("/dpturn/ports", telemetry_ports,
                             "dpturn ports: address, exception path, checksum offload, ethdev counters");
}

TelemetryScope::~TelemetryScope() {
  const std::lock_guard lock(g_shown_mutex);
  g_shown = {};
}

state::DataplaneStatus dataplane_status(const Dataplane& dp) {
  const CounterTotals t = dp.totals();
  state::DataplaneStatus s;
  s.rx_packets = t.rx_packets;
  s.tx_packets = t.tx_packets;
  visit_counters(t, [&s](CounterKind k, std::string_view key, uint64_t v) {
    switch (k) {
      case CounterKind::Total:
        break;  // the typed fields above
      case CounterKind::Path:
        s.paths.emplace_back(key, v);
        break;
      case CounterKind::Drop:
        s.drops.emplace_back(key, v);
        break;
      case CounterKind::Punt:
        s.punts.emplace_back(key, v);
        break;
    }
  });
  s.packets_to_peer = t.path(Path::ChannelDataToPeer) + t.path(Path::SendIndicationToPeer) + t.path(Path::Hairpin);
  s.packets_to_client =
      t.path(Path::PeerToClientChannelData) + t.path(Path::PeerToClientDataIndication) + t.path(Path::Hairpin);
  for (const PortReport& r : dp.ports()) {
    rte_eth_stats es{};
    if (rte_eth_stats_get(r.port, &es) == 0) s.rx_ring_drops += es.imissed;
    s.rx_ring_drops += r.ring_drops->read().drops;
  }
  for (const WorkerContext& w : dp.workers())
    s.workers.push_back({w.counters->rx_packets, w.counters->busy_polls, w.counters->idle_polls,
                         w.counters->busy_cycles, rte_rdtsc() - w.counters->start_tsc});
  s.tsc_hz = rte_get_tsc_hz();
  return s;
}

void print_startup(const Dataplane& dp, unsigned allocations) {
  for (const PortReport& r : dp.ports())
    log_info("port " + std::to_string(r.port) + " " + r.name + " (" + mac_text(r.mac) + ") " + ip_text(r.ip) +
             ", exception path " + r.tap_name + ", checksums " + (r.checksum_offload ? "offloaded" : "in software"));
  log_info(std::to_string(dp.ports().size()) + " port(s), " + std::to_string(dp.workers().size()) +
           " worker(s), tables for " + std::to_string(allocations) + " allocations");
}

std::string exit_report(const Dataplane& dp) {
  std::string s;
  visit_counters(dp.totals(), [&s](CounterKind k, std::string_view key, uint64_t v) {
    s.append(flat_prefix(k)).append(key).append("=").append(std::to_string(v)).append("\n");
  });
  uint64_t ring = 0;
  for (const PortReport& r : dp.ports()) ring += r.ring_drops->read().drops;
  s += "rx_ring_drops=" + std::to_string(ring) + "\n";  // af_packet rings: lost before a worker saw them
  s += "allocations=" + std::to_string(dp.tables().allocation_count()) + "\n";
  return s;
}

}  // namespace turn::dp
