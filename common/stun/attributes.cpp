// SPDX-License-Identifier: Apache-2.0
// Attribute value readers and address writers.
#include "common/stun/attributes.h"

#include <cstring>

namespace turn::stun {

Result<SocketAddress, AttrError> read_address(Bytes v) noexcept {
  // 0 | family | port | address (RFC 8489 §14.1)
  if (v.size() < 4) return AttrError::BadLength;
  uint8_t family = v[1];
  SocketAddress a;
  a.port = load_be16(v.data() + 2);
  if (family == kFamilyIpv4) {
    if (v.size() != 8) return AttrError::BadLength;
    a.ip = IpAddress::v4(v.data() + 4);
  } else if (family == kFamilyIpv6) {
    if (v.size() != 20) return AttrError::BadLength;
    a.ip = IpAddress::v6(v.data() + 4);
  } else {
    return AttrError::BadFamily;
  }
  return a;
}

Result<SocketAddress, AttrError> read_xor_address(Bytes v, const uint8_t* xor_mask) noexcept {
  // X-Port = port ^ top 16 bits of the cookie; X-Address = address ^ cookie
  // (IPv4) or ^ cookie||transaction id (IPv6), RFC 8489 §14.2.
  if (v.size() < 4) return AttrError::BadLength;
  uint8_t family = v[1];
  SocketAddress a;
  a.port = static_cast<uint16_t>(load_be16(v.data() + 2) ^ (kMagicCookie >> 16));
  uint8_t raw[16];
  if (family == kFamilyIpv4) {
    if (v.size() != 8) return AttrError::BadLength;
    for (int i = 0; i < 4; ++i) raw[i] = v[4 + i] ^ xor_mask[i];
    a.ip = IpAddress::v4(raw);
  } else if (family == kFamilyIpv6) {
    if (v.size() != 20) return AttrError::BadLength;
    for (int i = 0; i < 16; ++i) raw[i] = v[4 + i] ^ xor_mask[i];
    a.ip = IpAddress::v6(raw);
  } else {
    return AttrError::BadFamily;
  }
  return a;
}

size_t write_address(uint8_t* out, const SocketAddress& a) noexcept {
  out[0] = 0;
  store_be16(out + 2, a.port);
  if (a.ip.is_v4()) {
    out[1] = kFamilyIpv4;
    std::memcpy(out + 4, a.ip.v4_bytes(), 4);
    return 8;
  }
  out[1] = kFamilyIpv6;
  std::memcpy(out + 4, a.ip.bytes.data(), 16);
  return 20;
}

size_t write_xor_address(uint8_t* out, const SocketAddress& a, const uint8_t* xor_mask) noexcept {
  out[0] = 0;
  store_be16(out + 2, static_cast<uint16_t>(a.port ^ (kMagicCookie >> 16)));
  if (a.ip.is_v4()) {
    out[1] = kFamilyIpv4;
    for (int i = 0; i < 4; ++i) out[4 + i] = a.ip.v4_bytes()[i] ^ xor_mask[i];
    return 8;
  }
  out[1] = kFamilyIpv6;
  for (int i = 0; i < 16; ++i) out[4 + i] = a.ip.bytes[static_cast<size_t>(i)] ^ xor_mask[i];
  return 20;
}

Result<ErrorCodeValue, AttrError> read_error_code(Bytes v) noexcept {
  // 21 bits reserved | class (3 bits) | number (8 bits) | reason (§14.8)
  if (v.size() < 4) return AttrError::BadLength;
  if (v.size() - 4 > kMaxReasonBytes) return AttrError::TooLong;
  unsigned cls = v[2] & 0x07;
  unsigned number = v[3];
  if (cls < 3 || cls > 6 || number > 99) return AttrError::BadValue;
  ErrorCodeValue e;
  e.code = static_cast<uint16_t>(cls * 100 + number);
  e.reason = {reinterpret_cast<const char*>(v.data() + 4), v.size() - 4};
  return e;
}

Result<uint32_t, AttrError> read_u32(Bytes v) noexcept {
  if (v.size() != 4) return AttrError::BadLength;
  return load_be32(v.data());
}

Result<uint16_t, AttrError> read_channel_number(Bytes v) noexcept {
  if (v.size() != 4) return AttrError::BadLength;
  return load_be16(v.data());
}

Result<uint8_t, AttrError> read_requested_transport(Bytes v) noexcept {
  if (v.size() != 4) return AttrError::BadLength;
  return v[0];
}

Result<Family, AttrError> read_address_family(Bytes v) noexcept {
  if (v.size() != 4) return AttrError::BadLength;
  if (v[0] == kFamilyIpv4) return Family::V4;
  if (v[0] == kFamilyIpv6) return Family::V6;
  return AttrError::BadFamily;
}

Result<bool, AttrError> read_even_port(Bytes v) noexcept {
  if (v.size() != 1) return AttrError::BadLength;
  return (v[0] & 0x80) != 0;
}

Result<uint64_t, AttrError> read_reservation_token(Bytes v) noexcept {
  if (v.size() != 8) return AttrError::BadLength;
  return (uint64_t{load_be32(v.data())} << 32) | load_be32(v.data() + 4);
}

bool read_flag(Bytes v) noexcept { return v.empty(); }

Result<AddressErrorValue, AttrError> read_address_error_code(Bytes v) noexcept {
  if (v.size() < 4) return AttrError::BadLength;
  if (v.size() - 4 > kMaxReasonBytes) return AttrError::TooLong;
  AddressErrorValue e;
  if (v[0] == kFamilyIpv4)
    e.family = Family::V4;
  else if (v[0] == kFamilyIpv6)
    e.family = Family::V6;
  else
    return AttrError::BadFamily;
  unsigned cls = v[2] & 0x07;
  unsigned number = v[3];
  if (cls < 3 || cls > 6 || number > 99) return AttrError::BadValue;
  e.code = static_cast<uint16_t>(cls * 100 + number);
  e.reason = {reinterpret_cast<const char*>(v.data() + 4), v.size() - 4};
  return e;
}

Result<IcmpValue, AttrError> read_icmp(Bytes v) noexcept {
  if (v.size() != 8) return AttrError::BadLength;
  return IcmpValue{v[2], v[3], load_be32(v.data() + 4)};
}

Result<PasswordAlgorithmValue, AttrError> read_password_algorithm(Bytes v) noexcept {
  if (v.size() < 4) return AttrError::BadLength;
  size_t plen = load_be16(v.data() + 2);
  if (pad4(plen) != v.size() - 4 && plen != v.size() - 4) return AttrError::BadLength;
  return PasswordAlgorithmValue{load_be16(v.data()), v.subspan(4, plen)};
}

Result<size_t, AttrError> read_password_algorithms(Bytes v, std::span<PasswordAlgorithmValue> out) noexcept {
  size_t n = 0;
  size_t pos = 0;
  while (pos < v.size()) {
    if (v.size() - pos < 4) return AttrError::BadLength;
    uint16_t alg = load_be16(v.data() + pos);
    size_t plen = load_be16(v.data() + pos + 2);
    if (plen > v.size() - pos - 4) return AttrError::BadLength;
    if (n < out.size()) out[n] = PasswordAlgorithmValue{alg, v.subspan(pos + 4, plen)};
    ++n;
    pos += 4 + pad4(plen);
  }
  if (pos != v.size()) return AttrError::BadLength;
  return n;
}

Result<size_t, AttrError> read_unknown_attributes(Bytes v, std::span<uint16_t> out) noexcept {
  if (v.size() % 2 != 0) return AttrError::BadLength;
  size_t n = v.size() / 2;
  for (size_t i = 0; i < n && i < out.size(); ++i) out[i] = load_be16(v.data() + 2 * i);
  return n;
}

Result<std::array<uint8_t, 32>, AttrError> read_userhash(Bytes v) noexcept {
  if (v.size() != 32) return AttrError::BadLength;
  std::array<uint8_t, 32> h{};
  std::memcpy(h.data(), v.data(), 32);
  return h;
}

Result<std::string_view, AttrError> read_text(Bytes v, size_t max_bytes) noexcept {
  if (v.size() > max_bytes) return AttrError::TooLong;
  return std::string_view{reinterpret_cast<const char*>(v.data()), v.size()};
}

}  // namespace turn::stun
