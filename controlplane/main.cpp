// SPDX-License-Identifier: Apache-2.0
// turn-control: a complete TURN server on kernel sockets (RFC 8656), the
// source of truth for turn-dataplane. Setup code: may throw; main() catches,
// logs and exits 1.
//
//   turn-control -c /etc/dpturn/turnserver.conf [--key=value ...]
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cstring>
#include <iostream>
#include <memory>
#include <thread>
#include <vector>

#include "controlplane/config/config.h"
#include "common/log/log.h"
#include "controlplane/net/event_loop.h"
#include "controlplane/net/socket.h"
#include "controlplane/net/tls.h"
#include "controlplane/server/listeners.h"
#include "controlplane/server/runtime.h"
#include "controlplane/server/turn_server.h"

using namespace turn;
using namespace turn::cp;

namespace {

void usage() {
  std::cout << "usage: turn-control [-c FILE] [--key=value ...]\n"
               "  -c, --config FILE   turnserver.conf-style file (docs/configuration.md)\n"
               "  --key=value         any config key, applied after the file\n"
               "  --check-config      parse and validate, print the result, exit\n"
               "  -h, --help          this text\n"
               "  --version           print the version\n";
}

}  // namespace

int main(int argc, char** argv) {
  Config cfg;
  bool check_only = false;
  try {
    std::vector<std::string> overrides;
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      if (a == "-h" || a == "--help") {
        usage();
        return 0;
      }
      if (a == "--version") {
        std::cout << "turn-control " DPTURN_VERSION "\n";
        return 0;
      }
      if (a == "--check-config") {
        check_only = true;
      } else if (a == "-c" || a == "--config") {
        if (i + 1 >= argc) throw ConfigError(a + ": needs a file name");
        load_config_file(argv[++i], cfg);
      } else if (a.starts_with("--")) {
        overrides.push_back(a);
      } else {
        throw ConfigError("command line: unexpected argument '" + a + "' (see --help)");
      }
    }
    for (const auto& o : overrides) apply_config_line(o, "command line", cfg);
    validate_config(cfg);
  } catch (const std::exception& e) {
    std::cerr << "turn-control: " << e.what() << "\n";
    return 1;
  }
  const auto ignored = [](const std::string& key) {
    return key + ": coturn key accepted and ignored (docs/migrating-from-coturn.md)";
  };
  if (check_only) {
    for (const auto& k : cfg.ignored_keys) std::cout << "ignored: " << ignored(k) << "\n";
    for (const auto& n : cfg.notes) std::cout << "note: " << n << "\n";
    std::cout << "config ok\n";
    return 0;
  }

  try {
    log_open(cfg.log_file, cfg.verbose);
    for (const auto& k : cfg.ignored_keys) log_warn(ignored(k));
    for (const auto& n : cfg.notes) log_warn(n);
    // Signals: SIGINT/SIGTERM stop, SIGHUP reloads the TLS certificate.
    // Blocked here, before any thread exists, and taken with sigwait below
    // (the Runtime's threads block them too).
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    Runtime rt(cfg);
    rt.start();
    for (;;) {
      int sig = 0;
      sigwait(&set, &sig);
      if (sig == SIGHUP) {
        rt.reload_tls();
        continue;
      }
      log_info(std::string("received ") + strsignal(sig) + ", shutting down");
      break;
    }
    rt.stop();
    log_info("stopped");
  } catch (const std::exception& e) {
    log_error(e.what());
    return 1;
  }
  return 0;
}
