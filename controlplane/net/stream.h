// SPDX-License-Identifier: Apache-2.0
// StreamConnection: one TCP or TLS client connection (RFC 8656 §3.1,
// framing per §12.5/RFC 6062: STUN messages and 4-byte-padded ChannelData
// back to back). Cuts frames and hands each to the server; buffers output
// when the socket is full, up to a bound, and drops beyond it (counted).
// Lives on one event loop; not thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "common/util/bytes.h"
#include "controlplane/allocation/allocation.h"
#include "controlplane/net/event_loop.h"

typedef struct ssl_st SSL;

namespace turn::cp {

class TlsContext;

// A connection taken out of its loop (RFC 6062 ConnectionBind: the client's
// data connection moves to the thread that owns the allocation). Owns fd
// and ssl until adopted; closes them if it never is.
struct DetachedStream {
  int fd = -1;
  SSL* ssl = nullptr;
  FiveTuple tuple;
  std::vector<uint8_t> leftover;  // bytes received after the last frame
  DetachedStream() = default;
  DetachedStream(DetachedStream&& o) noexcept;
  DetachedStream& operator=(DetachedStream&&) = delete;
  DetachedStream(const DetachedStream&) = delete;
  ~DetachedStream();
};

class StreamConnection final : public IoHandler {
 public:
  using MessageFn = std::function<void(StreamConnection&, Bytes)>;
  using ClosedFn = std::function<void(StreamConnection&)>;
  using HandOverFn = std::function<void(DetachedStream&&)>;

  static constexpr size_t kMaxFrame = 20 + 65535 + 4;
  static constexpr size_t kMaxBacklog = 1 << 20;

  // tls_established: `ssl` has finished its handshake already (an adopted
  // connection).
  StreamConnection(EventLoop& loop, int fd, SSL* ssl, FiveTuple tuple, MessageFn on_message, ClosedFn on_closed,
                   bool tls_established = false);
  // On a plain TCP port with TLS configured: the first byte decides. A TLS
  // handshake record (0x16, RFC 8446 §5.1) starts TLS on this connection
  // (as coturn and eturnal's `auto` do, so that turns: works on 3478 and
  // 443); anything else is STUN/ChannelData as usual.
  void detect_tls(const TlsContext* tls) noexcept { detect_tls_ = tls; }
  ~StreamConnection() override;

  void on_io(uint32_t events) override;
  // Queues bytes for the client; false if dropped (backlog full or closed).
  bool send(Bytes data);
  void close_connection(const char* why);

  [[nodiscard]] const FiveTuple& tuple() const noexcept { return tuple_; }
  [[nodiscard]] bool closed() const noexcept { return fd_ < 0 || broken_; }

  // DTLS (RFC 7350) on a connected UDP socket whose BIO `ssl` already has
  // (the handshake is under way): one record is one message, no framing,
  // nothing queued (a datagram the socket cannot take is dropped).
  // `ctx` and `restart`: RFC 6347 §4.2.8, a client that starts a new
  // association from the same address and port (an epoch-0 ClientHello on
  // this established session) is first asked for a cookie; once it proves
  // its address, this session ends (its allocations with it) and
  // `restart(fd, fresh SSL)` carries the new handshake on.
  using RestartFn = std::function<void(int fd, SSL* ssl, const FiveTuple& tuple)>;
  void attach_dtls(SSL* ssl, const TlsContext* ctx = nullptr, RestartFn restart = nullptr) noexcept;
  [[nodiscard]] bool datagram() const noexcept { return datagram_; }
  // Once a second: DTLS handshake retransmissions; true when idle (nothing
  // received) for longer than `idle`.
  bool tick(TimePoint now, std::chrono::seconds idle);

  // Raw mode (an RFC 6062 data connection): every chunk read is handed to
  // on_message as it comes, no framing.
  void set_raw(bool raw) noexcept { raw_ = raw; }
  // Flow control for raw relaying: bytes queued for the client, a callback
  // once they are all written, and pausing reads (the kernel's window then
  // closes on the sender).
  [[nodiscard]] size_t backlog() const noexcept { return out_.size(); }
  void set_on_drained(std::function<void()> fn) { on_drained_ = std::move(fn); }
  void set_reading(bool on);
  // Called from on_message: once it returns, the connection leaves this
  // loop (not closed) and `fn` receives it with what followed the frame.
  // on_closed runs then, as for a close.
  void hand_over(HandOverFn fn) { hand_over_ = std::move(fn); }

 private:
  void read_some();
  void flush();
  void update_interest();
  long raw_write(const uint8_t* p, size_t n);  // >0 written, 0 would block, <0 error

  EventLoop& loop_;
  int fd_;
  SSL* ssl_;
  bool handshake_done_;
  bool want_write_ = false;
  bool broken_ = false;                     // a write failed: closed from on_io, never inside send()
  const TlsContext* detect_tls_ = nullptr;  // first byte not yet seen (see detect_tls)
  bool raw_ = false;
  bool datagram_ = false;
  const TlsContext* dtls_ctx_ = nullptr;
  RestartFn dtls_restart_;
  // An epoch-0 ClientHello waiting on an established DTLS session: true
  // when it started a new association (this object is then closed).
  bool dtls_new_association();
  TimePoint last_rx_ = loop_.now();
  bool reading_ = true;
  std::function<void()> on_drained_;
  HandOverFn hand_over_;
  void finish_hand_over(size_t consumed);
  FiveTuple tuple_;
  MessageFn on_message_;
  ClosedFn on_closed_;
  std::vector<uint8_t> in_;
  size_t in_len_ = 0;
  std::vector<uint8_t> out_;
};

}  // namespace turn::cp
