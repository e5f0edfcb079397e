// SPDX-License-Identifier: Apache-2.0
// The one Redis client (common/redis/client.h) against real redis-server
// and Redis Sentinel processes on loopback: discovery, the ROLE check that
// keeps writes off replicas, a failover followed through +switch-master
// and READONLY, and every kind of bad input answered with an error that
// names it. Skips without redis-server.
#include "common/redis/client.h"

#include <gtest/gtest.h>

#include "tests/common/redis/redis_procs.h"

namespace turn::redis {
namespace {

using test::GarbageServer;
using test::RedisNode;
using test::SentinelNode;

#define NEED_REDIS()                                                              \
  do {                                                                            \
    if (!test::have_redis_server()) GTEST_SKIP() << "redis-server not installed"; \
  } while (0)

Endpoint via_sentinels(std::vector<uint16_t> ports, std::string master = "dpt") {
  Endpoint e;
  e.enabled = true;
  for (auto p : ports) e.sentinels.push_back({"127.0.0.1", p});
  e.master = std::move(master);
  e.connect_timeout_ms = 500;
  e.io_timeout_ms = 1000;
  return e;
}

// connect() must throw; returns its message.
std::string connect_error(Client& c) {
  try {
    c.connect();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "connected to " << c.where();
  return "";
}

// The sentinel has seen the replica in sync (it learns it from the
// replica's INFO, every few seconds): only then can it fail over to it.
bool sentinel_knows_replica(uint16_t sentinel, int ms = 20000) {
  for (int i = 0; i < ms / 200; ++i) {
    std::string out;
    std::string cmd = "redis-cli -p " + std::to_string(sentinel) + " sentinel replicas dpt 2>&1";
    if (FILE* f = ::popen(cmd.c_str(), "r")) {
      char buf[4096];
      while (size_t n = fread(buf, 1, sizeof buf, f)) out.append(buf, n);
      ::pclose(f);
    }
    if (out.find("flags\nslave\n") != std::string::npos && out.find("master-link-status\nok") != std::string::npos)
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return false;
}

TEST(RedisClient, WritesToADirectMasterAndKnowsItsRunId) {
  NEED_REDIS();
  RedisNode m;
  ASSERT_TRUE(m.up());
  Client c(test::direct(m.port()));
  c.connect();
  EXPECT_EQ(c.where(), "127.0.0.1:" + std::to_string(m.port()));
  EXPECT_EQ(c.run_id().size(), 40u) << c.run_id();
  EXPECT_EQ(c.command({"SET", "k", "v"}).str, "OK");
  EXPECT_EQ(c.command({"GET", "k"}).str, "v");
  // Pipelined: replies in order, error replies returned, not thrown.
  c.append({"SET", "a", "1"});
  c.append({"INCR", "k"});
  c.append({"GET", "a"});
  auto r = c.replies();
  ASSERT_EQ(r.size(), 3u);
  EXPECT_TRUE(r[1].is_error());
  EXPECT_EQ(r[2].str, "1");
  // In place, without copies.
  c.append_view({"HSET", "h", "f", "x"});
  c.append_view({"HGETALL", "h"});
  std::vector<std::string> seen;
  c.replies([&](ReplyRef x) {
    if (x.type() == Reply::Type::Array)
      for (size_t i = 0; i < x.size(); ++i) seen.emplace_back(x[i].str());
  });
  EXPECT_EQ(seen, (std::vector<std::string>{"f", "x"}));
}

TEST(RedisClient, RefusesAReplicaGivenAsTheMaster) {
  NEED_REDIS();
  RedisNode m;
  RedisNode r(m.port());
  ASSERT_TRUE(m.up() && r.up());
  Client c(test::direct(r.port()));
  std::string why = connect_error(c);
  EXPECT_NE(why.find("not the master"), std::string::npos) << why;
  EXPECT_NE(why.find(std::to_string(r.port())), std::string::npos) << why;
  EXPECT_FALSE(c.connected());
  EXPECT_EQ(c.stats().refused_replicas, 1u);
  EXPECT_THROW(c.command({"SET", "k", "v"}), Error) << "nothing is written to a replica";
  EXPECT_EQ(r.raw("EXISTS k"), "0");
}

TEST(RedisClient, WrongOrMissingPasswordIsAClearError) {
  NEED_REDIS();
  RedisNode m(0, "s3cret-pw");
  ASSERT_TRUE(m.up());
  Client wrong(test::direct(m.port(), "not-it"));
  std::string why = connect_error(wrong);
  EXPECT_NE(why.find("AUTH"), std::string::npos) << why;
  EXPECT_EQ(why.find("not-it"), std::string::npos) << "no password in errors: " << why;
  Client none(test::direct(m.port()));
  why = connect_error(none);
  EXPECT_NE(why.find("NOAUTH"), std::string::npos) << why;
  Client right(test::direct(m.port(), "s3cret-pw"));
  right.connect();
  EXPECT_TRUE(right.connected());
}

TEST(RedisClient, GarbageRepliesAreErrorsNotCrashes) {
  NEED_REDIS();
  for (std::string junk : {std::string("HTTP/1.1 400 Bad Request\r\n\r\n"), std::string("*2\r\n$1\r\nx\r\n"),
                           std::string("+OK\r\n"), std::string("\x00\xff\xfe garbage", 12), std::string(":12\r\n")}) {
    GarbageServer g(junk);
    Client direct_c(test::direct(g.port()));
    std::string why = connect_error(direct_c);
    EXPECT_FALSE(why.empty());
    EXPECT_NE(why.find(std::to_string(g.port())), std::string::npos) << why;
    Client via(via_sentinels({g.port()}));
    why = connect_error(via);
    EXPECT_NE(why.find(std::to_string(g.port())), std::string::npos) << why;
  }
}

TEST(RedisClient, UnreachableSentinelsAreEachNamed) {
  NEED_REDIS();
  uint16_t a = test::free_tcp_port(), b = test::free_tcp_port();
  Client c(via_sentinels({a, b}));
  std::string why = connect_error(c);
  EXPECT_NE(why.find("127.0.0.1:" + std::to_string(a)), std::string::npos) << why;
  EXPECT_NE(why.find("127.0.0.1:" + std::to_string(b)), std::string::npos) << why;
  EXPECT_NE(why.find("master 'dpt'"), std::string::npos) << why;
}

TEST(RedisClient, FindsTheMasterThroughTheSentinelsInTurn) {
  NEED_REDIS();
  RedisNode m;
  RedisNode r(m.port());
  SentinelNode s("dpt", m.port());
  ASSERT_TRUE(m.up() && r.up() && s.up());
  // The first sentinel is down, the second knows the master.
  Client c(via_sentinels({test::free_tcp_port(), s.port()}));
  c.connect();
  EXPECT_EQ(c.where(), "127.0.0.1:" + std::to_string(m.port()));
  EXPECT_EQ(c.command({"SET", "k", "v"}).str, "OK");
  EXPECT_FALSE(c.master_switched());
}

TEST(RedisClient, ASentinelThatKnowsNoSuchMasterIsAClearError) {
  NEED_REDIS();
  RedisNode m;
  SentinelNode s("dpt", m.port());
  ASSERT_TRUE(m.up() && s.up());
  Client c(via_sentinels({s.port()}, "nope"));
  std::string why = connect_error(c);
  EXPECT_NE(why.find("monitors no master named 'nope'"), std::string::npos) << why;
  // A data node given as a sentinel: its error reply is passed on.
  Client not_sentinel(via_sentinels({m.port()}));
  why = connect_error(not_sentinel);
  EXPECT_NE(why.find(std::to_string(m.port())), std::string::npos) << why;
  EXPECT_NE(why.find("SENTINEL"), std::string::npos) << why;
}

TEST(RedisClient, SentinelPasswords) {
  NEED_REDIS();
  RedisNode m(0, "data-pw");
  SentinelNode s("dpt", m.port(), "sentinel-pw", "data-pw");
  ASSERT_TRUE(m.up() && s.up());
  Endpoint e = via_sentinels({s.port()});
  e.password = "data-pw";
  e.sentinel_password = "wrong";
  Client bad(e);
  std::string why = connect_error(bad);
  EXPECT_NE(why.find("AUTH"), std::string::npos) << why;
  EXPECT_EQ(why.find("wrong"), std::string::npos) << why;
  e.sentinel_password = "sentinel-pw";
  e.password = "not-data-pw";
  Client bad_data(e);
  why = connect_error(bad_data);
  EXPECT_NE(why.find("named master"), std::string::npos) << why;
  EXPECT_NE(why.find("AUTH"), std::string::npos) << why;
  e.password = "data-pw";
  Client good(e);
  good.connect();
  EXPECT_EQ(good.command({"SET", "k", "v"}).str, "OK");
}

TEST(RedisClient, FollowsAFailoverThroughSwitchMaster) {
  NEED_REDIS();
  RedisNode m;
  RedisNode r(m.port());
  SentinelNode s("dpt", m.port());
  ASSERT_TRUE(m.up() && r.up() && s.up());
  ASSERT_TRUE(sentinel_knows_replica(s.port())) << "the sentinel never saw the replica";
  Client c(via_sentinels({s.port()}));
  c.connect();
  ASSERT_EQ(c.where(), "127.0.0.1:" + std::to_string(m.port()));
  ASSERT_EQ(c.command({"SET", "before", "1"}).str, "OK");
  std::string run_id = c.run_id();
  // The operator's (or Sentinel's own) failover: the replica becomes master.
  std::string out = "redis-cli -p " + std::to_string(s.port()) + " sentinel failover dpt >/dev/null 2>&1";
  ASSERT_EQ(::system(out.c_str()), 0);
  bool switched = false;
  for (int i = 0; i < 100 && !switched; ++i) {
    switched = c.master_switched();
    if (!switched) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(switched) << "no +switch-master within 10 s";
  EXPECT_EQ(c.stats().switch_messages, 1u);
  // The next command says so (disconnected); connecting again finds the
  // new master through the sentinel.
  EXPECT_THROW(c.command({"SET", "after", "1"}), Error);
  EXPECT_FALSE(c.connected());
  c.connect();
  EXPECT_EQ(c.command({"SET", "after", "1"}).str, "OK");
  EXPECT_EQ(c.where(), "127.0.0.1:" + std::to_string(r.port()));
  EXPECT_NE(c.run_id(), run_id);
  EXPECT_EQ(c.stats().master_changes, 1u);
  EXPECT_EQ(r.raw("GET after"), "1");
  EXPECT_EQ(r.raw("GET before"), "1") << "replicated before the failover";
}

TEST(RedisClient, AReadonlyReplyDropsTheConnectionAndWritesNothingThere) {
  NEED_REDIS();
  RedisNode a;
  RedisNode b;
  ASSERT_TRUE(a.up() && b.up());
  Client c(test::direct(a.port()));
  c.connect();
  ASSERT_EQ(c.command({"SET", "k", "1"}).str, "OK");
  // a is demoted behind the client's back.
  ASSERT_EQ(a.raw("REPLICAOF 127.0.0.1 " + std::to_string(b.port())), "OK");
  for (int i = 0; i < 50 && a.raw("ROLE").rfind("slave", 0) != 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  try {
    c.command({"SET", "k", "2"});
    ADD_FAILURE() << "a write to a demoted master succeeded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("READONLY"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(c.connected());
  EXPECT_EQ(c.stats().readonly_replies, 1u);
  // Reconnecting checks ROLE: refused.
  std::string why = connect_error(c);
  EXPECT_NE(why.find("not the master"), std::string::npos) << why;
}

}  // namespace
}  // namespace turn::redis
