// SPDX-License-Identifier: Apache-2.0
// The typed state contract between turn-control, turn-dataplane and any
// reader of the store (docs/state.md): every record and event with its
// field names, encoded and decoded here and nowhere else. Keys: keys.h.
// Pure C++: no hiredis here (snapshot.h reads them from Redis).
//
// Decoders never trust the store: a missing or malformed field gives
// nullopt and a reason (`why`), which readers count as a drop.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/net/address.h"
#include "common/net/transport.h"
#include "common/state/keys.h"

namespace turn::state {

using Fields = std::vector<std::pair<std::string, std::string>>;
// The same, pointing into a reply that outlives it (bulk readers: no copies).
using FieldViews = std::vector<std::pair<std::string_view, std::string_view>>;

[[nodiscard]] std::optional<uint64_t> parse_u64(std::string_view s) noexcept;
// The value of `name`, or "" when absent.
[[nodiscard]] std::string_view field(const Fields& f, std::string_view name) noexcept;
[[nodiscard]] std::string_view field(const FieldViews& f, std::string_view name) noexcept;

// ---- allocations -------------------------------------------------------------
// Transport: common/net/transport.h

// dpturn:alloc:<id>
struct AllocationRecord {
  std::string id;
  std::string instance;
  Transport transport = Transport::Udp;
  SocketAddress client;  // the client's 5-tuple: client, server (the listener it reached)
  SocketAddress server;
  SocketAddress relay;  // the bound relayed transport address
  // A dual-stack allocation's second relayed address (RFC 8656 §7.2,
  // ADDITIONAL-ADDRESS-FAMILY: always IPv6, and then `relay` is IPv4).
  // Field `relay6`, absent for every other allocation; port 0 here: none.
  SocketAddress relay6;
  [[nodiscard]] bool dual() const noexcept { return relay6.port != 0; }
  std::string username;
  std::string realm;
  uint64_t expires_s = 0;  // Unix seconds

  [[nodiscard]] Fields to_fields() const;
  [[nodiscard]] static std::optional<AllocationRecord> from_fields(const Fields& f, std::string* why = nullptr);
  [[nodiscard]] static std::optional<AllocationRecord> from_fields(const FieldViews& f, std::string* why = nullptr);
  bool operator==(const AllocationRecord&) const = default;
};

// A permission (RFC 8656 §9: per peer IP), one field of dpturn:alloc:<id>:
// "perm:<peer ip>" -> "<expiry>".
struct PermissionRecord {
  static constexpr std::string_view kFieldPrefix = "perm:";
  IpAddress peer;
  uint64_t expires_s = 0;
  [[nodiscard]] std::string field_name() const { return std::string(kFieldPrefix) + peer.to_string(); }
  [[nodiscard]] std::string value() const { return std::to_string(expires_s); }
  // From the peer's text and the value (events carry them apart).
  [[nodiscard]] static std::optional<PermissionRecord> parse(std::string_view peer, std::string_view value);
  bool operator==(const PermissionRecord&) const = default;
};

// A channel binding (RFC 8656 §12), one field of dpturn:alloc:<id>:
// "chan:<number>" -> "<peer> <expiry>".
struct ChannelRecord {
  static constexpr std::string_view kFieldPrefix = "chan:";
  uint16_t number = 0;  // 0x4000-0x7FFF (RFC 8656 §12 / RFC 5766's wider range)
  SocketAddress peer;
  uint64_t expires_s = 0;
  [[nodiscard]] std::string field_name() const { return std::string(kFieldPrefix) + std::to_string(number); }
  [[nodiscard]] std::string value() const;
  // From the number's text and the value.
  [[nodiscard]] static std::optional<ChannelRecord> parse(std::string_view number, std::string_view value);
  bool operator==(const ChannelRecord&) const = default;
};

// dpturn:alloc:<id> as a whole: the record, its permissions and channels.
struct AllocationState {
  AllocationRecord record;
  std::vector<PermissionRecord> permissions;
  std::vector<ChannelRecord> channels;
  [[nodiscard]] Fields to_fields() const;
  // Permissions and channels whose expiry is before `live_from_s` are left
  // out (0: all). A malformed permission or channel field is skipped and
  // counted in *malformed; a malformed record gives nullopt.
  [[nodiscard]] static std::optional<AllocationState> from_fields(const FieldViews& f, uint64_t live_from_s,
                                                                  uint64_t* malformed = nullptr,
                                                                  std::string* why = nullptr);
  bool operator==(const AllocationState&) const = default;
};

// ---- change log: dpturn:events:<instance> --------------------------------------
// Every event states the new value, never a difference: applying one twice
// is harmless. Expiry times are absolute.
enum class EventType { Create, Refresh, Permission, Channel, Delete, Resync };
[[nodiscard]] std::string_view event_name(EventType t) noexcept;
[[nodiscard]] std::optional<EventType> event_type(std::string_view name) noexcept;

struct Event {
  EventType type = EventType::Create;
  std::string id;               // the allocation; for Resync, the instance
  AllocationRecord record;      // Create
  uint64_t expires_s = 0;       // Refresh, Permission, Channel
  PermissionRecord permission;  // Permission
  ChannelRecord channel;        // Channel

  [[nodiscard]] static Event create(const AllocationRecord& r);
  [[nodiscard]] static Event refresh(std::string id, uint64_t expires_s);
  [[nodiscard]] static Event permission_installed(std::string id, const PermissionRecord& p);
  [[nodiscard]] static Event channel_bound(std::string id, const ChannelRecord& c);
  [[nodiscard]] static Event deleted(std::string id);
  [[nodiscard]] static Event resync(std::string instance);

  [[nodiscard]] Fields to_fields() const;
  [[nodiscard]] static std::optional<Event> from_fields(const Fields& f, std::string* why = nullptr);
  bool operator==(const Event&) const = default;
};

// ---- traffic: dpturn:alloc:<id>:traffic ------------------------------------------
struct Traffic {
  uint64_t packets_to_peer = 0, bytes_to_peer = 0, packets_to_client = 0, bytes_to_client = 0;
  bool operator==(const Traffic&) const = default;
};
enum class TrafficPath { Kernel, Fast };  // cp_* written by turn-control (HSET), dp_* by data planes (HINCRBY)
struct TrafficRecord {
  Traffic kernel;
  Traffic fast;
  // Field names of one path, in Traffic's member order.
  [[nodiscard]] static const std::array<std::string_view, 4>& field_names(TrafficPath p) noexcept;
  [[nodiscard]] static Fields fields(TrafficPath p, const Traffic& t);
  [[nodiscard]] static TrafficRecord from_fields(const Fields& f);  // absent fields: 0
  bool operator==(const TrafficRecord&) const = default;
};

// ---- a data plane's status: dpturn:dataplane:<instance> ---------------------------
struct DataplaneWorker {
  uint64_t rx_packets = 0, busy_polls = 0, idle_polls = 0, busy_cycles = 0, total_cycles = 0;
  bool operator==(const DataplaneWorker&) const = default;
};
using NamedCounters = std::vector<std::pair<std::string, uint64_t>>;
struct DataplaneStatus {
  std::string instance;    // from the key
  uint64_t updated_s = 0;  // Unix seconds of the last write
  uint64_t rx_packets = 0, tx_packets = 0;
  uint64_t allocations = 0;  // in its tables
  uint64_t sync_lag_ms = 0;  // age of the last applied event
  uint64_t sync_events = 0;  // events applied
  uint64_t snapshots = 0;    // snapshots taken (one per (re)connection)
  uint64_t disconnects = 0;  // times it lost the store (its tables stayed, new flows went to the kernel path)
  uint64_t bad_events = 0;   // events or records that did not decode
  uint64_t table_full = 0;
  uint64_t packets_to_peer = 0, packets_to_client = 0;  // relayed on the fast path (hairpin counts in both)
  uint64_t bytes_to_peer = 0, bytes_to_client = 0;      // payload, from the per-allocation counters
  uint64_t rx_ring_drops = 0;  // frames lost before the workers saw them (af_packet tp_drops, imissed)
  uint64_t tsc_hz = 0;
  NamedCounters paths, drops, punts;  // by the data plane's reason names (dataplane/stats)
  std::vector<DataplaneWorker> workers;

  [[nodiscard]] Fields to_fields() const;
  [[nodiscard]] static std::optional<DataplaneStatus> from_fields(std::string instance, const Fields& f,
                                                                  std::string* why = nullptr);
  bool operator==(const DataplaneStatus&) const = default;
};

// ---- fleet membership: dpturn:member:<instance> ------------------------------------
enum class MemberState { Serving, Draining };
[[nodiscard]] std::string_view member_state_name(MemberState s) noexcept;

struct ListenAddress {
  Transport transport = Transport::Udp;
  SocketAddress address;                        // client-facing (what ALTERNATE-SERVER names)
  [[nodiscard]] std::string to_string() const;  // "udp 1.2.3.4:3478"
  bool operator==(const ListenAddress&) const = default;
};

struct MembershipRecord {
  std::string instance;
  MemberState state = MemberState::Serving;
  bool redirects = false;  // it sends every new Allocate elsewhere (alternate-server): never a redirect target
  std::vector<ListenAddress> listen;
  std::vector<IpAddress> relay;
  uint64_t allocations = 0;
  uint64_t updated_ms = 0;  // Unix milliseconds of the last refresh
  uint64_t started_s = 0;
  std::string version;

  [[nodiscard]] Fields to_fields() const;
  [[nodiscard]] static std::optional<MembershipRecord> from_fields(const Fields& f, std::string* why = nullptr);
  bool operator==(const MembershipRecord&) const = default;
};

}  // namespace turn::state
