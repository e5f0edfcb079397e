// SPDX-License-Identifier: Apache-2.0
// Runtime and signals: start() leaves its caller's signal mask as it found
// it (its own threads block SIGINT/SIGTERM/SIGHUP for turn-control's
// sigwait), so a program that starts a Runtime and does not handle SIGTERM,
// such as this test binary under meson's timeout, still dies of it.
// (turn-control's own handling, SIGHUP kept running and SIGTERM a clean exit 0,
// is checked on the real binary by tests/controlplane/turnctl_servers_test.py.)
#include <gtest/gtest.h>
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <optional>
#include <set>
#include <string>

#include "tests/controlplane/turn_fixture.h"

namespace turn::cptest {
namespace {

class RuntimeSignals : public TurnServerFixture {};

sigset_t current_mask() {
  sigset_t now;
  sigemptyset(&now);
  pthread_sigmask(SIG_BLOCK, nullptr, &now);
  return now;
}

// This process's threads (their ids), from /proc/self/task.
std::set<std::string> threads() {
  std::set<std::string> out;
  if (DIR* d = opendir("/proc/self/task")) {
    while (dirent* e = readdir(d))
      if (e->d_name[0] != '.') out.insert(e->d_name);
    closedir(d);
  }
  return out;
}

// Whether thread `tid` blocks `sig` (SigBlk in /proc/self/task/<tid>/status);
// nullopt when the thread is gone.
std::optional<bool> blocks(const std::string& tid, int sig) {
  std::ifstream f("/proc/self/task/" + tid + "/status");
  for (std::string line; std::getline(f, line);)
    if (line.rfind("SigBlk:", 0) == 0) return (std::strtoull(line.c_str() + 7, nullptr, 16) >> (sig - 1)) & 1;
  return std::nullopt;
}

TEST_F(RuntimeSignals, StartLeavesTheCallersMaskAsItWas) {
  stop();
  // Nothing blocked before: start() must not add the stop/reload signals.
  sigset_t before = current_mask();
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) ASSERT_EQ(sigismember(&before, sig), 0) << "precondition: " << sig;
  restart({"admin-port=" + std::to_string(free_port()), "admin-token=runtime-test-token-0123456789"});
  sigset_t after = current_mask();
  for (int sig : {SIGINT, SIGTERM, SIGHUP})
    EXPECT_EQ(sigismember(&after, sig), 0) << "signal " << sig << " left blocked";

  // A mask the caller chose itself (SIGUSR1 blocked) survives start() too.
  stop();
  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &usr1, nullptr);
  restart({});
  sigset_t with_usr1 = current_mask();
  pthread_sigmask(SIG_UNBLOCK, &usr1, nullptr);
  EXPECT_EQ(sigismember(&with_usr1, SIGUSR1), 1);
  EXPECT_EQ(sigismember(&with_usr1, SIGTERM), 0);
}

TEST_F(RuntimeSignals, ItsOwnThreadsBlockTheStopSignals) {
  // The threads start() makes (a relay loop, the admin server's) must not
  // take the stop/reload signals: in turn-control, main's sigwait does.
  stop();
  auto before = threads();
  restart({"admin-port=" + std::to_string(free_port()), "admin-token=runtime-test-token-0123456789"});
  int made = 0;
  for (const auto& tid : threads()) {
    if (before.count(tid)) continue;
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
      auto b = blocks(tid, sig);
      if (!b) continue;  // a short-lived thread that has already ended
      EXPECT_TRUE(*b) << "thread " << tid << " made by start() does not block signal " << sig;
    }
    ++made;
  }
  EXPECT_GE(made, 2) << "a relay thread and the admin server's";
}

// The regression: before, start() blocked SIGTERM in its caller and never
// unblocked it, so every thread blocked it and a hung test ignored meson's
// SIGTERM. The death test runs in a fresh process (threadsafe style: the
// binary again, this test only) that starts a Runtime (SetUp) and sends
// itself SIGTERM; it must die of it. If it does not within 10 s, it exits 3.
TEST_F(RuntimeSignals, AProcessRunningARuntimeStillDiesOfSigterm) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        if (kill(getpid(), SIGTERM) != 0) std::_Exit(4);
        for (int i = 0; i < 100; ++i) usleep(100 * 1000);
        std::_Exit(3);
      },
      ::testing::KilledBySignal(SIGTERM), "");
}

}  // namespace
}  // namespace turn::cptest
