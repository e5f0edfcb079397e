// SPDX-License-Identifier: Apache-2.0
// State shared by every event-loop thread of one turn-control process:
// config (immutable), credentials, nonce issuer, quotas, relay-port
// reservations, the allocation registry and the state sink. Each member
// states how it is synchronised.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <unordered_map>
#include <string>
#include <vector>

#include "controlplane/allocation/allocation.h"
#include "controlplane/auth/credentials.h"
#include "controlplane/auth/nonce.h"
#include "controlplane/auth/realm_options.h"
#include "controlplane/config/config.h"
#include "controlplane/server/redirect.h"
#include "controlplane/server/stats.h"

namespace turn::cp {

// Receives every state change (allocation create/refresh/delete, permission,
// channel). Implementations must be thread-safe and must not block: the
// Redis store queues and writes from its own thread.
class StateSink {
 public:
  virtual ~StateSink() = default;
  virtual void allocation_created(const std::shared_ptr<AllocationInfo>& a) = 0;
  virtual void allocation_refreshed(const std::shared_ptr<AllocationInfo>& a) = 0;
  virtual void allocation_deleted(const std::shared_ptr<AllocationInfo>& a) = 0;
  virtual void permission_installed(const std::shared_ptr<AllocationInfo>& a, const IpAddress& peer,
                                    uint64_t expires_s) = 0;
  virtual void channel_bound(const std::shared_ptr<AllocationInfo>& a, uint16_t channel, const SocketAddress& peer,
                             uint64_t expires_s) = 0;
};

// Live allocations of all threads, for the admin API ("TURN relay usage").
class Registry {
 public:
  void add(const std::shared_ptr<AllocationInfo>& a);
  void remove(const std::string& id);
  [[nodiscard]] std::vector<std::shared_ptr<AllocationInfo>> snapshot() const;
  [[nodiscard]] size_t size() const;

 private:
  mutable std::mutex mutex_;
  std::map<std::string, std::shared_ptr<AllocationInfo>> live_;
};

// Allocation quotas (RFC 8656 §7.2 step 8, 486). Mutex: only Allocate and
// deletion touch it.
class Quotas {
 public:
  Quotas(uint32_t per_user, uint32_t total) : per_user_(per_user), total_(total) {}
  [[nodiscard]] bool acquire(const std::string& user);
  void release(const std::string& user);
  [[nodiscard]] uint32_t total() const;
  // New limits (a realm's options from the user database); allocations
  // already granted stay, new ones are checked against these.
  void set_limits(uint32_t per_user, uint32_t total);

 private:
  uint32_t per_user_, total_;
  mutable std::mutex mutex_;
  uint32_t count_ = 0;
  std::map<std::string, uint32_t> by_user_;
};

// RESERVATION-TOKEN ports (RFC 8656 §7.2 EVEN-PORT with R bit, §14.9): the
// socket for port+1 is kept open and handed over on a later Allocate.
class Reservations {
 public:
  void put(uint64_t token, int fd, uint64_t expires_s);
  [[nodiscard]] std::optional<int> take(uint64_t token);
  void expire(uint64_t now_s);  // closes sockets whose reservation lapsed
  ~Reservations();

 private:
  std::mutex mutex_;
  std::map<uint64_t, std::pair<int, uint64_t>> by_token_;
};

class TurnServer;

// Which thread's TurnServer owns a 5-tuple's allocation. Consulted only when
// a loop receives a message for a 5-tuple it does not own (a new client, or
// an allocation restored after a restart onto another thread than the one
// SO_REUSEPORT now picks). Shared lock; written on create/delete only.
class Directory {
 public:
  void put(const FiveTuple& t, TurnServer* owner);
  void erase(const FiveTuple& t);
  [[nodiscard]] TurnServer* get(const FiveTuple& t) const;

 private:
  mutable std::shared_mutex mutex_;
  std::unordered_map<FiveTuple, TurnServer*, AddressHash> owners_;
};

// RFC 6062 CONNECTION-IDs of all threads: which TurnServer holds each
// peer connection (a ConnectionBind may arrive on any thread's listener).
class ConnectionIds {
 public:
  // A fresh, unused, non-zero id held by `owner`.
  [[nodiscard]] uint32_t add(TurnServer* owner);
  void erase(uint32_t id);
  [[nodiscard]] TurnServer* owner(uint32_t id) const;
  [[nodiscard]] size_t size() const;

 private:
  mutable std::mutex mutex_;
  std::unordered_map<uint32_t, TurnServer*> owners_;
};

struct SharedState {
  explicit SharedState(const Config& c);

  const Config& cfg;
  CredentialStore credentials;
  NonceIssuer nonces;
  Quotas quotas;
  RealmLimits limits;  // after quotas: it adjusts them
  Reservations reservations;
  Registry registry;
  Directory directory;
  Redirector redirector;  // drain and alternate-server (redirect.h)
  ConnectionIds connection_ids;
  std::vector<StateSink*> sinks;  // set before the loops start, then read-only
  std::atomic<uint64_t> next_id{1};
};

}  // namespace turn::cp
