// SPDX-License-Identifier: Apache-2.0
// AllocationManager: the allocations of one TURN server thread, from birth
// to death (RFC 8656 §2.2, §7, §9, §12): create (Allocate) and restore
// (read back from the state store after a restart) through one install,
// find by 5-tuple (an expired one goes on the way), destroy, the sweep of
// expired allocations, permissions and channels, relay ports, quotas.
// Every change goes to the registry and the state sinks here, and nowhere
// else.
//
// Two seams: the Clock (tests move time) and RelayPorts (tests decide
// which ports exist). The sockets an allocation relays on are watched by
// whoever implements AllocationIo (TurnServer: its event loop).
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "controlplane/allocation/allocation.h"
#include "controlplane/net/clock.h"
#include "controlplane/server/shared_state.h"

namespace turn::cp {

class StreamConnection;

// Where relayed transport addresses come from.
class RelayPorts {
 public:
  virtual ~RelayPorts() = default;
  // A socket on `ip` at a random port in [min, max], even when asked
  // (RFC 8656 §7.2: random, since predictable ports help attackers): UDP,
  // or a TCP listener for an RFC 6062 allocation. -1 when none is free.
  [[nodiscard]] virtual int open_random(const IpAddress& ip, uint16_t min, uint16_t max, bool even, bool dont_fragment,
                                        bool tcp, uint16_t& port_out) = 0;
  // A UDP socket at exactly `at` (a reservation's port+1, a restored
  // allocation's port); -1 with errno set when it cannot be bound.
  [[nodiscard]] virtual int open_at(const SocketAddress& at, bool dont_fragment) = 0;
};

// Kernel sockets, random ports (128 tries).
class KernelRelayPorts final : public RelayPorts {
 public:
  int open_random(const IpAddress& ip, uint16_t min, uint16_t max, bool even, bool dont_fragment, bool tcp,
                  uint16_t& port_out) override;
  int open_at(const SocketAddress& at, bool dont_fragment) override;

 private:
  std::mt19937 rng_{std::random_device{}()};
};

// What watches an allocation's sockets.
class AllocationIo {
 public:
  virtual ~AllocationIo() = default;
  // The allocation goes into service: watch relay_fd (a listener when
  // tcp) and relay_fd6.
  virtual void serve(Allocation& a) = 0;
  // It goes: close its sockets and whatever relays through them.
  virtual void release(Allocation& a) = 0;
};

// The relayed side of a new allocation, as Allocate opened it.
struct RelaySockets {
  int fd = -1;
  SocketAddress relay;
  int fd6 = -1;  // a dual-stack allocation's IPv6 half (RFC 8656 §7.2), else -1
  SocketAddress relay6;
  bool tcp = false;  // RFC 6062: fd listens
  bool dont_fragment = false;
};

class AllocationManager {
 public:
  AllocationManager(SharedState& shared, const Clock& clock, RelayPorts& ports, AllocationIo& io);
  ~AllocationManager();
  AllocationManager(const AllocationManager&) = delete;
  AllocationManager& operator=(const AllocationManager&) = delete;

  // The live allocation of a 5-tuple; an expired one is destroyed and
  // nullptr returned.
  [[nodiscard]] Allocation* find(const FiveTuple& t);
  // A new allocation of `username` on `sockets`, for `lifetime_s`
  // (RFC 8656 §7.2's last step). The quota was taken by take_quota().
  Allocation& create(const FiveTuple& tuple, const ClientLink& link, const std::string& username,
                     const RelaySockets& sockets, uint32_t lifetime_s);
  // An allocation read back from the state store (UDP clients only: stream
  // connections did not survive): its relayed ports bound again, its
  // permissions and channels back. False if its relay port cannot be bound.
  bool restore(const FiveTuple& tuple, const ClientLink& link, const std::shared_ptr<AllocationInfo>& info);
  void destroy(Allocation& a, const char* why);
  // Ends the allocations of a TCP/TLS client connection (RFC 8656 §3.1):
  // at once, or when the last Hold ends.
  void close_stream(StreamConnection* s);

  // A failed write to a client's stream closes it, and with it its
  // allocations, from inside whatever was writing: a handler answering, a
  // relay socket delivering a peer's datagram, a TCP peer connection, even
  // the destroy of another allocation (a deferred RFC 6062 answer). While
  // a Hold lives, such allocations stay (the stream is retired, not freed,
  // until the loop's batch ends) and go when the last Hold ends; so every
  // entry from the event loop takes one, and no caller is left holding an
  // Allocation& that a write freed under it.
  class Hold {
   public:
    explicit Hold(AllocationManager& m) noexcept : m_(m) { ++m_.holds_; }
    ~Hold() { m_.end_hold(); }
    Hold(const Hold&) = delete;
    Hold& operator=(const Hold&) = delete;

   private:
    AllocationManager& m_;
  };
  // Ends everything (shutdown).
  void clear();

  // Extends (or shortens) a live allocation's life (Refresh).
  void refresh(Allocation& a, uint32_t lifetime_s);
  // Installs or refreshes a permission (RFC 8656 §9), and binds a channel
  // (§11.2, which installs the permission too); publish() afterwards.
  void permit(Allocation& a, const IpAddress& peer);
  void bind_channel(Allocation& a, uint16_t channel, const SocketAddress& peer);
  // The allocation's permissions and channels into its AllocationInfo.
  void publish(Allocation& a);
  // Permissions live now (for max-permissions-per-allocation).
  [[nodiscard]] size_t live_permissions(const Allocation& a) const;

  // Once a second: allocations, permissions and channels whose time is up.
  void sweep();

  // Allocation quotas (RFC 8656 §7.2 step 8); destroy() gives it back.
  [[nodiscard]] bool take_quota(const std::string& username);
  void return_quota(const std::string& username);

  [[nodiscard]] RelayPorts& ports() noexcept { return ports_; }
  [[nodiscard]] size_t size() const noexcept { return by_tuple_.size(); }
  // The address a client is told for `relay` (external-ip).
  [[nodiscard]] SocketAddress advertised(const SocketAddress& relay) const;
  // A steady-clock time as wall-clock seconds (what the store keeps).
  [[nodiscard]] uint64_t wall_expiry(TimePoint t) const;

 private:
  void end_hold();
  Allocation& install(const FiveTuple& tuple, const ClientLink& link, const RelaySockets& sockets,
                      std::shared_ptr<AllocationInfo> info, TimePoint expires);

  SharedState& shared_;
  const Config& cfg_;
  const Clock& clock_;
  RelayPorts& ports_;
  AllocationIo& io_;
  std::unordered_map<FiveTuple, std::unique_ptr<Allocation>, AddressHash> by_tuple_;
  int holds_ = 0;
  std::vector<StreamConnection*> closed_streams_;  // closed while held
};

}  // namespace turn::cp
