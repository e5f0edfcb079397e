// SPDX-License-Identifier: Apache-2.0
// Where a Redis lives, as both binaries configure it (`state-redis`,
// `redis-userdb`): one parser for one syntax, used by turn-control and
// turn-dataplane alike. Two forms:
//
//   "ip=127.0.0.1 port=6379 [dbname=N] [password=P] [connect_timeout=S]"   (coturn's)
//   "sentinel=IP:PORT[,IP:PORT...] master=NAME [password=P] [sentinel-password=P] [dbname=N]"
//
// In the second, the master is found through Redis Sentinel (client.h).
// Pure C++: no hiredis here.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace turn::redis {

struct HostPort {
  std::string host;
  uint16_t port = 0;
  [[nodiscard]] std::string to_string() const;  // "1.2.3.4:5", "[::1]:5"
  bool operator==(const HostPort&) const = default;
};

struct Endpoint {
  bool enabled = false;
  // Direct form.
  std::string host = "127.0.0.1";
  uint16_t port = 6379;
  // Sentinel form: the sentinels, asked in turn, and the master's name.
  std::vector<HostPort> sentinels;
  std::string master;
  std::string password;           // the data nodes' (AUTH), both forms
  std::string sentinel_password;  // the sentinels' own (AUTH), sentinel form
  int db = 0;
  // Bounded waits: per address tried, and per command.
  int connect_timeout_ms = 2000;
  int io_timeout_ms = 2000;

  [[nodiscard]] bool sentinel() const noexcept { return !sentinels.empty(); }
  // For logs and errors, never with a password: "redis 127.0.0.1:6379" or
  // "master 'dpturn' via sentinels 10.0.0.1:26379,10.0.0.2:26379".
  [[nodiscard]] std::string describe() const;
};

// A bad value: `item` is the offending item as it may be shown (passwords
// hidden), `why` says what was expected.
class EndpointError : public std::runtime_error {
 public:
  EndpointError(std::string item, std::string why)
      : std::runtime_error(item + ": " + why), item_(std::move(item)), why_(std::move(why)) {}
  [[nodiscard]] const std::string& item() const noexcept { return item_; }
  [[nodiscard]] const std::string& why() const noexcept { return why_; }

 private:
  std::string item_, why_;
};

// 127.0.0.1:6379, enabled: where a data plane looks when not told.
[[nodiscard]] inline Endpoint local_endpoint() {
  Endpoint e;
  e.enabled = true;
  return e;
}

// Parses either form; throws EndpointError. The result is enabled.
[[nodiscard]] Endpoint parse_endpoint(std::string_view text);
// "IP:PORT", "[IPv6]:PORT" or "host:PORT"; nullopt-like failure as a throw.
[[nodiscard]] HostPort parse_host_port(std::string_view text);
// The value with every password item replaced by "<hidden>", for errors.
[[nodiscard]] std::string hide_passwords(std::string_view text);

}  // namespace turn::redis
