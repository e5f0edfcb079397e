// SPDX-License-Identifier: Apache-2.0
// Limits that must not hurt real meetings (issue 16): with the default
// configuration, 1,000 clients behind one address (a carrier-grade or
// enterprise NAT) all set up a relay, while a forged-source flood of
// unauthenticated Allocates is answered with no more bytes than it sent,
// beyond one burst. Real Runtime on loopback, real UDP/TCP sockets.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/controlplane/turn_fixture.h"

namespace turn::cptest {
namespace {

using stun::Attr;
using stun::Method;
using Clock = std::chrono::steady_clock;

class Limits : public TurnServerFixture {};

Signing unsigned_request() {
  Signing s;
  s.integrity = Integrity::None;
  return s;
}
void requested_udp(stun::MessageBuilder& b) { b.add_requested_transport(stun::kTransportUdp); }

// Raises the open-file limit to `want` if the hard limit allows; the
// resulting soft limit.
rlim_t raise_fd_limit(rlim_t want) {
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur < want) {
    rl.rlim_cur = std::min(want, rl.rlim_max);
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
  }
  return rl.rlim_cur;
}

// A UDP socket bound to `ip` (any 127/8 address works on loopback), sending
// to the server: a "spoofed" source as the server sees it.
class RawUdp {
 public:
  RawUdp(const IpAddress& ip, const SocketAddress& server) {
    fd_ = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int big = 8 << 20;
    setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    std::memcpy(&a.sin_addr, ip.v4_bytes(), 4);
    bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    sockaddr_in s{};
    s.sin_family = AF_INET;
    s.sin_port = htons(server.port);
    std::memcpy(&s.sin_addr, server.ip.v4_bytes(), 4);
    connect(fd_, reinterpret_cast<sockaddr*>(&s), sizeof s);
  }
  ~RawUdp() { close(fd_); }
  RawUdp(const RawUdp&) = delete;
  RawUdp& operator=(const RawUdp&) = delete;
  size_t send(const std::vector<uint8_t>& m) { return ::send(fd_, m.data(), m.size(), 0) > 0 ? m.size() : 0; }
  // Reads what has arrived (while sending, so no answer is lost to a full
  // socket buffer); then drain() waits until nothing arrives for quiet_ms
  // (bounded by 10 s). bytes/datagrams: the totals so far.
  void collect() {
    while (recv_one(0)) {
    }
  }
  void drain(int quiet_ms) {
    auto deadline = Clock::now() + std::chrono::seconds(10);
    while (Clock::now() < deadline && recv_one(quiet_ms)) {
    }
  }
  size_t bytes = 0, datagrams = 0;

 private:
  bool recv_one(int wait_ms) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, wait_ms) <= 0) return false;
    ssize_t r = recv(fd_, buf_.data(), buf_.size(), MSG_DONTWAIT);
    if (r <= 0) return false;
    bytes += static_cast<size_t>(r);
    ++datagrams;
    return true;
  }
  int fd_ = -1;
  std::vector<uint8_t> buf_ = std::vector<uint8_t>(70000);
};

TEST_F(Limits, AThousandClientsBehindOneAddressAllSetUpWithTheDefaults) {
  // Each client holds a socket here and a relay socket in the server.
  if (raise_fd_limit(4096) < 2600) GTEST_SKIP() << "needs about 2,600 open files";
  cp::Config defaults;
  EXPECT_EQ(defaults.request_rate_limit, 0u);
  EXPECT_EQ(defaults.unauth_rate_limit, 500u);
  EXPECT_EQ(defaults.reflection_burst, 65536u);
  restart_with_default_limits({"min-port=20000", "max-port=31999"});
  ASSERT_EQ(cfg_->request_rate_limit, 0u);

  constexpr int kClients = 1000, kThreads = 10;
  constexpr auto kSpacing = std::chrono::milliseconds(5);  // all 1,000 start within 5 s
  UdpPeer peer;
  std::atomic<int> ok{0};
  std::mutex failures_mutex;
  std::vector<std::string> failures;
  std::vector<std::vector<std::unique_ptr<TurnClient>>> held(kThreads);
  auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = t; i < kClients; i += kThreads) {
        std::this_thread::sleep_until(start + kSpacing * i);
        std::string step = "challenge";
        try {
          // What a browser does: an unauthenticated Allocate (401), the
          // signed one, then CreatePermission, ChannelBind and a Refresh.
          auto c = client();
          Reply r = c->transact(c->build(Method::Allocate, requested_udp, unsigned_request()));
          bool good = r.error() == 401;
          if (good) step = "allocate", good = c->allocate().success();
          if (good) step = "permission", good = c->create_permission(peer.address()).success();
          if (good) step = "channel", good = c->channel_bind(0x4000, peer.address()).success();
          if (good) step = "refresh", good = c->refresh(600).success();
          if (good) {
            ++ok;
            held[t].push_back(std::move(c));
            continue;
          }
        } catch (const std::exception& e) {
          step += std::string(": ") + e.what();
        }
        std::lock_guard lock(failures_mutex);
        failures.push_back("client " + std::to_string(i) + " failed at " + step);
      }
    });
  }
  for (auto& th : threads) th.join();
  double took = std::chrono::duration<double>(Clock::now() - start).count();
  EXPECT_EQ(ok.load(), kClients) << (failures.empty() ? "" : failures.front()) << " (" << failures.size()
                                 << " failures)";
  EXPECT_LT(took, 20.0);
  EXPECT_EQ(drops(cp::CpDrop::RateLimited), 0u);
  EXPECT_EQ(drops(cp::CpDrop::UnauthRateLimited), 0u);
  EXPECT_EQ(drops(cp::CpDrop::ReflectionLimited), 0u);
  EXPECT_TRUE(allocations_become(kClients, 3000));
}

TEST_F(Limits, ForgedAllocateFloodIsAnsweredWithAtMostItsOwnBytesPlusTheBurst) {
  for (bool defaults : {true, false}) {
    // With the defaults; then with the 401 count limit off, so that only
    // the reflection budget stands between the flood and its victim.
    if (defaults)
      restart_with_default_limits({});
    else
      restart_with_default_limits({"unauth-rate-limit=0"});
    const size_t burst = cfg_->reflection_burst;
    auto c = client();
    auto req = c->build(Method::Allocate, requested_udp, unsigned_request());  // 28 bytes
    RawUdp victim(IpAddress::v4(0x7f000001), server());
    size_t sent = 0;
    for (int i = 0; i < 4000; ++i) {
      sent += victim.send(req);
      if (i % 50 == 49) {  // paced so that the server's socket buffer never overflows
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        victim.collect();
      }
    }
    victim.drain(500);
    size_t answers = victim.datagrams;
    size_t received = victim.bytes;
    RecordProperty(defaults ? "defaults_sent" : "sent", static_cast<int>(sent));
    RecordProperty(defaults ? "defaults_received" : "received", static_cast<int>(received));
    SCOPED_TRACE(defaults ? "defaults" : "unauth-rate-limit=0");
    EXPECT_LE(received, sent + burst) << answers << " answers";
    EXPECT_GT(answers, 0u);
    if (!defaults) {
      // Not vacuous: the budget was used up to its bound, then it held.
      EXPECT_GE(received + 200, sent + burst) << answers << " answers";
      EXPECT_GT(drops(cp::CpDrop::ReflectionLimited), 0u);
      // A stream client from the same address is not limited (its
      // handshake proved the address): every Allocate answered.
      auto tcp = client(Proto::Tcp);
      std::vector<uint8_t> many;
      for (int i = 0; i < 300; ++i) {
        auto m = tcp->build(Method::Allocate, requested_udp, unsigned_request());
        many.insert(many.end(), m.begin(), m.end());
      }
      tcp->send_raw(Bytes{many.data(), many.size()});
      int got = 0;
      while (tcp->next_frame(500)) ++got;
      EXPECT_EQ(got, 300);
    }
  }
}

TEST_F(Limits, ForgedSourcesTogetherShareOneUnearnedBudget) {
  // 32 source addresses, each with its own burst of 4 KiB; together they
  // may be answered at most 16 bursts (64 KiB) a second beyond what they sent.
  restart_with_default_limits({"unauth-rate-limit=0", "reflection-burst=4096"});
  auto c = client();
  auto req = c->build(Method::Allocate, requested_udp, unsigned_request());
  std::vector<std::unique_ptr<RawUdp>> sources;
  for (uint32_t i = 0; i < 32; ++i)
    sources.push_back(std::make_unique<RawUdp>(IpAddress::v4(0x7f000a00 + i), server()));
  size_t sent = 0;
  auto t0 = Clock::now();
  for (int round = 0; round < 100; ++round) {
    for (auto& s : sources) sent += s->send(req);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    for (auto& s : sources) s->collect();
  }
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  size_t received = 0;
  int quiet = 300;  // the first waits for stragglers; the others have had that time too
  for (auto& s : sources) {
    s->drain(quiet);
    quiet = 10;
    received += s->bytes;
  }
  RecordProperty("sent", static_cast<int>(sent));
  RecordProperty("received", static_cast<int>(received));
  double secs_total = secs + 0.5;
  EXPECT_LE(static_cast<double>(received), static_cast<double>(sent) + 65536.0 * (1.0 + secs_total));
  EXPECT_LT(received, sent + 32 * 4096) << "the per-source bursts alone would allow this much";
  EXPECT_GT(drops(cp::CpDrop::ReflectionLimited), 0u);
}

}  // namespace
}  // namespace turn::cptest
