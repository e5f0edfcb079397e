// SPDX-License-Identifier: Apache-2.0
// UDP listeners (recvmmsg batches) and TCP/TLS acceptors.
#include "controlplane/server/listeners.h"

#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cerrno>
#include <system_error>

#include "common/log/log.h"
#include "controlplane/net/socket.h"
#include "controlplane/net/stream.h"
#include "controlplane/net/tls.h"
#include "controlplane/server/turn_server.h"

namespace turn::cp {

class Listeners::Udp final : public IoHandler {
 public:
  Udp(TurnServer& server, int fd, SocketAddress local, uint8_t* bufs)
      : server_(server), fd_(fd), local_(local), bufs_(bufs) {}
  ~Udp() override { close(fd_); }
  void on_io(uint32_t) override {
    constexpr unsigned kBatch = kUdpBatch;
    constexpr size_t kBuf = kUdpBufSize;
    uint8_t* bufs[kBatch];
    for (unsigned i = 0; i < kBatch; ++i) bufs[i] = bufs_ + i * kBuf;
    mmsghdr msgs[kBatch];
    iovec iov[kBatch];
    sockaddr_storage from[kBatch];
    for (int round = 0; round < 8; ++round) {
      for (unsigned i = 0; i < kBatch; ++i) {
        iov[i] = {bufs[i], kBuf};
        msgs[i] = {};
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_name = &from[i];
        msgs[i].msg_hdr.msg_namelen = sizeof from[i];
      }
      int n = recvmmsg(fd_, msgs, kBatch, MSG_DONTWAIT, nullptr);
      if (n <= 0) return;
      for (int i = 0; i < n; ++i) {
        if (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {  // cannot happen: a slot holds any UDP datagram
          server_.count_drop(CpDrop::FrameTooLarge);
          continue;
        }
        FiveTuple t{Transport::Udp, from_sockaddr(from[i]), local_};
        server_.on_client_message(t, ClientLink{fd_, nullptr}, Bytes{bufs[i], msgs[i].msg_len});
      }
      if (static_cast<unsigned>(n) < kBatch) return;
    }
  }

 private:
  TurnServer& server_;
  int fd_;
  SocketAddress local_;
  uint8_t* bufs_;  // kUdpBatch slots of kUdpBufSize, the loop's (Listeners::udp_bufs_)
};

class Listeners::Acceptor final : public IoHandler {
 public:
  Acceptor(Listeners& owner, int fd, SocketAddress local, bool tls)
      : owner_(owner), fd_(fd), local_(local), tls_(tls) {}
  ~Acceptor() override { close(fd_); }
  void on_io(uint32_t) override {
    for (int i = 0; i < 64; ++i) {
      sockaddr_storage ss;
      socklen_t sl = sizeof ss;
      int c = accept4(fd_, reinterpret_cast<sockaddr*>(&ss), &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (c < 0) return;
      int one = 1;
      setsockopt(c, IPPROTO_TCP, 1 /*TCP_NODELAY*/, &one, sizeof one);
      SSL* ssl = nullptr;
      if (tls_) {
        ssl = owner_.tls_->new_session();
        if (!ssl) {
          close(c);
          continue;
        }
      }
      FiveTuple t{tls_ ? Transport::Tls : Transport::Tcp, from_sockaddr(ss), local_};
      auto conn = owner_.make_stream(c, ssl, t);
      if (!tls_ && owner_.tls_) conn->detect_tls(owner_.tls_);  // TLS on the plain TCP ports too
      owner_.add_stream(std::move(conn), c);
    }
  }

 private:
  Listeners& owner_;
  int fd_;
  SocketAddress local_;
  bool tls_;
};

// DTLS (RFC 7350) on a TLS port's UDP socket. DTLSv1_listen answers a
// ClientHello without a valid cookie with a HelloVerifyRequest (smaller
// than the hello, no state kept: RFC 6347 §4.2.1); a ClientHello with one
// gets a UDP socket of its own, bound to the same address and connected to
// the client (the kernel then delivers that client's datagrams there), and
// the handshake goes on in a StreamConnection in DTLS mode.
class Listeners::DtlsListener final : public IoHandler {
 public:
  DtlsListener(Listeners& owner, int fd, SocketAddress local) : owner_(owner), fd_(fd), local_(local) {}
  ~DtlsListener() override {
    if (pending_) SSL_free(pending_);
    close(fd_);
  }
  void on_io(uint32_t) override {
    for (int i = 0; i < 64; ++i) {
      uint8_t peek;
      if (recv(fd_, &peek, 1, MSG_PEEK | MSG_DONTWAIT) < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        recv(fd_, &peek, 1, MSG_DONTWAIT);  // a queued error: consume it
        continue;
      }
      if (!pending_) {
        pending_ = owner_.tls_->new_dtls_session();
        if (!pending_) return;
        BIO* bio = BIO_new_dgram(fd_, BIO_NOCLOSE);
        SSL_set_bio(pending_, bio, bio);
      }
      BIO_ADDR* peer = BIO_ADDR_new();
      int r = DTLSv1_listen(pending_, peer);
      ERR_clear_error();
      if (r <= 0) {
        BIO_ADDR_free(peer);
        if (r < 0) {  // a fatal error on this SSL object: start afresh
          SSL_free(pending_);
          pending_ = nullptr;
        }
        continue;  // a HelloVerifyRequest went out, or the datagram was not for us
      }
      SocketAddress client = to_socket_address(peer);
      SSL* ssl = pending_;
      pending_ = nullptr;
      accept_session(ssl, peer, client);
      BIO_ADDR_free(peer);
    }
  }

 private:
  static SocketAddress to_socket_address(const BIO_ADDR* a) {
    unsigned char raw[16] = {};
    size_t len = 0;
    BIO_ADDR_rawaddress(a, raw, &len);
    SocketAddress s;
    s.ip = len == 4 ? IpAddress::v4(raw) : IpAddress::v6(raw);
    s.port = ntohs(BIO_ADDR_rawport(a));
    return s;
  }

  void accept_session(SSL* ssl, BIO_ADDR* peer, const SocketAddress& client) {
    // A retransmitted ClientHello of a client that has its session already.
    for (const auto& [raw, conn] : owner_.streams_)
      if (conn->datagram() && conn->tuple().client == client && conn->tuple().server == local_) {
        SSL_free(ssl);
        return;
      }
    sockaddr_storage ls, ps;
    socklen_t ll = to_sockaddr(local_, ls), pl = to_sockaddr(client, ps);
    int fd = socket(ls.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0) {
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
      if (ls.ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    }
    if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&ls), ll) != 0 ||
        connect(fd, reinterpret_cast<sockaddr*>(&ps), pl) != 0) {
      log_every(LogKey::Internal, client.ip, "DTLS: no socket for " + client.to_string() + ": " + errno_text(errno));
      if (fd >= 0) close(fd);
      SSL_free(ssl);
      return;
    }
    BIO* bio = SSL_get_rbio(ssl);
    BIO_set_fd(bio, fd, BIO_NOCLOSE);
    BIO_ctrl(bio, BIO_CTRL_DGRAM_SET_CONNECTED, 0, peer);
    start_session(owner_, fd, ssl, FiveTuple{Transport::Dtls, client, local_});
  }

  // A session on its own connected socket whose handshake is under way;
  // a new association from the same client later starts a fresh one on
  // the same socket.
  static void start_session(Listeners& owner, int fd, SSL* ssl, const FiveTuple& t) {
    auto conn = owner.make_stream(fd, nullptr, t);
    Listeners* o = &owner;
    conn->attach_dtls(ssl, owner.tls_, [o](int nfd, SSL* nssl, const FiveTuple& nt) {
      o->loop_.post([o, nfd, nssl, nt] { start_session(*o, nfd, nssl, nt); });
    });
    StreamConnection* raw = conn.get();
    owner.add_stream(std::move(conn), fd);
    raw->on_io(0);  // the ServerHello flight, for the ClientHello DTLSv1_listen read
  }

  Listeners& owner_;
  int fd_;
  SocketAddress local_;
  SSL* pending_ = nullptr;
};

Listeners::Listeners(TurnServer& server, EventLoop& loop, TlsContext* tls) : server_(server), loop_(loop), tls_(tls) {}

std::unique_ptr<StreamConnection> Listeners::make_stream(int fd, SSL* ssl, const FiveTuple& t) {
  TurnServer& server = server_;
  return std::make_unique<StreamConnection>(
      loop_, fd, ssl, t,
      [&server](StreamConnection& s, Bytes frame) {
        server.on_client_message(s.tuple(), ClientLink{-1, &s}, frame);
      },
      [this](StreamConnection& s) {
        server_.on_stream_closed(&s);
        auto it = streams_.find(&s);
        if (it != streams_.end()) {
          loop_.retire(std::move(it->second));
          streams_.erase(it);
        }
      });
}

void Listeners::add_stream(std::unique_ptr<StreamConnection> conn, int fd) {
  StreamConnection* raw = conn.get();
  loop_.add(fd, EPOLLIN | EPOLLRDHUP, raw);
  streams_[raw] = std::move(conn);
}

void Listeners::sweep() {
  auto now = loop_.now();
  std::vector<StreamConnection*> idle;
  for (const auto& [raw, conn] : streams_)
    if (conn->datagram() && conn->tick(now, dtls_idle)) idle.push_back(raw);
  for (auto* s : idle) s->close_connection("DTLS session idle");
}

Listeners::~Listeners() { close_all(); }

void Listeners::close_all() {
  while (!streams_.empty()) streams_.begin()->second->close_connection("shutdown");
  handlers_.clear();
  udp_fds_.clear();
}

int Listeners::udp_fd(const SocketAddress& at) const {
  for (const auto& [a, fd] : udp_fds_)
    if (a == at) return fd;
  return -1;
}

ListenerStatus Listeners::open(Transport t, const SocketAddress& at) {
  ListenerStatus st{t, at, false, {}};
  try {
    if (t == Transport::Dtls) {
      // DTLS listens on the TLS ports' UDP side (RFC 7350 §4, as coturn).
      int ufd = open_bound_socket(SocketKind::Udp, at, true);
      auto d = std::make_unique<DtlsListener>(*this, ufd, at);
      loop_.add(ufd, EPOLLIN, d.get());
      handlers_.push_back(std::move(d));
      st.up = true;
      return st;
    }
    int fd = open_bound_socket(t == Transport::Udp ? SocketKind::Udp : SocketKind::Tcp, at, true);
    std::unique_ptr<IoHandler> h;
    if (t == Transport::Udp) {
      // Not value-initialised: pages are touched only by datagrams that need them.
      if (!udp_bufs_) udp_bufs_.reset(new uint8_t[kUdpBatch * kUdpBufSize]);
      h = std::make_unique<Udp>(server_, fd, at, udp_bufs_.get());
      udp_fds_.emplace_back(at, fd);
    } else
      h = std::make_unique<Acceptor>(*this, fd, at, t == Transport::Tls);
    loop_.add(fd, EPOLLIN, h.get());
    handlers_.push_back(std::move(h));
    st.up = true;
  } catch (const std::system_error& e) {
    st.error = e.what();
  }
  return st;
}

}  // namespace turn::cp
