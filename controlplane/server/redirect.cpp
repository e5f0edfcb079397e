// SPDX-License-Identifier: Apache-2.0
// Where new Allocates go when this instance drains or redirects (redirect.h).
#include "controlplane/server/redirect.h"

#include <algorithm>
#include <ctime>

namespace turn::cp {

Redirector::Redirector(const Config& cfg)
    : cfg_(cfg), static_udp_(cfg.alternate_servers), static_tls_(cfg.tls_alternate_servers) {}

bool Redirector::is_self(const SocketAddress& a) const {
  // An address this server listens on, or its own ports on a wildcard listener.
  for (const auto& ip : cfg_.listening_ips)
    if ((ip == a.ip || ip.is_unspecified()) && (a.port == cfg_.listening_port || a.port == cfg_.tls_listening_port ||
                                                (cfg_.alt_listening_port && a.port == cfg_.alt_listening_port) ||
                                                (cfg_.alt_tls_listening_port && a.port == cfg_.alt_tls_listening_port)))
      return true;
  return false;
}

bool Redirector::excluded(const SocketAddress& a) const {
  // A static alternate that is a draining or redirecting member's address.
  for (const auto& m : members_) {
    if (m.state != state::MemberState::Draining && !m.redirects) continue;
    for (const auto& l : m.listen)
      if (l.address == a) return true;
  }
  return false;
}

std::optional<Alternate> Redirector::from_list(const std::vector<SocketAddress>& list, size_t& next, Family f,
                                               Transport t, Alternate::Why why) {
  for (size_t tried = 0; tried < list.size(); ++tried) {
    const SocketAddress& a = list[next++ % list.size()];
    if (a.ip.family() != f || is_self(a) || excluded(a)) continue;
    Alternate alt{a, t == Transport::Tls ? cfg_.alternate_domain : "", "", why};
    return alt;
  }
  return std::nullopt;
}

std::optional<Alternate> Redirector::from_members(Transport t, Family f) {
  // The least-loaded serving member (not this one, not redirecting) with a
  // listener of the request's transport and family; ties go round robin.
  const state::MembershipRecord* best = nullptr;
  const SocketAddress* best_addr = nullptr;
  size_t n = members_.size();
  for (size_t k = 0; k < n; ++k) {
    const auto& m = members_[(next_member_ + k) % n];
    if (m.instance == cfg_.instance_id || m.state != state::MemberState::Serving || m.redirects) continue;
    for (const auto& l : m.listen) {
      if (l.transport != t || l.address.ip.family() != f || l.address.ip.is_unspecified() || is_self(l.address))
        continue;
      if (!best || m.allocations < best->allocations) {
        best = &m;
        best_addr = &l.address;
      }
      break;
    }
  }
  if (!best) return std::nullopt;
  ++next_member_;
  return Alternate{*best_addr, t == Transport::Tls ? cfg_.alternate_domain : "", best->instance, Alternate::Why::Drain};
}

Redirector::Decision Redirector::pick(Transport t, const SocketAddress& local) {
  bool drain = draining_.load();
  if (!drain && !redirects_all()) return {};
  Family f = local.ip.family();
  std::lock_guard lock(mutex_);
  const auto& list = t == Transport::Tls ? static_tls_ : static_udp_;
  size_t& next = t == Transport::Tls ? next_tls_ : next_udp_;
  std::optional<Alternate> alt;
  if (drain) {
    alt = from_members(t, f);
    if (!alt) alt = from_list(list, next, f, t, Alternate::Why::Drain);
    if (!alt) ++stats_.no_target;
  } else {
    alt = from_list(list, next, f, t, Alternate::Why::Alternate);
  }
  if (!alt) return {forced_.load() && drain ? Decision::Kind::Refuse : Decision::Kind::Serve, {}};
  ++(alt->why == Alternate::Why::Drain ? stats_.drain : stats_.alternate);
  return {Decision::Kind::Redirect, *alt};
}

void Redirector::set_members(std::vector<state::MembershipRecord> members) {
  std::lock_guard lock(mutex_);
  members_ = std::move(members);
}

std::vector<state::MembershipRecord> Redirector::members() const {
  std::lock_guard lock(mutex_);
  return members_;
}

std::vector<std::string> Redirector::serving_others() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> out;
  for (const auto& m : members_)
    if (m.instance != cfg_.instance_id && m.state == state::MemberState::Serving && !m.redirects)
      out.push_back(m.instance);
  return out;
}

std::optional<Redirector::DrainRefusal> Redirector::drain(bool force) {
  if (draining_.load()) return std::nullopt;
  if (!force && serving_others().empty() && static_udp_.empty() && static_tls_.empty())
    return DrainRefusal{
        "instance '" + cfg_.instance_id +
        "' is the last serving instance (no other live member in the state store, no alternate-server): "
        "new calls would have nowhere to go; force the drain to turn them away (508) anyway"};
  drain_started_s_ = static_cast<uint64_t>(std::time(nullptr));
  forced_ = force;
  draining_ = true;
  return std::nullopt;
}

void Redirector::undrain() {
  draining_ = false;
  forced_ = false;
  drain_started_s_ = 0;
}

}  // namespace turn::cp
