// SPDX-License-Identifier: Apache-2.0
// STUN message encoding into caller buffers.
#include "common/stun/builder.h"

#include <cstring>

#include "common/stun/attributes.h"
#include "common/stun/fingerprint.h"

namespace turn::stun {

MessageBuilder::MessageBuilder(MutableBytes buffer, Method method, Class cls, Bytes txid) noexcept
    : MessageBuilder(buffer, message_type(method, cls), txid) {}

MessageBuilder::MessageBuilder(MutableBytes buffer, uint16_t raw_type, Bytes txid) noexcept : buf_(buffer) {
  if (buf_.size() < kHeaderSize || txid.size() != kTransactionIdSize) {
    overflow_ = true;
    return;
  }
  store_be16(buf_.data(), raw_type & 0x3FFF);
  store_be16(buf_.data() + 2, 0);
  store_be32(buf_.data() + 4, kMagicCookie);
  std::memcpy(buf_.data() + 8, txid.data(), kTransactionIdSize);
  size_ = kHeaderSize;
}

void MessageBuilder::set_length() noexcept { store_be16(buf_.data() + 2, static_cast<uint16_t>(size_ - kHeaderSize)); }

uint8_t* MessageBuilder::reserve(uint16_t type, uint16_t length) noexcept {
  size_t need = 4 + pad4(length);
  // The header's 16-bit length bounds a message to 65535 + 20 bytes.
  if (overflow_ || need > buf_.size() - size_ || size_ + need - kHeaderSize > 0xFFFC) {
    overflow_ = true;
    return nullptr;
  }
  uint8_t* p = buf_.data() + size_;
  store_be16(p, type);
  store_be16(p + 2, length);
  // Zero the padding (RFC 8489 §14: padding bits are ignored, but we send 0).
  std::memset(p + 4 + length, 0, pad4(length) - length);
  size_ += need;
  set_length();
  return p + 4;
}

MessageBuilder& MessageBuilder::add(uint16_t type, Bytes value) noexcept {
  if (value.size() > 0xFFFF) {
    overflow_ = true;
    return *this;
  }
  if (uint8_t* p = reserve(type, static_cast<uint16_t>(value.size())); p && !value.empty())
    std::memcpy(p, value.data(), value.size());
  return *this;
}

MessageBuilder& MessageBuilder::add_text(Attr type, std::string_view text) noexcept {
  return add(type, Bytes{reinterpret_cast<const uint8_t*>(text.data()), text.size()});
}

MessageBuilder& MessageBuilder::add_u32(Attr type, uint32_t v) noexcept {
  if (uint8_t* p = reserve(static_cast<uint16_t>(type), 4)) store_be32(p, v);
  return *this;
}

MessageBuilder& MessageBuilder::add_address(Attr type, const SocketAddress& a) noexcept {
  uint8_t v[20];
  size_t n = write_address(v, a);
  return add(type, Bytes{v, n});
}

MessageBuilder& MessageBuilder::add_xor_address(Attr type, const SocketAddress& a) noexcept {
  if (overflow_) return *this;
  uint8_t v[20];
  size_t n = write_xor_address(v, a, xor_mask());
  return add(type, Bytes{v, n});
}

MessageBuilder& MessageBuilder::add_error_code(uint16_t code, std::string_view reason) noexcept {
  if (reason.size() > kMaxReasonBytes) reason = reason.substr(0, kMaxReasonBytes);
  if (uint8_t* p = reserve(static_cast<uint16_t>(Attr::ErrorCode), static_cast<uint16_t>(4 + reason.size()))) {
    p[0] = p[1] = 0;
    p[2] = static_cast<uint8_t>((code / 100) & 0x07);
    p[3] = static_cast<uint8_t>(code % 100);
    std::memcpy(p + 4, reason.data(), reason.size());
  }
  return *this;
}

MessageBuilder& MessageBuilder::add_unknown_attributes(std::span<const uint16_t> types) noexcept {
  // The value length is 16-bit; a longer list must not be truncated (the
  // loop below would then write past the reserved space).
  if (types.size() > 0xFFFF / 2) {
    overflow_ = true;
    return *this;
  }
  if (uint8_t* p = reserve(static_cast<uint16_t>(Attr::UnknownAttributes), static_cast<uint16_t>(types.size() * 2)))
    for (size_t i = 0; i < types.size(); ++i) store_be16(p + 2 * i, types[i]);
  return *this;
}

MessageBuilder& MessageBuilder::add_channel_number(uint16_t channel) noexcept {
  if (uint8_t* p = reserve(static_cast<uint16_t>(Attr::ChannelNumber), 4)) {
    store_be16(p, channel);
    store_be16(p + 2, 0);
  }
  return *this;
}

MessageBuilder& MessageBuilder::add_requested_transport(uint8_t protocol) noexcept {
  if (uint8_t* p = reserve(static_cast<uint16_t>(Attr::RequestedTransport), 4)) {
    p[0] = protocol;
    p[1] = p[2] = p[3] = 0;
  }
  return *this;
}

MessageBuilder& MessageBuilder::add_address_family(Attr type, Family f) noexcept {
  if (uint8_t* p = reserve(static_cast<uint16_t>(type), 4)) {
    p[0] = f == Family::V4 ? kFamilyIpv4 : kFamilyIpv6;
    p[1] = p[2] = p[3] = 0;
  }
  return *this;
}

MessageBuilder& MessageBuilder::add_even_port(bool reserve_next) noexcept {
  if (uint8_t* p = reserve(static_cast<uint16_t>(Attr::EvenPort), 1)) p[0] = reserve_next ? 0x80 : 0x00;
  return *this;
}

MessageBuilder& MessageBuilder::add_reservation_token(uint64_t token) noexcept {
  if (uint8_t* p = reserve(static_cast<uint16_t>(Attr::ReservationToken), 8)) {
    store_be32(p, static_cast<uint32_t>(token >> 32));
    store_be32(p + 4, static_cast<uint32_t>(token));
  }
  return *this;
}

MessageBuilder& MessageBuilder::add_address_error_code(Family f, uint16_t code, std::string_view reason) noexcept {
  if (reason.size() > kMaxReasonBytes) reason = reason.substr(0, kMaxReasonBytes);
  if (uint8_t* p = reserve(static_cast<uint16_t>(Attr::AddressErrorCode), static_cast<uint16_t>(4 + reason.size()))) {
    p[0] = f == Family::V4 ? kFamilyIpv4 : kFamilyIpv6;
    p[1] = 0;
    p[2] = static_cast<uint8_t>((code / 100) & 0x07);
    p[3] = static_cast<uint8_t>(code % 100);
    std::memcpy(p + 4, reason.data(), reason.size());
  }
  return *this;
}

MessageBuilder& MessageBuilder::add_icmp(uint8_t type, uint8_t code, uint32_t data) noexcept {
  if (uint8_t* p = reserve(static_cast<uint16_t>(Attr::Icmp), 8)) {
    p[0] = p[1] = 0;
    p[2] = type;
    p[3] = code;
    store_be32(p + 4, data);
  }
  return *this;
}

MessageBuilder& MessageBuilder::add_password_algorithm(PasswordAlgorithm alg) noexcept {
  if (uint8_t* p = reserve(static_cast<uint16_t>(Attr::PasswordAlgorithm), 4)) {
    store_be16(p, static_cast<uint16_t>(alg));
    store_be16(p + 2, 0);  // MD5 and SHA-256 take no parameters
  }
  return *this;
}

MessageBuilder& MessageBuilder::add_password_algorithms(std::span<const PasswordAlgorithm> algs) noexcept {
  if (algs.size() > 0xFFFF / 4) {  // see add_unknown_attributes
    overflow_ = true;
    return *this;
  }
  if (uint8_t* p = reserve(static_cast<uint16_t>(Attr::PasswordAlgorithms), static_cast<uint16_t>(algs.size() * 4)))
    for (size_t i = 0; i < algs.size(); ++i) {
      store_be16(p + 4 * i, static_cast<uint16_t>(algs[i]));
      store_be16(p + 4 * i + 2, 0);
    }
  return *this;
}

MessageBuilder& MessageBuilder::add_fingerprint() noexcept {
  size_t before = size_;
  if (uint8_t* p = reserve(static_cast<uint16_t>(Attr::Fingerprint), 4))
    store_be32(p, fingerprint_value(Bytes{buf_.data(), before}));
  return *this;
}

}  // namespace turn::stun
