// SPDX-License-Identifier: Apache-2.0
// The request handlers of RFC 8489 and RFC 8656, as free functions over a
// Request and what serves it: each reads its request, asks the allocation
// manager, and answers through the responder. One file per method:
// binding and the shared steps in handlers.cpp, authenticate.cpp,
// allocate.cpp, refresh.cpp, create_permission.cpp, channel_bind.cpp.
// (RFC 6062's Connect and ConnectionBind stay with TurnServer, whose
// thread holds the TCP peer connections they make and adopt.)
#pragma once

#include <span>

#include "controlplane/config/config.h"
#include "controlplane/net/clock.h"
#include "controlplane/server/allocation_manager.h"
#include "controlplane/server/responder.h"
#include "controlplane/server/shared_state.h"
#include "controlplane/server/stats.h"

namespace turn::cp {

// What a handler works with: one per TurnServer thread.
struct HandlerContext {
  const Config& cfg;
  SharedState& shared;
  AllocationManager& allocations;
  Responder& respond;
  Stats& stats;
  const Clock& clock;
};

// RFC 8489 §9.2.4 (long-term credentials): true with req.username and
// req.key set; false once answered (401, 438 or 400).
[[nodiscard]] bool authenticate(HandlerContext& cx, Request& req);

void handle_binding(HandlerContext& cx, Request& req);
void handle_allocate(HandlerContext& cx, Request& req);
void handle_refresh(HandlerContext& cx, Request& req);
void handle_create_permission(HandlerContext& cx, Request& req);
void handle_channel_bind(HandlerContext& cx, Request& req);

// ---- steps more than one handler takes

// The allocation a Refresh, CreatePermission, ChannelBind or Connect is
// about: the one of the request's 5-tuple, else 437 (RFC 8656 §7.3, §9.2,
// §11.2), and only for the user who made it, else 441 (§5). nullptr once
// answered.
[[nodiscard]] Allocation* own_allocation(HandlerContext& cx, Request& req);
// The peer policy (peer_policy.h) for a request's peer: false once
// answered 403, counted and logged with `what` ("CreatePermission", ...).
[[nodiscard]] bool peer_permitted(HandlerContext& cx, Request& req, const IpAddress& peer, const char* what);
// max-permissions-per-allocation: room for `peers` (those not yet
// permitted)? If not, answers 508 and counts it; false then.
[[nodiscard]] bool permission_room(HandlerContext& cx, Request& req, const Allocation& a,
                                   std::span<const IpAddress> peers);

}  // namespace turn::cp
