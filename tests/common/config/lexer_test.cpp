// SPDX-License-Identifier: Apache-2.0
// common/config/lexer.h: the line syntax and value parsers both binaries'
// config readers share, and their errors (where, key, value, why).
#include "common/config/lexer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

namespace turn::config {
namespace {

Entry entry(std::string_view raw) {
  auto e = split_line(raw);
  EXPECT_TRUE(e.has_value()) << raw;
  return e.value_or(Entry{"(none)", "(none)"});
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(accepted)";
}

TEST(ConfigLexer, EveryFormOfALine) {
  struct Case {
    const char* raw;
    const char* key;
    const char* value;
  };
  for (const Case& c : std::vector<Case>{
           {"listening-port=3478", "listening-port", "3478"},
           {"listening-port 3478", "listening-port", "3478"},
           {"listening-port = 3478", "listening-port", "3478"},
           {"  listening-port\t3478  ", "listening-port", "3478"},
           {"--listening-port=3478", "listening-port", "3478"},
           {"lt-cred-mech", "lt-cred-mech", ""},
           {"--lt-cred-mech", "lt-cred-mech", ""},
           {"state-redis=\"ip=127.0.0.1 port=6379\"", "state-redis", "ip=127.0.0.1 port=6379"},
           {"realm='example.org'", "realm", "example.org"},
           {"realm=\"half", "realm", "\"half"},  // one quote is part of the value
           {"user=a:b=c", "user", "a:b=c"},      // only the first '=' separates
       }) {
    const Entry e = entry(c.raw);
    EXPECT_EQ(e.key, c.key) << c.raw;
    EXPECT_EQ(e.value, c.value) << c.raw;
  }
  for (const char* nothing : {"", "   ", "# a comment", "  # indented comment"})
    EXPECT_FALSE(split_line(nothing).has_value()) << "'" << nothing << "'";
}

TEST(ConfigLexer, ValuesAndTheirErrors) {
  EXPECT_EQ(parse_uint("f:1", "k", "42", 1, 100), 42u);
  EXPECT_EQ(parse_port("f:1", "min-port", "49152"), 49152);
  EXPECT_EQ(parse_port("f:1", "alt-listening-port", "0", 0), 0);
  EXPECT_FALSE(parse_ip("f:1", "relay-ip", "2001:db8::1").is_v4());
  EXPECT_TRUE(parse_bool("f:1", "k", ""));
  EXPECT_TRUE(parse_bool("f:1", "k", "on"));
  EXPECT_FALSE(parse_bool("f:1", "k", "no"));
  struct Case {
    std::function<void()> f;
    const char* want;
  };
  for (const Case& c : std::vector<Case>{
           {[] { (void)parse_uint("a.conf:7", "burst", "x1", 1, 64); }, "a.conf:7: burst=x1: not a number"},
           {[] { (void)parse_uint("a.conf:7", "burst", "", 1, 64); }, "a.conf:7: burst: not a number"},
           {[] { (void)parse_uint("a.conf:7", "burst", "65", 1, 64); }, "a.conf:7: burst=65: out of range 1..64"},
           {[] { (void)parse_port("command line", "listening-port", "70000"); },
            "command line: listening-port=70000: out of range 1..65535"},
           {[] { (void)parse_port("a.conf:2", "listening-port", "0"); }, "listening-port=0: out of range 1..65535"},
           {[] { (void)parse_ip("a.conf:3", "relay-ip", "10.0.0.300"); },
            "a.conf:3: relay-ip=10.0.0.300: not an IPv4 or IPv6 address"},
           {[] { (void)parse_bool("a.conf:4", "verbose", "maybe"); }, "a.conf:4: verbose=maybe: expected a boolean"},
       }) {
    const std::string e = error_of(c.f);
    EXPECT_NE(e.find(c.want), std::string::npos) << "got: " << e << "\nwant: " << c.want;
  }
}

TEST(ConfigLexer, ReadsAFileLineByLineAndSaysWhere) {
  char path[] = "/tmp/dpturn-lexer-XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  { std::ofstream(path) << "# dpturn\nlistening-port=3478\n\nrealm example.org\n"; }
  std::vector<std::string> seen;
  read_lines(path, [&](const std::string& line, const std::string& where) {
    if (auto e = split_line(line)) seen.push_back(where + " " + e->key + "=" + e->value);
  });
  const std::string p = path;
  EXPECT_EQ(seen, (std::vector<std::string>{p + ":2 listening-port=3478", p + ":4 realm=example.org"}));
  std::remove(path);
  EXPECT_EQ(error_of([&] { read_lines(p, [](const std::string&, const std::string&) {}); }),
            p + ": cannot open config file");
}

}  // namespace
}  // namespace turn::config
