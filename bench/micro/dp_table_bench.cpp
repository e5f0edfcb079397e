// SPDX-License-Identifier: Apache-2.0
// Google Benchmark: the data plane's rte_hash tables (dataplane/table/
// tables.*) at 1k / 100k / 1M / 4M allocations, each with one permission
// and one channel, filled through the writer API the sync thread uses.
// Per size:
//   Lookup/Channel, Lookup/Permission, Lookup/Peer, Lookup/Client: one
//     rte_hash_lookup_data per item, keys in a random order over all entries
//     (the table is touched at random, the key array sequentially);
//   Lookup/ChannelBulk: rte_hash_lookup_bulk_data, 32 keys a call (what the
//     worker does per burst);
//   ProcessFrame/ChannelDataToPeer: process_frame() with the worker's
//     WorkerTables over these tables, 200-byte payload, flows in random
//     order (includes copying the template frame and patching its source:
//     see dp_pipeline_bench's BM_FrameCopy for that part);
//   DecideBurst32/ChannelDataToPeer: decide_burst() on 32 such frames a
//     call with per-allocation counters, as the worker runs it: the fast
//     path's own cost per frame, no vdev (time per item = per frame).
// Counters: table_MiB = rte_malloc heap bytes taken by the Tables object
// (hash tables, entry arrays, RCU defer queues), entries = allocations.
//
//   dp_table_bench [--sizes=1000,100000,1000000,4000000] [--eal="EAL args"]
//                  [Google Benchmark flags]
// EAL default: hugepages (--in-memory) when enough 2 MiB pages are free,
// else --no-huge -m 4096 --no-shconf (4 KiB pages: more TLB misses, slower lookups);
// the mode is printed in the benchmark context ("eal").
#include <benchmark/benchmark.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_rcu_qsbr.h>

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "bench/micro/dp_frames.h"
#include "dataplane/eal_session.h"
#include "dataplane/pipeline/burst.h"
#include "dataplane/table/routes.h"
#include "dataplane/table/tables.h"

namespace turn::dp {
namespace {

using namespace benchfr;

const uint32_t kPeer = ip4(10, 99, 0, 1);
constexpr uint16_t kTurnPort = 3478, kPeerPort = 5000, kChannel = 0x4000;

// FlowAddr i: client 10.(1+i/2^24).(i>>8).(i) : 10000+(i>>16 & 0xff) -> 10.78.0.2:3478,
// relay 10.78.(1+i/16384).2 : 49152+i%16384.
struct FlowAddr {
  uint32_t client_ip, relay_ip;
  uint16_t client_port, relay_port;  // network order
};
FlowAddr flow_of(uint32_t i) {
  return FlowAddr{ip4(static_cast<uint8_t>(10 + (i >> 24)), static_cast<uint8_t>(i >> 16), static_cast<uint8_t>(i >> 8),
                      static_cast<uint8_t>(i)),
                  ip4(10, 78, static_cast<uint8_t>(1 + (i >> 14)), 2), np(static_cast<uint16_t>(10000 + (i & 0x7))),
                  np(static_cast<uint16_t>(49152 + (i & 16383)))};
}
const uint32_t kServer = ip4(10, 78, 0, 2);

size_t heap_bytes() {
  size_t total = 0;
  for (unsigned s = 0; s < RTE_MAX_NUMA_NODES; ++s) {
    rte_malloc_socket_stats st{};
    if (rte_malloc_get_socket_stats(static_cast<int>(s), &st) == 0) total += st.heap_allocsz_bytes;
  }
  return total;
}

// The tables of the current size; rebuilt when a benchmark asks for another
// (benchmarks are registered grouped by size, so each size is built once).
struct Fixture {
  uint32_t n = 0;
  rte_rcu_qsbr* qsbr = nullptr;
  std::unique_ptr<Tables> t;
  size_t table_bytes = 0;
  std::vector<ChannelKey> channel_keys;  // random order
  std::vector<uint32_t> order;           // flow indices, random order
};
Fixture g;

bool build(uint32_t n, std::string& err) {
  if (g.n == n && g.t) return true;
  g.t.reset();
  g.channel_keys = {};
  g.order = {};
  if (!g.qsbr) {
    size_t sz = rte_rcu_qsbr_get_memsize(RTE_MAX_LCORE);
    g.qsbr = static_cast<rte_rcu_qsbr*>(rte_zmalloc("bench_qsbr", sz, RTE_CACHE_LINE_SIZE));
    if (!g.qsbr || rte_rcu_qsbr_init(g.qsbr, RTE_MAX_LCORE) != 0) {
      err = "rcu qsbr init failed";
      return false;
    }
  }
  size_t before = heap_bytes();
  try {
    TableSizes sz;
    sz.allocations = n + n / 4 + 64;  // as scripts/bench-dataplane.sh configures turn-dataplane
    sz.channels = n + n / 4 + 64;
    g.t = std::make_unique<Tables>(sz, g.qsbr, static_cast<int>(rte_socket_id()));
  } catch (const std::exception& e) {
    err = e.what();
    return false;
  }
  RouteTable routes;
  routes.set({RouteTable::Link{kServer, ip4(255, 255, 255, 0), ip4(10, 78, 0, 1)}}, {});
  g.t->set_routes(routes, RouteTable6{});
  g.t->set_static_neighbour(ip4(10, 78, 0, 1), kGwMac);
  Tsc far = ~Tsc{0} >> 1;
  char id[48];
  for (uint32_t i = 0; i < n; ++i) {
    FlowAddr f = flow_of(i);
    std::snprintf(id, sizeof id, "bench/%u", i);
    ClientKey ck{f.client_ip, kServer, f.client_port, np(kTurnPort)};
    if (!g.t->upsert_allocation(id, ck, f.relay_ip, f.relay_port, far) || !g.t->upsert_permission(id, kPeer, far) ||
        !g.t->upsert_channel(id, np(kChannel), kPeer, np(kPeerPort), far)) {
      err = "table full at " + std::to_string(i) + " of " + std::to_string(n);
      g.t.reset();
      return false;
    }
  }
  g.table_bytes = heap_bytes() - before;
  g.order.resize(n);
  for (uint32_t i = 0; i < n; ++i) g.order[i] = i;
  std::mt19937 rng(42);
  std::shuffle(g.order.begin(), g.order.end(), rng);
  g.channel_keys.resize(n);
  for (uint32_t i = 0; i < n; ++i) {
    FlowAddr f = flow_of(g.order[i]);
    g.channel_keys[i] = ChannelKey{f.client_ip, kServer, f.client_port, np(kTurnPort), np(kChannel), 0};
  }
  g.n = n;
  return true;
}

void counters(benchmark::State& st) {
  st.SetItemsProcessed(static_cast<int64_t>(st.iterations()));
  st.counters["entries"] = g.n;
  st.counters["table_MiB"] = static_cast<double>(g.table_bytes) / (1024.0 * 1024.0);
}

#define NEED_TABLES(st)                                       \
  do {                                                        \
    std::string err_;                                         \
    if (!build(static_cast<uint32_t>((st).range(0)), err_)) { \
      (st).SkipWithError(err_.c_str());                       \
      return;                                                 \
    }                                                         \
  } while (0)

void BM_LookupChannel(benchmark::State& st) {
  NEED_TABLES(st);
  size_t i = 0, hits = 0;
  for (auto _ : st) {
    const ChannelEntry* e = g.t->channel(g.channel_keys[i]);
    hits += e != nullptr;
    benchmark::DoNotOptimize(e);
    if (++i == g.n) i = 0;
  }
  if (hits != static_cast<size_t>(st.iterations())) st.SkipWithError("channel lookup missed");
  counters(st);
}

void BM_LookupChannelBulk(benchmark::State& st) {
  NEED_TABLES(st);
  constexpr uint32_t kBurst = 32;
  const ChannelKey* ptrs[kBurst];
  const ChannelEntry* out[kBurst];
  size_t i = 0, hits = 0, items = 0;
  for (auto _ : st) {
    uint32_t m = std::min<uint32_t>(kBurst, static_cast<uint32_t>(g.n - i));
    for (uint32_t j = 0; j < m; ++j) ptrs[j] = &g.channel_keys[i + j];
    g.t->lookup_bulk(ptrs, m, out);
    for (uint32_t j = 0; j < m; ++j) hits += out[j] != nullptr;
    benchmark::DoNotOptimize(out);
    items += m;
    i += m;
    if (i == g.n) i = 0;
  }
  if (hits != items) st.SkipWithError("bulk channel lookup missed");
  counters(st);
  st.SetItemsProcessed(static_cast<int64_t>(items));
}

void BM_LookupPermission(benchmark::State& st) {
  NEED_TABLES(st);
  size_t i = 0, hits = 0;
  for (auto _ : st) {
    FlowAddr f = flow_of(g.order[i]);
    const PermissionEntry* e = g.t->permission(PermissionKey{f.relay_ip, kPeer, f.relay_port});
    hits += e != nullptr;
    benchmark::DoNotOptimize(e);
    if (++i == g.n) i = 0;
  }
  if (hits != static_cast<size_t>(st.iterations())) st.SkipWithError("permission lookup missed");
  counters(st);
}

void BM_LookupPeer(benchmark::State& st) {
  NEED_TABLES(st);
  size_t i = 0, hits = 0;
  for (auto _ : st) {
    FlowAddr f = flow_of(g.order[i]);
    const ChannelEntry* e = g.t->peer(PeerKey{f.relay_ip, kPeer, f.relay_port, np(kPeerPort)});
    hits += e != nullptr;
    benchmark::DoNotOptimize(e);
    if (++i == g.n) i = 0;
  }
  if (hits != static_cast<size_t>(st.iterations())) st.SkipWithError("peer lookup missed");
  counters(st);
}

void BM_LookupClient(benchmark::State& st) {
  NEED_TABLES(st);
  size_t i = 0, hits = 0;
  for (auto _ : st) {
    FlowAddr f = flow_of(g.order[i]);
    const AllocEntry* e = g.t->client(ClientKey{f.client_ip, kServer, f.client_port, np(kTurnPort)});
    hits += e != nullptr;
    benchmark::DoNotOptimize(e);
    if (++i == g.n) i = 0;
  }
  if (hits != static_cast<size_t>(st.iterations())) st.SkipWithError("client lookup missed");
  counters(st);
}

// process_frame over the real tables, one lookup per frame (no bulk hint):
// the per-frame path the worker falls back to.
void BM_ProcessFrameChannelData(benchmark::State& st) {
  NEED_TABLES(st);
  PortContext pc = port_context(kServer, kTurnPort);
  WorkerTables wt{g.t.get()};
  auto tmpl = udp_frame(ip4(10, 0, 0, 1), 10000, kServer, kTurnPort, channel_data(kChannel, 200));
  // Per flow: source ip/port and the IPv4 header checksum (verified by the
  // fast path); the UDP checksum is 0 ("none", left 0 by the rewrite).
  store_be16(tmpl.data() + kEthHeader + kIpv4Header + 6, 0);
  FrameBuf b;
  Frame probe{};
  auto load = [&](uint32_t flow_index) {
    FlowAddr fl = flow_of(flow_index);
    uint8_t* d = b.buf + FrameBuf::kHeadroom;
    std::memcpy(d, tmpl.data(), tmpl.size());
    std::memcpy(d + kEthHeader + 12, &fl.client_ip, 4);
    std::memcpy(d + kEthHeader + kIpv4Header, &fl.client_port, 2);
    store_be16(d + kEthHeader + 10, 0);
    store_be16(d + kEthHeader + 10, checksum(d + kEthHeader, kIpv4Header));
    return Frame{b.buf, FrameBuf::kHeadroom, static_cast<uint16_t>(tmpl.size()), sizeof b.buf};
  };
  Tsc now = 1;
  probe = load(g.order[0]);
  if (Verdict v = process_frame(probe, wt, pc, now); v.kind != Verdict::Tx || v.path != Path::ChannelDataToPeer) {
    st.SkipWithError("prepared frame did not take the ChannelData -> peer path");
    return;
  }
  size_t i = 0, tx = 0;
  for (auto _ : st) {
    Frame f = load(g.order[i]);
    Verdict v = process_frame(f, wt, pc, now);
    tx += v.kind == Verdict::Tx;
    benchmark::DoNotOptimize(v);
    benchmark::ClobberMemory();
    if (++i == g.n) i = 0;
  }
  if (tx != static_cast<size_t>(st.iterations())) st.SkipWithError("a frame was not relayed");
  counters(st);
}

// decide_burst over the real tables, 32 frames a call, with per-allocation
// counters as the worker has them: the worker's own cost per frame at this
// many allocations, without a vdev's (the frames are rewritten from a hot
// template each call, as an rx copy leaves them in cache). The 1M / 1k
// ratio of this benchmark is the data plane's scaling alone; on the
// net_pcap replay of bench-dataplane.sh the vdev's own per-frame cost grows
// with the number of distinct frames it replays (bench/RESULTS.md).
void BM_DecideBurstChannelData(benchmark::State& st) {
  NEED_TABLES(st);
  constexpr uint16_t kBurst = 32;
  PortContext pc = port_context(kServer, kTurnPort);
  WorkerTables wt{g.t.get()};
  std::vector<AllocCounters> alloc_counters(g.t->capacity());
  auto tmpl = udp_frame(ip4(10, 0, 0, 1), 10000, kServer, kTurnPort, channel_data(kChannel, 200));
  store_be16(tmpl.data() + kEthHeader + kIpv4Header + 6, 0);  // no UDP checksum, as in BM_ProcessFrame
  std::vector<FrameBuf> bufs(kBurst);
  Frame frames[kBurst];
  Verdict verdicts[kBurst];
  size_t i = 0, items = 0, tx = 0;
  Tsc now = 1;
  for (auto _ : st) {
    for (uint16_t j = 0; j < kBurst; ++j) {
      FlowAddr fl = flow_of(g.order[i]);
      if (++i == g.n) i = 0;
      uint8_t* d = bufs[j].buf + FrameBuf::kHeadroom;
      std::memcpy(d, tmpl.data(), tmpl.size());
      std::memcpy(d + kEthHeader + 12, &fl.client_ip, 4);
      std::memcpy(d + kEthHeader + kIpv4Header, &fl.client_port, 2);
      store_be16(d + kEthHeader + 10, 0);
      store_be16(d + kEthHeader + 10, checksum(d + kEthHeader, kIpv4Header));
      frames[j] = Frame{bufs[j].buf, FrameBuf::kHeadroom, static_cast<uint16_t>(tmpl.size()), sizeof bufs[j].buf};
    }
    decide_burst(frames, verdicts, kBurst, wt, pc, now, alloc_counters.data());
    for (uint16_t j = 0; j < kBurst; ++j) {
      if (verdicts[j].kind != Verdict::Tx) continue;
      ++tx;
      ++alloc_counters[verdicts[j].alloc].to_peer_packets;  // the worker's counting, as worker.cpp does it
      alloc_counters[verdicts[j].alloc].to_peer_bytes += verdicts[j].bytes;
    }
    benchmark::ClobberMemory();
    items += kBurst;
  }
  if (tx != items) st.SkipWithError("a frame of the burst was not relayed");
  st.counters["entries"] = g.n;
  st.counters["table_MiB"] = static_cast<double>(g.table_bytes) / (1024.0 * 1024.0);
  st.SetItemsProcessed(static_cast<int64_t>(items));
}

std::string eal_default() {
  long free_pages = 0;
  std::ifstream("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages") >> free_pages;
  // 4M allocations take about 1.2 GiB of tables: ask for 1.5 GiB of pages.
  // DPDK 22.11 refuses --no-huge with --in-memory (--no-huge implies legacy
  // memory); --no-shconf keeps the fallback's runtime directory free of
  // shared config files (scripts/lib/dpdk.sh chooses the same way).
  if (free_pages >= 768) return "--in-memory --no-pci --no-telemetry -l 0 --log-level=*:warning";
  return "--no-huge -m 4096 --no-shconf --no-pci --no-telemetry -l 0 --log-level=*:warning";
}

}  // namespace
}  // namespace turn::dp

int main(int argc, char** argv) {
  using namespace turn::dp;
  std::vector<uint32_t> sizes{1000, 100000, 1000000, 4000000};
  std::string eal = eal_default();
  std::vector<char*> rest{argv[0]};
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--sizes=", 0) == 0) {
      sizes.clear();
      std::stringstream ss(a.substr(8));
      std::string tok;
      while (std::getline(ss, tok, ',')) {
        char* end = nullptr;
        unsigned long v = std::strtoul(tok.c_str(), &end, 10);
        if (tok.empty() || *end != '\0' || v < 1 || v > (1u << 23)) {
          std::fprintf(stderr, "dp_table_bench: --sizes: '%s' is not a size in 1..8388608\n", tok.c_str());
          return 2;
        }
        sizes.push_back(static_cast<uint32_t>(v));
      }
    } else if (a.rfind("--eal=", 0) == 0) {
      eal = a.substr(6);
    } else {
      rest.push_back(argv[i]);
    }
  }
  // Its own file prefix: other DPDK processes may run beside us.
  turn::dp::EalSession session(argv[0], eal, "dptablebench" + std::to_string(getpid()));
  if (!session.up()) {
    std::fprintf(stderr, "dp_table_bench: %s\n", session.error().c_str());
    return 1;
  }
  benchmark::AddCustomContext("eal", eal);
  for (uint32_t n : sizes) {
    benchmark::RegisterBenchmark("Lookup/Channel", BM_LookupChannel)->Arg(n);
    benchmark::RegisterBenchmark("Lookup/ChannelBulk32", BM_LookupChannelBulk)->Arg(n);
    benchmark::RegisterBenchmark("Lookup/Permission", BM_LookupPermission)->Arg(n);
    benchmark::RegisterBenchmark("Lookup/Peer", BM_LookupPeer)->Arg(n);
    benchmark::RegisterBenchmark("Lookup/Client", BM_LookupClient)->Arg(n);
    benchmark::RegisterBenchmark("ProcessFrame/ChannelDataToPeer", BM_ProcessFrameChannelData)->Arg(n);
    benchmark::RegisterBenchmark("DecideBurst32/ChannelDataToPeer", BM_DecideBurstChannelData)->Arg(n);
  }
  int bargc = static_cast<int>(rest.size());
  benchmark::Initialize(&bargc, rest.data());
  if (benchmark::ReportUnrecognizedArguments(bargc, rest.data())) return 2;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  g.t.reset();
  return 0;
}
