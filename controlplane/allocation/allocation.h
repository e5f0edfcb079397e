// SPDX-License-Identifier: Apache-2.0
// An allocation (RFC 8656 §2.2): a relayed transport address bound to a
// client's 5-tuple, with its permissions (§9) and channel bindings (§12).
// Owned by the event loop that received the Allocate; only that thread
// touches it. Its AllocationInfo is the thread-safe summary the admin API
// and the state store read.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/crypto/integrity.h"
#include "common/net/address.h"
#include "common/net/transport.h"
#include "controlplane/net/clock.h"

namespace turn::cp {

using turn::Transport;  // common/net/transport.h
using turn::transport_name;

// The client side of an allocation: RFC 8656 §2.2 "5-tuple".
struct FiveTuple {
  Transport transport = Transport::Udp;
  SocketAddress client;
  SocketAddress server;
  friend bool operator==(const FiveTuple&, const FiveTuple&) = default;
};

struct AddressHash {
  size_t operator()(const IpAddress& a) const noexcept;
  size_t operator()(const SocketAddress& a) const noexcept;
  size_t operator()(const FiveTuple& t) const noexcept;
};

struct PermissionView {
  IpAddress peer;
  uint64_t expires_s;
};
struct ChannelView {
  uint16_t number;
  SocketAddress peer;
  uint64_t expires_s;
};

// Thread-safe description of one allocation, for the admin API and Redis.
struct AllocationInfo {
  std::string id;  // unique: "<instance>/<relay address>"
  FiveTuple tuple;
  SocketAddress relay;             // bound
  SocketAddress relay_advertised;  // as sent in XOR-RELAYED-ADDRESS (external-ip)
  // A dual-stack allocation's IPv6 relayed address (RFC 8656 §7.2,
  // ADDITIONAL-ADDRESS-FAMILY); port 0 when there is none. In the state
  // record as `relay6` (docs/state.md): the data plane relays both halves.
  SocketAddress relay6;
  SocketAddress relay6_advertised;
  std::string username;
  std::string realm;
  uint64_t created_s = 0;
  std::atomic<uint64_t> expires_s{0};
  std::atomic<uint64_t> packets_to_peer{0}, bytes_to_peer{0};
  std::atomic<uint64_t> packets_to_client{0}, bytes_to_client{0};
  // The packet counts last written to the store (the state writer's own).
  uint64_t flushed_packets = 0;

  mutable std::mutex mutex;  // guards the two vectors
  std::vector<PermissionView> permissions;
  std::vector<ChannelView> channels;
};

// A token bucket for max-bps (bytes per second), refilled from the loop clock.
class TokenBucket {
 public:
  void configure(uint64_t rate_per_s) noexcept {
    rate_ = rate_per_s;
    tokens_ = static_cast<double>(rate_per_s);
  }
  [[nodiscard]] bool take(uint64_t n, TimePoint now) noexcept;
  [[nodiscard]] bool unlimited() const noexcept { return rate_ == 0; }

 private:
  uint64_t rate_ = 0;
  double tokens_ = 0;
  TimePoint last_{};
};

class StreamConnection;

// How to reach the client: its UDP listener socket, or its stream.
struct ClientLink {
  int udp_fd = -1;
  StreamConnection* stream = nullptr;
};

struct Channel {
  SocketAddress peer;
  TimePoint expires;
};

struct Allocation {
  FiveTuple tuple;
  ClientLink link;
  int relay_fd = -1;
  int relay_fd6 = -1;          // dual-stack: the IPv6 relayed address's socket
  bool dont_fragment = false;  // DF on every datagram (DONT-FRAGMENT in the Allocate)
  bool tcp = false;            // RFC 6062 TCP relay: relay_fd listens, peers are TcpConnections
  std::string username;
  TimePoint expires;
  std::unordered_map<IpAddress, TimePoint, AddressHash> permissions;
  std::unordered_map<uint16_t, Channel> channels;
  std::unordered_map<SocketAddress, uint16_t, AddressHash> channel_by_peer;
  // RFC 8656 §7.2: a retransmitted Allocate gets the same answer.
  std::array<uint8_t, 12> allocate_txid{};
  std::vector<uint8_t> allocate_response;
  TokenBucket to_peer_bucket, to_client_bucket;
  std::shared_ptr<AllocationInfo> info;

  [[nodiscard]] bool dual() const noexcept { return relay_fd6 >= 0; }
  // The socket that relays to `peer`: the IPv6 one of a dual-stack
  // allocation for IPv6 peers, else the allocation's own.
  [[nodiscard]] int fd_for(const IpAddress& peer) const noexcept {
    return relay_fd6 >= 0 && !peer.is_v4() ? relay_fd6 : relay_fd;
  }
  // RFC 6156 §6.1 / RFC 8656 §7.2: may this allocation relay to `peer`'s family?
  [[nodiscard]] bool family_ok(const IpAddress& peer) const noexcept {
    return peer.is_v4() == info->relay.ip.is_v4() || (relay_fd6 >= 0 && !peer.is_v4());
  }
  [[nodiscard]] bool has_permission(const IpAddress& peer, TimePoint now) const noexcept {
    auto it = permissions.find(peer);
    return it != permissions.end() && it->second > now;
  }
};

}  // namespace turn::cp
