// SPDX-License-Identifier: Apache-2.0
// Logging.
#include "common/log/log.h"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <map>
#include <mutex>

namespace turn {

namespace {
std::mutex g_mutex;
FILE* g_out = stderr;
bool g_verbose = false;

struct Seen {
  std::chrono::steady_clock::time_point last;
  uint64_t suppressed = 0;
};
std::map<std::pair<int, IpAddress>, Seen> g_seen;

void write(const char* level, const std::string& msg) {
  char ts[32];
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
  std::lock_guard lock(g_mutex);
  std::fprintf(g_out, "%s %s %s\n", ts, level, msg.c_str());
  std::fflush(g_out);
}
}  // namespace

void log_open(const std::string& file, bool verbose) {
  FILE* f = stderr;
  bool failed = false;
  if (!(file.empty() || file == "-" || file == "stdout")) {
    f = std::fopen(file.c_str(), "a");
    if (!f) {
      f = stderr;
      failed = true;
    }
  }
  {
    // A second call (tests; a reopen) replaces the first file and closes it.
    std::lock_guard lock(g_mutex);
    g_verbose = verbose;
    if (g_out != stderr && g_out != f) std::fclose(g_out);
    g_out = f;
  }
  if (failed) write("WARN", "cannot open log-file " + file + "; logging to stderr");
}

void log_info(const std::string& msg) { write("INFO", msg); }
void log_warn(const std::string& msg) { write("WARN", msg); }
void log_error(const std::string& msg) { write("ERROR", msg); }
void log_debug(const std::string& msg) {
  if (g_verbose) write("DEBUG", msg);
}

void log_every(LogKey key, const IpAddress& source, const std::string& msg) {
  auto now = std::chrono::steady_clock::now();
  uint64_t suppressed = 0;
  {
    std::lock_guard lock(g_mutex);
    if (g_seen.size() > 10000) g_seen.clear();  // bounded under spoofed floods
    auto& s = g_seen[{static_cast<int>(key), source}];
    if (s.last.time_since_epoch().count() != 0 && now - s.last < std::chrono::seconds(10)) {
      ++s.suppressed;
      return;
    }
    suppressed = s.suppressed;
    s.suppressed = 0;
    s.last = now;
  }
  write("WARN", suppressed ? msg + " (" + std::to_string(suppressed) + " similar suppressed)" : msg);
}

}  // namespace turn
