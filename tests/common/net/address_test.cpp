// SPDX-License-Identifier: Apache-2.0
// IpAddress, SocketAddress and IpRange: text forms, the IPv4-mapped storage
// form, and CIDR matching for peer policy.
#include "common/net/address.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace turn {
namespace {

IpAddress ip(std::string_view text) {
  auto a = IpAddress::parse(text);
  EXPECT_TRUE(a.has_value()) << text;
  return a.value_or(IpAddress{});
}

TEST(IpAddress, ParsesIpv4AsMapped) {
  IpAddress a = ip("192.0.2.1");
  EXPECT_TRUE(a.is_v4());
  EXPECT_EQ(a.family(), Family::V4);
  EXPECT_EQ(a.v4_host_order(), 0xC0000201u);
  const std::array<uint8_t, 16> mapped = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1};
  EXPECT_EQ(a.bytes, mapped);
  EXPECT_EQ(a.v4_bytes()[0], 192);
  EXPECT_EQ(a.to_string(), "192.0.2.1");
  EXPECT_EQ(a, IpAddress::v4(0xC0000201u));
  const uint8_t raw[4] = {192, 0, 2, 1};
  EXPECT_EQ(a, IpAddress::v4(raw));
  // The text form of the mapped address names the same IPv4 address.
  EXPECT_EQ(a, ip("::ffff:192.0.2.1"));
}

TEST(IpAddress, ParsesIpv6AndFormatsRfc5952) {
  IpAddress a = ip("2001:0db8:0000:0000:0000:0000:0000:0001");
  EXPECT_FALSE(a.is_v4());
  EXPECT_EQ(a.family(), Family::V6);
  EXPECT_EQ(a.bytes[0], 0x20);
  EXPECT_EQ(a.bytes[1], 0x01);
  EXPECT_EQ(a.bytes[15], 0x01);
  EXPECT_EQ(a.to_string(), "2001:db8::1");
  EXPECT_EQ(ip("2001:db8:1234:5678:11:2233:4455:6677").to_string(), "2001:db8:1234:5678:11:2233:4455:6677");
  EXPECT_EQ(ip("::1").to_string(), "::1");
  const uint8_t raw[16] = {0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x42};
  EXPECT_EQ(IpAddress::v6(raw), ip("fe80::42"));
}

TEST(IpAddress, Unspecified) {
  EXPECT_TRUE(ip("0.0.0.0").is_unspecified());
  EXPECT_TRUE(ip("::").is_unspecified());
  EXPECT_FALSE(ip("0.0.0.1").is_unspecified());
  EXPECT_FALSE(ip("::1").is_unspecified());
  EXPECT_FALSE(ip("::ffff:0.0.0.1").is_unspecified());
}

TEST(IpAddress, OrdersAndCompares) {
  EXPECT_LT(ip("10.0.0.1"), ip("10.0.0.2"));
  EXPECT_NE(ip("10.0.0.1"), ip("::a00:1"));  // IPv4-compatible is not IPv4-mapped
  EXPECT_EQ(ip("10.0.0.1"), ip("10.0.0.1"));
}

TEST(IpAddress, RejectsBadText) {
  const std::string_view bad[] = {
      "",
      "300.1.1.1",
      "1.2.3",
      "1.2.3.4.5",
      "1.2.3.4 ",
      " 1.2.3.4",
      "1.2.3.-4",
      "::1::2",
      "2001:db8::g",
      "fe80::1%eth0",
      "[::1]",
      "example.org",
      std::string_view("1.2.3.4\0junk", 12),                // inet_pton would stop at the NUL
      "1111:2222:3333:4444:5555:6666:7777:8888:9999:aaaa",  // too long for any form
  };
  for (std::string_view s : bad) EXPECT_FALSE(IpAddress::parse(s).has_value()) << std::string(s);
}

TEST(SocketAddress, ParsesAndFormatsV4) {
  auto a = SocketAddress::parse("192.0.2.1:3478");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->ip, ip("192.0.2.1"));
  EXPECT_EQ(a->port, 3478);
  EXPECT_EQ(a->to_string(), "192.0.2.1:3478");
  auto hi = SocketAddress::parse("10.0.0.1:65535");
  ASSERT_TRUE(hi);
  EXPECT_EQ(hi->port, 65535);
  auto zero = SocketAddress::parse("10.0.0.1:0");
  ASSERT_TRUE(zero);
  EXPECT_EQ(zero->port, 0);
}

TEST(SocketAddress, ParsesAndFormatsV6WithBrackets) {
  auto a = SocketAddress::parse("[2001:db8::1]:443");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->ip, ip("2001:db8::1"));
  EXPECT_EQ(a->port, 443);
  EXPECT_EQ(a->to_string(), "[2001:db8::1]:443");
  // Round trip through the text form.
  EXPECT_EQ(SocketAddress::parse(a->to_string()), a);
  EXPECT_EQ(SocketAddress::parse("[::1]:5")->to_string(), "[::1]:5");
}

TEST(SocketAddress, RejectsBadText) {
  const std::string_view bad[] = {
      "1.2.3.4:70000", "1.2.3.4:65536",  "::1:80",   "[::1]",  "[::1]80",    "[::1:80",
      "300.1.1.1:1",   "1.2.3.4",        "1.2.3.4:", ":80",    "1.2.3.4:-1", "1.2.3.4:+80",
      "1.2.3.4:8a",    "1.2.3.4:000080", "[]:80",    "[::1]:", "",           "1.2.3.4:80:80",
  };
  for (std::string_view s : bad) EXPECT_FALSE(SocketAddress::parse(s).has_value()) << std::string(s);
}

TEST(SocketAddress, ComparesIpThenPort) {
  auto a = *SocketAddress::parse("10.0.0.1:2");
  auto b = *SocketAddress::parse("10.0.0.1:3");
  auto c = *SocketAddress::parse("10.0.0.2:1");
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
  EXPECT_NE(a, b);
}

IpRange range(std::string_view text) {
  auto r = IpRange::parse(text);
  EXPECT_TRUE(r.has_value()) << text;
  return r.value_or(IpRange{});
}

TEST(IpRange, V4Prefix8) {
  IpRange r = range("10.0.0.0/8");
  EXPECT_EQ(r.prefix, 96 + 8);
  EXPECT_TRUE(r.contains(ip("10.0.0.0")));
  EXPECT_TRUE(r.contains(ip("10.255.1.2")));
  EXPECT_FALSE(r.contains(ip("11.0.0.0")));
  EXPECT_FALSE(r.contains(ip("9.255.255.255")));
  EXPECT_FALSE(r.contains(ip("::a00:1")));  // ::10.0.0.1 is IPv6, not mapped
  EXPECT_EQ(r.to_string(), "10.0.0.0/8");
}

TEST(IpRange, HostBitsAreCleared) {
  IpRange r = range("10.1.2.3/8");
  EXPECT_EQ(r.base, ip("10.0.0.0"));
  EXPECT_EQ(r.to_string(), "10.0.0.0/8");
  EXPECT_TRUE(r.contains(ip("10.200.0.1")));
}

TEST(IpRange, V4PrefixNotOnAByte) {
  IpRange r = range("192.168.0.0/23");
  EXPECT_TRUE(r.contains(ip("192.168.1.255")));
  EXPECT_FALSE(r.contains(ip("192.168.2.0")));
  IpRange link_local = range("169.254.0.0/16");
  EXPECT_TRUE(link_local.contains(ip("169.254.169.254")));
  EXPECT_FALSE(link_local.contains(ip("169.253.255.255")));
}

TEST(IpRange, V4Prefix0MatchesOnlyIpv4) {
  IpRange r = range("0.0.0.0/0");
  EXPECT_TRUE(r.contains(ip("0.0.0.0")));
  EXPECT_TRUE(r.contains(ip("255.255.255.255")));
  EXPECT_FALSE(r.contains(ip("::1")));
  EXPECT_FALSE(r.contains(ip("2001:db8::1")));
  EXPECT_EQ(r.to_string(), "0.0.0.0/0");
}

TEST(IpRange, V4Prefix32AndBareHost) {
  IpRange r = range("192.0.2.1/32");
  EXPECT_TRUE(r.contains(ip("192.0.2.1")));
  EXPECT_FALSE(r.contains(ip("192.0.2.0")));
  EXPECT_FALSE(r.contains(ip("192.0.2.2")));
  IpRange host = range("192.0.2.1");
  EXPECT_EQ(host.prefix, r.prefix);
  EXPECT_EQ(host.base, r.base);
  EXPECT_EQ(host.to_string(), "192.0.2.1/32");
}

TEST(IpRange, V6Prefix10) {
  IpRange r = range("fe80::/10");
  EXPECT_EQ(r.prefix, 10);
  EXPECT_TRUE(r.contains(ip("fe80::1")));
  EXPECT_TRUE(r.contains(ip("febf:ffff::1")));
  EXPECT_FALSE(r.contains(ip("fec0::1")));
  EXPECT_FALSE(r.contains(ip("fe7f:ffff::1")));
  EXPECT_FALSE(r.contains(ip("10.0.0.1")));
  EXPECT_EQ(r.to_string(), "fe80::/10");
}

TEST(IpRange, V6Prefix0MatchesEverything) {
  IpRange r = range("::/0");
  EXPECT_TRUE(r.contains(ip("2001:db8::1")));
  EXPECT_TRUE(r.contains(ip("::")));
  // In the 128-bit space IPv4 addresses are ::ffff:a.b.c.d, inside ::/0.
  EXPECT_TRUE(r.contains(ip("10.0.0.1")));
}

TEST(IpRange, V6Prefix128) {
  IpRange r = range("2001:db8::1/128");
  EXPECT_TRUE(r.contains(ip("2001:db8::1")));
  EXPECT_FALSE(r.contains(ip("2001:db8::2")));
  EXPECT_FALSE(r.contains(ip("2001:db8::")));
  IpRange host = range("::1");
  EXPECT_EQ(host.prefix, 128);
  EXPECT_TRUE(host.contains(ip("::1")));
  EXPECT_FALSE(host.contains(ip("127.0.0.1")));
}

TEST(IpRange, RejectsBadText) {
  const std::string_view bad[] = {
      "10.0.0.0/33", "fe80::/129", "10.0.0.0/",       "/8", "10.0.0.0/8/8", "10.0.0.0/-1",
      "10.0.0.0/ 8", "10.0.0.0/a", "1.2.3.4-1.2.3.9", "",   "300.0.0.0/8",  "10.0.0.0/08x",
  };
  for (std::string_view s : bad) EXPECT_FALSE(IpRange::parse(s).has_value()) << std::string(s);
}

}  // namespace
}  // namespace turn
