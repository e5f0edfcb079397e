// SPDX-License-Identifier: Apache-2.0
// Worker loop: rx burst -> classify/forward per frame (pipeline/fastpath.h)
// -> tx burst to the wire, punt burst to the kernel. Every rx mbuf is sent,
// punted or freed; nothing else. No locks, allocation, syscalls or logs:
// this file is the packet path only (the service loop is in service.cpp),
// built without exceptions and checked whole by scripts/check-hotpath.sh.
#include "dataplane/worker.h"

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_prefetch.h>
#include <rte_ring_elem.h>

#include "dataplane/pipeline/neighbour_probe.h"

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

// One burst's lookups of one kind: keys gathered in pass 1, looked up in
// bulk, answers handed to the fast path frame by frame (WorkerTables hints).
template <class K, class E>
struct BulkLookup {
  K keys[kMaxBurst];
  const K* ptrs[kMaxBurst];
  const E* found[kMaxBurst];
  uint32_t n = 0;
  [[gnu::always_inline]] int8_t add(const K& k) noexcept {
    keys[n] = k;
    ptrs[n] = &keys[n];
    return static_cast<int8_t>(n++);
  }
  template <class Lookup>
  [[gnu::always_inline]] void run(Lookup&& lookup) noexcept {
    for (uint32_t b = 0; b < n; b += RTE_HASH_LOOKUP_BULK_MAX)
      lookup(ptrs + b, std::min<uint32_t>(RTE_HASH_LOOKUP_BULK_MAX, n - b), found + b);
  }
  // The answer for a frame that added a key at `slot` (has), else none.
  [[nodiscard]] WorkerTables::Hint<K, E> hint(bool has, int8_t slot) const noexcept {
    if (!has) return {};
    return {&keys[slot], found[slot]};
  }
};

// What pass 1 learned of a frame.
enum class Parsed : uint8_t { No, Udp, Channel, Client, Peer };

// One received burst from port `p`, in two passes:
//   1. parse each frame once (parse_udp4) and gather the keys the fast path
//      will look up: a client's ChannelData -> its channel; a Send
//      indication -> the client 5-tuple; peer data -> the permission and the
//      peer's channel binding. Look each kind up in bulk and prefetch the
//      entries that follow (allocation, permission, counters): with a
//      million flows each is a DRAM access, and here they overlap.
//   2. the decision per frame (pipeline/fastpath.h), then tx per egress
//      port and punts to p's TAP.
inline void forward_burst(const WorkerContext& c, WorkerTables& wt, WorkerCounters& k, uint8_t p, rte_mbuf** rx,
                          uint16_t n, Tsc now, TxLists& tx) noexcept {
  const Tables& tables = *c.tables;
  Udp4View views[kMaxBurst];
  Parsed parsed[kMaxBurst];
  int8_t slot[kMaxBurst];  // the frame's index in its kind's BulkLookup
  BulkLookup<ChannelKey, ChannelEntry> channels;
  BulkLookup<ClientKey, AllocEntry> clients;
  BulkLookup<PermissionKey, PermissionEntry> perms;
  BulkLookup<PeerKey, ChannelEntry> peers;
  constexpr uint16_t kAhead = 3;
  for (uint16_t i = 0; i < n && i < kAhead; ++i) rte_prefetch0(rte_pktmbuf_mtod(rx[i], void*));
  for (uint16_t i = 0; i < n; ++i) {
    if (i + kAhead < n) rte_prefetch0(rte_pktmbuf_mtod(rx[i + kAhead], void*));
    parsed[i] = Parsed::No;
    slot[i] = 0;
    const rte_mbuf* m = rx[i];
    const uint8_t* f = rte_pktmbuf_mtod(m, const uint8_t*);
    if (m->nb_segs != 1 || parse_udp4(f, m->data_len, views[i]) != FrameKind::Udp4) continue;
    const Udp4View& u = views[i];
    parsed[i] = Parsed::Udp;
    if (c.pc.is_turn_port(u.dst_port)) {
      if (u.payload_len < kChannelDataHeaderSize) continue;
      const uint8_t first = f[kL2L3L4];
      if (first >= 0x40 && first < 0x80) {  // ChannelData (RFC 8656 §12.4)
        ChannelKey key{u.src_ip, u.dst_ip, u.src_port, u.dst_port, 0, 0};
        std::memcpy(&key.channel, f + kL2L3L4, 2);
        slot[i] = channels.add(key);
        parsed[i] = Parsed::Channel;
      } else if (first < 0x40) {  // STUN: a Send indication, or a request for the kernel
        slot[i] = clients.add(ClientKey{u.src_ip, u.dst_ip, u.src_port, u.dst_port});
        parsed[i] = Parsed::Client;
      }
    } else if (c.pc.is_relay_port(u.dst_port) && c.pc.is_relay_ip(u.dst_ip)) {
      slot[i] = perms.add(PermissionKey{u.dst_ip, u.src_ip, u.dst_port});
      peers.add(PeerKey{u.dst_ip, u.src_ip, u.dst_port, u.src_port});
      parsed[i] = Parsed::Peer;
    }
  }
  channels.run([&](auto keys, uint32_t m, auto out) { tables.channel_bulk(keys, m, out); });
  clients.run([&](auto keys, uint32_t m, auto out) { tables.client_bulk(keys, m, out); });
  perms.run([&](auto keys, uint32_t m, auto out) { tables.permission_bulk(keys, m, out); });
  peers.run([&](auto keys, uint32_t m, auto out) { tables.peer_bulk(keys, m, out); });
  for (uint32_t j = 0; j < channels.n; ++j)
    if (const ChannelEntry* ch = channels.found[j]) {
      uint32_t a = ch->alloc;
      rte_prefetch0(&tables.alloc(a));
      rte_prefetch0(&c.alloc_counters[a]);
      if (const PermissionEntry* pe = ch->perm.load(std::memory_order_relaxed)) rte_prefetch0(pe);
    }
  for (uint32_t j = 0; j < clients.n; ++j)
    if (const AllocEntry* a = clients.found[j]) {
      rte_prefetch0(a);
      rte_prefetch0(&c.alloc_counters[tables.slot_of(a)]);
    }
  for (uint32_t j = 0; j < perms.n; ++j) {
    if (perms.found[j]) rte_prefetch0(perms.found[j]);
    if (peers.found[j]) rte_prefetch0(peers.found[j]);
  }
  // Pass 2: the decision per frame.
  rte_mbuf* punt[kMaxBurst];
  uint16_t npunt = 0;
  for (uint16_t i = 0; i < n; ++i) {
    rte_mbuf* m = rx[i];
    wt.hint_channel = channels.hint(parsed[i] == Parsed::Channel, slot[i]);
    wt.hint_client = clients.hint(parsed[i] == Parsed::Client, slot[i]);
    wt.hint_permission = perms.hint(parsed[i] == Parsed::Peer, slot[i]);
    wt.hint_peer = peers.hint(parsed[i] == Parsed::Peer, slot[i]);
    Frame f{static_cast<uint8_t*>(m->buf_addr), m->data_off, m->data_len, m->buf_len};
    Verdict v;
    if (parsed[i] != Parsed::No) {
      v = process_udp4_frame(f, wt, c.pc, views[i], now);
    } else if (m->nb_segs != 1) {
      v = Verdict::punted(PuntReason::Other);
    } else {
      v = process_frame(f, wt, c.pc, now);
    }
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
        ++k.punts[static_cast<size_t>(v.punt)];
        break;
      case Verdict::Drop:
        ++k.drops[static_cast<size_t>(v.drop)];
        rte_pktmbuf_free(m);
        break;
    }
  }
  for (uint8_t e = 0; e < c.nports; ++e)
    if (tx.n[e]) {
      transmit(c, k, c.ports[e], tx.m[e], tx.n[e], Drop::TxFull);
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

  while (!c.quit->load(std::memory_order_relaxed)) {
    rte_rcu_qsbr_quiescent(c.qsbr, c.worker_id);
    if (c.inject) inject(c, k);
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

}  // namespace turn::dp
