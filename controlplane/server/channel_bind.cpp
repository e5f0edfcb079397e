// SPDX-License-Identifier: Apache-2.0
// ChannelBind (RFC 8656 §11.1-§11.2 and the rules of §12).
#include "common/stun/attributes.h"
#include "common/turn/channel_data.h"
#include "common/log/log.h"
#include "controlplane/server/turn_server.h"

namespace turn::cp {

using stun::Attr;
using stun::ErrorCode;

void TurnServer::handle_channel_bind(Request& req) {
  const auto& m = req.msg;
  Allocation* a = own_allocation(req);  // else 437 or 441, answered
  if (!a) return;
  if (a->tcp) return send_error(req, ErrorCode::BadRequest);  // RFC 6062 §5: no channels on TCP allocations
  const auto* ch_attr = m.find(Attr::ChannelNumber);
  const auto* peer_attr = m.find(Attr::XorPeerAddress);
  if (!ch_attr || !peer_attr) return send_error(req, ErrorCode::BadRequest);
  auto ch = stun::read_channel_number(m.value(*ch_attr));
  auto peer = stun::read_xor_address(m.value(*peer_attr), m.xor_mask());
  // §11.2: channel in 0x4000-0x4FFF, else 400 (0x4000-0x7FFF with legacy-channel-range, RFC 5766 §11).
  uint16_t max_channel = cfg_.legacy_channel_range ? kMaxLegacyChannel : kMaxChannel;
  if (!ch || !peer || *ch < kMinChannel || *ch > max_channel) {
    log_debug("ChannelBind 400: bad CHANNEL-NUMBER or XOR-PEER-ADDRESS");
    return send_error(req, ErrorCode::BadRequest);
  }
  if (!a->family_ok(peer->ip)) return send_error(req, ErrorCode::PeerAddressFamilyMismatch);
  // §11.2: the channel is not bound to another peer, and the peer not to
  // another channel; rebinding the same pair refreshes it.
  if (auto it = a->channels.find(*ch); it != a->channels.end() && it->second.peer != *peer) {
    log_debug("ChannelBind 400: channel " + std::to_string(*ch) + " is bound to " + it->second.peer.to_string());
    return send_error(req, ErrorCode::BadRequest);
  }
  if (auto it = a->channel_by_peer.find(*peer); it != a->channel_by_peer.end() && it->second != *ch) {
    log_debug("ChannelBind 400: peer " + peer->to_string() + " is bound to channel " + std::to_string(it->second));
    return send_error(req, ErrorCode::BadRequest);
  }
  if (!peer_allowed(peer->ip)) {
    bump(stats_.forbidden_peers);
    log_every(LogKey::PeerDenied, req.tuple.client.ip,
              "ChannelBind to " + peer->ip.to_string() + " refused by peer policy (user '" + req.username + "')");
    return send_error(req, ErrorCode::Forbidden);
  }
  // Binding installs a permission too (§12.2), under the same limit.
  if (!permission_room(req, *a, std::span<const IpAddress>(&peer->ip, 1))) return;
  TimePoint exp = loop_.now() + std::chrono::seconds(cfg_.channel_lifetime_s);
  a->channels[*ch] = Channel{*peer, exp};
  a->channel_by_peer[*peer] = *ch;
  // §11.2: binding a channel also installs or refreshes the permission.
  install_permission(*a, peer->ip);
  // §12: the channel belongs to the relayed address of the peer's family
  // (a dual-stack allocation's IPv6 half for an IPv6 peer, §7.2).
  for (auto* s : shared_.sinks) s->channel_bound(a->info, *ch, *peer, wall_expiry(exp));
  publish_permissions(*a);
  auto b = start_response(req, stun::Class::SuccessResponse);
  finish_and_send(req, b, true);
}

}  // namespace turn::cp
