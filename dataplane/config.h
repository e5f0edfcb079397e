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

namespace turn::dp {

class DpConfigError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

struct DpConfig {
  uint16_t port_id = 0;            // DPDK port that faces the network
  uint32_t ip = 0;                 // network order: the port's address (shared with the TAP)
  uint32_t netmask = 0xFFFFFFFF;   // network order
  uint32_t gateway = 0;            // network order, 0 = none
  std::vector<uint32_t> relay_ips; // network order; default: ip
  std::vector<uint16_t> turn_ports{3478};  // host order
  uint16_t min_port = 49152, max_port = 65535;
  bool legacy_channel_range = false;
  std::string tap_name = "dpt0";   // exception interface (a net_tap created at start)
  int exception_port = -1;         // instead of a TAP: an existing DPDK port (tests: a net_pcap)
  std::vector<std::pair<uint32_t, std::array<uint8_t, 6>>> neighbors;  // static next hops
  std::string redis_host = "127.0.0.1";
  uint16_t redis_port = 6379;
  int redis_db = 0;
  std::string redis_password;
  std::string instance_id;         // names this data plane in Redis; hostname by default
  uint32_t allocations = 1 << 16;
  uint32_t channels = 1 << 18;
  uint16_t burst = 32;
  uint32_t mbufs = 16383;
  std::string stats_file;          // if set, counters are written here on exit (tests)
};

void load_dp_config(const std::string& path, DpConfig& cfg);
void apply_dp_line(const std::string& line, const std::string& where, DpConfig& cfg);

}  // namespace turn::dp
