// SPDX-License-Identifier: Apache-2.0
// redis::Client: the one Redis client of both binaries. A blocking hiredis
// connection with bounded timeouts, AUTH and SELECT, pipelining, and Redis
// Sentinel discovery (https://redis.io/docs/reference/sentinel-clients/):
//
//  * connect() asks the sentinels in turn (SENTINEL get-master-addr-by-name),
//    connects to the address one of them names, and checks ROLE there:
//    anything but "master" is refused, so nothing is ever written to a
//    replica. In the direct form it checks ROLE too.
//  * A connection error, a READONLY reply (a master demoted under us) or a
//    +switch-master message for our master (a subscription kept on the
//    sentinel that answered) drop the connection; the next connect() finds
//    the master again. Callers reconnect with backoff on RedisError.
//
// Errors name what was tried: "master 'dpturn' via sentinel(s) a,b: a:
// connection refused; b: no such master" and never a password. Not
// thread-safe: one client per thread. Off the packet path: exceptions.
// Without hiredis (-Dhiredis=disabled) the same interface is built from
// client_none.cpp: nothing reaches Redis, every attempt throws Error.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "common/redis/endpoint.h"

struct redisContext;
struct redisReply;

namespace turn::redis {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Reply {
  enum class Type { Nil, String, Integer, Array, Status, Error } type = Type::Nil;
  std::string str;
  long long integer = 0;
  std::vector<Reply> elements;
  [[nodiscard]] bool is_error() const noexcept { return type == Type::Error; }
};

// A reply read in place, as hiredis parsed it: no copies, valid only
// inside the callback of Client::replies(fn). For bulk readers (snapshots
// of 100k allocations), where copying every reply into Reply dominated.
class ReplyRef {
 public:
  explicit ReplyRef(const redisReply* r) noexcept : r_(r) {}
  [[nodiscard]] Reply::Type type() const noexcept;
  [[nodiscard]] std::string_view str() const noexcept;  // String, Status, Error
  [[nodiscard]] long long integer() const noexcept;
  [[nodiscard]] size_t size() const noexcept;  // Array elements
  [[nodiscard]] ReplyRef operator[](size_t i) const noexcept;
  [[nodiscard]] bool is_error() const noexcept { return type() == Reply::Type::Error; }
  [[nodiscard]] const redisReply* raw() const noexcept { return r_; }

 private:
  const redisReply* r_;
};

// Counters a client keeps over its life (for /metrics and status).
struct ClientStats {
  uint64_t connects = 0;          // successful connects (the first included)
  uint64_t master_changes = 0;    // connects that found another master than the last one
  uint64_t switch_messages = 0;   // +switch-master messages for our master
  uint64_t readonly_replies = 0;  // READONLY replies (a demoted master)
  uint64_t refused_replicas = 0;  // addresses refused because ROLE was not master
  uint64_t bad_replies = 0;       // sentinel or ROLE replies that made no sense
};

class Client {
 public:
  explicit Client(Endpoint ep);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Finds the master and connects; throws Error naming every address tried.
  void connect();
  [[nodiscard]] bool connected() const noexcept { return ctx_ != nullptr; }
  void disconnect() noexcept;

  // One command; throws Error on I/O failure (and disconnects) or on an
  // error reply (a READONLY reply also disconnects).
  Reply command(const std::vector<std::string>& args);
  // Pipelining: append() several, then replies() collects them in order.
  // Error replies come back as Reply::Type::Error, except READONLY, which
  // throws (and disconnects): the rest of the pipeline went to a replica.
  void append(const std::vector<std::string>& args);
  // The same without building strings (bulk readers).
  void append_view(std::initializer_list<std::string_view> args);
  std::vector<Reply> replies();
  // The same without copies: each pending reply, in order, to `each`.
  void replies(const std::function<void(ReplyRef)>& each);

  // True once a +switch-master for our master has been seen since connect()
  // (sentinel form; never blocks). command() and append() check it first
  // and throw (disconnected): the caller connects again, to the new master.
  [[nodiscard]] bool master_switched();

  // "host:port" of the connected master ("" when not connected).
  [[nodiscard]] std::string where() const;
  // The master's run_id at connect(): it changes when the store restarts
  // (empty) or fails over (another node), i.e. when writes may have been lost.
  [[nodiscard]] const std::string& run_id() const noexcept { return run_id_; }
  [[nodiscard]] const Endpoint& endpoint() const noexcept { return ep_; }
  [[nodiscard]] const ClientStats& stats() const noexcept { return stats_; }

 private:
  redisContext* open(const HostPort& at, const std::string& password, std::string& why) const;
  void connect_direct(const HostPort& at, std::string& why);
  void subscribe(const HostPort& sentinel);
  void check_switch();
  void append_argv(int argc, const char** argv, const size_t* lens);

  Endpoint ep_;
  redisContext* ctx_ = nullptr;
  redisContext* sub_ = nullptr;  // SUBSCRIBE +switch-master on a sentinel
  HostPort master_;
  std::string last_master_;
  std::string run_id_;
  size_t pending_ = 0;
  bool switched_ = false;
  ClientStats stats_;
};

// False in a build without hiredis (-Dhiredis=disabled): there the client
// is client_none.cpp, whose connect() and commands throw Error saying so.
[[nodiscard]] bool available() noexcept;

// Reply helpers for decoders: a flat array of name/value pairs.
[[nodiscard]] std::vector<std::pair<std::string, std::string>> pairs(const Reply& r);

}  // namespace turn::redis
