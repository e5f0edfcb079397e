// SPDX-License-Identifier: Apache-2.0
#include "common/config/lexer.h"

#include <charconv>
#include <fstream>

#include "common/util/text.h"

namespace turn::config {

std::optional<Entry> split_line(std::string_view raw) {
  std::string line = trim(raw);
  if (line.empty() || line[0] == '#') return std::nullopt;
  if (line.starts_with("--")) line = line.substr(2);
  const size_t sep = line.find_first_of("= \t");
  Entry e;
  e.key = trim(line.substr(0, sep));
  std::string rest = sep == std::string::npos ? "" : trim(line.substr(sep + 1));
  if (sep != std::string::npos && line[sep] != '=' && rest.starts_with('=')) rest = trim(rest.substr(1));
  if (rest.size() >= 2 &&
      ((rest.front() == '"' && rest.back() == '"') || (rest.front() == '\'' && rest.back() == '\'')))
    rest = rest.substr(1, rest.size() - 2);
  e.value = std::move(rest);
  return e;
}

void fail(const std::string& where, const std::string& key, const std::string& value, const std::string& why) {
  throw Error(where + ": " + key + (value.empty() ? "" : "=" + value) + ": " + why);
}

uint64_t parse_uint(const std::string& where, const std::string& key, const std::string& v, uint64_t min,
                    uint64_t max) {
  uint64_t n = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (v.empty() || ec != std::errc{} || p != v.data() + v.size()) fail(where, key, v, "not a number");
  if (n < min || n > max) fail(where, key, v, "out of range " + std::to_string(min) + ".." + std::to_string(max));
  return n;
}

uint16_t parse_port(const std::string& where, const std::string& key, const std::string& v, uint16_t min) {
  return static_cast<uint16_t>(parse_uint(where, key, v, min, 65535));
}

IpAddress parse_ip(const std::string& where, const std::string& key, const std::string& v) {
  auto ip = IpAddress::parse(v);
  if (!ip) fail(where, key, v, "not an IPv4 or IPv6 address");
  return *ip;
}

bool parse_bool(const std::string& where, const std::string& key, const std::string& v) {
  if (v.empty() || v == "1" || v == "true" || v == "yes" || v == "on") return true;
  if (v == "0" || v == "false" || v == "no" || v == "off") return false;
  fail(where, key, v, "expected a boolean (true/false/yes/no/1/0) or no value");
}

void read_lines(const std::string& path, const std::function<void(const std::string&, const std::string&)>& line) {
  std::ifstream in(path);
  if (!in) throw Error(path + ": cannot open config file");
  std::string text;
  int n = 0;
  while (std::getline(in, text)) line(text, path + ":" + std::to_string(++n));
}

}  // namespace turn::config
