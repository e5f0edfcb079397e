// SPDX-License-Identifier: Apache-2.0
// turn-control as a build without hiredis (-Dhiredis=disabled) makes it,
// checked in every build: this binary links common/redis/client_none.cpp
// ahead of the libraries (tests/controlplane/meson.build), so its Redis
// client is the one that says "no hiredis". What that build promises: the
// stub covers the client's whole interface (else the link fails), the keys
// that need Redis are refused by name at start-up, and one host serves and
// relays on the kernel path with no state store.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/redis/client.h"
#include "controlplane/config/config.h"
#include "tests/controlplane/turn_fixture.h"

namespace turn::cptest {
namespace {

TEST(NoHiredis, TheRedisClientSaysSoInsteadOfReachingRedis) {
  EXPECT_FALSE(redis::available());
  redis::Endpoint ep;
  ep.enabled = true;
  ep.port = 6379;
  redis::Client c(ep);
  try {
    c.connect();
    FAIL() << "connect() returned";
  } catch (const redis::Error& e) {
    EXPECT_NE(std::string(e.what()).find("this build has no hiredis"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(c.connected());
  EXPECT_THROW(c.command({"PING"}), redis::Error);
  EXPECT_THROW(c.append({"PING"}), redis::Error);
  EXPECT_FALSE(c.master_switched());
}

std::string refusal(const std::vector<std::string>& lines) {
  cp::Config cfg;
  for (const auto& l : lines) cp::apply_config_line(l, "test", cfg);
  try {
    cp::validate_config(cfg);
  } catch (const cp::ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(NoHiredis, TheKeysThatNeedRedisAreRefusedByNameAtStartUp) {
  const std::vector<std::string> plain = {"listening-ip=127.0.0.1", "relay-ip=127.0.0.1", "user=a:b", "realm=r",
                                          "no-tls"};
  EXPECT_EQ(refusal(plain), "");
  for (const char* key : {"state-redis", "redis-userdb"}) {
    auto lines = plain;
    lines.push_back(std::string(key) + "=ip=127.0.0.1 port=6379");
    auto msg = refusal(lines);
    EXPECT_TRUE(msg.starts_with(std::string(key) + " is set, but this turn-control was built without hiredis")) << msg;
    EXPECT_NE(msg.find("-Dhiredis=disabled"), std::string::npos) << msg;
    EXPECT_NE(msg.find("remove " + std::string(key)), std::string::npos) << msg;
  }
  // Refused before the checks that would take redis-userdb for granted.
  EXPECT_TRUE(refusal({"use-auth-secret", "redis-userdb=ip=127.0.0.1"}).starts_with("redis-userdb is set"));
}

class NoHiredisServer : public TurnServerFixture {};

TEST_F(NoHiredisServer, OneHostRelaysOnTheKernelPathWithoutAStore) {
  SocketAddress relay;
  auto c = allocated(&relay);
  EXPECT_NE(relay.port, 0);
  UdpPeer peer;
  ASSERT_TRUE(c->create_permission(peer.address()).success());
  const std::vector<uint8_t> data = {1, 2, 3, 4, 5};
  c->send_indication(peer.address(), Bytes(data));
  auto d = peer.receive(2000);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->data, data);
  EXPECT_EQ(d->from, relay);
  EXPECT_EQ(runtime().state_store(), nullptr);
  EXPECT_EQ(runtime().userdb(), nullptr);
  // What needs the store says so.
  auto adopted = runtime().adopt("other", std::chrono::milliseconds(0));
  EXPECT_EQ(adopted.status, 503);
  EXPECT_NE(adopted.error.find("state-redis is not set"), std::string::npos) << adopted.error;
}

// hiredis.h is included by common/redis/client.cpp alone (the one file a
// build without hiredis leaves out): anything else would break that build,
// which CI does not make.
TEST(NoHiredis, OnlyTheRedisClientIncludesHiredis) {
  namespace fs = std::filesystem;
  const fs::path root = TURN_SOURCE_ROOT;
  std::vector<std::string> found;
  for (const char* dir : {"common", "controlplane"})
    for (const auto& f : fs::recursive_directory_iterator(root / dir)) {
      if (!f.is_regular_file()) continue;
      auto ext = f.path().extension();
      if (ext != ".cpp" && ext != ".h") continue;
      std::ifstream in(f.path());
      for (std::string line; std::getline(in, line);)
        if (line.starts_with("#include <hiredis")) {
          found.push_back(fs::relative(f.path(), root).string());
          break;
        }
    }
  EXPECT_EQ(found, std::vector<std::string>{"common/redis/client.cpp"});
}

}  // namespace
}  // namespace turn::cptest
