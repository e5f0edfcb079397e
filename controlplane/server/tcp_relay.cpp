// SPDX-License-Identifier: Apache-2.0
// RFC 6062 peer connections and the relayed address's listener.
#include "controlplane/server/tcp_relay.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "controlplane/net/socket.h"
#include "controlplane/net/stream.h"
#include "controlplane/server/turn_server.h"

namespace turn::cp {

TcpConnection::TcpConnection(TurnServer& server, uint32_t id, Allocation& a, int fd, const SocketAddress& peer,
                             State st)
    : server_(server), id_(id), alloc_(&a), fd_(fd), peer_(peer), state_(st) {
  auto& loop = server_.loop();
  deadline_ = loop.now() + (st == State::Connecting ? kConnectTimeout : kBindTimeout);
  loop.add(fd_, st == State::Connecting ? EPOLLOUT : (EPOLLIN | EPOLLRDHUP), this);
}

TcpConnection::~TcpConnection() { close_both(); }

std::unique_ptr<StreamConnection> TcpConnection::take_client() noexcept { return std::move(client_); }

void TcpConnection::close_both() noexcept {
  state_ = State::Closed;
  if (fd_ >= 0) {
    server_.loop().remove(fd_);
    close(fd_);
    fd_ = -1;
  }
  if (client_) client_->close_connection("peer connection closed");
}

void TcpConnection::on_io(uint32_t events) {
  AllocationManager::Hold hold(server_.allocations_);
  if (fd_ < 0 || state_ == State::Closed) return;
  if (state_ == State::Connecting) {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err == 0 && !(events & (EPOLLERR | EPOLLHUP))) {
      on_connected();
    } else {
      server_.close_tcp(id_, "connect to the peer failed");  // answers 447
    }
    return;
  }
  if (events & EPOLLERR) {
    server_.close_tcp(id_, "peer connection error");
    return;
  }
  if ((events & EPOLLHUP) && peer_eof_) {
    // Both directions of the peer are gone: nothing more can reach it; the
    // client still gets what is queued for it.
    to_peer_.clear();
    server_.loop().remove(fd_);
    close(fd_);
    fd_ = -1;
    if (!closing_) {
      closing_ = true;
      deadline_ = server_.loop().now() + kDrainTimeout;
    }
    if (state_ != State::Pending) maybe_finish();
    return;
  }
  if (events & EPOLLOUT) flush_peer();
  if (fd_ >= 0 && (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP))) read_peer();
  if (fd_ >= 0) update_peer_interest();
}

void TcpConnection::on_connected() {
  // RFC 6062 §5.2: connected; the client has 30 s to bind a data connection.
  state_ = State::Pending;
  deadline_ = server_.loop().now() + kBindTimeout;
  update_peer_interest();
  server_.on_tcp_connected(*this);
}

void TcpConnection::read_peer() {
  uint8_t* buf = server_.relay_buf_.data() + TurnServer::kHeadroom;
  for (int round = 0; round < 16 && fd_ >= 0 && peer_reading_; ++round) {
    size_t room = TurnServer::kMaxDatagram;
    if (state_ == State::Pending) {
      room = kPendingBuffer > to_client_pending_.size() ? kPendingBuffer - to_client_pending_.size() : 0;
      if (room == 0) {
        peer_reading_ = false;  // the window closes on the peer until the bind
        return;
      }
    }
    ssize_t n = recv(fd_, buf, room, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n == 0) {
      peer_closed();  // may close this connection: nothing after it
      return;
    }
    if (n < 0) {
      server_.close_tcp(id_, "peer read error");
      return;
    }
    auto len = static_cast<size_t>(n);
    alloc_->info->packets_to_client.fetch_add(1, std::memory_order_relaxed);
    alloc_->info->bytes_to_client.fetch_add(len, std::memory_order_relaxed);
    bump(server_.stats_.bytes_to_client, len);
    bump(server_.stats_.packets_to_client);
    if (state_ == State::Pending) {
      to_client_pending_.insert(to_client_pending_.end(), buf, buf + len);
      continue;
    }
    if (!client_ || !client_->send(Bytes{buf, len})) {
      server_.close_tcp(id_, "client data connection failed");
      return;
    }
    if (client_->backlog() > kHighWater) peer_reading_ = false;  // resumed when the client drains
  }
}

void TcpConnection::to_peer(const uint8_t* p, size_t n) {
  if (fd_ < 0 || state_ != State::Bound) return;
  alloc_->info->packets_to_peer.fetch_add(1, std::memory_order_relaxed);
  alloc_->info->bytes_to_peer.fetch_add(n, std::memory_order_relaxed);
  bump(server_.stats_.bytes_to_peer, n);
  bump(server_.stats_.packets_to_peer);
  size_t done = 0;
  if (to_peer_.empty()) {
    while (done < n) {
      ssize_t w = send(fd_, p + done, n - done, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      if (w <= 0) {
        server_.close_tcp(id_, "peer write error");
        return;
      }
      done += static_cast<size_t>(w);
    }
  }
  to_peer_.insert(to_peer_.end(), p + done, p + n);
  if (to_peer_.size() > kHighWater && client_) client_->set_reading(false);  // resumed in flush_peer
  update_peer_interest();
}

void TcpConnection::flush_peer() {
  size_t done = 0;
  while (done < to_peer_.size()) {
    ssize_t w = send(fd_, to_peer_.data() + done, to_peer_.size() - done, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (w <= 0) {
      server_.close_tcp(id_, "peer write error");
      return;
    }
    done += static_cast<size_t>(w);
  }
  to_peer_.erase(to_peer_.begin(), to_peer_.begin() + static_cast<long>(done));
  if (closing_) {
    maybe_finish();  // may close this connection: nothing after it
    return;
  }
  if (to_peer_.size() <= kHighWater / 2 && client_) client_->set_reading(true);
}

void TcpConnection::peer_closed() {
  peer_eof_ = true;
  peer_reading_ = false;
  if (state_ == State::Pending) {
    update_peer_interest();  // what it sent waits for the bind
    return;
  }
  closing_ = true;
  deadline_ = server_.loop().now() + kDrainTimeout;
  update_peer_interest();
  maybe_finish();
}

void TcpConnection::client_closed() {
  closing_ = true;
  deadline_ = server_.loop().now() + kDrainTimeout;
  if (client_) client_->set_reading(false);
  maybe_finish();
}

void TcpConnection::maybe_finish() {
  // Closing once nothing is left in flight: the client has every byte the
  // peer sent, the peer every byte the client sent (or a side is gone).
  bool client_done = !client_ || client_->closed() || client_->backlog() == 0;
  bool peer_done = fd_ < 0 || to_peer_.empty();
  if (client_done && peer_done) server_.close_tcp(id_, peer_eof_ ? "peer closed" : "client closed");
}

void TcpConnection::update_peer_interest() {
  if (fd_ < 0 || state_ == State::Connecting || state_ == State::Closed) return;
  if (peer_eof_) peer_reading_ = false;
  uint32_t ev = (peer_reading_ ? (EPOLLIN | EPOLLRDHUP) : 0u) | (to_peer_.empty() ? 0u : EPOLLOUT);
  server_.loop().modify(fd_, ev, this);
}

void TcpConnection::bind_client(std::unique_ptr<StreamConnection> client, std::vector<uint8_t> leftover) {
  state_ = State::Bound;
  client_ = std::move(client);
  client_->set_on_drained([this] {
    if (closing_) {
      maybe_finish();
    } else if (!peer_reading_ && fd_ >= 0) {
      peer_reading_ = true;
      update_peer_interest();
    }
  });
  // RFC 6062 §5.3: what the peer sent before the bind goes first.
  if (!to_client_pending_.empty()) {
    if (!client_->send(Bytes{to_client_pending_.data(), to_client_pending_.size()})) {
      server_.close_tcp(id_, "client data connection failed");
      return;
    }
    std::vector<uint8_t>().swap(to_client_pending_);
  }
  peer_reading_ = !peer_eof_ && client_->backlog() <= kHighWater;
  if (!leftover.empty()) to_peer(leftover.data(), leftover.size());
  if (peer_eof_) {
    closing_ = true;
    deadline_ = server_.loop().now() + kDrainTimeout;
    maybe_finish();  // may close this connection: nothing after it
    return;
  }
  update_peer_interest();
}

void TcpRelayListener::close_socket() noexcept {
  if (fd_ >= 0) {
    server_.loop().remove(fd_);
    close(fd_);
    fd_ = -1;
  }
}

void TcpRelayListener::on_io(uint32_t) {
  AllocationManager::Hold hold(server_.allocations_);
  for (int i = 0; i < 64 && fd_ >= 0; ++i) {
    sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int c = accept4(fd_, reinterpret_cast<sockaddr*>(&ss), &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c < 0) return;
    server_.on_peer_accepted(alloc_, c, from_sockaddr(ss));
  }
}

}  // namespace turn::cp
