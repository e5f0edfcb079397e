// SPDX-License-Identifier: Apache-2.0
// Client-facing listeners of one event loop: UDP sockets and TCP/TLS
// acceptors on every listening address and port. Every loop opens its own
// set with SO_REUSEPORT, so the kernel spreads clients across threads and
// no lock is shared on the relay path.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "controlplane/allocation/allocation.h"
#include "controlplane/net/event_loop.h"

namespace turn::cp {

class TurnServer;
class TlsContext;
class StreamConnection;
}  // namespace turn::cp
typedef struct ssl_st SSL;
namespace turn::cp {

struct ListenerStatus {
  Transport transport;
  SocketAddress address;
  bool up;
  std::string error;
};

class Listeners {
 public:
  // Client datagrams: any size UDP carries is received whole (relay MTU
  // policy, docs/configuration.md): 32 slots of 64 KiB per event loop, 2 MiB,
  // shared by the loop's UDP listeners. A 2,048-byte slot used to truncate
  // (and drop) every larger datagram.
  static constexpr unsigned kUdpBatch = 32;
  static constexpr size_t kUdpBufSize = 65536;

  Listeners(TurnServer& server, EventLoop& loop, TlsContext* tls);
  ~Listeners();
  Listeners(const Listeners&) = delete;
  Listeners& operator=(const Listeners&) = delete;

  // Opens one listener; returns its status (a failure is reported, not thrown).
  ListenerStatus open(Transport t, const SocketAddress& at);
  void close_all();
  // The UDP listener socket bound to `at`, or -1.
  [[nodiscard]] int udp_fd(const SocketAddress& at) const;
  // Once a second: DTLS handshake timers and idle DTLS sessions.
  void sweep();
  // A DTLS session that has seen nothing for this long is closed (its
  // allocations go with it, as for a closed TCP connection).
  std::chrono::seconds dtls_idle{3660};

 private:
  class Udp;
  class Acceptor;
  class DtlsListener;
  void add_stream(std::unique_ptr<StreamConnection> conn, int fd);
  std::unique_ptr<StreamConnection> make_stream(int fd, SSL* ssl, const FiveTuple& t);
  TurnServer& server_;
  EventLoop& loop_;
  TlsContext* tls_;
  std::unique_ptr<uint8_t[]> udp_bufs_;  // before handlers_: they point into it
  std::vector<std::unique_ptr<IoHandler>> handlers_;
  std::vector<std::pair<SocketAddress, int>> udp_fds_;
  std::unordered_map<StreamConnection*, std::unique_ptr<StreamConnection>> streams_;
};

}  // namespace turn::cp
