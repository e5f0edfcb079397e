// SPDX-License-Identifier: Apache-2.0
// The data plane's counters, declared once: where each packet went (paths),
// why one was dropped (drops) or handed to the kernel (punts). The enums,
// the names and the per-worker counters expand from these lists, and one
// visitor (visit_counters) renders the totals for DPDK telemetry, the exit
// report and the Redis status hash under the same names. Drops and punts
// are counters, never logs.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace turn::dp {

// Every list below expands the same way: X(Name, "key"[, "what it means"]).
#define TURN_DP_COUNTER_NAME(name, key, ...) name,
#define TURN_DP_COUNTER_KEY(name, key, ...) key,
// enum class Enum { ..., Count } and kKeys: its names, in order.
#define TURN_DP_COUNTER_ENUM(Enum, kKeys, LIST)                   \
  enum class Enum : uint8_t { LIST(TURN_DP_COUNTER_NAME) Count }; \
  inline constexpr std::array<std::string_view, static_cast<size_t>(Enum::Count)> kKeys = {LIST(TURN_DP_COUNTER_KEY)}

// Dropped: the frame is freed. What the fast path does not know (an
// unbound channel, an expired allocation, a missing permission) is never
// dropped here but punted: turn-control is the source of truth.
#define TURN_DP_DROP_REASONS(X)                                                      \
  X(Malformed, "malformed", "Ethernet/IPv4/UDP lengths that lie")                    \
  X(BadChannelData, "bad_channel_data", "ChannelData shorter than its length")       \
  X(BadSendIndication, "bad_send_indication", "Send indication without peer/data")   \
  X(FamilyMismatch, "family_mismatch", "peer of a family without a relayed address") \
  X(TooBig, "too_big", "result would not fit the mbuf")                              \
  X(PuntCongestion, "punt_congestion", "exception path full")                        \
  X(TxFull, "tx_full", "transmit queue full")

TURN_DP_COUNTER_ENUM(Drop, kDropKeys, TURN_DP_DROP_REASONS);

// Punted: the frame goes to the kernel (TAP) unchanged, for turn-control
// or the kernel's own stack.
#define TURN_DP_PUNT_REASONS(X)                                                              \
  X(NotTurn, "not_turn", "UDP to neither a TURN port nor a relayed address, or not STUN")    \
  X(Control, "control", "STUN other than a Send indication: turn-control answers")           \
  X(UnknownFlow, "unknown_flow", "no allocation, channel or permission in the tables (yet)") \
  X(Expired, "expired", "allocation, channel or permission past its expiry")                 \
  X(NoPermission, "no_permission", "peer without a live permission")                         \
  X(NoNeighbour, "no_neighbour", "next hop not learnt, or an address no port carries")       \
  X(Ipv6, "ipv6", "IPv6 that is not plain UDP (NDP, extension headers, TCP)")                \
  X(Arp, "arp", "ARP")                                                                       \
  X(Other, "other", "anything else: TCP, IP options, fragments, chained mbufs")

TURN_DP_COUNTER_ENUM(PuntReason, kPuntKeys, TURN_DP_PUNT_REASONS);

// Where a packet went.
#define TURN_DP_PATHS(X)                                          \
  X(ChannelDataToPeer, "channel_data_to_peer")                    \
  X(SendIndicationToPeer, "send_indication_to_peer")              \
  X(PeerToClientChannelData, "peer_to_client_channel_data")       \
  X(PeerToClientDataIndication, "peer_to_client_data_indication") \
  X(Hairpin, "hairpin")                                           \
  X(Punted, "punted")                                             \
  X(FromKernel, "from_kernel")

TURN_DP_COUNTER_ENUM(Path, kPathKeys, TURN_DP_PATHS);

// One per worker, cache-aligned, written only by its worker; readers (the
// stats thread, telemetry) tolerate torn-free 64-bit reads on x86-64.
struct alignas(64) WorkerCounters {
  uint64_t rx_packets = 0;
  uint64_t rx_bursts = 0;
  uint64_t tx_packets = 0;
  std::array<uint64_t, static_cast<size_t>(Path::Count)> paths{};
  std::array<uint64_t, static_cast<size_t>(Drop::Count)> drops{};
  std::array<uint64_t, static_cast<size_t>(PuntReason::Count)> punts{};
  uint64_t busy_polls = 0;  // polls that returned packets
  uint64_t idle_polls = 0;
  uint64_t idle_sleeps = 0;  // idle-sleep-us: how often the worker slept, idle
  // Load: TSC cycles spent on polls that found work, and the TSC when the
  // loop started (busy / (now - start) is the worker's load; a poll-mode
  // core is otherwise always 100% busy to the OS).
  uint64_t busy_cycles = 0;
  uint64_t start_tsc = 0;
};

// The workers' counters summed (read while they run: each 64-bit read is
// whole on x86-64, the sum is not a snapshot).
struct CounterTotals {
  uint64_t rx_packets = 0, tx_packets = 0;
  std::array<uint64_t, static_cast<size_t>(Path::Count)> paths{};
  std::array<uint64_t, static_cast<size_t>(Drop::Count)> drops{};
  std::array<uint64_t, static_cast<size_t>(PuntReason::Count)> punts{};

  void add(const WorkerCounters& w) noexcept {
    rx_packets += w.rx_packets;
    tx_packets += w.tx_packets;
    for (size_t i = 0; i < paths.size(); ++i) paths[i] += w.paths[i];
    for (size_t i = 0; i < drops.size(); ++i) drops[i] += w.drops[i];
    for (size_t i = 0; i < punts.size(); ++i) punts[i] += w.punts[i];
  }
  [[nodiscard]] uint64_t path(Path p) const noexcept { return paths[static_cast<size_t>(p)]; }
};

enum class CounterKind : uint8_t { Total, Path, Drop, Punt };

// Calls f(kind, key, value) for every counter of t, in one order: the
// totals, the paths, the drops, the punts. The key is the counter's one
// name ("rx_packets", "hairpin", "tx_full", "unknown_flow"); flat_name()
// is how it reads where the kinds share one namespace.
template <class F>
void visit_counters(const CounterTotals& t, F&& f) {
  f(CounterKind::Total, std::string_view("rx_packets"), t.rx_packets);
  f(CounterKind::Total, std::string_view("tx_packets"), t.tx_packets);
  for (size_t i = 0; i < t.paths.size(); ++i) f(CounterKind::Path, kPathKeys[i], t.paths[i]);
  for (size_t i = 0; i < t.drops.size(); ++i) f(CounterKind::Drop, kDropKeys[i], t.drops[i]);
  for (size_t i = 0; i < t.punts.size(); ++i) f(CounterKind::Punt, kPuntKeys[i], t.punts[i]);
}

// "drop_tx_full", "punt_unknown_flow"; totals and paths as they are.
inline std::string_view flat_prefix(CounterKind k) noexcept {
  return k == CounterKind::Drop ? "drop_" : k == CounterKind::Punt ? "punt_" : "";
}

}  // namespace turn::dp
