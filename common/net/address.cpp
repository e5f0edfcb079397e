// SPDX-License-Identifier: Apache-2.0
// Text and binary forms of IP and socket addresses.
#include "common/net/address.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace turn {

namespace {
constexpr std::array<uint8_t, 12> kV4MappedPrefix = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

std::optional<uint16_t> parse_port(std::string_view s) {
  if (s.empty() || s.size() > 5) return std::nullopt;
  unsigned v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size() || v > 65535) return std::nullopt;
  return static_cast<uint16_t>(v);
}
}  // namespace

IpAddress IpAddress::v4(uint32_t host_order) noexcept {
  IpAddress a;
  std::memcpy(a.bytes.data(), kV4MappedPrefix.data(), 12);
  a.bytes[12] = static_cast<uint8_t>(host_order >> 24);
  a.bytes[13] = static_cast<uint8_t>(host_order >> 16);
  a.bytes[14] = static_cast<uint8_t>(host_order >> 8);
  a.bytes[15] = static_cast<uint8_t>(host_order);
  return a;
}

IpAddress IpAddress::v4(const uint8_t* four_bytes) noexcept {
  IpAddress a;
  std::memcpy(a.bytes.data(), kV4MappedPrefix.data(), 12);
  std::memcpy(a.bytes.data() + 12, four_bytes, 4);
  return a;
}

IpAddress IpAddress::v6(const uint8_t* sixteen_bytes) noexcept {
  IpAddress a;
  std::memcpy(a.bytes.data(), sixteen_bytes, 16);
  return a;
}

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  // inet_pton stops at a NUL, so "1.2.3.4\0junk" would otherwise pass.
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN || text.find('\0') != std::string_view::npos) return std::nullopt;
  char buf[INET6_ADDRSTRLEN] = {};
  std::memcpy(buf, text.data(), text.size());
  uint8_t raw[16];
  if (inet_pton(AF_INET, buf, raw) == 1) return v4(raw);
  if (inet_pton(AF_INET6, buf, raw) == 1) return v6(raw);
  return std::nullopt;
}

bool IpAddress::is_v4() const noexcept { return std::memcmp(bytes.data(), kV4MappedPrefix.data(), 12) == 0; }

uint32_t IpAddress::v4_host_order() const noexcept {
  return (uint32_t{bytes[12]} << 24) | (uint32_t{bytes[13]} << 16) | (uint32_t{bytes[14]} << 8) | uint32_t{bytes[15]};
}

bool IpAddress::is_unspecified() const noexcept {
  if (is_v4()) return v4_host_order() == 0;
  for (uint8_t b : bytes)
    if (b != 0) return false;
  return true;
}

std::string IpAddress::to_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (is_v4())
    inet_ntop(AF_INET, bytes.data() + 12, buf, sizeof buf);
  else
    inet_ntop(AF_INET6, bytes.data(), buf, sizeof buf);
  return buf;
}

std::optional<SocketAddress> SocketAddress::parse(std::string_view text) {
  std::string_view host, port;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') return std::nullopt;
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) return std::nullopt;  // bare IPv6 needs []
  }
  auto ip = IpAddress::parse(host);
  auto p = parse_port(port);
  if (!ip || !p) return std::nullopt;
  return SocketAddress{*ip, *p};
}

std::string SocketAddress::to_string() const {
  if (ip.is_v4()) return ip.to_string() + ":" + std::to_string(port);
  return "[" + ip.to_string() + "]:" + std::to_string(port);
}

std::optional<IpRange> IpRange::parse(std::string_view text) {
  auto slash = text.find('/');
  auto ip = IpAddress::parse(text.substr(0, slash));
  if (!ip) return std::nullopt;
  unsigned max = ip->is_v4() ? 32 : 128;
  unsigned bits = max;
  if (slash != std::string_view::npos) {
    auto s = text.substr(slash + 1);
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), bits);
    if (s.empty() || ec != std::errc{} || p != s.data() + s.size() || bits > max) return std::nullopt;
  }
  IpRange r;
  r.prefix = static_cast<uint8_t>(ip->is_v4() ? bits + 96 : bits);
  r.base = *ip;
  // Zero the host bits so contains() can compare the masked bytes.
  for (unsigned i = 0; i < 16; ++i) {
    unsigned lo = i * 8;
    if (lo >= r.prefix)
      r.base.bytes[i] = 0;
    else if (lo + 8 > r.prefix)
      r.base.bytes[i] &= static_cast<uint8_t>(0xff << (8 - (r.prefix - lo)));
  }
  return r;
}

bool IpRange::contains(const IpAddress& ip) const noexcept {
  unsigned full = prefix / 8;
  if (std::memcmp(ip.bytes.data(), base.bytes.data(), full) != 0) return false;
  unsigned rest = prefix % 8;
  if (rest == 0) return true;
  auto mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (ip.bytes[full] & mask) == base.bytes[full];
}

std::string IpRange::to_string() const {
  unsigned bits = base.is_v4() && prefix >= 96 ? prefix - 96u : prefix;
  return base.to_string() + "/" + std::to_string(bits);
}

}  // namespace turn
