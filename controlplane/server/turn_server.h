// SPDX-License-Identifier: Apache-2.0
// TurnServer: the TURN protocol engine of one event-loop thread (RFC 8656
// over RFC 8489). Listeners hand it client messages; it authenticates,
// dispatches by method (one file per method: allocate.cpp, refresh.cpp,
// create_permission.cpp, channel_bind.cpp), relays data (relay.cpp) and
// answers. Everything here runs on its loop's thread and needs no lock;
// cross-thread state goes through SharedState.
#pragma once

#include <array>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/crypto/integrity.h"
#include "common/stun/builder.h"
#include "common/stun/message.h"
#include "controlplane/allocation/allocation.h"
#include "controlplane/net/event_loop.h"
#include "controlplane/server/shared_state.h"
#include "controlplane/server/stats.h"

namespace turn::cp {

class RelaySocket;
class TcpConnection;
class TcpRelayListener;
struct DeferredAnswer;
struct DetachedStream;

// One client request being served.
struct Request {
  const stun::MessageView& msg;
  FiveTuple tuple;
  ClientLink link;
  // Filled in by authentication:
  std::string username;
  crypto::Key key;
  bool sha256 = false;       // answer with MESSAGE-INTEGRITY-SHA256
  bool fingerprint = false;  // the request carried one: so does the answer
};

class TurnServer {
 public:
  // Room in front of received peer data for a Data indication header:
  // 20 (STUN header) + 24 (XOR-PEER-ADDRESS, IPv6) + 4 (DATA header).
  static constexpr size_t kHeadroom = 64;
  static constexpr size_t kMaxDatagram = 65535;

  TurnServer(SharedState& shared, EventLoop& loop, Stats& stats);
  ~TurnServer();
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
  void on_stream_closed(StreamConnection* s);

  // Re-creates an allocation read back from Redis after a restart (UDP
  // clients only: stream connections did not survive). False if its relay
  // port cannot be bound again.
  bool restore(const FiveTuple& tuple, const ClientLink& link, const std::shared_ptr<AllocationInfo>& info);

  // Once a second: expire allocations, permissions, channels.
  void sweep();
  // Ends everything (shutdown).
  void clear();

  [[nodiscard]] size_t allocation_count() const noexcept { return allocations_.size(); }
  // Counts a drop decided outside the server (listeners).
  void count_drop(CpDrop r) noexcept { stats_.drop(r); }

  // Test seam (fuzzers, tests without sockets): everything this server
  // would send to a client goes to `sink` instead of a socket. Unset in
  // turn-control.
  using ClientSink = std::function<void(const FiveTuple&, Bytes)>;
  void set_client_sink(ClientSink sink) { client_sink_ = std::move(sink); }
  [[nodiscard]] EventLoop& loop() noexcept { return loop_; }

 private:
  // Protocol steps (turn_server.cpp).
  void handle_request(Request& req);
  bool authenticate(Request& req);
  bool rate_limited(const IpAddress& source, bool unauthenticated);
  // Reflection budget (UDP only): bytes received from `source` earn the
  // right to answer it without authentication.
  void note_received(const IpAddress& source, size_t bytes);
  bool reflection_allows(const IpAddress& source, size_t bytes);
  void send_error(Request& req, stun::ErrorCode code, bool with_integrity = true);
  void send_auth_challenge(Request& req, stun::ErrorCode code);
  void send_try_alternate(Request& req, const Alternate& alt);
  void send_unknown_attributes(Request& req, std::span<const uint16_t> types);
  stun::MessageBuilder start_response(Request& req, stun::Class cls);
  void finish_and_send(Request& req, stun::MessageBuilder& b, bool with_integrity);
  void send_to_client(const FiveTuple& t, const ClientLink& link, Bytes data);
  void handle_binding(Request& req);

  // Methods (one file each).
  void handle_allocate(Request& req);
  void install(const FiveTuple& tuple, std::unique_ptr<Allocation> a, int fd, int fd6, bool tcp);
  void handle_refresh(Request& req);
  void handle_create_permission(Request& req);
  void handle_channel_bind(Request& req);
  void handle_send_indication(const FiveTuple& t, const stun::MessageView& msg);
  void handle_channel_data(const FiveTuple& t, Bytes data);

  // RFC 6062 TCP allocations (connect.cpp, tcp_relay.cpp).
  void handle_connect(Request& req);
  void handle_connection_bind(Request& req);
  void on_peer_accepted(Allocation& a, int fd, const SocketAddress& peer);
  void on_tcp_connected(TcpConnection& c);
  void adopt_data_connection(uint32_t id, const std::string& username, const DeferredAnswer& answer, DetachedStream d);
  void close_tcp(uint32_t id, const char* why);
  void send_deferred(StreamConnection* s, const DeferredAnswer& d, std::optional<stun::ErrorCode> err,
                     uint32_t connection_id);
  [[nodiscard]] size_t tcp_connections_of(const Allocation& a) const;

  // Allocation lifecycle.
  Allocation* find(const FiveTuple& t);
  // The allocation a Refresh, CreatePermission or ChannelBind is about: the
  // one of the request's 5-tuple, else 437 (RFC 8656 §7.3, §9.2, §11.2), and
  // only for the user who made it, else 441 (§5). nullptr once answered.
  Allocation* own_allocation(Request& req);
  void destroy(Allocation& a, const char* why);
  bool peer_allowed(const IpAddress& peer) const;
  void install_permission(Allocation& a, const IpAddress& peer);
  // max-permissions-per-allocation: room for `peers` (those not yet
  // permitted)? If not, answers 508 and counts it; false then.
  bool permission_room(Request& req, Allocation& a, std::span<const IpAddress> peers);
  void publish_permissions(Allocation& a);
  SocketAddress advertised(const SocketAddress& relay) const;
  uint64_t wall_expiry(TimePoint t) const;

  SharedState& shared_;
  const Config& cfg_;
  EventLoop& loop_;
  Stats& stats_;
  std::unordered_map<FiveTuple, std::unique_ptr<Allocation>, AddressHash> allocations_;
  std::unordered_map<Allocation*, std::unique_ptr<RelaySocket>> relay_sockets_;
  std::unordered_map<Allocation*, std::unique_ptr<RelaySocket>> relay_sockets6_;  // dual-stack IPv6 halves
  // RFC 6062: the listeners of TCP allocations, and their peer connections
  // by CONNECTION-ID.
  std::unordered_map<Allocation*, std::unique_ptr<TcpRelayListener>> tcp_listeners_;
  std::unordered_map<uint32_t, std::unique_ptr<TcpConnection>> tcp_connections_;

  // Per source IP; forgotten after 10 s idle (sweep()).
  struct Bucket {
    double tokens = 0;         // request-rate-limit
    double unauth_tokens = 0;  // unauth-rate-limit
    // Reflection budget, bytes: `earned` by what the source sent over UDP
    // (capped at reflection-burst), `allowance` the one-off burst a fresh
    // source may be answered beyond that.
    uint32_t earned = 0;
    uint32_t allowance = 0;
    TimePoint last{};
  };
  Bucket& bucket(const IpAddress& source);
  std::unordered_map<IpAddress, Bucket, AddressHash> rate_;
  // Unearned answer bytes of all sources together (16 x reflection-burst
  // per second): spoofing many sources reflects no more than that.
  TokenBucket unearned_;

  // Scratch buffers: responses and outgoing relay frames. Per thread, reused.
  std::array<uint8_t, 2048> response_buf_{};
  // PASSWORD-ALGORITHMS we offer (RFC 8489 §14.11): SHA-256 first only when
  // every credential source can derive SHA-256 keys (plaintext passwords).
  std::vector<stun::PasswordAlgorithm> algorithms_;
  std::array<uint8_t, kHeadroom + kMaxDatagram + 8> relay_buf_{};
  uint64_t indication_counter_ = 0;
  std::array<uint8_t, 8> txid_salt_{};
  ClientSink client_sink_;

  friend class RelaySocket;
  friend class TcpConnection;
  friend class TcpRelayListener;
};

}  // namespace turn::cp
