// SPDX-License-Identifier: Apache-2.0
// ChannelBind (RFC 8656 §11.1-§11.2 and the rules of §12).
#include "common/log/log.h"
#include "common/stun/attributes.h"
#include "common/turn/channel_data.h"
#include "controlplane/server/handlers.h"

namespace turn::cp {

using stun::Attr;
using stun::ErrorCode;

void handle_channel_bind(HandlerContext& cx, Request& req) {
  const auto& m = req.msg;
  Allocation* a = own_allocation(cx, req);  // else 437 or 441, answered
  if (!a) return;
  if (a->tcp) return cx.respond.error(req, ErrorCode::BadRequest);  // RFC 6062 §5: no channels on TCP allocations
  const auto* ch_attr = m.find(Attr::ChannelNumber);
  const auto* peer_attr = m.find(Attr::XorPeerAddress);
  if (!ch_attr || !peer_attr) return cx.respond.error(req, ErrorCode::BadRequest);
  auto ch = stun::read_channel_number(m.value(*ch_attr));
  auto peer = stun::read_xor_address(m.value(*peer_attr), m.xor_mask());
  // §11.2: channel in 0x4000-0x4FFF, else 400 (0x4000-0x7FFF with legacy-channel-range, RFC 5766 §11).
  uint16_t max_channel = cx.cfg.legacy_channel_range ? kMaxLegacyChannel : kMaxChannel;
  if (!ch || !peer || *ch < kMinChannel || *ch > max_channel) {
    log_debug("ChannelBind 400: bad CHANNEL-NUMBER or XOR-PEER-ADDRESS");
    return cx.respond.error(req, ErrorCode::BadRequest);
  }
  if (!a->family_ok(peer->ip)) return cx.respond.error(req, ErrorCode::PeerAddressFamilyMismatch);
  // §11.2: the channel is not bound to another peer, and the peer not to
  // another channel; rebinding the same pair refreshes it.
  if (auto it = a->channels.find(*ch); it != a->channels.end() && it->second.peer != *peer) {
    log_debug("ChannelBind 400: channel " + std::to_string(*ch) + " is bound to " + it->second.peer.to_string());
    return cx.respond.error(req, ErrorCode::BadRequest);
  }
  if (auto it = a->channel_by_peer.find(*peer); it != a->channel_by_peer.end() && it->second != *ch) {
    log_debug("ChannelBind 400: peer " + peer->to_string() + " is bound to channel " + std::to_string(it->second));
    return cx.respond.error(req, ErrorCode::BadRequest);
  }
  if (!peer_permitted(cx, req, peer->ip, "ChannelBind")) return;
  // Binding installs a permission too (§12.2), under the same limit.
  if (!permission_room(cx, req, *a, std::span<const IpAddress>(&peer->ip, 1))) return;
  cx.allocations.bind_channel(*a, *ch, *peer);
  cx.allocations.publish(*a);
  auto b = cx.respond.start(req, stun::Class::SuccessResponse);
  cx.respond.finish(req, b, true);
}

}  // namespace turn::cp
