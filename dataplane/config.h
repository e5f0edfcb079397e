// SPDX-License-Identifier: Apache-2.0
// turn-dataplane configuration (docs/dataplane.md): the same key=value
// syntax as turn-control, with the keys that describe the port, the TURN
// ports and relay range it accelerates, the state Redis and table sizes.
// EAL arguments (cores, vdevs/PCI devices) come before "--" on the command
// line, as for every DPDK application. Immutable after start-up.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <array>
#include <string>
#include <utility>
#include <vector>

#include "common/config/lexer.h"
#include "common/redis/endpoint.h"
#include "dataplane/dp_limits.h"
#include "dataplane/net_types.h"

namespace turn::dp {

// "FILE:LINE: key=value: why" (common/config/lexer.h, shared with turn-control).
using DpConfigError = config::Error;

// One network port and its exception path. A dual-homed edge has two
// (external and internal); egress is chosen per packet by route.
struct DpInterface {
  uint16_t port_id = 0;           // DPDK port that faces the network
  uint32_t ip = 0;                // network order: the port's address (shared with the TAP)
  uint32_t netmask = 0xFFFFFFFF;  // network order
  uint32_t gateway = 0;           // network order, 0 = none (at most one interface has the default route)
  std::string tap_name;           // exception interface (a net_tap created at start); default dpt<index>
  int exception_port = -1;        // instead of a TAP: an existing DPDK port (tests: a net_pcap)
  bool has_ip6 = false;           // IPv6 on this port (fast path for IPv6 allocations)
  Ip6 ip6{};
  uint8_t prefix6 = 64;
  Ip6 gateway6{};  // all-zero = none
};

// A static route: destinations in net/mask go through gateway (on the
// link of one of the interfaces).
struct DpRoute {
  uint32_t net = 0, netmask = 0, gateway = 0;  // network order
};

struct DpConfig {
  std::vector<DpInterface> interfaces;  // in config order; "port=" starts a new one
  std::vector<DpRoute> routes;
  std::vector<uint32_t> relay_ips;  // network order; default: the first interface's ip
  std::vector<Ip6> relay_ips6;      // IPv6 relay addresses; default: the ports' ip6
  // Floating addresses this host may hold (keepalived): its own instance's
  // and those it may take over. Their traffic is the port's own (clients
  // reach turn-control on them; peers reach relays on them) whenever the
  // kernel behind the TAP holds them. Network order.
  std::vector<uint32_t> floating_ips;
  std::vector<uint16_t> turn_ports{3478};  // host order
  uint16_t min_port = 49152, max_port = 65535;
  bool legacy_channel_range = false;
  bool checksum_offload = true;                      // use the port's IPv4/UDP tx checksum offload where it has one
  std::vector<std::pair<uint32_t, Mac>> neighbours;  // static next hops (IPv4 network order)
  redis::Endpoint store = redis::local_endpoint();   // state-redis
  // This host's instance: the data plane loads and follows the allocations
  // turn-control writes under the same instance-id. Hostname by default
  // (as turn-control's).
  std::string instance_id;
  uint32_t allocations = 1 << 16;
  uint32_t channels = 1 << 18;
  uint16_t burst = 32;
  // How long a worker may hold relayed frames for one port to send them in
  // one burst (l3fwd's BURST_TX_DRAIN_US); 0: each rx burst's frames leave
  // at once. A kernel vdev pays a syscall per tx burst, a NIC a doorbell.
  uint32_t tx_drain_us = 20;
  // Sleep this long (us) when a worker's loop has been idle a while
  // (dataplane/idle_sleep.h); 0: spin, the poll-mode default.
  uint32_t idle_sleep_us = 0;
  uint32_t mbufs = 16383;
  std::string stats_file;  // if set, counters are written here on exit (tests)
};

void load_dp_config(const std::string& path, DpConfig& cfg);
void apply_dp_line(const std::string& line, const std::string& where, DpConfig& cfg);
// Whole-config rules (after every line): each interface has an address,
// ports and TAP names are distinct, routes' gateways are on a link.
// Fills defaults (TAP names, relay-ip). Throws DpConfigError.
void finish_dp_config(DpConfig& cfg);

}  // namespace turn::dp
