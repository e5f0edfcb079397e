// SPDX-License-Identifier: Apache-2.0
// Port set-up: the network port (one rx/tx queue pair per worker, RSS when
// there are several) and its
// exception TAP (net_tap, same MAC; the kernel behind it carries the port's
// IP address and turn-control's sockets). Setup code: throws with the
// offending port and the DPDK reason.
#pragma once

#include <rte_mempool.h>

#include <cstdint>
#include <string>

#include "dataplane/pipeline/headers.h"

namespace turn::dp {

// Configures and starts `port`. With want_checksum_offload, turns on the
// port's IPv4 and UDP tx checksum offload if it has both; returns whether
// it did.
bool start_port(uint16_t port, uint16_t rx_queues, uint16_t tx_queues, rte_mempool* pool,
                bool want_checksum_offload = false);
// Creates net_tap "name" with `mac` and one queue pair per worker; returns its port id.
uint16_t create_tap(const std::string& name, const Mac& mac, uint16_t queues, rte_mempool* pool);
Mac port_mac(uint16_t port);
void stop_port(uint16_t port) noexcept;

}  // namespace turn::dp
