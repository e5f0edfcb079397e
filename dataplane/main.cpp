// SPDX-License-Identifier: Apache-2.0
// turn-dataplane: the DPDK fast path for relayed TURN media.
//
//   turn-dataplane [EAL options] -- -c dataplane.conf [--key=value ...]
//
// The main lcore runs the service loop (neighbour learning); every other
// lcore is a worker with its own rx/tx queue. A sync
// thread feeds the tables from Redis. Setup code: may throw; main catches,
// prints and exits 1.
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>
#include <rte_telemetry.h>

#include <arpa/inet.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/state/records.h"
#include "dataplane/config.h"
#include "dataplane/port.h"
#include "dataplane/stats/ring_drops.h"
#include "dataplane/table/sync.h"
#include "dataplane/table/tables.h"
#include "dataplane/service.h"
#include "dataplane/worker.h"

using namespace turn::dp;
namespace state = turn::state;

namespace {

std::atomic<bool> g_quit{false};
void on_signal(int) { g_quit.store(true); }

// What telemetry and the exit report read (setup-time object, read-only
// for the callbacks; counters are read racily, which x86-64 keeps untorn).
struct PortReport {
  uint16_t port = 0, tap = 0;
  std::string name, tap_name;
  Mac mac{};
  uint32_t ip = 0;
  bool checksum_offload = false;
  std::shared_ptr<RingDrops> ring_drops;  // net_af_packet: the kernel ring's drops (no sockets otherwise)
};
struct Report {
  std::vector<WorkerContext>* workers = nullptr;
  Tables* tables = nullptr;
  StateSync* sync = nullptr;
  std::vector<PortReport> ports;
  const ServiceContext* service = nullptr;
};
Report g_report;

CounterTotals totals() {
  CounterTotals t;
  for (const auto& w : *g_report.workers) t.add(*w.counters);
  return t;
}

int telemetry_stats(const char*, const char*, rte_tel_data* d) {
  rte_tel_data_start_dict(d);
  visit_counters(totals(), [d](CounterKind k, std::string_view key, uint64_t v) {
    rte_tel_data_add_dict_u64(d, (std::string(flat_prefix(k)) + std::string(key)).c_str(), v);
  });
  rte_tel_data_add_dict_u64(d, "allocations", g_report.tables->allocation_count());
  rte_tel_data_add_dict_u64(d, "channels", g_report.tables->channel_count());
  rte_tel_data_add_dict_u64(d, "permissions", g_report.tables->permission_count());
  rte_tel_data_add_dict_u64(d, "neighbours", g_report.tables->neighbours());
  rte_tel_data_add_dict_u64(d, "neighbour_probes", g_report.service ? g_report.service->probes_sent : 0);
  const SyncStats& s = g_report.sync->stats();
  rte_tel_data_add_dict_u64(d, "sync_connected", s.connected.load());
  rte_tel_data_add_dict_u64(d, "sync_events", s.events.load());
  rte_tel_data_add_dict_u64(d, "sync_lag_ms", s.lag_ms.load());
  rte_tel_data_add_dict_u64(d, "sync_snapshot_us", s.last_snapshot_us.load());
  rte_tel_data_add_dict_u64(d, "sync_snapshots", s.snapshots.load());
  rte_tel_data_add_dict_u64(d, "sync_disconnects", s.disconnects.load());
  rte_tel_data_add_dict_u64(d, "sync_kept_unconfirmed", s.kept_unconfirmed.load());
  rte_tel_data_add_dict_u64(d, "sync_unconfirmed", s.unconfirmed.load());
  rte_tel_data_add_dict_u64(d, "sync_bad_events", s.bad_events.load());
  return 0;
}

int telemetry_workers(const char*, const char*, rte_tel_data* d) {
  rte_tel_data_start_dict(d);
  for (const auto& w : *g_report.workers) {
    std::string p = "worker" + std::to_string(w.worker_id) + "_";
    rte_tel_data_add_dict_u64(d, (p + "rx_packets").c_str(), w.counters->rx_packets);
    rte_tel_data_add_dict_u64(d, (p + "tx_packets").c_str(), w.counters->tx_packets);
    rte_tel_data_add_dict_u64(d, (p + "busy_polls").c_str(), w.counters->busy_polls);
    rte_tel_data_add_dict_u64(d, (p + "idle_polls").c_str(), w.counters->idle_polls);
    rte_tel_data_add_dict_u64(d, (p + "busy_cycles").c_str(), w.counters->busy_cycles);
    rte_tel_data_add_dict_u64(d, (p + "total_cycles").c_str(), rte_rdtsc() - w.counters->start_tsc);
  }
  rte_tel_data_add_dict_u64(d, "tsc_hz", rte_get_tsc_hz());
  return 0;
}

// Per port: the ethdev counters of the network port and of its exception
// port, with what the port is.
int telemetry_ports(const char*, const char*, rte_tel_data* d) {
  rte_tel_data_start_dict(d);
  for (size_t i = 0; i < g_report.ports.size(); ++i) {
    const PortReport& r = g_report.ports[i];
    std::string p = "port" + std::to_string(i) + "_";
    char mac[18], ip[INET_ADDRSTRLEN];
    std::snprintf(mac, sizeof mac, "%02x:%02x:%02x:%02x:%02x:%02x", r.mac.b[0], r.mac.b[1], r.mac.b[2], r.mac.b[3],
                  r.mac.b[4], r.mac.b[5]);
    inet_ntop(AF_INET, &r.ip, ip, sizeof ip);
    rte_tel_data_add_dict_string(d, (p + "name").c_str(), r.name.c_str());
    rte_tel_data_add_dict_string(d, (p + "mac").c_str(), mac);
    rte_tel_data_add_dict_string(d, (p + "ip").c_str(), ip);
    rte_tel_data_add_dict_string(d, (p + "exception").c_str(), r.tap_name.c_str());
    rte_tel_data_add_dict_u64(d, (p + "checksum_offload").c_str(), r.checksum_offload ? 1 : 0);
    rte_eth_stats st{};
    if (rte_eth_stats_get(r.port, &st) == 0) {
      rte_tel_data_add_dict_u64(d, (p + "rx_packets").c_str(), st.ipackets);
      rte_tel_data_add_dict_u64(d, (p + "tx_packets").c_str(), st.opackets);
      rte_tel_data_add_dict_u64(d, (p + "rx_bytes").c_str(), st.ibytes);
      rte_tel_data_add_dict_u64(d, (p + "tx_bytes").c_str(), st.obytes);
      rte_tel_data_add_dict_u64(d, (p + "rx_missed").c_str(), st.imissed);
      rte_tel_data_add_dict_u64(d, (p + "rx_errors").c_str(), st.ierrors);
      rte_tel_data_add_dict_u64(d, (p + "tx_errors").c_str(), st.oerrors);
      rte_tel_data_add_dict_u64(d, (p + "rx_nombuf").c_str(), st.rx_nombuf);
    }
    if (r.ring_drops->sockets() > 0) {  // net_af_packet: what the kernel's rx rings could not take
      const RingDrops::Figures f = r.ring_drops->read();
      rte_tel_data_add_dict_u64(d, (p + "af_packet_rx_drops").c_str(), f.drops);
      rte_tel_data_add_dict_u64(d, (p + "af_packet_rx_offered").c_str(), f.packets);
    }
    if (rte_eth_stats_get(r.tap, &st) == 0) {
      rte_tel_data_add_dict_u64(d, (p + "exception_rx_packets").c_str(), st.ipackets);
      rte_tel_data_add_dict_u64(d, (p + "exception_tx_packets").c_str(), st.opackets);
    }
  }
  return 0;
}

std::string port_name(uint16_t port) {
  char name[RTE_ETH_NAME_MAX_LEN] = {};
  rte_eth_dev_get_name_by_port(port, name);
  return name;
}

std::string report_text() {
  std::string s;
  visit_counters(totals(), [&s](CounterKind k, std::string_view key, uint64_t v) {
    s.append(flat_prefix(k)).append(key).append("=").append(std::to_string(v)).append("\n");
  });
  uint64_t ring = 0;
  for (const PortReport& r : g_report.ports) ring += r.ring_drops->read().drops;
  s += "rx_ring_drops=" + std::to_string(ring) + "\n";  // af_packet rings: lost before a worker saw them
  s += "allocations=" + std::to_string(g_report.tables->allocation_count()) + "\n";
  return s;
}

void usage() {
  std::puts(
      "usage: turn-dataplane [EAL options] -- -c FILE [--key=value ...]\n"
      "  EAL options: cores (-l 0-2: the first is the service core, the rest workers),\n"
      "               devices (-a PCI or --vdev=net_af_packet0,iface=eth0), --in-memory, ...\n"
      "  -c FILE      dataplane config (docs/dataplane.md)\n"
      "  --check-config  validate and exit");
}

}  // namespace

int main(int argc, char** argv) {
  int eal = rte_eal_init(argc, argv);
  if (eal < 0) {
    std::fprintf(
        stderr,
        "turn-dataplane: EAL initialisation failed: %s (hugepages reserved? cores valid? see docs/dataplane.md)\n",
        rte_strerror(rte_errno));
    return 1;
  }
  argc -= eal;
  argv += eal;
  DpConfig cfg;
  bool check_only = false;
  int rc = 0;
  try {
    std::vector<std::string> overrides;
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      if (a == "-h" || a == "--help") {
        usage();
        rte_eal_cleanup();
        return 0;
      }
      if (a == "--check-config")
        check_only = true;
      else if (a == "-c" && i + 1 < argc)
        load_dp_config(argv[++i], cfg);
      else if (a.rfind("--", 0) == 0)
        overrides.push_back(a);
      else
        throw DpConfigError("command line: unexpected argument '" + a + "'");
    }
    for (const auto& o : overrides) apply_dp_line(o, "command line", cfg);
    finish_dp_config(cfg);
    unsigned workers = rte_lcore_count() - 1;
    if (workers == 0) throw DpConfigError("needs at least 2 lcores (EAL -l 0-1): one service core and one worker");
    if (check_only) {
      std::puts("config ok");
      rte_eal_cleanup();
      return 0;
    }

    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    int socket = static_cast<int>(rte_socket_id());
    rte_mempool* pool = rte_pktmbuf_pool_create("dp_mbufs", cfg.mbufs, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, socket);
    if (!pool)
      throw std::runtime_error(std::string("mbuf pool: ") + rte_strerror(rte_errno) + " (not enough hugepage memory?)");
    size_t qsz = rte_rcu_qsbr_get_memsize(workers);
    auto* qsbr = static_cast<rte_rcu_qsbr*>(rte_zmalloc("dp_qsbr", qsz, RTE_CACHE_LINE_SIZE));
    if (!qsbr || rte_rcu_qsbr_init(qsbr, workers) != 0) throw std::runtime_error("RCU QSBR init failed");
    auto tables = std::make_unique<Tables>(TableSizes{cfg.allocations, cfg.channels}, qsbr, socket);
    std::vector<RouteTable::Link> links;
    std::vector<RouteTable::Route> routes;
    for (const DpInterface& i : cfg.interfaces) links.push_back({i.ip, i.netmask, i.gateway});
    for (const DpRoute& r : cfg.routes) routes.push_back({r.net, r.netmask, r.gateway});
    RouteTable rt;
    rt.set(links, routes);
    std::vector<RouteTable6::Link> links6;
    for (const DpInterface& i : cfg.interfaces) {
      RouteTable6::Link l;
      l.present = i.has_ip6;
      l.ip = i.ip6;
      l.bits = i.prefix6;
      l.gateway = i.gateway6;
      links6.push_back(l);
    }
    RouteTable6 rt6;
    rt6.set(links6);
    tables->set_routes(rt, rt6);

    // Every port and its exception port, one queue pair per worker each.
    const auto nq = static_cast<uint16_t>(workers);
    PortContext pc;
    for (size_t i = 0; i < cfg.interfaces.size(); ++i) {
      const DpInterface& in = cfg.interfaces[i];
      PortReport r;
      r.port = in.port_id;
      r.ip = in.ip;
      r.checksum_offload = start_port(in.port_id, nq, nq, pool, cfg.checksum_offload);
      r.mac = port_mac(in.port_id);
      r.name = port_name(in.port_id);
      rte_eth_dev_info info{};
      r.ring_drops = std::make_shared<RingDrops>(rte_eth_dev_info_get(in.port_id, &info) == 0 ? info.if_index : 0);
      if (in.exception_port >= 0) {
        r.tap = static_cast<uint16_t>(in.exception_port);
        start_port(r.tap, nq, nq, pool);
        r.tap_name = "port " + std::to_string(r.tap) + " (" + port_name(r.tap) + ")";
      } else {
        r.tap = create_tap(in.tap_name, r.mac, nq, pool);
        r.tap_name = in.tap_name;
      }
      pc.macs[i] = r.mac;
      pc.local4.add(in.ip);
      if (in.has_ip6) pc.local6.add(in.ip6);
      if (r.checksum_offload) pc.csum_offload = static_cast<uint8_t>(pc.csum_offload | (1u << i));
      g_report.ports.push_back(r);
    }
    for (const auto& [nip, nmac] : cfg.neighbours) tables->set_static_neighbour(nip, nmac);
    rte_ring* learn = rte_ring_create_elem("dp_learn", sizeof(Observation), 4096, socket, RING_F_SC_DEQ);
    if (!learn) throw std::runtime_error("learn ring: " + std::string(rte_strerror(rte_errno)));
    // The service lcore's own frames (neighbour probes) leave through worker 0's queues.
    rte_ring* inject = rte_ring_create("dp_inject", 64, socket, RING_F_SP_ENQ | RING_F_SC_DEQ);
    if (!inject) throw std::runtime_error("inject ring: " + std::string(rte_strerror(rte_errno)));

    for (size_t i = 0; i < cfg.turn_ports.size() && i < 4; ++i) pc.turn_ports[i] = htons(cfg.turn_ports[i]);
    pc.relay_min = cfg.min_port;
    pc.relay_max = cfg.max_port;
    pc.max_channel = cfg.legacy_channel_range ? turn::kMaxLegacyChannel : turn::kMaxChannel;
    for (uint32_t ip : cfg.floating_ips) pc.local4.add(ip);  // relay4 has them (finish_dp_config)
    for (uint32_t ip : cfg.relay_ips) pc.relay4.add(ip);     // finish_dp_config allows kMaxRelayAddresses
    for (const Ip6& ip6 : cfg.relay_ips6) pc.relay6.add(ip6);

    auto* wcounters = static_cast<WorkerCounters*>(rte_zmalloc("dp_wcounters", sizeof(WorkerCounters) * workers, 64));
    std::vector<WorkerContext> ctx(workers);
    std::vector<const AllocCounters*> alloc_counters;
    unsigned w = 0;
    unsigned lcore;
    RTE_LCORE_FOREACH_WORKER(lcore) {
      WorkerContext& c = ctx[w];
      c.worker_id = w;
      c.nports = static_cast<uint8_t>(g_report.ports.size());
      for (size_t i = 0; i < g_report.ports.size(); ++i) {
        c.ports[i] = g_report.ports[i].port;
        c.taps[i] = g_report.ports[i].tap;
      }
      c.queue = static_cast<uint16_t>(w);
      c.burst = cfg.burst;
      c.tables = tables.get();
      c.qsbr = qsbr;
      c.learn = learn;
      c.inject = w == 0 ? inject : nullptr;
      c.pc = pc;
      c.alloc_counters =
          static_cast<AllocCounters*>(rte_zmalloc_socket("dp_acounters", sizeof(AllocCounters) * cfg.allocations, 64,
                                                         static_cast<int>(rte_lcore_to_socket_id(lcore))));
      if (!c.alloc_counters) throw std::runtime_error("per-worker counters: out of hugepage memory");
      alloc_counters.push_back(c.alloc_counters);
      c.counters = &wcounters[w];
      c.quit = &g_quit;
      ++w;
    }

    if (cfg.instance_id.empty()) {
      char host[256] = {};
      gethostname(host, sizeof host - 1);
      cfg.instance_id = host;
    }
    StateSync sync({cfg.store, cfg.instance_id}, *tables, alloc_counters);
    sync.set_stats_provider([&] {
      // Runs on the sync thread; the sync thread adds its own figures.
      const CounterTotals t = totals();
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
      for (const PortReport& r : g_report.ports) {
        rte_eth_stats es{};
        if (rte_eth_stats_get(r.port, &es) == 0) s.rx_ring_drops += es.imissed;
        s.rx_ring_drops += r.ring_drops->read().drops;
      }
      for (const auto& wc : ctx)
        s.workers.push_back({wc.counters->rx_packets, wc.counters->busy_polls, wc.counters->idle_polls,
                             wc.counters->busy_cycles, rte_rdtsc() - wc.counters->start_tsc});
      s.tsc_hz = rte_get_tsc_hz();
      return s;
    });
    g_report.workers = &ctx;
    g_report.tables = tables.get();
    g_report.sync = &sync;
    rte_telemetry_register_cmd("/dpturn/stats", telemetry_stats,
                               "dpturn data plane totals: paths, drops, punts, tables, sync");
    rte_telemetry_register_cmd("/dpturn/workers", telemetry_workers,
                               "dpturn per-worker counters and load (busy/total TSC cycles)");
    rte_telemetry_register_cmd("/dpturn/ports", telemetry_ports,
                               "dpturn ports: address, exception path, checksum offload, ethdev counters");
    sync.start();
    if (!sync.wait_ready(5000))
      std::fprintf(stderr,
                   "turn-dataplane: state store (%s) not reachable yet; forwarding starts when it is (new flows go to "
                   "the kernel path meanwhile)\n",
                   cfg.store.describe().c_str());

    w = 0;
    RTE_LCORE_FOREACH_WORKER(lcore) {
      rte_eal_remote_launch(worker_main, &ctx[w], lcore);
      ++w;
    }
    for (const PortReport& r : g_report.ports) {
      char ip[INET_ADDRSTRLEN];
      inet_ntop(AF_INET, &r.ip, ip, sizeof ip);
      std::fprintf(stderr,
                   "turn-dataplane: port %u %s (%02x:%02x:%02x:%02x:%02x:%02x) %s, exception path %s, checksums %s\n",
                   r.port, r.name.c_str(), r.mac.b[0], r.mac.b[1], r.mac.b[2], r.mac.b[3], r.mac.b[4], r.mac.b[5], ip,
                   r.tap_name.c_str(), r.checksum_offload ? "offloaded" : "in software");
    }
    std::fprintf(stderr, "turn-dataplane: %zu port(s), %u worker(s), tables for %u allocations\n",
                 g_report.ports.size(), workers, cfg.allocations);
    ServiceContext svc{tables.get(), learn, &g_quit, {}, pool, inject, 0};
    for (size_t i = 0; i < cfg.interfaces.size(); ++i) {
      const DpInterface& in = cfg.interfaces[i];
      const PortReport& r = g_report.ports[i];
      auto probe4 = [&](uint32_t gw) {
        ProbeTarget p;
        p.port = static_cast<uint8_t>(i);
        p.mac = r.mac;
        p.sender = in.ip;
        p.target = gw;
        svc.probes.push_back(p);
      };
      if (in.gateway) probe4(in.gateway);
      for (const DpRoute& route : cfg.routes)
        if (((route.gateway ^ in.ip) & in.netmask) == 0) probe4(route.gateway);
      if (in.has_ip6 && !(in.gateway6 == Ip6{})) {
        ProbeTarget p;
        p.port = static_cast<uint8_t>(i);
        p.mac = r.mac;
        p.v6 = true;
        p.sender6 = in.ip6;
        p.target6 = in.gateway6;
        svc.probes.push_back(p);
      }
    }
    g_report.service = &svc;
    service_loop(svc);

    // Graceful stop: workers leave their loops, then queues are drained by stopping the ports.
    rte_eal_mp_wait_lcore();
    sync.stop();
    std::string rep = report_text();
    std::fprintf(stderr, "turn-dataplane: stopping\n%s", rep.c_str());
    if (!cfg.stats_file.empty()) std::ofstream(cfg.stats_file) << rep;
    for (const PortReport& r : g_report.ports) {
      stop_port(r.port);
      stop_port(r.tap);
    }
    tables.reset();
    for (auto* c : alloc_counters) rte_free(const_cast<AllocCounters*>(c));
    rte_free(wcounters);
    rte_ring_free(learn);
    void* left = nullptr;
    while (rte_ring_dequeue(inject, &left) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(left));
    rte_ring_free(inject);
    rte_free(qsbr);
    rte_mempool_free(pool);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "turn-dataplane: %s\n", e.what());
    g_quit = true;
    rte_eal_mp_wait_lcore();
    rc = 1;
  }
  rte_eal_cleanup();
  return rc;
}
