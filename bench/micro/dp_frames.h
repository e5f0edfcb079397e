// SPDX-License-Identifier: Apache-2.0
// Frames for the data-plane micro-benchmarks: Ethernet/IPv4/UDP with a
// ChannelData, Send indication or plain peer payload, with correct IPv4 and
// UDP checksums (the fast path verifies the first and updates the second).
// Benchmark support only; the unit tests build their own frames with an
// independent checksum (tests/dataplane/fastpath_fixture.h).
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "common/stun/constants.h"
#include "common/util/bytes.h"
#include "dataplane/pipeline/checksum.h"
#include "dataplane/pipeline/burst.h"
#include "dataplane/pipeline/headers.h"
#include "tests/dataplane/net_order.h"

namespace turn::dp::benchfr {

using fake::ip4;  // network order (tests/dataplane/net_order.h)
using fake::np;

inline constexpr Mac kPortMac{{0x02, 0x70, 0x63, 0x61, 0x70, 0x00}};
inline constexpr Mac kGwMac{{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}};

// A UDP/IPv4 frame from (src) to (dst) carrying `payload`, checksums right.
inline std::vector<uint8_t> udp_frame(uint32_t src_ip, uint16_t src_port, uint32_t dst_ip, uint16_t dst_port,
                                      const std::vector<uint8_t>& payload) {
  // Built in a fixed buffer (GCC's -Wnull-dereference distrusts vector::data()).
  static thread_local uint8_t f[2048];
  const size_t len = kL2L3L4 + payload.size();
  std::memcpy(f + kL2L3L4, payload.data(), payload.size());
  // src_port/dst_port are host order here; write_udp4_headers takes network order.
  write_udp4_headers(f, kPortMac, kGwMac, src_ip, dst_ip, np(src_port), np(dst_port),
                     static_cast<uint16_t>(payload.size()), 64, 0);
  uint16_t ulen = static_cast<uint16_t>(kUdpHeader + payload.size());
  uint32_t s =
      pseudo_sum_v4(reinterpret_cast<const uint8_t*>(&src_ip), reinterpret_cast<const uint8_t*>(&dst_ip), ulen);
  s += sum16(f + kEthHeader + kIpv4Header, ulen);
  uint16_t c = static_cast<uint16_t>(~fold(s));
  store_be16(f + kEthHeader + kIpv4Header + 6, c == 0 ? 0xFFFF : c);
  return std::vector<uint8_t>(f, f + len);
}

inline std::vector<uint8_t> channel_data(uint16_t channel, size_t n) {
  static thread_local uint8_t p[2048];
  store_be16(p, channel);
  store_be16(p + 2, static_cast<uint16_t>(n));
  for (size_t i = 0; i < n; ++i) p[4 + i] = static_cast<uint8_t>(i);
  return std::vector<uint8_t>(p, p + 4 + n);
}

// Send indication (RFC 8656 §10.1): XOR-PEER-ADDRESS (IPv4) + DATA.
inline std::vector<uint8_t> send_indication(uint32_t peer_ip, uint16_t peer_port, size_t n) {
  size_t padded = (n + 3) & ~size_t{3};
  static thread_local uint8_t p[2048];
  std::memset(p, 0, sizeof p);
  store_be16(p, stun::message_type(stun::Method::Send, stun::Class::Indication));
  store_be16(p + 2, static_cast<uint16_t>(12 + 4 + padded));
  store_be32(p + 4, stun::kMagicCookie);
  for (int i = 8; i < 20; ++i) p[i] = static_cast<uint8_t>(i * 7);
  store_be16(p + 20, static_cast<uint16_t>(stun::Attr::XorPeerAddress));
  store_be16(p + 22, 8);
  p[25] = stun::kFamilyIpv4;
  uint8_t pp[2];
  std::memcpy(pp, &peer_port, 2);
  store_be16(p + 26, static_cast<uint16_t>(load_be16(pp) ^ (stun::kMagicCookie >> 16)));
  uint8_t pip[4];
  std::memcpy(pip, &peer_ip, 4);
  for (int i = 0; i < 4; ++i) p[28 + i] = pip[i] ^ p[4 + i];
  store_be16(p + 32, static_cast<uint16_t>(stun::Attr::Data));
  store_be16(p + 34, static_cast<uint16_t>(n));
  for (size_t i = 0; i < n; ++i) p[36 + i] = static_cast<uint8_t>(i);
  return std::vector<uint8_t>(p, p + 36 + padded);
}

inline std::vector<uint8_t> plain(size_t n) {
  std::vector<uint8_t> p(n);
  for (size_t i = 0; i < n; ++i) p[i] = static_cast<uint8_t>(i);
  return p;
}

// One port (kPortMac) with TURN on turn_port (host order) and relay ports
// 49152-65535 on server_ip.
inline PortContext port_context(uint32_t server_ip, uint16_t turn_port) {
  PortContext pc;
  pc.macs[0] = kPortMac;
  pc.turn_ports[0] = np(turn_port);
  pc.relay_min = 49152;
  pc.relay_max = 65535;
  pc.relay4.add(server_ip);
  return pc;
}

// A buffer with DPDK's default headroom (128) that a template frame is
// copied into before each process_frame (which rewrites it in place).
struct FrameBuf {
  static constexpr uint16_t kHeadroom = 128;
  alignas(64) uint8_t buf[2048 + kHeadroom];
};

}  // namespace turn::dp::benchfr
