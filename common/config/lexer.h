// SPDX-License-Identifier: Apache-2.0
// The one reader of the config syntax both binaries share (coturn's
// turnserver.conf: "key=value", "key value", "key = value" or a bare "key",
// '#' comments; on a command line the same with "--" in front), and the
// typed value parsers they share. Every error names where the line came
// from ("FILE:LINE" or "command line"), the key and the offending value:
//   dataplane.conf:7: gateway=10.0.0.300: not an IPv4 address
// Setup code: throws config::Error.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "common/net/address.h"

namespace turn::config {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A line's key and value: surrounding blanks trimmed, one pair of double or
// single quotes around the value removed, "--" before the key dropped.
// Blank lines and comments have none.
struct Entry {
  std::string key, value;
};
[[nodiscard]] std::optional<Entry> split_line(std::string_view raw);

// Throws Error("WHERE: KEY[=VALUE]: WHY").
[[noreturn]] void fail(const std::string& where, const std::string& key, const std::string& value,
                       const std::string& why);

// Typed values; each fails naming the key and the value.
[[nodiscard]] uint64_t parse_uint(const std::string& where, const std::string& key, const std::string& v, uint64_t min,
                                  uint64_t max);
[[nodiscard]] uint16_t parse_port(const std::string& where, const std::string& key, const std::string& v,
                                  uint16_t min = 1);
[[nodiscard]] IpAddress parse_ip(const std::string& where, const std::string& key, const std::string& v);
// "1", "true", "yes", "on" or no value; "0", "false", "no", "off".
[[nodiscard]] bool parse_bool(const std::string& where, const std::string& key, const std::string& v);

// Calls line(text, "PATH:N") for each line of the file; throws Error when
// it cannot be opened.
void read_lines(const std::string& path, const std::function<void(const std::string&, const std::string&)>& line);

}  // namespace turn::config
