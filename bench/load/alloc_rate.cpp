// SPDX-License-Identifier: Apache-2.0
// alloc_rate: control-plane throughput of any TURN server. Each client
// thread repeats, on a fresh UDP socket: Allocate (401, then authenticated),
// CreatePermission, ChannelBind, Refresh(0) — the set-up a WebRTC call
// does — for a fixed time, and reports completed cycles per second.
//
//   alloc_rate --server 127.0.0.1:3478 -u USER -p PASS [--threads 4]
//              [--seconds 10] [--peer 127.0.0.1:9]
// Bounded: stops after --seconds (at most 120). Loopback or test
// namespaces only.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "controlplane/client/turn_client.h"

using namespace turn;
using namespace std::chrono;

int main(int argc, char** argv) {
  std::string server = "127.0.0.1:3478", user, pass, peer = "127.0.0.1:9";
  int threads = 4, seconds = 10;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--server")
      server = v;
    else if (k == "-u")
      user = v;
    else if (k == "-p")
      pass = v;
    else if (k == "--threads")
      threads = std::atoi(v.c_str());
    else if (k == "--seconds")
      seconds = std::atoi(v.c_str());
    else if (k == "--peer")
      peer = v;
    else {
      std::fprintf(stderr, "alloc_rate: unknown option %s\n", k.c_str());
      return 2;
    }
  }
  auto srv = SocketAddress::parse(server);
  auto pr = SocketAddress::parse(peer);
  if (!srv || !pr || user.empty() || threads < 1 || threads > 64 || seconds < 1 || seconds > 120) {
    std::fprintf(
        stderr,
        "usage: alloc_rate --server IP:PORT -u USER -p PASS [--threads 1-64] [--seconds 1-120] [--peer IP:PORT]\n");
    return 2;
  }
  std::atomic<uint64_t> cycles{0}, failures{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> pool;
  std::string first_error;
  std::atomic<bool> have_error{false};
  auto start = steady_clock::now();
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      while (!stop.load(std::memory_order_relaxed)) {
        cp::TurnClient::Options o;
        o.server = *srv;
        o.username = user;
        o.password = pass;
        o.timeout = milliseconds(2000);
        cp::TurnClient c(o);
        bool ok = c.connect() && c.allocate(600) && c.create_permission(pr->ip) && c.channel_bind(0x4000, *pr) &&
                  c.refresh(0);
        if (ok) {
          cycles.fetch_add(1);
        } else {
          failures.fetch_add(1);
          if (!have_error.exchange(true)) first_error = c.error();
        }
      }
    });
  }
  std::this_thread::sleep_for(seconds * 1s);
  stop = true;
  for (auto& th : pool) th.join();
  double elapsed = duration<double>(steady_clock::now() - start).count();
  std::printf("server=%s threads=%d seconds=%.1f cycles=%llu failures=%llu rate=%.1f/s%s%s\n", server.c_str(), threads,
              elapsed, static_cast<unsigned long long>(cycles.load()), static_cast<unsigned long long>(failures.load()),
              static_cast<double>(cycles.load()) / elapsed, have_error ? " first_error=" : "",
              have_error ? first_error.c_str() : "");
  return failures.load() > cycles.load() ? 1 : 0;
}
