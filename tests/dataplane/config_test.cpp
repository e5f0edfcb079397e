// SPDX-License-Identifier: Apache-2.0
// turn-dataplane's config: single-port configs as before, several ports
// ("port=" starts one), routes, and clear errors naming the key and value.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "dataplane/config.h"
#include "dataplane/idle_sleep.h"
#include "dataplane/tx_drain.h"

namespace turn::dp {
namespace {

uint32_t ip(const char* s) {
  in_addr a{};
  inet_pton(AF_INET, s, &a);
  return a.s_addr;
}

DpConfig parse(const std::vector<std::string>& lines) {
  DpConfig c;
  int n = 0;
  for (const auto& l : lines) apply_dp_line(l, "t:" + std::to_string(++n), c);
  finish_dp_config(c);
  return c;
}

std::string error_of(const std::vector<std::string>& lines) {
  try {
    parse(lines);
  } catch (const DpConfigError& e) {
    return e.what();
  }
  return "(accepted)";
}

TEST(DpConfig, SinglePortNeedsNoPortLine) {
  DpConfig c = parse({"ip=10.78.0.2/24", "gateway=10.78.0.1"});
  ASSERT_EQ(c.interfaces.size(), 1u);
  EXPECT_EQ(c.interfaces[0].port_id, 0);
  EXPECT_EQ(c.interfaces[0].ip, ip("10.78.0.2"));
  EXPECT_EQ(c.interfaces[0].netmask, ip("255.255.255.0"));
  EXPECT_EQ(c.interfaces[0].gateway, ip("10.78.0.1"));
  EXPECT_EQ(c.interfaces[0].tap_name, "dpt0");
  EXPECT_EQ(c.relay_ips, std::vector<uint32_t>{ip("10.78.0.2")}) << "relay-ip defaults to the first port's address";
  EXPECT_TRUE(c.checksum_offload);
}

TEST(DpConfig, DualHomedEdge) {
  DpConfig c = parse({"port=0", "ip=192.0.2.10/24", "gateway=192.0.2.1", "tap=ext0", "port=1", "ip=10.1.0.10/16",
                      "route=10.2.0.0/16,10.1.0.1", "relay-ip=192.0.2.10", "checksum-offload=off"});
  ASSERT_EQ(c.interfaces.size(), 2u);
  EXPECT_EQ(c.interfaces[0].tap_name, "ext0");
  EXPECT_EQ(c.interfaces[1].port_id, 1);
  EXPECT_EQ(c.interfaces[1].tap_name, "dpt1");
  EXPECT_EQ(c.interfaces[1].gateway, 0u);
  ASSERT_EQ(c.routes.size(), 1u);
  EXPECT_EQ(c.routes[0].gateway, ip("10.1.0.1"));
  EXPECT_FALSE(c.checksum_offload);
}

TEST(DpConfig, StaticNeighbourInEitherSpelling) {
  DpConfig c =
      parse({"ip=10.78.0.2/24", "neighbour=10.78.0.1,02:00:00:00:00:01", "neighbor=10.78.0.9,0a:bb:cc:dd:ee:ff"});
  ASSERT_EQ(c.neighbours.size(), 2u);
  EXPECT_EQ(c.neighbours[0].first, ip("10.78.0.1"));
  EXPECT_EQ(c.neighbours[0].second.b[5], 0x01);
  EXPECT_EQ(c.neighbours[1].first, ip("10.78.0.9"));
  EXPECT_EQ(c.neighbours[1].second.b[0], 0x0a);
  EXPECT_EQ(c.neighbours[1].second.b[5], 0xff);
  EXPECT_NE(error_of({"ip=10.78.0.2/24", "neighbour=10.78.0.1"}).find("neighbour=10.78.0.1: expected IP,MAC"),
            std::string::npos)
      << error_of({"ip=10.78.0.2/24", "neighbour=10.78.0.1"});
  EXPECT_NE(error_of({"ip=10.78.0.2/24", "neighbor=10.78.0.1,02:00:00:00:01"}).find("MAC must be"), std::string::npos);
}

TEST(DpConfig, ErrorsNameTheKeyAndValue) {
  struct Case {
    std::vector<std::string> lines;
    std::string want;
  };
  const std::vector<Case> cases = {
      {{"gateway=10.0.0.1"}, "ip= is required"},
      {{"ip=10.0.0.300/24"}, "ip=10.0.0.300/24: not an IPv4 address"},
      {{"ip=10.0.0.3/33"}, "prefix length out of range 0..32"},
      {{"port=0", "ip=10.0.0.2/24", "port=0", "ip=10.0.1.2/24"}, "port=0 is listed twice"},
      {{"port=0", "ip=10.0.0.2/24", "tap=a", "port=1", "ip=10.0.1.2/24", "tap=a"}, "tap=a is already"},
      {{"ip=10.0.0.2/24", "gateway=10.9.0.1"}, "gateway=10.9.0.1 is not on the port's link"},
      {{"port=0", "ip=10.0.0.2/24", "gateway=10.0.0.1", "port=1", "ip=10.0.1.2/24", "gateway=10.0.1.1"},
       "more than one port"},
      {{"ip=10.0.0.2/24", "route=10.5.0.0/16,10.7.0.1"}, "gateway 10.7.0.1 is on none"},
      {{"ip=10.0.0.2/24", "route=10.5.0.1/16,10.0.0.1"}, "host bits set"},
      {{"ip=10.0.0.2/24", "route=10.5.0.0/16"}, "expected NET/LEN,GATEWAY"},
      {{"ip=10.0.0.2/24", "checksum-offload=maybe"}, "checksum-offload=maybe: expected auto or off"},
      {{"ip=10.0.0.2/24", "tap=bad name!"}, "tap=bad name!"},
      {{"ip=10.0.0.2/24", "port=2000"}, "port=2000: out of range"},
      {{"ip=10.0.0.2/24", "exception-port=0"}, "exception-port=0 is a network port"},
      {{"ip=10.0.0.2/24", "frobnicate=1"}, "frobnicate=1: unknown key"},
      {{"ip=10.0.0.2/24", "relay-ip=10.0.0.2", "relay-ip=10.0.0.3", "relay-ip=10.0.0.4", "relay-ip=10.0.0.5",
        "relay-ip=10.0.0.6"},
       "at most 4"},
      // The state store: turn-control's syntax and errors (common/redis/endpoint.h).
      {{"ip=10.0.0.2/24", "state-redis=sentinel=10.0.0.9:26379"}, "needs master=NAME"},
      {{"ip=10.0.0.2/24", "state-redis=sentinel=10.0.0.9 master=dpturn"}, "sentinel '10.0.0.9'"},
      {{"ip=10.0.0.2/24", "state-redis=master=dpturn"}, "needs sentinel="},
      {{"ip=10.0.0.2/24", "state-redis=ip=10.0.0.9 port=0"}, "port=0"},
      {{"ip=10.0.0.2/24", "state-redis=ip=10.0.0.9 password=s3cr3t colour=red"}, "unknown item 'colour'"},
      {{"ip=10.0.0.2/24", "instance-id=a/b"}, "instance-id=a/b"},
      // The lexer and value parsers turn-control uses too (common/config/lexer.h): the same words.
      {{"ip=10.0.0.2/24", "listening-port=70000"}, "t:2: listening-port=70000: out of range 1..65535"},
      {{"ip=10.0.0.2/24", "legacy-channel-range=maybe"}, "t:2: legacy-channel-range=maybe: expected a boolean"},
      {{"ip=10.0.0.2/24", "min-port = x"}, "t:2: min-port=x: not a number"},
      {{"ip=10.0.0.2/24", "tx-drain-us=1001"}, "t:2: tx-drain-us=1001: out of range 0..1000"},
      {{"ip=10.0.0.2/24", "tx-drain-us=-5"}, "tx-drain-us=-5"},
      {{"ip=10.0.0.2/24", "idle-sleep-us=1001"}, "t:2: idle-sleep-us=1001: out of range 0..1000"},
      {{"ip=10.0.0.2/24", "idle-sleep-us=soon"}, "t:2: idle-sleep-us=soon: not a number"},
  };
  for (const auto& c : cases) {
    std::string e = error_of(c.lines);
    EXPECT_NE(e.find(c.want), std::string::npos) << "got: " << e << "\nwant: " << c.want;
  }
  std::vector<std::string> nine;
  for (int i = 0; i < 9; ++i) {
    nine.push_back("port=" + std::to_string(i));
    nine.push_back("ip=10.0." + std::to_string(i) + ".2/24");
  }
  EXPECT_NE(error_of(nine).find("at most 8 ports"), std::string::npos) << error_of(nine);
  EXPECT_EQ(error_of({"ip=10.0.0.2/24", "state-redis=ip=10.0.0.9 password=s3cr3t colour=red"}).find("s3cr3t"),
            std::string::npos);
}

TEST(DpConfig, TxDrainDefaultsTo20UsAndTakesZero) {
  EXPECT_EQ(parse({"ip=10.0.0.2/24"}).tx_drain_us, 20u);
  EXPECT_EQ(parse({"ip=10.0.0.2/24", "tx-drain-us=0"}).tx_drain_us, 0u);
  EXPECT_EQ(parse({"ip=10.0.0.2/24", "tx-drain-us=1000"}).tx_drain_us, 1000u);
}

// The worker's transmit lists (dataplane/worker.cpp, TxLists): a full burst leaves at
// once, a partial one when its first frame has waited the drain time, an
// empty one never; a drain of 0 sends after every rx burst, as before.
TEST(TxDrain, AListLeavesWhenFullOrWhenItsFirstFrameHasWaited) {
  const uint64_t drain = 1000;
  EXPECT_FALSE(tx_list_due(0, 32, 0, 1u << 30, drain)) << "an empty list is never sent";
  EXPECT_FALSE(tx_list_due(1, 32, 5000, 5999, drain)) << "one frame, 999 cycles old";
  EXPECT_TRUE(tx_list_due(1, 32, 5000, 6000, drain)) << "one frame, drain cycles old";
  EXPECT_TRUE(tx_list_due(32, 32, 5000, 5000, drain)) << "a whole burst, just queued";
  EXPECT_TRUE(tx_list_due(63, 32, 5000, 5001, drain)) << "more than a burst (two rx bursts)";
  EXPECT_FALSE(tx_list_due(31, 32, 5000, 5001, drain));
  EXPECT_TRUE(tx_list_due(1, 32, 5000, 5000, 0)) << "drain 0: sent in the iteration that queued it";
}

TEST(DpConfig, IdleSleepIsOffByDefault) {
  EXPECT_EQ(parse({"ip=10.0.0.2/24"}).idle_sleep_us, 0u) << "a poll-mode worker spins unless told";
  EXPECT_EQ(parse({"ip=10.0.0.2/24", "idle-sleep-us=100"}).idle_sleep_us, 100u);
  EXPECT_EQ(parse({"ip=10.0.0.2/24", "idle-sleep-us=1000"}).idle_sleep_us, 1000u);
}

// The worker's idle rule (dataplane/worker.cpp, IdleBackoff): it sleeps only
// after kIdleLoopsBeforeSleep loops in a row with no work and no frame held
// for a later tx burst, and never when idle-sleep-us is 0.
TEST(IdleSleep, OnlyAfterEnoughIdleLoopsWithNothingHeld) {
  IdleBackoff b;
  for (uint32_t i = 0; i < 10 * kIdleLoopsBeforeSleep; ++i) EXPECT_FALSE(b.after_loop(false, false, 0)) << "0: spin";
  b = {};
  for (uint32_t i = 1; i < kIdleLoopsBeforeSleep; ++i) ASSERT_FALSE(b.after_loop(false, false, 50)) << i;
  EXPECT_TRUE(b.after_loop(false, false, 50)) << "the kIdleLoopsBeforeSleep-th idle loop sleeps";
  EXPECT_FALSE(b.after_loop(false, false, 50)) << "then counts again from 0";
  b = {};
  for (uint32_t i = 1; i < kIdleLoopsBeforeSleep; ++i) ASSERT_FALSE(b.after_loop(false, false, 50));
  EXPECT_FALSE(b.after_loop(true, false, 50)) << "a loop with work starts the count again";
  for (uint32_t i = 1; i < kIdleLoopsBeforeSleep; ++i) ASSERT_FALSE(b.after_loop(false, false, 50));
  EXPECT_FALSE(b.after_loop(false, true, 50)) << "frames held for a tx burst: no sleep";
  for (uint32_t i = 1; i < kIdleLoopsBeforeSleep; ++i) ASSERT_FALSE(b.after_loop(false, false, 50));
  EXPECT_TRUE(b.after_loop(false, false, 50));
}

TEST(DpConfig, StateStoreInBothForms) {
  DpConfig c;
  apply_dp_line("state-redis=\"sentinel=10.0.0.9:26379,10.0.0.10:26379 master=dpturn sentinel-password=sp dbname=2\"",
                "t", c);
  EXPECT_TRUE(c.store.sentinel());
  EXPECT_EQ(c.store.sentinels.size(), 2u);
  EXPECT_EQ(c.store.master, "dpturn");
  EXPECT_EQ(c.store.db, 2);
  DpConfig d;
  EXPECT_EQ(d.store.describe(), "redis 127.0.0.1:6379") << "the default";
  apply_dp_line("state-redis=\"ip=10.0.0.9 port=6380\"", "t", d);
  EXPECT_EQ(d.store.describe(), "redis 10.0.0.9:6380");
}

}  // namespace
}  // namespace turn::dp
