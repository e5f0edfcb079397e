// SPDX-License-Identifier: Apache-2.0
// Control-plane counters. One Stats per event-loop thread, written only by
// that thread (relaxed atomics so the admin thread can read them without
// tearing); the admin API sums them. Reasons are declared once as X-macros.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string_view>

namespace turn::cp {

#define TURN_CP_DROP_REASONS(X)                                                                                       \
  X(MalformedStun, "malformed_stun", "STUN message failed to parse")                                                  \
  X(TooManyAttributes, "too_many_attributes", "STUN message with more attributes than kept (requests: answered 400)") \
  X(MalformedChannelData, "malformed_channel_data", "bad ChannelData frame")                                          \
  X(ReservedChannel, "reserved_channel", "first byte 0x50-0x7F")                                                      \
  X(NotTurn, "not_turn", "neither STUN nor ChannelData")                                                              \
  X(NoAllocation, "no_allocation", "no allocation for the 5-tuple")                                                   \
  X(UnboundChannel, "unbound_channel", "ChannelData for an unbound channel")                                          \
  X(NoPermission, "no_permission", "no permission for the peer address")                                              \
  X(PeerDenied, "peer_denied", "peer address refused by policy")                                                      \
  X(BadIndication, "bad_indication", "Send indication without peer or data")                                          \
  X(UnexpectedClass, "unexpected_class", "response or indication we do not take")                                     \
  X(RateLimited, "rate_limited", "request over the per-source rate limit")                                            \
  X(UnauthRateLimited, "unauth_rate_limited", "401 over the per-source limit")                                        \
  X(ReflectionLimited, "reflection_limited", "unauthenticated UDP answer beyond the bytes its source sent (+ burst)") \
  X(BandwidthCap, "bandwidth_cap", "over the allocation's max-bps")                                                   \
  X(SendFailed, "send_failed", "the kernel refused a send")                                                           \
  X(StreamBacklog, "stream_backlog", "TCP/TLS client not reading; dropped")                                           \
  X(FamilyMismatch, "family_mismatch", "peer family differs from the relay")                                          \
  X(UnknownRequiredAttribute, "unknown_required_attribute",                                                           \
    "indication with an unknown comprehension-required attribute")                                                    \
  X(FrameTooLarge, "frame_too_large", "peer datagram too large for a Data indication / client datagram")              \
  X(TooBigForPath, "too_big_for_path", "over the path MTU with DF, or over what UDP carries")                         \
  X(TcpAllocation, "tcp_allocation", "Send indication or ChannelData for an RFC 6062 TCP allocation")                 \
  X(TcpPeerRefused, "tcp_peer_refused", "TCP peer connection to a relayed address closed: no permission or too many")

enum class CpDrop : uint8_t {
#define TURN_X(name, key, text) name,
  TURN_CP_DROP_REASONS(TURN_X)
#undef TURN_X
      Count
};

inline constexpr std::array<std::string_view, static_cast<size_t>(CpDrop::Count)> kCpDropKeys = {
#define TURN_X(name, key, text) key,
    TURN_CP_DROP_REASONS(TURN_X)
#undef TURN_X
};

// Requests answered with an error because a limit was reached (beyond the
// quota and policy counters of Stats), by reason.
#define TURN_CP_REFUSAL_REASONS(X) \
  X(PermissionQuota, "permission_quota", "CreatePermission/ChannelBind over max-permissions-per-allocation (508)")

enum class CpRefusal : uint8_t {
#define TURN_X(name, key, text) name,
  TURN_CP_REFUSAL_REASONS(TURN_X)
#undef TURN_X
      Count
};

inline constexpr std::array<std::string_view, static_cast<size_t>(CpRefusal::Count)> kCpRefusalKeys = {
#define TURN_X(name, key, text) key,
    TURN_CP_REFUSAL_REASONS(TURN_X)
#undef TURN_X
};

using Counter = std::atomic<uint64_t>;

inline void bump(Counter& c, uint64_t n = 1) noexcept {
  c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

struct Stats {
  // Requests by method (index = TURN method number, 0..15) and outcome.
  std::array<Counter, 16> requests{};
  std::array<Counter, 16> successes{};
  std::array<Counter, 16> errors{};
  Counter auth_failures{};    // 401 after a MESSAGE-INTEGRITY was checked
  Counter stale_nonces{};     // 438
  Counter quota_refusals{};   // 486
  Counter forbidden_peers{};  // 403
  // Relayed traffic through this (kernel) path.
  Counter packets_to_peer{}, bytes_to_peer{};
  Counter packets_to_client{}, bytes_to_client{};
  Counter icmp_to_client{};  // Data indications with ICMP (RFC 8656 §11.5)
  std::array<Counter, static_cast<size_t>(CpDrop::Count)> drops{};
  std::array<Counter, static_cast<size_t>(CpRefusal::Count)> refusals{};

  void drop(CpDrop r) noexcept { bump(drops[static_cast<size_t>(r)]); }
  void refuse(CpRefusal r) noexcept { bump(refusals[static_cast<size_t>(r)]); }
};

}  // namespace turn::cp
