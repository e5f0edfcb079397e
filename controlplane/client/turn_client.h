// SPDX-License-Identifier: Apache-2.0
// TurnClient: a small blocking TURN client (UDP or TCP) for turnctl probe,
// the registry's reachability checks and tests. Long-term credentials,
// 401/438 handled, retransmission over UDP (RFC 8489 §6.2.1, bounded).
// Not for the relay path.
#pragma once

#include <chrono>
#include <functional>
#include <cstdint>
#include <string>
#include <vector>

#include "common/crypto/integrity.h"
#include "common/net/address.h"
#include "common/stun/message.h"

namespace turn::cp {

class TurnClient {
public:
  struct Options {
    SocketAddress server;
    bool tcp = false;
    std::string username;
    std::string password;
    std::chrono::milliseconds timeout{2000};  // whole transaction, retransmissions included
  };

  explicit TurnClient(Options o);
  ~TurnClient();
  TurnClient(const TurnClient&) = delete;
  TurnClient& operator=(const TurnClient&) = delete;

  // Each returns true on success; on failure error() says why (with the
  // STUN error code where there is one).
  bool connect();
  bool allocate(uint32_t lifetime_s = 600);
  bool refresh(uint32_t lifetime_s);
  bool create_permission(const IpAddress& peer);
  bool channel_bind(uint16_t channel, const SocketAddress& peer);

  [[nodiscard]] const std::string& error() const noexcept { return error_; }
  [[nodiscard]] int error_code() const noexcept { return error_code_; }
  [[nodiscard]] const SocketAddress& relay() const noexcept { return relay_; }
  [[nodiscard]] const SocketAddress& mapped() const noexcept { return mapped_; }
  [[nodiscard]] uint32_t lifetime() const noexcept { return lifetime_; }
  // Round trip of the last successful transaction.
  [[nodiscard]] std::chrono::microseconds last_rtt() const noexcept { return rtt_; }

private:
  bool transact(uint16_t method, const std::function<void(void*)>& add_attrs);
  bool exchange(const std::vector<uint8_t>& request, std::vector<uint8_t>& response);

  Options o_;
  int fd_ = -1;
  std::string realm_, nonce_;
  crypto::Key key_;
  SocketAddress relay_, mapped_;
  uint32_t lifetime_ = 0;
  std::string error_;
  int error_code_ = 0;
  std::chrono::microseconds rtt_{0};
};

}  // namespace turn::cp
