// SPDX-License-Identifier: Apache-2.0
// Encoding and decoding of the state contract (records.h).
#include "common/state/records.h"

#include <charconv>

namespace turn::state {

namespace {

void set_why(std::string* why, std::string text) {
  if (why) *why = std::move(text);
}

// Comma-separated lists in one field.
template <typename Fn>
bool each_item(std::string_view list, Fn&& fn) {
  size_t p = 0;
  while (p < list.size()) {
    size_t c = list.find(',', p);
    if (c == std::string_view::npos) c = list.size();
    if (!fn(list.substr(p, c - p))) return false;
    p = c + 1;
  }
  return true;
}

}  // namespace

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
std::string_view field(const FieldViews& f, std::string_view name) noexcept {
  for (const auto& [k, v] : f)
    if (k == name) return v;
  return {};
}

// ---- allocations ---------------------------------------------------------------

Fields AllocationRecord::to_fields() const {
  Fields f{{"id", id},
           {"instance", instance},
           {"transport", transport_name(transport)},
           {"client", client.to_string()},
           {"server", server.to_string()},
           {"relay", relay.to_string()}};
  if (dual()) f.emplace_back("relay6", relay6.to_string());
  f.emplace_back("username", username);
  f.emplace_back("realm", realm);
  f.emplace_back("expires", std::to_string(expires_s));
  return f;
}

namespace {
template <typename F>
std::optional<AllocationRecord> decode_allocation(const F& f, std::string* why) {
  AllocationRecord r;
  r.id = std::string(field(f, "id"));
  r.instance = std::string(field(f, "instance"));
  auto transport = parse_transport(field(f, "transport"));
  auto client = SocketAddress::parse(field(f, "client"));
  auto server = SocketAddress::parse(field(f, "server"));
  auto relay = SocketAddress::parse(field(f, "relay"));
  auto expires = parse_u64(field(f, "expires"));
  // relay6 (optional): RFC 8656 §7.2 gives a second relayed address only
  // as ADDITIONAL-ADDRESS-FAMILY IPv6 next to an IPv4 one (§18.11).
  std::string_view relay6_text = field(f, "relay6");
  auto relay6 = relay6_text.empty() ? std::optional<SocketAddress>(SocketAddress{}) : SocketAddress::parse(relay6_text);
  bool relay6_ok =
      relay6 && (relay6_text.empty() || (!relay6->ip.is_v4() && relay6->port != 0 && relay && relay->ip.is_v4()));
  const char* bad = r.id.empty()         ? "id"
                    : r.instance.empty() ? "instance"
                    : !transport         ? "transport"
                    : !client            ? "client"
                    : !server            ? "server"
                    : !relay             ? "relay"
                    : !relay6_ok         ? "relay6"
                    : !expires           ? "expires"
                                         : nullptr;
  if (bad) {
    set_why(why, std::string("allocation record: missing or malformed '") + bad + "'");
    return std::nullopt;
  }
  r.transport = *transport;
  r.client = *client;
  r.server = *server;
  r.relay = *relay;
  r.relay6 = *relay6;
  r.expires_s = *expires;
  r.username = std::string(field(f, "username"));
  r.realm = std::string(field(f, "realm"));
  return r;
}
}  // namespace

std::optional<AllocationRecord> AllocationRecord::from_fields(const Fields& f, std::string* why) {
  return decode_allocation(f, why);
}
std::optional<AllocationRecord> AllocationRecord::from_fields(const FieldViews& f, std::string* why) {
  return decode_allocation(f, why);
}

Fields AllocationState::to_fields() const {
  Fields f = record.to_fields();
  for (const auto& p : permissions) f.emplace_back(p.field_name(), p.value());
  for (const auto& c : channels) f.emplace_back(c.field_name(), c.value());
  return f;
}

std::optional<AllocationState> AllocationState::from_fields(const FieldViews& f, uint64_t live_from_s,
                                                            uint64_t* malformed, std::string* why) {
  auto rec = AllocationRecord::from_fields(f, why);
  if (!rec) return std::nullopt;
  AllocationState s{std::move(*rec), {}, {}};
  auto bad = [&](std::string_view name) {
    if (malformed && (*malformed)++ == 0 && why)
      *why = "field '" + std::string(name) + "' of '" + s.record.id + "' is malformed";
  };
  for (const auto& [name, value] : f) {
    if (name.starts_with(PermissionRecord::kFieldPrefix)) {
      auto p = PermissionRecord::parse(name.substr(PermissionRecord::kFieldPrefix.size()), value);
      if (!p)
        bad(name);
      else if (p->expires_s >= live_from_s)
        s.permissions.push_back(*p);
    } else if (name.starts_with(ChannelRecord::kFieldPrefix)) {
      auto c = ChannelRecord::parse(name.substr(ChannelRecord::kFieldPrefix.size()), value);
      if (!c)
        bad(name);
      else if (c->expires_s >= live_from_s)
        s.channels.push_back(*c);
    }
  }
  return s;
}

std::optional<PermissionRecord> PermissionRecord::parse(std::string_view name, std::string_view value) {
  auto ip = IpAddress::parse(name);
  auto exp = parse_u64(value);
  if (!ip || !exp) return std::nullopt;
  return PermissionRecord{*ip, *exp};
}

std::string ChannelRecord::value() const { return peer.to_string() + " " + std::to_string(expires_s); }

std::optional<ChannelRecord> ChannelRecord::parse(std::string_view name, std::string_view value) {
  auto n = parse_u64(name);
  auto sp = value.find(' ');
  if (!n || *n < 0x4000 || *n > 0x7FFF || sp == std::string_view::npos) return std::nullopt;
  auto peer = SocketAddress::parse(value.substr(0, sp));
  auto exp = parse_u64(value.substr(sp + 1));
  if (!peer || !exp) return std::nullopt;
  return ChannelRecord{static_cast<uint16_t>(*n), *peer, *exp};
}

// ---- events --------------------------------------------------------------------

std::string_view event_name(EventType t) noexcept {
  switch (t) {
    case EventType::Create:
      return "create";
    case EventType::Refresh:
      return "refresh";
    case EventType::Permission:
      return "perm";
    case EventType::Channel:
      return "chan";
    case EventType::Delete:
      return "delete";
    case EventType::Resync:
      return "resync";
  }
  return "?";
}

std::optional<EventType> event_type(std::string_view n) noexcept {
  for (auto t : {EventType::Create, EventType::Refresh, EventType::Permission, EventType::Channel, EventType::Delete,
                 EventType::Resync})
    if (event_name(t) == n) return t;
  return std::nullopt;
}

Event Event::create(const AllocationRecord& r) {
  Event e;
  e.type = EventType::Create;
  e.id = r.id;
  e.record = r;
  e.expires_s = r.expires_s;
  return e;
}
Event Event::refresh(std::string id, uint64_t expires_s) {
  Event e;
  e.type = EventType::Refresh;
  e.id = std::move(id);
  e.expires_s = expires_s;
  return e;
}
Event Event::permission_installed(std::string id, const PermissionRecord& p) {
  Event e;
  e.type = EventType::Permission;
  e.id = std::move(id);
  e.permission = p;
  e.expires_s = p.expires_s;
  return e;
}
Event Event::channel_bound(std::string id, const ChannelRecord& c) {
  Event e;
  e.type = EventType::Channel;
  e.id = std::move(id);
  e.channel = c;
  e.expires_s = c.expires_s;
  return e;
}
Event Event::deleted(std::string id) {
  Event e;
  e.type = EventType::Delete;
  e.id = std::move(id);
  return e;
}
Event Event::resync(std::string instance) {
  Event e;
  e.type = EventType::Resync;
  e.id = std::move(instance);
  return e;
}

Fields Event::to_fields() const {
  Fields f{{"type", std::string(event_name(type))}, {"id", id}};
  switch (type) {
    case EventType::Create:
      for (auto& kv : record.to_fields())
        if (kv.first != "id") f.push_back(std::move(kv));
      break;
    case EventType::Refresh:
      f.emplace_back("expires", std::to_string(expires_s));
      break;
    case EventType::Permission:
      f.emplace_back("peer", permission.peer.to_string());
      f.emplace_back("expires", std::to_string(permission.expires_s));
      break;
    case EventType::Channel:
      f.emplace_back("channel", std::to_string(channel.number));
      f.emplace_back("peer", channel.peer.to_string());
      f.emplace_back("expires", std::to_string(channel.expires_s));
      break;
    case EventType::Delete:
    case EventType::Resync:
      break;
  }
  return f;
}

std::optional<Event> Event::from_fields(const Fields& f, std::string* why) {
  auto type = event_type(field(f, "type"));
  std::string id(field(f, "id"));
  if (!type || id.empty()) {
    set_why(why, "event: missing or unknown 'type' or 'id'");
    return std::nullopt;
  }
  Event e;
  e.type = *type;
  e.id = std::move(id);
  auto expires = parse_u64(field(f, "expires"));
  switch (e.type) {
    case EventType::Create: {
      auto r = AllocationRecord::from_fields(f, why);
      if (!r) return std::nullopt;
      e.record = std::move(*r);
      e.expires_s = e.record.expires_s;
      break;
    }
    case EventType::Refresh:
      if (!expires) {
        set_why(why, "refresh event: missing or malformed 'expires'");
        return std::nullopt;
      }
      e.expires_s = *expires;
      break;
    case EventType::Permission: {
      auto p = PermissionRecord::parse(field(f, "peer"), field(f, "expires"));
      if (!p) {
        set_why(why, "perm event: malformed 'peer' or 'expires'");
        return std::nullopt;
      }
      e.permission = *p;
      e.expires_s = p->expires_s;
      break;
    }
    case EventType::Channel: {
      std::string value = std::string(field(f, "peer")) + " " + std::string(field(f, "expires"));
      auto c = ChannelRecord::parse(field(f, "channel"), value);
      if (!c) {
        set_why(why, "chan event: malformed 'channel', 'peer' or 'expires'");
        return std::nullopt;
      }
      e.channel = *c;
      e.expires_s = c->expires_s;
      break;
    }
    case EventType::Delete:
    case EventType::Resync:
      break;
  }
  return e;
}

// ---- traffic -------------------------------------------------------------------

const std::array<std::string_view, 4>& TrafficRecord::field_names(TrafficPath p) noexcept {
  static constexpr std::array<std::string_view, 4> kKernel = {"cp_packets_to_peer", "cp_bytes_to_peer",
                                                              "cp_packets_to_client", "cp_bytes_to_client"};
  static constexpr std::array<std::string_view, 4> kFast = {"dp_packets_to_peer", "dp_bytes_to_peer",
                                                            "dp_packets_to_client", "dp_bytes_to_client"};
  return p == TrafficPath::Kernel ? kKernel : kFast;
}

Fields TrafficRecord::fields(TrafficPath p, const Traffic& t) {
  const auto& n = field_names(p);
  return {{std::string(n[0]), std::to_string(t.packets_to_peer)},
          {std::string(n[1]), std::to_string(t.bytes_to_peer)},
          {std::string(n[2]), std::to_string(t.packets_to_client)},
          {std::string(n[3]), std::to_string(t.bytes_to_client)}};
}

TrafficRecord TrafficRecord::from_fields(const Fields& f) {
  auto read = [&](TrafficPath p) {
    const auto& n = field_names(p);
    Traffic t;
    t.packets_to_peer = parse_u64(field(f, n[0])).value_or(0);
    t.bytes_to_peer = parse_u64(field(f, n[1])).value_or(0);
    t.packets_to_client = parse_u64(field(f, n[2])).value_or(0);
    t.bytes_to_client = parse_u64(field(f, n[3])).value_or(0);
    return t;
  };
  return {read(TrafficPath::Kernel), read(TrafficPath::Fast)};
}

// ---- data-plane status ---------------------------------------------------------

namespace {
// The scalar fields of DataplaneStatus, named once for both directions.
template <typename S, typename Fn>
void each_scalar(S& s, Fn&& fn) {
  fn("updated", s.updated_s);
  fn("rx_packets", s.rx_packets);
  fn("tx_packets", s.tx_packets);
  fn("allocations", s.allocations);
  fn("sync_lag_ms", s.sync_lag_ms);
  fn("sync_events", s.sync_events);
  fn("snapshots", s.snapshots);
  fn("disconnects", s.disconnects);
  fn("bad_events", s.bad_events);
  fn("table_full", s.table_full);
  fn("packets_to_peer", s.packets_to_peer);
  fn("packets_to_client", s.packets_to_client);
  fn("bytes_to_peer", s.bytes_to_peer);
  fn("bytes_to_client", s.bytes_to_client);
  fn("rx_ring_drops", s.rx_ring_drops);
  fn("tsc_hz", s.tsc_hz);
}
template <typename W, typename Fn>
void each_worker_field(W& w, Fn&& fn) {
  fn("rx_packets", w.rx_packets);
  fn("busy_polls", w.busy_polls);
  fn("idle_polls", w.idle_polls);
  fn("busy_cycles", w.busy_cycles);
  fn("total_cycles", w.total_cycles);
}
constexpr std::string_view kPathPrefix = "path_", kDropPrefix = "drop_", kPuntPrefix = "punt_";
}  // namespace

Fields DataplaneStatus::to_fields() const {
  Fields f;
  each_scalar(*this, [&](std::string_view n, uint64_t v) { f.emplace_back(std::string(n), std::to_string(v)); });
  f.emplace_back("workers", std::to_string(workers.size()));
  for (const auto& [n, v] : paths) f.emplace_back(std::string(kPathPrefix) + n, std::to_string(v));
  for (const auto& [n, v] : drops) f.emplace_back(std::string(kDropPrefix) + n, std::to_string(v));
  for (const auto& [n, v] : punts) f.emplace_back(std::string(kPuntPrefix) + n, std::to_string(v));
  for (size_t i = 0; i < workers.size(); ++i) {
    std::string p = "worker" + std::to_string(i) + "_";
    each_worker_field(workers[i],
                      [&](std::string_view n, uint64_t v) { f.emplace_back(p + std::string(n), std::to_string(v)); });
  }
  return f;
}

std::optional<DataplaneStatus> DataplaneStatus::from_fields(std::string instance, const Fields& f, std::string* why) {
  DataplaneStatus s;
  s.instance = std::move(instance);
  std::string bad;
  each_scalar(s, [&](std::string_view n, uint64_t& v) {
    auto text = field(f, n);
    if (text.empty()) return;  // an older data plane: 0
    if (auto x = parse_u64(text))
      v = *x;
    else if (bad.empty())
      bad = std::string(n);
  });
  if (field(f, "updated").empty()) bad = "updated";
  auto nworkers = parse_u64(field(f, "workers")).value_or(0);
  if (nworkers > 1024) bad = "workers";
  if (!bad.empty()) {
    set_why(why, "data-plane status of '" + s.instance + "': missing or malformed '" + bad + "'");
    return std::nullopt;
  }
  s.workers.resize(nworkers);
  for (const auto& [k, v] : f) {
    auto value = parse_u64(v);
    if (!value) continue;
    std::string_view key = k;
    if (key.starts_with(kPathPrefix))
      s.paths.emplace_back(key.substr(kPathPrefix.size()), *value);
    else if (key.starts_with(kDropPrefix))
      s.drops.emplace_back(key.substr(kDropPrefix.size()), *value);
    else if (key.starts_with(kPuntPrefix))
      s.punts.emplace_back(key.substr(kPuntPrefix.size()), *value);
    else if (key.starts_with("worker") && key != "workers") {
      auto us = key.find('_');
      auto w = us == std::string_view::npos ? std::nullopt : parse_u64(key.substr(6, us - 6));
      if (!w || *w >= s.workers.size()) continue;
      std::string_view what = key.substr(us + 1);
      each_worker_field(s.workers[*w], [&](std::string_view n, uint64_t& x) {
        if (n == what) x = *value;
      });
    }
  }
  return s;
}

// ---- membership ------------------------------------------------------------------

std::string_view member_state_name(MemberState s) noexcept {
  return s == MemberState::Draining ? "draining" : "serving";
}

std::string ListenAddress::to_string() const {
  return std::string(transport_name(transport)) + " " + address.to_string();
}

Fields MembershipRecord::to_fields() const {
  std::string l, r;
  for (const auto& a : listen) l += (l.empty() ? "" : ",") + a.to_string();
  for (const auto& ip : relay) r += (r.empty() ? "" : ",") + ip.to_string();
  return {{"instance", instance},
          {"state", std::string(member_state_name(state))},
          {"redirects", redirects ? "1" : "0"},
          {"listen", l},
          {"relay", r},
          {"allocations", std::to_string(allocations)},
          {"updated_ms", std::to_string(updated_ms)},
          {"started", std::to_string(started_s)},
          {"version", version}};
}

std::optional<MembershipRecord> MembershipRecord::from_fields(const Fields& f, std::string* why) {
  MembershipRecord m;
  m.instance = std::string(field(f, "instance"));
  auto st = field(f, "state");
  auto allocs = parse_u64(field(f, "allocations"));
  auto updated = parse_u64(field(f, "updated_ms"));
  auto started = parse_u64(field(f, "started"));
  bool ok_listen = each_item(field(f, "listen"), [&](std::string_view item) {
    auto sp = item.find(' ');
    if (sp == std::string_view::npos) return false;
    auto t = parse_transport(item.substr(0, sp));
    auto a = SocketAddress::parse(item.substr(sp + 1));
    if (!t || !a) return false;
    m.listen.push_back({*t, *a});
    return true;
  });
  bool ok_relay = each_item(field(f, "relay"), [&](std::string_view item) {
    auto ip = IpAddress::parse(item);
    if (!ip) return false;
    m.relay.push_back(*ip);
    return true;
  });
  const char* bad = m.instance.empty()                      ? "instance"
                    : (st != "serving" && st != "draining") ? "state"
                    : !ok_listen                            ? "listen"
                    : !ok_relay                             ? "relay"
                    : !allocs                               ? "allocations"
                    : !updated                              ? "updated_ms"
                    : !started                              ? "started"
                                                            : nullptr;
  if (bad) {
    set_why(why, std::string("membership record: missing or malformed '") + bad + "'");
    return std::nullopt;
  }
  m.state = st == "draining" ? MemberState::Draining : MemberState::Serving;
  m.redirects = field(f, "redirects") == "1";
  m.allocations = *allocs;
  m.updated_ms = *updated;
  m.started_s = *started;
  m.version = std::string(field(f, "version"));
  return m;
}

}  // namespace turn::state
