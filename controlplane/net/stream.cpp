// SPDX-License-Identifier: Apache-2.0
// TCP/TLS client connections.
#include "controlplane/net/stream.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/stun/message.h"
#include "common/log/log.h"
#include "controlplane/net/tls.h"

namespace turn::cp {

DetachedStream::DetachedStream(DetachedStream&& o) noexcept
    : fd(o.fd), ssl(o.ssl), tuple(o.tuple), leftover(std::move(o.leftover)) {
  o.fd = -1;
  o.ssl = nullptr;
}

DetachedStream::~DetachedStream() {
  if (ssl) SSL_free(ssl);
  if (fd >= 0) close(fd);
}

StreamConnection::StreamConnection(EventLoop& loop, int fd, SSL* ssl, FiveTuple tuple, MessageFn on_message,
                                   ClosedFn on_closed, bool tls_established)
    : loop_(loop),
      fd_(fd),
      ssl_(ssl),
      handshake_done_(ssl == nullptr || tls_established),
      tuple_(tuple),
      on_message_(std::move(on_message)),
      on_closed_(std::move(on_closed)),
      in_(kMaxFrame + 16) {
  if (ssl_ && !tls_established) SSL_set_fd(ssl_, fd_);
}

StreamConnection::~StreamConnection() {
  if (ssl_) SSL_free(ssl_);
  if (fd_ >= 0) close(fd_);
}

void StreamConnection::close_connection(const char* why) {
  if (fd_ < 0) return;
  log_debug(std::string(transport_name(tuple_.transport)) + " connection from " + tuple_.client.to_string() +
            " closed: " + why);
  loop_.remove(fd_);
  if (ssl_ && handshake_done_) SSL_shutdown(ssl_);
  close(fd_);
  fd_ = -1;
  on_closed_(*this);  // may retire this object; nothing after this line
}

void StreamConnection::update_interest() {
  if (fd_ < 0) return;
  bool need_out = !out_.empty() || want_write_;
  loop_.modify(fd_, (reading_ ? EPOLLIN : 0u) | EPOLLRDHUP | (need_out ? EPOLLOUT : 0u), this);
}

void StreamConnection::attach_dtls(SSL* ssl, const TlsContext* ctx, RestartFn restart) noexcept {
  ssl_ = ssl;
  handshake_done_ = false;
  datagram_ = true;
  dtls_ctx_ = ctx;
  dtls_restart_ = std::move(restart);
}

bool StreamConnection::dtls_new_association() {
  uint8_t head[14];
  ssize_t n = recv(fd_, head, sizeof head, MSG_PEEK | MSG_DONTWAIT);
  // DTLS record header (RFC 6347 §4.1): type 22 (handshake), epoch 0 at
  // bytes 3-4, then the handshake message type at byte 13: 1, ClientHello.
  if (n < 14 || head[0] != 22 || head[3] != 0 || head[4] != 0 || head[13] != 1) return false;
  SSL* fresh = dtls_ctx_->new_dtls_session();
  if (!fresh) return false;
  BIO* bio = BIO_new_dgram(fd_, BIO_NOCLOSE);
  SSL_set_bio(fresh, bio, bio);
  BIO_ADDR* peer = BIO_ADDR_new();
  // Stateless: without a valid cookie this answers with a HelloVerifyRequest
  // (or drops the datagram) and the established session goes on.
  int r = DTLSv1_listen(fresh, peer);
  ERR_clear_error();
  if (r != 1) {
    BIO_ADDR_free(peer);
    SSL_free(fresh);
    return r == 0;  // consumed
  }
  BIO_ctrl(bio, BIO_CTRL_DGRAM_SET_CONNECTED, 0, peer);
  BIO_ADDR_free(peer);
  int fd = fd_;
  loop_.remove(fd_);
  fd_ = -1;
  if (ssl_) SSL_free(ssl_);
  ssl_ = nullptr;
  log_debug("dtls connection from " + tuple_.client.to_string() + " closed: the client started a new association");
  dtls_restart_(fd, fresh, tuple_);
  on_closed_(*this);  // may retire this object; nothing after this line
  return true;
}

bool StreamConnection::tick(TimePoint now, std::chrono::seconds idle) {
  if (fd_ < 0) return false;
  // RFC 6347 §4.2.4: handshake flights are retransmitted on a timer.
  if (datagram_ && ssl_ && !handshake_done_) DTLSv1_handle_timeout(ssl_);
  return now - last_rx_ > idle;
}

void StreamConnection::set_reading(bool on) {
  if (reading_ == on) return;
  reading_ = on;
  update_interest();
  // Bytes OpenSSL already decrypted raise no EPOLLIN: read them now.
  if (on && ssl_ && fd_ >= 0 && SSL_pending(ssl_) > 0) read_some();
}

void StreamConnection::finish_hand_over(size_t consumed) {
  DetachedStream d;
  d.fd = fd_;
  d.ssl = ssl_;
  d.tuple = tuple_;
  d.leftover.assign(in_.begin() + static_cast<long>(consumed), in_.begin() + static_cast<long>(in_len_));
  in_len_ = 0;
  loop_.remove(fd_);
  fd_ = -1;
  ssl_ = nullptr;
  auto fn = std::move(hand_over_);
  hand_over_ = nullptr;
  fn(std::move(d));
  on_closed_(*this);  // may retire this object; nothing after this line
}

void StreamConnection::on_io(uint32_t events) {
  if (fd_ < 0) return;
  if (broken_) {
    close_connection("write error");
    return;
  }
  if (events & (EPOLLERR | EPOLLHUP)) {
    close_connection("socket error or hang-up");
    return;
  }
  if (detect_tls_) {
    uint8_t first = 0;
    ssize_t n = recv(fd_, &first, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n == 1 && first == 0x16) {  // TLS handshake record: a ClientHello
      ssl_ = detect_tls_->new_session();
      if (!ssl_) {
        close_connection("TLS session could not be created");
        return;
      }
      SSL_set_fd(ssl_, fd_);
      handshake_done_ = false;
      tuple_.transport = Transport::Tls;
    }
    detect_tls_ = nullptr;  // n == 0 or an error: read_some() sees the close
  }
  if (ssl_ && !handshake_done_) {
    int r = SSL_do_handshake(ssl_);
    if (r != 1) {
      int e = SSL_get_error(ssl_, r);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        want_write_ = e == SSL_ERROR_WANT_WRITE;
        update_interest();
        return;
      }
      ERR_clear_error();
      close_connection("TLS handshake failed");
      return;
    }
    handshake_done_ = true;
    want_write_ = false;
  }
  if (events & EPOLLOUT) flush();
  if (fd_ >= 0 && reading_ && (events & (EPOLLIN | EPOLLRDHUP)))
    read_some();
  else if (fd_ >= 0 && !reading_ && (events & EPOLLRDHUP))
    read_some();  // see the close even while paused
  if (fd_ >= 0) update_interest();
}

void StreamConnection::read_some() {
  last_rx_ = loop_.now();
  if (datagram_) {
    // DTLS: each record is one STUN message or ChannelData (unpadded).
    for (int rounds = 0; rounds < 64 && fd_ >= 0; ++rounds) {
      if (handshake_done_ && dtls_ctx_ && dtls_restart_ && SSL_pending(ssl_) == 0 && dtls_new_association()) {
        if (fd_ < 0) return;  // closed: a new session took over
        continue;             // a HelloVerifyRequest went out; the old session goes on
      }
      int n = SSL_read(ssl_, in_.data(), static_cast<int>(in_.size()));
      if (n <= 0) {
        int e = SSL_get_error(ssl_, n);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return;
        ERR_clear_error();
        close_connection(e == SSL_ERROR_ZERO_RETURN ? "DTLS close" : "DTLS read error");
        return;
      }
      on_message_(*this, Bytes{in_.data(), static_cast<size_t>(n)});
    }
    return;
  }
  for (int rounds = 0; rounds < 16 && fd_ >= 0; ++rounds) {
    long n;
    if (ssl_) {
      n = SSL_read(ssl_, in_.data() + in_len_, static_cast<int>(in_.size() - in_len_));
      if (n <= 0) {
        int e = SSL_get_error(ssl_, static_cast<int>(n));
        if (e == SSL_ERROR_WANT_READ) return;
        if (e == SSL_ERROR_WANT_WRITE) {
          want_write_ = true;
          return;
        }
        ERR_clear_error();
        close_connection(e == SSL_ERROR_ZERO_RETURN ? "TLS close" : "TLS read error");
        return;
      }
    } else {
      n = recv(fd_, in_.data() + in_len_, in_.size() - in_len_, 0);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      if (n <= 0) {
        close_connection(n == 0 ? "peer closed" : "read error");
        return;
      }
    }
    in_len_ += static_cast<size_t>(n);
    if (raw_) {
      // A data connection: the bytes as they come (RFC 6062 §5.5).
      size_t len = in_len_;
      in_len_ = 0;
      on_message_(*this, Bytes{in_.data(), len});
      if (fd_ < 0) return;
      if (!reading_) return;
      continue;
    }
    // Cut whole frames.
    size_t pos = 0;
    while (fd_ >= 0) {
      Bytes rest{in_.data() + pos, in_len_ - pos};
      long frame = stun::stream_frame_length(rest);
      if (frame < 0) {
        close_connection("not STUN/TURN framing");
        return;
      }
      if (frame == 0 || static_cast<size_t>(frame) > rest.size()) break;
      on_message_(*this, rest.first(static_cast<size_t>(frame)));
      pos += static_cast<size_t>(frame);
      if (hand_over_ && fd_ >= 0) {
        finish_hand_over(pos);
        return;
      }
    }
    if (fd_ < 0) return;
    if (broken_) {
      close_connection("write error");
      return;
    }
    if (pos > 0) {
      std::memmove(in_.data(), in_.data() + pos, in_len_ - pos);
      in_len_ -= pos;
    }
  }
}

long StreamConnection::raw_write(const uint8_t* p, size_t n) {
  if (ssl_) {
    if (!handshake_done_) return 0;
    int r = SSL_write(ssl_, p, static_cast<int>(n));
    if (r > 0) return r;
    int e = SSL_get_error(ssl_, r);
    if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) return 0;
    ERR_clear_error();
    return -1;
  }
  ssize_t r = ::send(fd_, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
  if (r >= 0) return r;
  return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
}

void StreamConnection::flush() {
  size_t done = 0;
  while (done < out_.size()) {
    long w = raw_write(out_.data() + done, out_.size() - done);
    if (w < 0) {
      out_.clear();
      close_connection("write error");
      return;
    }
    if (w == 0) break;
    done += static_cast<size_t>(w);
  }
  out_.erase(out_.begin(), out_.begin() + static_cast<long>(done));
  if (out_.empty() && done > 0 && on_drained_) on_drained_();
}

bool StreamConnection::send(Bytes data) {
  if (fd_ < 0 || broken_) return false;
  if (datagram_) {
    // One record per message; a record the socket cannot take now is lost,
    // as a UDP datagram would be.
    if (!handshake_done_) return false;
    int r = SSL_write(ssl_, data.data(), static_cast<int>(data.size()));
    if (r > 0) return true;
    ERR_clear_error();
    return false;
  }
  size_t done = 0;
  if (out_.empty()) {
    while (done < data.size()) {
      long w = raw_write(data.data() + done, data.size() - done);
      if (w < 0) {
        // Not closed here: the caller may be in the middle of using state
        // that the close deletes. on_io closes it (EPOLLERR/EPOLLOUT).
        broken_ = true;
        out_.clear();
        loop_.modify(fd_, EPOLLIN | EPOLLOUT | EPOLLRDHUP, this);
        return false;
      }
      if (w == 0) break;
      done += static_cast<size_t>(w);
    }
    if (done == data.size()) return true;
  }
  if (out_.size() + (data.size() - done) > kMaxBacklog) {
    // A partial frame must still be completed or the stream desyncs; only
    // whole frames are dropped.
    if (done == 0) return false;
  }
  out_.insert(out_.end(), data.begin() + static_cast<long>(done), data.end());
  update_interest();
  return true;
}

}  // namespace turn::cp
