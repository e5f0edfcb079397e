// SPDX-License-Identifier: Apache-2.0
// coturn's per-realm options from its Redis user database.
#include "controlplane/auth/realm_options.h"

#include <charconv>

#include "common/log/log.h"
#include "controlplane/server/shared_state.h"
#include "common/redis/client.h"

namespace turn::cp {

namespace {

template <typename T>
std::optional<T> number(const std::optional<std::string>& v, const std::string& key, uint64_t max,
                        std::vector<std::string>& errors) {
  if (!v) return std::nullopt;
  uint64_t n = 0;
  auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
  if (v->empty() || ec != std::errc{} || p != v->data() + v->size() || n > max) {
    errors.push_back(key + "=" + *v + ": not a number in 0.." + std::to_string(max) + " (ignored)");
    return std::nullopt;
  }
  return static_cast<T>(n);
}

}  // namespace

std::string realm_option_key(const std::string& realm, const char* option) {
  return "turn/realm/" + realm + "/" + option;
}

RealmOptions parse_realm_options(const std::optional<std::string>& user_quota,
                                 const std::optional<std::string>& total_quota,
                                 const std::optional<std::string>& max_bps, std::vector<std::string>& errors) {
  // The same ranges as the config keys (controlplane/config/config.cpp).
  RealmOptions o;
  o.user_quota = number<uint32_t>(user_quota, "user-quota", 1u << 30, errors);
  o.total_quota = number<uint32_t>(total_quota, "total-quota", 1u << 30, errors);
  o.max_bps = number<uint64_t>(max_bps, "max-bps", uint64_t{1} << 40, errors);
  return o;
}

RealmLimits::RealmLimits(const Config& cfg, Quotas& quotas) : cfg_(cfg), quotas_(quotas), max_bps_(cfg.max_bps) {}

bool RealmLimits::apply(const RealmOptions& o) {
  std::lock_guard lock(mutex_);
  if (o == last_) return false;
  last_ = o;
  quotas_.set_limits(o.user_quota.value_or(cfg_.user_quota), o.total_quota.value_or(cfg_.total_quota));
  max_bps_.store(o.max_bps.value_or(cfg_.max_bps), std::memory_order_relaxed);
  return true;
}

RealmOptionsPoller::RealmOptionsPoller(const Config& cfg, RealmLimits& limits) : cfg_(cfg), limits_(limits) {}
RealmOptionsPoller::~RealmOptionsPoller() { stop(); }

void RealmOptionsPoller::poll_once() {
  redis::Client c(cfg_.redis_userdb);
  c.connect();
  auto get = [&](const char* option) -> std::optional<std::string> {
    auto r = c.command({"GET", realm_option_key(cfg_.realm, option)});
    if (r.type == redis::Reply::Type::Nil) return std::nullopt;
    return r.str;
  };
  std::vector<std::string> errors;
  RealmOptions o = parse_realm_options(get("user-quota"), get("total-quota"), get("max-bps"), errors);
  for (const auto& e : errors) log_warn("userdb: turn/realm/" + cfg_.realm + "/" + e);
  if (limits_.apply(o)) {
    auto show = [](const auto& v) { return v ? std::to_string(*v) : std::string("config"); };
    log_info("userdb: realm " + cfg_.realm + " options: user-quota " + show(o.user_quota) + ", total-quota " +
             show(o.total_quota) + ", max-bps " + show(o.max_bps));
  }
}

void RealmOptionsPoller::start() {
  thread_.start(std::chrono::seconds(3), [this] {
    try {
      poll_once();
    } catch (const std::exception&) {
      // Redis away: the limits stay as they are (the user poller logs it).
    }
  });
}

void RealmOptionsPoller::stop() { thread_.stop(); }

}  // namespace turn::cp
