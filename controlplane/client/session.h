// SPDX-License-Identifier: Apache-2.0
// TurnSession: one blocking connection to a TURN server over UDP, TCP or
// TLS, and the transactions on it. The one place that owns the socket,
// frames the stream (RFC 8489 §6.2.2), matches responses by transaction id,
// retransmits over UDP (RFC 8489 §6.2.1, bounded by the timeout) and answers
// 401/438 challenges (RFC 8489 §9.2.5). TurnClient (turn_client.h: turnctl
// probe, the admin API's server registry) and the tests' clients sit on it.
//
// Every layer is open: build() makes a request with explicit signing
// choices, transact() sends any bytes and waits for the response with their
// transaction id, send_raw() sends bytes as they are. So a caller can send
// what a real client would not (malformed, unsigned, foreign nonce).
// Frames that arrive while a transaction waits and are not its response
// (Data indications, ChannelData, stray responses) are kept for next_frame().
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/net/address.h"
#include "common/net/transport.h"
#include "controlplane/client/request.h"
#include "controlplane/client/response.h"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

namespace turn::cp {

class TurnSession {
 public:
  struct Options {
    SocketAddress server;
    Transport transport = Transport::Udp;  // udp, tcp or tls (no DTLS)
    std::string sni;                       // server name for TLS (DNS names only)
    // Per transaction, retransmissions included; also bounds connect() and
    // the TLS handshake.
    std::chrono::milliseconds timeout{2000};
    // Over UDP, send a request again until answered (RFC 8489 §6.2.1).
    // false: once, then wait.
    bool retransmit = true;
  };

  // Why the last operation gave nothing.
  enum class Failure : uint8_t {
    None,
    Timeout,  // no answer in time
    Closed,   // the server closed the connection, or (UDP) its port is closed (ICMP)
    Io,       // anything else: a socket, TLS or framing error
  };

  explicit TurnSession(Options o);
  ~TurnSession();
  TurnSession(const TurnSession&) = delete;
  TurnSession& operator=(const TurnSession&) = delete;

  // Opens the socket and connects (TLS: and shakes hands; the certificate
  // is not verified: a probe checks TURN, and servers are often registered
  // by IP address). False and error() on failure.
  bool connect();

  [[nodiscard]] const std::string& error() const noexcept { return error_; }
  [[nodiscard]] Failure failure() const noexcept { return failure_; }
  [[nodiscard]] const Options& options() const noexcept { return o_; }
  [[nodiscard]] SocketAddress local() const;
  // RFC 6062 data connections: after ConnectionBind the socket carries raw
  // bytes; these hand out the socket and what was read past the response.
  [[nodiscard]] int fd() const noexcept { return fd_; }
  [[nodiscard]] std::vector<uint8_t> take_buffered() { return std::exchange(stream_buf_, {}); }
  // Stream transports: closes with a reset (SO_LINGER 0), as a crashing
  // client or a middlebox would.
  void abort_connection();

  void set_credentials(std::string username, std::string password, std::string realm = {});
  [[nodiscard]] const Credentials& credentials() const noexcept { return creds_; }
  [[nodiscard]] crypto::Key key(stun::PasswordAlgorithm alg = stun::PasswordAlgorithm::Md5) const {
    return creds_.key(alg);
  }
  [[nodiscard]] const std::string& nonce() const noexcept { return creds_.nonce; }
  void set_nonce(std::string n) { creds_.nonce = std::move(n); }

  // build_request() with this session's credentials.
  [[nodiscard]] std::vector<uint8_t> build(stun::Method m, const Attrs& attrs, const Signing& s = {},
                                           Bytes txid = {}) const {
    return build_request(m, attrs, creds_, s, txid);
  }
  // Sends bytes as they are (stream: all of them).
  bool send_raw(Bytes data);
  // Sends `request` (retransmitting over UDP if the options say so) and
  // waits for the response with its transaction id; a 401/438 answer's
  // REALM, NONCE and PASSWORD-ALGORITHMS are remembered for the next
  // signature. Empty Response and error() when none came.
  Response transact(Bytes request);
  // build + transact, answering up to s.challenge_retries challenges by
  // signing again with the new nonce (not with s.nonce_override).
  Response request(stun::Method m, const Attrs& attrs = {}, const Signing& s = {});

  // TURN requests (RFC 8656), through request(). `extra` goes after the
  // method's own attributes.
  Response allocate(const Attrs& extra = {}, const Signing& s = {});  // REQUESTED-TRANSPORT UDP
  Response refresh(std::optional<uint32_t> lifetime, const Signing& s = {});
  Response create_permission(const SocketAddress& peer, const Signing& s = {});
  Response channel_bind(uint16_t channel, const SocketAddress& peer, const Signing& s = {});
  // A Send indication (RFC 8656 §10.1); `extra` goes after DATA.
  bool send_indication(const SocketAddress& peer, Bytes data, const Attrs& extra = {});
  // ChannelData; over a stream padded to 4 (RFC 8656 §12.5).
  bool send_channel_data(uint16_t channel, Bytes data);

  // The next frame a transaction skipped, else the next one from the
  // server; nullopt when none came in `timeout` (or failure()).
  std::optional<std::vector<uint8_t>> next_frame(std::chrono::milliseconds timeout);

  // Round trip of the last answered transaction (first send to response).
  [[nodiscard]] std::chrono::microseconds last_rtt() const noexcept { return rtt_; }

 private:
  using Clock = std::chrono::steady_clock;
  [[nodiscard]] bool stream() const noexcept { return o_.transport != Transport::Udp; }
  bool fail(Failure f, std::string why);
  bool tls_handshake();
  // One whole frame (a datagram, or one cut from the stream) by `deadline`.
  std::optional<std::vector<uint8_t>> read_frame(Clock::time_point deadline);
  void remember_challenge(const Response& r);

  Options o_;
  int fd_ = -1;
  SSL_CTX* ssl_ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  Credentials creds_;
  std::deque<std::vector<uint8_t>> pending_;
  std::vector<uint8_t> stream_buf_;
  std::string error_;
  Failure failure_ = Failure::None;
  std::chrono::microseconds rtt_{0};
};

}  // namespace turn::cp
