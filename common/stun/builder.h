// SPDX-License-Identifier: Apache-2.0
// MessageBuilder: writes a STUN message into a caller-provided buffer.
// Overflow is sticky: once an attribute does not fit, every later call is a
// no-op and finish() returns an empty span, so callers check once at the end
// (the pattern of libcamera's ByteStreamBuffer). Never allocates.
//
// MESSAGE-INTEGRITY(-SHA256) need HMAC and live in common/crypto
// (turn_crypto), so that users of the bare codec need no OpenSSL.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "common/net/address.h"
#include "common/stun/constants.h"
#include "common/util/bytes.h"

namespace turn::stun {

class MessageBuilder {
 public:
  // txid must be 12 bytes.
  MessageBuilder(MutableBytes buffer, Method method, Class cls, Bytes txid) noexcept;
  MessageBuilder(MutableBytes buffer, uint16_t raw_type, Bytes txid) noexcept;

  // Generic attribute: header + value + zero padding.
  MessageBuilder& add(uint16_t type, Bytes value) noexcept;
  MessageBuilder& add(Attr type, Bytes value) noexcept { return add(static_cast<uint16_t>(type), value); }
  MessageBuilder& add_text(Attr type, std::string_view text) noexcept;
  MessageBuilder& add_u32(Attr type, uint32_t v) noexcept;
  MessageBuilder& add_flag(Attr type) noexcept { return add(type, Bytes{}); }
  MessageBuilder& add_address(Attr type, const SocketAddress& a) noexcept;
  MessageBuilder& add_xor_address(Attr type, const SocketAddress& a) noexcept;
  MessageBuilder& add_error_code(uint16_t code, std::string_view reason) noexcept;
  MessageBuilder& add_error_code(ErrorCode code) noexcept {
    return add_error_code(static_cast<uint16_t>(code), reason_phrase(code));
  }
  MessageBuilder& add_unknown_attributes(std::span<const uint16_t> types) noexcept;
  MessageBuilder& add_channel_number(uint16_t channel) noexcept;
  MessageBuilder& add_requested_transport(uint8_t protocol) noexcept;
  MessageBuilder& add_address_family(Attr type, Family f) noexcept;
  MessageBuilder& add_even_port(bool reserve_next) noexcept;
  MessageBuilder& add_reservation_token(uint64_t token) noexcept;
  MessageBuilder& add_address_error_code(Family f, uint16_t code, std::string_view reason) noexcept;
  MessageBuilder& add_icmp(uint8_t type, uint8_t code, uint32_t data) noexcept;
  MessageBuilder& add_password_algorithm(PasswordAlgorithm alg) noexcept;
  MessageBuilder& add_password_algorithms(std::span<const PasswordAlgorithm> algs) noexcept;
  // FINGERPRINT, last (RFC 8489 §14.7).
  MessageBuilder& add_fingerprint() noexcept;

  // Reserves an attribute of `length` bytes and returns where its value goes
  // (nullptr on overflow); used by the integrity writers.
  uint8_t* reserve(uint16_t type, uint16_t length) noexcept;

  [[nodiscard]] bool ok() const noexcept { return !overflow_; }
  [[nodiscard]] size_t size() const noexcept { return size_; }
  [[nodiscard]] const uint8_t* data() const noexcept { return buf_.data(); }
  [[nodiscard]] const uint8_t* xor_mask() const noexcept { return buf_.data() + 4; }
  // The finished message, or an empty span if anything overflowed.
  [[nodiscard]] Bytes finish() const noexcept { return overflow_ ? Bytes{} : Bytes{buf_.data(), size_}; }

 private:
  void set_length() noexcept;

  MutableBytes buf_;
  size_t size_ = 0;
  bool overflow_ = false;
};

}  // namespace turn::stun
