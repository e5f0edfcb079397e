// SPDX-License-Identifier: Apache-2.0
// TurnServer: the TURN server of one event-loop thread (RFC 8656 over RFC
// 8489), put together the way pion/turn's is: listeners hand it client
// messages; it demultiplexes them, applies the per-source limits
// (source_limits.h), authenticates and dispatches requests to the handlers
// (handlers.h: free functions over a request and a responder), and relays
// data on the kernel path (relay.cpp). The allocations live in its
// AllocationManager; it watches their sockets (AllocationIo). RFC 6062 TCP
// relaying (connect.cpp, tcp_relay.cpp) is here too: its peer connections
// belong to this thread. Everything here runs on its loop's thread and
// needs no lock; cross-thread state goes through SharedState.
#pragma once

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "common/stun/message.h"
#include "controlplane/allocation/allocation.h"
#include "controlplane/net/event_loop.h"
#include "controlplane/server/allocation_manager.h"
#include "controlplane/server/handlers.h"
#include "controlplane/server/responder.h"
#include "controlplane/server/shared_state.h"
#include "controlplane/server/source_limits.h"
#include "controlplane/server/stats.h"

namespace turn::cp {

class RelaySocket;
class TcpConnection;
class TcpRelayListener;
struct DetachedStream;

class TurnServer final : private AllocationIo {
 public:
  // Room in front of received peer data for a Data indication header:
  // 20 (STUN header) + 24 (XOR-PEER-ADDRESS, IPv6) + 4 (DATA header).
  static constexpr size_t kHeadroom = 64;
  static constexpr size_t kMaxDatagram = 65535;

  TurnServer(SharedState& shared, EventLoop& loop, Stats& stats);
  ~TurnServer() override;
  TurnServer(const TurnServer&) = delete;
  TurnServer& operator=(const TurnServer&) = delete;

  // A whole STUN message or ChannelData frame from a client.
  void on_client_message(const FiveTuple& tuple, const ClientLink& link, Bytes data);
  // A datagram from a peer on an allocation's relay socket; `data` lies in
  // a buffer with kHeadroom writable bytes before it and 4 after it.
  void on_peer_datagram(Allocation& a, const SocketAddress& peer, uint8_t* data, size_t len);
  // An ICMP error for a datagram the allocation sent to `peer` (RFC 8656
  // §11.5): type, code and the MTU for "too big" errors.
  void on_peer_icmp(Allocation& a, const SocketAddress& peer, bool v6, uint8_t type, uint8_t code, uint32_t info);
  // A TCP/TLS client connection closed: its allocations go (RFC 8656 §3.1).
  void on_stream_closed(StreamConnection* s) { allocations_.close_stream(s); }

  // Re-creates an allocation read back from Redis after a restart (UDP
  // clients only: stream connections did not survive). False if its relay
  // port cannot be bound again.
  bool restore(const FiveTuple& tuple, const ClientLink& link, const std::shared_ptr<AllocationInfo>& info) {
    return allocations_.restore(tuple, link, info);
  }

  // Once a second: expire allocations, permissions, channels, unbound TCP
  // peer connections and idle rate-limit buckets.
  void sweep();
  // Ends everything (shutdown).
  void clear() { allocations_.clear(); }

  [[nodiscard]] size_t allocation_count() const noexcept { return allocations_.size(); }
  // Counts a drop decided outside the server (listeners).
  void count_drop(CpDrop r) noexcept { stats_.drop(r); }

  // Test seam (fuzzers, tests without sockets): everything this server
  // would send to a client goes to `sink` instead of a socket. Unset in
  // turn-control.
  void set_client_sink(Responder::ClientSink sink) { respond_.set_sink(std::move(sink)); }
  [[nodiscard]] EventLoop& loop() noexcept { return loop_; }

 private:
  void handle_request(Request& req);
  // A new Allocate this instance does not take (drain, alternate-server):
  // answered 300 or 508 before authentication. True once answered.
  bool redirected(Request& req);

  // The kernel relay path (relay.cpp). data_allocation: the UDP
  // allocation client data on `t` is for; nullptr (counted) when none.
  [[nodiscard]] Allocation* data_allocation(const FiveTuple& t);
  void handle_send_indication(const FiveTuple& t, const stun::MessageView& msg);
  void handle_channel_data(const FiveTuple& t, Bytes data);

  // RFC 6062 TCP allocations (connect.cpp, tcp_relay.cpp).
  void handle_connect(Request& req);
  void handle_connection_bind(Request& req);
  void on_peer_accepted(Allocation& a, int fd, const SocketAddress& peer);
  void on_tcp_connected(TcpConnection& c);
  void adopt_data_connection(uint32_t id, const std::string& username, const DeferredAnswer& answer, DetachedStream d);
  void close_tcp(uint32_t id, const char* why);
  [[nodiscard]] size_t tcp_connections_of(const Allocation& a) const;

  // AllocationIo: an allocation's sockets on this loop, and this thread
  // in the directory as its owner.
  void serve(Allocation& a) override;
  void release(Allocation& a) override;

  SharedState& shared_;
  const Config& cfg_;
  EventLoop& loop_;
  Stats& stats_;
  SourceLimits limits_;
  Responder respond_;
  // The allocations' relay sockets (and their dual-stack IPv6 halves), the
  // listeners of TCP allocations, and their peer connections by
  // CONNECTION-ID (RFC 6062). Before allocations_: destroying an
  // allocation closes its entries here.
  std::unordered_map<Allocation*, std::unique_ptr<RelaySocket>> relay_sockets_;
  std::unordered_map<Allocation*, std::unique_ptr<RelaySocket>> relay_sockets6_;
  std::unordered_map<Allocation*, std::unique_ptr<TcpRelayListener>> tcp_listeners_;
  std::unordered_map<uint32_t, std::unique_ptr<TcpConnection>> tcp_connections_;
  KernelRelayPorts ports_;  // relayed ports: random, on kernel sockets
  AllocationManager allocations_;
  HandlerContext cx_;

  // Scratch buffer for relayed frames, with headroom. Per thread, reused.
  std::array<uint8_t, kHeadroom + kMaxDatagram + 8> relay_buf_{};
  uint64_t indication_counter_ = 0;
  std::array<uint8_t, 8> txid_salt_{};

  friend class RelaySocket;
  friend class TcpConnection;
  friend class TcpRelayListener;
};

}  // namespace turn::cp
