// SPDX-License-Identifier: Apache-2.0
// TurnServer: demultiplexing, authentication (RFC 8489 §9.2), responses,
// rate limits, expiry. The method handlers live in their own files.
#include "controlplane/server/turn_server.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "common/stun/attributes.h"
#include "common/turn/channel_data.h"
#include "common/log/log.h"
#include "controlplane/net/socket.h"
#include "controlplane/net/stream.h"
#include "controlplane/server/relay_socket.h"
#include "controlplane/server/tcp_relay.h"

namespace turn::cp {

using stun::Attr;
using stun::Class;
using stun::ErrorCode;
using stun::Method;

namespace {
constexpr std::string_view kSoftware = "dpturn " DPTURN_VERSION;
}

TurnServer::TurnServer(SharedState& shared, EventLoop& loop, Stats& stats)
    : shared_(shared), cfg_(shared.cfg), loop_(loop), stats_(stats) {
  crypto::random_bytes(txid_salt_);
  unearned_.configure(uint64_t{cfg_.reflection_burst} * 16);
  bool all_plaintext = !cfg_.redis_userdb.enabled;
  for (const auto& u : cfg_.users) all_plaintext &= u.key_hex.empty();
  if (all_plaintext) algorithms_.push_back(stun::PasswordAlgorithm::Sha256);
  algorithms_.push_back(stun::PasswordAlgorithm::Md5);
}

TurnServer::~TurnServer() { clear(); }

void TurnServer::clear() {
  while (!allocations_.empty()) destroy(*allocations_.begin()->second, "shutdown");
}

// ---- demultiplexing --------------------------------------------------------

void TurnServer::on_client_message(const FiveTuple& tuple, const ClientLink& link, Bytes data) {
  if (tuple.transport == Transport::Udp && allocations_.find(tuple) == allocations_.end()) {
    // Owned by another thread (restored after a restart): hand it over.
    if (TurnServer* owner = shared_.directory.get(tuple); owner && owner != this) {
      std::vector<uint8_t> copy(data.begin(), data.end());
      owner->loop().post([owner, tuple, link, copy = std::move(copy)] { owner->on_client_message(tuple, link, copy); });
      return;
    }
  }
  switch (demux_first_byte(data)) {
    case Demux::ChannelData:
      handle_channel_data(tuple, data);
      return;
    case Demux::ReservedChannel:
      if (cfg_.legacy_channel_range) {
        handle_channel_data(tuple, data);
        return;
      }
      stats_.drop(CpDrop::ReservedChannel);
      return;
    case Demux::Other:
      stats_.drop(CpDrop::NotTurn);
      return;
    case Demux::Stun:
      break;
  }
  // Bytes from a UDP source pay for unauthenticated answers to it.
  if (!link.stream) note_received(tuple.client.ip, data.size());
  stun::MessageView msg;
  if (auto err = stun::parse(data, msg); err != stun::ParseError::Ok) {
    if (err == stun::ParseError::TooManyAttributes) {
      // A well-formed message with more attributes than we keep: a request
      // is answered 400 (smaller than the request, so no amplification),
      // anything else dropped; both counted.
      stats_.drop(CpDrop::TooManyAttributes);
      if (msg.message_class() == Class::Request) {
        Request req{msg, tuple, link, {}, {}, false, false};
        bump(stats_.requests[static_cast<uint16_t>(msg.method()) & 15]);
        send_error(req, ErrorCode::BadRequest, false);
      }
      return;
    }
    stats_.drop(CpDrop::MalformedStun);  // RFC 8489 §6.3: silently discard
    return;
  }
  switch (msg.message_class()) {
    case Class::Request: {
      Request req{msg, tuple, link, {}, {}, false, msg.fingerprint() != nullptr};
      handle_request(req);
      return;
    }
    case Class::Indication:
      if (msg.method() == Method::Send) {
        handle_send_indication(tuple, msg);
        return;
      }
      [[fallthrough]];
    default:
      stats_.drop(CpDrop::UnexpectedClass);
      return;
  }
}

void TurnServer::handle_request(Request& req) {
  auto method = static_cast<uint16_t>(req.msg.method());
  bump(stats_.requests[method & 15]);
  if (rate_limited(req.tuple.client.ip, false)) {
    stats_.drop(CpDrop::RateLimited);
    return;
  }
  // RFC 8489 §6.3.1.1: unknown comprehension-required attributes -> 420.
  std::array<uint16_t, 16> unknown{};
  if (size_t n = req.msg.unknown_required(unknown); n > 0) {
    send_unknown_attributes(req, std::span<const uint16_t>(unknown.data(), n));
    return;
  }
  switch (req.msg.method()) {
    case Method::Binding:
      handle_binding(req);
      return;
    case Method::Allocate:
    case Method::Refresh:
    case Method::CreatePermission:
    case Method::ChannelBind:
    case Method::Connect:
    case Method::ConnectionBind:
      break;
    default:
      send_error(req, ErrorCode::BadRequest, false);
      return;
  }
  // RFC 8489 §10: a new Allocate that this instance does not take (it
  // drains, or alternate-server redirects every one) is redirected before
  // authentication, as coturn does: the client learns where to go in one
  // round trip, and nothing is allocated here. Existing allocations
  // (retransmissions included) are served as always.
  if (req.msg.method() == Method::Allocate && !find(req.tuple)) {
    auto d = shared_.redirector.pick(req.tuple.transport, req.tuple.server);
    if (d.kind == Redirector::Decision::Kind::Redirect) return send_try_alternate(req, d.alt);
    if (d.kind == Redirector::Decision::Kind::Refuse) {
      log_every(LogKey::Capacity, req.tuple.client.ip, "refusing Allocate: draining (forced) with no alternate (508)");
      return send_error(req, ErrorCode::InsufficientCapacity, false);
    }
  }
  if (!authenticate(req)) return;
  switch (req.msg.method()) {
    case Method::Allocate:
      handle_allocate(req);
      break;
    case Method::Refresh:
      handle_refresh(req);
      break;
    case Method::CreatePermission:
      handle_create_permission(req);
      break;
    case Method::ChannelBind:
      handle_channel_bind(req);
      break;
    case Method::Connect:
      handle_connect(req);
      break;  // RFC 6062 §5.2
    case Method::ConnectionBind:
      handle_connection_bind(req);
      break;  // RFC 6062 §5.4
    default:
      break;
  }
}

void TurnServer::handle_binding(Request& req) {
  // RFC 8489 §6.3.1: reflect the source address; no authentication needed.
  auto b = start_response(req, Class::SuccessResponse);
  b.add_xor_address(Attr::XorMappedAddress, req.tuple.client);
  finish_and_send(req, b, false);
}

// ---- rate limits ------------------------------------------------------------

// Limits per source IP. Many clients share one address (carrier-grade NAT,
// an enterprise NAT when a 300-person meeting starts), so nothing here may
// count requests per address by default; what is limited by default is
// what a forged source address could abuse: answers sent without
// authentication over UDP (reflection and amplification), and 401/438
// answers (credential guessing), each with room for a meeting's start.
TurnServer::Bucket& TurnServer::bucket(const IpAddress& source) {
  auto now = loop_.now();
  auto [it, fresh] = rate_.try_emplace(source);
  Bucket& b = it->second;
  if (fresh) {
    b.tokens = cfg_.request_rate_limit;
    b.unauth_tokens = cfg_.unauth_rate_limit;
    b.allowance = cfg_.reflection_burst;
    b.last = now;
  }
  double elapsed = std::chrono::duration<double>(now - b.last).count();
  b.last = now;
  b.tokens = std::min<double>(cfg_.request_rate_limit, b.tokens + elapsed * cfg_.request_rate_limit);
  b.unauth_tokens = std::min<double>(cfg_.unauth_rate_limit, b.unauth_tokens + elapsed * cfg_.unauth_rate_limit);
  return b;
}

bool TurnServer::rate_limited(const IpAddress& source, bool unauthenticated) {
  uint32_t limit = unauthenticated ? cfg_.unauth_rate_limit : cfg_.request_rate_limit;
  if (limit == 0) return false;
  Bucket& b = bucket(source);
  double& t = unauthenticated ? b.unauth_tokens : b.tokens;
  if (t < 1.0) return true;
  t -= 1.0;
  return false;
}

void TurnServer::note_received(const IpAddress& source, size_t bytes) {
  if (cfg_.reflection_burst == 0) return;
  Bucket& b = bucket(source);
  b.earned = static_cast<uint32_t>(std::min<size_t>(cfg_.reflection_burst, b.earned + bytes));
}

bool TurnServer::reflection_allows(const IpAddress& source, size_t bytes) {
  // Anti-amplification (RFC 8489 §6.3, RFC 8656 §21.1): over UDP the source
  // address may be forged, so what we send without authentication to an
  // address is paid for by bytes received from it. Beyond that, a fresh
  // source gets one reflection-burst (so that a client's first 401,
  // larger than its Allocate, is answered), and all sources together at
  // most 16 bursts a second. A forged flood from one address is answered
  // with at most its own bytes plus one burst.
  if (cfg_.reflection_burst == 0) return true;
  Bucket& b = bucket(source);
  if (b.earned >= bytes) {
    b.earned -= static_cast<uint32_t>(bytes);
    return true;
  }
  size_t rest = bytes - b.earned;
  if (rest > b.allowance || !unearned_.take(rest, loop_.now())) return false;
  b.allowance -= static_cast<uint32_t>(rest);
  b.earned = 0;
  return true;
}

// ---- authentication (RFC 8489 §9.2.4) ---------------------------------------

bool TurnServer::authenticate(Request& req) {
  const auto& m = req.msg;
  const stun::AttributeRef* mi = m.integrity();
  const stun::AttributeRef* mi256 = m.integrity_sha256();
  if (!mi && !mi256) {
    send_auth_challenge(req, ErrorCode::Unauthorized);
    return false;
  }
  const stun::AttributeRef* user = m.find(Attr::Username);
  const stun::AttributeRef* userhash = m.find(Attr::Userhash);
  const stun::AttributeRef* realm = m.find(Attr::Realm);
  const stun::AttributeRef* nonce = m.find(Attr::Nonce);
  if ((!user && !userhash) || !realm || !nonce) {
    // §9.2.4: integrity but no USERNAME/USERHASH, REALM or NONCE -> 400.
    send_error(req, ErrorCode::BadRequest, false);
    return false;
  }
  auto realm_text = stun::read_text(m.value(*realm), stun::kMaxRealmBytes);
  auto nonce_text = stun::read_text(m.value(*nonce), stun::kMaxNonceBytes);
  auto username = user ? stun::read_text(m.value(*user), stun::kMaxUsernameBytes)
                       : Result<std::string_view, stun::AttrError>(std::string_view{});
  auto hash = userhash && !user ? stun::read_userhash(m.value(*userhash))
                                : Result<std::array<uint8_t, 32>, stun::AttrError>(std::array<uint8_t, 32>{});
  if (!username || !realm_text || !nonce_text || !hash) {
    send_error(req, ErrorCode::BadRequest, false);
    return false;
  }
  uint64_t now_s = loop_.now_s();
  NonceCheck nc = shared_.nonces.check(*nonce_text, cfg_.realm, req.tuple.client.ip, now_s);
  if (nc != NonceCheck::Valid || *realm_text != cfg_.realm) {
    // A nonce we did not issue, one that expired, or another realm's: 438
    // with a fresh nonce (§9.2.4 step: "stale nonce").
    bump(stats_.stale_nonces);
    send_auth_challenge(req, ErrorCode::StaleNonce);
    return false;
  }
  if (user) {
    req.username.assign(*username);
  } else {
    // §9.2.4 / §14.4: USERHASH instead of USERNAME (username anonymity, as
    // our nonce cookie announces): the user whose SHA-256(username ":"
    // realm) it is; nobody -> 401, like an unknown user.
    auto name = shared_.credentials.username_for_hash(*hash);
    if (!name) {
      bump(stats_.auth_failures);
      log_every(LogKey::AuthFailure, req.tuple.client.ip,
                "USERHASH of no known user from " + req.tuple.client.to_string());
      send_auth_challenge(req, ErrorCode::Unauthorized);
      return false;
    }
    req.username = std::move(*name);
  }
  auto candidates = shared_.credentials.lookup(req.username, cfg_.realm, now_s);
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
    bool same = n && *n == algorithms_.size();
    for (size_t i = 0; same && i < algorithms_.size(); ++i)
      same = offered[i].algorithm == static_cast<uint16_t>(algorithms_[i]);
    bool listed = false;
    for (auto alg : algorithms_) listed |= v && v->algorithm == static_cast<uint16_t>(alg);
    if (!v || !same || !listed) {
      send_error(req, ErrorCode::BadRequest, false);
      return false;
    }
    want_sha256_key = v->algorithm == static_cast<uint16_t>(stun::PasswordAlgorithm::Sha256);
  }
  for (const auto& c : candidates) {
    crypto::Key key = c.md5_key;
    if (want_sha256_key) {
      if (c.password.empty()) continue;
      key = crypto::long_term_key(stun::PasswordAlgorithm::Sha256, req.username, cfg_.realm, c.password);
    }
    // §9.2.4: with both present, check MESSAGE-INTEGRITY-SHA256.
    bool good = mi256 ? crypto::check_integrity_sha256(m, key.view()) : crypto::check_integrity(m, key.view());
    if (good) {
      req.key = key;
      req.sha256 = mi256 != nullptr;
      return true;
    }
  }
  bump(stats_.auth_failures);
  if (shared_.credentials.rest_expired(req.username, now_s))
    log_every(LogKey::AuthFailure, req.tuple.client.ip,
              "REST credential expired for '" + req.username + "' from " + req.tuple.client.to_string());
  else
    log_every(LogKey::AuthFailure, req.tuple.client.ip,
              "authentication failed for '" + req.username + "' from " + req.tuple.client.to_string());
  send_auth_challenge(req, ErrorCode::Unauthorized);
  return false;
}

// ---- responses --------------------------------------------------------------

stun::MessageBuilder TurnServer::start_response(Request& req, Class cls) {
  return stun::MessageBuilder(response_buf_, req.msg.method(), cls, req.msg.transaction_id());
}

void TurnServer::finish_and_send(Request& req, stun::MessageBuilder& b, bool with_integrity) {
  // SOFTWARE only on authenticated answers: what an unauthenticated (maybe
  // spoofed) request draws stays small.
  if (cfg_.software_attribute && with_integrity && req.key.size != 0) b.add_text(Attr::Software, kSoftware);
  if (with_integrity && req.key.size != 0) {
    if (req.sha256)
      crypto::add_integrity_sha256(b, req.key.view());
    else
      crypto::add_integrity(b, req.key.view());
  }
  if (req.fingerprint || cfg_.fingerprint) b.add_fingerprint();
  Bytes out = b.finish();
  if (out.empty()) {
    log_every(LogKey::Internal, req.tuple.client.ip, "response did not fit its buffer");
    return;
  }
  bool authenticated = with_integrity && req.key.size != 0;
  if (!authenticated && !req.link.stream && !reflection_allows(req.tuple.client.ip, out.size())) {
    stats_.drop(CpDrop::ReflectionLimited);
    return;
  }
  auto cls = stun::class_of(load_be16(out.data()));
  auto method = static_cast<uint16_t>(req.msg.method()) & 15;
  bump(cls == Class::SuccessResponse ? stats_.successes[method] : stats_.errors[method]);
  send_to_client(req.tuple, req.link, out);
}

void TurnServer::send_error(Request& req, ErrorCode code, bool with_integrity) {
  auto b = start_response(req, Class::ErrorResponse);
  b.add_error_code(code);
  finish_and_send(req, b, with_integrity);
}

void TurnServer::send_try_alternate(Request& req, const Alternate& alt) {
  // Unauthenticated, so limited per source like 401 (a forged source must
  // not turn us into an amplifier). REALM and NONCE come along: with the
  // fleet's shared server-secret the client authenticates at the alternate
  // without another challenge (libwebrtc takes them from the 300).
  if (rate_limited(req.tuple.client.ip, true)) {
    stats_.drop(CpDrop::UnauthRateLimited);
    return;
  }
  auto b = start_response(req, Class::ErrorResponse);
  b.add_error_code(ErrorCode::TryAlternate);
  b.add_address(Attr::AlternateServer, alt.address);  // MAPPED-ADDRESS encoding (RFC 8489 §14.15)
  // ALTERNATE-DOMAIN only for requests that came over TLS (§10, §14.16).
  if (req.tuple.transport == Transport::Tls && !alt.domain.empty()) b.add_text(Attr::AlternateDomain, alt.domain);
  if (cfg_.lt_cred_mech) {
    b.add_text(Attr::Realm, cfg_.realm);
    b.add_text(Attr::Nonce, shared_.nonces.issue(cfg_.realm, req.tuple.client.ip, loop_.now_s()));
  }
  req.key = {};
  finish_and_send(req, b, false);
}

void TurnServer::send_auth_challenge(Request& req, ErrorCode code) {
  // 401/438 carry REALM and a fresh NONCE, never integrity (§9.2.4). They
  // are limited per source so that forged sources cannot use us to amplify.
  if (rate_limited(req.tuple.client.ip, true)) {
    stats_.drop(CpDrop::UnauthRateLimited);
    return;
  }
  auto b = start_response(req, Class::ErrorResponse);
  b.add_error_code(code);
  b.add_text(Attr::Realm, cfg_.realm);
  b.add_text(Attr::Nonce, shared_.nonces.issue(cfg_.realm, req.tuple.client.ip, loop_.now_s()));
  b.add_password_algorithms(algorithms_);
  req.key = {};
  finish_and_send(req, b, false);
}

void TurnServer::send_unknown_attributes(Request& req, std::span<const uint16_t> types) {
  auto b = start_response(req, Class::ErrorResponse);
  b.add_error_code(ErrorCode::UnknownAttribute);
  b.add_unknown_attributes(types);
  finish_and_send(req, b, false);
}

void TurnServer::send_to_client(const FiveTuple& t, const ClientLink& link, Bytes data) {
  if (client_sink_) [[unlikely]] {
    client_sink_(t, data);
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

// ---- allocation lifecycle ---------------------------------------------------

Allocation* TurnServer::own_allocation(Request& req) {
  Allocation* a = find(req.tuple);
  if (!a) {
    send_error(req, ErrorCode::AllocationMismatch);
    return nullptr;
  }
  if (a->username != req.username) {
    send_error(req, ErrorCode::WrongCredentials);
    return nullptr;
  }
  return a;
}

Allocation* TurnServer::find(const FiveTuple& t) {
  auto it = allocations_.find(t);
  if (it == allocations_.end()) return nullptr;
  if (it->second->expires <= loop_.now()) {
    destroy(*it->second, "lifetime expired");
    return nullptr;
  }
  return it->second.get();
}

uint64_t TurnServer::wall_expiry(TimePoint t) const {
  auto left = std::chrono::duration_cast<std::chrono::seconds>(t - loop_.now()).count();
  return loop_.now_s() + static_cast<uint64_t>(std::max<long long>(0, left));
}

SocketAddress TurnServer::advertised(const SocketAddress& relay) const {
  for (const auto& e : cfg_.external_ips)
    if (e.private_ip.is_unspecified() || e.private_ip == relay.ip)
      if (e.public_ip.is_v4() == relay.ip.is_v4()) return SocketAddress{e.public_ip, relay.port};
  return relay;
}

bool TurnServer::peer_allowed(const IpAddress& peer) const {
  // allowed-peer-ip wins over everything (coturn semantics): an operator
  // who lists a range means it.
  for (const auto& r : cfg_.allowed_peers)
    if (r.contains(peer)) return true;
  for (const auto& r : cfg_.denied_peers)
    if (r.contains(peer)) return false;
  // Built-in denials against TURN as an SSRF pivot (DESIGN.md, RFC 8656 §21).
  if (peer.is_unspecified()) return false;
  if (peer.is_v4()) {
    uint32_t v = peer.v4_host_order();
    uint8_t a = static_cast<uint8_t>(v >> 24);
    if (a == 127) return cfg_.allow_loopback_peers;      // loopback
    if ((v & 0xFFFF0000u) == 0xA9FE0000u) return false;  // 169.254/16 link-local, cloud metadata
    if (a >= 224) return false;                          // multicast, reserved, broadcast
    if (a == 0) return false;                            // "this network"
  } else {
    static const uint8_t kLoop[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    if (std::memcmp(peer.bytes.data(), kLoop, 16) == 0) return cfg_.allow_loopback_peers;
    if (peer.bytes[0] == 0xFF) return false;                                    // multicast
    if (peer.bytes[0] == 0xFE && (peer.bytes[1] & 0xC0) == 0x80) return false;  // fe80::/10
    // fd00:ec2::254: the cloud metadata service over IPv6 (AWS IMDS), the
    // IPv6 twin of 169.254.169.254.
    static const uint8_t kMetadata[16] = {0xfd, 0, 0x0e, 0xc2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x54};
    if (std::memcmp(peer.bytes.data(), kMetadata, 16) == 0) return false;
    // IPv6 forms that carry an IPv4 destination: a gateway delivers them
    // to that IPv4 address, so the IPv4 policy decides (loopback, metadata,
    // denied ranges, our own addresses). IPv4-mapped ::ffff:0:0/96 is
    // stored as IPv4 already (common/net/address.h) and took the IPv4 path.
    //   64:ff9b::/96  NAT64 well-known prefix (RFC 6052 §2.1): the last 32 bits;
    //   2002::/16     6to4 (RFC 3056 §2): bits 16-47.
    static const uint8_t kNat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
    if (std::memcmp(peer.bytes.data(), kNat64, 12) == 0) return peer_allowed(IpAddress::v4(peer.bytes.data() + 12));
    if (peer.bytes[0] == 0x20 && peer.bytes[1] == 0x02) return peer_allowed(IpAddress::v4(peer.bytes.data() + 2));
  }
  // The server's own non-relay addresses (listeners, admin).
  for (const auto& ip : cfg_.listening_ips)
    if (ip == peer && std::find(cfg_.relay_ips.begin(), cfg_.relay_ips.end(), ip) == cfg_.relay_ips.end()) return false;
  return true;
}

bool TurnServer::permission_room(Request& req, Allocation& a, std::span<const IpAddress> peers) {
  if (cfg_.max_permissions == 0) return true;
  auto now = loop_.now();
  size_t live = 0;
  for (const auto& [ip, exp] : a.permissions) live += exp > now;
  size_t fresh = 0;
  for (size_t i = 0; i < peers.size(); ++i) {
    if (a.has_permission(peers[i], now)) continue;
    bool repeated = false;  // the same peer twice in one request counts once
    for (size_t j = 0; j < i && !repeated; ++j) repeated = peers[j] == peers[i];
    fresh += !repeated;
  }
  if (live + fresh <= cfg_.max_permissions) return true;
  // RFC 8656 §10.2 / §19: a limit the request would cross is 508
  // (Insufficient Capacity); nothing of the request is installed.
  stats_.refuse(CpRefusal::PermissionQuota);
  log_every(LogKey::Quota, req.tuple.client.ip,
            "permission limit (" + std::to_string(cfg_.max_permissions) + ") reached on allocation " + a.info->id);
  send_error(req, ErrorCode::InsufficientCapacity);
  return false;
}

void TurnServer::install_permission(Allocation& a, const IpAddress& peer) {
  TimePoint exp = loop_.now() + std::chrono::seconds(cfg_.permission_lifetime_s);
  a.permissions[peer] = exp;
  // RFC 8656 §9: a permission is per peer IP; a dual-stack allocation's
  // IPv6 peers belong to its IPv6 relayed address (§7.2), so the peer's
  // family says which half the record's `perm:` field is for.
  for (auto* s : shared_.sinks) s->permission_installed(a.info, peer, wall_expiry(exp));
}

void TurnServer::publish_permissions(Allocation& a) {
  std::lock_guard lock(a.info->mutex);
  a.info->permissions.clear();
  for (const auto& [ip, exp] : a.permissions) a.info->permissions.push_back({ip, wall_expiry(exp)});
  a.info->channels.clear();
  for (const auto& [num, ch] : a.channels) a.info->channels.push_back({num, ch.peer, wall_expiry(ch.expires)});
}

void TurnServer::destroy(Allocation& a, const char* why) {
  log_info("allocation " + a.info->id + " for " + a.username + " (" + transport_name(a.tuple.transport) + " " +
           a.tuple.client.to_string() + ") released: " + why);
  // Out of the registry before the store hears of it: a resync that reads
  // the registry after the delete event was queued cannot bring it back.
  shared_.registry.remove(a.info->id);
  for (auto* s : shared_.sinks) s->allocation_deleted(a.info);
  shared_.quotas.release(a.username);
  if (auto it = relay_sockets_.find(&a); it != relay_sockets_.end()) {
    it->second->close_socket();
    loop_.retire(std::move(it->second));
    relay_sockets_.erase(it);
  }
  if (auto it = relay_sockets6_.find(&a); it != relay_sockets6_.end()) {  // both halves go together
    it->second->close_socket();
    loop_.retire(std::move(it->second));
    relay_sockets6_.erase(it);
  }
  if (auto it = tcp_listeners_.find(&a); it != tcp_listeners_.end()) {
    // RFC 6062: the allocation's peer and data connections end with it.
    it->second->close_socket();
    loop_.retire(std::move(it->second));
    tcp_listeners_.erase(it);
    std::vector<uint32_t> ids;
    for (const auto& [id, c] : tcp_connections_)
      if (c->allocation() == &a) ids.push_back(id);
    for (uint32_t id : ids) close_tcp(id, "allocation released");
  }
  FiveTuple key = a.tuple;
  shared_.directory.erase(key);
  allocations_.erase(key);
}

bool TurnServer::restore(const FiveTuple& tuple, const ClientLink& link, const std::shared_ptr<AllocationInfo>& info) {
  int fd = try_open_relay_socket(info->relay, false);
  if (fd < 0) {
    log_warn("restore: cannot bind relay " + info->relay.to_string() + " again: " + errno_text(errno));
    return false;
  }
  // A dual-stack allocation's IPv6 half (RFC 8656 §7.2) comes back with it;
  // when its port cannot be bound again the allocation stays IPv4 only.
  int fd6 = -1;
  if (info->relay6.port != 0) {
    fd6 = try_open_relay_socket(info->relay6, false);
    if (fd6 < 0) {
      log_warn("restore: cannot bind relay " + info->relay6.to_string() + " again (" + errno_text(errno) +
               "); allocation " + info->id + " keeps its IPv4 half only");
      info->relay6 = {};
    }
  }
  uint64_t now_s = loop_.now_s();
  auto to_steady = [&](uint64_t wall) { return loop_.now() + std::chrono::seconds(wall > now_s ? wall - now_s : 0); };
  auto a = std::make_unique<Allocation>();
  a->tuple = tuple;
  a->link = link;
  a->relay_fd = fd;
  a->relay_fd6 = fd6;
  a->username = info->username;
  a->expires = to_steady(info->expires_s.load());
  a->to_peer_bucket.configure(shared_.limits.max_bps());
  a->to_client_bucket.configure(shared_.limits.max_bps());
  {
    std::lock_guard lock(info->mutex);
    for (const auto& p : info->permissions) a->permissions[p.peer] = to_steady(p.expires_s);
    for (const auto& ch : info->channels) {
      a->channels[ch.number] = Channel{ch.peer, to_steady(ch.expires_s)};
      a->channel_by_peer[ch.peer] = ch.number;
    }
  }
  info->tuple = tuple;
  info->relay_advertised = advertised(info->relay);
  if (fd6 >= 0) info->relay6_advertised = advertised(info->relay6);
  info->created_s = now_s;
  a->info = info;
  (void)shared_.quotas.acquire(a->username);  // counted, even if over a lowered quota
  install(tuple, std::move(a), fd, fd6, false);
  return true;
}

// One place that puts an allocation into service, for Allocate and for
// restore: its relayed sockets watched (a TCP allocation's listener, RFC
// 6062 §5.1), then the allocation findable by its 5-tuple, this thread and
// its id.
void TurnServer::install(const FiveTuple& tuple, std::unique_ptr<Allocation> a, int fd, int fd6, bool tcp) {
  Allocation* raw = a.get();
  if (tcp) {
    auto listener = std::make_unique<TcpRelayListener>(*this, *raw, fd);
    loop_.add(fd, EPOLLIN, listener.get());
    tcp_listeners_[raw] = std::move(listener);
  } else {
    auto sock = std::make_unique<RelaySocket>(*this, *raw, fd);
    loop_.add(fd, EPOLLIN, sock.get());
    relay_sockets_[raw] = std::move(sock);
    if (fd6 >= 0) {  // a dual-stack allocation's IPv6 half (RFC 8656 §7.2)
      auto sock6 = std::make_unique<RelaySocket>(*this, *raw, fd6);
      loop_.add(fd6, EPOLLIN, sock6.get());
      relay_sockets6_[raw] = std::move(sock6);
    }
  }
  std::shared_ptr<AllocationInfo> info = raw->info;
  allocations_[tuple] = std::move(a);
  shared_.directory.put(tuple, this);
  shared_.registry.add(info);
}

void TurnServer::on_stream_closed(StreamConnection* s) {
  std::vector<Allocation*> doomed;
  for (auto& [t, a] : allocations_)
    if (a->link.stream == s) doomed.push_back(a.get());
  for (auto* a : doomed) destroy(*a, "client connection closed");
}

void TurnServer::sweep() {
  auto now = loop_.now();
  std::vector<Allocation*> expired;
  for (auto& [t, a] : allocations_) {
    if (a->expires <= now) {
      expired.push_back(a.get());
      continue;
    }
    bool changed = false;
    for (auto it = a->permissions.begin(); it != a->permissions.end();)
      if (it->second <= now) {
        it = a->permissions.erase(it);
        changed = true;
      } else
        ++it;
    for (auto it = a->channels.begin(); it != a->channels.end();) {
      if (it->second.expires <= now) {
        a->channel_by_peer.erase(it->second.peer);
        it = a->channels.erase(it);
        changed = true;
      } else {
        ++it;
      }
    }
    if (changed) publish_permissions(*a);
  }
  for (auto* a : expired) destroy(*a, "lifetime expired");
  // RFC 6062: Connect attempts and unbound peer connections have 30 s.
  std::vector<uint32_t> late;
  for (const auto& [id, c] : tcp_connections_)
    if ((c->state() == TcpConnection::State::Connecting || c->state() == TcpConnection::State::Pending ||
         c->closing()) &&
        c->deadline() <= now)
      late.push_back(id);
  for (uint32_t id : late) close_tcp(id, "not bound (or not connected) within 30 s");
  // Forget idle rate-limit buckets (a full bucket carries no information).
  for (auto it = rate_.begin(); it != rate_.end();)
    if (now - it->second.last > std::chrono::seconds(10))
      it = rate_.erase(it);
    else
      ++it;
}

}  // namespace turn::cp
