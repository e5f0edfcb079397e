// SPDX-License-Identifier: Apache-2.0
// Worker loop: rx burst -> the burst's decisions (pipeline/burst.h)
// -> tx burst to the wire, punt burst to the kernel. Every rx mbuf is sent,
// punted or freed; nothing else. No locks, allocation, syscalls or logs:
// this file is the packet path only (the service loop is in service.cpp),
// built without exceptions and checked whole by scripts/check-hotpath.sh.
#include "dataplane/worker.h"

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_hash.h>
#include <rte_mbuf.h>
#include <rte_ring_elem.h>

#include "dataplane/pipeline/burst.h"
#include "dataplane/pipeline/neighbour_probe.h"
#include "dataplane/idle_sleep.h"
#include "dataplane/tx_drain.h"

#include <algorithm>
#include <cstring>

namespace turn::dp {

namespace {

// Punted frames teach us next hops: ARP senders, and IPv4/IPv6 sources on
// the link of the port they arrived on (IPv6 neighbour discovery replies
// come from the neighbour itself).
inline void learn_from(const WorkerContext& c, uint8_t port, const uint8_t* f, uint16_t len) noexcept {
  if (len < 14 + 28) return;
  uint16_t et = load_be16(f + 12);
  Observation o{};
  if (et == kEtherTypeArp) {
    uint32_t ip;
    std::memcpy(&ip, f + 14 + 14, 4);  // sender protocol address
    if (!c.tables->on_link(port, ip)) return;
    std::memcpy(o.ip, &ip, 4);
    std::memcpy(o.mac, f + 14 + 8, 6);
  } else if (et == kEtherTypeIpv4) {
    uint32_t ip;
    std::memcpy(&ip, f + 14 + 12, 4);
    if (!c.tables->on_link(port, ip)) return;
    std::memcpy(o.ip, &ip, 4);
    std::memcpy(o.mac, f + 6, 6);
  } else if (et == kEtherTypeIpv6 && len >= 14 + 40) {
    Ip6 ip;
    std::memcpy(ip.b, f + 14 + 8, 16);
    if (!c.tables->on_link(port, ip)) return;
    std::memcpy(o.ip, ip.b, 16);
    std::memcpy(o.mac, f + 6, 6);
    o.v6 = 1;
  } else {
    return;
  }
  rte_ring_mp_enqueue_elem(c.learn, &o, sizeof o);  // full: the next frame teaches it again
}

static_assert(kBulkLookupMax <= RTE_HASH_LOOKUP_BULK_MAX, "a bulk lookup takes at most RTE_HASH_LOOKUP_BULK_MAX keys");
static_assert(kBulkLookupMax <= FlowIndex<ChannelKey>::kBulkMax && kBulkLookupMax <= FlowIndex<PeerKey>::kBulkMax,
              "FlowIndex::find_bulk takes at most kBulkMax keys");

// Transmit lists, one per egress port, sent when tx_list_due (tx_drain.h).
struct TxLists {
  rte_mbuf* m[kMaxPorts][2 * kMaxBurst];
  uint16_t n[kMaxPorts] = {};
  Tsc since[kMaxPorts] = {};  // when the list's first frame was queued
};

inline void transmit(const WorkerContext& c, WorkerCounters& k, uint16_t port, rte_mbuf** m, uint16_t n,
                     Drop full) noexcept {
  uint16_t sent = rte_eth_tx_burst(port, c.queue, m, n);
  k.tx_packets += sent;
  if (sent < n) {
    k.drops[static_cast<size_t>(full)] += n - sent;
    rte_pktmbuf_free_bulk(m + sent, n - sent);
  }
}

// Kernel -> wire: what turn-control and the kernel stack behind TAP `p`
// send (responses, ARP, the kernel relay path) leaves by port `p`.
inline bool kernel_to_wire(const WorkerContext& c, WorkerCounters& k, uint8_t p, rte_mbuf** buf) noexcept {
  uint16_t n = rte_eth_rx_burst(c.taps[p], c.queue, buf, c.burst);
  if (n == 0) return false;
  k.paths[static_cast<size_t>(Path::FromKernel)] += n;
  transmit(c, k, c.ports[p], buf, n, Drop::TxFull);
  return true;
}

// One received burst from port `p`: single-segment frames are decided
// together (pipeline/burst.h: classify, bulk lookups, a stage per frame),
// then sent per egress port or punted to p's TAP; the rest go to the TAP
// as they are (the fast path reads one segment).
inline void forward_burst(const WorkerContext& c, WorkerTables& wt, WorkerCounters& k, uint8_t p, rte_mbuf** rx,
                          uint16_t n, Tsc now, TxLists& tx) noexcept {
  Frame frames[kMaxBurst];
  Verdict verdicts[kMaxBurst];
  rte_mbuf* whole[kMaxBurst];  // the frames' mbufs, in order
  rte_mbuf* punt[kMaxBurst];
  uint16_t nframes = 0, npunt = 0;
  for (uint16_t i = 0; i < n; ++i) {
    rte_mbuf* m = rx[i];
    if (m->nb_segs != 1) [[unlikely]] {
      punt[npunt++] = m;
      ++k.paths[static_cast<size_t>(Path::Punted)];
      ++k.punts[static_cast<size_t>(PuntReason::Other)];
      continue;
    }
    frames[nframes] = Frame{static_cast<uint8_t*>(m->buf_addr), m->data_off, m->data_len, m->buf_len};
    whole[nframes++] = m;
  }
  decide_burst(frames, verdicts, nframes, wt, c.pc, now, c.alloc_counters);
  for (uint16_t i = 0; i < nframes; ++i) {
    rte_mbuf* m = whole[i];
    const Frame& f = frames[i];
    const Verdict& v = verdicts[i];
    switch (v.kind) {
      case Verdict::Tx: {
        m->data_off = f.off;
        m->data_len = f.len;
        m->pkt_len = f.len;
        if (v.offload) {
          m->ol_flags = RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM | RTE_MBUF_F_TX_UDP_CKSUM;
          m->l2_len = kEthHeader;
          m->l3_len = kIpv4Header;
        } else {
          m->ol_flags = 0;
        }
        if (tx.n[v.port] == 0) tx.since[v.port] = now;
        tx.m[v.port][tx.n[v.port]++] = m;
        ++k.paths[static_cast<size_t>(v.path)];
        AllocCounters& ac = c.alloc_counters[v.alloc];
        if (v.to_peer) {
          ++ac.to_peer_packets;
          ac.to_peer_bytes += v.bytes;
        } else {
          ++ac.to_client_packets;
          ac.to_client_bytes += v.bytes;
          if (v.hairpin) {  // the sender relayed it too
            ++c.alloc_counters[v.from_alloc].to_peer_packets;
            c.alloc_counters[v.from_alloc].to_peer_bytes += v.bytes;
          }
        }
        break;
      }
      case Verdict::Punt:
        learn_from(c, p, rte_pktmbuf_mtod(m, const uint8_t*), m->data_len);
        punt[npunt++] = m;
        ++k.paths[static_cast<size_t>(Path::Punted)];
        ++k.punts[static_cast<size_t>(v.punt)];
        break;
      case Verdict::Drop:
        ++k.drops[static_cast<size_t>(v.drop)];
        rte_pktmbuf_free(m);
        break;
    }
  }
  if (npunt) {
    uint16_t sent = rte_eth_tx_burst(c.taps[p], c.queue, punt, npunt);
    if (sent < npunt) {
      k.drops[static_cast<size_t>(Drop::PuntCongestion)] += npunt - sent;
      rte_pktmbuf_free_bulk(punt + sent, npunt - sent);
    }
  }
}

// Sends the transmit lists that are full or have waited long enough (all of
// them when `all`); true if it sent any.
inline bool drain(const WorkerContext& c, WorkerCounters& k, TxLists& tx, Tsc now, bool all) noexcept {
  bool sent = false;
  for (uint8_t e = 0; e < c.nports; ++e)
    if (tx.n[e] && (all || tx_list_due(tx.n[e], c.burst, tx.since[e], now, c.tx_drain_tsc))) {
      transmit(c, k, c.ports[e], tx.m[e], tx.n[e], Drop::TxFull);
      tx.n[e] = 0;
      sent = true;
    }
  return sent;
}

// Whether any transmit list holds frames for a later burst.
inline bool held(const WorkerContext& c, const TxLists& tx) noexcept {
  for (uint8_t e = 0; e < c.nports; ++e)
    if (tx.n[e]) return true;
  return false;
}

// Frames the service lcore made (neighbour probes), sent on this worker's
// queue of their port. Rare: an empty-ring check per loop otherwise.
inline void inject(const WorkerContext& c, WorkerCounters& k) noexcept {
  rte_mbuf* m[8];
  unsigned n = rte_ring_sc_dequeue_burst(c.inject, reinterpret_cast<void**>(m), 8, nullptr);
  for (unsigned i = 0; i < n; ++i) {
    uint16_t p = m[i]->port < c.nports ? m[i]->port : 0;
    transmit(c, k, c.ports[p], &m[i], 1, Drop::TxFull);
  }
}

}  // namespace

int worker_main(void* arg) {
  WorkerContext& c = *static_cast<WorkerContext*>(arg);
  WorkerTables wt{c.tables, uint64_t{c.worker_id} << 48};
  rte_rcu_qsbr_thread_register(c.qsbr, c.worker_id);
  rte_rcu_qsbr_thread_online(c.qsbr, c.worker_id);
  rte_mbuf* rx[kMaxBurst];
  TxLists tx;
  WorkerCounters& k = *c.counters;
  k.start_tsc = rte_rdtsc();
  IdleBackoff idle;

  while (!c.quit->load(std::memory_order_relaxed)) {
    rte_rcu_qsbr_quiescent(c.qsbr, c.worker_id);
    if (c.inject) inject(c, k);
    bool loop_work = false;
    for (uint8_t p = 0; p < c.nports; ++p) {
      Tsc now = rte_rdtsc();
      bool work = kernel_to_wire(c, k, p, rx);
      uint16_t n = rte_eth_rx_burst(c.ports[p], c.queue, rx, c.burst);
      if (n == 0) {
        ++k.idle_polls;
      } else {
        ++k.busy_polls;
        k.rx_packets += n;
        ++k.rx_bursts;
        forward_burst(c, wt, k, p, rx, n, now, tx);
        work = true;
      }
      if (drain(c, k, tx, now, false)) work = true;
      if (work) k.busy_cycles += rte_rdtsc() - now;
      loop_work |= work;
    }
    if (c.idle_sleep_us != 0 && idle.after_loop(loop_work, held(c, tx), c.idle_sleep_us)) {
      ++k.idle_sleeps;
      rte_delay_us_sleep(c.idle_sleep_us);  // idle-sleep-us: no frame in hand
    }
  }
  drain(c, k, tx, 0, true);
  rte_rcu_qsbr_thread_offline(c.qsbr, c.worker_id);
  rte_rcu_qsbr_thread_unregister(c.qsbr, c.worker_id);
  return 0;
}

}  // namespace turn::dp
