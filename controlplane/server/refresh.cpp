// SPDX-License-Identifier: Apache-2.0
// Refresh (RFC 8656 §7.3-§7.4): extend or (lifetime 0) delete.
#include "common/stun/attributes.h"
#include "controlplane/server/turn_server.h"

namespace turn::cp {

using stun::Attr;
using stun::ErrorCode;

void TurnServer::handle_refresh(Request& req) {
  const auto& m = req.msg;
  Allocation* a = own_allocation(req);  // else 437 or 441, answered
  if (!a) return;
  // RFC 6156 §5.2 / RFC 8656 §7.3: REQUESTED-ADDRESS-FAMILY must match the allocation.
  if (const auto* f = m.find(Attr::RequestedAddressFamily)) {
    auto fam = stun::read_address_family(m.value(*f));
    // A dual-stack allocation has both families; both are refreshed (and
    // deleted) together.
    if (!fam || (*fam != a->info->relay.ip.family() && !(a->dual() && *fam == Family::V6)))
      return send_error(req, ErrorCode::PeerAddressFamilyMismatch);
  }
  uint32_t lifetime = cfg_.default_allocate_lifetime_s;
  if (const auto* lt = m.find(Attr::Lifetime)) {
    auto v = stun::read_u32(m.value(*lt));
    if (!v) return send_error(req, ErrorCode::BadRequest);
    lifetime = *v == 0 ? 0 : std::max(cfg_.default_allocate_lifetime_s, std::min(*v, cfg_.max_allocate_lifetime_s));
  }
  auto b = start_response(req, stun::Class::SuccessResponse);
  b.add_u32(Attr::Lifetime, lifetime);
  if (lifetime == 0) {
    // Released before the answer leaves: a client that reads its success
    // response finds the allocation gone from the registry and /metrics.
    destroy(*a, "refreshed with lifetime 0");
    finish_and_send(req, b, true);
    return;
  }
  finish_and_send(req, b, true);
  a->expires = loop_.now() + std::chrono::seconds(lifetime);
  a->info->expires_s = loop_.now_s() + lifetime;
  for (auto* s : shared_.sinks) s->allocation_refreshed(a->info);
}

}  // namespace turn::cp
