// SPDX-License-Identifier: Apache-2.0
// RFC 6062 (TURN extensions for TCP allocations): Connect, ConnectionBind,
// ConnectionAttempt, and the life of peer connections on this thread.
#include <sys/epoll.h>
#include <unistd.h>

#include <cstring>
#include <memory>

#include "common/stun/attributes.h"
#include "common/log/log.h"
#include "controlplane/net/socket.h"
#include "controlplane/net/stream.h"
#include "controlplane/server/tcp_relay.h"
#include "controlplane/server/turn_server.h"

namespace turn::cp {

using stun::Attr;
using stun::ErrorCode;

namespace {
// Peer connections one TCP allocation may hold (pending and bound): far
// above what one client uses, and a bound on what one allocation costs.
constexpr size_t kMaxTcpConnectionsPerAllocation = 128;
}  // namespace

size_t TurnServer::tcp_connections_of(const Allocation& a) const {
  size_t n = 0;
  for (const auto& [id, c] : tcp_connections_) n += c->allocation() == &a;
  return n;
}

// RFC 6062 §5.2: Connect, on the control connection of a TCP allocation.
void TurnServer::handle_connect(Request& req) {
  const auto& m = req.msg;
  Allocation* a = own_allocation(cx_, req);  // else 437 or 441, answered
  if (!a) return;
  if (!a->tcp) return respond_.error(req, ErrorCode::BadRequest);  // a UDP allocation
  const auto* peer_attr = m.find(Attr::XorPeerAddress);
  if (!peer_attr) return respond_.error(req, ErrorCode::BadRequest);
  auto peer = stun::read_xor_address(m.value(*peer_attr), m.xor_mask());
  if (!peer || peer->port == 0) return respond_.error(req, ErrorCode::BadRequest);
  if (peer->ip.is_v4() != a->info->relay.ip.is_v4()) return respond_.error(req, ErrorCode::PeerAddressFamilyMismatch);
  if (!peer_permitted(cx_, req, peer->ip, "Connect")) return;
  // §5.2: one connection per peer address and allocation, in progress or up.
  for (const auto& [id, c] : tcp_connections_)
    if (c->allocation() == a && c->peer() == *peer) return respond_.error(req, ErrorCode::ConnectionAlreadyExists);
  if (tcp_connections_of(*a) >= kMaxTcpConnectionsPerAllocation)
    return respond_.error(req, ErrorCode::InsufficientCapacity);
  // From the relayed transport address itself, as RFC 6062 §5.2 asks.
  int fd = tcp_connect_from(a->info->relay, *peer);
  if (fd < 0) {
    log_debug("Connect to " + peer->to_string() + " failed at once: " + errno_text(errno));
    return respond_.error(req, ErrorCode::ConnectionTimeoutOrFailure);
  }
  uint32_t id = shared_.connection_ids.add(this);
  auto c = std::make_unique<TcpConnection>(*this, id, *a, fd, *peer, TcpConnection::State::Connecting);
  c->connect_answer = defer(req);
  tcp_connections_[id] = std::move(c);
}

void TurnServer::on_tcp_connected(TcpConnection& c) {
  // §5.2: the success response carries the CONNECTION-ID to bind.
  if (c.connect_answer) respond_.deferred(c.allocation()->link.stream, *c.connect_answer, std::nullopt, c.id());
  c.connect_answer.reset();
  log_debug("TCP connection " + std::to_string(c.id()) + " to " + c.peer().to_string() + " from " +
            c.allocation()->info->relay.to_string());
}

// §5.3: a peer connected to a relayed transport address.
void TurnServer::on_peer_accepted(Allocation& a, int fd, const SocketAddress& peer) {
  auto now = loop_.now();
  if (a.expires <= now || !a.has_permission(peer.ip, now) || tcp_connections_of(a) >= kMaxTcpConnectionsPerAllocation) {
    // "no permission ... close the connection immediately" (counted first:
    // the peer may look at the counter as soon as it sees the close).
    stats_.drop(CpDrop::TcpPeerRefused);
    close(fd);
    return;
  }
  uint32_t id = shared_.connection_ids.add(this);
  tcp_connections_[id] = std::make_unique<TcpConnection>(*this, id, a, fd, peer, TcpConnection::State::Pending);
  // ConnectionAttempt indication over the control connection: who, and the
  // CONNECTION-ID to bind (§5.3). Indications carry no integrity.
  std::array<uint8_t, 12> txid{};
  crypto::random_bytes(txid);
  stun::MessageBuilder b(respond_.buffer(), stun::Method::ConnectionAttempt, stun::Class::Indication,
                         Bytes{txid.data(), txid.size()});
  b.add_xor_address(Attr::XorPeerAddress, peer);
  b.add_u32(Attr::ConnectionId, id);
  if (cfg_.fingerprint) b.add_fingerprint();
  Bytes out = b.finish();
  if (!out.empty()) respond_.send(a.tuple, a.link, out);
}

// §5.4: ConnectionBind, on a new TCP/TLS connection that then carries the
// peer's bytes. It may arrive on any thread; the connection moves to the
// thread that holds the CONNECTION-ID.
void TurnServer::handle_connection_bind(Request& req) {
  const auto& m = req.msg;
  if (!req.link.stream) return respond_.error(req, ErrorCode::BadRequest);              // not over UDP
  if (allocations_.find(req.tuple)) return respond_.error(req, ErrorCode::BadRequest);  // a control connection
  const auto* id_attr = m.find(Attr::ConnectionId);
  auto id = id_attr ? stun::read_u32(m.value(*id_attr)) : Result<uint32_t, stun::AttrError>(stun::AttrError::BadLength);
  if (!id) return respond_.error(req, ErrorCode::BadRequest);
  TurnServer* owner = shared_.connection_ids.owner(*id);
  if (!owner) return respond_.error(req, ErrorCode::BadRequest);  // no such connection (or expired)
  DeferredAnswer answer = defer(req);
  std::string username = req.username;
  uint32_t cid = *id;
  req.link.stream->hand_over([owner, cid, answer, username](DetachedStream&& d) {
    auto held = std::make_shared<DetachedStream>(std::move(d));
    owner->loop().post([owner, cid, answer, username, held] {
      owner->adopt_data_connection(cid, username, answer, std::move(*held));
    });
  });
}

void TurnServer::adopt_data_connection(uint32_t id, const std::string& username, const DeferredAnswer& answer,
                                       DetachedStream d) {
  AllocationManager::Hold hold(allocations_);
  int fd = d.fd;
  SSL* ssl = d.ssl;
  d.fd = -1;
  d.ssl = nullptr;
  // Raw from now on: every byte goes to the peer (§5.5). The callbacks look
  // the connection up by id, so they are harmless once it is gone.
  auto s = std::make_unique<StreamConnection>(
      loop_, fd, ssl, d.tuple,
      [this, id](StreamConnection& sc, Bytes data) {
        auto it = tcp_connections_.find(id);
        if (it != tcp_connections_.end() && it->second->state() == TcpConnection::State::Bound)
          it->second->to_peer(data.data(), data.size());
        else
          sc.close_connection("data connection without a peer connection");
      },
      [this, id](StreamConnection& sc) {
        auto it = tcp_connections_.find(id);
        if (it != tcp_connections_.end() && it->second->state() == TcpConnection::State::Bound) {
          it->second->client_closed();  // delivers what the client sent, then closes
        } else if (!sc.closed()) {
          sc.close_connection("unbound");
        }
      },
      true);
  loop_.add(fd, EPOLLIN | EPOLLRDHUP, s.get());
  auto it = tcp_connections_.find(id);
  std::optional<ErrorCode> refusal;
  if (it == tcp_connections_.end() || it->second->state() != TcpConnection::State::Pending)
    refusal = ErrorCode::BadRequest;  // expired, bound already, or still connecting
  else if (it->second->allocation()->username != username)
    refusal = ErrorCode::WrongCredentials;  // §5.4: the allocation's own credentials only
  if (refusal) {
    respond_.deferred(s.get(), answer, refusal, 0);
    s->close_connection("ConnectionBind refused");
    loop_.retire(std::move(s));
    return;
  }
  respond_.deferred(s.get(), answer, std::nullopt, 0);
  s->set_raw(true);
  it->second->bind_client(std::move(s), std::move(d.leftover));
}

void TurnServer::close_tcp(uint32_t id, const char* why) {
  auto it = tcp_connections_.find(id);
  if (it == tcp_connections_.end()) return;
  std::unique_ptr<TcpConnection> c = std::move(it->second);
  tcp_connections_.erase(it);
  shared_.connection_ids.erase(id);
  log_debug("TCP connection " + std::to_string(id) + " with " + c->peer().to_string() + " closed: " + why);
  if (c->connect_answer) {
    // §5.2: the TCP connection could not be made in time: 447.
    respond_.deferred(c->allocation()->link.stream, *c->connect_answer, ErrorCode::ConnectionTimeoutOrFailure, 0);
    c->connect_answer.reset();
  }
  c->close_both();
  if (auto client = c->take_client()) loop_.retire(std::move(client));
  loop_.retire(std::move(c));
}

}  // namespace turn::cp
