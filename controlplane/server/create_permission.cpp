// SPDX-License-Identifier: Apache-2.0
// CreatePermission (RFC 8656 §9.1-§9.2).
#include "common/stun/attributes.h"
#include "common/log/log.h"
#include "controlplane/server/turn_server.h"

namespace turn::cp {

using stun::Attr;
using stun::ErrorCode;

void TurnServer::handle_create_permission(Request& req) {
  const auto& m = req.msg;
  Allocation* a = own_allocation(req);  // else 437 or 441, answered
  if (!a) return;
  // §9.2: one or more XOR-PEER-ADDRESS; all must be acceptable or none is installed.
  std::array<IpAddress, stun::MessageView::kMaxAttributes> peers;
  size_t n = 0;
  for (const auto& attr : m.attributes()) {
    if (attr.type != static_cast<uint16_t>(Attr::XorPeerAddress)) continue;
    auto peer = stun::read_xor_address(m.value(attr), m.xor_mask());
    if (!peer) return send_error(req, ErrorCode::BadRequest);
    if (!a->family_ok(peer->ip)) return send_error(req, ErrorCode::PeerAddressFamilyMismatch);  // RFC 6156 §6.1 (443)
    if (!peer_allowed(peer->ip)) {
      bump(stats_.forbidden_peers);
      log_every(
          LogKey::PeerDenied, req.tuple.client.ip,
          "CreatePermission to " + peer->ip.to_string() + " refused by peer policy (user '" + req.username + "')");
      return send_error(req, ErrorCode::Forbidden);
    }
    peers[n++] = peer->ip;
  }
  if (n == 0) return send_error(req, ErrorCode::BadRequest);
  if (!permission_room(req, *a, std::span<const IpAddress>(peers.data(), n))) return;
  for (size_t i = 0; i < n; ++i) install_permission(*a, peers[i]);
  publish_permissions(*a);
  auto b = start_response(req, stun::Class::SuccessResponse);
  finish_and_send(req, b, true);
}

}  // namespace turn::cp
