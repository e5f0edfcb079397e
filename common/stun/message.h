// SPDX-License-Identifier: Apache-2.0
// Zero-copy STUN message parser (RFC 8489 §5, §6, §14). parse() validates
// the header and walks the attributes once, recording where each one lies;
// the MessageView then points back into the caller's buffer. Nothing is
// allocated and nothing is read past the span. Every rejection has a
// ParseError the caller can count.
//
// Concurrency: a MessageView is a plain value; it is valid while the buffer
// it was parsed from is alive and unchanged.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string_view>

#include "common/stun/constants.h"
#include "common/util/bytes.h"

namespace turn::stun {

#define TURN_STUN_PARSE_ERRORS(X)                                         \
  X(Ok, "ok")                                                             \
  X(TooShort, "shorter than the 20-byte header")                          \
  X(NotStun, "first two bits not zero")                                   \
  X(BadMagicCookie, "magic cookie is not 0x2112A442")                     \
  X(LengthNotAligned, "message length not a multiple of 4")               \
  X(LengthMismatch, "message length disagrees with the datagram size")    \
  X(AttributeOverrun, "attribute header or value runs past the message")  \
  X(TooManyAttributes, "more attributes than the parser keeps")           \
  X(FingerprintNotLast, "attribute after FINGERPRINT")                    \
  X(BadIntegrityLength, "MESSAGE-INTEGRITY(-SHA256) of the wrong length") \
  X(BadFingerprintLength, "FINGERPRINT not 4 bytes")                      \
  X(BadFingerprint, "FINGERPRINT does not match the message")

enum class ParseError : uint8_t {
#define TURN_X(name, text) name,
  TURN_STUN_PARSE_ERRORS(TURN_X)
#undef TURN_X
      Count
};

[[nodiscard]] std::string_view parse_error_name(ParseError e) noexcept;

// Where one attribute lies in the message. offset is the value's offset
// from the start of the message; the value is `length` bytes (unpadded).
// offset is 32-bit: a message may be 20 + 65532 bytes long (over TCP), so a
// value can start past offset 65535.
struct AttributeRef {
  uint16_t type = 0;
  uint16_t length = 0;
  uint32_t offset = 0;
};

class MessageView {
 public:
  // Enough for any real client: Chrome's largest Allocate carries 9.
  static constexpr size_t kMaxAttributes = 40;
  static constexpr uint8_t kNone = 0xff;

  [[nodiscard]] Bytes bytes() const noexcept { return bytes_; }
  [[nodiscard]] uint16_t type() const noexcept { return type_; }
  [[nodiscard]] Method method() const noexcept { return method_of(type_); }
  [[nodiscard]] Class message_class() const noexcept { return class_of(type_); }
  [[nodiscard]] Bytes transaction_id() const noexcept { return bytes_.subspan(8, kTransactionIdSize); }
  // Magic cookie followed by transaction id: the XOR mask for addresses.
  [[nodiscard]] const uint8_t* xor_mask() const noexcept { return bytes_.data() + 4; }

  [[nodiscard]] std::span<const AttributeRef> attributes() const noexcept { return {attrs_.data(), count_}; }
  // First occurrence (RFC 8489 §14: only the first needs processing).
  [[nodiscard]] const AttributeRef* find(Attr type) const noexcept;
  [[nodiscard]] bool has(Attr type) const noexcept { return find(type) != nullptr; }
  [[nodiscard]] Bytes value(const AttributeRef& a) const noexcept { return bytes_.subspan(a.offset, a.length); }
  [[nodiscard]] std::string_view text(const AttributeRef& a) const noexcept {
    auto v = value(a);
    return {reinterpret_cast<const char*>(v.data()), v.size()};
  }

  [[nodiscard]] const AttributeRef* integrity() const noexcept { return at(integrity_); }
  [[nodiscard]] const AttributeRef* integrity_sha256() const noexcept { return at(integrity_sha256_); }
  [[nodiscard]] const AttributeRef* fingerprint() const noexcept { return at(fingerprint_); }
  // Attributes after MESSAGE-INTEGRITY(-SHA256) that RFC 8489 §14.5/§14.6
  // say to ignore (a second MESSAGE-INTEGRITY among them): not recorded.
  [[nodiscard]] uint16_t ignored() const noexcept { return ignored_; }

  // Collects comprehension-required attributes this codec does not know
  // (for 420 + UNKNOWN-ATTRIBUTES). Returns how many were written to out.
  size_t unknown_required(std::span<uint16_t> out) const noexcept;

 private:
  friend ParseError parse(Bytes, MessageView&) noexcept;
  [[nodiscard]] const AttributeRef* at(uint8_t i) const noexcept { return i == kNone ? nullptr : &attrs_[i]; }

  Bytes bytes_;
  uint16_t type_ = 0;
  uint8_t count_ = 0;
  uint16_t ignored_ = 0;
  uint8_t integrity_ = kNone;
  uint8_t integrity_sha256_ = kNone;
  uint8_t fingerprint_ = kNone;
  std::array<AttributeRef, kMaxAttributes> attrs_{};
};

// Parses one whole STUN message that is exactly `bytes` long (a UDP datagram,
// or a frame cut by stream_frame_length()). On error the view is unusable,
// except after TooManyAttributes: the header was valid, so method(),
// message_class() and transaction_id() may be used to answer (400) a
// request that carries more attributes than kMaxAttributes.
// RFC 8489 §14.5/§14.6: attributes after MESSAGE-INTEGRITY other than
// MESSAGE-INTEGRITY-SHA256 and FINGERPRINT (and after -SHA256 other than
// FINGERPRINT) are skipped, not recorded; a second MESSAGE-INTEGRITY is one
// of them. A FINGERPRINT, when present, is
// verified here (it is cheap and it is what tells STUN from other traffic).
[[nodiscard]] ParseError parse(Bytes bytes, MessageView& out) noexcept;

// Cheap check used for demultiplexing (RFC 7983): could this be STUN?
[[nodiscard]] bool looks_like_stun(Bytes bytes) noexcept;

// For stream transports (TCP/TLS, RFC 8656 §12.6 / RFC 6062): how many bytes
// the frame that starts at `bytes` occupies, STUN or ChannelData (padded to
// 4). 0 if more bytes are needed to tell; -1 if the stream is not STUN/TURN
// (first two bits 10/11, or a STUN-looking header without the magic cookie).
[[nodiscard]] long stream_frame_length(Bytes bytes) noexcept;

}  // namespace turn::stun
