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
#include <cstdint>
#include <cstring>
#include <vector>

#include "dataplane/pipeline/fastpath.h"
#include "tests/dataplane/fake_tables.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using namespace turn;
using namespace turn::dp;
using namespace turn::dp::fake;  // the addresses, FakeTables, Buf, reference checksums

constexpr Tsc kGone = kNow - 1;

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
  t.add_neighbor(kClientA, kClientHopMac);
  t.add_neighbor(kClientB, kClientHopMac);
  t.add_neighbor(kPeer1, kPeerHopMac);
}

// Is the frame's UDP checksum absent or right? (frame parsed as Udp4.)
bool udp_checksum_ok(const uint8_t* f) {
  const uint8_t* ip = f + kEthHeader;
  const uint8_t* udp = ip + kIpv4Header;
  uint16_t have = load_be16(udp + 6);
  return have == 0 || have == ref_udp_checksum(ip + 12, ip + 16, udp, load_be16(udp + 4));
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

  FakeTables t;
  fill(t, flags);
  PortContext pc = port_context((flags & 0x40) ? kMaxLegacyChannel : kMaxChannel);

  // Buffer: guard | headroom | frame | tailroom (room to grow) | guard.
  Buf b(std::move(frame), headroom, 256);
  Frame& f = b.f;
  Udp4View in{};
  bool in_udp4 = parse_udp4(f.data(), n, in) == FrameKind::Udp4;
  bool in_csum_ok = in_udp4 && udp_checksum_ok(f.data());

  Verdict v = process_frame(f, t, pc, kNow);

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
      TURN_FUZZ_CHECK(in_udp4);  // only well-formed UDP is ever forwarded
      Udp4View out{};
      TURN_FUZZ_CHECK(parse_udp4(f.data(), f.len, out) == FrameKind::Udp4);  // includes the IPv4 checksum
      TURN_FUZZ_CHECK(f.len == kL2L3L4 + out.payload_len);
      Mac dst;
      std::memcpy(dst.b, f.data(), 6);
      TURN_FUZZ_CHECK(dst == kClientHopMac || dst == kPeerHopMac);
      TURN_FUZZ_CHECK(std::memcmp(f.data() + 6, kPortMac.b, 6) == 0);
      if (in_csum_ok) TURN_FUZZ_CHECK(udp_checksum_ok(f.data()));
      break;
    }
  }
  return 0;
}
