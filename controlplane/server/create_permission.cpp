// SPDX-License-Identifier: Apache-2.0
// CreatePermission (RFC 8656 §9.1-§9.2).
#include "common/stun/attributes.h"
#include "controlplane/server/handlers.h"

namespace turn::cp {

using stun::Attr;
using stun::ErrorCode;

void handle_create_permission(HandlerContext& cx, Request& req) {
  const auto& m = req.msg;
  Allocation* a = own_allocation(cx, req);  // else 437 or 441, answered
  if (!a) return;
  // §9.2: one or more XOR-PEER-ADDRESS; all must be acceptable or none is installed.
  std::array<IpAddress, stun::MessageView::kMaxAttributes> peers;
  size_t n = 0;
  for (const auto& attr : m.attributes()) {
    if (attr.type != static_cast<uint16_t>(Attr::XorPeerAddress)) continue;
    auto peer = stun::read_xor_address(m.value(attr), m.xor_mask());
    if (!peer) return cx.respond.error(req, ErrorCode::BadRequest);
    // RFC 6156 §6.1: a peer of a family the allocation has no relayed address of: 443.
    if (!a->family_ok(peer->ip)) return cx.respond.error(req, ErrorCode::PeerAddressFamilyMismatch);
    if (!peer_permitted(cx, req, peer->ip, "CreatePermission")) return;
    peers[n++] = peer->ip;
  }
  if (n == 0) return cx.respond.error(req, ErrorCode::BadRequest);
  if (!permission_room(cx, req, *a, std::span<const IpAddress>(peers.data(), n))) return;
  for (size_t i = 0; i < n; ++i) cx.allocations.permit(*a, peers[i]);
  cx.allocations.publish(*a);
  auto b = cx.respond.start(req, stun::Class::SuccessResponse);
  cx.respond.finish(req, b, true);
}

}  // namespace turn::cp
