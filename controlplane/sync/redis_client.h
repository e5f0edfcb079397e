// SPDX-License-Identifier: Apache-2.0
// RedisClient: a blocking hiredis connection with timeouts, AUTH and
// SELECT, and pipelined commands. The only file in turn-control that names
// hiredis. Not thread-safe: one client per thread.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "controlplane/config/config.h"

struct redisContext;

namespace turn::cp {

class RedisError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

struct RedisReply {
  enum class Type { Nil, String, Integer, Array, Status, Error } type = Type::Nil;
  std::string str;
  long long integer = 0;
  std::vector<RedisReply> elements;
};

class RedisClient {
public:
  explicit RedisClient(RedisEndpoint ep);
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // Throws RedisError naming host:port and the reason.
  void connect();
  [[nodiscard]] bool connected() const noexcept { return ctx_ != nullptr; }
  void disconnect() noexcept;

  // One command; throws RedisError on I/O failure (and disconnects) or on
  // an error reply.
  RedisReply command(const std::vector<std::string>& args);
  // Pipelining: append() several, then replies() collects them in order.
  void append(const std::vector<std::string>& args);
  std::vector<RedisReply> replies();

  [[nodiscard]] std::string where() const { return ep_.host + ":" + std::to_string(ep_.port); }

private:
  RedisEndpoint ep_;
  redisContext* ctx_ = nullptr;
  size_t pending_ = 0;
};

}  // namespace turn::cp
