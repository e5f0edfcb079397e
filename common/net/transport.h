// SPDX-License-Identifier: Apache-2.0
// The client transport of a TURN 5-tuple (RFC 8656 §2.2): one enum for the
// control plane, the state contract and every reader of it.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace turn {

enum class Transport : uint8_t { Udp = 0, Tcp = 1, Tls = 2, Dtls = 3 };  // Dtls: RFC 7350

[[nodiscard]] constexpr const char* transport_name(Transport t) noexcept {
  switch (t) {
    case Transport::Udp:
      return "udp";
    case Transport::Tcp:
      return "tcp";
    case Transport::Tls:
      return "tls";
    case Transport::Dtls:
      return "dtls";
  }
  return "?";
}

[[nodiscard]] constexpr std::optional<Transport> parse_transport(std::string_view s) noexcept {
  for (auto t : {Transport::Udp, Transport::Tcp, Transport::Tls, Transport::Dtls})
    if (s == transport_name(t)) return t;
  return std::nullopt;
}

}  // namespace turn
