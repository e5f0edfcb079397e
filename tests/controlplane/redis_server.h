// SPDX-License-Identifier: Apache-2.0
// A throwaway redis-server for tests: on a free loopback port, no
// persistence, stopped by its PID (SIGKILL) when the object goes.
#pragma once

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "common/redis/client.h"
#include "tests/controlplane/turn_client.h"

extern char** environ;

namespace turn::cptest {

// redis-server on a free loopback port, stopped by PID.
class RedisServer {
public:
  explicit RedisServer(uint16_t port = free_port()) {
    port_ = port;
    dir_ = std::filesystem::temp_directory_path() / ("dpturn-test-redis-" + std::to_string(getpid()) + "-" + std::to_string(port));
    std::filesystem::create_directories(dir_);
    std::string port_text = std::to_string(port_), dir = dir_.string();
    std::vector<std::string> args = {"redis-server", "--port", port_text, "--bind", "127.0.0.1", "--save", "",
                                     "--appendonly", "no", "--dir", dir, "--loglevel", "warning"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    // The child starts with no signal blocked and default dispositions, whatever this process has.
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    if (posix_spawnp(&pid_, "redis-server", nullptr, &attr, argv.data(), environ) != 0) pid_ = -1;
    posix_spawnattr_destroy(&attr);
    for (int i = 0; i < 100 && pid_ > 0 && !up(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ~RedisServer() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);  // a throwaway instance: nothing to save
      waitpid(pid_, nullptr, 0);
    }
    std::filesystem::remove_all(dir_);
  }
  [[nodiscard]] bool up() const {
    try {
      redis::Client c(endpoint());
      c.connect();
      return c.command({"PING"}).str == "PONG";
    } catch (const std::exception&) {
      return false;
    }
  }
  [[nodiscard]] redis::Endpoint endpoint() const {
    redis::Endpoint ep;
    ep.port = port_;
    ep.enabled = true;
    ep.connect_timeout_ms = 1000;
    return ep;
  }

private:
  pid_t pid_ = -1;
  uint16_t port_ = 0;
  std::filesystem::path dir_;
};

}  // namespace turn::cptest
