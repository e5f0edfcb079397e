// SPDX-License-Identifier: Apache-2.0
// A request being served, and the Responder that answers it: the one place
// where an answer is built, signed (RFC 8489 §9.2.4: the request's key and
// algorithm), fingerprinted, held to the reflection budget and sent back
// on the link the request came on.
#pragma once

#include <array>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/crypto/integrity.h"
#include "common/stun/builder.h"
#include "common/stun/message.h"
#include "controlplane/allocation/allocation.h"
#include "controlplane/server/redirect.h"
#include "controlplane/server/shared_state.h"
#include "controlplane/server/source_limits.h"
#include "controlplane/server/stats.h"

namespace turn::cp {

class StreamConnection;

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

// An answer sent later than its request (RFC 6062 Connect and
// ConnectionBind): what of the request it needs.
struct DeferredAnswer {
  std::array<uint8_t, 12> txid{};
  stun::Method method = stun::Method::Connect;
  crypto::Key key;
  bool sha256 = false;
  bool fingerprint = false;
};
[[nodiscard]] DeferredAnswer defer(const Request& req);

class Responder {
 public:
  Responder(SharedState& shared, const Clock& clock, Stats& stats, SourceLimits& limits);

  // An answer to `req`, built in the responder's buffer (one at a time).
  [[nodiscard]] stun::MessageBuilder start(const Request& req, stun::Class cls);
  // SOFTWARE, MESSAGE-INTEGRITY(-SHA256) with the request's key when
  // `with_integrity` and the request authenticated, FINGERPRINT when the
  // request had one (or fingerprint=true); then counted and sent.
  void finish(Request& req, stun::MessageBuilder& b, bool with_integrity);
  void error(Request& req, stun::ErrorCode code, bool with_integrity = true);
  // 401 or 438 with REALM, a fresh NONCE and PASSWORD-ALGORITHMS (§9.2.4).
  void challenge(Request& req, stun::ErrorCode code);
  // 300 Try Alternate (RFC 8489 §10).
  void try_alternate(Request& req, const Alternate& alt);
  // 420 with UNKNOWN-ATTRIBUTES (RFC 8489 §6.3.1.1).
  void unknown_attributes(Request& req, std::span<const uint16_t> types);
  // A deferred answer over a stream (RFC 6062 §5.2, §5.4); CONNECTION-ID
  // when `connection_id` is not 0.
  void deferred(StreamConnection* s, const DeferredAnswer& d, std::optional<stun::ErrorCode> err,
                uint32_t connection_id);

  // Bytes to a client as they are: a repeated answer, an indication,
  // relayed data.
  void send(const FiveTuple& t, const ClientLink& link, Bytes data);
  // What the last finish() built (the answer an Allocate keeps for its
  // retransmissions, RFC 8656 §7.2).
  [[nodiscard]] Bytes last_answer() const noexcept;
  // The buffer answers are built in, for messages that are not answers
  // (ConnectionAttempt indications).
  [[nodiscard]] std::span<uint8_t> buffer() noexcept { return buf_; }

  // PASSWORD-ALGORITHMS we offer (RFC 8489 §14.11): SHA-256 first only when
  // every credential source can derive SHA-256 keys (plaintext passwords).
  [[nodiscard]] const std::vector<stun::PasswordAlgorithm>& algorithms() const noexcept { return algorithms_; }

  // Test seam (fuzzers, tests without sockets): everything that would go
  // to a client goes to `sink` instead. Unset in turn-control.
  using ClientSink = std::function<void(const FiveTuple&, Bytes)>;
  void set_sink(ClientSink sink) { sink_ = std::move(sink); }

 private:
  // SOFTWARE and integrity with `key` (none when its size is 0), FINGERPRINT.
  Bytes seal(stun::MessageBuilder& b, const crypto::Key& key, bool sha256, bool fingerprint) const;

  const Config& cfg_;
  SharedState& shared_;
  const Clock& clock_;
  Stats& stats_;
  SourceLimits& limits_;
  std::array<uint8_t, 2048> buf_{};
  std::vector<stun::PasswordAlgorithm> algorithms_;
  ClientSink sink_;
};

}  // namespace turn::cp
