// SPDX-License-Identifier: Apache-2.0
// Blocking TURN client.
#include "controlplane/client/turn_client.h"

#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>
#include <functional>
#include <thread>

#include "common/stun/attributes.h"
#include "common/stun/builder.h"
#include "controlplane/net/socket.h"
#include "controlplane/net/tls.h"

namespace turn::cp {

using stun::Attr;
using Clock = std::chrono::steady_clock;

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
  if (target.transport == Transport::Dtls) {
    r.error = "dtls: this client speaks udp, tcp and tls only";
    return r;
  }
  o.tcp = target.transport != Transport::Udp;
  o.tls = target.transport == Transport::Tls;
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

TurnClient::TurnClient(Options o) : o_(std::move(o)) {
  if (o_.tls) o_.tcp = true;
}
TurnClient::~TurnClient() {
  if (ssl_) SSL_free(ssl_);
  if (ssl_ctx_) SSL_CTX_free(ssl_ctx_);
  if (fd_ >= 0) close(fd_);
}

bool TurnClient::tls_handshake() {
  ssl_ctx_ = SSL_CTX_new(TLS_client_method());
  if (!ssl_ctx_) {
    error_ = "TLS: " + openssl_error();
    return false;
  }
  SSL_CTX_set_min_proto_version(ssl_ctx_, TLS1_2_VERSION);
  // A reachability probe: the certificate is not verified (servers are
  // often registered by IP address); the TURN exchange itself is.
  SSL_CTX_set_verify(ssl_ctx_, SSL_VERIFY_NONE, nullptr);
  ssl_ = SSL_new(ssl_ctx_);
  if (!ssl_ || SSL_set_fd(ssl_, fd_) != 1) {
    error_ = "TLS: " + openssl_error();
    return false;
  }
  if (!o_.sni.empty()) SSL_set_tlsext_host_name(ssl_, o_.sni.c_str());
  // The handshake is bounded by the socket timeouts set in connect().
  ERR_clear_error();
  if (int rc = SSL_connect(ssl_); rc != 1) {
    int e = SSL_get_error(ssl_, rc);
    std::string why =
        e == SSL_ERROR_SYSCALL ? (errno ? errno_text(errno) : std::string("connection closed")) : openssl_error();
    if (e == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EWOULDBLOCK))
      why = "no answer in " + std::to_string(o_.timeout.count()) + " ms";
    error_ = "TLS handshake with " + o_.server.to_string() + ": " + why;
    return false;
  }
  return true;
}

bool TurnClient::connect() {
  sockaddr_storage ss;
  socklen_t len = to_sockaddr(o_.server, ss);
  fd_ = socket(ss.ss_family, (o_.tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    error_ = "socket: " + errno_text(errno);
    return false;
  }
  if (o_.tcp) {
    // Bounds connect() (Linux honours SO_SNDTIMEO there) and the TLS handshake.
    timeval tv{static_cast<time_t>(o_.timeout.count() / 1000),
               static_cast<suseconds_t>(o_.timeout.count() % 1000 * 1000)};
    setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&ss), len) < 0) {
    int e = errno;
    error_ = "connect " + o_.server.to_string() + ": " +
             (e == EINPROGRESS ? "no answer in " + std::to_string(o_.timeout.count()) + " ms" : errno_text(e));
    return false;
  }
  if (o_.tls) return tls_handshake();
  return true;
}

bool TurnClient::exchange(const std::vector<uint8_t>& request, std::vector<uint8_t>& response) {
  auto start = Clock::now();
  auto deadline = start + o_.timeout;
  auto rto = std::chrono::milliseconds(250);  // RFC 8489 §6.2.1 starts at 500 ms; probes want answers sooner
  auto next_send = start;
  std::array<uint8_t, 4096> buf{};
  size_t have = 0;
  const uint8_t* txid = request.data() + 8;
  for (;;) {
    auto now = Clock::now();
    if (now >= deadline) {
      error_ = "timeout: no answer from " + o_.server.to_string() + " in " + std::to_string(o_.timeout.count()) + " ms";
      return false;
    }
    if (now >= next_send && (!o_.tcp || next_send == start)) {
      bool sent =
          ssl_ ? SSL_write(ssl_, request.data(), static_cast<int>(request.size())) == static_cast<int>(request.size())
               : send(fd_, request.data(), request.size(), MSG_NOSIGNAL) >= 0;
      if (!sent) {
        error_ = "send to " + o_.server.to_string() + ": " + errno_text(errno);
        return false;
      }
      next_send = now + rto;
      rto *= 2;
    }
    auto wait = std::min(deadline, o_.tcp ? deadline : next_send) - Clock::now();
    pollfd p{fd_, POLLIN, 0};
    int r = ssl_ && SSL_pending(ssl_) > 0
                ? 1
                : poll(&p, 1,
                       static_cast<int>(std::max<long long>(
                           1, std::chrono::duration_cast<std::chrono::milliseconds>(wait).count())));
    if (r <= 0) continue;
    ssize_t n = ssl_ ? SSL_read(ssl_, buf.data() + have, static_cast<int>(buf.size() - have))
                     : recv(fd_, buf.data() + have, buf.size() - have, 0);
    if (n <= 0) {
      error_ = n == 0 ? "connection closed by " + o_.server.to_string()
                      : "receive from " + o_.server.to_string() + ": " + errno_text(errno);
      return false;
    }
    have = o_.tcp ? have + static_cast<size_t>(n) : static_cast<size_t>(n);
    while (have > 0) {
      long frame = o_.tcp ? stun::stream_frame_length({buf.data(), have}) : static_cast<long>(have);
      if (frame < 0) {
        error_ = "not a STUN/TURN server at " + o_.server.to_string();
        return false;
      }
      if (frame == 0 || static_cast<size_t>(frame) > have) break;
      bool match = frame >= 20 && std::memcmp(buf.data() + 8, txid, 12) == 0;
      if (match) {
        response.assign(buf.data(), buf.data() + frame);
        rtt_ = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start);
        return true;
      }
      std::memmove(buf.data(), buf.data() + frame, have - static_cast<size_t>(frame));
      have -= static_cast<size_t>(frame);
      if (!o_.tcp) have = 0;
    }
  }
}

bool TurnClient::transact(uint16_t method, const std::function<void(void*)>& add_attrs) {
  error_code_ = 0;
  for (int attempt = 0; attempt < 3; ++attempt) {
    std::array<uint8_t, 12> txid{};
    crypto::random_bytes(txid);
    std::array<uint8_t, 1500> out{};
    stun::MessageBuilder b(out, static_cast<stun::Method>(method), stun::Class::Request, txid);
    add_attrs(&b);
    if (!nonce_.empty()) {
      b.add_text(Attr::Username, o_.username);
      b.add_text(Attr::Realm, realm_);
      b.add_text(Attr::Nonce, nonce_);
      crypto::add_integrity(b, key_.view());
    }
    b.add_fingerprint();
    Bytes msg = b.finish();
    std::vector<uint8_t> resp;
    if (!exchange({msg.begin(), msg.end()}, resp)) return false;
    stun::MessageView v;
    if (auto e = stun::parse(resp, v); e != stun::ParseError::Ok) {
      error_ = "bad response: " + std::string(stun::parse_error_name(e));
      return false;
    }
    if (v.message_class() == stun::Class::SuccessResponse) {
      if (!nonce_.empty() && !crypto::check_integrity(v, key_.view())) {
        error_ = "response MESSAGE-INTEGRITY does not verify";
        return false;
      }
      if (const auto* r = v.find(Attr::XorRelayedAddress))
        if (auto a = stun::read_xor_address(v.value(*r), v.xor_mask())) relay_ = *a;
      if (const auto* m = v.find(Attr::XorMappedAddress))
        if (auto a = stun::read_xor_address(v.value(*m), v.xor_mask())) mapped_ = *a;
      if (const auto* l = v.find(Attr::Lifetime))
        if (auto x = stun::read_u32(v.value(*l))) lifetime_ = *x;
      return true;
    }
    int code = 0;
    std::string reason;
    if (const auto* e = v.find(Attr::ErrorCode))
      if (auto ec = stun::read_error_code(v.value(*e))) {
        code = ec->code;
        reason = std::string(ec->reason);
      }
    error_code_ = code;
    error_ = std::to_string(code) + " " + reason;
    bool challenge = code == 401 || code == 438;
    if (!challenge) return false;
    // 401 with credentials already sent: wrong credentials; stop.
    if (code == 401 && !nonce_.empty()) {
      error_ = "401 Unauthorized: wrong username or password";
      return false;
    }
    const auto* realm = v.find(Attr::Realm);
    const auto* nonce = v.find(Attr::Nonce);
    if (!realm || !nonce) {
      error_ += " without REALM/NONCE";
      return false;
    }
    realm_ = std::string(v.text(*realm));
    nonce_ = std::string(v.text(*nonce));
    key_ = crypto::long_term_key(stun::PasswordAlgorithm::Md5, o_.username, realm_, o_.password);
  }
  return false;
}

bool TurnClient::allocate(uint32_t lifetime_s) {
  return transact(static_cast<uint16_t>(stun::Method::Allocate), [&](void* p) {
    auto& b = *static_cast<stun::MessageBuilder*>(p);
    b.add_requested_transport(stun::kTransportUdp);
    b.add_u32(Attr::Lifetime, lifetime_s);
  });
}

bool TurnClient::refresh(uint32_t lifetime_s) {
  return transact(static_cast<uint16_t>(stun::Method::Refresh),
                  [&](void* p) { static_cast<stun::MessageBuilder*>(p)->add_u32(Attr::Lifetime, lifetime_s); });
}

bool TurnClient::create_permission(const IpAddress& peer) {
  return transact(static_cast<uint16_t>(stun::Method::CreatePermission), [&](void* p) {
    static_cast<stun::MessageBuilder*>(p)->add_xor_address(Attr::XorPeerAddress, SocketAddress{peer, 0});
  });
}

bool TurnClient::channel_bind(uint16_t channel, const SocketAddress& peer) {
  return transact(static_cast<uint16_t>(stun::Method::ChannelBind), [&](void* p) {
    auto& b = *static_cast<stun::MessageBuilder*>(p);
    b.add_channel_number(channel);
    b.add_xor_address(Attr::XorPeerAddress, peer);
  });
}

}  // namespace turn::cp
