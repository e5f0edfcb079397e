// SPDX-License-Identifier: Apache-2.0
#include "dataplane/setup.h"

#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>

#include <arpa/inet.h>
#include <unistd.h>

#include <cstdio>
#include <stdexcept>

#include "dataplane/port.h"

namespace turn::dp {

namespace {

std::string port_name(uint16_t port) {
  char name[RTE_ETH_NAME_MAX_LEN] = {};
  rte_eth_dev_get_name_by_port(port, name);
  return name;
}

std::runtime_error dpdk_error(const std::string& what) {
  return std::runtime_error(what + ": " + rte_strerror(rte_errno));
}

}  // namespace

void print_usage() {
  std::puts(
      "usage: turn-dataplane [EAL options] -- -c FILE [--key=value ...]\n"
      "  EAL options: cores (-l 0-2: the first is the service core, the rest workers),\n"
      "               devices (-a PCI or --vdev=net_af_packet0,iface=eth0), --in-memory, ...\n"
      "  -c FILE      dataplane config (docs/dataplane.md)\n"
      "  --check-config  validate and exit");
}

Action parse_command_line(int argc, char** argv, DpConfig& cfg) {
  Action action = Action::Run;
  std::vector<std::string> overrides;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") return Action::Help;
    if (a == "--check-config")
      action = Action::CheckConfig;
    else if (a == "-c" && i + 1 < argc)
      load_dp_config(argv[++i], cfg);
    else if (a.rfind("--", 0) == 0)
      overrides.push_back(a);
    else
      throw DpConfigError("command line: unexpected argument '" + a + "'");
  }
  for (const auto& o : overrides) apply_dp_line(o, "command line", cfg);
  finish_dp_config(cfg);
  if (cfg.instance_id.empty()) {
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    cfg.instance_id = host;
  }
  return action;
}

void Dataplane::RteFree::operator()(void* p) const { rte_free(p); }
void Dataplane::PoolFree::operator()(rte_mempool* p) const { rte_mempool_free(p); }
void Dataplane::RingFree::operator()(rte_ring* r) const { rte_ring_free(r); }
// Not for an element ring: rte_ring_dequeue reads pointers, and an
// Observation left in the learn ring read as one crashed the exit.
void Dataplane::MbufRingFree::operator()(rte_ring* r) const {
  void* left = nullptr;
  while (rte_ring_dequeue(r, &left) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(left));
  rte_ring_free(r);
}
Dataplane::StartedPorts::~StartedPorts() {
  for (const PortReport& r : list) {
    stop_port(r.port);
    if (r.tap != kNoTap) stop_port(r.tap);
  }
}

Dataplane::Dataplane(const DpConfig& cfg, unsigned workers, std::atomic<bool>* quit) : quit_(quit) {
  const int socket = static_cast<int>(rte_socket_id());
  pool_.reset(rte_pktmbuf_pool_create("dp_mbufs", cfg.mbufs, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, socket));
  if (!pool_) throw dpdk_error("mbuf pool of " + std::to_string(cfg.mbufs) + " (not enough hugepage memory?)");
  qsbr_.reset(
      static_cast<rte_rcu_qsbr*>(rte_zmalloc("dp_qsbr", rte_rcu_qsbr_get_memsize(workers), RTE_CACHE_LINE_SIZE)));
  if (!qsbr_ || rte_rcu_qsbr_init(qsbr_.get(), workers) != 0) throw std::runtime_error("RCU QSBR init failed");
  tables_ = std::make_unique<Tables>(TableSizes{cfg.allocations, cfg.channels}, qsbr_.get(), socket);
  build_routes(cfg);
  const PortContext pc = start_ports(cfg, static_cast<uint16_t>(workers));
  for (const auto& [ip, mac] : cfg.neighbours) tables_->set_static_neighbour(ip, mac);
  learn_.reset(rte_ring_create_elem("dp_learn", sizeof(Observation), 4096, socket, RING_F_SC_DEQ));
  if (!learn_) throw dpdk_error("learn ring");
  // The service lcore's own frames (neighbour probes) leave through worker 0's queues.
  inject_.reset(rte_ring_create("dp_inject", 64, socket, RING_F_SP_ENQ | RING_F_SC_DEQ));
  if (!inject_) throw dpdk_error("inject ring");
  build_workers(cfg, pc, workers);
}

Dataplane::~Dataplane() { stop_workers(); }  // the members go only once no worker reads them

void Dataplane::stop_workers() {
  if (!launched_) return;
  quit_->store(true);  // already so after the service loop; not when setup failed after the launch
  rte_eal_mp_wait_lcore();
  launched_ = false;
}

void Dataplane::build_routes(const DpConfig& cfg) {
  std::vector<RouteTable::Link> links;
  std::vector<RouteTable::Route> routes;
  std::vector<RouteTable6::Link> links6;
  for (const DpInterface& i : cfg.interfaces) {
    links.push_back({i.ip, i.netmask, i.gateway});
    RouteTable6::Link l;
    l.present = i.has_ip6;
    l.ip = i.ip6;
    l.bits = i.prefix6;
    l.gateway = i.gateway6;
    links6.push_back(l);
  }
  for (const DpRoute& r : cfg.routes) routes.push_back({r.net, r.netmask, r.gateway});
  RouteTable rt;
  rt.set(links, routes);
  RouteTable6 rt6;
  rt6.set(links6);
  tables_->set_routes(rt, rt6);
}

// Every port and its exception port, one queue pair per worker each; the
// addresses the pipeline treats as its own.
PortContext Dataplane::start_ports(const DpConfig& cfg, uint16_t queues) {
  PortContext pc;
  for (size_t i = 0; i < cfg.interfaces.size(); ++i) {
    const DpInterface& in = cfg.interfaces[i];
    PortReport r;
    r.port = in.port_id;
    r.ip = in.ip;
    r.checksum_offload = start_port(in.port_id, queues, queues, pool_.get(), cfg.checksum_offload);
    r.mac = port_mac(in.port_id);
    r.name = port_name(in.port_id);
    rte_eth_dev_info info{};
    r.ring_drops = std::make_shared<RingDrops>(rte_eth_dev_info_get(in.port_id, &info) == 0 ? info.if_index : 0);
    r.tap = kNoTap;            // until it has started
    ports_.list.push_back(r);  // stopped from here on if a later step throws
    PortReport& added = ports_.list.back();
    if (in.exception_port >= 0) {
      added.tap = static_cast<uint16_t>(in.exception_port);
      start_port(added.tap, queues, queues, pool_.get());
      added.tap_name = "port " + std::to_string(added.tap) + " (" + port_name(added.tap) + ")";
    } else {
      added.tap = create_tap(in.tap_name, added.mac, queues, pool_.get());
      added.tap_name = in.tap_name;
    }
    pc.macs[i] = added.mac;
    pc.local4.add(in.ip);
    if (in.has_ip6) pc.local6.add(in.ip6);
    if (added.checksum_offload) pc.csum_offload = static_cast<uint8_t>(pc.csum_offload | (1u << i));
  }
  for (size_t i = 0; i < cfg.turn_ports.size() && i < 4; ++i) pc.turn_ports[i] = htons(cfg.turn_ports[i]);
  pc.relay_min = cfg.min_port;
  pc.relay_max = cfg.max_port;
  pc.max_channel = cfg.legacy_channel_range ? turn::kMaxLegacyChannel : turn::kMaxChannel;
  for (uint32_t ip : cfg.floating_ips) pc.local4.add(ip);  // relay4 has them (finish_dp_config)
  for (uint32_t ip : cfg.relay_ips) pc.relay4.add(ip);     // finish_dp_config allows kMaxRelayAddresses
  for (const Ip6& ip6 : cfg.relay_ips6) pc.relay6.add(ip6);
  return pc;
}

void Dataplane::build_workers(const DpConfig& cfg, const PortContext& pc, unsigned workers) {
  counters_.reset(static_cast<WorkerCounters*>(rte_zmalloc("dp_wcounters", sizeof(WorkerCounters) * workers, 64)));
  if (!counters_) throw std::runtime_error("worker counters: out of hugepage memory");
  ctx_.resize(workers);
  unsigned w = 0;
  unsigned lcore;
  RTE_LCORE_FOREACH_WORKER(lcore) {
    if (w == workers) break;
    WorkerContext& c = ctx_[w];
    c.worker_id = w;
    c.nports = static_cast<uint8_t>(ports_.list.size());
    for (size_t i = 0; i < ports_.list.size(); ++i) {
      c.ports[i] = ports_.list[i].port;
      c.taps[i] = ports_.list[i].tap;
    }
    c.queue = static_cast<uint16_t>(w);
    c.burst = cfg.burst;
    c.tx_drain_tsc = cfg.tx_drain_us * rte_get_tsc_hz() / 1000000;
    c.idle_sleep_us = cfg.idle_sleep_us;
    c.tables = tables_.get();
    c.qsbr = qsbr_.get();
    c.learn = learn_.get();
    c.inject = w == 0 ? inject_.get() : nullptr;
    c.pc = pc;
    alloc_counters_.emplace_back(static_cast<AllocCounters*>(rte_zmalloc_socket(
        "dp_acounters", sizeof(AllocCounters) * cfg.allocations, 64, static_cast<int>(rte_lcore_to_socket_id(lcore)))));
    c.alloc_counters = alloc_counters_.back().get();
    if (!c.alloc_counters) throw std::runtime_error("per-allocation counters: out of hugepage memory");
    c.counters = &counters_.get()[w];
    c.quit = quit_;
    ++w;
  }
  if (w != workers) throw std::runtime_error("fewer worker lcores than workers");
}

void Dataplane::launch_workers() {
  unsigned w = 0;
  unsigned lcore;
  RTE_LCORE_FOREACH_WORKER(lcore) {
    if (w == ctx_.size()) break;
    if (rte_eal_remote_launch(worker_main, &ctx_[w], lcore) != 0)
      throw std::runtime_error("worker " + std::to_string(w) + " did not start on lcore " + std::to_string(lcore));
    launched_ = true;
    ++w;
  }
}

ServiceContext Dataplane::service_context(const DpConfig& cfg) const {
  ServiceContext svc{tables_.get(), learn_.get(), quit_, {}, pool_.get(), inject_.get(), 0};
  for (size_t i = 0; i < cfg.interfaces.size(); ++i) {
    const DpInterface& in = cfg.interfaces[i];
    const PortReport& r = ports_.list[i];
    auto probe4 = [&](uint32_t gateway) {
      ProbeTarget p;
      p.port = static_cast<uint8_t>(i);
      p.mac = r.mac;
      p.sender = in.ip;
      p.target = gateway;
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
  return svc;
}

std::vector<const AllocCounters*> Dataplane::alloc_counters() const {
  std::vector<const AllocCounters*> out;
  for (const auto& c : alloc_counters_) out.push_back(c.get());
  return out;
}

CounterTotals Dataplane::totals() const {
  CounterTotals t;
  for (const WorkerContext& w : ctx_) t.add(*w.counters);
  return t;
}

}  // namespace turn::dp
