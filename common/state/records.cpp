// SPDX-License-Identifier: Apache-2.0
// State record encoding.
#include "common/state/records.h"

#include <charconv>

namespace turn::state {

std::string alloc_key(std::string_view id) { return "dpturn:alloc:" + std::string(id); }
std::string permissions_key(std::string_view id) { return "dpturn:alloc:" + std::string(id) + ":perm"; }
std::string channels_key(std::string_view id) { return "dpturn:alloc:" + std::string(id) + ":chan"; }
std::string traffic_key(std::string_view id) { return "dpturn:alloc:" + std::string(id) + ":traffic"; }

std::optional<uint64_t> parse_u64(std::string_view s) noexcept {
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::string_view field(const Fields& f, std::string_view name) noexcept {
  for (const auto& [k, v] : f)
    if (k == name) return v;
  return {};
}

Fields AllocationRecord::to_fields() const {
  return {{"id", id},
          {"instance", instance},
          {"transport", transport},
          {"client", client.to_string()},
          {"server", server.to_string()},
          {"relay", relay.to_string()},
          {"username", username},
          {"realm", realm},
          {"expires", std::to_string(expires_s)}};
}

std::optional<AllocationRecord> AllocationRecord::from_fields(const Fields& f) {
  AllocationRecord r;
  r.id = std::string(field(f, "id"));
  r.instance = std::string(field(f, "instance"));
  r.transport = std::string(field(f, "transport"));
  auto client = SocketAddress::parse(field(f, "client"));
  auto server = SocketAddress::parse(field(f, "server"));
  auto relay = SocketAddress::parse(field(f, "relay"));
  auto expires = parse_u64(field(f, "expires"));
  if (r.id.empty() || !client || !server || !relay || !expires) return std::nullopt;
  if (r.transport != "udp" && r.transport != "tcp" && r.transport != "tls") return std::nullopt;
  r.client = *client;
  r.server = *server;
  r.relay = *relay;
  r.expires_s = *expires;
  r.username = std::string(field(f, "username"));
  r.realm = std::string(field(f, "realm"));
  return r;
}

std::string ChannelRecord::value() const { return peer.to_string() + " " + std::to_string(expires_s); }

std::optional<ChannelRecord> ChannelRecord::parse(std::string_view number, std::string_view value) {
  auto n = parse_u64(number);
  auto sp = value.find(' ');
  if (!n || *n < 0x4000 || *n > 0x7FFF || sp == std::string_view::npos) return std::nullopt;
  auto peer = SocketAddress::parse(value.substr(0, sp));
  auto exp = parse_u64(value.substr(sp + 1));
  if (!peer || !exp) return std::nullopt;
  return ChannelRecord{static_cast<uint16_t>(*n), *peer, *exp};
}

std::string_view event_name(EventType t) noexcept {
  switch (t) {
    case EventType::Create: return "create";
    case EventType::Refresh: return "refresh";
    case EventType::Permission: return "perm";
    case EventType::Channel: return "chan";
    case EventType::Delete: return "delete";
    case EventType::Resync: return "resync";
  }
  return "?";
}

std::optional<EventType> event_type(std::string_view n) noexcept {
  for (auto t : {EventType::Create, EventType::Refresh, EventType::Permission, EventType::Channel,
                 EventType::Delete, EventType::Resync})
    if (event_name(t) == n) return t;
  return std::nullopt;
}

}  // namespace turn::state
