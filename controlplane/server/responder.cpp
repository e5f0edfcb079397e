// SPDX-License-Identifier: Apache-2.0
#include "controlplane/server/responder.h"

#include <sys/socket.h>

#include <cstring>

#include "common/log/log.h"
#include "common/stun/attributes.h"
#include "controlplane/net/socket.h"
#include "controlplane/net/stream.h"

namespace turn::cp {

using stun::Attr;
using stun::Class;
using stun::ErrorCode;

namespace {
constexpr std::string_view kSoftware = "dpturn " DPTURN_VERSION;
}

DeferredAnswer defer(const Request& req) {
  DeferredAnswer d;
  std::memcpy(d.txid.data(), req.msg.transaction_id().data(), 12);
  d.method = req.msg.method();
  d.key = req.key;
  d.sha256 = req.sha256;
  d.fingerprint = req.fingerprint;
  return d;
}

Responder::Responder(SharedState& shared, const Clock& clock, Stats& stats, SourceLimits& limits)
    : cfg_(shared.cfg), shared_(shared), clock_(clock), stats_(stats), limits_(limits) {
  bool all_plaintext = !cfg_.redis_userdb.enabled;
  for (const auto& u : cfg_.users) all_plaintext &= u.key_hex.empty();
  if (all_plaintext) algorithms_.push_back(stun::PasswordAlgorithm::Sha256);
  algorithms_.push_back(stun::PasswordAlgorithm::Md5);
}

stun::MessageBuilder Responder::start(const Request& req, Class cls) {
  return stun::MessageBuilder(buf_, req.msg.method(), cls, req.msg.transaction_id());
}

Bytes Responder::seal(stun::MessageBuilder& b, const crypto::Key& key, bool sha256, bool fingerprint) const {
  // SOFTWARE only on authenticated answers: what an unauthenticated (maybe
  // spoofed) request draws stays small.
  if (key.size != 0) {
    if (cfg_.software_attribute) b.add_text(Attr::Software, kSoftware);
    if (sha256)
      crypto::add_integrity_sha256(b, key.view());
    else
      crypto::add_integrity(b, key.view());
  }
  if (fingerprint || cfg_.fingerprint) b.add_fingerprint();
  return b.finish();
}

void Responder::finish(Request& req, stun::MessageBuilder& b, bool with_integrity) {
  bool authenticated = with_integrity && req.key.size != 0;
  Bytes out = seal(b, authenticated ? req.key : crypto::Key{}, req.sha256, req.fingerprint);
  if (out.empty()) {
    log_every(LogKey::Internal, req.tuple.client.ip, "response did not fit its buffer");
    return;
  }
  if (!authenticated && !req.link.stream && !limits_.reflection_allows(req.tuple.client.ip, out.size())) {
    stats_.drop(CpDrop::ReflectionLimited);
    return;
  }
  auto method = static_cast<uint16_t>(req.msg.method()) & 15;
  bump(stun::class_of(load_be16(out.data())) == Class::SuccessResponse ? stats_.successes[method]
                                                                       : stats_.errors[method]);
  send(req.tuple, req.link, out);
}

Bytes Responder::last_answer() const noexcept {
  return Bytes{buf_.data(), size_t{load_be16(buf_.data() + 2)} + stun::kHeaderSize};
}

void Responder::error(Request& req, ErrorCode code, bool with_integrity) {
  auto b = start(req, Class::ErrorResponse);
  b.add_error_code(code);
  finish(req, b, with_integrity);
}

void Responder::try_alternate(Request& req, const Alternate& alt) {
  // Unauthenticated, so limited per source like 401 (a forged source must
  // not turn us into an amplifier). REALM and NONCE come along: with the
  // fleet's shared server-secret the client authenticates at the alternate
  // without another challenge (libwebrtc takes them from the 300).
  if (limits_.rate_limited(req.tuple.client.ip, true)) {
    stats_.drop(CpDrop::UnauthRateLimited);
    return;
  }
  auto b = start(req, Class::ErrorResponse);
  b.add_error_code(ErrorCode::TryAlternate);
  b.add_address(Attr::AlternateServer, alt.address);  // MAPPED-ADDRESS encoding (RFC 8489 §14.15)
  // ALTERNATE-DOMAIN only for requests that came over TLS (§10, §14.16).
  if (req.tuple.transport == Transport::Tls && !alt.domain.empty()) b.add_text(Attr::AlternateDomain, alt.domain);
  if (cfg_.lt_cred_mech) {
    b.add_text(Attr::Realm, cfg_.realm);
    b.add_text(Attr::Nonce, shared_.nonces.issue(cfg_.realm, req.tuple.client.ip, clock_.now_s()));
  }
  req.key = {};
  finish(req, b, false);
}

void Responder::challenge(Request& req, ErrorCode code) {
  // 401/438 carry REALM and a fresh NONCE, never integrity (§9.2.4). They
  // are limited per source so that forged sources cannot use us to amplify.
  if (limits_.rate_limited(req.tuple.client.ip, true)) {
    stats_.drop(CpDrop::UnauthRateLimited);
    return;
  }
  auto b = start(req, Class::ErrorResponse);
  b.add_error_code(code);
  b.add_text(Attr::Realm, cfg_.realm);
  b.add_text(Attr::Nonce, shared_.nonces.issue(cfg_.realm, req.tuple.client.ip, clock_.now_s()));
  b.add_password_algorithms(algorithms_);
  req.key = {};
  finish(req, b, false);
}

void Responder::unknown_attributes(Request& req, std::span<const uint16_t> types) {
  auto b = start(req, Class::ErrorResponse);
  b.add_error_code(ErrorCode::UnknownAttribute);
  b.add_unknown_attributes(types);
  finish(req, b, false);
}

void Responder::deferred(StreamConnection* s, const DeferredAnswer& d, std::optional<ErrorCode> err,
                         uint32_t connection_id) {
  if (!s || s->closed()) return;
  stun::MessageBuilder b(buf_, d.method, err ? Class::ErrorResponse : Class::SuccessResponse,
                         Bytes{d.txid.data(), d.txid.size()});
  if (err)
    b.add_error_code(*err);
  else if (connection_id != 0)
    b.add_u32(Attr::ConnectionId, connection_id);
  Bytes out = seal(b, d.key, d.sha256, d.fingerprint);
  if (out.empty()) return;
  auto method = static_cast<uint16_t>(d.method) & 15;
  bump(err ? stats_.errors[method] : stats_.successes[method]);
  if (!s->send(out)) stats_.drop(CpDrop::StreamBacklog);
}

void Responder::send(const FiveTuple& t, const ClientLink& link, Bytes data) {
  if (sink_) [[unlikely]] {
    sink_(t, data);
    return;
  }
  if (link.stream) {
    if (!link.stream->send(data)) stats_.drop(CpDrop::StreamBacklog);
    return;
  }
  sockaddr_storage ss;
  socklen_t len = to_sockaddr(t.client, ss);
  if (sendto(link.udp_fd, data.data(), data.size(), MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&ss), len) < 0)
    stats_.drop(CpDrop::SendFailed);
}

}  // namespace turn::cp
