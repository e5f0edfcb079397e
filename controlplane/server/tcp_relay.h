// SPDX-License-Identifier: Apache-2.0
// RFC 6062 TCP allocations, the relay side. An allocation with
// REQUESTED-TRANSPORT TCP owns a listening TCP socket on its relayed
// address (TcpRelayListener). Each TCP connection with a peer, accepted
// there or opened by a Connect request from that same address, is a
// TcpConnection named by a CONNECTION-ID; once the client binds a data
// connection to it (ConnectionBind), bytes are copied both ways as they
// come, with back-pressure (a side that cannot take more stops the other
// side's reads, so TCP windows close rather than bytes being dropped).
//
// State machine of a TcpConnection (deadlines checked by TurnServer::sweep):
//   Connecting -- connected --> Pending   (Connect answered with CONNECTION-ID)
//   Connecting -- failed / 30 s --> gone  (Connect answered 447)
//   accepted from a permitted peer --> Pending (ConnectionAttempt to the client)
//   Pending -- ConnectionBind --> Bound
//   Pending -- 30 s without ConnectionBind --> gone (RFC 6062 §5.3)
//   Bound -- either side fails --> gone (both closed)
//   Bound -- either side closes (FIN) --> closing: what is in flight towards
//            the other side is delivered (at most 10 s), then both close
//   any -- allocation deleted --> gone
// Everything here runs on the allocation's event loop.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "common/crypto/integrity.h"
#include "common/stun/constants.h"
#include "controlplane/allocation/allocation.h"
#include "controlplane/net/event_loop.h"
#include "controlplane/server/responder.h"

namespace turn::cp {

class TurnServer;
class StreamConnection;

class TcpConnection final : public IoHandler {
 public:
  enum class State : uint8_t { Connecting, Pending, Bound, Closed };

  // RFC 6062 gives a peer connection 30 s to be bound, and a Connect 30 s.
  static constexpr std::chrono::seconds kBindTimeout{30};
  static constexpr std::chrono::seconds kConnectTimeout{30};
  // Bytes held per direction before reads on the other side stop.
  static constexpr size_t kHighWater = 256 * 1024;
  // What a pending (not yet bound) peer connection may send before its
  // reads stop (RFC 6062 §5.3: "buffer ... adjust the advertised window").
  static constexpr size_t kPendingBuffer = 64 * 1024;

  TcpConnection(TurnServer& server, uint32_t id, Allocation& a, int fd, const SocketAddress& peer, State st);
  ~TcpConnection() override;
  TcpConnection(const TcpConnection&) = delete;
  TcpConnection& operator=(const TcpConnection&) = delete;

  void on_io(uint32_t events) override;

  [[nodiscard]] uint32_t id() const noexcept { return id_; }
  [[nodiscard]] State state() const noexcept { return state_; }
  [[nodiscard]] Allocation* allocation() const noexcept { return alloc_; }
  [[nodiscard]] const SocketAddress& peer() const noexcept { return peer_; }
  [[nodiscard]] TimePoint deadline() const noexcept { return deadline_; }

  // Pending -> Bound with the client's data connection (adopted, raw mode).
  void bind_client(std::unique_ptr<StreamConnection> client, std::vector<uint8_t> leftover);
  // Closes both sides; the server then forgets and retires this object.
  void close_both() noexcept;
  // The client data connection, for retiring it with this object.
  std::unique_ptr<StreamConnection> take_client() noexcept;

  std::optional<DeferredAnswer> connect_answer;  // Connecting: the Connect to answer

  // Bytes from the client's data connection, for the peer.
  void to_peer(const uint8_t* p, size_t n);
  // The client's data connection closed: deliver what it sent, then close.
  void client_closed();
  [[nodiscard]] bool closing() const noexcept { return closing_; }

  // How long in-flight bytes may take to drain once one side closed.
  static constexpr std::chrono::seconds kDrainTimeout{10};

 private:
  void on_connected();
  void read_peer();
  void flush_peer();
  void peer_closed();
  void maybe_finish();
  void update_peer_interest();

  TurnServer& server_;
  uint32_t id_;
  Allocation* alloc_;
  int fd_;
  SocketAddress peer_;
  State state_;
  TimePoint deadline_;
  bool peer_reading_ = true;
  bool peer_eof_ = false;                   // the peer sent FIN
  bool closing_ = false;                    // one side is gone: draining the other, then closing
  std::vector<uint8_t> to_client_pending_;  // peer bytes before the bind
  std::vector<uint8_t> to_peer_;            // client bytes the peer socket has not taken yet
  std::unique_ptr<StreamConnection> client_;
};

// The listening socket of a TCP allocation's relayed transport address.
class TcpRelayListener final : public IoHandler {
 public:
  TcpRelayListener(TurnServer& server, Allocation& a, int fd) : server_(server), alloc_(a), fd_(fd) {}
  ~TcpRelayListener() override { close_socket(); }
  void on_io(uint32_t events) override;
  void close_socket() noexcept;

 private:
  TurnServer& server_;
  Allocation& alloc_;
  int fd_;
};

}  // namespace turn::cp
