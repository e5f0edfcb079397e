// SPDX-License-Identifier: Apache-2.0
// Why the data plane did not fast-path a packet, declared once: the enum,
// the names for telemetry and the per-worker counters all expand from this
// list. Drops are counters, never logs.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace turn::dp {

#define TURN_DP_DROP_REASONS(X)                                                   \
  X(Malformed, "malformed", "Ethernet/IPv4/UDP lengths that lie")                 \
  X(BadChannelData, "bad_channel_data", "ChannelData shorter than its length")    \
  X(UnboundChannel, "unbound_channel", "ChannelData for a channel not bound")     \
  X(Expired, "expired", "allocation, channel or permission expired")              \
  X(NoPermission, "no_permission", "peer without a permission")                   \
  X(BadSendIndication, "bad_send_indication", "Send indication without peer/data") \
  X(FamilyMismatch, "family_mismatch", "peer of a family without a relayed address") \
  X(TooBig, "too_big", "result would not fit the mbuf")                           \
  X(HairpinLoop, "hairpin_loop", "relay-to-relay chain deeper than one hop")      \
  X(PuntCongestion, "punt_congestion", "exception path full")                     \
  X(TxFull, "tx_full", "transmit queue full")

enum class Drop : uint8_t {
#define TURN_X(name, key, text) name,
  TURN_DP_DROP_REASONS(TURN_X)
#undef TURN_X
      Count
};

inline constexpr std::array<std::string_view, static_cast<size_t>(Drop::Count)> kDropKeys = {
#define TURN_X(name, key, text) key,
    TURN_DP_DROP_REASONS(TURN_X)
#undef TURN_X
};

// Where a packet went.
#define TURN_DP_PATHS(X)                                              \
  X(ChannelDataToPeer, "channel_data_to_peer")                        \
  X(SendIndicationToPeer, "send_indication_to_peer")                  \
  X(PeerToClientChannelData, "peer_to_client_channel_data")           \
  X(PeerToClientDataIndication, "peer_to_client_data_indication")     \
  X(Hairpin, "hairpin")                                               \
  X(Punted, "punted")                                                 \
  X(FromKernel, "from_kernel")

enum class Path : uint8_t {
#define TURN_X(name, key) name,
  TURN_DP_PATHS(TURN_X)
#undef TURN_X
      Count
};

inline constexpr std::array<std::string_view, static_cast<size_t>(Path::Count)> kPathKeys = {
#define TURN_X(name, key) key,
    TURN_DP_PATHS(TURN_X)
#undef TURN_X
};

// One per worker, cache-aligned, written only by its worker; readers (the
// stats thread, telemetry) tolerate torn-free 64-bit reads on x86-64.
struct alignas(64) WorkerCounters {
  uint64_t rx_packets = 0;
  uint64_t rx_bursts = 0;
  uint64_t tx_packets = 0;
  std::array<uint64_t, static_cast<size_t>(Path::Count)> paths{};
  std::array<uint64_t, static_cast<size_t>(Drop::Count)> drops{};
  uint64_t busy_polls = 0;  // polls that returned packets
  uint64_t idle_polls = 0;
  // Load: TSC cycles spent on polls that found work, and the TSC when the
  // loop started (busy / (now - start) is the worker's load; a poll-mode
  // core is otherwise always 100% busy to the OS).
  uint64_t busy_cycles = 0;
  uint64_t start_tsc = 0;
};

}  // namespace turn::dp
