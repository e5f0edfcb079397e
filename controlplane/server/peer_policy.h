// SPDX-License-Identifier: Apache-2.0
// Peer policy: which peer addresses an allocation may relay to
// (CreatePermission, ChannelBind). TURN is an open door into the network
// it sits in; RFC 8656 §21 asks the operator to close what should not be
// reached through it, and this does it by default (DESIGN.md).
#pragma once

#include "common/net/address.h"
#include "controlplane/config/config.h"

namespace turn::cp {

// allowed-peer-ip ranges first (an operator who lists a range means it),
// then denied-peer-ip, then the built-in denials (loopback unless
// allow-loopback-peers, link-local and cloud metadata, multicast and
// reserved, the server's own non-relay addresses, and the IPv6 forms that
// carry one of those IPv4 addresses).
[[nodiscard]] bool peer_allowed(const Config& cfg, const IpAddress& peer);

}  // namespace turn::cp
