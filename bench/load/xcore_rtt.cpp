// SPDX-License-Identifier: Apache-2.0
// xcore_rtt: how long one cache line takes to go from one CPU to another and
// back, in ns (the median of several batches). scripts/bench-overload.sh runs
// it between steps on the server's and the generator's CPUs: on a VM the
// hypervisor moves vCPUs between host cores, and whether the two vCPUs share
// a last-level cache changes every cost that crosses them (a memif copy, the
// kernel's veth hand-over) by a factor that no server setting explains.
//
//   xcore_rtt CPU_A CPU_B [ROUND_TRIPS]     prints e.g. "57.3"
//
// Two threads pinned one to each CPU pass a counter back and forth through
// one 64-byte-aligned atomic. Run it with nothing else spinning on either
// CPU (the bench runs it under `chrt -f`, which preempts an idle-polling
// worker for the few milliseconds it takes).
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cerrno>
#include <cstring>
#include <string_view>
#include <thread>
#include <vector>

namespace {

bool parse(std::string_view s, long lo, long hi, long& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && p == s.data() + s.size() && out >= lo && out <= hi;
}

bool pin(long cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(static_cast<int>(cpu), &set);
  return pthread_setaffinity_np(pthread_self(), sizeof set, &set) == 0;
}

struct alignas(64) Line {
  std::atomic<long> turn{0};
};

}  // namespace

int main(int argc, char** argv) {
  long a = 0, b = 0, trips = 20000;
  const long ncpu = static_cast<long>(std::thread::hardware_concurrency());
  if (argc < 3 || argc > 4) {
    std::fprintf(stderr, "usage: xcore_rtt CPU_A CPU_B [ROUND_TRIPS]\n");
    return 2;
  }
  if (!parse(argv[1], 0, ncpu - 1, a) || !parse(argv[2], 0, ncpu - 1, b) || a == b) {
    std::fprintf(stderr, "xcore_rtt: CPUs '%s' and '%s' must be two different numbers in 0..%ld\n", argv[1], argv[2],
                 ncpu - 1);
    return 2;
  }
  if (argc == 4 && !parse(argv[3], 100, 10000000, trips)) {
    std::fprintf(stderr, "xcore_rtt: ROUND_TRIPS '%s' must be a number in 100..10000000\n", argv[3]);
    return 2;
  }
  constexpr int kBatches = 5;
  Line line;
  bool pinned_b = true;
  // The far thread answers every odd value with the next even one.
  std::thread far([&] {
    pinned_b = pin(b);
    for (long i = 0; i < kBatches * trips; ++i) {
      while (line.turn.load(std::memory_order_acquire) != 2 * i + 1) {
      }
      line.turn.store(2 * i + 2, std::memory_order_release);
    }
  });
  if (!pin(a)) {
    std::fprintf(stderr, "xcore_rtt: cannot pin to CPU %ld: %s\n", a, std::strerror(errno));
    std::_Exit(1);  // the far thread waits for a value that never comes
  }
  std::vector<double> ns;
  long v = 0;
  for (int k = 0; k < kBatches; ++k) {
    auto t0 = std::chrono::steady_clock::now();
    for (long i = 0; i < trips; ++i, ++v) {
      line.turn.store(2 * v + 1, std::memory_order_release);
      while (line.turn.load(std::memory_order_acquire) != 2 * v + 2) {
      }
    }
    ns.push_back(std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() /
                 static_cast<double>(trips));
  }
  far.join();
  if (!pinned_b) {
    std::fprintf(stderr, "xcore_rtt: cannot pin to CPU %ld\n", b);
    return 1;
  }
  std::sort(ns.begin(), ns.end());
  std::printf("%.1f\n", ns[kBatches / 2]);
  return 0;
}
