// SPDX-License-Identifier: Apache-2.0
// EAL for the programs that are not turn-dataplane and run beside other
// DPDK processes (the EAL tests' main, dp_table_bench): rte_eal_init over
// a space-separated argument string plus a --file-prefix of their own, and
// that prefix's runtime directory removed on the way out, pass or fail.
#pragma once

#include <rte_eal.h>
#include <rte_errno.h>

#include <filesystem>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

namespace turn::dp {

class EalSession {
 public:
  // args: EAL options ("--no-huge -m 512 ..."); prefix: unique per process.
  EalSession(const char* argv0, std::string args, const std::string& prefix)
      : args_(std::move(args) + " --file-prefix=" + prefix), runtime_dir_("/var/run/dpdk/" + prefix) {
    std::vector<std::string> tokens{argv0};
    std::stringstream ss(args_);
    for (std::string tok; ss >> tok;) tokens.push_back(tok);
    std::vector<char*> argv;
    for (auto& t : tokens) argv.push_back(t.data());
    if (rte_eal_init(static_cast<int>(argv.size()), argv.data()) < 0) {
      error_ = "rte_eal_init " + args_ + ": " + rte_strerror(rte_errno);
      return;
    }
    up_ = true;
  }
  ~EalSession() {
    if (up_) rte_eal_cleanup();
    std::error_code ec;
    std::filesystem::remove_all(runtime_dir_, ec);
  }
  EalSession(const EalSession&) = delete;
  EalSession& operator=(const EalSession&) = delete;

  [[nodiscard]] bool up() const noexcept { return up_; }
  [[nodiscard]] const std::string& error() const noexcept { return error_; }  // why it did not start
  [[nodiscard]] const std::string& args() const noexcept { return args_; }

 private:
  std::string args_;
  std::string runtime_dir_;
  std::string error_;
  bool up_ = false;
};

}  // namespace turn::dp
