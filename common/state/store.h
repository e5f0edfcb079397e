// SPDX-License-Identifier: Apache-2.0
// Reading and writing the state contract (records.h, keys.h) over the one
// Redis client (common/redis/client.h): the single snapshot reader, the
// stream tail, and the commands that write each record, used by
// turn-control, turn-dataplane and the admin views alike.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/redis/client.h"
#include "common/state/records.h"

namespace turn::state {

// ---- reading ---------------------------------------------------------------------

struct Snapshot {
  std::string stream_position = "0-0";  // tail the instance's stream after this id
  std::vector<AllocationState> allocations;
  uint64_t malformed = 0;   // records that did not decode: skipped and counted
  std::string first_error;  // why the first of them did not
};

// One instance's live allocations (expiry >= now_s) with their live
// permissions and channels: the stream position first, then the index, then
// one HGETALL per allocation, pipelined `batch` at a time. Throws redis::Error.
[[nodiscard]] Snapshot read_snapshot(redis::Client& c, std::string_view instance, uint64_t now_s, size_t batch = 1024);

// The same, handing each allocation to `visit` as it is decoded, without
// keeping them (a data plane's 100k-allocation resync: no copies of the
// replies, buffers reused). Returns the Snapshot's figures, allocations empty.
using SnapshotVisitor = std::function<void(const AllocationState&)>;
Snapshot visit_snapshot(redis::Client& c, std::string_view instance, uint64_t now_s, const SnapshotVisitor& visit,
                        size_t batch = 1024);

struct StreamEntry {
  std::string id;  // the stream id: "<ms>-<seq>"
  Fields fields;
};
// XREAD after `after` (blocking up to block_ms, 0 = do not block).
[[nodiscard]] std::vector<StreamEntry> read_events(redis::Client& c, std::string_view instance,
                                                   const std::string& after, size_t count, int block_ms);

// True when entries after `after` may have been trimmed from the instance's
// stream (its first entry is newer): a reader must take a snapshot again.
[[nodiscard]] bool stream_gap(redis::Client& c, std::string_view instance, const std::string& after);

// Instances in the fleet index seen within `max_age_s` (the fleet-wide views).
[[nodiscard]] std::vector<std::string> read_instances(redis::Client& c, uint64_t now_s, uint64_t max_age_s);
// Live membership records (those whose key has not expired) of the
// instances in the fleet index. Malformed ones are skipped and counted in
// *malformed. No SCAN: the index names the keys.
[[nodiscard]] std::vector<MembershipRecord> read_members(redis::Client& c, uint64_t now_s,
                                                         uint64_t* malformed = nullptr);
// Every data plane's status (of the instances in the fleet index).
[[nodiscard]] std::vector<DataplaneStatus> read_dataplanes(redis::Client& c, uint64_t now_s,
                                                           uint64_t* malformed = nullptr);
// Traffic of each id (pipelined, `batch` at a time); absent: zeros.
[[nodiscard]] std::vector<TrafficRecord> read_traffic(redis::Client& c, const std::vector<std::string>& ids,
                                                      size_t batch = 1000);

// ---- writing (appended to the client's pipeline; the caller collects replies) ----

// The records and the stream entry of one event of `instance`. Records
// expire kRecordGraceS after the allocation (alloc_expires_s) would.
void append_event(redis::Client& c, std::string_view instance, const Event& e, uint64_t alloc_expires_s);
// turn-control's kernel-path counters (HSET cp_*).
void append_kernel_traffic(redis::Client& c, std::string_view id, const Traffic& t, uint64_t alloc_expires_s);
// A data plane's fast-path increments since its last push (HINCRBY dp_*):
// kFastTrafficCommands commands.
inline constexpr size_t kFastTrafficCommands = 5;
inline constexpr uint64_t kOrphanTrafficTtlS = 2 * kRecordGraceS;
void append_fast_traffic(redis::Client& c, std::string_view id, const Traffic& delta);
// A data plane's status, expiring kDataplaneStatusTtlS after this write.
void append_dataplane_status(redis::Client& c, const DataplaneStatus& s);
// A membership record (PEXPIRE ttl_ms) and the instance's fleet index entry.
void append_membership(redis::Client& c, const MembershipRecord& m, uint64_t ttl_ms, uint64_t now_s);

}  // namespace turn::state
