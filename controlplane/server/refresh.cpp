// SPDX-License-Identifier: Apache-2.0
// Refresh (RFC 8656 §7.3-§7.4): extend or (lifetime 0) delete.
#include <algorithm>

#include "common/stun/attributes.h"
#include "controlplane/server/handlers.h"

namespace turn::cp {

using stun::Attr;
using stun::ErrorCode;

void handle_refresh(HandlerContext& cx, Request& req) {
  const auto& m = req.msg;
  Allocation* a = own_allocation(cx, req);  // else 437 or 441, answered
  if (!a) return;
  // RFC 6156 §5.2 / RFC 8656 §7.3: REQUESTED-ADDRESS-FAMILY must match the allocation.
  if (const auto* f = m.find(Attr::RequestedAddressFamily)) {
    auto fam = stun::read_address_family(m.value(*f));
    // A dual-stack allocation has both families; both are refreshed (and
    // deleted) together.
    if (!fam || (*fam != a->info->relay.ip.family() && !(a->dual() && *fam == Family::V6)))
      return cx.respond.error(req, ErrorCode::PeerAddressFamilyMismatch);
  }
  // §7.3: the requested lifetime within [default, max]; 0 deletes.
  uint32_t lifetime = cx.cfg.default_allocate_lifetime_s;
  if (const auto* lt = m.find(Attr::Lifetime)) {
    auto v = stun::read_u32(m.value(*lt));
    if (!v) return cx.respond.error(req, ErrorCode::BadRequest);
    lifetime = *v == 0 ? 0 : std::max(cx.cfg.default_allocate_lifetime_s, std::min(*v, cx.cfg.max_allocate_lifetime_s));
  }
  auto b = cx.respond.start(req, stun::Class::SuccessResponse);
  b.add_u32(Attr::Lifetime, lifetime);
  if (lifetime == 0) {
    // Released before the answer leaves: a client that reads its success
    // response finds the allocation gone from the registry and /metrics.
    cx.allocations.destroy(*a, "refreshed with lifetime 0");
    cx.respond.finish(req, b, true);
    return;
  }
  cx.respond.finish(req, b, true);
  cx.allocations.refresh(*a, lifetime);
}

}  // namespace turn::cp
