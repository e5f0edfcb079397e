// SPDX-License-Identifier: Apache-2.0
// A throwaway redis-server for the control-plane tests: the common test
// node (tests/common/redis/redis_procs.h: a free loopback port, no
// persistence, killed by its PID when the object goes) with the endpoint
// turn-control's configuration takes.
#pragma once

#include <cstdint>

#include "common/redis/client.h"
#include "tests/common/redis/redis_procs.h"
#include "tests/controlplane/turn_client.h"

// A build without hiredis (-Dhiredis=disabled) has no Redis client and
// turn-control refuses state-redis and redis-userdb: the tests over Redis
// skip there (GTEST_SKIP returns from the test).
#define SKIP_WITHOUT_HIREDIS() \
  if (!::turn::redis::available()) GTEST_SKIP() << "this build has no hiredis (-Dhiredis=disabled)"

namespace turn::cptest {

class RedisServer {
 public:
  explicit RedisServer(uint16_t port = free_port()) : node_(0, "", port) {}
  [[nodiscard]] bool up() const { return node_.up(); }
  [[nodiscard]] redis::Endpoint endpoint() const {
    redis::Endpoint ep;
    ep.port = node_.port();
    ep.enabled = true;
    ep.connect_timeout_ms = 1000;
    return ep;
  }

 private:
  test::RedisNode node_;
};

}  // namespace turn::cptest
