// SPDX-License-Identifier: Apache-2.0
// The state schema shared by turn-control (writer) and turn-dataplane
// (reader): Redis key names and the field encoding of allocation,
// permission and channel records and of change-log events. docs/state.md
// describes the same schema for people. Pure C++: no hiredis here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/net/address.h"

namespace turn::state {

// Keys. <id> is "<instance>/<relay ip:port>", unique across a deployment.
inline constexpr std::string_view kAllocIndex = "dpturn:allocs";   // ZSET id -> expiry (Unix s)
inline constexpr std::string_view kEventStream = "dpturn:events";  // STREAM of changes
inline constexpr size_t kEventStreamMaxLen = 1000000;              // XADD MAXLEN ~
// HASH per data plane: its counters (name -> value, plus "updated" in Unix
// seconds), rewritten every second, expiring 10 s after the last write.
inline constexpr std::string_view kDataplanePrefix = "dpturn:dataplane:";
[[nodiscard]] std::string alloc_key(std::string_view id);        // HASH: the allocation record
[[nodiscard]] std::string permissions_key(std::string_view id);  // HASH: peer ip -> expiry
[[nodiscard]] std::string channels_key(std::string_view id);     // HASH: channel -> "peer expiry"
[[nodiscard]] std::string traffic_key(std::string_view id);      // HASH: counters (cp_*/dp_*)

using Fields = std::vector<std::pair<std::string, std::string>>;

struct AllocationRecord {
  std::string id;
  std::string instance;
  std::string transport;  // "udp", "tcp", "tls"
  SocketAddress client;
  SocketAddress server;
  SocketAddress relay;
  std::string username;
  std::string realm;
  uint64_t expires_s = 0;

  [[nodiscard]] Fields to_fields() const;
  // nullopt when a field is missing or malformed.
  [[nodiscard]] static std::optional<AllocationRecord> from_fields(const Fields& f);
};

struct ChannelRecord {
  uint16_t number = 0;
  SocketAddress peer;
  uint64_t expires_s = 0;
  [[nodiscard]] std::string value() const;  // "peer expiry"
  [[nodiscard]] static std::optional<ChannelRecord> parse(std::string_view number, std::string_view value);
};

// Change-log events (stream entries). Every event carries "type" and "id".
enum class EventType { Create, Refresh, Permission, Channel, Delete, Resync };
[[nodiscard]] std::string_view event_name(EventType t) noexcept;
[[nodiscard]] std::optional<EventType> event_type(std::string_view name) noexcept;

[[nodiscard]] std::optional<uint64_t> parse_u64(std::string_view s) noexcept;
[[nodiscard]] std::string_view field(const Fields& f, std::string_view name) noexcept;

}  // namespace turn::state
