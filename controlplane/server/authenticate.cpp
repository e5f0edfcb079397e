// SPDX-License-Identifier: Apache-2.0
// Long-term credential authentication (RFC 8489 §9.2.4), with USERHASH
// (§14.4) and the password algorithms (§14.11-§14.12).
#include "common/log/log.h"
#include "common/stun/attributes.h"
#include "controlplane/server/handlers.h"

namespace turn::cp {

using stun::Attr;
using stun::ErrorCode;

bool authenticate(HandlerContext& cx, Request& req) {
  const auto& m = req.msg;
  const stun::AttributeRef* mi = m.integrity();
  const stun::AttributeRef* mi256 = m.integrity_sha256();
  if (!mi && !mi256) {
    cx.respond.challenge(req, ErrorCode::Unauthorized);
    return false;
  }
  const stun::AttributeRef* user = m.find(Attr::Username);
  const stun::AttributeRef* userhash = m.find(Attr::Userhash);
  const stun::AttributeRef* realm = m.find(Attr::Realm);
  const stun::AttributeRef* nonce = m.find(Attr::Nonce);
  if ((!user && !userhash) || !realm || !nonce) {
    // §9.2.4: integrity but no USERNAME/USERHASH, REALM or NONCE -> 400.
    cx.respond.error(req, ErrorCode::BadRequest, false);
    return false;
  }
  auto realm_text = stun::read_text(m.value(*realm), stun::kMaxRealmBytes);
  auto nonce_text = stun::read_text(m.value(*nonce), stun::kMaxNonceBytes);
  auto username = user ? stun::read_text(m.value(*user), stun::kMaxUsernameBytes)
                       : Result<std::string_view, stun::AttrError>(std::string_view{});
  auto hash = userhash && !user ? stun::read_userhash(m.value(*userhash))
                                : Result<std::array<uint8_t, 32>, stun::AttrError>(std::array<uint8_t, 32>{});
  if (!username || !realm_text || !nonce_text || !hash) {
    cx.respond.error(req, ErrorCode::BadRequest, false);
    return false;
  }
  uint64_t now_s = cx.clock.now_s();
  NonceCheck nc = cx.shared.nonces.check(*nonce_text, cx.cfg.realm, req.tuple.client.ip, now_s);
  if (nc != NonceCheck::Valid || *realm_text != cx.cfg.realm) {
    // A nonce we did not issue, one that expired, or another realm's: 438
    // with a fresh nonce (§9.2.4 step: "stale nonce").
    bump(cx.stats.stale_nonces);
    cx.respond.challenge(req, ErrorCode::StaleNonce);
    return false;
  }
  if (user) {
    req.username.assign(*username);
  } else {
    // §9.2.4 / §14.4: USERHASH instead of USERNAME (username anonymity, as
    // our nonce cookie announces): the user whose SHA-256(username ":"
    // realm) it is; nobody -> 401, like an unknown user.
    auto name = cx.shared.credentials.username_for_hash(*hash);
    if (!name) {
      bump(cx.stats.auth_failures);
      log_every(LogKey::AuthFailure, req.tuple.client.ip,
                "USERHASH of no known user from " + req.tuple.client.to_string());
      cx.respond.challenge(req, ErrorCode::Unauthorized);
      return false;
    }
    req.username = std::move(*name);
  }
  auto candidates = cx.shared.credentials.lookup(req.username, cx.cfg.realm, now_s);
  // RFC 8489 §9.2.4: neither PASSWORD-ALGORITHMS nor PASSWORD-ALGORITHM
  // means MD5; otherwise both must be present, PASSWORD-ALGORITHMS must be
  // what we offered, and PASSWORD-ALGORITHM one of them. SHA-256 keys need
  // the password itself.
  bool want_sha256_key = false;
  const auto* pa = m.find(Attr::PasswordAlgorithm);
  const auto* pas = m.find(Attr::PasswordAlgorithms);
  if (pa || pas) {
    std::array<stun::PasswordAlgorithmValue, 8> offered{};
    auto v = pa ? stun::read_password_algorithm(m.value(*pa))
                : Result<stun::PasswordAlgorithmValue, stun::AttrError>(stun::AttrError::BadLength);
    auto n = pas ? stun::read_password_algorithms(m.value(*pas), offered)
                 : Result<size_t, stun::AttrError>(stun::AttrError::BadLength);
    const auto& ours = cx.respond.algorithms();
    bool same = n && *n == ours.size();
    for (size_t i = 0; same && i < ours.size(); ++i) same = offered[i].algorithm == static_cast<uint16_t>(ours[i]);
    bool listed = false;
    for (auto alg : ours) listed |= v && v->algorithm == static_cast<uint16_t>(alg);
    if (!v || !same || !listed) {
      cx.respond.error(req, ErrorCode::BadRequest, false);
      return false;
    }
    want_sha256_key = v->algorithm == static_cast<uint16_t>(stun::PasswordAlgorithm::Sha256);
  }
  for (const auto& c : candidates) {
    crypto::Key key = c.md5_key;
    if (want_sha256_key) {
      if (c.password.empty()) continue;
      key = crypto::long_term_key(stun::PasswordAlgorithm::Sha256, req.username, cx.cfg.realm, c.password);
    }
    // §9.2.4: with both present, check MESSAGE-INTEGRITY-SHA256.
    bool good = mi256 ? crypto::check_integrity_sha256(m, key.view()) : crypto::check_integrity(m, key.view());
    if (good) {
      req.key = key;
      req.sha256 = mi256 != nullptr;
      return true;
    }
  }
  bump(cx.stats.auth_failures);
  if (cx.shared.credentials.rest_expired(req.username, now_s))
    log_every(LogKey::AuthFailure, req.tuple.client.ip,
              "REST credential expired for '" + req.username + "' from " + req.tuple.client.to_string());
  else
    log_every(LogKey::AuthFailure, req.tuple.client.ip,
              "authentication failed for '" + req.username + "' from " + req.tuple.client.to_string());
  cx.respond.challenge(req, ErrorCode::Unauthorized);
  return false;
}

}  // namespace turn::cp
