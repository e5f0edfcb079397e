// SPDX-License-Identifier: Apache-2.0
// What the EAL-free tests of dataplane/pipeline/fastpath.h share
// (tests/dataplane/fastpath_*_test.cpp, tests/fuzz/fastpath_fuzz.cpp):
//
//   - the addresses of their topology (RFC 5737 documentation ranges) and a
//     fake clock (process_frame runs at kNow, entries live until kLive);
//   - port_context(): the PortContext both run with;
//   - FakeTables: WorkerTables' reader interface (dataplane/table/tables.h)
//     over std::unordered_map, with writers for the tests;
//   - Buf: a frame in a buffer with guard bytes on both sides;
//   - reference checksums (RFC 1071), written independently of
//     dataplane/pipeline/checksum.h so that they can catch its mistakes.
//
// Header-only, no gtest: the fuzz target is built by clang with libFuzzer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "dataplane/pipeline/burst.h"
#include "tests/dataplane/net_order.h"

namespace turn::dp::fake {

// ---- addresses (ip4, np: net_order.h) ----------------------------------------

inline constexpr Mac kPortMac{{0x02, 0x00, 0x00, 0x00, 0x00, 0xAA}};
inline constexpr Mac kPort1Mac{{0x02, 0x00, 0x00, 0x00, 0x01, 0xAA}};  // second port (dual-homed)
inline constexpr Mac kClientHopMac{{0x02, 0x00, 0x00, 0x00, 0xC1, 0x01}};
inline constexpr Mac kPeerHopMac{{0x02, 0x00, 0x00, 0x00, 0xEE, 0x01}};

inline const uint32_t kServer = ip4(192, 0, 2, 10);  // TURN listening address = relay ip 1
inline const uint32_t kRelay2 = ip4(192, 0, 2, 11);  // second relay ip
inline const uint32_t kClientA = ip4(198, 51, 100, 10);
inline const uint32_t kClientB = ip4(198, 51, 100, 20);
inline const uint32_t kPeer1 = ip4(203, 0, 113, 5);
inline const uint32_t kPeer2 = ip4(203, 0, 113, 6);
inline constexpr uint16_t kTurnPort = 3478;
inline constexpr uint16_t kClientAPort = 50000, kClientBPort = 50001;
inline constexpr uint16_t kRelayAPort = 49200, kRelayBPort = 49300;
inline constexpr uint16_t kPeer1Port = 6000, kPeer2Port = 7000;

inline constexpr Tsc kNow = 1'000'000;
inline constexpr Tsc kLive = kNow + 1'000'000;

// Port 0 (kPortMac) and 1 (kPort1Mac), TURN on kTurnPort, relay ports
// 49152-65535 on kServer and kRelay2.
inline PortContext port_context(uint16_t max_channel = kMaxChannel) {
  PortContext pc;
  pc.macs[0] = kPortMac;
  pc.macs[1] = kPort1Mac;
  pc.turn_ports[0] = np(kTurnPort);
  pc.relay_min = 49152;
  pc.relay_max = 65535;
  pc.max_channel = max_channel;
  pc.relay4.add(kServer);
  pc.relay4.add(kRelay2);
  return pc;
}

// ---- FakeTables: WorkerTables' interface over std::unordered_map ------------

struct RawHash {
  template <class K>
  size_t operator()(const K& k) const noexcept {
    return std::hash<std::string_view>{}(std::string_view(reinterpret_cast<const char*>(&k), sizeof k));
  }
};

class FakeTables {
 public:
  // IPv4 permission lookups so far (a linked channel's peer data makes none).
  mutable uint64_t permission_lookups = 0;
  // Readers: the same methods (and constness) as WorkerTables.
  [[nodiscard]] const AllocEntry* client(const ClientKey& k) const noexcept {
    auto it = clients_.find(k);
    return it == clients_.end() ? nullptr : &allocs_[it->second];
  }
  [[nodiscard]] const ChannelEntry* channel(const ChannelKey& k) const noexcept {
    auto it = channels_.find(k);
    return it == channels_.end() ? nullptr : &chans_[it->second];
  }
  [[nodiscard]] const ChannelEntry* peer(const PeerKey& k) const noexcept {
    auto it = peers_.find(k);
    return it == peers_.end() ? nullptr : &chans_[it->second];
  }
  [[nodiscard]] const PermissionEntry* permission(const PermissionKey& k) const noexcept {
    ++permission_lookups;
    auto it = perm_index_.find(k);
    return it == perm_index_.end() ? nullptr : &perms_[it->second];
  }
  [[nodiscard]] const AllocEntry& alloc(uint32_t i) const noexcept { return allocs_[i]; }
  [[nodiscard]] bool next_hop(uint32_t ip, Hop& h) const noexcept {
    auto it = neigh_.find(ip);
    if (it == neigh_.end()) return false;
    h = it->second;
    return true;
  }
  [[nodiscard]] uint64_t next_transaction_id() noexcept { return ++txn; }
  // IPv6 flows.
  [[nodiscard]] const AllocEntry* client(const ClientKey6& k) const noexcept {
    auto it = clients6_.find(k);
    return it == clients6_.end() ? nullptr : &allocs_[it->second];
  }
  [[nodiscard]] const ChannelEntry* channel(const ChannelKey6& k) const noexcept {
    auto it = channels6_.find(k);
    return it == channels6_.end() ? nullptr : &chans_[it->second];
  }
  [[nodiscard]] const ChannelEntry* peer(const PeerKey6& k) const noexcept {
    auto it = peers6_.find(k);
    return it == peers6_.end() ? nullptr : &chans_[it->second];
  }
  [[nodiscard]] const PermissionEntry* permission(const PermissionKey6& k) const noexcept {
    auto it = perm_index6_.find(k);
    return it == perm_index6_.end() ? nullptr : &perms_[it->second];
  }
  [[nodiscard]] const AllocEntry6& alloc6(uint32_t i) const { return allocs6_.at(i); }
  [[nodiscard]] const Ip6& channel_peer6(uint32_t i) const { return chan_peers6_.at(i); }
  [[nodiscard]] bool next_hop(const Ip6& ip, Hop& h) const noexcept {
    for (const auto& [a, hop] : neigh6_)
      if (a == ip) {
        h = hop;
        return true;
      }
    return false;
  }

  // Writers (the tests' own). Entries never move (std::deque), so the
  // pointers the writers return stay valid.
  uint32_t add_alloc(uint32_t client_ip, uint16_t client_port_h, uint32_t relay_ip, uint16_t relay_port_h,
                     Tsc expires = kLive, uint32_t server_ip = kServer, uint16_t server_port_h = kTurnPort) {
    auto idx = static_cast<uint32_t>(allocs_.size()) + index_base_;
    // Slots need not start at 0 (the real tables hand them out from a free list).
    while (allocs_.size() < idx) allocs_.emplace_back();
    AllocEntry& e = allocs_.emplace_back();
    e.client = ClientKey{client_ip, server_ip, np(client_port_h), np(server_port_h)};
    e.relay_ip = relay_ip;
    e.relay_port = np(relay_port_h);
    e.index = idx;
    e.expires.store(expires);
    clients_[e.client] = idx;
    index_base_ = 0;
    return idx;
  }
  void skip_slots(uint32_t n) { index_base_ = static_cast<uint32_t>(allocs_.size()) + n; }
  // Permissions and channels are on the relayed address of the peer's
  // family (as Tables' writer puts them: RFC 8656 §9, §12, §7.2), whatever
  // the client's family.
  const PermissionEntry* add_permission(uint32_t alloc_idx, uint32_t peer_ip, Tsc expires = kLive) {
    const AllocEntry& a = allocs_[alloc_idx];
    PermissionEntry& e = perms_.emplace_back();
    e.alloc = alloc_idx;
    e.expires.store(expires);
    perm_index_[PermissionKey{a.relay_ip, peer_ip, port4(a), 0}] = static_cast<uint32_t>(perms_.size() - 1);
    return &e;
  }
  // `link`: the channel's permission as the writer links it (nullptr: the
  // fast path looks it up).
  void add_channel(uint32_t alloc_idx, uint16_t channel_h, uint32_t peer_ip, uint16_t peer_port_h, Tsc expires = kLive,
                   const PermissionEntry* link = nullptr) {
    const AllocEntry& a = allocs_[alloc_idx];
    ChannelEntry& e = chans_.emplace_back();
    e.alloc = alloc_idx;
    e.peer_ip = peer_ip;
    e.peer_port = np(peer_port_h);
    e.channel = np(channel_h);
    e.expires.store(expires);
    // The copies Tables' writer keeps in the entry (entries.h).
    e.alloc_expires.store(a.expires.load());
    e.perm_expires.store(link ? link->expires.load() : 0);
    e.relay_ip = a.relay_ip;
    e.relay_port = port4(a);
    if (!a.client6) {  // the IPv4 client's 5-tuple, as Tables' writer copies it
      e.client_ip = a.client.client_ip;
      e.server_ip = a.client.server_ip;
      e.client_port = a.client.client_port;
      e.server_port = a.client.server_port;
    }
    e.perm.store(link_of(link));
    auto slot = static_cast<uint32_t>(chans_.size() - 1);
    e.index = slot;
    e.cross = a.client6;  // an IPv4 peer of an IPv6 client
    add_channel_key(a, e.channel, slot);
    peers_[PeerKey{a.relay_ip, peer_ip, port4(a), e.peer_port}] = slot;
  }
  // As Tables' writer does: the allocation's channels keep a copy.
  void set_alloc_expiry(uint32_t idx, Tsc t) {
    allocs_[idx].expires.store(t);
    for (ChannelEntry& c : chans_)
      if (c.alloc == idx) c.alloc_expires.store(t);
  }
  void add_neighbour(uint32_t ip, const Mac& m, uint8_t port = 0) { neigh_[ip] = Hop{m, port}; }

  uint32_t add_alloc6(const Ip6& client_ip, uint16_t client_port_h, const Ip6& server_ip, uint16_t server_port_h,
                      const Ip6& relay_ip, uint16_t relay_port_h, Tsc expires = kLive) {
    auto idx = static_cast<uint32_t>(allocs_.size());
    AllocEntry& e = allocs_.emplace_back();
    AllocEntry6& e6 = allocs6_[idx];
    e6.client = ClientKey6{client_ip, server_ip, np(client_port_h), np(server_port_h)};
    e6.relay_ip = relay_ip;
    e.relay_port = np(relay_port_h);
    e.client6 = 1;
    e.index = idx;
    e.expires.store(expires);
    clients6_[e6.client] = idx;
    return idx;
  }
  // Dual-stack allocations (RFC 8656 §7.2): an IPv4 and an IPv6 relayed
  // address, for an IPv4 client (dual4) or an IPv6 one (dual6); as Tables'
  // writer fills the entry (relay_port: the client's family's, alt_port:
  // the other one's).
  uint32_t add_dual4(uint32_t client_ip, uint16_t client_port_h, uint32_t relay4, uint16_t relay4_port_h,
                     const Ip6& relay6, uint16_t relay6_port_h, Tsc expires = kLive) {
    uint32_t idx = add_alloc(client_ip, client_port_h, relay4, relay4_port_h, expires);
    allocs_[idx].alt_port = np(relay6_port_h);
    allocs6_[idx].relay_ip = relay6;
    return idx;
  }
  uint32_t add_dual6(const Ip6& client_ip, uint16_t client_port_h, const Ip6& server_ip, uint16_t server_port_h,
                     const Ip6& relay6, uint16_t relay6_port_h, uint32_t relay4, uint16_t relay4_port_h,
                     Tsc expires = kLive) {
    uint32_t idx = add_alloc6(client_ip, client_port_h, server_ip, server_port_h, relay6, relay6_port_h, expires);
    allocs_[idx].relay_ip = relay4;
    allocs_[idx].alt_port = np(relay4_port_h);
    return idx;
  }
  void add_permission6(uint32_t alloc_idx, const Ip6& peer_ip, Tsc expires = kLive) {
    const AllocEntry& a = allocs_[alloc_idx];
    PermissionEntry& e = perms_.emplace_back();
    e.alloc = alloc_idx;
    e.expires.store(expires);
    perm_index6_[PermissionKey6{alloc6(alloc_idx).relay_ip, peer_ip, port6(a), 0, 0}] =
        static_cast<uint32_t>(perms_.size() - 1);
  }
  void add_channel6(uint32_t alloc_idx, uint16_t channel_h, const Ip6& peer_ip, uint16_t peer_port_h,
                    Tsc expires = kLive) {
    const AllocEntry& a = allocs_[alloc_idx];
    ChannelEntry& e = chans_.emplace_back();
    e.alloc = alloc_idx;
    e.peer_port = np(peer_port_h);
    e.channel = np(channel_h);
    e.expires.store(expires);
    e.alloc_expires.store(a.expires.load());
    e.relay_ip = a.relay_ip;
    e.relay_port = port6(a);
    auto slot = static_cast<uint32_t>(chans_.size() - 1);
    e.index = slot;
    e.cross = a.client6 ? 0u : 1u;  // an IPv6 peer of an IPv4 client
    chan_peers6_[slot] = peer_ip;
    add_channel_key(a, e.channel, slot);
    peers6_[PeerKey6{alloc6(alloc_idx).relay_ip, peer_ip, port6(a), e.peer_port}] = slot;
  }
  void add_neighbour6(const Ip6& ip, const Mac& m, uint8_t port = 0) { neigh6_.emplace_back(ip, Hop{m, port}); }

  uint64_t txn = 0;  // the last transaction id handed out

 private:
  // The port of the relayed address of each family.
  static uint16_t port4(const AllocEntry& a) { return a.client6 ? a.alt_port : a.relay_port; }
  static uint16_t port6(const AllocEntry& a) { return a.client6 ? a.relay_port : a.alt_port; }
  // The channel key is the client's 5-tuple and channel number.
  void add_channel_key(const AllocEntry& a, uint16_t channel_n, uint32_t slot) {
    if (a.client6)
      channels6_[ChannelKey6::of(alloc6(a.index).client, channel_n)] = slot;
    else
      channels_[ChannelKey::of(a.client, channel_n)] = slot;
  }

  std::deque<AllocEntry> allocs_;
  // ChannelEntry::perm of a link: the permission's slot + 1 (0: none).
  uint32_t link_of(const PermissionEntry* link) const {
    for (size_t i = 0; link && i < perms_.size(); ++i)
      if (&perms_[i] == link) return static_cast<uint32_t>(i) + 1;
    return 0;
  }
  std::deque<ChannelEntry> chans_;
  std::deque<PermissionEntry> perms_;
  std::unordered_map<ClientKey, uint32_t, RawHash> clients_;
  std::unordered_map<ChannelKey, uint32_t, RawHash> channels_;
  std::unordered_map<PeerKey, uint32_t, RawHash> peers_;
  std::unordered_map<PermissionKey, uint32_t, RawHash> perm_index_;
  std::unordered_map<uint32_t, Hop> neigh_;
  std::unordered_map<ClientKey6, uint32_t, RawHash> clients6_;
  std::unordered_map<ChannelKey6, uint32_t, RawHash> channels6_;
  std::unordered_map<PeerKey6, uint32_t, RawHash> peers6_;
  std::unordered_map<PermissionKey6, uint32_t, RawHash> perm_index6_;
  std::vector<std::pair<Ip6, Hop>> neigh6_;
  std::map<uint32_t, AllocEntry6> allocs6_;
  std::map<uint32_t, Ip6> chan_peers6_;
  uint32_t index_base_ = 0;
};

// ---- a frame in a guarded buffer ----------------------------------------------

// guard | headroom | frame | tailroom | guard: the guard bytes show any write
// outside the buffer, and the received bytes stay known (punted frames must
// reach the kernel unchanged).
class Buf {
 public:
  static constexpr size_t kGuard = 64;
  static constexpr uint8_t kGuardByte = 0xA5;

  explicit Buf(std::vector<uint8_t> frame, uint16_t headroom = 128, uint16_t tailroom = 128)
      : orig_(std::move(frame)), headroom_(headroom) {
    cap_ = static_cast<uint16_t>(headroom + orig_.size() + tailroom);
    mem_.assign(kGuard + cap_ + kGuard, kGuardByte);
    reset();
  }
  // Restores the received frame (no allocation: the test loops use this).
  void reset() noexcept {
    std::memset(mem_.data() + kGuard, 0x5A, cap_);
    if (!orig_.empty()) std::memcpy(mem_.data() + kGuard + headroom_, orig_.data(), orig_.size());
    f = Frame{mem_.data() + kGuard, headroom_, static_cast<uint16_t>(orig_.size()), cap_};
  }
  [[nodiscard]] bool guards_ok() const {
    for (size_t i = 0; i < kGuard; ++i)
      if (mem_[i] != kGuardByte || mem_[kGuard + cap_ + i] != kGuardByte) return false;
    return true;
  }
  [[nodiscard]] bool in_bounds() const { return size_t{f.off} + f.len <= cap_; }
  // The frame is where and as long as it was received (offsets unchanged).
  [[nodiscard]] bool at_original_offsets() const { return f.off == headroom_ && f.len == orig_.size(); }
  [[nodiscard]] std::vector<uint8_t> out() const { return {f.data(), f.data() + f.len}; }
  // The bytes where the frame was received, as they are now.
  [[nodiscard]] std::vector<uint8_t> at_original_place() const {
    const uint8_t* p = mem_.data() + kGuard + headroom_;
    return {p, p + orig_.size()};
  }
  [[nodiscard]] const std::vector<uint8_t>& original() const { return orig_; }

  Frame f;

 private:
  std::vector<uint8_t> orig_;
  std::vector<uint8_t> mem_;
  uint16_t headroom_;
  uint16_t cap_ = 0;
};

// ---- reference checksums ------------------------------------------------------

// One's-complement sum of 16-bit big-endian words (RFC 1071), an odd last
// byte padded with zero; not folded.
inline uint32_t ref_sum16(const uint8_t* p, size_t n, uint32_t s = 0) {
  for (size_t i = 0; i + 1 < n; i += 2) s += (uint32_t{p[i]} << 8) | p[i + 1];
  if (n & 1) s += uint32_t{p[n - 1]} << 8;
  return s;
}
inline uint16_t ref_fold(uint32_t s) {
  while (s >> 16) s = (s & 0xFFFF) + (s >> 16);
  return static_cast<uint16_t>(s);
}
// The Internet checksum of `bytes`; 0 when they carry a correct checksum.
inline uint16_t ref_fold_complement(const std::vector<uint8_t>& bytes) {
  return static_cast<uint16_t>(~ref_fold(ref_sum16(bytes.data(), bytes.size())));
}

// RFC 768 checksum of a UDP datagram (udp_len >= 8 bytes from `udp`, its
// checksum field ignored) over IPv4, as transmitted (0 -> 0xFFFF).
inline uint16_t ref_udp_checksum(const uint8_t* ip_src, const uint8_t* ip_dst, const uint8_t* udp, size_t udp_len) {
  uint8_t pseudo[12];
  std::memcpy(pseudo, ip_src, 4);
  std::memcpy(pseudo + 4, ip_dst, 4);
  pseudo[8] = 0;
  pseudo[9] = 17;
  pseudo[10] = static_cast<uint8_t>(udp_len >> 8);
  pseudo[11] = static_cast<uint8_t>(udp_len);
  uint32_t s = ref_sum16(pseudo, sizeof pseudo);
  s = ref_sum16(udp, 6, s);  // ports and length; the checksum field counts as 0
  s = ref_sum16(udp + 8, udp_len - 8, s);
  auto c = static_cast<uint16_t>(~ref_fold(s));
  return c == 0 ? 0xFFFF : c;
}

// RFC 8200 §8.1 checksum of a UDP datagram over IPv6 (udp_len >= 8 bytes
// from `udp`, its checksum field ignored), as transmitted (0 -> 0xFFFF).
inline uint16_t ref_udp6_checksum(const uint8_t* src, const uint8_t* dst, const uint8_t* udp, size_t udp_len) {
  std::vector<uint8_t> b(src, src + 16);
  b.insert(b.end(), dst, dst + 16);
  for (int sh : {24, 16, 8, 0}) b.push_back(static_cast<uint8_t>(udp_len >> sh));
  b.insert(b.end(), {0, 0, 0, 17});
  size_t at = b.size();
  b.insert(b.end(), udp, udp + udp_len);
  b[at + 6] = 0;
  b[at + 7] = 0;
  uint16_t c = ref_fold_complement(b);
  return c == 0 ? 0xFFFF : c;
}

}  // namespace turn::dp::fake
