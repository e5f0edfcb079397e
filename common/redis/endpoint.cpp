// SPDX-License-Identifier: Apache-2.0
#include "common/redis/endpoint.h"

#include <cctype>
#include <charconv>

namespace turn::redis {

namespace {

std::vector<std::string_view> items(std::string_view text) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos < text.size()) {
    while (pos < text.size() && (text[pos] == ' ' || text[pos] == '\t')) ++pos;
    size_t end = text.find_first_of(" \t", pos);
    if (end == std::string_view::npos) end = text.size();
    if (end > pos) out.push_back(text.substr(pos, end - pos));
    pos = end;
  }
  return out;
}

bool secret(std::string_view key) { return key == "password" || key == "sentinel-password"; }

uint64_t number(std::string_view key, std::string_view val, uint64_t min, uint64_t max) {
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(val.data(), val.data() + val.size(), v);
  if (val.empty() || ec != std::errc{} || p != val.data() + val.size() || v < min || v > max)
    throw EndpointError(std::string(key) + "=" + std::string(val),
                        "not a number in " + std::to_string(min) + ".." + std::to_string(max));
  return v;
}

}  // namespace

std::string HostPort::to_string() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

std::string Endpoint::describe() const {
  if (!sentinel()) return "redis " + HostPort{host, port}.to_string();
  std::string s = "master '" + master + "' via sentinel(s) ";
  for (size_t i = 0; i < sentinels.size(); ++i) s += (i ? "," : "") + sentinels[i].to_string();
  return s;
}

std::string hide_passwords(std::string_view text) {
  std::string shown;
  for (auto it : items(text)) {
    auto eq = it.find('=');
    std::string item = eq != std::string_view::npos && secret(it.substr(0, eq))
                           ? std::string(it.substr(0, eq)) + "=<hidden>"
                           : std::string(it);
    shown += (shown.empty() ? "" : " ") + item;
  }
  return shown;
}

HostPort parse_host_port(std::string_view t) {
  std::string_view host, port;
  if (!t.empty() && t.front() == '[') {
    auto close = t.find(']');
    if (close == std::string_view::npos || close + 1 >= t.size() || t[close + 1] != ':')
      throw EndpointError(std::string(t), "expected [IPv6]:PORT");
    host = t.substr(1, close - 1);
    port = t.substr(close + 2);
  } else {
    auto colon = t.rfind(':');
    if (colon == std::string_view::npos || t.find(':') != colon)
      throw EndpointError(std::string(t), "expected IP:PORT (IPv6 as [IP]:PORT)");
    host = t.substr(0, colon);
    port = t.substr(colon + 1);
  }
  if (host.empty()) throw EndpointError(std::string(t), "no host before the port");
  for (char c : host)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':' || c == '_'))
      throw EndpointError(std::string(t), "not an address or host name");
  return {std::string(host), static_cast<uint16_t>(number(t, port, 1, 65535))};
}

Endpoint parse_endpoint(std::string_view text) {
  Endpoint e;
  e.enabled = true;
  bool direct = false;
  for (auto it : items(text)) {
    auto eq = it.find('=');
    if (eq == std::string_view::npos)
      throw EndpointError(std::string(it),
                          "expected name=value items (ip, port, dbname, password, connect_timeout, "
                          "sentinel, master, sentinel-password)");
    std::string_view k = it.substr(0, eq), v = it.substr(eq + 1);
    std::string shown = secret(k) ? std::string(k) + "=<hidden>" : std::string(it);
    if (k == "ip" || k == "host") {
      if (v.empty()) throw EndpointError(shown, "empty address");
      e.host = std::string(v);
      direct = true;
    } else if (k == "port") {
      e.port = static_cast<uint16_t>(number(k, v, 1, 65535));
      direct = true;
    } else if (k == "dbname" || k == "database" || k == "db") {
      e.db = static_cast<int>(number(k, v, 0, 1024));
    } else if (k == "password") {
      e.password = std::string(v);
    } else if (k == "sentinel-password") {
      e.sentinel_password = std::string(v);
    } else if (k == "connect_timeout") {
      e.connect_timeout_ms = static_cast<int>(number(k, v, 1, 3600)) * 1000;
    } else if (k == "sentinel") {
      size_t p = 0;
      while (p <= v.size()) {
        size_t c = v.find(',', p);
        if (c == std::string_view::npos) c = v.size();
        auto one = v.substr(p, c - p);
        if (one.empty()) throw EndpointError(shown, "empty sentinel address in the list");
        try {
          e.sentinels.push_back(parse_host_port(one));
        } catch (const EndpointError& bad) {
          throw EndpointError(shown, "sentinel '" + std::string(one) + "': " + bad.why());
        }
        p = c + 1;
      }
    } else if (k == "master") {
      if (v.empty()) throw EndpointError(shown, "empty master name");
      e.master = std::string(v);
    } else {
      throw EndpointError(shown, "unknown item '" + std::string(k) +
                                     "' (ip, port, dbname, password, connect_timeout, sentinel, master, "
                                     "sentinel-password)");
    }
  }
  if (e.sentinel() && e.master.empty())
    throw EndpointError("sentinel=...", "needs master=NAME (the name the sentinels monitor)");
  if (!e.master.empty() && !e.sentinel())
    throw EndpointError("master=" + e.master, "needs sentinel=IP:PORT[,IP:PORT...]");
  if (e.sentinel() && direct)
    throw EndpointError("ip/port", "not with sentinel=: the sentinels name the master's address");
  if (!e.sentinel_password.empty() && !e.sentinel())
    throw EndpointError("sentinel-password=<hidden>", "needs sentinel=...");
  return e;
}

}  // namespace turn::redis
