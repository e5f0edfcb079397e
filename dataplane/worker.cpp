// SPDX-License-Identifier: Apache-2.0
// Worker loop: rx burst -> classify/forward per frame (pipeline/fastpath.h)
// -> tx burst to the wire, punt burst to the kernel. Every rx mbuf is sent,
// punted or freed; nothing else. No locks, allocation, syscalls or logs.
#include "dataplane/worker.h"

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_prefetch.h>
#include <rte_ring_elem.h>

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

constexpr uint16_t kMaxBurst = 64;

// Per-burst transmit lists, one per egress port, flushed after each burst.
struct TxLists {
  rte_mbuf* m[kMaxPorts][kMaxBurst];
  uint16_t n[kMaxPorts] = {};
};

inline void send(const WorkerContext& c, WorkerCounters& k, uint16_t port, rte_mbuf** m, uint16_t n, Drop full) noexcept {
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
  send(c, k, c.ports[p], buf, n, Drop::TxFull);
  return true;
}

// One received burst from port `p`: bulk channel lookups, then the
// decision per frame (pipeline/fastpath.h), then tx per egress port and
// punts to p's TAP.
inline void forward_burst(const WorkerContext& c, WorkerTables& wt, WorkerCounters& k, uint8_t p, rte_mbuf** rx,
                          uint16_t n, Tsc now, TxLists& tx) noexcept {
  auto& punts = *c.punts;
  // Pass 1: the keys of client ChannelData frames, looked up in bulk.
  ChannelKey keys[kMaxBurst];
  const ChannelKey* key_ptrs[kMaxBurst];
  const ChannelEntry* found[kMaxBurst];
  int8_t slot[kMaxBurst];
  uint32_t nkeys = 0;
  for (uint16_t i = 0; i < n; ++i) {
    slot[i] = -1;
    const uint8_t* f = rte_pktmbuf_mtod(rx[i], const uint8_t*);
    if (rx[i]->data_len < kL2L3L4 + kChannelDataHeaderSize || load_be16(f + 12) != kEtherTypeIpv4 ||
        f[14] != 0x45 || f[14 + 9] != 17)
      continue;
    uint16_t dport;
    std::memcpy(&dport, f + 36, 2);
    uint8_t first = f[kL2L3L4];
    if (!c.pc.is_turn_port(dport) || first < 0x40 || first >= 0x80) continue;
    ChannelKey& key = keys[nkeys];
    std::memcpy(&key.client_ip, f + 26, 4);
    std::memcpy(&key.server_ip, f + 30, 4);
    std::memcpy(&key.client_port, f + 34, 2);
    key.server_port = dport;
    std::memcpy(&key.channel, f + kL2L3L4, 2);
    key.zero = 0;
    key_ptrs[nkeys] = &key;
    slot[i] = static_cast<int8_t>(nkeys++);
  }
  if (nkeys) {
    for (uint32_t b = 0; b < nkeys; b += RTE_HASH_LOOKUP_BULK_MAX)
      c.tables->channel_bulk(key_ptrs + b, std::min<uint32_t>(RTE_HASH_LOOKUP_BULK_MAX, nkeys - b), found + b);
    for (uint32_t j = 0; j < nkeys; ++j)
      if (found[j]) rte_prefetch0(&c.tables->alloc(found[j]->alloc));
  }
  // Pass 2: the decision per frame.
  rte_mbuf* punt[kMaxBurst];
  uint16_t npunt = 0;
  for (uint16_t i = 0; i < n; ++i) {
    if (i + 1 < n) rte_prefetch0(rte_pktmbuf_mtod(rx[i + 1], void*));
    rte_mbuf* m = rx[i];
    wt.hint_key = slot[i] >= 0 ? &keys[slot[i]] : nullptr;
    wt.hint = slot[i] >= 0 ? found[slot[i]] : nullptr;
    if (m->nb_segs != 1) {
      punt[npunt++] = m;
      ++punts[static_cast<size_t>(PuntReason::Other)];
      continue;
    }
    Frame f{static_cast<uint8_t*>(m->buf_addr), m->data_off, m->data_len, m->buf_len};
    Verdict v = process_frame(f, wt, c.pc, now);
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
        ++punts[static_cast<size_t>(v.punt)];
        break;
      case Verdict::Drop:
        ++k.drops[static_cast<size_t>(v.drop)];
        rte_pktmbuf_free(m);
        break;
    }
  }
  for (uint8_t e = 0; e < c.nports; ++e)
    if (tx.n[e]) {
      send(c, k, c.ports[e], tx.m[e], tx.n[e], Drop::TxFull);
      tx.n[e] = 0;
    }
  if (npunt) {
    uint16_t sent = rte_eth_tx_burst(c.taps[p], c.queue, punt, npunt);
    if (sent < npunt) {
      k.drops[static_cast<size_t>(Drop::PuntCongestion)] += npunt - sent;
      rte_pktmbuf_free_bulk(punt + sent, npunt - sent);
    }
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

  while (!c.quit->load(std::memory_order_relaxed)) {
    rte_rcu_qsbr_quiescent(c.qsbr, c.worker_id);
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
      if (work) k.busy_cycles += rte_rdtsc() - now;
    }
  }
  rte_rcu_qsbr_thread_offline(c.qsbr, c.worker_id);
  rte_rcu_qsbr_thread_unregister(c.qsbr, c.worker_id);
  return 0;
}

void service_loop(ServiceContext& s) {
  Observation obs[32];
  while (!s.quit->load(std::memory_order_relaxed)) {
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
    if (got == 0) rte_delay_us_sleep(100);  // the service core may idle
  }
}

}  // namespace turn::dp
