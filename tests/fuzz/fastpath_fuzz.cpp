// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: the data plane's classifier and rewriters
// (dataplane/pipeline/burst.h: decide_burst, the worker's way through
// fastpath.h) on arbitrary Ethernet frames against a small in-memory table
// (no EAL, no DPDK), the way tests/dataplane/fastpath_fixture.h instantiates
// it. Each input is decided alone (a burst of one) and then as a burst of
// three copies, whose verdicts must be the one it got alone.
//
// Input: [flags][frame...]
//   flags & 0x01  recompute the IPv4 header checksum of the frame
//   flags & 0x02  recompute the UDP checksum (if the frame carries one; IPv4 or IPv6)
//   flags & 0x04  allocation A expired
//   flags & 0x08  channel 0x4000 expired
//   flags & 0x10  channel entries carry their permission link
//   flags & 0x20  little headroom (8 bytes) instead of 128
//   flags & 0x40  legacy channel range (0x4000-0x7FFF)
// The fixups let the fuzzer past the header checksum and into the TURN
// handlers; without them it exercises the validation itself.
//
// Invariants (abort on violation), for every frame of both bursts:
//   - the frame stays inside its buffer; the guard bytes around it are intact;
//   - a punted frame is returned byte for byte unchanged (offset and length too);
//   - a transmitted frame is well-formed Ethernet/IPv4/UDP with a correct
//     IPv4 header checksum or Ethernet/IPv6/UDP, goes to a next hop from the
//     table, and, when the received UDP checksum was correct or absent,
//     carries a correct or (IPv4 only) no UDP checksum (the incremental
//     update of RFC 1624 must not corrupt it, across IP versions either).
//
// The table also holds two dual-stack allocations (RFC 8656 §7.2), so that
// frames reach the cross-family rewrites (IPv4 in, IPv6 out and the reverse).
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <vector>

#include "dataplane/pipeline/burst.h"
#include "tests/dataplane/fake_tables.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using namespace turn;
using namespace turn::dp;
using namespace turn::dp::fake;  // the addresses, FakeTables, Buf, reference checksums

constexpr Tsc kGone = kNow - 1;

Ip6 ip6(std::initializer_list<uint8_t> head, uint8_t last) {
  Ip6 a{};
  size_t i = 0;
  for (uint8_t b : head) a.b[i++] = b;
  a.b[15] = last;
  return a;
}
// 2001:db8:1::10 (relay), 2001:db8:2::5 (peer), 2001:db8:c::7 (client D6).
const Ip6 kServer6 = ip6({0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01}, 0x10);
const Ip6 kPeer6 = ip6({0x20, 0x01, 0x0d, 0xb8, 0x00, 0x02}, 0x05);
const Ip6 kClientD6 = ip6({0x20, 0x01, 0x0d, 0xb8, 0x00, 0x0c}, 0x07);
const uint32_t kClientD4 = ip4(198, 51, 100, 30);

// The table: client A -> relay kServer:49200, permissions peer1, peer2
// (permitted, no neighbour entry) and B's relay address (relay to relay),
// channel 0x4000 -> peer1:6000, 0x4001 -> B's relay and 0x7FFF -> peer2;
// client B -> relay kRelay2:49300, permissions for A's relay address and
// peer1, channel 0x4000 -> A's relay (hairpin).
void fill(FakeTables& t, uint8_t flags) {
  uint32_t a = t.add_alloc(kClientA, kClientAPort, kServer, kRelayAPort, (flags & 0x04) ? kGone : kLive);
  uint32_t b = t.add_alloc(kClientB, kClientBPort, kRelay2, kRelayBPort);
  const PermissionEntry* a_peer1 = t.add_permission(a, kPeer1);
  t.add_permission(a, kPeer2);
  const PermissionEntry* a_relay2 = t.add_permission(a, kRelay2);
  t.add_permission(b, kServer);
  t.add_permission(b, kPeer1);
  bool link = (flags & 0x10) != 0;
  t.add_channel(a, 0x4000, kPeer1, kPeer1Port, (flags & 0x08) ? kGone : kLive, link ? a_peer1 : nullptr);
  t.add_channel(a, 0x4001, kRelay2, kRelayBPort, kLive, link ? a_relay2 : nullptr);
  t.add_channel(b, 0x4000, kServer, kRelayAPort);
  t.add_channel(a, 0x7FFF, kPeer2, kPeer2Port);
  t.add_neighbour(kClientA, kClientHopMac);
  t.add_neighbour(kClientB, kClientHopMac);
  t.add_neighbour(kPeer1, kPeerHopMac);
  // Dual-stack: D4 (IPv4 client 198.51.100.30:50030) relays from
  // kServer:49500 and [2001:db8:1::10]:49600, channel 0x4000 -> [peer6]:6000
  // (across), 0x4001 -> peer1:6000; D6 (client [2001:db8:c::7]:50040 to
  // [2001:db8:1::10]:3478) relays from [2001:db8:1::10]:49700 and
  // kServer:49800, channel 0x4000 -> peer1:7000 (across), 0x4002 -> [peer6]:6001.
  uint32_t d4 = t.add_dual4(kClientD4, 50030, kServer, 49500, kServer6, 49600);
  t.add_permission(d4, kPeer1);
  t.add_permission6(d4, kPeer6);
  t.add_channel6(d4, 0x4000, kPeer6, 6000);
  t.add_channel(d4, 0x4001, kPeer1, 6000);
  uint32_t d6 = t.add_dual6(kClientD6, 50040, kServer6, kTurnPort, kServer6, 49700, kServer, 49800);
  t.add_permission(d6, kPeer1);
  t.add_permission6(d6, kPeer6);
  t.add_channel(d6, 0x4000, kPeer1, 7000);
  t.add_channel6(d6, 0x4002, kPeer6, 6001);
  t.add_neighbour(kClientD4, kClientHopMac);
  t.add_neighbour6(kClientD6, kClientHopMac);
  t.add_neighbour6(kPeer6, kPeerHopMac);
}

// Is the frame's UDP checksum absent or right? (frame parsed as Udp4.)
bool udp_checksum_ok(const uint8_t* f) {
  const uint8_t* ip = f + kEthHeader;
  const uint8_t* udp = ip + kIpv4Header;
  uint16_t have = load_be16(udp + 6);
  return have == 0 || have == ref_udp_checksum(ip + 12, ip + 16, udp, load_be16(udp + 4));
}

// The same over IPv6 (frame parsed as Udp6): present (parse_udp6 refuses 0) and right.
bool udp6_checksum_ok(const uint8_t* f) {
  const uint8_t* ip = f + kEthHeader;
  const uint8_t* udp = ip + kIpv6Header;
  return load_be16(udp + 6) == ref_udp6_checksum(ip + 8, ip + 24, udp, load_be16(udp + 4));
}

// The invariants of the header for one decided frame (`udp`: the input
// was well-formed UDP; `csum_ok`: its UDP checksum was absent or right).
void check(const Buf& b, const Verdict& v, bool udp, bool csum_ok) {
  const Frame& f = b.f;
  TURN_FUZZ_CHECK(b.guards_ok());
  TURN_FUZZ_CHECK(b.in_bounds());
  switch (v.kind) {
    case Verdict::Punt:
      TURN_FUZZ_CHECK(b.at_original_offsets());
      TURN_FUZZ_CHECK(b.out() == b.original());
      break;
    case Verdict::Drop:
      TURN_FUZZ_CHECK(v.drop < Drop::Count);
      break;
    case Verdict::Tx: {
      TURN_FUZZ_CHECK(udp);  // only well-formed UDP is ever forwarded
      TURN_FUZZ_CHECK(f.len >= kEthHeader);
      if (load_be16(f.data() + 12) == kEtherTypeIpv6) {  // IPv6 out (from IPv6, or translated from IPv4)
        Udp6View out{};
        TURN_FUZZ_CHECK(parse_udp6(f.data(), f.len, out) == FrameKind::Udp6);  // includes "checksum not 0"
        TURN_FUZZ_CHECK(f.len == kL2L3L4v6 + out.payload_len);
        if (csum_ok) TURN_FUZZ_CHECK(udp6_checksum_ok(f.data()));
      } else {
        Udp4View out{};
        TURN_FUZZ_CHECK(parse_udp4(f.data(), f.len, out) == FrameKind::Udp4);  // includes the IPv4 checksum
        TURN_FUZZ_CHECK(f.len == kL2L3L4 + out.payload_len);
        if (csum_ok) TURN_FUZZ_CHECK(udp_checksum_ok(f.data()));
      }
      Mac dst;
      std::memcpy(dst.b, f.data(), 6);
      TURN_FUZZ_CHECK(dst == kClientHopMac || dst == kPeerHopMac);
      TURN_FUZZ_CHECK(std::memcmp(f.data() + 6, kPortMac.b, 6) == 0);
      break;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1 || size > 9000) return 0;
  uint8_t flags = data[0];
  size_t n = size - 1;
  uint16_t headroom = (flags & 0x20) ? 8 : 128;
  std::vector<uint8_t> frame(data + 1, data + size);
  uint8_t* fr = frame.data();

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
        store_be16(udp + 6, ref_udp_checksum(ip + 12, ip + 16, udp, ulen));
    }
  }
  if ((flags & 0x02) && n >= kEthHeader + kIpv6Header + kUdpHeader && load_be16(fr + 12) == kEtherTypeIpv6 &&
      fr[kEthHeader + 6] == 17) {
    uint8_t* ip = fr + kEthHeader;
    uint8_t* udp = ip + kIpv6Header;
    uint16_t ulen = load_be16(udp + 4);
    if (ulen >= kUdpHeader && ulen <= load_be16(ip + 4) && ulen <= n - kEthHeader - kIpv6Header)
      store_be16(udp + 6, ref_udp6_checksum(ip + 8, ip + 24, udp, ulen));
  }

  FakeTables t;
  fill(t, flags);
  PortContext pc = port_context((flags & 0x40) ? kMaxLegacyChannel : kMaxChannel);
  pc.relay6.add(kServer6);

  // Buffer: guard | headroom | frame | tailroom (room to grow) | guard.
  Udp4View in{};
  Udp6View in6{};
  bool in_udp4 = parse_udp4(frame.data(), n, in) == FrameKind::Udp4;
  bool in_udp6 = !in_udp4 && n >= kEthHeader && load_be16(frame.data() + 12) == kEtherTypeIpv6 &&
                 parse_udp6(frame.data(), n, in6) == FrameKind::Udp6;
  bool in_csum_ok = (in_udp4 && udp_checksum_ok(frame.data())) || (in_udp6 && udp6_checksum_ok(frame.data()));

  Buf alone(frame, headroom, 256);
  Verdict v = process_frame(alone.f, t, pc, kNow);
  check(alone, v, in_udp4 || in_udp6, in_csum_ok);

  constexpr size_t kCopies = 3;
  std::vector<Buf> copies;
  copies.reserve(kCopies);
  for (size_t k = 0; k < kCopies; ++k) copies.emplace_back(frame, headroom, 256);
  Frame frames[kCopies];
  Verdict got[kCopies];
  for (size_t k = 0; k < kCopies; ++k) frames[k] = copies[k].f;
  decide_burst(frames, got, kCopies, t, pc, kNow);
  for (size_t k = 0; k < kCopies; ++k) {
    copies[k].f = frames[k];
    check(copies[k], got[k], in_udp4 || in_udp6, in_csum_ok);
    TURN_FUZZ_CHECK(got[k].kind == v.kind && got[k].path == v.path && got[k].punt == v.punt && got[k].drop == v.drop);
  }
  return 0;
}
