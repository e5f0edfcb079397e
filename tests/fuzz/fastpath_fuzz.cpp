// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: the data plane's classifier and rewriters
// (dataplane/pipeline/fastpath.h process_frame) on arbitrary Ethernet frames
// against a small in-memory table (no EAL, no DPDK), the way
// tests/dataplane/fastpath_test.cpp instantiates it.
//
// Input: [flags][frame...]
//   flags & 0x01  recompute the IPv4 header checksum of the frame
//   flags & 0x02  recompute the UDP checksum (if the frame carries one)
//   flags & 0x04  allocation A expired
//   flags & 0x08  channel 0x4000 expired
//   flags & 0x10  channel entries carry their permission link
//   flags & 0x20  little headroom (8 bytes) instead of 128
//   flags & 0x40  legacy channel range (0x4000-0x7FFF)
// The fixups let the fuzzer past the header checksum and into the TURN
// handlers; without them it exercises the validation itself.
//
// Invariants (abort on violation):
//   - the frame stays inside its buffer; the guard bytes around it are intact;
//   - a punted frame is returned byte for byte unchanged (offset and length too);
//   - a transmitted frame is well-formed Ethernet/IPv4/UDP with a correct
//     IPv4 header checksum, goes to a next hop from the table, and, when the
//     received UDP checksum was correct or absent, carries a correct or no
//     UDP checksum (the incremental update of RFC 1624 must not corrupt it).
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "dataplane/pipeline/fastpath.h"

#define TURN_FUZZ_CHECK(cond)                                                            \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      std::fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                      \
    }                                                                                    \
  } while (0)

namespace {

using namespace turn;
using namespace turn::dp;

uint32_t ip4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {  // network order
  const uint8_t x[4] = {a, b, c, d};
  uint32_t v;
  std::memcpy(&v, x, 4);
  return v;
}
uint16_t np(uint16_t h) { return static_cast<uint16_t>((h >> 8) | (h << 8)); }

const uint32_t kServer = ip4(192, 0, 2, 10);
const uint32_t kRelay2 = ip4(192, 0, 2, 11);
const uint32_t kClientA = ip4(198, 51, 100, 10);
const uint32_t kClientB = ip4(198, 51, 100, 20);
const uint32_t kPeer1 = ip4(203, 0, 113, 5);
const uint32_t kPeer2 = ip4(203, 0, 113, 6);  // permitted, no neighbour entry
constexpr Mac kPortMac{{0x02, 0, 0, 0, 0, 0xAA}};
constexpr Mac kClientHop{{0x02, 0, 0, 0, 0xC1, 0x01}};
constexpr Mac kPeerHop{{0x02, 0, 0, 0, 0xEE, 0x01}};
constexpr Tsc kNow = 1'000'000;
constexpr Tsc kLive = 2'000'000;
constexpr Tsc kGone = 999'999;

struct RawHash {
  template <class K>
  size_t operator()(const K& k) const noexcept {
    return std::hash<std::string_view>{}(std::string_view(reinterpret_cast<const char*>(&k), sizeof k));
  }
};

// WorkerTables' reader interface over fixed arrays and std::unordered_map.
class Tables {
public:
  explicit Tables(uint8_t flags) {
    // A: client A -> relay kServer:49200, permissions peer1, peer2 and our
    // own relay address (hairpin), channel 0x4000 -> peer1:6000 and
    // 0x4001 -> B's relay (relay to relay).
    add_alloc(0, kClientA, 50000, kServer, 49200, (flags & 0x04) ? kGone : kLive);
    add_alloc(1, kClientB, 50001, kRelay2, 49300, kLive);
    add_perm(0, 0, kPeer1);
    add_perm(1, 0, kPeer2);
    add_perm(2, 0, kRelay2);
    add_perm(3, 1, kServer);
    add_perm(4, 1, kPeer1);
    bool link = (flags & 0x10) != 0;
    add_channel(0, 0, 0x4000, kPeer1, 6000, (flags & 0x08) ? kGone : kLive, link ? &perms_[0] : nullptr);
    add_channel(1, 0, 0x4001, kRelay2, 49300, kLive, link ? &perms_[2] : nullptr);
    add_channel(2, 1, 0x4000, kServer, 49200, kLive, nullptr);
    add_channel(3, 0, 0x7FFF, kPeer2, 7000, kLive, nullptr);
    neigh_[kClientA] = kClientHop;
    neigh_[kClientB] = kClientHop;
    neigh_[kPeer1] = kPeerHop;
  }

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
    auto it = perm_index_.find(k);
    return it == perm_index_.end() ? nullptr : &perms_[it->second];
  }
  [[nodiscard]] const AllocEntry& alloc(uint32_t i) const noexcept { return allocs_[i]; }
  [[nodiscard]] bool next_hop(uint32_t ip, Hop& h) const noexcept {
    auto it = neigh_.find(ip);
    if (it == neigh_.end()) return false;
    h = Hop{it->second, 0};
    return true;
  }
  // IPv6: no IPv6 allocations here; fuzzed IPv6 frames exercise the parser
  // and the misses (tests/dataplane/fastpath_test.cpp covers the IPv6 hits).
  [[nodiscard]] const AllocEntry* client(const ClientKey6&) const noexcept { return nullptr; }
  [[nodiscard]] const ChannelEntry* channel(const ChannelKey6&) const noexcept { return nullptr; }
  [[nodiscard]] const ChannelEntry* peer(const PeerKey6&) const noexcept { return nullptr; }
  [[nodiscard]] const PermissionEntry* permission(const PermissionKey6&) const noexcept { return nullptr; }
  [[nodiscard]] const AllocEntry6& alloc6(uint32_t) const noexcept { return none6_; }
  [[nodiscard]] const Ip6& channel_peer6(uint32_t) const noexcept { return none6_.relay_ip; }
  [[nodiscard]] bool next_hop(const Ip6&, Hop&) const noexcept { return false; }
  [[nodiscard]] uint64_t next_transaction_id() noexcept { return ++txn_; }

private:
  AllocEntry6 none6_{};
  void add_alloc(uint32_t i, uint32_t cip, uint16_t cport, uint32_t rip, uint16_t rport, Tsc exp) {
    AllocEntry& e = allocs_[i];
    e.client = ClientKey{cip, kServer, np(cport), np(3478)};
    e.relay_ip = rip;
    e.relay_port = np(rport);
    e.index = i;
    e.expires.store(exp);
    clients_[e.client] = i;
  }
  void add_perm(uint32_t slot, uint32_t a, uint32_t peer_ip) {
    perms_[slot].alloc = a;
    perms_[slot].expires.store(kLive);
    perm_index_[PermissionKey{allocs_[a].relay_ip, peer_ip, allocs_[a].relay_port, 0, 0}] = slot;
  }
  void add_channel(uint32_t slot, uint32_t a, uint16_t ch, uint32_t peer_ip, uint16_t peer_port, Tsc exp,
                   const PermissionEntry* link) {
    ChannelEntry& e = chans_[slot];
    e.alloc = a;
    e.peer_ip = peer_ip;
    e.peer_port = np(peer_port);
    e.channel = np(ch);
    e.expires.store(exp);
    e.perm.store(link);
    channels_[ChannelKey::of(allocs_[a].client, e.channel)] = slot;
    peers_[PeerKey{allocs_[a].relay_ip, peer_ip, allocs_[a].relay_port, e.peer_port, 0}] = slot;
  }

  std::array<AllocEntry, 2> allocs_{};
  std::array<PermissionEntry, 5> perms_{};
  std::array<ChannelEntry, 4> chans_{};
  std::unordered_map<ClientKey, uint32_t, RawHash> clients_;
  std::unordered_map<ChannelKey, uint32_t, RawHash> channels_;
  std::unordered_map<PeerKey, uint32_t, RawHash> peers_;
  std::unordered_map<PermissionKey, uint32_t, RawHash> perm_index_;
  std::unordered_map<uint32_t, Mac> neigh_;
  uint64_t txn_ = 0;
};

// Reference one's-complement sum (RFC 1071), written independently of
// pipeline/checksum.h.
uint32_t ref_sum16(const uint8_t* p, size_t n, uint32_t s = 0) {
  for (size_t i = 0; i + 1 < n; i += 2) s += (uint32_t{p[i]} << 8) | p[i + 1];
  if (n & 1) s += uint32_t{p[n - 1]} << 8;
  return s;
}
uint16_t ref_fold(uint32_t s) {
  while (s >> 16) s = (s & 0xFFFF) + (s >> 16);
  return static_cast<uint16_t>(s);
}
// The UDP checksum over IPv4 with the field taken as zero (as sent: 0 -> 0xFFFF).
uint16_t udp_checksum(const uint8_t* ip, const uint8_t* udp, uint16_t ulen) {
  uint8_t pseudo[12];
  std::memcpy(pseudo, ip + 12, 8);
  pseudo[8] = 0;
  pseudo[9] = 17;
  pseudo[10] = static_cast<uint8_t>(ulen >> 8);
  pseudo[11] = static_cast<uint8_t>(ulen);
  uint32_t s = ref_sum16(pseudo, 12);
  s += (uint32_t{udp[0]} << 8 | udp[1]) + (uint32_t{udp[2]} << 8 | udp[3]) + (uint32_t{udp[4]} << 8 | udp[5]);
  s = ref_sum16(udp + 8, ulen - 8u, s);
  uint16_t c = static_cast<uint16_t>(~ref_fold(s));
  return c == 0 ? 0xFFFF : c;
}

// Is the frame's UDP checksum absent or right? (frame parsed as Udp4.)
bool udp_checksum_ok(const uint8_t* f) {
  const uint8_t* ip = f + kEthHeader;
  const uint8_t* udp = ip + kIpv4Header;
  uint16_t have = load_be16(udp + 6);
  return have == 0 || have == udp_checksum(ip, udp, load_be16(udp + 4));
}

constexpr size_t kGuard = 64;
constexpr uint8_t kGuardByte = 0xA5;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1 || size > 9000) return 0;
  uint8_t flags = data[0];
  size_t n = size - 1;
  uint16_t headroom = (flags & 0x20) ? 8 : 128;
  // Buffer: guard | headroom | frame | tailroom (room to grow) | guard.
  const size_t cap = headroom + n + 256;
  std::vector<uint8_t> buf(kGuard + cap + kGuard, kGuardByte);
  uint8_t* base = buf.data() + kGuard;
  std::memset(base, 0, cap);
  std::memcpy(base + headroom, data + 1, n);
  uint8_t* fr = base + headroom;

  // Fixups (see the header).
  if (n >= kEthHeader + kIpv4Header && load_be16(fr + 12) == kEtherTypeIpv4 && (fr[kEthHeader] & 0x0F) == 5) {
    uint8_t* ip = fr + kEthHeader;
    if (flags & 0x01) {
      store_be16(ip + 10, 0);
      store_be16(ip + 10, static_cast<uint16_t>(~ref_fold(ref_sum16(ip, kIpv4Header))));
    }
    uint16_t total = load_be16(ip + 2);
    if ((flags & 0x02) && ip[9] == 17 && total >= kIpv4Header + kUdpHeader && total <= n - kEthHeader) {
      uint8_t* udp = ip + kIpv4Header;
      uint16_t ulen = load_be16(udp + 4);
      if (ulen >= kUdpHeader && ulen <= total - kIpv4Header && load_be16(udp + 6) != 0)
        store_be16(udp + 6, udp_checksum(ip, udp, ulen));
    }
  }

  Tables t(flags);
  PortContext pc;
  pc.macs[0] = kPortMac;
  pc.turn_ports[0] = np(3478);
  pc.relay_min = 49152;
  pc.relay_max = 65535;
  pc.max_channel = (flags & 0x40) ? kMaxLegacyChannel : kMaxChannel;
  pc.relay4.add(kServer);
  pc.relay4.add(kRelay2);

  std::vector<uint8_t> before(fr, fr + n);
  Udp4View in{};
  bool in_udp4 = parse_udp4(fr, n, in) == FrameKind::Udp4;
  bool in_csum_ok = in_udp4 && udp_checksum_ok(fr);

  Frame f{base, headroom, static_cast<uint16_t>(n), static_cast<uint16_t>(cap)};
  Verdict v = process_frame(f, t, pc, kNow);

  for (size_t i = 0; i < kGuard; ++i) {
    TURN_FUZZ_CHECK(buf[i] == kGuardByte);
    TURN_FUZZ_CHECK(buf[kGuard + cap + i] == kGuardByte);
  }
  TURN_FUZZ_CHECK(size_t{f.off} + f.len <= cap);
  switch (v.kind) {
    case Verdict::Punt:
      TURN_FUZZ_CHECK(f.off == headroom && f.len == n);
      TURN_FUZZ_CHECK(std::memcmp(f.data(), before.data(), n) == 0);
      break;
    case Verdict::Drop:
      TURN_FUZZ_CHECK(v.drop < Drop::Count);
      break;
    case Verdict::Tx: {
      TURN_FUZZ_CHECK(in_udp4);  // only well-formed UDP is ever forwarded
      Udp4View out{};
      TURN_FUZZ_CHECK(parse_udp4(f.data(), f.len, out) == FrameKind::Udp4);  // includes the IPv4 checksum
      TURN_FUZZ_CHECK(f.len == kL2L3L4 + out.payload_len);
      Mac dst;
      std::memcpy(dst.b, f.data(), 6);
      TURN_FUZZ_CHECK(dst == kClientHop || dst == kPeerHop);
      TURN_FUZZ_CHECK(std::memcmp(f.data() + 6, kPortMac.b, 6) == 0);
      if (in_csum_ok) TURN_FUZZ_CHECK(udp_checksum_ok(f.data()));
      break;
    }
  }
  return 0;
}
