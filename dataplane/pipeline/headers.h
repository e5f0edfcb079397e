// SPDX-License-Identifier: Apache-2.0
// The packet shapes the fast path handles: Ethernet II / IPv4 without
// options or fragments / UDP, and Ethernet II / IPv6 without extension
// headers / UDP. parse_udp4() and parse_udp6() validate a frame in place
// and return offsets; anything else is punted to the kernel. Pure functions
// over bytes: the oracle in tests and the code on the worker loop.
#pragma once

#include <cstdint>
#include <cstring>

#include "common/util/bytes.h"
#include "dataplane/pipeline/checksum.h"
#include "dataplane/net_types.h"

namespace turn::dp {

inline constexpr size_t kEthHeader = 14;
inline constexpr size_t kIpv4Header = 20;
inline constexpr size_t kUdpHeader = 8;
inline constexpr size_t kL2L3L4 = kEthHeader + kIpv4Header + kUdpHeader;  // 42
inline constexpr uint16_t kEtherTypeIpv4 = 0x0800;
inline constexpr uint16_t kEtherTypeArp = 0x0806;
inline constexpr uint16_t kEtherTypeIpv6 = 0x86DD;
inline constexpr size_t kIpv6Header = 40;
inline constexpr size_t kL2L3L4v6 = kEthHeader + kIpv6Header + kUdpHeader;  // 62

// A validated IPv4/UDP frame. Addresses and ports are kept in network
// order exactly as in the packet (no byte swaps on the fast path).
struct Udp4View {
  uint32_t src_ip;        // network order
  uint32_t dst_ip;        // network order
  uint16_t src_port;      // network order
  uint16_t dst_port;      // network order
  uint16_t payload_len;   // from the UDP length field
  uint16_t udp_checksum;  // as received (0 = none, IPv4 only)
  uint16_t payload_off;   // = 42
};

// A validated IPv6/UDP frame (no extension headers).
struct Udp6View {
  Ip6 src_ip;
  Ip6 dst_ip;
  uint16_t src_port;      // network order
  uint16_t dst_port;      // network order
  uint16_t payload_len;   // from the UDP length field
  uint16_t udp_checksum;  // never 0 (RFC 8200 §8.1)
};

enum class FrameKind : uint8_t {
  Udp4,       // handled by the fast path
  Udp6,       // handled by the fast path (parse_udp6)
  Arp,        // learn, then to the kernel
  Other,      // to the kernel: IPv6, TCP, ICMP, IP options, fragments, VLAN
  Malformed,  // counted and dropped: lengths that lie
};

[[nodiscard, gnu::always_inline]] inline FrameKind parse_udp4(const uint8_t* f, size_t len, Udp4View& v) noexcept {
  if (len < kEthHeader) return FrameKind::Malformed;
  uint16_t ethertype = load_be16(f + 12);
  if (ethertype == kEtherTypeArp) return FrameKind::Arp;
  if (ethertype != kEtherTypeIpv4) return FrameKind::Other;
  if (len < kEthHeader + kIpv4Header) return FrameKind::Malformed;
  const uint8_t* ip = f + kEthHeader;
  if ((ip[0] >> 4) != 4) return FrameKind::Malformed;
  if ((ip[0] & 0x0F) != 5) return FrameKind::Other;  // options: rare, kernel's job
  uint16_t total = load_be16(ip + 2);
  if (total < kIpv4Header || total > len - kEthHeader) return FrameKind::Malformed;
  // Header checksum (RFC 791): a corrupted header must not be forwarded
  // under a freshly computed one.
  if (ipv4_header_fold_native(ip) != 0xFFFF) return FrameKind::Malformed;
  if ((load_be16(ip + 6) & 0x3FFF) != 0) return FrameKind::Other;  // MF or offset: fragment
  if (ip[9] != 17) return FrameKind::Other;
  if (total < kIpv4Header + kUdpHeader) return FrameKind::Malformed;
  const uint8_t* udp = ip + kIpv4Header;
  uint16_t ulen = load_be16(udp + 4);
  if (ulen < kUdpHeader || ulen > total - kIpv4Header) return FrameKind::Malformed;
  std::memcpy(&v.src_ip, ip + 12, 4);
  std::memcpy(&v.dst_ip, ip + 16, 4);
  std::memcpy(&v.src_port, udp, 2);
  std::memcpy(&v.dst_port, udp + 2, 2);
  v.payload_len = static_cast<uint16_t>(ulen - kUdpHeader);
  v.udp_checksum = load_be16(udp + 6);
  v.payload_off = kL2L3L4;
  return FrameKind::Udp4;
}

// Ethernet / IPv6 / UDP. Extension headers (fragments included) and
// anything but UDP go to the kernel; a zero UDP checksum is invalid over
// IPv6 (RFC 8200 §8.1) and dropped like other lies.
[[nodiscard, gnu::always_inline]] inline FrameKind parse_udp6(const uint8_t* f, size_t len, Udp6View& v) noexcept {
  if (len < kEthHeader + kIpv6Header) return FrameKind::Malformed;
  const uint8_t* ip = f + kEthHeader;
  if ((ip[0] >> 4) != 6) return FrameKind::Malformed;
  if (ip[6] != 17) return FrameKind::Other;  // extension headers, ICMPv6 (NDP), TCP
  uint16_t plen = load_be16(ip + 4);
  if (plen < kUdpHeader || plen > len - kEthHeader - kIpv6Header) return FrameKind::Malformed;
  const uint8_t* udp = ip + kIpv6Header;
  uint16_t ulen = load_be16(udp + 4);
  if (ulen < kUdpHeader || ulen > plen) return FrameKind::Malformed;
  uint16_t c = load_be16(udp + 6);
  if (c == 0) return FrameKind::Malformed;
  std::memcpy(v.src_ip.b, ip + 8, 16);
  std::memcpy(v.dst_ip.b, ip + 24, 16);
  std::memcpy(&v.src_port, udp, 2);
  std::memcpy(&v.dst_port, udp + 2, 2);
  v.payload_len = static_cast<uint16_t>(ulen - kUdpHeader);
  v.udp_checksum = c;
  return FrameKind::Udp6;
}

// Writes Ethernet + IPv6 + UDP headers (traffic class and flow label 0).
[[gnu::always_inline]] inline void write_udp6_headers(uint8_t* f, const Mac& dst, const Mac& src, const Ip6& src_ip,
                                                      const Ip6& dst_ip, uint16_t src_port, uint16_t dst_port,
                                                      uint16_t payload_len, uint8_t hop_limit,
                                                      uint16_t udp_checksum) noexcept {
  std::memcpy(f, dst.b, 6);
  std::memcpy(f + 6, src.b, 6);
  store_be16(f + 12, kEtherTypeIpv6);
  uint8_t* ip = f + kEthHeader;
  store_be32(ip, 0x60000000u);
  store_be16(ip + 4, static_cast<uint16_t>(kUdpHeader + payload_len));
  ip[6] = 17;
  ip[7] = hop_limit;
  std::memcpy(ip + 8, src_ip.b, 16);
  std::memcpy(ip + 24, dst_ip.b, 16);
  uint8_t* udp = ip + kIpv6Header;
  std::memcpy(udp, &src_port, 2);
  std::memcpy(udp + 2, &dst_port, 2);
  store_be16(udp + 4, static_cast<uint16_t>(kUdpHeader + payload_len));
  store_be16(udp + 6, udp_checksum);
}

// Writes Ethernet + IPv4 + UDP headers for a payload of `payload_len`
// bytes. The IPv4 checksum is computed (20 bytes); the UDP checksum is the
// caller's (pass the final value). ip_checksum=false leaves the IPv4
// checksum 0 for a port with tx checksum offload.
[[gnu::always_inline]] inline void write_udp4_headers(uint8_t* f, const Mac& dst, const Mac& src, uint32_t src_ip,
                                                      uint32_t dst_ip, uint16_t src_port, uint16_t dst_port,
                                                      uint16_t payload_len, uint8_t ttl, uint16_t udp_checksum,
                                                      bool ip_checksum = true) noexcept {
  std::memcpy(f, dst.b, 6);
  std::memcpy(f + 6, src.b, 6);
  store_be16(f + 12, kEtherTypeIpv4);
  uint8_t* ip = f + kEthHeader;
  ip[0] = 0x45;
  ip[1] = 0;  // DSCP/ECN: best effort
  store_be16(ip + 2, static_cast<uint16_t>(kIpv4Header + kUdpHeader + payload_len));
  store_be16(ip + 4, 0);       // id: unused without fragmentation
  store_be16(ip + 6, 0x4000);  // DF: relayed media is not fragmented by us
  ip[8] = ttl;
  ip[9] = 17;
  std::memcpy(ip + 12, &src_ip, 4);
  std::memcpy(ip + 16, &dst_ip, 4);
  // The header checksum (RFC 791) from the values, not read back from the
  // bytes just stored: a 32-bit load over the byte and 16-bit stores above
  // cannot be store-forwarded and stalled every packet (it was 40% of
  // emit's samples). 0 with tx offload: the port computes it.
  uint16_t c = 0;
  if (ip_checksum) {
    uint32_t s = 0x4500u + kIpv4Header + kUdpHeader + payload_len + 0x4000u + (uint32_t{ttl} << 8) + 17u;
    uint32_t a = load_be32(reinterpret_cast<const uint8_t*>(&src_ip));
    uint32_t b = load_be32(reinterpret_cast<const uint8_t*>(&dst_ip));
    s += (a >> 16) + (a & 0xFFFF) + (b >> 16) + (b & 0xFFFF);
    c = static_cast<uint16_t>(~fold(s));
  }
  store_be16(ip + 10, c);
  uint8_t* udp = ip + kIpv4Header;
  std::memcpy(udp, &src_port, 2);
  std::memcpy(udp + 2, &dst_port, 2);
  store_be16(udp + 4, static_cast<uint16_t>(kUdpHeader + payload_len));
  store_be16(udp + 6, udp_checksum);
}

}  // namespace turn::dp
