// SPDX-License-Identifier: Apache-2.0
// TurnClient: a small blocking TURN client (UDP, TCP or TLS) for turnctl
// probe and the admin API's TURN server registry, with the targets it
// takes. Long-term credentials, 401/438 handled, retransmission over UDP
// (RFC 8489 §6.2.1, bounded): all in TurnSession (session.h), which the
// tests use directly. Not for the relay path.
//
// probe_turn_server() is the one reachability check (turnctl probe and
// GET /api/v1/turn-servers/{id}/status): an authenticated Allocate, then
// Refresh with LIFETIME 0, which deletes the allocation (RFC 8656 §7.2).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "common/net/address.h"
#include "common/net/transport.h"
#include "controlplane/client/session.h"

namespace turn::cp {

// Where a TURN server is: host (IP literal or DNS name), port, transport.
struct TurnTarget {
  std::string host;
  uint16_t port = 0;
  Transport transport = Transport::Udp;         // udp, tcp or tls (this client speaks no DTLS)
  bool transport_given = false;                 // by "turns:" or "?transport=" (a bare HOST:PORT gives none)
  [[nodiscard]] std::string host_port() const;  // "1.2.3.4:3478", "[::1]:3478", "turn.example.org:3478"
};

// Parses "IP:PORT", "[IPv6]:PORT", "HOST:PORT" or an RFC 7065 TURN URI
// "turn:HOST[:PORT][?transport=udp|tcp]" / "turns:HOST[:PORT][?transport=tcp]"
// (default ports 3478 and 5349, RFC 7065 §3). A bare form needs its port.
// Nothing is resolved. On failure returns false and *err says why, quoting
// the text.
bool parse_turn_target(const std::string& text, TurnTarget& out, std::string* err);

// getaddrinfo() of target.host; false and *err on failure.
bool resolve_turn_target(const TurnTarget& target, SocketAddress& out, std::string* err);

struct ProbeResult {
  bool reachable = false;
  double rtt_ms = 0;  // round trip of the authenticated Allocate
  std::string relay;  // the relayed address the server gave
  std::string error;  // why not reachable
};

// Authenticated Allocate, optional hold, Refresh(0). Every transaction is
// bounded by `timeout` (retransmissions included), so a probe takes at
// most 3 x timeout plus the hold. With a `peer`, a CreatePermission for it
// and a ChannelBind (channel 0x4000) follow the Allocate (turnctl probe
// --peer: an allocation that shows peers and channels while held).
ProbeResult probe_turn_server(const TurnTarget& target, const std::string& username, const std::string& password,
                              std::chrono::milliseconds timeout, int hold_s = 0, const SocketAddress* peer = nullptr);

// The bool API over a TurnSession that probe_turn_server() uses: RFC 8489
// §9.2.3.1 style (a first request without credentials, then signed with
// the REALM and NONCE of the 401, FINGERPRINT on every request), a stale
// nonce (438) answered, a success response's MESSAGE-INTEGRITY checked.
class TurnClient {
 public:
  struct Options {
    SocketAddress server;
    Transport transport = Transport::Udp;  // udp, tcp or tls
    std::string sni;                       // server name for TLS (DNS names only)
    std::string username;
    std::string password;
    std::chrono::milliseconds timeout{2000};  // whole transaction, retransmissions included
  };

  explicit TurnClient(const Options& o);

  // Each returns true on success; on failure error() says why (with the
  // STUN error code where there is one).
  bool connect();
  bool allocate(uint32_t lifetime_s = 600);
  bool refresh(uint32_t lifetime_s);
  bool create_permission(const IpAddress& peer);
  bool channel_bind(uint16_t channel, const SocketAddress& peer);

  [[nodiscard]] const std::string& error() const noexcept { return error_; }
  [[nodiscard]] int error_code() const noexcept { return error_code_; }
  [[nodiscard]] const SocketAddress& relay() const noexcept { return relay_; }
  [[nodiscard]] const SocketAddress& mapped() const noexcept { return mapped_; }
  [[nodiscard]] uint32_t lifetime() const noexcept { return lifetime_; }
  // Round trip of the last successful transaction.
  [[nodiscard]] std::chrono::microseconds last_rtt() const noexcept { return session_.last_rtt(); }

 private:
  [[nodiscard]] static Signing signing();
  // Reads the outcome of a request into error_ / relay_, mapped_, lifetime_.
  bool outcome(const Response& r);

  TurnSession session_;
  SocketAddress relay_, mapped_;
  uint32_t lifetime_ = 0;
  std::string error_;
  int error_code_ = 0;
};

}  // namespace turn::cp
