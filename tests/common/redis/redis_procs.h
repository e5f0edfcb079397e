// SPDX-License-Identifier: Apache-2.0
// Real Redis processes for tests (never mocked): a redis-server (master or
// replica) and a Redis Sentinel on loopback ports, each in its own temp
// directory, started by posix_spawn and killed by PID. Plus a fake server
// that answers garbage, for the bad-reply tests.
#pragma once

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "common/redis/client.h"

extern char** environ;

namespace turn::test {

inline uint16_t free_tcp_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

inline bool have_redis_server() { return ::system("command -v redis-server >/dev/null 2>&1") == 0; }

class Proc {
 public:
  explicit Proc(std::vector<std::string> args) {
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    if (posix_spawnp(&pid_, argv[0], nullptr, &attr, argv.data(), environ) != 0) pid_ = -1;
    posix_spawnattr_destroy(&attr);
  }
  ~Proc() { kill(); }
  Proc(const Proc&) = delete;
  Proc& operator=(const Proc&) = delete;
  void kill() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }
  [[nodiscard]] bool alive() const { return pid_ > 0 && ::kill(pid_, 0) == 0; }

 private:
  pid_t pid_ = -1;
};

// A temp directory removed at the end.
class TempDir {
 public:
  explicit TempDir(const std::string& tag) {
    path_ = std::filesystem::temp_directory_path() /
            ("dpturn-" + tag + "-" + std::to_string(getpid()) + "-" + std::to_string(counter()++));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

 private:
  static std::atomic<int>& counter() {
    static std::atomic<int> n{0};
    return n;
  }
  std::filesystem::path path_;
};

inline redis::Endpoint direct(uint16_t port, std::string password = "") {
  redis::Endpoint e = redis::local_endpoint();
  e.port = port;
  e.password = std::move(password);
  e.connect_timeout_ms = 500;
  e.io_timeout_ms = 1000;
  return e;
}

// Waits (bounded) until `port` answers PING (with `password`).
inline bool wait_ping(uint16_t port, const std::string& password = "", int ms = 5000) {
  for (int i = 0; i < ms / 50; ++i) {
    try {
      redis::Endpoint e = direct(port, password);
      // PING through a raw client: a replica or sentinel answers too.
      redis::Client c(e);
      c.connect();
      return true;
    } catch (const redis::Error& err) {
      std::string w = err.what();
      if (w.find("not the master") != std::string::npos) return true;  // up, but a replica/sentinel
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

class RedisNode {
 public:
  // replica_of: 0 for a master; port: 0 for a free one (another to come
  // back where a killed node was).
  explicit RedisNode(uint16_t replica_of = 0, std::string password = "", uint16_t port = 0)
      : port_(port ? port : free_tcp_port()), dir_("redis"), password_(std::move(password)) {
    std::vector<std::string> args = {
        "redis-server", "--port", std::to_string(port_), "--bind",     "127.0.0.1", "--save", "", "--appendonly",
        "no",           "--dir",  dir_.path().string(),  "--loglevel", "warning"};
    if (replica_of) {
      args.insert(args.end(), {"--replicaof", "127.0.0.1", std::to_string(replica_of)});
      if (!password_.empty()) args.insert(args.end(), {"--masterauth", password_});
    }
    if (!password_.empty()) args.insert(args.end(), {"--requirepass", password_});
    proc_ = std::make_unique<Proc>(args);
    up_ = wait_ping(port_, password_);
  }
  [[nodiscard]] uint16_t port() const { return port_; }
  [[nodiscard]] bool up() const { return up_; }
  void kill() { proc_->kill(); }
  // A command on a plain connection, role checks skipped (for setting up).
  std::string raw(const std::string& cmdline) const {
    std::string pw = password_.empty() ? "" : "-a " + password_ + " --no-auth-warning ";
    std::string cmd = "redis-cli -p " + std::to_string(port_) + " " + pw + cmdline + " 2>&1";
    std::string out;
    if (FILE* f = ::popen(cmd.c_str(), "r")) {
      char buf[512];
      while (size_t n = fread(buf, 1, sizeof buf, f)) out.append(buf, n);
      ::pclose(f);
    }
    while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
    return out;
  }

 private:
  uint16_t port_;
  TempDir dir_;
  std::string password_;
  std::unique_ptr<Proc> proc_;
  bool up_ = false;
};

class SentinelNode {
 public:
  SentinelNode(const std::string& master_name, uint16_t master_port, std::string password = "",
               std::string master_password = "")
      : port_(free_tcp_port()), dir_("sentinel") {
    auto conf = dir_.path() / "sentinel.conf";
    std::ofstream f(conf);
    f << "port " << port_ << "\nbind 127.0.0.1\ndir " << dir_.path().string() << "\n"
      << "sentinel monitor " << master_name << " 127.0.0.1 " << master_port << " 1\n"
      << "sentinel down-after-milliseconds " << master_name << " 1000\n"
      << "sentinel failover-timeout " << master_name << " 3000\n"
      << "sentinel parallel-syncs " << master_name << " 1\n";
    if (!master_password.empty()) f << "sentinel auth-pass " << master_name << " " << master_password << "\n";
    if (!password.empty()) f << "requirepass " << password << "\n";
    f.close();
    proc_ = std::make_unique<Proc>(std::vector<std::string>{"redis-server", conf.string(), "--sentinel"});
    up_ = wait_ping(port_, password);
  }
  [[nodiscard]] uint16_t port() const { return port_; }
  [[nodiscard]] bool up() const { return up_; }
  void kill() { proc_->kill(); }

 private:
  uint16_t port_;
  TempDir dir_;
  std::unique_ptr<Proc> proc_;
  bool up_ = false;
};

// A TCP server that answers every connection with `reply` and closes it.
class GarbageServer {
 public:
  explicit GarbageServer(std::string reply) : reply_(std::move(reply)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    ::listen(fd_, 16);
    thread_ = std::thread([this] {
      for (;;) {
        int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0 || stop_) {
          if (c >= 0) ::close(c);
          return;
        }
        char buf[256];
        (void)::recv(c, buf, sizeof buf, 0);  // the first command
        (void)::send(c, reply_.data(), reply_.size(), MSG_NOSIGNAL);
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        ::close(c);
      }
    });
  }
  ~GarbageServer() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  [[nodiscard]] uint16_t port() const { return port_; }

 private:
  std::string reply_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace turn::test
