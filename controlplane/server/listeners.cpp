// SPDX-License-Identifier: Apache-2.0
// UDP listeners (recvmmsg batches) and TCP/TLS acceptors.
#include "controlplane/server/listeners.h"

#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "controlplane/log.h"
#include "controlplane/net/socket.h"
#include "controlplane/net/stream.h"
#include "controlplane/net/tls.h"
#include "controlplane/server/turn_server.h"

namespace turn::cp {

class Listeners::Udp final : public IoHandler {
public:
  Udp(TurnServer& server, int fd, SocketAddress local, uint8_t* bufs) : server_(server), fd_(fd), local_(local), bufs_(bufs) {}
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
      TurnServer& server = owner_.server_;
      Listeners& owner = owner_;
      auto conn = std::make_unique<StreamConnection>(
          owner_.loop_, c, ssl, t,
          [&server](StreamConnection& s, Bytes frame) {
            server.on_client_message(s.tuple(), ClientLink{-1, &s}, frame);
          },
          [&server, &owner](StreamConnection& s) {
            server.on_stream_closed(&s);
            auto it = owner.streams_.find(&s);
            if (it != owner.streams_.end()) {
              owner.loop_.retire(std::move(it->second));
              owner.streams_.erase(it);
            }
          });
      StreamConnection* raw = conn.get();
      if (!tls_ && owner_.tls_) raw->detect_tls(owner_.tls_);  // TLS on the plain TCP ports too
      owner_.loop_.add(c, EPOLLIN | EPOLLRDHUP, raw);
      owner_.streams_[raw] = std::move(conn);
    }
  }

private:
  Listeners& owner_;
  int fd_;
  SocketAddress local_;
  bool tls_;
};

Listeners::Listeners(TurnServer& server, EventLoop& loop, TlsContext* tls)
    : server_(server), loop_(loop), tls_(tls) {}

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
    int fd = open_bound_socket(t == Transport::Udp ? SocketKind::Udp : SocketKind::Tcp, at, true);
    std::unique_ptr<IoHandler> h;
    if (t == Transport::Udp) {
      // Not value-initialised: pages are touched only by datagrams that need them.
      if (!udp_bufs_) udp_bufs_.reset(new uint8_t[kUdpBatch * kUdpBufSize]);
      h = std::make_unique<Udp>(server_, fd, at, udp_bufs_.get());
      udp_fds_.emplace_back(at, fd);
    }
    else
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
