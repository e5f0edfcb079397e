// SPDX-License-Identifier: Apache-2.0
// Redirector: where a new Allocate goes instead of here (RFC 8489 §10,
// 300 Try Alternate with ALTERNATE-SERVER), shared by every event-loop
// thread. Two reasons to redirect:
//
//  * draining (turnctl drain, POST /api/v1/drain): every new Allocate goes
//    to the least-loaded live instance that is serving, from the fleet's
//    membership records; without one, to the static alternate-server list;
//    without that (the others went away during the drain) it is served
//    here, unless the drain was forced: then it is refused (508). Both
//    counted: no_target;
//  * alternate-server / tls-alternate-server configured (coturn's load
//    balancing front): every new Allocate goes to the next of the list,
//    round robin.
//
// Never to this server itself (an address it listens on), never to a
// member that is draining or itself redirects everything (so two servers
// that name each other do not bounce a client between them), never to an
// address of another family than the request's (RFC 8489 §14.15).
// Thread-safe: a mutex, held for a pick (microseconds, Allocates only).
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/net/address.h"
#include "common/net/transport.h"
#include "common/state/records.h"
#include "controlplane/config/config.h"

namespace turn::cp {

struct Alternate {
  SocketAddress address;
  std::string domain;    // ALTERNATE-DOMAIN (TLS only; empty: none)
  std::string instance;  // the member it belongs to ("" for a static one)
  enum class Why { Drain, Alternate } why = Why::Drain;
};

struct RedirectStats {
  std::atomic<uint64_t> drain{0};      // 300s sent because this instance drains
  std::atomic<uint64_t> alternate{0};  // 300s sent for alternate-server
  std::atomic<uint64_t> no_target{0};  // draining with nowhere to send: served here
};

class Redirector {
 public:
  explicit Redirector(const Config& cfg);

  struct Decision {
    enum class Kind { Serve, Redirect, Refuse } kind = Kind::Serve;
    Alternate alt;  // Redirect
  };
  // What to do with a new Allocate that arrived over `t` at `local`.
  [[nodiscard]] Decision pick(Transport t, const SocketAddress& local);

  // The fleet's live members (the state store's writer, every second).
  void set_members(std::vector<state::MembershipRecord> members);
  [[nodiscard]] std::vector<state::MembershipRecord> members() const;

  struct DrainRefusal {
    std::string why;
  };
  // Starts a drain; refuses (unless forced) when no other instance serves
  // and no alternate-server is configured: new calls would have nowhere
  // to go. Returns the refusal, or nullopt when draining.
  [[nodiscard]] std::optional<DrainRefusal> drain(bool force);
  void undrain();
  [[nodiscard]] bool draining() const noexcept { return draining_.load(); }
  [[nodiscard]] bool forced() const noexcept { return forced_.load(); }
  [[nodiscard]] uint64_t drain_started_s() const noexcept { return drain_started_s_.load(); }
  // Static alternates configured: every new Allocate is redirected.
  [[nodiscard]] bool redirects_all() const noexcept { return !static_udp_.empty() || !static_tls_.empty(); }
  // The serving members other than this one (for refusals and status).
  [[nodiscard]] std::vector<std::string> serving_others() const;

  [[nodiscard]] const RedirectStats& stats() const noexcept { return stats_; }
  RedirectStats& stats() noexcept { return stats_; }

 private:
  [[nodiscard]] bool is_self(const SocketAddress& a) const;
  [[nodiscard]] bool excluded(const SocketAddress& a) const;  // a draining or redirecting member's
  std::optional<Alternate> from_members(Transport t, Family f);
  std::optional<Alternate> from_list(const std::vector<SocketAddress>& list, size_t& next, Family f, Transport t,
                                     Alternate::Why why);

  const Config& cfg_;
  std::vector<SocketAddress> static_udp_;  // alternate-server: UDP and TCP clients
  std::vector<SocketAddress> static_tls_;  // tls-alternate-server
  std::atomic<bool> draining_{false};
  std::atomic<bool> forced_{false};
  std::atomic<uint64_t> drain_started_s_{0};
  mutable std::mutex mutex_;  // members_, the round-robin cursors
  std::vector<state::MembershipRecord> members_;
  size_t next_udp_ = 0, next_tls_ = 0, next_member_ = 0;
  RedirectStats stats_;
};

}  // namespace turn::cp
