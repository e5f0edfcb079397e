// SPDX-License-Identifier: Apache-2.0
// STUN message parsing: header checks (RFC 8489 §5), attribute walk (§14),
// integrity/fingerprint placement rules (§14.5-§14.7).
#include "common/stun/message.h"

#include <array>

#include "common/stun/fingerprint.h"

namespace turn::stun {

namespace {
constexpr std::array<std::string_view, static_cast<size_t>(ParseError::Count)> kParseErrorNames = {
#define TURN_X(name, text) text,
    TURN_STUN_PARSE_ERRORS(TURN_X)
#undef TURN_X
};
}  // namespace

std::string_view parse_error_name(ParseError e) noexcept {
  auto i = static_cast<size_t>(e);
  return i < kParseErrorNames.size() ? kParseErrorNames[i] : "invalid";
}

const AttributeRef* MessageView::find(Attr type) const noexcept {
  auto t = static_cast<uint16_t>(type);
  for (uint8_t i = 0; i < count_; ++i)
    if (attrs_[i].type == t) return &attrs_[i];
  return nullptr;
}

size_t MessageView::unknown_required(std::span<uint16_t> out) const noexcept {
  size_t n = 0;
  for (uint8_t i = 0; i < count_; ++i) {
    uint16_t t = attrs_[i].type;
    if (!is_comprehension_required(t) || is_known_attribute(t)) continue;
    bool seen = false;
    for (size_t j = 0; j < n; ++j) seen |= out[j] == t;
    if (!seen && n < out.size()) out[n++] = t;
  }
  return n;
}

bool looks_like_stun(Bytes bytes) noexcept {
  return bytes.size() >= kHeaderSize && (bytes[0] & 0xC0) == 0 && load_be32(bytes.data() + 4) == kMagicCookie &&
         (load_be16(bytes.data() + 2) & 3) == 0;
}

long stream_frame_length(Bytes bytes) noexcept {
  if (bytes.size() < 4) return 0;
  uint8_t top = bytes[0] & 0xC0;
  if (top == 0x00) {
    // RFC 8489 §5: every message carries the magic cookie; without it this
    // is not STUN (a TLS record on a plain TCP port, say), and waiting for
    // a made-up length would hold the connection open for nothing.
    if (bytes.size() >= 8 && load_be32(bytes.data() + 4) != kMagicCookie) return -1;
    return static_cast<long>(kHeaderSize + load_be16(bytes.data() + 2));
  }
  // ChannelData over a stream is padded to a multiple of 4 (RFC 8656 §12.5).
  if (top == 0x40) return static_cast<long>(4 + pad4(load_be16(bytes.data() + 2)));
  return -1;
}

ParseError parse(Bytes bytes, MessageView& out) noexcept {
  out.count_ = 0;
  out.ignored_ = 0;
  out.integrity_ = out.integrity_sha256_ = out.fingerprint_ = MessageView::kNone;
  if (bytes.size() < kHeaderSize) return ParseError::TooShort;
  const uint8_t* p = bytes.data();
  if ((p[0] & 0xC0) != 0) return ParseError::NotStun;
  if (load_be32(p + 4) != kMagicCookie) return ParseError::BadMagicCookie;
  size_t length = load_be16(p + 2);
  if (length % 4 != 0) return ParseError::LengthNotAligned;
  if (length + kHeaderSize != bytes.size()) return ParseError::LengthMismatch;

  out.bytes_ = bytes;
  out.type_ = load_be16(p);

  // Phase: 0 = normal, 1 = after MI, 2 = after MI-SHA256, 3 = after FINGERPRINT.
  int phase = 0;
  size_t pos = kHeaderSize;
  const size_t end = bytes.size();
  while (pos < end) {
    if (end - pos < 4) return ParseError::AttributeOverrun;
    uint16_t type = load_be16(p + pos);
    uint16_t len = load_be16(p + pos + 2);
    size_t value_at = pos + 4;
    if (len > end - value_at) return ParseError::AttributeOverrun;
    size_t next = value_at + pad4(len);
    if (next > end) return ParseError::AttributeOverrun;
    if (phase == 3) return ParseError::FingerprintNotLast;

    // RFC 8489 §14.5: after MESSAGE-INTEGRITY only MESSAGE-INTEGRITY-SHA256
    // and FINGERPRINT are processed; §14.6: after MESSAGE-INTEGRITY-SHA256
    // only FINGERPRINT. Everything else there is ignored (not an error): a
    // second MESSAGE-INTEGRITY, a MESSAGE-INTEGRITY after the -SHA256 one, a
    // second -SHA256. The integrity check covers only what precedes it.
    bool record = true;
    const uint8_t index = out.count_;
    auto attr = static_cast<Attr>(type);
    bool processed = attr == Attr::Fingerprint || (attr == Attr::MessageIntegrity && phase == 0) ||
                     (attr == Attr::MessageIntegritySha256 && phase <= 1) || phase == 0;
    if (processed && index == MessageView::kMaxAttributes) {
      // The header stays usable (see parse() in message.h); nothing else.
      out.count_ = 0;
      out.integrity_ = out.integrity_sha256_ = out.fingerprint_ = MessageView::kNone;
      return ParseError::TooManyAttributes;
    }
    if (attr == Attr::Fingerprint) {
      if (len != 4) return ParseError::BadFingerprintLength;
      out.fingerprint_ = index;
      phase = 3;
    } else if (attr == Attr::MessageIntegrity && phase == 0) {
      if (len != 20) return ParseError::BadIntegrityLength;
      out.integrity_ = index;
      phase = 1;
    } else if (attr == Attr::MessageIntegritySha256 && phase <= 1) {
      // RFC 8489 §14.6: 16 to 32 bytes, a multiple of 4.
      if (len < 16 || len > 32 || len % 4 != 0) return ParseError::BadIntegrityLength;
      out.integrity_sha256_ = index;
      phase = 2;
    } else if (phase != 0) {
      record = false;
      if (out.ignored_ < UINT16_MAX) ++out.ignored_;
    }
    if (record) {
      out.attrs_[out.count_++] = AttributeRef{type, len, static_cast<uint32_t>(value_at)};
    }
    pos = next;
  }

  if (out.fingerprint_ != MessageView::kNone) {
    const AttributeRef& fp = out.attrs_[out.fingerprint_];
    // The CRC covers everything before the FINGERPRINT attribute header,
    // with the header length already counting the FINGERPRINT (§14.7).
    uint32_t expect = fingerprint_value(bytes.first(fp.offset - 4u));
    if (load_be32(p + fp.offset) != expect) return ParseError::BadFingerprint;
  }
  return ParseError::Ok;
}

}  // namespace turn::stun
