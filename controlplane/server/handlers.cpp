// SPDX-License-Identifier: Apache-2.0
// Binding, and the steps more than one handler takes.
#include "controlplane/server/handlers.h"

#include <string>

#include "common/log/log.h"
#include "controlplane/server/peer_policy.h"

namespace turn::cp {

using stun::Attr;
using stun::ErrorCode;

void handle_binding(HandlerContext& cx, Request& req) {
  // RFC 8489 §6.3.1: reflect the source address; no authentication needed.
  auto b = cx.respond.start(req, stun::Class::SuccessResponse);
  b.add_xor_address(Attr::XorMappedAddress, req.tuple.client);
  cx.respond.finish(req, b, false);
}

Allocation* own_allocation(HandlerContext& cx, Request& req) {
  Allocation* a = cx.allocations.find(req.tuple);
  if (!a) {
    cx.respond.error(req, ErrorCode::AllocationMismatch);
    return nullptr;
  }
  if (a->username != req.username) {
    cx.respond.error(req, ErrorCode::WrongCredentials);
    return nullptr;
  }
  return a;
}

bool peer_permitted(HandlerContext& cx, Request& req, const IpAddress& peer, const char* what) {
  if (peer_allowed(cx.cfg, peer)) return true;
  bump(cx.stats.forbidden_peers);
  log_every(LogKey::PeerDenied, req.tuple.client.ip,
            std::string(what) + " to " + peer.to_string() + " refused by peer policy (user '" + req.username + "')");
  cx.respond.error(req, ErrorCode::Forbidden);
  return false;
}

bool permission_room(HandlerContext& cx, Request& req, const Allocation& a, std::span<const IpAddress> peers) {
  if (cx.cfg.max_permissions == 0) return true;
  auto now = cx.clock.now();
  size_t fresh = 0;
  for (size_t i = 0; i < peers.size(); ++i) {
    if (a.has_permission(peers[i], now)) continue;
    bool repeated = false;  // the same peer twice in one request counts once
    for (size_t j = 0; j < i && !repeated; ++j) repeated = peers[j] == peers[i];
    fresh += !repeated;
  }
  if (cx.allocations.live_permissions(a) + fresh <= cx.cfg.max_permissions) return true;
  // RFC 8656 §10.2 / §19: a limit the request would cross is 508
  // (Insufficient Capacity); nothing of the request is installed.
  cx.stats.refuse(CpRefusal::PermissionQuota);
  log_every(LogKey::Quota, req.tuple.client.ip,
            "permission limit (" + std::to_string(cx.cfg.max_permissions) + ") reached on allocation " + a.info->id);
  cx.respond.error(req, ErrorCode::InsufficientCapacity);
  return false;
}

}  // namespace turn::cp
