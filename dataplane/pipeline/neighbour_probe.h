// SPDX-License-Identifier: Apache-2.0
// Neighbour probes the data plane sends itself: an ARP request (RFC 826)
// and an IPv6 Neighbor Solicitation (RFC 4861 §4.3, §7.2.2) for a next hop
// whose MAC it does not know yet (its gateways, at start and after a
// restart, when the kernel behind the TAP has nothing to send that would
// make it ask). The reply is punted like any ARP/NDP frame and learned
// there. Pure functions over bytes (unit-tested); the service lcore sends.
#pragma once

#include <cstdint>
#include <cstring>

#include "common/util/bytes.h"
#include "dataplane/pipeline/checksum.h"
#include "dataplane/pipeline/headers.h"

namespace turn::dp {

inline constexpr size_t kArpFrameSize = 42;
inline constexpr size_t kNsFrameSize = 14 + 40 + 32;  // Ethernet, IPv6, NS with source link-layer option

// Who-has target_ip? Tell sender_ip (network order addresses).
inline size_t write_arp_request(uint8_t* f, const Mac& src, uint32_t sender_ip, uint32_t target_ip) noexcept {
  std::memset(f, 0xFF, 6);  // broadcast
  std::memcpy(f + 6, src.b, 6);
  store_be16(f + 12, kEtherTypeArp);
  uint8_t* a = f + 14;
  store_be16(a, 1);           // Ethernet
  store_be16(a + 2, 0x0800);  // IPv4
  a[4] = 6;
  a[5] = 4;
  store_be16(a + 6, 1);  // request
  std::memcpy(a + 8, src.b, 6);
  std::memcpy(a + 14, &sender_ip, 4);
  std::memset(a + 18, 0, 6);
  std::memcpy(a + 24, &target_ip, 4);
  return kArpFrameSize;
}

// Neighbor Solicitation for `target` from `source` (one of our addresses),
// to the target's solicited-node multicast address ff02::1:ffXX:XXXX.
inline size_t write_neighbour_solicitation(uint8_t* f, const Mac& src, const Ip6& source, const Ip6& target) noexcept {
  Ip6 dst{{0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff, target.b[13], target.b[14], target.b[15]}};
  const uint8_t mdst[6] = {0x33, 0x33, 0xff, target.b[13], target.b[14], target.b[15]};
  std::memcpy(f, mdst, 6);
  std::memcpy(f + 6, src.b, 6);
  store_be16(f + 12, kEtherTypeIpv6);
  uint8_t* ip = f + 14;
  store_be32(ip, 0x60000000u);
  store_be16(ip + 4, 32);
  ip[6] = 58;   // ICMPv6
  ip[7] = 255;  // hop limit 255: receivers check it (RFC 4861 §7.1.1)
  std::memcpy(ip + 8, source.b, 16);
  std::memcpy(ip + 24, dst.b, 16);
  uint8_t* ns = ip + 40;
  ns[0] = 135;  // Neighbor Solicitation
  ns[1] = 0;
  store_be16(ns + 2, 0);
  store_be32(ns + 4, 0);
  std::memcpy(ns + 8, target.b, 16);
  ns[24] = 1;  // Source Link-Layer Address option, 8 bytes
  ns[25] = 1;
  std::memcpy(ns + 26, src.b, 6);
  // ICMPv6 checksum (RFC 4443 §2.3) over the IPv6 pseudo header.
  uint32_t s = sum16(source.b, 16) + sum16(dst.b, 16) + 32u + 58u + sum16(ns, 32);
  store_be16(ns + 2, static_cast<uint16_t>(~fold(s)));
  return kNsFrameSize;
}

}  // namespace turn::dp
