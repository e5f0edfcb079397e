// SPDX-License-Identifier: Apache-2.0
#include "common/state/store.h"

namespace turn::state {

namespace {

std::vector<std::string> hset(std::string key, const Fields& f) {
  std::vector<std::string> args;
  args.reserve(2 + f.size() * 2);
  args.emplace_back("HSET");
  args.push_back(std::move(key));
  for (const auto& [k, v] : f) {
    args.push_back(k);
    args.push_back(v);
  }
  return args;
}

std::vector<std::string> xadd(std::string_view instance, const Event& e) {
  std::vector<std::string> args = {"XADD", event_stream_key(instance),         "MAXLEN",
                                   "~",    std::to_string(kEventStreamMaxLen), "*"};
  for (auto& [k, v] : e.to_fields()) {
    args.push_back(std::move(k));
    args.push_back(std::move(v));
  }
  return args;
}

}  // namespace

Snapshot visit_snapshot(redis::Client& c, std::string_view instance, uint64_t now_s, const SnapshotVisitor& visit,
                        size_t batch) {
  Snapshot s;
  // 1. Where the stream stands now: events after this are tailed.
  {
    auto r = c.command({"XREVRANGE", event_stream_key(instance), "+", "-", "COUNT", "1"});
    if (r.type == redis::Reply::Type::Array && !r.elements.empty() && !r.elements[0].elements.empty())
      s.stream_position = r.elements[0].elements[0].str;
  }
  // 2. The instance's live allocations.
  std::vector<std::string> ids;
  {
    auto r = c.command({"ZRANGEBYSCORE", alloc_index_key(instance), std::to_string(now_s), "+inf"});
    ids.reserve(r.elements.size());
    for (auto& e : r.elements) ids.push_back(std::move(e.str));
  }
  // 3. Their records (each with its permissions and channels), `batch`
  // allocations per round trip, read in place.
  if (batch == 0) batch = 1;
  FieldViews fields;
  for (size_t b = 0; b < ids.size(); b += batch) {
    size_t e = std::min(ids.size(), b + batch);
    for (size_t i = b; i < e; ++i) c.append_view({"HGETALL", alloc_key(ids[i])});
    size_t n = 0;
    c.replies([&](redis::ReplyRef r) {
      const std::string& id = ids[b + n++];
      if (r.size() == 0) return;  // deleted (or expired) since the index was read
      fields.clear();
      for (size_t k = 0; k + 1 < r.size(); k += 2) fields.emplace_back(r[k].str(), r[k + 1].str());
      std::string why;
      uint64_t bad_fields = 0;
      auto a = AllocationState::from_fields(fields, now_s, &bad_fields, &why);
      if (a && (a->record.id != id || a->record.instance != instance)) {
        why = "allocation record '" + id + "' names another id or instance";
        a.reset();
      }
      if (!a || bad_fields) {
        if (s.malformed == 0) s.first_error = why;
        s.malformed += a ? bad_fields : 1;
      }
      if (a) visit(*a);
    });
  }
  return s;
}

Snapshot read_snapshot(redis::Client& c, std::string_view instance, uint64_t now_s, size_t batch) {
  std::vector<AllocationState> all;
  Snapshot s = visit_snapshot(
      c, instance, now_s, [&](const AllocationState& a) { all.push_back(a); }, batch);
  s.allocations = std::move(all);
  return s;
}

std::vector<StreamEntry> read_events(redis::Client& c, std::string_view instance, const std::string& after,
                                     size_t count, int block_ms) {
  std::vector<std::string> args = {"XREAD", "COUNT", std::to_string(count)};
  if (block_ms > 0) {
    args.emplace_back("BLOCK");
    args.push_back(std::to_string(block_ms));
  }
  args.emplace_back("STREAMS");
  args.push_back(event_stream_key(instance));
  args.push_back(after);
  auto r = c.command(args);
  std::vector<StreamEntry> out;
  // [[stream, [[id, [k, v, ...]], ...]]] or nil
  if (r.type != redis::Reply::Type::Array || r.elements.empty()) return out;
  const auto& stream = r.elements[0];
  if (stream.elements.size() != 2) throw redis::Error("XREAD: unexpected reply shape");
  for (const auto& entry : stream.elements[1].elements) {
    if (entry.elements.size() != 2) throw redis::Error("XREAD: unexpected entry shape");
    out.push_back({entry.elements[0].str, redis::pairs(entry.elements[1])});
  }
  return out;
}

namespace {
// "<ms>-<seq>" as a pair; "0-0" for anything else.
std::pair<uint64_t, uint64_t> stream_id(std::string_view id) {
  auto dash = id.find('-');
  auto ms = parse_u64(id.substr(0, dash));
  auto seq = dash == std::string_view::npos ? std::optional<uint64_t>(0) : parse_u64(id.substr(dash + 1));
  if (!ms || !seq) return {0, 0};
  return {*ms, *seq};
}
}  // namespace

bool stream_gap(redis::Client& c, std::string_view instance, const std::string& after) {
  auto r = c.command({"XRANGE", event_stream_key(instance), "-", "+", "COUNT", "1"});
  if (r.type != redis::Reply::Type::Array || r.elements.empty() || r.elements[0].elements.empty()) return false;
  return stream_id(r.elements[0].elements[0].str) > stream_id(after);
}

std::vector<std::string> read_instances(redis::Client& c, uint64_t now_s, uint64_t max_age_s) {
  auto r = c.command({"ZRANGEBYSCORE", std::string(kInstanceIndex),
                      std::to_string(now_s > max_age_s ? now_s - max_age_s : 0), "+inf"});
  std::vector<std::string> out;
  for (auto& e : r.elements) out.push_back(std::move(e.str));
  return out;
}

namespace {
// HGETALL of `key_of(instance)` for every instance seen in the last
// `max_age_s`, pipelined; `each(instance, fields)` for those that exist.
template <typename KeyFn, typename Fn>
void each_instance_hash(redis::Client& c, uint64_t now_s, uint64_t max_age_s, KeyFn&& key_of, Fn&& each) {
  auto instances = read_instances(c, now_s, max_age_s);
  if (instances.empty()) return;
  for (const auto& i : instances) c.append({"HGETALL", key_of(i)});
  auto replies = c.replies();
  for (size_t i = 0; i < instances.size(); ++i) {
    auto f = redis::pairs(replies[i]);
    if (!f.empty()) each(instances[i], f);  // expired, or never written
  }
}
constexpr uint64_t kMemberIndexAgeS = 10;     // a few member TTLs
constexpr uint64_t kDataplaneIndexAgeS = 60;  // a data plane's status outlives a quiet turn-control
}  // namespace

std::vector<MembershipRecord> read_members(redis::Client& c, uint64_t now_s, uint64_t* malformed) {
  std::vector<MembershipRecord> out;
  each_instance_hash(c, now_s, kMemberIndexAgeS, member_key, [&](const std::string&, const Fields& f) {
    if (auto m = MembershipRecord::from_fields(f))
      out.push_back(std::move(*m));
    else if (malformed)
      ++*malformed;
  });
  return out;
}

std::vector<DataplaneStatus> read_dataplanes(redis::Client& c, uint64_t now_s, uint64_t* malformed) {
  std::vector<DataplaneStatus> out;
  each_instance_hash(c, now_s, kDataplaneIndexAgeS, dataplane_key, [&](const std::string& inst, const Fields& f) {
    if (auto s = DataplaneStatus::from_fields(inst, f))
      out.push_back(std::move(*s));
    else if (malformed)
      ++*malformed;
  });
  return out;
}

std::vector<TrafficRecord> read_traffic(redis::Client& c, const std::vector<std::string>& ids, size_t batch) {
  std::vector<TrafficRecord> out;
  out.reserve(ids.size());
  if (batch == 0) batch = 1;
  for (size_t b = 0; b < ids.size(); b += batch) {
    size_t e = std::min(ids.size(), b + batch);
    for (size_t i = b; i < e; ++i) c.append({"HGETALL", traffic_key(ids[i])});
    for (const auto& r : c.replies()) out.push_back(TrafficRecord::from_fields(redis::pairs(r)));
  }
  return out;
}

void append_event(redis::Client& c, std::string_view instance, const Event& e, uint64_t alloc_expires_s) {
  const std::string key = alloc_key(e.id);
  const std::string until = std::to_string(alloc_expires_s + kRecordGraceS);
  switch (e.type) {
    case EventType::Create:
      c.append(hset(key, e.record.to_fields()));
      c.append({"EXPIREAT", key, until});
      c.append({"ZADD", alloc_index_key(instance), std::to_string(e.record.expires_s), e.id});
      // The traffic hash exists from the start with the allocation's expiry,
      // so that the data planes' HINCRBYs keep it (they never set one).
      c.append({"HSETNX", traffic_key(e.id), std::string(TrafficRecord::field_names(TrafficPath::Kernel)[0]), "0"});
      c.append({"EXPIREAT", traffic_key(e.id), until});
      break;
    case EventType::Refresh:
      c.append({"HSET", key, "expires", std::to_string(e.expires_s)});
      c.append({"EXPIREAT", key, until});
      c.append({"EXPIREAT", traffic_key(e.id), until});
      c.append({"ZADD", alloc_index_key(instance), std::to_string(e.expires_s), e.id});
      break;
    case EventType::Permission:
      c.append({"HSET", key, e.permission.field_name(), e.permission.value()});
      c.append({"EXPIREAT", key, until});
      break;
    case EventType::Channel:
      c.append({"HSET", key, e.channel.field_name(), e.channel.value()});
      c.append({"EXPIREAT", key, until});
      break;
    case EventType::Delete:
      c.append({"DEL", key, traffic_key(e.id)});
      c.append({"ZREM", alloc_index_key(instance), e.id});
      break;
    case EventType::Resync:
      break;
  }
  c.append(xadd(instance, e));
}

void append_kernel_traffic(redis::Client& c, std::string_view id, const Traffic& t, uint64_t alloc_expires_s) {
  c.append(hset(traffic_key(id), TrafficRecord::fields(TrafficPath::Kernel, t)));
  c.append({"EXPIREAT", traffic_key(id), std::to_string(alloc_expires_s + kRecordGraceS)});
}

void append_fast_traffic(redis::Client& c, std::string_view id, const Traffic& d) {
  const auto& n = TrafficRecord::field_names(TrafficPath::Fast);
  const std::string key = traffic_key(id);
  const uint64_t v[4] = {d.packets_to_peer, d.bytes_to_peer, d.packets_to_client, d.bytes_to_client};
  for (size_t i = 0; i < 4; ++i) c.append({"HINCRBY", key, std::string(n[i]), std::to_string(v[i])});
  // turn-control keeps a live allocation's traffic expiring with it (and
  // deletes it with the allocation); a push that lands after that delete
  // would recreate the key for good: NX gives only such a key an expiry.
  c.append({"EXPIRE", key, std::to_string(kOrphanTrafficTtlS), "NX"});
}

void append_dataplane_status(redis::Client& c, const DataplaneStatus& s) {
  // One transaction: readers never see the hash half written or without
  // its expiry (a restarted data plane may have fewer workers: DEL first).
  const std::string key = dataplane_key(s.instance);
  c.append({"MULTI"});
  c.append({"DEL", key});
  c.append(hset(key, s.to_fields()));
  c.append({"EXPIRE", key, std::to_string(kDataplaneStatusTtlS)});
  c.append({"ZADD", std::string(kInstanceIndex), std::to_string(s.updated_s), s.instance});
  c.append({"EXEC"});
}

void append_membership(redis::Client& c, const MembershipRecord& m, uint64_t ttl_ms, uint64_t now_s) {
  // One transaction: a membership key without its expiry would fence its
  // instance forever (never adoptable), one without fields would look dead.
  const std::string key = member_key(m.instance);
  c.append({"MULTI"});
  c.append(hset(key, m.to_fields()));
  c.append({"PEXPIRE", key, std::to_string(ttl_ms)});
  c.append({"ZADD", std::string(kInstanceIndex), std::to_string(now_s), m.instance});
  c.append({"EXEC"});
}

}  // namespace turn::state
