// SPDX-License-Identifier: Apache-2.0
// Every Redis key of dpturn's shared state (docs/state.md), spelled once.
// turn-control writes allocation records and events; turn-dataplane reads
// them and writes traffic and its status; both publish nothing else.
//
//   dpturn:instances                 ZSET instance -> last seen (Unix s): the fleet index
//   dpturn:member:<instance>         HASH MembershipRecord, PEXPIRE kMemberTtlMs (refreshed every kMemberRefreshMs)
//   dpturn:allocs:<instance>         ZSET allocation id -> expiry (Unix s): one instance's live allocations
//   dpturn:events:<instance>         STREAM of Event: one instance's change log (XADD MAXLEN ~)
//   dpturn:alloc:<id>                HASH AllocationRecord, plus one field per permission
//                                    ("perm:<peer ip>" -> expiry) and per channel
//                                    ("chan:<number>" -> "<peer> <expiry>"): one key, one
//                                    HGETALL per allocation for a snapshot
//   dpturn:alloc:<id>:traffic        HASH TrafficRecord (cp_* by turn-control, dp_* by turn-dataplane)
//   dpturn:dataplane:<instance>      HASH DataplaneStatus, EXPIRE kDataplaneStatusTtlS
//   dpturn:turn-servers              HASH the admin API's TURN server registry (id -> JSON)
//   dpturn:drain-request:<instance>  STRING "drain", "drain force" or "undrain", EX 60: a
//                                    drain asked of the instance through another one's API
//
// <id> is "<instance>/<relay ip:port>". Each data plane loads and follows
// only its own instance's index and stream: its tables and sync work grow
// with its host, not with the fleet.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace turn::state {

inline constexpr std::string_view kInstanceIndex = "dpturn:instances";
inline constexpr std::string_view kTurnServers = "dpturn:turn-servers";
// Per instance, XADD MAXLEN ~: ~10 MB of store memory at most; a data plane
// that falls further behind (its last id trimmed away) takes a snapshot.
inline constexpr size_t kEventStreamMaxLen = 100000;
inline constexpr uint64_t kRecordGraceS = 60;  // records outlive their expiry this long
// Membership is the failover fence (docs/fleet.md "Host failover"): a dead
// instance is adopted only once its record expired. Refreshed every 0.5 s
// (the writer's loop wakes at least every 0.2 s, so 0.5-0.7 s apart) with
// 1.5 s to live: two refreshes can be late before a live instance looks
// dead, and a dead one is fenced 0.8-1.5 s after its last write, less than
// keepalived's ~1.8 s to notice a dead host (advert_int 0.5).
inline constexpr uint64_t kMemberRefreshMs = 500;
inline constexpr uint64_t kMemberTtlMs = 1500;
inline constexpr uint64_t kDataplaneStatusTtlS = 10;  // data-plane status: rewritten every 1 s

[[nodiscard]] std::string member_key(std::string_view instance);
[[nodiscard]] std::string alloc_index_key(std::string_view instance);
[[nodiscard]] std::string event_stream_key(std::string_view instance);
[[nodiscard]] std::string dataplane_key(std::string_view instance);
[[nodiscard]] std::string drain_request_key(std::string_view instance);
inline constexpr uint64_t kDrainRequestTtlS = 60;
inline constexpr std::string_view kDataplanePrefix = "dpturn:dataplane:";  // SCAN MATCH prefix*
inline constexpr std::string_view kMemberPrefix = "dpturn:member:";

[[nodiscard]] std::string alloc_key(std::string_view id);    // HASH AllocationRecord + permissions + channels
[[nodiscard]] std::string traffic_key(std::string_view id);  // HASH TrafficRecord

// An instance id names one host's turn-control and turn-dataplane in the
// store (both must agree): 1-64 of [A-Za-z0-9._-] (it prefixes allocation
// ids, "<instance>/<relay>", and key names).
[[nodiscard]] bool valid_instance_id(std::string_view id) noexcept;
inline constexpr std::string_view kInstanceIdRule = "1-64 characters of A-Z a-z 0-9 . _ -";

// The allocation id and the instance it belongs to.
[[nodiscard]] std::string allocation_id(std::string_view instance, std::string_view relay);
[[nodiscard]] std::string_view instance_of(std::string_view id) noexcept;  // "" if malformed

// coturn's allocation status keys (docs/state.md "coturn compatibility"):
// turn/realm/<realm>/user/<user>/allocation/<id>, + "/status", "/total_traffic".
// (coturn's user database keys belong to turn-control alone: controlplane/sync/redis_userdb.cpp.)
[[nodiscard]] std::string coturn_allocation_prefix(std::string_view realm, std::string_view user, std::string_view id);

}  // namespace turn::state
