// SPDX-License-Identifier: Apache-2.0
// TurnServer: demultiplexing, the per-source limits, dispatch to the
// handlers, the sweep, and the allocations' sockets on this loop.
#include "controlplane/server/turn_server.h"

#include <sys/epoll.h>

#include <vector>

#include "common/log/log.h"
#include "common/turn/channel_data.h"
#include "controlplane/net/stream.h"
#include "controlplane/server/relay_socket.h"
#include "controlplane/server/tcp_relay.h"

namespace turn::cp {

using stun::Class;
using stun::ErrorCode;
using stun::Method;

TurnServer::TurnServer(SharedState& shared, EventLoop& loop, Stats& stats)
    : shared_(shared),
      cfg_(shared.cfg),
      loop_(loop),
      stats_(stats),
      limits_(shared.cfg, loop),
      respond_(shared, loop, stats, limits_),
      allocations_(shared, loop, ports_, *this),
      cx_{shared.cfg, shared, allocations_, respond_, stats, loop} {
  crypto::random_bytes(txid_salt_);
}

// The allocations go first: destroying one closes its sockets here.
TurnServer::~TurnServer() { allocations_.clear(); }

// ---- demultiplexing --------------------------------------------------------

void TurnServer::on_client_message(const FiveTuple& tuple, const ClientLink& link, Bytes data) {
  AllocationManager::Hold hold(allocations_);  // no allocation goes under a handler (allocation_manager.h)
  if (tuple.transport == Transport::Udp && !allocations_.find(tuple)) {
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
  if (!link.stream) limits_.note_received(tuple.client.ip, data.size());
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
        respond_.error(req, ErrorCode::BadRequest, false);
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
  if (limits_.rate_limited(req.tuple.client.ip, false)) {
    stats_.drop(CpDrop::RateLimited);
    return;
  }
  // RFC 8489 §6.3.1.1: unknown comprehension-required attributes -> 420.
  std::array<uint16_t, 16> unknown{};
  if (size_t n = req.msg.unknown_required(unknown); n > 0)
    return respond_.unknown_attributes(req, std::span<const uint16_t>(unknown.data(), n));
  switch (req.msg.method()) {
    case Method::Binding:
      return handle_binding(cx_, req);
    case Method::Allocate:
      if (redirected(req)) return;
      break;
    case Method::Refresh:
    case Method::CreatePermission:
    case Method::ChannelBind:
    case Method::Connect:
    case Method::ConnectionBind:
      break;
    default:
      return respond_.error(req, ErrorCode::BadRequest, false);
  }
  if (!authenticate(cx_, req)) return;
  switch (req.msg.method()) {
    case Method::Allocate:
      return handle_allocate(cx_, req);
    case Method::Refresh:
      return handle_refresh(cx_, req);
    case Method::CreatePermission:
      return handle_create_permission(cx_, req);
    case Method::ChannelBind:
      return handle_channel_bind(cx_, req);
    case Method::Connect:
      return handle_connect(req);  // RFC 6062 §5.2
    case Method::ConnectionBind:
      return handle_connection_bind(req);  // RFC 6062 §5.4
    default:
      return;
  }
}

bool TurnServer::redirected(Request& req) {
  // RFC 8489 §10: a new Allocate that this instance does not take (it
  // drains, or alternate-server redirects every one) is redirected before
  // authentication, as coturn does: the client learns where to go in one
  // round trip, and nothing is allocated here. Existing allocations
  // (retransmissions included) are served as always.
  if (allocations_.find(req.tuple)) return false;
  auto d = shared_.redirector.pick(req.tuple.transport, req.tuple.server);
  if (d.kind == Redirector::Decision::Kind::Redirect) {
    respond_.try_alternate(req, d.alt);
    return true;
  }
  if (d.kind == Redirector::Decision::Kind::Refuse) {
    log_every(LogKey::Capacity, req.tuple.client.ip, "refusing Allocate: draining (forced) with no alternate (508)");
    respond_.error(req, ErrorCode::InsufficientCapacity, false);
    return true;
  }
  return false;
}

void TurnServer::sweep() {
  AllocationManager::Hold hold(allocations_);
  allocations_.sweep();
  // RFC 6062: Connect attempts and unbound peer connections have 30 s.
  auto now = loop_.now();
  std::vector<uint32_t> late;
  for (const auto& [id, c] : tcp_connections_)
    if ((c->state() == TcpConnection::State::Connecting || c->state() == TcpConnection::State::Pending ||
         c->closing()) &&
        c->deadline() <= now)
      late.push_back(id);
  for (uint32_t id : late) close_tcp(id, "not bound (or not connected) within 30 s");
  limits_.forget_idle();
}

// ---- the allocations' sockets -----------------------------------------------

void TurnServer::serve(Allocation& a) {
  if (a.tcp) {  // RFC 6062 §5.1: the relayed address listens for peers
    auto listener = std::make_unique<TcpRelayListener>(*this, a, a.relay_fd);
    loop_.add(a.relay_fd, EPOLLIN, listener.get());
    tcp_listeners_[&a] = std::move(listener);
  } else {
    auto sock = std::make_unique<RelaySocket>(*this, a, a.relay_fd);
    loop_.add(a.relay_fd, EPOLLIN, sock.get());
    relay_sockets_[&a] = std::move(sock);
    if (a.relay_fd6 >= 0) {  // a dual-stack allocation's IPv6 half (RFC 8656 §7.2)
      auto sock6 = std::make_unique<RelaySocket>(*this, a, a.relay_fd6);
      loop_.add(a.relay_fd6, EPOLLIN, sock6.get());
      relay_sockets6_[&a] = std::move(sock6);
    }
  }
  shared_.directory.put(a.tuple, this);
}

void TurnServer::release(Allocation& a) {
  for (auto* sockets : {&relay_sockets_, &relay_sockets6_}) {  // both halves go together
    if (auto it = sockets->find(&a); it != sockets->end()) {
      it->second->close_socket();
      loop_.retire(std::move(it->second));
      sockets->erase(it);
    }
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
  shared_.directory.erase(a.tuple);
}

}  // namespace turn::cp
