// SPDX-License-Identifier: Apache-2.0
// RelaySocket: the UDP socket of one allocation's relayed transport address.
// Reads peer datagrams in batches (recvmmsg) into a buffer with headroom so
// the ChannelData / Data indication header is written in front of the data
// without a copy. Lives on its allocation's event loop.
#pragma once

#include <sys/epoll.h>

#include "controlplane/net/event_loop.h"

namespace turn::cp {

class TurnServer;
struct Allocation;

class RelaySocket final : public IoHandler {
 public:
  RelaySocket(TurnServer& server, Allocation& a, int fd) : server_(server), alloc_(a), fd_(fd) {}
  ~RelaySocket() override { close_socket(); }
  void on_io(uint32_t events) override;
  void close_socket() noexcept;

 private:
  // ICMP errors queued on the socket (IP_RECVERR): each to the server.
  void drain_errors();
  TurnServer& server_;
  Allocation& alloc_;
  int fd_;
};

}  // namespace turn::cp
