// SPDX-License-Identifier: Apache-2.0
// IpAddress / SocketAddress: one fixed-size, padding-free form for IPv4 and
// IPv6 (IPv4 is stored IPv4-mapped, ::ffff:a.b.c.d, RFC 4291 §2.5.5.2), so
// the same bytes can key a hash table and compare with memcmp.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

namespace turn {

enum class Family : uint8_t { V4 = 4, V6 = 6 };

struct IpAddress {
  std::array<uint8_t, 16> bytes{};  // network order; IPv4 as ::ffff:a.b.c.d

  [[nodiscard]] static IpAddress v4(uint32_t host_order) noexcept;
  [[nodiscard]] static IpAddress v4(const uint8_t* four_bytes) noexcept;
  [[nodiscard]] static IpAddress v6(const uint8_t* sixteen_bytes) noexcept;
  // Accepts dotted quad or RFC 5952 text; nullopt on anything else.
  [[nodiscard]] static std::optional<IpAddress> parse(std::string_view text);

  [[nodiscard]] bool is_v4() const noexcept;
  [[nodiscard]] Family family() const noexcept { return is_v4() ? Family::V4 : Family::V6; }
  [[nodiscard]] uint32_t v4_host_order() const noexcept;  // only if is_v4()
  [[nodiscard]] const uint8_t* v4_bytes() const noexcept { return bytes.data() + 12; }
  [[nodiscard]] bool is_unspecified() const noexcept;
  [[nodiscard]] std::string to_string() const;

  friend bool operator==(const IpAddress&, const IpAddress&) = default;
  friend auto operator<=>(const IpAddress&, const IpAddress&) = default;
};

struct SocketAddress {
  IpAddress ip;
  uint16_t port = 0;  // host order

  // "1.2.3.4:5", "[::1]:5"; nullopt on anything else.
  [[nodiscard]] static std::optional<SocketAddress> parse(std::string_view text);
  [[nodiscard]] std::string to_string() const;

  friend bool operator==(const SocketAddress&, const SocketAddress&) = default;
  friend auto operator<=>(const SocketAddress&, const SocketAddress&) = default;
};

static_assert(sizeof(IpAddress) == 16 && std::has_unique_object_representations_v<IpAddress>);

// A CIDR range, for peer policy.
struct IpRange {
  IpAddress base;
  uint8_t prefix = 128;  // in the 128-bit (mapped) space

  // "10.0.0.0/8", "fe80::/10", "1.2.3.4" (a host), "1.2.3.4-1.2.3.9" is not a prefix: nullopt.
  [[nodiscard]] static std::optional<IpRange> parse(std::string_view text);
  [[nodiscard]] bool contains(const IpAddress& ip) const noexcept;
  [[nodiscard]] std::string to_string() const;
};

}  // namespace turn
