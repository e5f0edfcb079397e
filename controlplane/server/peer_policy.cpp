// SPDX-License-Identifier: Apache-2.0
#include "controlplane/server/peer_policy.h"

#include <algorithm>
#include <cstring>

namespace turn::cp {

bool peer_allowed(const Config& cfg, const IpAddress& peer) {
  // allowed-peer-ip wins over everything (coturn semantics): an operator
  // who lists a range means it.
  for (const auto& r : cfg.allowed_peers)
    if (r.contains(peer)) return true;
  for (const auto& r : cfg.denied_peers)
    if (r.contains(peer)) return false;
  // Built-in denials against TURN as an SSRF pivot (DESIGN.md, RFC 8656 §21).
  if (peer.is_unspecified()) return false;
  if (peer.is_v4()) {
    uint32_t v = peer.v4_host_order();
    uint8_t a = static_cast<uint8_t>(v >> 24);
    if (a == 127) return cfg.allow_loopback_peers;       // loopback
    if ((v & 0xFFFF0000u) == 0xA9FE0000u) return false;  // 169.254/16 link-local, cloud metadata
    if (a >= 224) return false;                          // multicast, reserved, broadcast
    if (a == 0) return false;                            // "this network"
  } else {
    static const uint8_t kLoop[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    if (std::memcmp(peer.bytes.data(), kLoop, 16) == 0) return cfg.allow_loopback_peers;
    if (peer.bytes[0] == 0xFF) return false;                                    // multicast
    if (peer.bytes[0] == 0xFE && (peer.bytes[1] & 0xC0) == 0x80) return false;  // fe80::/10
    // fd00:ec2::254: the cloud metadata service over IPv6 (AWS IMDS), the
    // IPv6 twin of 169.254.169.254.
    static const uint8_t kMetadata[16] = {0xfd, 0, 0x0e, 0xc2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x54};
    if (std::memcmp(peer.bytes.data(), kMetadata, 16) == 0) return false;
    // IPv6 forms that carry an IPv4 destination: a gateway delivers them
    // to that IPv4 address, so the IPv4 policy decides (loopback, metadata,
    // denied ranges, our own addresses). IPv4-mapped ::ffff:0:0/96 is
    // stored as IPv4 already (common/net/address.h) and took the IPv4 path.
    //   64:ff9b::/96  NAT64 well-known prefix (RFC 6052 §2.1): the last 32 bits;
    //   2002::/16     6to4 (RFC 3056 §2): bits 16-47.
    static const uint8_t kNat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
    if (std::memcmp(peer.bytes.data(), kNat64, 12) == 0)
      return peer_allowed(cfg, IpAddress::v4(peer.bytes.data() + 12));
    if (peer.bytes[0] == 0x20 && peer.bytes[1] == 0x02) return peer_allowed(cfg, IpAddress::v4(peer.bytes.data() + 2));
  }
  // The server's own non-relay addresses (listeners, admin).
  for (const auto& ip : cfg.listening_ips)
    if (ip == peer && std::find(cfg.relay_ips.begin(), cfg.relay_ips.end(), ip) == cfg.relay_ips.end()) return false;
  return true;
}

}  // namespace turn::cp
