// SPDX-License-Identifier: Apache-2.0
// Frames the kernel dropped before a worker could see them, on a
// net_af_packet port: the af_packet receive ring was full (tp_drops of
// getsockopt(PACKET_STATISTICS), packet(7)). DPDK 22.11's af_packet PMD
// reports no imissed, so without this a loss in front of the worker is
// invisible: the worker's counters say it forwarded all it received.
//
// The PMD's sockets are private to it; they are found by what they are in
// this process: AF_PACKET sockets bound to the port's kernel interface
// (rte_eth_dev_info.if_index). The kernel resets the figures on every
// read, so reads accumulate. Off the packet path: the sync thread and
// telemetry read it about once a second (a mutex, a few syscalls).
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

namespace turn::dp {

class RingDrops {
 public:
  // The AF_PACKET sockets of this process bound to `ifindex` (none for
  // another kind of port, or ifindex 0).
  explicit RingDrops(int ifindex);

  // Since the sockets were opened (the port's start): frames dropped
  // because a ring was full, and frames the rings were offered (the
  // kernel's tp_packets, drops included).
  struct Figures {
    uint64_t drops = 0;
    uint64_t packets = 0;
  };
  Figures read();
  size_t sockets() const { return fds_.size(); }

 private:
  bool still_ours(int fd) const;

  int ifindex_;
  std::vector<int> fds_;
  std::mutex mu_;
  Figures total_;
};

}  // namespace turn::dp
