// SPDX-License-Identifier: Apache-2.0
// The fast path, one frame at a time, top to bottom:
//
//   classify (Ethernet/IPv4/UDP; to a TURN port or a relay port?)
//   client -> peer : ChannelData (RFC 8656 §12.6) or Send indication (§10.2)
//   peer -> client : ChannelData if a channel is bound, else Data indication (§10.3)
//   relay -> relay : a client's data addressed to one of our own relay
//                    addresses goes straight into the peer -> client step
//   cross-family   : a relayed address of the other family than the
//                    client's (a dual-stack allocation's other half, RFC
//                    8656 §7.2): the same steps with the IP version
//                    translated (IPv4 in, IPv6 out or the reverse)
//
// Each step either rewrites the frame in place and says Tx, or says Punt
// (the kernel path in turn-control serves it: requests, unknown or expired
// flows, unknown next hops, IPv6) or Drop (with a reason). UDP checksums are
// updated incrementally (RFC 1624): the cost does not grow with the payload.
//
// A frame is classified once (classify_udp, at the end of this file); each
// stage is handed the table entries looked up for it (by the burst,
// burst.h, which runs the whole decision for the worker and the tests).
// Templated on the table type so that tests run it over std::unordered_map
// fakes; the worker instantiates it with the rte_hash tables. noexcept, no
// allocation, no locks, no syscalls.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "common/stun/constants.h"
#include "common/turn/channel_data.h"
#include "dataplane/pipeline/checksum.h"
#include "dataplane/pipeline/frame.h"
#include "dataplane/pipeline/headers.h"
#include "dataplane/dp_limits.h"
#include "dataplane/stats/counters.h"
#include "dataplane/table/entries.h"

namespace turn::dp {

// Every stage is inlined into the worker's loop: the Verdict and the Frame
// then live in registers. Returned through memory across calls they were
// written with byte stores and read back with wider loads that cannot be
// store-forwarded (a stall per packet in each of emit, relay_out and the
// worker, seen in the profile of bench/RESULTS.md).
#define TURN_DP_STAGE [[gnu::always_inline]] inline

struct Verdict {
  enum Kind : uint8_t { Tx, Punt, Drop } kind = Punt;
  Path path = Path::Punted;
  dp::Drop drop = dp::Drop::Malformed;
  PuntReason punt = PuntReason::Other;
  uint8_t port = 0;         // Tx: the egress port (index, config order)
  bool offload = false;     // Tx: the port computes the IPv4 and UDP checksums
  bool to_peer = false;     // which per-allocation counter
  uint32_t alloc = 0;       // AllocEntry slot, for counters
  uint16_t bytes = 0;       // relayed payload bytes
  bool hairpin = false;     // also count to_peer for from_alloc
  uint32_t from_alloc = 0;  // hairpin: the sending allocation

  static Verdict punted(PuntReason r) noexcept {
    Verdict v;
    v.kind = Punt;
    v.punt = r;
    return v;
  }
  static Verdict dropped(dp::Drop d) noexcept {
    Verdict v;
    v.kind = Drop;
    v.drop = d;
    return v;
  }
};

// A short set of addresses (network order), searched linearly.
template <class Addr, size_t N>
struct AddrSet {
  Addr a[N]{};
  uint8_t n = 0;
  bool add(const Addr& x) noexcept {
    if (n == N) return false;
    a[n++] = x;
    return true;
  }
  [[nodiscard]] bool empty() const noexcept { return n == 0; }
  [[nodiscard, gnu::always_inline]] bool contains(const Addr& x) const noexcept {
    for (uint8_t i = 0; i < n; ++i)
      if (a[i] == x) return true;
    return false;
  }
};

// What the fast path knows about the data plane's ports and TURN service
// (immutable after start-up).
struct PortContext {
  Mac macs[kMaxPorts]{};                  // each port's MAC: the source of what leaves by it
  uint8_t csum_offload = 0;               // bit i: port i computes IPv4/UDP checksums on tx
  uint16_t turn_ports[4] = {};            // listening ports, network order; 0 = unused
  uint16_t relay_min = 0, relay_max = 0;  // host order
  uint16_t max_channel = kMaxChannel;     // kMaxLegacyChannel with legacy-channel-range
  // Our relay addresses (hairpin detection, and what peer data is sent to).
  AddrSet<uint32_t, kMaxRelayAddresses> relay4;
  AddrSet<Ip6, kMaxRelayAddresses> relay6;
  // The ports' own addresses. A client that reached turn-control on an
  // address none of our ports carries (a dual-homed host whose other
  // interface the kernel owns) must be answered from that address over
  // that interface: the kernel path does it. None set: not checked.
  AddrSet<uint32_t, kMaxPorts> local4;
  AddrSet<Ip6, kMaxPorts> local6;

  [[nodiscard, gnu::always_inline]] bool is_turn_port(uint16_t port_n) const noexcept {
    for (uint16_t p : turn_ports)
      if (p != 0 && p == port_n) return true;
    return false;
  }
  [[nodiscard, gnu::always_inline]] bool is_relay_port(uint16_t port_n) const noexcept {
    uint16_t p = static_cast<uint16_t>((port_n >> 8) | (port_n << 8));
    return p >= relay_min && p <= relay_max;
  }
  [[nodiscard, gnu::always_inline]] bool is_relay_ip(uint32_t ip) const noexcept { return relay4.contains(ip); }
  [[nodiscard, gnu::always_inline]] bool is_relay_ip6(const Ip6& ip) const noexcept { return relay6.contains(ip); }
  [[nodiscard, gnu::always_inline]] bool is_local_ip(uint32_t ip) const noexcept {
    return local4.empty() || local4.contains(ip);
  }
  [[nodiscard, gnu::always_inline]] bool is_local_ip6(const Ip6& ip) const noexcept {
    return local6.empty() || local6.contains(ip);
  }
};

namespace detail {

inline uint16_t finish_checksum(uint16_t c) noexcept { return c == 0 ? 0xFFFF : c; }

// The address family of a flow: its keys, header sizes and header writers.
// The stages below are written once over these.
struct V4 {
  using Addr = uint32_t;  // network order
  using View = Udp4View;
  using ClientKey = dp::ClientKey;
  using ChannelKey = dp::ChannelKey;
  using PeerKey = dp::PeerKey;
  using PermissionKey = dp::PermissionKey;
  static constexpr uint16_t kHeaders = kL2L3L4;  // Ethernet + IPv4 + UDP
  static constexpr bool kV6 = false;
  static constexpr FrameKind kUdp = FrameKind::Udp4;
  static constexpr PuntReason kNotUdp = PuntReason::Other;
  [[gnu::always_inline]] static FrameKind parse(const uint8_t* f, size_t len, View& v) noexcept {
    return parse_udp4(f, len, v);
  }
  static constexpr uint8_t kStunFamily = stun::kFamilyIpv4;
  static constexpr uint16_t kAddrLen = 4;
  template <class T>
  static const ClientKey& client(const T&, const AllocEntry& a) noexcept {
    return a.client;
  }
  template <class T>
  static Addr relay_ip(const T&, const AllocEntry& a) noexcept {
    return a.relay_ip;
  }
  template <class T>
  static Addr relay_ip(const T&, const ChannelEntry& c) noexcept {  // the writer's copy
    return c.relay_ip;
  }
  template <class T>
  static Addr peer_ip(const T&, const ChannelEntry& c) noexcept {
    return c.peer_ip;
  }
  static const uint8_t* bytes(const Addr& a) noexcept { return reinterpret_cast<const uint8_t*>(&a); }
  [[gnu::always_inline]] static bool is_relay_ip(const PortContext& pc, Addr a) noexcept { return pc.is_relay_ip(a); }
  [[gnu::always_inline]] static bool is_local_ip(const PortContext& pc, Addr a) noexcept { return pc.is_local_ip(a); }
  [[gnu::always_inline]] static void write_headers(uint8_t* f, const Mac& dst, const Mac& src, Addr s, Addr d,
                                                   uint16_t sp, uint16_t dp, uint16_t plen, uint16_t csum,
                                                   bool ip_csum) noexcept {
    write_udp4_headers(f, dst, src, s, d, sp, dp, plen, 64, csum, ip_csum);
  }
};

struct V6 {
  using Addr = Ip6;
  using View = Udp6View;
  using ClientKey = ClientKey6;
  using ChannelKey = ChannelKey6;
  using PeerKey = PeerKey6;
  using PermissionKey = PermissionKey6;
  static constexpr uint16_t kHeaders = kL2L3L4v6;  // Ethernet + IPv6 + UDP
  static constexpr bool kV6 = true;
  static constexpr FrameKind kUdp = FrameKind::Udp6;
  static constexpr PuntReason kNotUdp = PuntReason::Ipv6;  // NDP, extension headers, TCP: the kernel's
  [[gnu::always_inline]] static FrameKind parse(const uint8_t* f, size_t len, View& v) noexcept {
    return parse_udp6(f, len, v);
  }
  static constexpr uint8_t kStunFamily = stun::kFamilyIpv6;
  static constexpr uint16_t kAddrLen = 16;
  template <class T>
  static const ClientKey& client(const T& t, const AllocEntry& a) noexcept {
    return t.alloc6(a.index).client;
  }
  template <class T>
  static const Addr& relay_ip(const T& t, const AllocEntry& a) noexcept {
    return t.alloc6(a.index).relay_ip;
  }
  template <class T>
  static const Addr& relay_ip(const T& t, const ChannelEntry& c) noexcept {
    return t.alloc6(c.alloc).relay_ip;
  }
  template <class T>
  static const Addr& peer_ip(const T& t, const ChannelEntry& c) noexcept {
    return t.channel_peer6(c.index);
  }
  static const uint8_t* bytes(const Addr& a) noexcept { return a.b; }
  [[gnu::always_inline]] static bool is_relay_ip(const PortContext& pc, const Addr& a) noexcept {
    return pc.is_relay_ip6(a);
  }
  [[gnu::always_inline]] static bool is_local_ip(const PortContext& pc, const Addr& a) noexcept {
    return pc.is_local_ip6(a);
  }
  [[gnu::always_inline]] static void write_headers(uint8_t* f, const Mac& dst, const Mac& src, const Addr& s,
                                                   const Addr& d, uint16_t sp, uint16_t dp, uint16_t plen,
                                                   uint16_t csum, bool) noexcept {
    write_udp6_headers(f, dst, src, s, d, sp, dp, plen, 64, csum);
  }
};

template <class F>
using OtherFamily = std::conditional_t<F::kV6, V4, V6>;

// The port of an allocation's relayed address of family R, for a client of
// family C: the client's family's is relay_port, the other one alt_port
// (0 when the allocation has none; RFC 8656 §7.2).
template <class R, class C>
[[gnu::always_inline]] inline uint16_t relay_port(const AllocEntry& a) noexcept {
  if constexpr (std::is_same_v<R, C>)
    return a.relay_port;
  else
    return a.alt_port;
}

// Moves the frame's start by N bytes (N > 0: into the headroom; N < 0:
// forward) when the headers in front of the payload change size, e.g. an
// IPv4 header replaced by an IPv6 one (20 bytes more). Nothing is written.
template <int N>
[[nodiscard, gnu::always_inline]] inline bool grow(Frame& f) noexcept {
  if constexpr (N > 0) {
    return f.prepend(static_cast<uint16_t>(N));
  } else {
    if constexpr (N < 0) f.adj(static_cast<uint16_t>(-N));
    return true;
  }
}

// An IPv4 datagram may come without a UDP checksum (0, RFC 768); over IPv6
// one is mandatory (RFC 8200 §8.1). Translated to IPv6 it gets one over its
// payload (this costs a pass over the data, for these datagrams only):
// returned as the checksum of the payload alone, so that the incremental
// update that follows (with nothing removed) adds the new headers.
[[gnu::always_inline]] inline uint16_t payload_only_checksum(const uint8_t* data, uint16_t len) noexcept {
  uint16_t c = static_cast<uint16_t>(~fold(sum16(data, len)));
  return c == 0 ? 0xFFFF : c;  // 0 would read as "no checksum"; 0xFFFF is the same one's-complement value
}

// Pseudo header (RFC 768 / RFC 8200 §8.1: addresses, protocol, UDP length)
// plus the UDP header (ports, length), unfolded.
// Addresses and ports are summed as native 32-bit words and the folded
// result byte-swapped into the big-endian domain of the other terms (the
// one's-complement sum is byte-order independent, RFC 1071 §2(B)).
template <class F>
[[gnu::always_inline]] inline uint32_t header_sum(const typename F::Addr& src_ip, const typename F::Addr& dst_ip,
                                                  uint16_t src_port, uint16_t dst_port, uint16_t udp_len) noexcept {
  uint64_t s = (uint32_t{src_port} << 16) | dst_port;  // the two ports: one native word
  const uint8_t* a = F::bytes(src_ip);
  const uint8_t* b = F::bytes(dst_ip);
  for (int i = 0; i < F::kAddrLen; i += 4) {
    uint32_t x, y;
    std::memcpy(&x, a + i, 4);
    std::memcpy(&y, b + i, 4);
    s += uint64_t{x} + y;
  }
  s = (s & 0xFFFFFFFF) + (s >> 32);
  s = (s & 0xFFFF) + (s >> 16);
  s = (s & 0xFFFF) + (s >> 16);
  s = (s & 0xFFFF) + (s >> 16);
  auto native = static_cast<uint16_t>(s);
  uint16_t be = load_be16(reinterpret_cast<const uint8_t*>(&native));
  return uint32_t{be} + 17u + udp_len + udp_len;
}

// Send `payload_len` bytes, now at offset F::kHeaders, from (src) to (dst)
// through `hop`. removed: the old checksum's contributions that are gone;
// added: new payload prefix words (ChannelData/STUN headers). With checksum
// offload on the egress port (IPv4) the UDP checksum field carries the
// pseudo-header sum and the IPv4 checksum is left to the port (DPDK's tx
// offload contract); v.offload says so.
template <class F>
TURN_DP_STAGE void emit(Frame& f, Verdict& v, const Hop& hop, const PortContext& pc, const typename F::Addr& src_ip,
                        const typename F::Addr& dst_ip, uint16_t src_port, uint16_t dst_port, uint16_t payload_len,
                        uint16_t old_checksum, uint32_t removed, uint32_t added) noexcept {
  const uint16_t udp_len = static_cast<uint16_t>(kUdpHeader + payload_len);
  v.port = hop.port;
  if constexpr (std::is_same_v<F, V4>) {
    if ((pc.csum_offload >> hop.port) & 1) {
      v.offload = true;
      uint32_t ph = sum16(F::bytes(src_ip), 4) + sum16(F::bytes(dst_ip), 4) + 17u + udp_len;
      F::write_headers(f.data(), hop.mac, pc.macs[hop.port], src_ip, dst_ip, src_port, dst_port, payload_len, fold(ph),
                       /*ip_csum=*/false);
      return;
    }
  }
  uint16_t c = 0;  // IPv4 "no checksum" stays so; IPv6 never has 0 (parse_udp6)
  if (old_checksum != 0)
    c = finish_checksum(
        checksum_update(old_checksum, removed, added + header_sum<F>(src_ip, dst_ip, src_port, dst_port, udp_len)));
  F::write_headers(f.data(), hop.mac, pc.macs[hop.port], src_ip, dst_ip, src_port, dst_port, payload_len, c, true);
}

}  // namespace detail

namespace detail {

// Peer -> client, once the allocation is known (its slot `alloc` and its
// client's 5-tuple, from its entry or from the channel's copy): the peer's
// datagram (family P: at f.data() + P::kHeaders, `len` bytes, from
// (peer_ip, peer_port) to our relayed address (relay_ip, relay_port)) goes
// to the allocation's client (family C) as ChannelData (`ch`: the channel bound to that peer on
// that relayed address, looked up by the caller; nullptr: none) or a Data
// indication. P != C: a relayed
// address of the other family than the client's (RFC 8656 §7.2), the IP
// version translated; the UDP checksum chain is the same (the data keep
// their alignment, the pseudo headers of both families are summed).
template <class P, class C, class Tables>
TURN_DP_STAGE Verdict deliver_to_client(Frame& f, Tables& t, const PortContext& pc, const typename C::ClientKey& client,
                                        uint32_t alloc, const ChannelEntry* ch, const typename P::Addr& peer_ip,
                                        uint16_t peer_port, uint16_t len, uint16_t old_checksum,
                                        uint32_t old_header_sum, Tsc now) noexcept {
  // The reply must come from the address the client sent to (RFC 8656
  // §10.3/§12.6) over the interface that owns it: not ours, the kernel's.
  // Nothing has been written to the frame yet.
  if (!C::is_local_ip(pc, client.server_ip)) return Verdict::punted(PuntReason::NoNeighbour);
  Hop next;
  if (!t.next_hop(client.client_ip, next)) return Verdict::punted(PuntReason::NoNeighbour);
  if constexpr (C::kV6 && !P::kV6) {
    if (old_checksum == 0) {  // IPv4 without a checksum, to IPv6 (RFC 8200 §8.1)
      old_checksum = payload_only_checksum(f.data() + P::kHeaders, len);
      old_header_sum = 0;
    }
  }

  Verdict v;
  v.kind = Verdict::Tx;
  v.alloc = alloc;
  v.bytes = len;
  if (ch && ch->expires.load(std::memory_order_relaxed) > now) {
    // ChannelData: 4-byte header in front of the data (§12.4); no padding
    // over UDP (§12.5).
    if (!grow<int{C::kHeaders} + int{kChannelDataHeaderSize} - int{P::kHeaders}>(f))
      return Verdict::dropped(Drop::TooBig);
    uint8_t* cd = f.data() + C::kHeaders;
    std::memcpy(cd, &ch->channel, 2);
    store_be16(cd + 2, len);
    uint32_t added = sum16(cd, 4);
    uint16_t plen = static_cast<uint16_t>(kChannelDataHeaderSize + len);
    if (!f.set_len(C::kHeaders + plen)) return Verdict::dropped(Drop::TooBig);
    emit<C>(f, v, next, pc, client.server_ip, client.client_ip, client.server_port, client.client_port, plen,
            old_checksum, old_header_sum, added);
    v.path = Path::PeerToClientChannelData;
    return v;
  }
  // Data indication (§10.3): STUN header, XOR-PEER-ADDRESS of the peer's
  // family (RFC 8489 §14.2: port and address XORed with the cookie, IPv6
  // also with the transaction id), DATA, padding.
  constexpr uint16_t kPeerAttr = 4 + 4 + P::kAddrLen;
  constexpr uint16_t kPrefix = 20 + kPeerAttr + 4;
  uint16_t padded = static_cast<uint16_t>(pad4(len));
  if (!grow<int{kPrefix} + int{C::kHeaders} - int{P::kHeaders}>(f)) return Verdict::dropped(Drop::TooBig);
  uint16_t plen = static_cast<uint16_t>(kPrefix + padded);
  if (!f.set_len(C::kHeaders + plen)) return Verdict::dropped(Drop::TooBig);
  uint8_t* s = f.data() + C::kHeaders;
  store_be16(s, stun::message_type(stun::Method::Data, stun::Class::Indication));
  store_be16(s + 2, static_cast<uint16_t>(kPrefix - 20 + padded));
  store_be32(s + 4, stun::kMagicCookie);
  uint64_t txn = t.next_transaction_id();
  std::memcpy(s + 8, &txn, 8);
  std::memcpy(s + 16, &alloc, 4);
  store_be16(s + 20, static_cast<uint16_t>(stun::Attr::XorPeerAddress));
  store_be16(s + 22, 4 + P::kAddrLen);
  s[24] = 0;
  s[25] = P::kStunFamily;
  uint16_t xport =
      static_cast<uint16_t>(load_be16(reinterpret_cast<const uint8_t*>(&peer_port)) ^ (stun::kMagicCookie >> 16));
  store_be16(s + 26, xport);
  const uint8_t* pip = P::bytes(peer_ip);
  for (int i = 0; i < P::kAddrLen; ++i) s[28 + i] = pip[i] ^ s[4 + i];  // cookie, then transaction id
  store_be16(s + 28 + P::kAddrLen, static_cast<uint16_t>(stun::Attr::Data));
  store_be16(s + 30 + P::kAddrLen, len);
  std::memset(s + kPrefix + len, 0, padded - len);
  uint32_t added = sum16(s, kPrefix);  // the zero padding adds nothing
  emit<C>(f, v, next, pc, client.server_ip, client.client_ip, client.server_port, client.client_port, plen,
          old_checksum, old_header_sum, added);
  v.path = Path::PeerToClientDataIndication;
  return v;
}

}  // namespace detail

// A channel whose entry carries everything peer -> client data needs: an
// IPv4 client and peer (the entry holds the client's 5-tuple) and a linked
// permission (the entry holds copies of its and the allocation's expiry).
// Then the permission and the allocation are not read (`perm` may be
// nullptr: the burst does not look it up, burst.h). The link is never
// taken back while the entry is in a table, so the burst and the stage
// agree.
template <class F>
[[nodiscard, gnu::always_inline]] inline bool channel_carries_client(const ChannelEntry* ch) noexcept {
  if constexpr (F::kV6)
    return false;
  else
    return ch && !ch->cross && ch->perm.load(std::memory_order_acquire) != 0;
}

// Peer -> client (and the second half of a hairpin). The frame's payload
// (at f.data() + F::kHeaders, `len` bytes) came from (peer_ip, peer_port)
// to one of our relayed addresses. The caller looked up, for that relayed
// address, the permission (RFC 8656 §9: on the relayed address of the
// peer's family F) and the channel bound to the peer: `perm` and `ch`,
// nullptr when absent. The client may be of the other family (a flag of the
// allocation's entry, read with its expiry).
template <class F, class Tables>
TURN_DP_STAGE Verdict peer_to_client(Frame& f, Tables& t, const PortContext& pc, const PermissionEntry* perm,
                                     const ChannelEntry* ch, const typename F::Addr& peer_ip, uint16_t peer_port,
                                     uint16_t len, uint16_t old_checksum, uint32_t old_header_sum, Tsc now) noexcept {
  if constexpr (!F::kV6) {
    if (channel_carries_client<F>(ch)) {
      // The same rules on the writer's copies: the permission (§9) and the
      // allocation must be live; the channel's own expiry chooses
      // ChannelData or a Data indication (deliver_to_client).
      if (ch->perm_expires.load(std::memory_order_relaxed) <= now ||
          ch->alloc_expires.load(std::memory_order_relaxed) <= now)
        return Verdict::punted(PuntReason::Expired);
      const ClientKey client{ch->client_ip, ch->server_ip, ch->client_port, ch->server_port};
      return detail::deliver_to_client<F, F>(f, t, pc, client, ch->alloc, ch, peer_ip, peer_port, len, old_checksum,
                                             old_header_sum, now);
    }
  }
  if (!perm) return Verdict::punted(PuntReason::UnknownFlow);
  if (perm->expires.load(std::memory_order_relaxed) <= now) return Verdict::punted(PuntReason::Expired);
  const AllocEntry& a = t.alloc(perm->alloc);
  if (a.expires.load(std::memory_order_relaxed) <= now) return Verdict::punted(PuntReason::Expired);
  using G = detail::OtherFamily<F>;
  if (a.client6 != (F::kV6 ? 1 : 0)) [[unlikely]]
    return detail::deliver_to_client<F, G>(f, t, pc, G::client(t, a), a.index, ch, peer_ip, peer_port, len,
                                           old_checksum, old_header_sum, now);
  return detail::deliver_to_client<F, F>(f, t, pc, F::client(t, a), a.index, ch, peer_ip, peer_port, len, old_checksum,
                                         old_header_sum, now);
}

namespace detail {

// After a client's (family C) payload has been reduced to `len` bytes, now
// at f.data() + F::kHeaders, to send from the allocation's relayed address
// of family F to (peer_ip, peer_port): either transmit, or (hairpin) hand
// it to peer_to_client for another allocation of ours.
// The sender is allocation `alloc`, whose relayed address of family F is
// (relay_ip, relay_port_n): read from its AllocEntry (Send) or from the
// channel's copy (ChannelData, which then never reads the allocation).
template <class F, class Tables>
TURN_DP_STAGE Verdict relay_out(Frame& f, Tables& t, const PortContext& pc, uint32_t alloc,
                                const typename F::Addr& relay_ip, uint16_t relay_port_n,
                                const typename F::Addr& peer_ip, uint16_t peer_port, uint16_t len,
                                uint16_t old_checksum, uint32_t removed, Path path, Tsc now) noexcept {
  if (F::is_relay_ip(pc, peer_ip)) {
    // Relay -> relay on the same server (two relayed WebRTC clients): never
    // touches the wire. The checksum chain continues through the same sums.
    uint32_t mid = header_sum<F>(relay_ip, peer_ip, relay_port_n, peer_port, static_cast<uint16_t>(kUdpHeader + len));
    // finish_checksum: an intermediate sum of 0xFFFF must not read as "no checksum" (0).
    uint16_t mid_checksum = old_checksum == 0 ? 0 : finish_checksum(checksum_update(old_checksum, removed, mid));
    // The frame now arrives at our other relayed address: a decision of its
    // own, whose entries are looked up here (not in the burst's bulk pass,
    // which knew only the sender's).
    const PermissionEntry* perm = t.permission(typename F::PermissionKey{peer_ip, relay_ip, peer_port});
    const ChannelEntry* ch = t.peer(typename F::PeerKey{peer_ip, relay_ip, peer_port, relay_port_n});
    Verdict v = peer_to_client<F>(f, t, pc, perm, ch, relay_ip, relay_port_n, len, mid_checksum, mid, now);
    if (v.kind == Verdict::Tx) {
      v.path = Path::Hairpin;
      v.to_peer = false;
      v.hairpin = true;
      v.from_alloc = alloc;
    }
    return v;
  }
  Hop next;
  if (!t.next_hop(peer_ip, next)) return Verdict::punted(PuntReason::NoNeighbour);
  if (!f.set_len(F::kHeaders + len)) return Verdict::dropped(Drop::TooBig);
  Verdict v;
  emit<F>(f, v, next, pc, relay_ip, peer_ip, relay_port_n, peer_port, len, old_checksum, removed, 0);
  v.kind = Verdict::Tx;
  v.path = path;
  v.to_peer = true;
  v.alloc = alloc;
  v.bytes = len;
  return v;
}

// Client (family C) -> peer (family F) once the channel is known and live:
// the permission on the relayed address of the peer's family (RFC 8656
// §9), then the ChannelData header off and out from that address. F != C:
// the channel's `cross` bit (§7.2 dual-stack), the IP version translated.
// Only the channel's entry is read (its copies of the allocation's relayed
// address and the permission's expiry), unless its permission is not
// linked yet.
template <class C, class F, class Tables>
TURN_DP_STAGE Verdict channel_data_out(Frame& f, Tables& t, const PortContext& pc, const typename C::View& u,
                                       const ChannelEntry& ch, uint16_t len, Tsc now) noexcept {
  const uint8_t* p = f.data() + C::kHeaders;
  const typename F::Addr& relay_ip = F::relay_ip(t, ch);
  if (ch.perm.load(std::memory_order_acquire)) {
    if (ch.perm_expires.load(std::memory_order_relaxed) <= now) return Verdict::punted(PuntReason::NoPermission);
  } else {
    const PermissionEntry* perm = t.permission(typename F::PermissionKey{relay_ip, F::peer_ip(t, ch), ch.relay_port});
    if (!perm || perm->expires.load(std::memory_order_relaxed) <= now) return Verdict::punted(PuntReason::NoPermission);
  }

  // Checksum: remove the old pseudo/UDP header, the 4-byte ChannelData
  // header and any UDP padding after the data; the data words keep their
  // alignment (they move by 4 bytes).
  uint16_t old_checksum = u.udp_checksum;
  uint32_t removed =
      header_sum<C>(u.src_ip, u.dst_ip, u.src_port, u.dst_port, static_cast<uint16_t>(kUdpHeader + u.payload_len));
  removed += sum16(p, 4);
  uint16_t tail_at = static_cast<uint16_t>(kChannelDataHeaderSize + len);
  if (tail_at < u.payload_len) {
    // Padding bytes; an odd data length leaves a half word to rebalance.
    removed += sum16(p + tail_at, u.payload_len - tail_at, (tail_at & 1) != 0);
  }
  if constexpr (F::kV6 && !C::kV6) {
    if (old_checksum == 0) {  // IPv4 without a checksum, to IPv6 (RFC 8200 §8.1)
      old_checksum = payload_only_checksum(p + kChannelDataHeaderSize, len);
      removed = 0;
    }
  }
  f.adj(kChannelDataHeaderSize);
  if (!grow<int{F::kHeaders} - int{C::kHeaders}>(f)) return Verdict::dropped(Drop::TooBig);
  return relay_out<F>(f, t, pc, ch.alloc, relay_ip, ch.relay_port, F::peer_ip(t, ch), ch.peer_port, len, old_checksum,
                      removed, Path::ChannelDataToPeer, now);
}

// Client (family C) -> peer (family F), Send indication whose
// XOR-PEER-ADDRESS (at peer_at, 4 + F::kAddrLen bytes, family checked) and
// DATA (data_at, data_len) were found. F != C: to the allocation's relayed
// address of the other family (§7.2); one without it drops the indication
// (§11.2: the peer cannot be reached from any of its addresses).
template <class C, class F, class Tables>
TURN_DP_STAGE Verdict send_out(Frame& f, Tables& t, const PortContext& pc, const typename C::View& u,
                               const AllocEntry* a, size_t peer_at, size_t data_at, uint16_t data_len,
                               Tsc now) noexcept {
  const uint8_t* p = f.data() + C::kHeaders;
  const size_t n = u.payload_len;
  uint16_t peer_port_h = static_cast<uint16_t>(load_be16(p + peer_at + 2) ^ (stun::kMagicCookie >> 16));
  // The address XORed with the cookie, then the transaction id, a word at
  // a time (bytes stored and read back as one word stalled the pipeline).
  typename F::Addr peer_ip;
  for (int i = 0; i < F::kAddrLen; i += 4) {
    uint32_t x, y;
    std::memcpy(&x, p + peer_at + 4 + i, 4);
    std::memcpy(&y, p + 4 + i, 4);
    x ^= y;
    std::memcpy(reinterpret_cast<uint8_t*>(&peer_ip) + i, &x, 4);
  }
  uint16_t peer_port;
  store_be16(reinterpret_cast<uint8_t*>(&peer_port), peer_port_h);

  if (!a) return Verdict::punted(PuntReason::UnknownFlow);
  if (a->expires.load(std::memory_order_relaxed) <= now) return Verdict::punted(PuntReason::Expired);
  if constexpr (!std::is_same_v<C, F>) {
    if (a->alt_port == 0) return Verdict::dropped(Drop::FamilyMismatch);
  }
  const PermissionEntry* perm =
      t.permission(typename F::PermissionKey{F::relay_ip(t, *a), peer_ip, relay_port<F, C>(*a)});
  if (!perm || perm->expires.load(std::memory_order_relaxed) <= now) return Verdict::punted(PuntReason::NoPermission);

  // Checksum: remove everything but the DATA value. data_at is a multiple
  // of 4, so the data keeps its word alignment when it moves to offset 0.
  uint16_t old_checksum = u.udp_checksum;
  uint32_t removed = header_sum<C>(u.src_ip, u.dst_ip, u.src_port, u.dst_port, static_cast<uint16_t>(kUdpHeader + n));
  removed += sum16(p, data_at);
  size_t tail = data_at + data_len;
  if (tail < n) removed += sum16(p + tail, n - tail, (tail & 1) != 0);
  if constexpr (F::kV6 && !C::kV6) {
    if (old_checksum == 0) {  // IPv4 without a checksum, to IPv6 (RFC 8200 §8.1)
      old_checksum = payload_only_checksum(p + data_at, data_len);
      removed = 0;
    }
  }
  f.adj(static_cast<uint16_t>(data_at));
  if (!grow<int{F::kHeaders} - int{C::kHeaders}>(f)) return Verdict::dropped(Drop::TooBig);
  return relay_out<F>(f, t, pc, a->index, F::relay_ip(t, *a), relay_port<F, C>(*a), peer_ip, peer_port, data_len,
                      old_checksum, removed, Path::SendIndicationToPeer, now);
}

}  // namespace detail

// Client -> peer, ChannelData whose header classify_udp checked (a channel
// number in range, a length within the datagram). `ch`: the channel of the
// frame's 5-tuple and number (nullptr: none), looked up by the burst.
template <class F, class Tables>
TURN_DP_STAGE Verdict client_channel_data(Frame& f, Tables& t, const PortContext& pc, const typename F::View& u,
                                          const ChannelEntry* ch, Tsc now) noexcept {
  if (!ch) return Verdict::punted(PuntReason::UnknownFlow);  // not installed (yet): the kernel path decides
  const uint16_t len = load_be16(f.data() + F::kHeaders + 2);
  // The allocation's expiry as the writer copied it into the channel.
  if (ch->expires.load(std::memory_order_relaxed) <= now || ch->alloc_expires.load(std::memory_order_relaxed) <= now)
    return Verdict::punted(PuntReason::Expired);
  // A peer of the other family: the channel is on the other relayed address.
  if (ch->cross) [[unlikely]]
    return detail::channel_data_out<F, detail::OtherFamily<F>>(f, t, pc, u, *ch, len, now);
  return detail::channel_data_out<F, F>(f, t, pc, u, *ch, len, now);
}

// Client -> peer, Send indication: only XOR-PEER-ADDRESS and DATA are read.
// `a`: the allocation of the frame's 5-tuple (nullptr: none), looked up
// by the burst before the message is read: anything else a client sends to
// a TURN port (requests, Binding) is the kernel path's.
template <class F, class Tables>
TURN_DP_STAGE Verdict client_send_indication(Frame& f, Tables& t, const PortContext& pc, const typename F::View& u,
                                             const AllocEntry* a, Tsc now) noexcept {
  const uint8_t* p = f.data() + F::kHeaders;
  const size_t n = u.payload_len;
  if (n < stun::kHeaderSize || load_be32(p + 4) != stun::kMagicCookie) return Verdict::punted(PuntReason::NotTurn);
  uint16_t type = load_be16(p);
  if (type != stun::message_type(stun::Method::Send, stun::Class::Indication))
    return Verdict::punted(PuntReason::Control);
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
  using G = detail::OtherFamily<F>;
  // A peer of the other family: the allocation's relayed address of that
  // family sends it (RFC 8656 §7.2 dual-stack), or nothing can (dropped).
  if (peer_len == 4 + G::kAddrLen && p[peer_at + 1] == G::kStunFamily) [[unlikely]]
    return detail::send_out<F, G>(f, t, pc, u, a, peer_at, data_at, data_len, now);
  if (peer_len != 4 + F::kAddrLen || p[peer_at + 1] != F::kStunFamily) return Verdict::dropped(Drop::BadSendIndication);
  return detail::send_out<F, F>(f, t, pc, u, a, peer_at, data_at, data_len, now);
}

// ---- classification: once per frame, before any lookup ----------------------

// The stage a frame goes to. Decided: its verdict is known without a lookup.
enum class Stage : uint8_t { Decided, ChannelData, Stun, PeerData };

// The stage of a UDP frame of family F (`u`: its view). Decided: `v` holds
// the verdict (punted or dropped). A ChannelData header is checked here, so
// that no key is looked up for a malformed one.
template <class F>
TURN_DP_STAGE Stage classify_udp(const Frame& f, const PortContext& pc, const typename F::View& u,
                                 Verdict& v) noexcept {
  const uint8_t* p = f.data() + F::kHeaders;
  if (pc.is_turn_port(u.dst_port)) {
    if (u.payload_len == 0) {
      v = Verdict::punted(PuntReason::NotTurn);
      return Stage::Decided;
    }
    const uint8_t first = p[0];
    if (first >= 0x40 && first < 0x80) {  // ChannelData (RFC 8656 §12.4)
      if (u.payload_len < kChannelDataHeaderSize || load_be16(p) < kMinChannel || load_be16(p) > pc.max_channel ||
          load_be16(p + 2) > u.payload_len - kChannelDataHeaderSize) {
        v = Verdict::dropped(Drop::BadChannelData);
        return Stage::Decided;
      }
      return Stage::ChannelData;
    }
    if (first < 0x40) return Stage::Stun;  // a Send indication, or a message for the kernel path
    v = Verdict::punted(PuntReason::NotTurn);
    return Stage::Decided;
  }
  if (pc.is_relay_port(u.dst_port) && F::is_relay_ip(pc, u.dst_ip)) return Stage::PeerData;
  v = Verdict::punted(PuntReason::NotTurn);
  return Stage::Decided;
}

// The keys of a classified frame's lookups: a channel is the client's
// 5-tuple and number (RFC 8656 §12), an allocation the client's 5-tuple
// (§2.2), a permission the relayed transport address and the peer's IP
// (§9), a peer's channel the relayed and the peer's transport addresses.
template <class F>
[[gnu::always_inline]] inline typename F::ChannelKey channel_key(const Frame& f, const typename F::View& u) noexcept {
  typename F::ChannelKey k{u.src_ip, u.dst_ip, u.src_port, u.dst_port, 0, 0};
  std::memcpy(&k.channel, f.data() + F::kHeaders, 2);
  return k;
}
template <class F>
[[gnu::always_inline]] inline typename F::ClientKey client_key(const typename F::View& u) noexcept {
  return {u.src_ip, u.dst_ip, u.src_port, u.dst_port};
}
template <class F>
[[gnu::always_inline]] inline typename F::PermissionKey permission_key(const typename F::View& u) noexcept {
  return {u.dst_ip, u.src_ip, u.dst_port};
}
template <class F>
[[gnu::always_inline]] inline typename F::PeerKey peer_key(const typename F::View& u) noexcept {
  return {u.dst_ip, u.src_ip, u.dst_port, u.src_port};
}

// What a classified frame's lookups found, for its stage (nullptr: a miss).
struct Found {
  const ChannelEntry* channel = nullptr;        // ChannelData
  const AllocEntry* client = nullptr;           // Stun
  const PermissionEntry* permission = nullptr;  // PeerData
  const ChannelEntry* peer = nullptr;           // PeerData
};

// A punted frame goes to the kernel exactly as received: no stage writes a
// byte before it can still punt, and the offsets a stage moved (the
// ChannelData or STUN header stripped before the next hop was known) are
// put back here. Only the offsets are saved (a copy of the whole Frame read
// back 16 bytes over narrower stores: a store-forwarding stall).
struct PuntRestore {
  Frame& f;
  const uint16_t off, len;
  explicit PuntRestore(Frame& fr) noexcept : f(fr), off(fr.off), len(fr.len) {}
  [[gnu::always_inline]] Verdict operator()(Verdict v) const noexcept {
    if (v.kind == Verdict::Punt) {
      f.off = off;
      f.len = len;
    }
    return v;
  }
};

// A classified frame's stage, handed what its lookups found. The decision
// for every frame that is not Decided: the burst (burst.h) calls it once.
template <class F, class Tables>
TURN_DP_STAGE Verdict run_stage(Frame& f, Tables& t, const PortContext& pc, const typename F::View& u, Stage s,
                                const Found& e, Tsc now) noexcept {
  PuntRestore restore(f);
  switch (s) {
    case Stage::ChannelData:
      return restore(client_channel_data<F>(f, t, pc, u, e.channel, now));
    case Stage::Stun:
      return restore(client_send_indication<F>(f, t, pc, u, e.client, now));
    case Stage::PeerData: {
      uint32_t old = detail::header_sum<F>(u.src_ip, u.dst_ip, u.src_port, u.dst_port,
                                           static_cast<uint16_t>(kUdpHeader + u.payload_len));
      return restore(peer_to_client<F>(f, t, pc, e.permission, e.peer, u.src_ip, u.src_port, u.payload_len,
                                       u.udp_checksum, old, now));
    }
    case Stage::Decided:
      break;
  }
  return Verdict::punted(PuntReason::Other);
}

}  // namespace turn::dp
