// SPDX-License-Identifier: Apache-2.0
// GoogleTest fixture for the turn-control end-to-end tests: an in-process
// Runtime on 127.0.0.1 (a free listening port, a small relay port range,
// one thread, loopback peers allowed, no admin API, no rate limits and no
// reflection budget), built through apply_config_line/validate_config like
// the real process. A test that needs other settings calls
// restart({"key=value", ...}); restart_with_default_limits() keeps the
// limits at their defaults.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "controlplane/config/config.h"
#include "controlplane/server/runtime.h"
#include "controlplane/server/shared_state.h"
#include "controlplane/server/stats.h"
#include "tests/controlplane/turn_client.h"

namespace turn::cptest {

inline constexpr const char* kRealm = "test.realm";
inline constexpr const char* kAlice = "alice";
inline constexpr const char* kAlicePass = "alice-secret";
inline constexpr const char* kBob = "bob";
inline constexpr const char* kBobPass = "bob-secret";
// carol is configured by key (user=carol:0x<MD5 key>), not by password,
// with restart({carol_line()}): then no SHA-256 key can be derived for every
// user, and the server offers MD5 only.
inline constexpr const char* kCarol = "carol";
inline constexpr const char* kCarolPass = "carol-secret";
inline constexpr uint16_t kRelayPorts = 24;

class TurnServerFixture : public ::testing::Test {
 protected:
  void SetUp() override { restart({}); }
  void TearDown() override { stop(); }

  void stop() {
    if (runtime_) runtime_->stop();
    runtime_.reset();
    cfg_.reset();
  }

  // (Re)starts the server with the base settings plus `extra` lines.
  void restart(const std::vector<std::string>& extra) { start(extra, false); }
  // The same, but request-rate-limit, unauth-rate-limit and
  // reflection-burst are left at their defaults.
  void restart_with_default_limits(const std::vector<std::string>& extra) { start(extra, true); }

  void start(const std::vector<std::string>& extra, bool default_limits) {
    stop();
    cfg_ = std::make_unique<cp::Config>();
    port_ = free_port();
    min_port_ = free_port_range(kRelayPorts);
    max_port_ = static_cast<uint16_t>(min_port_ + kRelayPorts - 1);
    std::vector<std::string> lines = {
        "listening-ip=127.0.0.1",
        "relay-ip=127.0.0.1",
        "listening-port=" + std::to_string(port_),
        "min-port=" + std::to_string(min_port_),
        "max-port=" + std::to_string(max_port_),
        std::string("realm=") + kRealm,
        std::string("user=") + kAlice + ":" + kAlicePass,
        std::string("user=") + kBob + ":" + kBobPass,
        "allow-loopback-peers",
        "admin-port=0",
        "relay-threads=1",
        "no-tls",
    };
    if (!default_limits)
      lines.insert(lines.end(), {"request-rate-limit=0", "unauth-rate-limit=0", "reflection-burst=0"});
    lines.insert(lines.end(), extra.begin(), extra.end());
    int n = 0;
    for (const auto& l : lines) cp::apply_config_line(l, "test:" + std::to_string(++n), *cfg_);
    cp::validate_config(*cfg_);
    runtime_ = std::make_unique<cp::Runtime>(*cfg_);
    runtime_->start();
  }

  [[nodiscard]] SocketAddress server() const { return SocketAddress{IpAddress::v4(0x7f000001), port_}; }

  // A client with alice's (or the given) credentials.
  std::unique_ptr<TurnClient> client(Proto p = Proto::Udp, const char* user = kAlice, const char* pass = kAlicePass) {
    auto c = std::make_unique<TurnClient>(p, server());
    c->set_credentials(user, pass, kRealm);
    return c;
  }

  // A client with a successful allocation; its relay address in *relay.
  std::unique_ptr<TurnClient> allocated(SocketAddress* relay, Proto p = Proto::Udp, const char* user = kAlice,
                                        const char* pass = kAlicePass) {
    auto c = client(p, user, pass);
    Reply r = c->allocate();
    EXPECT_TRUE(r.success()) << "Allocate failed with " << r.error();
    if (relay) *relay = r.xor_address(stun::Attr::XorRelayedAddress).value_or(SocketAddress{});
    return c;
  }

  [[nodiscard]] cp::Runtime& runtime() { return *runtime_; }

  // A drop counter summed over the server's threads.
  [[nodiscard]] uint64_t drops(cp::CpDrop reason) const {
    uint64_t n = 0;
    for (const auto* s : runtime_->stats()) n += s->drops[static_cast<size_t>(reason)].load();
    return n;
  }
  [[nodiscard]] size_t live_allocations() const { return runtime_->shared().registry.size(); }
  // The server answers before it updates the registry: wait (bounded) for
  // the count to become `n`.
  [[nodiscard]] bool allocations_become(size_t n, int timeout_ms = 1000) const {
    for (int waited = 0; live_allocations() != n && waited < timeout_ms; waited += 10) sleep_ms(10);
    return live_allocations() == n;
  }

  static std::string carol_line() { return std::string("user=") + kCarol + ":" + hex_key(kCarol, kCarolPass); }

  // "0x" + the hex MD5 long-term key, as coturn's user=name:0x... takes it.
  static std::string hex_key(const char* user, const char* pass) {
    auto k = crypto::long_term_key(stun::PasswordAlgorithm::Md5, user, kRealm, pass);
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string s = "0x";
    for (uint8_t b : k.view()) {
      s.push_back(kDigits[b >> 4]);
      s.push_back(kDigits[b & 15]);
    }
    return s;
  }

  static void sleep_ms(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

  std::unique_ptr<cp::Config> cfg_;
  std::unique_ptr<cp::Runtime> runtime_;
  uint16_t port_ = 0;
  uint16_t min_port_ = 0;
  uint16_t max_port_ = 0;
};

}  // namespace turn::cptest
