// SPDX-License-Identifier: Apache-2.0
// Shared state: registry, quotas, reservations.
#include "controlplane/server/shared_state.h"

#include <unistd.h>

#include "common/crypto/integrity.h"

namespace turn::cp {

namespace {
std::string secret_or_random(const std::string& s) {
  if (!s.empty()) return s;
  uint8_t raw[32];
  crypto::random_bytes(raw);
  return std::string(reinterpret_cast<char*>(raw), sizeof raw);
}
}  // namespace

SharedState::SharedState(const Config& c)
    : cfg(c),
      credentials(c),
      nonces(secret_or_random(c.server_secret), c.nonce_lifetime_s),
      quotas(c.user_quota, c.total_quota),
      limits(c, quotas),
      redirector(c) {}

void Directory::put(const FiveTuple& t, TurnServer* owner) {
  std::unique_lock lock(mutex_);
  owners_[t] = owner;
}
void Directory::erase(const FiveTuple& t) {
  std::unique_lock lock(mutex_);
  owners_.erase(t);
}
TurnServer* Directory::get(const FiveTuple& t) const {
  std::shared_lock lock(mutex_);
  auto it = owners_.find(t);
  return it == owners_.end() ? nullptr : it->second;
}

uint32_t ConnectionIds::add(TurnServer* owner) {
  std::lock_guard lock(mutex_);
  for (;;) {
    uint32_t id = 0;
    crypto::random_bytes(MutableBytes{reinterpret_cast<uint8_t*>(&id), sizeof id});
    if (id != 0 && owners_.try_emplace(id, owner).second) return id;
  }
}
void ConnectionIds::erase(uint32_t id) {
  std::lock_guard lock(mutex_);
  owners_.erase(id);
}
size_t ConnectionIds::size() const {
  std::lock_guard lock(mutex_);
  return owners_.size();
}
TurnServer* ConnectionIds::owner(uint32_t id) const {
  std::lock_guard lock(mutex_);
  auto it = owners_.find(id);
  return it == owners_.end() ? nullptr : it->second;
}

void Registry::add(const std::shared_ptr<AllocationInfo>& a) {
  std::lock_guard lock(mutex_);
  live_[a->id] = a;
}
void Registry::remove(const std::string& id) {
  std::lock_guard lock(mutex_);
  live_.erase(id);
}
std::vector<std::shared_ptr<AllocationInfo>> Registry::snapshot() const {
  std::lock_guard lock(mutex_);
  std::vector<std::shared_ptr<AllocationInfo>> out;
  out.reserve(live_.size());
  for (const auto& [id, a] : live_) out.push_back(a);
  return out;
}
size_t Registry::size() const {
  std::lock_guard lock(mutex_);
  return live_.size();
}

bool Quotas::acquire(const std::string& user) {
  std::lock_guard lock(mutex_);
  if (total_ != 0 && count_ >= total_) return false;
  uint32_t& mine = by_user_[user];
  if (per_user_ != 0 && mine >= per_user_) return false;
  ++mine;
  ++count_;
  return true;
}
void Quotas::release(const std::string& user) {
  std::lock_guard lock(mutex_);
  auto it = by_user_.find(user);
  if (it == by_user_.end() || it->second == 0) return;
  if (--it->second == 0) by_user_.erase(it);
  --count_;
}
void Quotas::set_limits(uint32_t per_user, uint32_t total) {
  std::lock_guard lock(mutex_);
  per_user_ = per_user;
  total_ = total;
}
uint32_t Quotas::total() const {
  std::lock_guard lock(mutex_);
  return count_;
}

void Reservations::put(uint64_t token, int fd, uint64_t expires_s) {
  std::lock_guard lock(mutex_);
  by_token_[token] = {fd, expires_s};
}
std::optional<int> Reservations::take(uint64_t token) {
  std::lock_guard lock(mutex_);
  auto it = by_token_.find(token);
  if (it == by_token_.end()) return std::nullopt;
  int fd = it->second.first;
  by_token_.erase(it);
  return fd;
}
void Reservations::expire(uint64_t now_s) {
  std::lock_guard lock(mutex_);
  for (auto it = by_token_.begin(); it != by_token_.end();) {
    if (it->second.second <= now_s) {
      close(it->second.first);
      it = by_token_.erase(it);
    } else {
      ++it;
    }
  }
}
Reservations::~Reservations() {
  for (auto& [t, v] : by_token_) close(v.first);
}

}  // namespace turn::cp
