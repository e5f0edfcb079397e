// SPDX-License-Identifier: Apache-2.0
// One connection to a TURN server and its transactions (see session.h).
#include "controlplane/client/session.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/turn/channel_data.h"
#include "controlplane/net/socket.h"
#include "controlplane/net/tls.h"

namespace turn::cp {

namespace {

// Frames kept for next_frame() while transactions wait; past this the
// oldest go (a caller that never reads them must not grow without bound).
constexpr size_t kMaxPending = 4096;

// RFC 8489 §6.2.1 starts the RTO at 500 ms; a probe wants an answer sooner.
constexpr std::chrono::milliseconds kFirstRto{250};

std::string ms_text(std::chrono::milliseconds t) { return std::to_string(t.count()) + " ms"; }

}  // namespace

TurnSession::TurnSession(Options o) : o_(std::move(o)) {}

TurnSession::~TurnSession() {
  if (ssl_) SSL_free(ssl_);
  if (ssl_ctx_) SSL_CTX_free(ssl_ctx_);
  if (fd_ >= 0) close(fd_);
}

bool TurnSession::fail(Failure f, std::string why) {
  failure_ = f;
  error_ = std::move(why);
  return false;
}

bool TurnSession::connect() {
  if (o_.transport == Transport::Dtls) return fail(Failure::Io, "dtls: this client speaks udp, tcp and tls only");
  sockaddr_storage ss;
  socklen_t len = to_sockaddr(o_.server, ss);
  fd_ = socket(ss.ss_family, (stream() ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return fail(Failure::Io, "socket: " + errno_text(errno));
  if (stream()) {
    // Bounds connect() (Linux honours SO_SNDTIMEO there) and the TLS handshake.
    timeval tv{static_cast<time_t>(o_.timeout.count() / 1000),
               static_cast<suseconds_t>(o_.timeout.count() % 1000 * 1000)};
    setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  // UDP too: a connected socket only hears from the server, and its local
  // address is the 5-tuple's client address.
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&ss), len) < 0) {
    int e = errno;
    return fail(e == ECONNREFUSED ? Failure::Closed : Failure::Io,
                "connect " + o_.server.to_string() + ": " +
                    (e == EINPROGRESS ? "no answer in " + ms_text(o_.timeout) : errno_text(e)));
  }
  if (o_.transport == Transport::Tls) return tls_handshake();
  return true;
}

bool TurnSession::tls_handshake() {
  ssl_ctx_ = SSL_CTX_new(TLS_client_method());
  if (!ssl_ctx_) return fail(Failure::Io, "TLS: " + openssl_error());
  SSL_CTX_set_min_proto_version(ssl_ctx_, TLS1_2_VERSION);
  SSL_CTX_set_verify(ssl_ctx_, SSL_VERIFY_NONE, nullptr);  // see connect() in session.h
  ssl_ = SSL_new(ssl_ctx_);
  if (!ssl_ || SSL_set_fd(ssl_, fd_) != 1) return fail(Failure::Io, "TLS: " + openssl_error());
  if (!o_.sni.empty()) SSL_set_tlsext_host_name(ssl_, o_.sni.c_str());
  // The handshake is bounded by the socket timeouts set in connect().
  ERR_clear_error();
  if (int rc = SSL_connect(ssl_); rc != 1) {
    int e = SSL_get_error(ssl_, rc);
    std::string why =
        e == SSL_ERROR_SYSCALL ? (errno ? errno_text(errno) : std::string("connection closed")) : openssl_error();
    if (e == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EWOULDBLOCK))
      why = "no answer in " + ms_text(o_.timeout);
    return fail(Failure::Io, "TLS handshake with " + o_.server.to_string() + ": " + why);
  }
  return true;
}

SocketAddress TurnSession::local() const { return local_address(fd_); }

void TurnSession::abort_connection() {
  if (fd_ < 0) return;
  linger l{1, 0};
  setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  if (ssl_) SSL_free(ssl_);
  ssl_ = nullptr;
  close(fd_);
  fd_ = -1;
}

void TurnSession::set_credentials(std::string username, std::string password, std::string realm) {
  creds_.username = std::move(username);
  creds_.password = std::move(password);
  creds_.realm = std::move(realm);
}

bool TurnSession::send_raw(Bytes data) {
  if (ssl_) {
    if (SSL_write(ssl_, data.data(), static_cast<int>(data.size())) == static_cast<int>(data.size())) return true;
    return fail(Failure::Io, "send to " + o_.server.to_string() + ": " + errno_text(errno));
  }
  // A datagram goes in one send (even an empty one); a stream until all is written.
  for (size_t done = 0;;) {
    ssize_t n = ::send(fd_, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      // UDP: an ICMP error for an earlier datagram surfaces here; the send
      // itself was not refused (the error is now cleared).
      if (!stream() && errno == ECONNREFUSED) continue;
      return fail(Failure::Io, "send to " + o_.server.to_string() + ": " + errno_text(errno));
    }
    done += static_cast<size_t>(n);
    if (!stream() || done >= data.size()) return true;
  }
}

std::optional<std::vector<uint8_t>> TurnSession::read_frame(Clock::time_point deadline) {
  for (;;) {
    if (stream()) {
      long frame = stun::stream_frame_length(Bytes{stream_buf_.data(), stream_buf_.size()});
      if (frame < 0) {
        fail(Failure::Io, "not a STUN/TURN server at " + o_.server.to_string());
        return std::nullopt;
      }
      if (frame > 0 && static_cast<size_t>(frame) <= stream_buf_.size()) {
        std::vector<uint8_t> out(stream_buf_.begin(), stream_buf_.begin() + frame);
        stream_buf_.erase(stream_buf_.begin(), stream_buf_.begin() + frame);
        return out;
      }
    }
    if (!(ssl_ && SSL_pending(ssl_) > 0)) {
      auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
      pollfd p{fd_, POLLIN, 0};
      int r = poll(&p, 1, static_cast<int>(std::max<long long>(0, left)));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return std::nullopt;  // timeout (failure_ stays None)
    }
    std::vector<uint8_t> buf(65536);
    ssize_t n = ssl_ ? SSL_read(ssl_, buf.data(), static_cast<int>(buf.size()))
                     : recv(fd_, buf.data(), buf.size(), MSG_DONTWAIT);
    if (n < 0 && !ssl_ && (errno == EAGAIN || errno == EINTR)) continue;
    if (n < 0 && ssl_ && SSL_get_error(ssl_, static_cast<int>(n)) == SSL_ERROR_WANT_READ) continue;
    if (n == 0 || (n < 0 && errno == ECONNREFUSED)) {
      fail(Failure::Closed, n == 0 ? "connection closed by " + o_.server.to_string()
                                   : "receive from " + o_.server.to_string() + ": " + errno_text(errno));
      return std::nullopt;
    }
    if (n < 0) {
      fail(Failure::Io, "receive from " + o_.server.to_string() + ": " + errno_text(errno));
      return std::nullopt;
    }
    buf.resize(static_cast<size_t>(n));
    if (!stream()) return buf;
    stream_buf_.insert(stream_buf_.end(), buf.begin(), buf.end());
  }
}

void TurnSession::remember_challenge(const Response& r) {
  int code = r.error();
  if (code != 401 && code != 438) return;
  if (auto n = r.text(stun::Attr::Nonce)) creds_.nonce = *n;
  if (auto realm = r.text(stun::Attr::Realm)) creds_.realm = *realm;
  // RFC 8489 §9.2.4: echoed unchanged in PASSWORD-ALGORITHMS.
  if (auto pa = r.value(stun::Attr::PasswordAlgorithms)) creds_.offered_algorithms = std::move(*pa);
}

Response TurnSession::transact(Bytes request) {
  failure_ = Failure::None;
  error_.clear();
  if (request.size() < stun::kHeaderSize) {
    fail(Failure::Io, "a request shorter than a STUN header has no transaction id");
    return {};
  }
  const auto start = Clock::now();
  const auto deadline = start + o_.timeout;
  auto rto = kFirstRto;
  auto next_send = start;
  for (;;) {
    auto now = Clock::now();
    if (now >= deadline) {
      fail(Failure::Timeout, "timeout: no answer from " + o_.server.to_string() + " in " + ms_text(o_.timeout));
      return {};
    }
    if (now >= next_send) {
      if (!send_raw(request)) return {};
      // RFC 8489 §6.2.1: over UDP, again after RTO, RTO doubling; a stream
      // is reliable, so never again (§6.2.2).
      next_send = !stream() && o_.retransmit ? now + rto : deadline;
      rto *= 2;
    }
    auto f = read_frame(std::min(deadline, next_send));
    if (!f) {
      if (failure_ != Failure::None) return {};
      continue;
    }
    const auto& b = *f;
    bool response = b.size() >= stun::kHeaderSize && (b[0] & 0xC0) == 0 &&
                    std::memcmp(b.data() + 8, request.data() + 8, stun::kTransactionIdSize) == 0;
    stun::Class c = response ? stun::class_of(load_be16(b.data())) : stun::Class::Request;
    if (c == stun::Class::SuccessResponse || c == stun::Class::ErrorResponse) {
      rtt_ = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start);
      Response r{std::move(*f)};
      remember_challenge(r);
      return r;
    }
    if (pending_.size() >= kMaxPending) pending_.pop_front();
    pending_.push_back(std::move(*f));
  }
}

Response TurnSession::request(stun::Method m, const Attrs& attrs, const Signing& s) {
  bool sent_nonce = signs(s, creds_) && !creds_.nonce.empty();
  Response r = transact(build(m, attrs, s));
  for (int retry = 0; retry < s.challenge_retries && !s.nonce_override && s.integrity != Integrity::None; ++retry) {
    // RFC 8489 §9.2.5: a 401 to a request that already carried a nonce
    // the server gave means the credentials are wrong; again cannot help.
    if (!r.challenge() || (r.error() == 401 && sent_nonce)) break;
    sent_nonce = signs(s, creds_);
    r = transact(build(m, attrs, s));
  }
  return r;
}

Response TurnSession::allocate(const Attrs& extra, const Signing& s) {
  return request(
      stun::Method::Allocate,
      [&extra](stun::MessageBuilder& b) {
        b.add_requested_transport(stun::kTransportUdp);
        if (extra) extra(b);
      },
      s);
}

Response TurnSession::refresh(std::optional<uint32_t> lifetime, const Signing& s) {
  return request(
      stun::Method::Refresh,
      [lifetime](stun::MessageBuilder& b) {
        if (lifetime) b.add_u32(stun::Attr::Lifetime, *lifetime);
      },
      s);
}

Response TurnSession::create_permission(const SocketAddress& peer, const Signing& s) {
  return request(
      stun::Method::CreatePermission,
      [peer](stun::MessageBuilder& b) { b.add_xor_address(stun::Attr::XorPeerAddress, peer); }, s);
}

Response TurnSession::channel_bind(uint16_t channel, const SocketAddress& peer, const Signing& s) {
  return request(
      stun::Method::ChannelBind,
      [channel, peer](stun::MessageBuilder& b) {
        b.add_channel_number(channel);
        b.add_xor_address(stun::Attr::XorPeerAddress, peer);
      },
      s);
}

bool TurnSession::send_indication(const SocketAddress& peer, Bytes data, const Attrs& extra) {
  auto txid = random_txid();
  std::vector<uint8_t> buf(data.size() + 512);
  stun::MessageBuilder b(MutableBytes{buf.data(), buf.size()}, stun::Method::Send, stun::Class::Indication,
                         Bytes{txid.data(), txid.size()});
  b.add_xor_address(stun::Attr::XorPeerAddress, peer);
  b.add(stun::Attr::Data, data);
  if (extra) extra(b);
  Bytes out = b.finish();
  if (out.empty()) return fail(Failure::Io, "Send indication does not fit");
  return send_raw(out);
}

bool TurnSession::send_channel_data(uint16_t channel, Bytes data) {
  size_t total = kChannelDataHeaderSize + (stream() ? pad4(data.size()) : data.size());
  std::vector<uint8_t> buf(total, 0);
  write_channel_data_header(buf.data(), channel, static_cast<uint16_t>(data.size()));
  std::memcpy(buf.data() + kChannelDataHeaderSize, data.data(), data.size());
  return send_raw(Bytes{buf.data(), buf.size()});
}

std::optional<std::vector<uint8_t>> TurnSession::next_frame(std::chrono::milliseconds timeout) {
  failure_ = Failure::None;
  if (!pending_.empty()) {
    auto f = std::move(pending_.front());
    pending_.pop_front();
    return f;
  }
  return read_frame(Clock::now() + timeout);
}

}  // namespace turn::cp
