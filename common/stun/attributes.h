// SPDX-License-Identifier: Apache-2.0
// Typed readers for every STUN/TURN attribute value (RFC 8489 §14, RFC 8656
// §18, RFC 6156). Each takes the attribute's value bytes (and, for XOR
// addresses, the message's cookie+transaction id) and validates length and
// ranges; none allocates or reads past the value.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string_view>

#include "common/net/address.h"
#include "common/stun/constants.h"
#include "common/util/bytes.h"
#include "common/util/result.h"

namespace turn::stun {

enum class AttrError : uint8_t {
  BadLength,  // value length not what the attribute needs
  BadFamily,  // address family octet not 0x01/0x02
  BadValue,   // a field outside its range
  TooLong,    // text attribute over its RFC limit
};

// Limits on text attributes (RFC 8489 §14.3, §14.8, §14.9, §14.10, §14.14).
inline constexpr size_t kMaxUsernameBytes = 513;
inline constexpr size_t kMaxRealmBytes = 763;
inline constexpr size_t kMaxNonceBytes = 763;
inline constexpr size_t kMaxReasonBytes = 763;
inline constexpr size_t kMaxSoftwareBytes = 763;

// MAPPED-ADDRESS / ALTERNATE-SERVER (plain) and XOR-MAPPED-ADDRESS /
// XOR-PEER-ADDRESS / XOR-RELAYED-ADDRESS (xor_mask = cookie + txid, the 16
// bytes at message offset 4), RFC 8489 §14.1-§14.2.
[[nodiscard]] Result<SocketAddress, AttrError> read_address(Bytes value) noexcept;
[[nodiscard]] Result<SocketAddress, AttrError> read_xor_address(Bytes value, const uint8_t* xor_mask) noexcept;
// Writes the attribute value (8 or 20 bytes); returns its length.
size_t write_address(uint8_t* out, const SocketAddress& a) noexcept;
size_t write_xor_address(uint8_t* out, const SocketAddress& a, const uint8_t* xor_mask) noexcept;

struct ErrorCodeValue {
  uint16_t code = 0;        // 300..699
  std::string_view reason;  // UTF-8, points into the message
};
[[nodiscard]] Result<ErrorCodeValue, AttrError> read_error_code(Bytes value) noexcept;

// 32-bit attributes: LIFETIME (§18.2), PRIORITY.
[[nodiscard]] Result<uint32_t, AttrError> read_u32(Bytes value) noexcept;
// CHANNEL-NUMBER (RFC 8656 §18.1): 16-bit number + 16 bits RFFU.
[[nodiscard]] Result<uint16_t, AttrError> read_channel_number(Bytes value) noexcept;
// REQUESTED-TRANSPORT (§18.7): protocol number + 3 bytes RFFU.
[[nodiscard]] Result<uint8_t, AttrError> read_requested_transport(Bytes value) noexcept;
// REQUESTED-ADDRESS-FAMILY (§18.3) and ADDITIONAL-ADDRESS-FAMILY (§18.11,
// which allows only IPv6): family octet + 3 bytes RFFU.
[[nodiscard]] Result<Family, AttrError> read_address_family(Bytes value) noexcept;
// EVEN-PORT (§18.4): one byte, R bit = reserve the next port too.
[[nodiscard]] Result<bool, AttrError> read_even_port(Bytes value) noexcept;
// RESERVATION-TOKEN (§18.9): 8 opaque bytes.
[[nodiscard]] Result<uint64_t, AttrError> read_reservation_token(Bytes value) noexcept;
// DONT-FRAGMENT (§18.8) and USE-CANDIDATE: no value.
[[nodiscard]] bool read_flag(Bytes value) noexcept;

// ADDRESS-ERROR-CODE (RFC 8656 §18.12): family, reserved, class/number, reason.
struct AddressErrorValue {
  Family family = Family::V4;
  uint16_t code = 0;
  std::string_view reason;
};
[[nodiscard]] Result<AddressErrorValue, AttrError> read_address_error_code(Bytes value) noexcept;

// ICMP (RFC 8656 §18.13): reserved(2) type(1) code(1) error data(4).
struct IcmpValue {
  uint8_t type = 0;
  uint8_t code = 0;
  uint32_t data = 0;
};
[[nodiscard]] Result<IcmpValue, AttrError> read_icmp(Bytes value) noexcept;

// PASSWORD-ALGORITHM (RFC 8489 §14.12): algorithm + parameters.
struct PasswordAlgorithmValue {
  uint16_t algorithm = 0;
  Bytes params;
};
[[nodiscard]] Result<PasswordAlgorithmValue, AttrError> read_password_algorithm(Bytes value) noexcept;
// PASSWORD-ALGORITHMS (§14.11): a list of the above, each padded to 4.
// Writes up to out.size() entries; returns how many were in the list.
[[nodiscard]] Result<size_t, AttrError> read_password_algorithms(Bytes value,
                                                                 std::span<PasswordAlgorithmValue> out) noexcept;

// UNKNOWN-ATTRIBUTES (§14.13): a list of 16-bit types.
[[nodiscard]] Result<size_t, AttrError> read_unknown_attributes(Bytes value, std::span<uint16_t> out) noexcept;
// USERHASH (§14.4): 32 bytes.
[[nodiscard]] Result<std::array<uint8_t, 32>, AttrError> read_userhash(Bytes value) noexcept;

// Text attributes with a byte limit: USERNAME, REALM, NONCE, SOFTWARE,
// ALTERNATE-DOMAIN.
[[nodiscard]] Result<std::string_view, AttrError> read_text(Bytes value, size_t max_bytes) noexcept;

}  // namespace turn::stun
