// SPDX-License-Identifier: Apache-2.0
#include "common/state/keys.h"

namespace turn::state {

namespace {
std::string cat(std::string_view a, std::string_view b, std::string_view c = {}) {
  std::string s;
  s.reserve(a.size() + b.size() + c.size());
  s.append(a).append(b).append(c);
  return s;
}
}  // namespace

std::string member_key(std::string_view instance) { return cat(kMemberPrefix, instance); }
std::string alloc_index_key(std::string_view instance) { return cat("dpturn:allocs:", instance); }
std::string event_stream_key(std::string_view instance) { return cat("dpturn:events:", instance); }
std::string dataplane_key(std::string_view instance) { return cat(kDataplanePrefix, instance); }
std::string drain_request_key(std::string_view instance) { return cat("dpturn:drain-request:", instance); }

std::string alloc_key(std::string_view id) { return cat("dpturn:alloc:", id); }
std::string traffic_key(std::string_view id) { return cat("dpturn:alloc:", id, ":traffic"); }

bool valid_instance_id(std::string_view id) noexcept {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
          c == '-'))
      return false;
  return true;
}

std::string allocation_id(std::string_view instance, std::string_view relay) { return cat(instance, "/", relay); }

std::string_view instance_of(std::string_view id) noexcept {
  auto slash = id.find('/');
  return slash == std::string_view::npos || slash == 0 ? std::string_view{} : id.substr(0, slash);
}

std::string coturn_allocation_prefix(std::string_view realm, std::string_view user, std::string_view id) {
  std::string s = "turn/realm/";
  s.append(realm).append("/user/").append(user).append("/allocation/").append(id);
  return s;
}

}  // namespace turn::state
