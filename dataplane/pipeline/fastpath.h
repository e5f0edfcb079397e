// SPDX-License-Identifier: Apache-2.0
// The fast path, one frame at a time, top to bottom:
//
//   classify (Ethernet/IPv4/UDP; to a TURN port or a relay port?)
//   client -> peer : ChannelData (RFC 8656 §12.6) or Send indication (§10.2)
//   peer -> client : ChannelData if a channel is bound, else Data indication (§10.3)
//   relay -> relay : a client's data addressed to one of our own relay
//                    addresses goes straight into the peer -> client step
//
// Each step either rewrites the frame in place and says Tx, or says Punt
// (the kernel path in turn-control serves it: requests, unknown or expired
// flows, unknown next hops, IPv6) or Drop (with a reason). UDP checksums are
// updated incrementally (RFC 1624): the cost does not grow with the payload.
//
// Templated on the table type so that tests run it over std::unordered_map
// fakes; the worker instantiates it with the rte_hash tables. noexcept, no
// allocation, no locks, no syscalls.
#pragma once

#include <cstdint>
#include <cstring>

#include "common/stun/constants.h"
#include "common/turn/channel_data.h"
#include "dataplane/pipeline/checksum.h"
#include "dataplane/pipeline/frame.h"
#include "dataplane/pipeline/headers.h"
#include "dataplane/stats/drop_reasons.h"
#include "dataplane/table/entries.h"

namespace turn::dp {

enum class PuntReason : uint8_t { NotTurn, Control, UnknownFlow, Expired, NoPermission, NoNeighbor, Ipv6, Arp, Other, Count };
inline constexpr const char* kPuntKeys[] = {"not_turn", "control", "unknown_flow", "expired", "no_permission",
                                            "no_neighbor", "ipv6", "arp", "other"};

struct Verdict {
  enum Kind : uint8_t { Tx, Punt, Drop } kind = Punt;
  Path path = Path::Punted;
  dp::Drop drop = dp::Drop::Malformed;
  PuntReason punt = PuntReason::Other;
  bool to_peer = false;     // which per-allocation counter
  uint32_t alloc = 0;       // AllocEntry slot, for counters
  uint16_t bytes = 0;       // relayed payload bytes
  bool hairpin = false;     // also count to_peer for from_alloc
  uint32_t from_alloc = 0;  // hairpin: the sending allocation

  static Verdict punted(PuntReason r) noexcept { Verdict v; v.kind = Punt; v.punt = r; return v; }
  static Verdict dropped(dp::Drop d) noexcept { Verdict v; v.kind = Drop; v.drop = d; return v; }
};

// What a port knows about itself (immutable after start-up).
struct PortContext {
  Mac mac{};
  uint16_t turn_ports[4] = {};  // listening ports, network order; 0 = unused
  uint16_t relay_min = 0, relay_max = 0;  // host order
  uint16_t max_channel = kMaxChannel;     // kMaxLegacyChannel with legacy-channel-range
  uint32_t relay_ips[4] = {};  // network order; 0 = unused (hairpin detection)
  // The port's own address (network order; 0 = not checked). A client that
  // reached turn-control on another address (a dual-homed host: inside
  // clients on the internal interface, which the kernel owns) is answered
  // through that interface, never out of this port.
  uint32_t local_ip = 0;

  [[nodiscard]] bool is_turn_port(uint16_t port_n) const noexcept {
    for (uint16_t p : turn_ports)
      if (p != 0 && p == port_n) return true;
    return false;
  }
  [[nodiscard]] bool is_relay_port(uint16_t port_n) const noexcept {
    uint16_t p = static_cast<uint16_t>((port_n >> 8) | (port_n << 8));
    return p >= relay_min && p <= relay_max;
  }
  [[nodiscard]] bool is_relay_ip(uint32_t ip_n) const noexcept {
    for (uint32_t r : relay_ips)
      if (r != 0 && r == ip_n) return true;
    return false;
  }
};

namespace detail {

inline uint32_t header_sum(uint32_t src_ip, uint32_t dst_ip, uint16_t src_port, uint16_t dst_port, uint16_t udp_len) noexcept {
  uint8_t b[12];
  std::memcpy(b, &src_ip, 4);
  std::memcpy(b + 4, &dst_ip, 4);
  std::memcpy(b + 8, &src_port, 2);
  std::memcpy(b + 10, &dst_port, 2);
  // pseudo header (addresses, protocol, UDP length) + UDP header (ports, length)
  return sum16(b, 12) + 17u + udp_len + udp_len;
}

inline uint16_t finish_checksum(uint16_t c) noexcept { return c == 0 ? 0xFFFF : c; }

// Send `data_len` payload bytes now at payload offset 0 (headers written
// here) from (src) to (dst). old_sum: the old checksum's contributions that
// are no longer there; add_sum: new payload prefix words (CD/STUN headers).
inline void emit(Frame& f, const Mac& dst_mac, const Mac& src_mac, uint32_t src_ip, uint32_t dst_ip, uint16_t src_port,
                 uint16_t dst_port, uint16_t payload_len, uint16_t old_checksum, uint32_t removed, uint32_t added) noexcept {
  uint16_t c = 0;
  if (old_checksum != 0)
    c = finish_checksum(checksum_update(old_checksum, removed,
                                        added + header_sum(src_ip, dst_ip, src_port, dst_port,
                                                           static_cast<uint16_t>(kUdpHeader + payload_len))));
  write_udp4_headers(f.data(), dst_mac, src_mac, src_ip, dst_ip, src_port, dst_port, payload_len, 64, c);
}

}  // namespace detail

// Peer -> client (and the second half of a hairpin). The frame's payload
// (at f.data() + kL2L3L4, `len` bytes) came from (peer_ip, peer_port) to
// our relay (relay_ip, relay_port).
template <class Tables>
Verdict peer_to_client(Frame& f, Tables& t, const PortContext& pc, uint32_t relay_ip, uint16_t relay_port,
                       uint32_t peer_ip, uint16_t peer_port, uint16_t len, uint16_t old_checksum,
                       uint32_t old_header_sum, Tsc now) noexcept {
  const PermissionEntry* perm = t.permission(PermissionKey{relay_ip, peer_ip, relay_port});
  if (!perm) return Verdict::punted(PuntReason::UnknownFlow);
  if (perm->expires.load(std::memory_order_relaxed) <= now) return Verdict::punted(PuntReason::Expired);
  const AllocEntry& a = t.alloc(perm->alloc);
  if (a.expires.load(std::memory_order_relaxed) <= now) return Verdict::punted(PuntReason::Expired);
  // The client talks to another of the host's addresses: the reply must
  // come from that address (RFC 8656 §10.3/§12.6: from the server address
  // the client sent to) over the interface that owns it, so the kernel
  // path sends it. Nothing has been written to the frame yet.
  if (pc.local_ip != 0 && a.client.server_ip != pc.local_ip) return Verdict::punted(PuntReason::NoNeighbor);
  Mac next;
  if (!t.next_hop(a.client.client_ip, next)) return Verdict::punted(PuntReason::NoNeighbor);

  const ChannelEntry* ch = t.peer(PeerKey{relay_ip, peer_ip, relay_port, peer_port});
  Verdict v;
  v.kind = Verdict::Tx;
  v.alloc = a.index;
  v.bytes = len;
  if (ch && ch->expires.load(std::memory_order_relaxed) > now) {
    // ChannelData: 4-byte header in front of the data (§12.4); no padding
    // over UDP (§12.5).
    if (!f.prepend(kChannelDataHeaderSize)) return Verdict::dropped(Drop::TooBig);
    uint8_t* cd = f.data() + kL2L3L4;
    std::memcpy(cd, &ch->channel, 2);
    store_be16(cd + 2, len);
    uint32_t added = sum16(cd, 4);
    uint16_t plen = static_cast<uint16_t>(kChannelDataHeaderSize + len);
    if (!f.set_len(kL2L3L4 + plen)) return Verdict::dropped(Drop::TooBig);
    detail::emit(f, next, pc.mac, a.client.server_ip, a.client.client_ip, a.client.server_port, a.client.client_port,
                 plen, old_checksum, old_header_sum, added);
    v.path = Path::PeerToClientChannelData;
    return v;
  }
  // Data indication (§10.3): STUN header, XOR-PEER-ADDRESS, DATA, padding.
  constexpr uint16_t kPrefix = 20 + 4 + 8 + 4;
  uint16_t padded = static_cast<uint16_t>(pad4(len));
  if (!f.prepend(kPrefix)) return Verdict::dropped(Drop::TooBig);
  uint16_t plen = static_cast<uint16_t>(kPrefix + padded);
  if (!f.set_len(kL2L3L4 + plen)) return Verdict::dropped(Drop::TooBig);
  uint8_t* s = f.data() + kL2L3L4;
  store_be16(s, stun::message_type(stun::Method::Data, stun::Class::Indication));
  store_be16(s + 2, static_cast<uint16_t>(kPrefix - 20 + padded));
  store_be32(s + 4, stun::kMagicCookie);
  uint64_t txn = t.next_transaction_id();
  std::memcpy(s + 8, &txn, 8);
  std::memcpy(s + 16, &a.index, 4);
  store_be16(s + 20, static_cast<uint16_t>(stun::Attr::XorPeerAddress));
  store_be16(s + 22, 8);
  s[24] = 0;
  s[25] = stun::kFamilyIpv4;
  uint16_t xport = static_cast<uint16_t>(load_be16(reinterpret_cast<const uint8_t*>(&peer_port)) ^ (stun::kMagicCookie >> 16));
  store_be16(s + 26, xport);
  uint8_t pip[4];
  std::memcpy(pip, &peer_ip, 4);
  for (int i = 0; i < 4; ++i) s[28 + i] = pip[i] ^ s[4 + i];
  store_be16(s + 32, static_cast<uint16_t>(stun::Attr::Data));
  store_be16(s + 34, len);
  std::memset(s + kPrefix + len, 0, padded - len);
  uint32_t added = sum16(s, kPrefix);  // the zero padding adds nothing
  detail::emit(f, next, pc.mac, a.client.server_ip, a.client.client_ip, a.client.server_port, a.client.client_port,
               plen, old_checksum, old_header_sum, added);
  v.path = Path::PeerToClientDataIndication;
  return v;
}

namespace detail {

// After a client's payload has been reduced to `len` bytes to send from the
// allocation's relay address to (peer_ip, peer_port): either transmit, or
// (hairpin) hand it to peer_to_client for another allocation of ours.
template <class Tables>
Verdict relay_out(Frame& f, Tables& t, const PortContext& pc, const AllocEntry& a, uint32_t peer_ip, uint16_t peer_port,
                  uint16_t len, uint16_t old_checksum, uint32_t removed, Path path, Tsc now) noexcept {
  if (pc.is_relay_ip(peer_ip)) {
    // Relay -> relay on the same server (two relayed WebRTC clients): never
    // touches the wire. The checksum chain continues through the same sums.
    uint32_t mid = header_sum(a.relay_ip, peer_ip, a.relay_port, peer_port, static_cast<uint16_t>(kUdpHeader + len));
    // finish_checksum: an intermediate sum of 0xFFFF must not read as "no checksum" (0).
    uint16_t mid_checksum = old_checksum == 0 ? 0 : finish_checksum(checksum_update(old_checksum, removed, mid));
    Verdict v = peer_to_client(f, t, pc, peer_ip, peer_port, a.relay_ip, a.relay_port, len, mid_checksum, mid, now);
    if (v.kind == Verdict::Tx) {
      v.path = Path::Hairpin;
      v.to_peer = false;
      v.hairpin = true;
      v.from_alloc = a.index;
    }
    return v;
  }
  Mac next;
  if (!t.next_hop(peer_ip, next)) return Verdict::punted(PuntReason::NoNeighbor);
  if (!f.set_len(kL2L3L4 + len)) return Verdict::dropped(Drop::TooBig);
  emit(f, next, pc.mac, a.relay_ip, peer_ip, a.relay_port, peer_port, len, old_checksum, removed, 0);
  Verdict v;
  v.kind = Verdict::Tx;
  v.path = path;
  v.to_peer = true;
  v.alloc = a.index;
  v.bytes = len;
  return v;
}

}  // namespace detail

// Client -> peer, ChannelData. `u` describes the received frame.
template <class Tables>
Verdict client_channel_data(Frame& f, Tables& t, const PortContext& pc, const Udp4View& u, Tsc now) noexcept {
  const uint8_t* p = f.data() + kL2L3L4;
  if (u.payload_len < kChannelDataHeaderSize) return Verdict::dropped(Drop::BadChannelData);
  uint16_t channel_h = load_be16(p);
  uint16_t len = load_be16(p + 2);
  if (channel_h < kMinChannel || channel_h > pc.max_channel) return Verdict::dropped(Drop::BadChannelData);
  if (len > u.payload_len - kChannelDataHeaderSize) return Verdict::dropped(Drop::BadChannelData);
  ChannelKey key{u.src_ip, u.dst_ip, u.src_port, u.dst_port, 0, 0};
  std::memcpy(&key.channel, p, 2);
  const ChannelEntry* ch = t.channel(key);
  if (!ch) return Verdict::punted(PuntReason::UnknownFlow);  // not installed (yet): the kernel path decides
  const AllocEntry& a = t.alloc(ch->alloc);
  if (ch->expires.load(std::memory_order_relaxed) <= now || a.expires.load(std::memory_order_relaxed) <= now)
    return Verdict::punted(PuntReason::Expired);
  const PermissionEntry* perm = ch->perm.load(std::memory_order_acquire);
  if (!perm) perm = t.permission(PermissionKey{a.relay_ip, ch->peer_ip, a.relay_port});
  if (!perm || perm->expires.load(std::memory_order_relaxed) <= now) return Verdict::punted(PuntReason::NoPermission);

  // Checksum: remove the old pseudo/UDP header, the 4-byte ChannelData
  // header and any UDP padding after the data; the data words keep their
  // alignment (they move by 4 bytes).
  uint32_t removed = detail::header_sum(u.src_ip, u.dst_ip, u.src_port, u.dst_port,
                                        static_cast<uint16_t>(kUdpHeader + u.payload_len));
  removed += sum16(p, 4);
  uint16_t tail_at = static_cast<uint16_t>(kChannelDataHeaderSize + len);
  if (tail_at < u.payload_len) {
    // Padding bytes; an odd data length leaves a half word to rebalance.
    removed += sum16(p + tail_at, u.payload_len - tail_at, (tail_at & 1) != 0);
  }
  f.adj(kChannelDataHeaderSize);
  return detail::relay_out(f, t, pc, a, ch->peer_ip, ch->peer_port, len, u.udp_checksum, removed,
                           Path::ChannelDataToPeer, now);
}

// Client -> peer, Send indication: only XOR-PEER-ADDRESS and DATA are read.
template <class Tables>
Verdict client_send_indication(Frame& f, Tables& t, const PortContext& pc, const Udp4View& u, Tsc now) noexcept {
  const uint8_t* p = f.data() + kL2L3L4;
  const size_t n = u.payload_len;
  if (n < stun::kHeaderSize || load_be32(p + 4) != stun::kMagicCookie) return Verdict::punted(PuntReason::NotTurn);
  uint16_t type = load_be16(p);
  if (type != stun::message_type(stun::Method::Send, stun::Class::Indication)) return Verdict::punted(PuntReason::Control);
  if (size_t{load_be16(p + 2)} + stun::kHeaderSize != n) return Verdict::dropped(Drop::BadSendIndication);
  size_t peer_at = 0, data_at = 0;
  uint16_t peer_len = 0, data_len = 0;
  for (size_t pos = stun::kHeaderSize; pos + 4 <= n;) {
    uint16_t at = load_be16(p + pos), al = load_be16(p + pos + 2);
    if (al > n - pos - 4) return Verdict::dropped(Drop::BadSendIndication);
    if (at == static_cast<uint16_t>(stun::Attr::XorPeerAddress) && peer_at == 0) {
      peer_at = pos + 4;
      peer_len = al;
    } else if (at == static_cast<uint16_t>(stun::Attr::Data) && data_at == 0) {
      data_at = pos + 4;
      data_len = al;
    }
    pos += 4 + pad4(al);
  }
  if (peer_at == 0 || data_at == 0) return Verdict::dropped(Drop::BadSendIndication);
  if (peer_len == 20 && p[peer_at + 1] == stun::kFamilyIpv6) return Verdict::punted(PuntReason::Ipv6);
  if (peer_len != 8 || p[peer_at + 1] != stun::kFamilyIpv4) return Verdict::dropped(Drop::BadSendIndication);
  uint16_t peer_port_h = static_cast<uint16_t>(load_be16(p + peer_at + 2) ^ (stun::kMagicCookie >> 16));
  uint8_t pip[4];
  for (int i = 0; i < 4; ++i) pip[i] = p[peer_at + 4 + i] ^ p[4 + i];
  uint32_t peer_ip;
  std::memcpy(&peer_ip, pip, 4);
  uint16_t peer_port;
  store_be16(reinterpret_cast<uint8_t*>(&peer_port), peer_port_h);

  const AllocEntry* a = t.client(ClientKey{u.src_ip, u.dst_ip, u.src_port, u.dst_port});
  if (!a) return Verdict::punted(PuntReason::UnknownFlow);
  if (a->expires.load(std::memory_order_relaxed) <= now) return Verdict::punted(PuntReason::Expired);
  const PermissionEntry* perm = t.permission(PermissionKey{a->relay_ip, peer_ip, a->relay_port});
  if (!perm || perm->expires.load(std::memory_order_relaxed) <= now) return Verdict::punted(PuntReason::NoPermission);

  // Checksum: remove everything but the DATA value. data_at is a multiple
  // of 4, so the data keeps its word alignment when it moves to offset 0.
  uint32_t removed = detail::header_sum(u.src_ip, u.dst_ip, u.src_port, u.dst_port, static_cast<uint16_t>(kUdpHeader + n));
  removed += sum16(p, data_at);
  size_t tail = data_at + data_len;
  if (tail < n) removed += sum16(p + tail, n - tail, (tail & 1) != 0);
  f.adj(static_cast<uint16_t>(data_at));
  return detail::relay_out(f, t, pc, *a, peer_ip, peer_port, data_len, u.udp_checksum, removed,
                           Path::SendIndicationToPeer, now);
}

// The whole decision for one received frame.
template <class Tables>
Verdict process_frame(Frame& f, Tables& t, const PortContext& pc, Tsc now) noexcept {
  Udp4View u;
  switch (parse_udp4(f.data(), f.len, u)) {
    case FrameKind::Malformed: return Verdict::dropped(Drop::Malformed);
    case FrameKind::Arp: return Verdict::punted(PuntReason::Arp);
    case FrameKind::Other: return Verdict::punted(PuntReason::Other);
    case FrameKind::Udp4: break;
  }
  const uint8_t* payload = f.data() + kL2L3L4;
  if (pc.is_turn_port(u.dst_port)) {
    if (u.payload_len == 0) return Verdict::punted(PuntReason::NotTurn);
    uint8_t first = payload[0];
    if (first >= 0x40 && first < 0x80) return client_channel_data(f, t, pc, u, now);
    if (first < 0x40) return client_send_indication(f, t, pc, u, now);
    return Verdict::punted(PuntReason::NotTurn);
  }
  if (pc.is_relay_port(u.dst_port) && pc.is_relay_ip(u.dst_ip)) {
    uint32_t old = detail::header_sum(u.src_ip, u.dst_ip, u.src_port, u.dst_port,
                                      static_cast<uint16_t>(kUdpHeader + u.payload_len));
    Verdict v = peer_to_client(f, t, pc, u.dst_ip, u.dst_port, u.src_ip, u.src_port, u.payload_len, u.udp_checksum,
                               old, now);
    return v;
  }
  return Verdict::punted(PuntReason::NotTurn);
}

}  // namespace turn::dp
