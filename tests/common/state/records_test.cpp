// SPDX-License-Identifier: Apache-2.0
// The typed state contract (common/state/records.h, keys.h): every record
// and event encodes and decodes back to itself, and whatever the store
// holds that is missing or malformed is refused with a reason, never
// half-decoded.
#include "common/state/records.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace turn::state {
namespace {

SocketAddress sa(const char* text) { return *SocketAddress::parse(text); }
IpAddress ip(const char* text) { return *IpAddress::parse(text); }

AllocationRecord record() {
  AllocationRecord r;
  r.id = allocation_id("edge1", "203.0.113.10:49152");
  r.instance = "edge1";
  r.transport = Transport::Tls;
  r.client = sa("198.51.100.7:50123");
  r.server = sa("203.0.113.10:5349");
  r.relay = sa("203.0.113.10:49152");
  r.username = "1733130000:alice";
  r.realm = "example.org";
  r.expires_s = 1733130600;
  return r;
}

FieldViews views(const Fields& f) {
  FieldViews v;
  for (const auto& [k, x] : f) v.emplace_back(k, x);
  return v;
}

Fields without(Fields f, std::string_view name) {
  std::erase_if(f, [&](const auto& kv) { return kv.first == name; });
  return f;
}
Fields with(Fields f, std::string_view name, std::string value) {
  for (auto& [k, v] : f)
    if (k == name) v = std::move(value);
  return f;
}

TEST(StateKeys, AreSpelledOnceAndNameTheirInstance) {
  EXPECT_EQ(alloc_index_key("edge1"), "dpturn:allocs:edge1");
  EXPECT_EQ(event_stream_key("edge1"), "dpturn:events:edge1");
  EXPECT_EQ(member_key("edge1"), "dpturn:member:edge1");
  EXPECT_EQ(dataplane_key("edge1"), "dpturn:dataplane:edge1");
  EXPECT_EQ(alloc_key("edge1/1.2.3.4:5"), "dpturn:alloc:edge1/1.2.3.4:5");
  EXPECT_EQ(traffic_key("edge1/1.2.3.4:5"), "dpturn:alloc:edge1/1.2.3.4:5:traffic");
  EXPECT_EQ(allocation_id("edge1", "[2001:db8::1]:5"), "edge1/[2001:db8::1]:5");
  EXPECT_EQ(instance_of("edge1/[2001:db8::1]:5"), "edge1");
  EXPECT_EQ(instance_of("no-slash"), "");
  EXPECT_EQ(instance_of("/1.2.3.4:5"), "");
  EXPECT_EQ(coturn_allocation_prefix("r", "u", "i/1.2.3.4:5"), "turn/realm/r/user/u/allocation/i/1.2.3.4:5");
}

TEST(StateKeys, InstanceIdsAreSafeInKeysAndIds) {
  for (const std::string& ok : std::vector<std::string>{"edge1", "a", "host-1.example_2", std::string(64, 'x')})
    EXPECT_TRUE(valid_instance_id(ok)) << ok;
  for (const std::string& bad : std::vector<std::string>{"", "a/b", "a b", "a:b", "é", "a*", std::string(65, 'x')})
    EXPECT_FALSE(valid_instance_id(bad)) << bad;
}

TEST(AllocationRecord, RoundTrips) {
  auto r = record();
  EXPECT_EQ(AllocationRecord::from_fields(r.to_fields()), r);
  EXPECT_EQ(AllocationRecord::from_fields(views(r.to_fields())), r);
  r.client = sa("[2001:db8::7]:50123");
  r.transport = Transport::Udp;
  EXPECT_EQ(AllocationRecord::from_fields(r.to_fields()), r);
}

TEST(AllocationRecord, RefusesMissingOrMalformedFieldsNamingThem) {
  const Fields good = record().to_fields();
  for (const char* name : {"id", "instance", "transport", "client", "server", "relay", "expires"}) {
    std::string why;
    EXPECT_FALSE(AllocationRecord::from_fields(without(good, name), &why)) << name;
    EXPECT_NE(why.find(name), std::string::npos) << why;
  }
  for (auto [name, value] : {std::pair{"transport", "sctp"},
                             {"client", "1.2.3.4"},
                             {"relay", "[::1]:99999"},
                             {"expires", "-1"},
                             {"expires", "12x"},
                             {"server", ""}}) {
    std::string why;
    EXPECT_FALSE(AllocationRecord::from_fields(with(good, name, value), &why)) << name << "=" << value;
    EXPECT_NE(why.find(name), std::string::npos) << why;
  }
  // username and realm may be empty (an anonymous test server).
  EXPECT_TRUE(AllocationRecord::from_fields(with(good, "username", "")));
}

// A dual-stack allocation (RFC 8656 §7.2, ADDITIONAL-ADDRESS-FAMILY) has a
// second, IPv6 relayed address next to the IPv4 one: field relay6, absent
// for every other allocation (records written before it still decode).
TEST(AllocationRecord, DualStackCarriesTheIpv6RelayedAddress) {
  auto r = record();
  EXPECT_FALSE(r.dual());
  EXPECT_EQ(field(r.to_fields(), "relay6"), "") << "single-family records have no relay6 field";
  bool has = false;
  for (const auto& kv : r.to_fields()) has |= kv.first == "relay6";
  EXPECT_FALSE(has);
  r.relay6 = sa("[2001:db8::10]:50200");
  ASSERT_TRUE(r.dual());
  EXPECT_EQ(field(r.to_fields(), "relay6"), "[2001:db8::10]:50200");
  EXPECT_EQ(AllocationRecord::from_fields(r.to_fields()), r);
  EXPECT_EQ(AllocationRecord::from_fields(views(r.to_fields())), r);
  std::string why;
  auto ev = Event::from_fields(Event::create(r).to_fields(), &why);
  ASSERT_TRUE(ev) << why;
  EXPECT_EQ(ev->record.relay6, r.relay6) << "the create event carries it too";
  // Refused, naming relay6: not an address, IPv4 (ADDITIONAL-ADDRESS-FAMILY
  // is IPv6 only, §18.11), port 0, or next to an IPv6 relay.
  const Fields good = r.to_fields();
  for (const char* value : {"nope", "203.0.113.10:50200", "[2001:db8::10]:0", "[2001:db8::10]"}) {
    why.clear();
    EXPECT_FALSE(AllocationRecord::from_fields(with(good, "relay6", value), &why)) << value;
    EXPECT_NE(why.find("relay6"), std::string::npos) << why;
  }
  why.clear();
  EXPECT_FALSE(AllocationRecord::from_fields(with(good, "relay", "[2001:db8::11]:49152"), &why));
  EXPECT_NE(why.find("relay6"), std::string::npos) << why;
}

TEST(AllocationState, HoldsPermissionsAndChannelsInTheSameHash) {
  AllocationState s{record(),
                    {{ip("198.51.100.9"), 1733130300}, {ip("2001:db8::9"), 1733130700}},
                    {{0x4000, sa("198.51.100.9:7000"), 1733130290}, {0x7FFF, sa("[2001:db8::9]:7001"), 1733130601}}};
  Fields f = s.to_fields();
  EXPECT_EQ(field(f, "perm:198.51.100.9"), "1733130300");
  EXPECT_EQ(field(f, "chan:16384"), "198.51.100.9:7000 1733130290");
  uint64_t malformed = 0;
  EXPECT_EQ(AllocationState::from_fields(views(f), 0, &malformed), s);
  EXPECT_EQ(malformed, 0u);
  // Only live ones when asked: the first permission and the first channel are over.
  auto live = AllocationState::from_fields(views(f), 1733130301);
  ASSERT_TRUE(live);
  EXPECT_EQ(live->permissions.size(), 1u);
  EXPECT_EQ(live->channels.size(), 1u);
  EXPECT_EQ(live->channels[0].number, 0x7FFF);
}

TEST(AllocationState, SkipsAndCountsMalformedPermissionsAndChannels) {
  AllocationState s{record(), {{ip("198.51.100.9"), 1733130300}}, {{0x4000, sa("198.51.100.9:7000"), 1733130600}}};
  Fields f = s.to_fields();
  f.emplace_back("perm:not-an-ip", "1");
  f.emplace_back("perm:10.0.0.1", "soon");
  f.emplace_back("chan:16383", "198.51.100.9:7000 1");  // below 0x4000
  f.emplace_back("chan:32768", "198.51.100.9:7000 1");  // above 0x7FFF
  f.emplace_back("chan:16385", "198.51.100.9:7000");    // no expiry
  f.emplace_back("chan:16386", "nowhere 1733130600");
  uint64_t malformed = 0;
  std::string why;
  auto got = AllocationState::from_fields(views(f), 0, &malformed, &why);
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, s) << "the good ones kept";
  EXPECT_EQ(malformed, 6u);
  EXPECT_NE(why.find("perm:not-an-ip"), std::string::npos) << why;
}

TEST(Event, EveryTypeRoundTrips) {
  auto r = record();
  std::vector<Event> all = {Event::create(r),
                            Event::refresh(r.id, 1733131200),
                            Event::permission_installed(r.id, {ip("2001:db8::9"), 1733130300}),
                            Event::create([&] {
                              auto d = r;
                              d.relay6 = sa("[2001:db8::10]:50200");
                              return d;
                            }()),
                            Event::channel_bound(r.id, {0x4001, sa("198.51.100.9:7000"), 1733130600}),
                            Event::deleted(r.id),
                            Event::resync("edge1")};
  for (const auto& e : all) {
    std::string why;
    auto back = Event::from_fields(e.to_fields(), &why);
    ASSERT_TRUE(back) << event_name(e.type) << ": " << why;
    EXPECT_EQ(*back, e) << event_name(e.type);
    EXPECT_EQ(field(e.to_fields(), "type"), event_name(e.type));
  }
}

TEST(Event, RefusesWhatDoesNotDecode) {
  auto r = record();
  struct Case {
    Fields f;
    const char* reason;
  };
  std::vector<Case> cases = {
      {{}, "type"},
      {{{"type", "teleport"}, {"id", r.id}}, "type"},
      {{{"type", "delete"}}, "id"},
      {{{"type", "refresh"}, {"id", r.id}}, "expires"},
      {{{"type", "refresh"}, {"id", r.id}, {"expires", "tomorrow"}}, "expires"},
      {{{"type", "perm"}, {"id", r.id}, {"peer", "1.2.3"}, {"expires", "5"}}, "peer"},
      {{{"type", "chan"}, {"id", r.id}, {"channel", "12"}, {"peer", "1.2.3.4:5"}, {"expires", "5"}}, "channel"},
      {{{"type", "chan"}, {"id", r.id}, {"channel", "16384"}, {"peer", "1.2.3.4"}, {"expires", "5"}}, "peer"},
      {without(Event::create(r).to_fields(), "relay"), "relay"},
  };
  for (const auto& c : cases) {
    std::string why;
    EXPECT_FALSE(Event::from_fields(c.f, &why)) << c.reason;
    EXPECT_NE(why.find(c.reason), std::string::npos) << why;
  }
}

TEST(TrafficRecord, KernelAndFastPathFieldsAreApartAndRoundTrip) {
  Traffic k{1, 100, 2, 200}, fast{30, 3000, 40, 4000};
  Fields f = TrafficRecord::fields(TrafficPath::Kernel, k);
  for (auto& kv : TrafficRecord::fields(TrafficPath::Fast, fast)) f.push_back(kv);
  EXPECT_EQ(TrafficRecord::from_fields(f), (TrafficRecord{k, fast}));
  EXPECT_EQ(field(f, "cp_bytes_to_client"), "200");
  EXPECT_EQ(field(f, "dp_packets_to_peer"), "30");
  // Absent or garbage: zero (a counter the other writer has not written yet).
  EXPECT_EQ(TrafficRecord::from_fields({{"dp_packets_to_peer", "x"}}), TrafficRecord{});
}

TEST(DataplaneStatus, RoundTripsWithItsWorkersAndReasons) {
  DataplaneStatus s;
  s.instance = "edge1";
  s.updated_s = 1733130000;
  s.rx_packets = 1000;
  s.tx_packets = 990;
  s.packets_to_peer = 505;
  s.packets_to_client = 355;
  s.allocations = 3;
  s.sync_lag_ms = 12;
  s.sync_events = 77;
  s.snapshots = 2;
  s.disconnects = 1;
  s.bad_events = 4;
  s.table_full = 5;
  s.bytes_to_peer = 81000;
  s.bytes_to_client = 62000;
  s.rx_ring_drops = 9;
  s.tsc_hz = 2'000'000'000;
  s.paths = {{"channel_data_to_peer", 400}, {"hairpin", 5}};
  s.drops = {{"no_permission", 7}};
  s.punts = {{"not_turn", 11}};
  s.workers = {{600, 60, 940, 1234, 5678}, {400, 40, 960, 4321, 8765}};
  auto back = DataplaneStatus::from_fields("edge1", s.to_fields());
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, s);
}

TEST(DataplaneStatus, RefusesAMalformedHashNamingTheField) {
  DataplaneStatus s;
  s.updated_s = 1;
  std::string why;
  EXPECT_FALSE(DataplaneStatus::from_fields("x", without(s.to_fields(), "updated"), &why));
  EXPECT_NE(why.find("updated"), std::string::npos) << why;
  EXPECT_FALSE(DataplaneStatus::from_fields("x", with(s.to_fields(), "rx_packets", "lots"), &why));
  EXPECT_NE(why.find("rx_packets"), std::string::npos) << why;
  EXPECT_FALSE(DataplaneStatus::from_fields("x", with(s.to_fields(), "workers", "100000"), &why));
  // A worker index beyond "workers" is ignored, never written out of bounds.
  Fields f = s.to_fields();
  f.emplace_back("worker7_rx_packets", "5");
  auto ok = DataplaneStatus::from_fields("x", f);
  ASSERT_TRUE(ok);
  EXPECT_TRUE(ok->workers.empty());
}

TEST(MembershipRecord, RoundTrips) {
  MembershipRecord m;
  m.instance = "edge1";
  m.state = MemberState::Draining;
  m.listen = {{Transport::Udp, sa("203.0.113.10:3478")}, {Transport::Tls, sa("[2001:db8::10]:5349")}};
  m.relay = {ip("203.0.113.10"), ip("2001:db8::10")};
  m.allocations = 42;
  m.updated_ms = 1733130000123;
  m.started_s = 1733120000;
  m.version = "0.1.0";
  auto back = MembershipRecord::from_fields(m.to_fields());
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, m);
  EXPECT_EQ(field(m.to_fields(), "listen"), "udp 203.0.113.10:3478,tls [2001:db8::10]:5349");
  // No listeners yet (still starting) is a valid record.
  m.listen.clear();
  m.relay.clear();
  EXPECT_EQ(MembershipRecord::from_fields(m.to_fields()), m);
}

TEST(MembershipRecord, RefusesMalformedFieldsNamingThem) {
  MembershipRecord m;
  m.instance = "edge1";
  m.listen = {{Transport::Udp, sa("203.0.113.10:3478")}};
  const Fields good = m.to_fields();
  for (auto [name, value] : {std::pair{"state", "sleeping"},
                             {"listen", "udp 203.0.113.10"},
                             {"listen", "sctp 1.2.3.4:5"},
                             {"relay", "1.2.3.4,nope"},
                             {"allocations", "-3"},
                             {"updated_ms", ""},
                             {"instance", ""}}) {
    std::string why;
    EXPECT_FALSE(MembershipRecord::from_fields(with(good, name, value), &why)) << name << "=" << value;
    EXPECT_NE(why.find(name), std::string::npos) << why;
  }
}

}  // namespace
}  // namespace turn::state
