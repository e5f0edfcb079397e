// SPDX-License-Identifier: Apache-2.0
// RouteTable: which of the data plane's ports a packet leaves by, and the
// IP of its next hop there (the destination itself on a port's link, else
// a static route's gateway, else the default gateway). Set up once before
// the workers start, then read-only: small fixed arrays, scanned in order
// (a dual-homed edge has two links and a handful of routes).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "dataplane/dp_limits.h"
#include "dataplane/table/entries.h"

namespace turn::dp {

class RouteTable {
 public:
  struct Link {
    uint32_t ip, netmask, gateway;  // network order; gateway 0 = none
  };
  struct Route {
    uint32_t net, netmask, gateway;  // network order; gateway on one of the links
  };
  static constexpr size_t kMaxLinks = kMaxPorts, kMaxRoutes = 32;

  // ---- set-up (before the workers start; dataplane/table/routes.cpp) -----
  // Throws std::invalid_argument: no link or too many, too many routes, a
  // route whose gateway is on no link.
  void set(const std::vector<Link>& links, const std::vector<Route>& routes);

  // ---- readers (workers) -------------------------------------------------
  // Port index (config order) and next-hop IP for ip (network order);
  // false when nothing routes it (no default gateway).
  [[nodiscard, gnu::always_inline]] bool route(uint32_t ip, uint8_t& port, uint32_t& hop) const noexcept {
    int l = link_of(ip);
    if (l >= 0) {
      port = static_cast<uint8_t>(l);
      hop = ip;
      return true;
    }
    for (uint8_t i = 0; i < nroutes_; ++i)  // longest prefix first
      if (((ip ^ routes_[i].net) & routes_[i].netmask) == 0) {
        port = routes_[i].port;
        hop = routes_[i].gateway;
        return true;
      }
    if (default_port_ < 0) return false;
    port = static_cast<uint8_t>(default_port_);
    hop = links_[default_port_].gateway;
    return true;
  }

  [[nodiscard]] bool on_link(uint8_t port, uint32_t ip) const noexcept {
    return port < nlinks_ && ((ip ^ links_[port].ip) & links_[port].netmask) == 0;
  }

 private:
  struct LinkSlot {
    uint32_t ip = 0, netmask = 0xFFFFFFFF, gateway = 0;
    uint8_t bits = 32;
  };
  struct RouteSlot {
    uint32_t net = 0, netmask = 0, gateway = 0;
    uint8_t port = 0, bits = 0;
  };
  static uint8_t bits(uint32_t mask) noexcept { return static_cast<uint8_t>(__builtin_popcount(mask)); }
  // The link holding ip, longest prefix; -1 if none.
  [[nodiscard, gnu::always_inline]] int link_of(uint32_t ip) const noexcept {
    int best = -1;
    for (uint8_t i = 0; i < nlinks_; ++i)
      if (((ip ^ links_[i].ip) & links_[i].netmask) == 0 && (best < 0 || links_[i].bits > links_[best].bits)) best = i;
    return best;
  }

  LinkSlot links_[kMaxLinks];
  RouteSlot routes_[kMaxRoutes];
  uint8_t nlinks_ = 0, nroutes_ = 0;
  int default_port_ = -1;
};

// The IPv6 side of the same ports (index = the port's position): each
// port's on-link prefix, and one default gateway. Static IPv6 routes are
// not configurable yet (off-link IPv6 destinations use the default).
class RouteTable6 {
 public:
  struct Link {
    bool present = false;  // the port has an IPv6 address
    Ip6 ip{};
    uint8_t bits = 128;
    Ip6 gateway{};  // all-zero = none
  };

  // ---- set-up (before the workers start; dataplane/table/routes.cpp) -----
  void set(const std::vector<Link>& links);  // throws std::invalid_argument: too many ports

  // ---- readers (workers) -------------------------------------------------
  [[nodiscard]] bool route(const Ip6& ip, uint8_t& port, Ip6& hop) const noexcept {
    int best = -1;
    for (uint8_t i = 0; i < n_; ++i)
      if (links_[i].present && same_prefix(ip, links_[i].ip, links_[i].bits) &&
          (best < 0 || links_[i].bits > links_[best].bits))
        best = i;
    if (best >= 0) {
      port = static_cast<uint8_t>(best);
      hop = ip;
      return true;
    }
    if (default_port_ < 0) return false;
    port = static_cast<uint8_t>(default_port_);
    hop = links_[default_port_].gateway;
    return true;
  }
  [[nodiscard]] bool on_link(uint8_t port, const Ip6& ip) const noexcept {
    return port < n_ && links_[port].present && same_prefix(ip, links_[port].ip, links_[port].bits);
  }
  [[nodiscard]] static bool same_prefix(const Ip6& a, const Ip6& b, uint8_t bits) noexcept {
    unsigned full = bits / 8u;
    for (unsigned i = 0; i < full; ++i)
      if (a.b[i] != b.b[i]) return false;
    if (bits % 8 == 0) return true;
    auto mask = static_cast<uint8_t>(0xFF << (8 - bits % 8));
    return ((a.b[full] ^ b.b[full]) & mask) == 0;
  }

 private:
  Link links_[RouteTable::kMaxLinks];
  uint8_t n_ = 0;
  int default_port_ = -1;
};

}  // namespace turn::dp
