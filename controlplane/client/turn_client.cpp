// SPDX-License-Identifier: Apache-2.0
// Blocking TURN client: targets, the probe, the bool API (see turn_client.h).
#include "controlplane/client/turn_client.h"

#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <thread>

#include "controlplane/net/socket.h"

namespace turn::cp {

using stun::Attr;

std::string TurnTarget::host_port() const {
  bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

namespace {

bool fail(std::string* err, std::string msg) {
  if (err) *err = std::move(msg);
  return false;
}

// A DNS name (RFC 1123 labels) or an IP literal.
bool valid_host(const std::string& h) {
  if (h.empty() || h.size() > 253) return false;
  if (IpAddress::parse(h)) return true;
  size_t label = 0;
  for (char c : h) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
    } else if (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') {
      if (++label > 63) return false;
    } else {
      return false;
    }
  }
  return label > 0;
}

}  // namespace

bool parse_turn_target(const std::string& text, TurnTarget& out, std::string* err) {
  const std::string quoted = "'" + text + "'";
  std::string rest = text;
  bool uri = false;
  out = TurnTarget{};
  // RFC 7065 §3: turnURI = scheme ":" host [ ":" port ] [ "?transport=" transport ].
  if (rest.rfind("turns:", 0) == 0) {
    rest = rest.substr(6);
    uri = true;
    out.transport = Transport::Tls;
    out.transport_given = true;
  } else if (rest.rfind("turn:", 0) == 0) {
    rest = rest.substr(5);
    uri = true;
  }
  if (auto q = rest.find('?'); q != std::string::npos) {
    std::string query = rest.substr(q + 1);
    rest = rest.substr(0, q);
    if (!uri) return fail(err, quoted + ": a query is only allowed in a turn: or turns: URI");
    if (query == "transport=tcp") {
      if (out.transport != Transport::Tls) out.transport = Transport::Tcp;
    } else if (query == "transport=udp" && out.transport != Transport::Tls) {
      out.transport = Transport::Udp;
    } else {
      return fail(err,
                  quoted + ": unsupported query '" + query + "' (transport=udp or transport=tcp; turns: is TCP only)");
    }
    out.transport_given = true;
  }
  std::string host = rest, port;
  if (!rest.empty() && rest[0] == '[') {
    auto close = rest.find(']');
    if (close == std::string::npos) return fail(err, quoted + ": unclosed '['");
    host = rest.substr(1, close - 1);
    if (close + 1 < rest.size()) {
      if (rest[close + 1] != ':') return fail(err, quoted + ": expected ':' after ']'");
      port = rest.substr(close + 2);
      if (port.empty()) return fail(err, quoted + ": empty port");
    }
    auto ip = IpAddress::parse(host);
    if (!ip || ip->family() != Family::V6) return fail(err, quoted + ": '" + host + "' is not an IPv6 address");
  } else if (std::count(rest.begin(), rest.end(), ':') > 1) {
    return fail(err, quoted + ": IPv6 addresses go in brackets, e.g. [2001:db8::1]:3478");
  } else if (auto colon = rest.find(':'); colon != std::string::npos) {
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
    if (port.empty()) return fail(err, quoted + ": empty port");
  }
  if (host.empty()) return fail(err, quoted + ": no host");
  if (!valid_host(host)) return fail(err, quoted + ": '" + host + "' is neither an IP address nor a host name");
  if (port.empty()) {
    if (!uri) return fail(err, quoted + ": expected IP:PORT (or a turn:/turns: URI)");
    out.port = out.transport == Transport::Tls ? 5349 : 3478;  // RFC 7065 §3
  } else {
    if (port.size() > 5 || !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
        std::stoul(port) == 0 || std::stoul(port) > 65535)
      return fail(err, quoted + ": port '" + port + "' is not 1-65535");
    out.port = static_cast<uint16_t>(std::stoul(port));
  }
  out.host = host;
  return true;
}

bool resolve_turn_target(const TurnTarget& target, SocketAddress& out, std::string* err) {
  if (auto ip = IpAddress::parse(target.host)) {
    out = SocketAddress{*ip, target.port};
    return true;
  }
  addrinfo hints{};
  hints.ai_socktype = target.transport == Transport::Udp ? SOCK_DGRAM : SOCK_STREAM;
  addrinfo* res = nullptr;
  std::string port = std::to_string(target.port);
  if (int rc = getaddrinfo(target.host.c_str(), port.c_str(), &hints, &res); rc != 0)
    return fail(err, "cannot resolve '" + target.host + "': " + gai_strerror(rc));
  sockaddr_storage ss{};
  std::memcpy(&ss, res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
  out = from_sockaddr(ss);
  return true;
}

ProbeResult probe_turn_server(const TurnTarget& target, const std::string& username, const std::string& password,
                              std::chrono::milliseconds timeout, int hold_s, const SocketAddress* peer) {
  ProbeResult r;
  TurnClient::Options o;
  if (!resolve_turn_target(target, o.server, &r.error)) return r;
  o.transport = target.transport;  // TurnSession::connect() refuses DTLS
  if (!IpAddress::parse(target.host)) o.sni = target.host;
  o.username = username;
  o.password = password;
  o.timeout = timeout;
  TurnClient c(o);
  if (!c.connect() || !c.allocate(600)) {
    r.error = c.error();
    return r;
  }
  r.rtt_ms = static_cast<double>(c.last_rtt().count()) / 1000.0;
  r.relay = c.relay().to_string();
  if (peer && !c.create_permission(peer->ip)) {
    r.error = "CreatePermission " + peer->ip.to_string() + ": " + c.error();
    return r;
  }
  if (peer && !c.channel_bind(0x4000, *peer)) {  // RFC 8656 §12: 0x4000 is the first channel number
    r.error = "ChannelBind 0x4000 " + peer->to_string() + ": " + c.error();
    return r;
  }
  for (int t = 0; t < hold_s; ++t) std::this_thread::sleep_for(std::chrono::seconds(1));
  // RFC 8656 §7.2: LIFETIME 0 deletes the allocation at once.
  if (!c.refresh(0)) {
    r.error = "Allocate succeeded, Refresh(0) failed: " + c.error();
    return r;
  }
  r.reachable = true;
  return r;
}

TurnClient::TurnClient(const Options& o)
    : session_(TurnSession::Options{.server = o.server, .transport = o.transport, .sni = o.sni, .timeout = o.timeout}) {
  session_.set_credentials(o.username, o.password);
}

bool TurnClient::connect() {
  if (session_.connect()) return true;
  error_ = session_.error();
  return false;
}

Signing TurnClient::signing() {
  Signing s;
  s.unsigned_until_challenged = true;  // RFC 8489 §9.2.3.1
  s.fingerprint = true;
  // The 401 to the unsigned request, then perhaps a 438 (stale nonce).
  s.challenge_retries = 2;
  return s;
}

bool TurnClient::outcome(const Response& r) {
  error_code_ = 0;
  if (!r.received()) {
    error_ = session_.error();
    return false;
  }
  if (auto e = r.parse_error(); e != stun::ParseError::Ok) {
    error_ = "bad response: " + std::string(stun::parse_error_name(e));
    return false;
  }
  if (r.success()) {
    // RFC 8489 §9.2.5: a response to a signed request is signed too.
    if (!session_.nonce().empty() && !r.integrity_ok(session_.key())) {
      error_ = "response MESSAGE-INTEGRITY does not verify";
      return false;
    }
    if (auto a = r.xor_address(Attr::XorRelayedAddress)) relay_ = *a;
    if (auto a = r.xor_address(Attr::XorMappedAddress)) mapped_ = *a;
    if (auto l = r.u32(Attr::Lifetime)) lifetime_ = *l;
    return true;
  }
  error_code_ = std::max(r.error(), 0);
  error_ = std::to_string(error_code_) + " " + r.error_reason();
  if (error_code_ == 401 || error_code_ == 438) {
    if (!r.challenge())
      error_ += " without REALM/NONCE";
    else if (error_code_ == 401)  // the signed request was refused too (TurnSession::request)
      error_ = "401 Unauthorized: wrong username or password";
  }
  return false;
}

bool TurnClient::allocate(uint32_t lifetime_s) {
  return outcome(session_.allocate([&](stun::MessageBuilder& b) { b.add_u32(Attr::Lifetime, lifetime_s); }, signing()));
}

bool TurnClient::refresh(uint32_t lifetime_s) { return outcome(session_.refresh(lifetime_s, signing())); }

bool TurnClient::create_permission(const IpAddress& peer) {
  return outcome(session_.create_permission(SocketAddress{peer, 0}, signing()));
}

bool TurnClient::channel_bind(uint16_t channel, const SocketAddress& peer) {
  return outcome(session_.channel_bind(channel, peer, signing()));
}

}  // namespace turn::cp
