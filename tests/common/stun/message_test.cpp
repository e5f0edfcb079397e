// SPDX-License-Identifier: Apache-2.0
// stun::parse and MessageView: message type encoding, header and attribute
// validation (one ParseError per rule), the integrity/fingerprint placement
// rules, unknown comprehension-required attributes, and demultiplexing.
#include "common/stun/message.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "common/stun/builder.h"
#include "common/stun/fingerprint.h"
#include "tests/common/test_support.h"

namespace turn::stun {
namespace {

using test::raw;
using test::raw_message;
using test::RawAttr;

constexpr uint16_t kBindingRequest = 0x0001;

ParseError parse_vec(const std::vector<uint8_t>& m) {
  MessageView v;
  return parse(Bytes{m}, v);
}

// --- message type -----------------------------------------------------------

struct TypeCase {
  Method method;
  Class cls;
  uint16_t type;  // from the RFCs' IANA tables / examples
};

TEST(MessageType, KnownTypesForEveryTurnMethodAndClass) {
  const TypeCase cases[] = {
      {Method::Binding, Class::Request, 0x0001},
      {Method::Binding, Class::Indication, 0x0011},
      {Method::Binding, Class::SuccessResponse, 0x0101},
      {Method::Binding, Class::ErrorResponse, 0x0111},
      {Method::Allocate, Class::Request, 0x0003},
      {Method::Allocate, Class::SuccessResponse, 0x0103},
      {Method::Allocate, Class::ErrorResponse, 0x0113},
      {Method::Refresh, Class::Request, 0x0004},
      {Method::Refresh, Class::SuccessResponse, 0x0104},
      {Method::Refresh, Class::ErrorResponse, 0x0114},
      {Method::Send, Class::Indication, 0x0016},
      {Method::Data, Class::Indication, 0x0017},
      {Method::CreatePermission, Class::Request, 0x0008},
      {Method::CreatePermission, Class::SuccessResponse, 0x0108},
      {Method::CreatePermission, Class::ErrorResponse, 0x0118},
      {Method::ChannelBind, Class::Request, 0x0009},
      {Method::ChannelBind, Class::SuccessResponse, 0x0109},
      {Method::ChannelBind, Class::ErrorResponse, 0x0119},
      {Method::Connect, Class::Request, 0x000A},
      {Method::Connect, Class::SuccessResponse, 0x010A},
      {Method::Connect, Class::ErrorResponse, 0x011A},
      {Method::ConnectionBind, Class::Request, 0x000B},
      {Method::ConnectionBind, Class::SuccessResponse, 0x010B},
      {Method::ConnectionBind, Class::ErrorResponse, 0x011B},
      {Method::ConnectionAttempt, Class::Indication, 0x001C},
  };
  for (const TypeCase& c : cases) {
    SCOPED_TRACE(c.type);
    EXPECT_EQ(message_type(c.method, c.cls), c.type);
    EXPECT_EQ(method_of(c.type), c.method);
    EXPECT_EQ(class_of(c.type), c.cls);
  }
}

TEST(MessageType, EveryMethodAndClassRoundTrips) {
  // All 12-bit methods, all four classes: the interleaving is a bijection
  // onto the 14-bit types and never sets the top two bits.
  for (uint16_t m = 0; m < 0x1000; ++m) {
    for (uint8_t c = 0; c < 4; ++c) {
      uint16_t t = message_type(static_cast<Method>(m), static_cast<Class>(c));
      ASSERT_EQ(t & 0xC000, 0);
      ASSERT_EQ(static_cast<uint16_t>(method_of(t)), m);
      ASSERT_EQ(static_cast<uint8_t>(class_of(t)), c);
    }
  }
  // Class bits are bit 4 (C0) and bit 8 (C1).
  EXPECT_EQ(message_type(static_cast<Method>(0), Class::Indication), 0x0010);
  EXPECT_EQ(message_type(static_cast<Method>(0), Class::SuccessResponse), 0x0100);
  EXPECT_EQ(message_type(static_cast<Method>(0xFFF), Class::ErrorResponse), 0x3FFF);
  EXPECT_EQ(message_type(static_cast<Method>(0xFFF), Class::Request), 0x3EEF);
}

TEST(Constants, AttributeTables) {
  EXPECT_TRUE(is_comprehension_required(0x0001));
  EXPECT_TRUE(is_comprehension_required(0x7FFF));
  EXPECT_FALSE(is_comprehension_required(0x8000));
  EXPECT_TRUE(is_known_attribute(static_cast<uint16_t>(Attr::XorPeerAddress)));
  EXPECT_TRUE(is_known_attribute(static_cast<uint16_t>(Attr::Origin)));
  EXPECT_FALSE(is_known_attribute(0x0003));  // CHANGE-REQUEST (RFC 5780): not ours
  EXPECT_FALSE(is_known_attribute(0x7FFF));
  EXPECT_EQ(attribute_name(0x0012), "XOR-PEER-ADDRESS");
  EXPECT_EQ(attribute_name(0x8028), "FINGERPRINT");
  EXPECT_EQ(attribute_name(0x0003), "UNKNOWN");
  EXPECT_EQ(reason_phrase(ErrorCode::StaleNonce), "Stale Nonce");
  EXPECT_EQ(reason_phrase(ErrorCode::AllocationQuotaReached), "Allocation Quota Reached");
  EXPECT_EQ(static_cast<uint16_t>(ErrorCode::InsufficientCapacity), 508);
}

TEST(ParseErrorName, NamesEveryError) {
  EXPECT_EQ(parse_error_name(ParseError::Ok), "ok");
  EXPECT_EQ(parse_error_name(ParseError::BadFingerprint), "FINGERPRINT does not match the message");
  EXPECT_EQ(parse_error_name(ParseError::Count), "invalid");
  for (uint8_t i = 0; i < static_cast<uint8_t>(ParseError::Count); ++i)
    EXPECT_NE(parse_error_name(static_cast<ParseError>(i)), "invalid") << int{i};
}

// --- a well-formed message --------------------------------------------------

TEST(Parse, HeaderOnly) {
  auto m = raw_message(kBindingRequest, {});
  MessageView v;
  ASSERT_EQ(parse(Bytes{m}, v), ParseError::Ok);
  EXPECT_EQ(v.type(), kBindingRequest);
  EXPECT_EQ(v.method(), Method::Binding);
  EXPECT_EQ(v.message_class(), Class::Request);
  EXPECT_EQ(v.attributes().size(), 0u);
  EXPECT_EQ(v.bytes().data(), m.data());
  EXPECT_EQ(v.bytes().size(), 20u);
  ASSERT_EQ(v.transaction_id().size(), 12u);
  EXPECT_EQ(v.transaction_id()[0], 0xA0);
  EXPECT_EQ(v.transaction_id()[11], 0xAB);
  EXPECT_EQ(v.xor_mask(), m.data() + 4);
  EXPECT_EQ(v.integrity(), nullptr);
  EXPECT_EQ(v.integrity_sha256(), nullptr);
  EXPECT_EQ(v.fingerprint(), nullptr);
  EXPECT_FALSE(v.has(Attr::Username));
}

TEST(Parse, RecordsAttributesInOrderAndFindsTheFirst) {
  auto m = raw_message(kBindingRequest, {raw(Attr::Software, {'a', 'b', 'c'}), raw(Attr::Username, {'u'}),
                                         raw(Attr::Software, {'x', 'y', 'z', 'w', 'v'}), raw(Attr::DontFragment, {})});
  MessageView v;
  ASSERT_EQ(parse(Bytes{m}, v), ParseError::Ok);
  ASSERT_EQ(v.attributes().size(), 4u);
  EXPECT_EQ(v.attributes()[0].type, 0x8022);
  EXPECT_EQ(v.attributes()[0].length, 3);
  EXPECT_EQ(v.attributes()[0].offset, 24u);
  EXPECT_EQ(v.attributes()[1].offset, 32u);  // 24 + pad4(3) + 4
  EXPECT_EQ(v.attributes()[2].length, 5);
  EXPECT_EQ(v.attributes()[3].length, 0);
  const AttributeRef* sw = v.find(Attr::Software);
  ASSERT_NE(sw, nullptr);
  EXPECT_EQ(sw, &v.attributes()[0]);
  EXPECT_EQ(v.text(*sw), "abc");
  EXPECT_EQ(v.value(*sw).data(), m.data() + 24);
  EXPECT_TRUE(v.has(Attr::DontFragment));
  EXPECT_FALSE(v.has(Attr::Realm));
}

TEST(Parse, AcceptsNonZeroPadding) {
  // RFC 8489 §14: padding bits are ignored (RFC 5769 pads with 0x20).
  auto m = raw_message(kBindingRequest, {RawAttr{0x8022, {'a', ' ', ' ', ' '}, 1}});
  MessageView v;
  ASSERT_EQ(parse(Bytes{m}, v), ParseError::Ok);
  EXPECT_EQ(v.text(v.attributes()[0]), "a");
}

TEST(Parse, ExactlyMaxAttributes) {
  std::vector<uint8_t> m = raw_message(kBindingRequest, {});
  for (size_t i = 0; i < MessageView::kMaxAttributes; ++i) {
    m.insert(m.end(), {0x80, 0x22, 0x00, 0x00});  // empty SOFTWARE
  }
  store_be16(m.data() + 2, static_cast<uint16_t>(m.size() - 20));
  MessageView v;
  ASSERT_EQ(parse(Bytes{m}, v), ParseError::Ok);
  EXPECT_EQ(v.attributes().size(), MessageView::kMaxAttributes);
}

// --- malformed messages: one ParseError each -------------------------------

struct Malformed {
  const char* name;
  std::vector<uint8_t> bytes;
  ParseError expect;
};

std::vector<uint8_t> too_many_attributes() {
  std::vector<uint8_t> m = raw_message(kBindingRequest, {});
  for (size_t i = 0; i < MessageView::kMaxAttributes + 1; ++i) m.insert(m.end(), {0x80, 0x22, 0, 0});
  store_be16(m.data() + 2, static_cast<uint16_t>(m.size() - 20));
  return m;
}

std::vector<uint8_t> with_bad_fingerprint() {
  auto m = raw_message(kBindingRequest, {raw(Attr::Software, {'s'}), raw(Attr::Fingerprint, {0, 0, 0, 0})});
  uint32_t good = fingerprint_value(Bytes{m}.first(m.size() - 8));
  store_be32(m.data() + m.size() - 4, good ^ 1);
  return m;
}

std::vector<uint8_t> header_with(uint8_t b0, uint32_t cookie, uint16_t length, size_t body) {
  std::vector<uint8_t> m(20 + body, 0);
  m[0] = b0;
  m[1] = 0x01;
  store_be16(m.data() + 2, length);
  store_be32(m.data() + 4, cookie);
  return m;
}

std::vector<Malformed> malformed_cases() {
  const std::vector<uint8_t> mi20(20, 0x11), mi16(16, 0x11);
  return {
      {"empty", {}, ParseError::TooShort},
      {"19 bytes", std::vector<uint8_t>(19, 0), ParseError::TooShort},
      {"top bits 10", header_with(0x80, kMagicCookie, 0, 0), ParseError::NotStun},
      {"top bits 01", header_with(0x40, kMagicCookie, 0, 0), ParseError::NotStun},
      {"top bits 11", header_with(0xC0, kMagicCookie, 0, 0), ParseError::NotStun},
      {"bad cookie", header_with(0x00, 0x2112A443, 0, 0), ParseError::BadMagicCookie},
      {"RFC 3489 (no cookie)", header_with(0x00, 0x12345678, 0, 0), ParseError::BadMagicCookie},
      {"length not a multiple of 4", header_with(0x00, kMagicCookie, 2, 2), ParseError::LengthNotAligned},
      {"length larger than datagram", header_with(0x00, kMagicCookie, 8, 4), ParseError::LengthMismatch},
      {"length smaller than datagram", header_with(0x00, kMagicCookie, 4, 8), ParseError::LengthMismatch},
      {"length zero, attribute follows", raw_message(kBindingRequest, {raw(Attr::Username, {'u'})}, 0),
       ParseError::LengthMismatch},
      // With a 4-aligned message length every attribute starts 4-aligned, so
      // a header can never be cut short on its own (LengthNotAligned comes
      // first); a header with its value missing is the truncation that
      // remains.
      {"attribute header without its value", raw_message(kBindingRequest, {RawAttr{0x0006, {}, 8}}),
       ParseError::AttributeOverrun},
      {"attribute value past end", raw_message(kBindingRequest, {RawAttr{0x0006, {'a', 'b', 'c', 'd'}, 8}}),
       ParseError::AttributeOverrun},
      // Likewise a value that fits always leaves room for its padding; a
      // 5-byte value with 4 bytes left overruns with its padding too.
      {"value and padding past end", raw_message(kBindingRequest, {RawAttr{0x0006, {'a', 'b', 'c', 'd'}, 5}}),
       ParseError::AttributeOverrun},
      {"length 0xFFFF", raw_message(kBindingRequest, {RawAttr{0x0006, {'a', 'b', 'c', 'd'}, 0xFFFF}}),
       ParseError::AttributeOverrun},
      {"second attribute past end",
       raw_message(kBindingRequest, {raw(Attr::Username, {'u'}), RawAttr{0x0014, {'r', 'e', 'a', 'l'}, 12}}),
       ParseError::AttributeOverrun},
      {"more than kMaxAttributes", too_many_attributes(), ParseError::TooManyAttributes},
      {"attribute after FINGERPRINT",
       raw_message(kBindingRequest, {raw(Attr::Fingerprint, {1, 2, 3, 4}), raw(Attr::Software, {'s'})}),
       ParseError::FingerprintNotLast},
      {"FINGERPRINT twice",
       raw_message(kBindingRequest, {raw(Attr::Fingerprint, {1, 2, 3, 4}), raw(Attr::Fingerprint, {1, 2, 3, 4})}),
       ParseError::FingerprintNotLast},
      {"MESSAGE-INTEGRITY of 16 bytes", raw_message(kBindingRequest, {raw(Attr::MessageIntegrity, mi16)}),
       ParseError::BadIntegrityLength},
      {"MESSAGE-INTEGRITY of 32 bytes",
       raw_message(kBindingRequest, {raw(Attr::MessageIntegrity, std::vector<uint8_t>(32, 1))}),
       ParseError::BadIntegrityLength},
      {"MESSAGE-INTEGRITY-SHA256 of 12 bytes",
       raw_message(kBindingRequest, {raw(Attr::MessageIntegritySha256, std::vector<uint8_t>(12, 1))}),
       ParseError::BadIntegrityLength},
      {"MESSAGE-INTEGRITY-SHA256 of 36 bytes",
       raw_message(kBindingRequest, {raw(Attr::MessageIntegritySha256, std::vector<uint8_t>(36, 1))}),
       ParseError::BadIntegrityLength},
      {"MESSAGE-INTEGRITY-SHA256 of 18 bytes",
       raw_message(kBindingRequest, {raw(Attr::MessageIntegritySha256, std::vector<uint8_t>(18, 1))}),
       ParseError::BadIntegrityLength},
      {"FINGERPRINT of 8 bytes", raw_message(kBindingRequest, {raw(Attr::Fingerprint, std::vector<uint8_t>(8, 1))}),
       ParseError::BadFingerprintLength},
      {"FINGERPRINT of 0 bytes", raw_message(kBindingRequest, {raw(Attr::Fingerprint, {})}),
       ParseError::BadFingerprintLength},
      {"wrong FINGERPRINT value", with_bad_fingerprint(), ParseError::BadFingerprint},
  };
}

TEST(Parse, RejectsEachMalformedInputWithItsError) {
  for (const Malformed& c : malformed_cases()) {
    MessageView v;
    EXPECT_EQ(parse(Bytes{c.bytes}, v), c.expect) << c.name << ": got " << parse_error_name(parse(Bytes{c.bytes}, v));
  }
}

TEST(Parse, NeverReadsPastTheSpan) {
  // Every prefix of a valid message is rejected without touching the bytes
  // after it (ASan builds catch reads into the freshly allocated copy's end).
  auto m = raw_message(kBindingRequest, {raw(Attr::Username, {'a', 'l', 'i', 'c', 'e'}), raw(Attr::Software, {'x'}),
                                         raw(Attr::Fingerprint, {0, 0, 0, 0})});
  store_be32(m.data() + m.size() - 4, fingerprint_value(Bytes{m}.first(m.size() - 8)));
  ASSERT_EQ(parse_vec(m), ParseError::Ok);
  for (size_t n = 0; n < m.size(); ++n) {
    std::vector<uint8_t> prefix(m.begin(), m.begin() + static_cast<long>(n));
    prefix.shrink_to_fit();
    EXPECT_NE(parse_vec(prefix), ParseError::Ok) << n;
  }
}

TEST(Parse, MiSha256LengthsThatAreAllowed) {
  for (size_t len : {16u, 20u, 24u, 28u, 32u}) {
    auto m = raw_message(kBindingRequest, {raw(Attr::MessageIntegritySha256, std::vector<uint8_t>(len, 7))});
    MessageView v;
    ASSERT_EQ(parse(Bytes{m}, v), ParseError::Ok) << len;
    const auto* integrity_sha256_ref = v.integrity_sha256();
    ASSERT_NE(integrity_sha256_ref, nullptr);
    EXPECT_EQ(integrity_sha256_ref->length, len);
  }
}

TEST(Parse, IgnoresAttributesAfterIntegrity) {
  const std::vector<uint8_t> mi20(20, 0x11), mi32(32, 0x22);
  auto m = raw_message(kBindingRequest, {raw(Attr::Username, {'u'}), raw(Attr::MessageIntegrity, mi20),
                                         raw(Attr::Software, {'s'}), raw(0x7FFF, {1}),  // unknown, required
                                         raw(Attr::MessageIntegritySha256, mi32), raw(Attr::Priority, {0, 0, 0, 1}),
                                         raw(Attr::Fingerprint, {0, 0, 0, 0})});
  store_be32(m.data() + m.size() - 4, fingerprint_value(Bytes{m}.first(m.size() - 8)));
  MessageView v;
  ASSERT_EQ(parse(Bytes{m}, v), ParseError::Ok);
  ASSERT_EQ(v.attributes().size(), 4u);
  EXPECT_EQ(v.attributes()[0].type, static_cast<uint16_t>(Attr::Username));
  EXPECT_EQ(v.attributes()[1].type, static_cast<uint16_t>(Attr::MessageIntegrity));
  EXPECT_EQ(v.attributes()[2].type, static_cast<uint16_t>(Attr::MessageIntegritySha256));
  EXPECT_EQ(v.attributes()[3].type, static_cast<uint16_t>(Attr::Fingerprint));
  EXPECT_EQ(v.integrity(), &v.attributes()[1]);
  EXPECT_EQ(v.integrity_sha256(), &v.attributes()[2]);
  EXPECT_EQ(v.fingerprint(), &v.attributes()[3]);
  EXPECT_FALSE(v.has(Attr::Software));
  EXPECT_FALSE(v.has(Attr::Priority));
  uint16_t unknown[4];
  EXPECT_EQ(v.unknown_required(unknown), 0u);  // 0x7FFF came after MI: ignored
}

TEST(Parse, IgnoredAttributesDoNotCountTowardsTheLimit) {
  std::vector<uint8_t> m = raw_message(kBindingRequest, {});
  for (size_t i = 0; i < MessageView::kMaxAttributes - 1; ++i) m.insert(m.end(), {0x80, 0x22, 0, 0});
  m.insert(m.end(), {0x00, 0x08, 0x00, 0x14});
  m.resize(m.size() + 20, 0x33);
  for (int i = 0; i < 30; ++i) m.insert(m.end(), {0x80, 0x22, 0, 0});  // after MI
  store_be16(m.data() + 2, static_cast<uint16_t>(m.size() - 20));
  MessageView v;
  ASSERT_EQ(parse(Bytes{m}, v), ParseError::Ok);
  EXPECT_EQ(v.attributes().size(), MessageView::kMaxAttributes);
  EXPECT_NE(v.integrity(), nullptr);
}

// RFC 8489 §14.5/§14.6: what follows an integrity attribute (other than
// -SHA256 after MESSAGE-INTEGRITY, and FINGERPRINT) is ignored, not an error.
// Before, these three messages were rejected and dropped without an answer.
TEST(Parse, SecondMessageIntegrityIsIgnored) {
  const std::vector<uint8_t> first(20, 0x11), second(20, 0x22);
  auto m = raw_message(kBindingRequest, {raw(Attr::Username, {'u'}), raw(Attr::MessageIntegrity, first),
                                         raw(Attr::MessageIntegrity, second)});
  MessageView v;
  ASSERT_EQ(parse(Bytes{m}, v), ParseError::Ok);
  ASSERT_NE(v.integrity(), nullptr);
  EXPECT_EQ(v.value(*v.integrity())[0], 0x11);  // the first one counts
  EXPECT_EQ(v.attributes().size(), 2u);
  EXPECT_EQ(v.ignored(), 1u);
}

TEST(Parse, MessageIntegrityAfterSha256IsIgnored) {
  auto m = raw_message(kBindingRequest, {raw(Attr::MessageIntegritySha256, std::vector<uint8_t>(32, 2)),
                                         raw(Attr::MessageIntegrity, std::vector<uint8_t>(20, 1))});
  MessageView v;
  ASSERT_EQ(parse(Bytes{m}, v), ParseError::Ok);
  EXPECT_NE(v.integrity_sha256(), nullptr);
  EXPECT_EQ(v.integrity(), nullptr);
  EXPECT_EQ(v.ignored(), 1u);
}

TEST(Parse, SecondMessageIntegritySha256IsIgnored) {
  auto m = raw_message(kBindingRequest, {raw(Attr::MessageIntegritySha256, std::vector<uint8_t>(16, 1)),
                                         raw(Attr::MessageIntegritySha256, std::vector<uint8_t>(32, 2)),
                                         raw(Attr::MessageIntegritySha256, std::vector<uint8_t>(3, 2))});
  MessageView v;
  ASSERT_EQ(parse(Bytes{m}, v), ParseError::Ok);
  ASSERT_NE(v.integrity_sha256(), nullptr);
  EXPECT_EQ(v.integrity_sha256()->length, 16u);
  EXPECT_EQ(v.ignored(), 2u);  // lengths of ignored attributes are not checked
}

TEST(Parse, TooManyAttributesLeavesTheHeaderReadable) {
  auto m = too_many_attributes();
  MessageView v;
  ASSERT_EQ(parse(Bytes{m}, v), ParseError::TooManyAttributes);
  EXPECT_EQ(v.method(), Method::Binding);
  EXPECT_EQ(v.message_class(), Class::Request);
  EXPECT_EQ(v.transaction_id().size(), kTransactionIdSize);
  EXPECT_TRUE(v.attributes().empty());
  EXPECT_EQ(v.integrity(), nullptr);
  EXPECT_EQ(v.fingerprint(), nullptr);
}

TEST(Parse, MiSha256AfterMiIsAllowed) {
  auto m = raw_message(kBindingRequest, {raw(Attr::MessageIntegrity, std::vector<uint8_t>(20, 1)),
                                         raw(Attr::MessageIntegritySha256, std::vector<uint8_t>(32, 2))});
  MessageView v;
  ASSERT_EQ(parse(Bytes{m}, v), ParseError::Ok);
  EXPECT_NE(v.integrity(), nullptr);
  EXPECT_NE(v.integrity_sha256(), nullptr);
}

TEST(Parse, ReusingAViewResetsIt) {
  MessageView v;
  auto with_mi = raw_message(kBindingRequest, {raw(Attr::MessageIntegrity, std::vector<uint8_t>(20, 1))});
  ASSERT_EQ(parse(Bytes{with_mi}, v), ParseError::Ok);
  const auto* integrity_ref = v.integrity();
  ASSERT_NE(integrity_ref, nullptr);
  auto plain = raw_message(kBindingRequest, {raw(Attr::Software, {'s'})});
  ASSERT_EQ(parse(Bytes{plain}, v), ParseError::Ok);
  EXPECT_EQ(v.integrity(), nullptr);
  EXPECT_EQ(v.attributes().size(), 1u);
}

// Regression: values past offset 65535 (a message may be 20 + 65532 bytes
// over TCP). The offset used to be stored in 16 bits and wrapped, which sent
// the FINGERPRINT check to the wrong bytes.
TEST(Parse, AttributeOffsetsPast64KiB) {
  std::vector<uint8_t> buf(70000);
  const auto tid = test::txid();
  MessageBuilder b(MutableBytes{buf}, Method::Send, Class::Indication, Bytes{tid});
  std::vector<uint8_t> payload(65508, 0x5A);
  b.add(Attr::Data, Bytes{payload});
  b.add_fingerprint();
  Bytes msg = b.finish();
  ASSERT_EQ(msg.size(), 20u + 65520u);
  MessageView v;
  ASSERT_EQ(parse(msg, v), ParseError::Ok);
  const auto* fingerprint_ref = v.fingerprint();
  ASSERT_NE(fingerprint_ref, nullptr);
  EXPECT_EQ(fingerprint_ref->offset, 65536u);
  EXPECT_EQ(v.value(*v.find(Attr::Data)).size(), 65508u);
  // And a corrupted payload byte is still caught by the fingerprint.
  buf[100] ^= 1;
  EXPECT_EQ(parse(msg, v), ParseError::BadFingerprint);
}

// --- unknown comprehension-required attributes ------------------------------

TEST(UnknownRequired, ReportsOnlyUnknownRequiredOnce) {
  auto m = raw_message(kBindingRequest, {raw(0x0003, {0, 0, 0, 0}), raw(Attr::Username, {'u'}), raw(0x7FFF, {}),
                                         raw(0x0003, {0, 0, 0, 0}), raw(0xC001, {1}),  // optional: never reported
                                         raw(Attr::Lifetime, {0, 0, 0, 1})});
  MessageView v;
  ASSERT_EQ(parse(Bytes{m}, v), ParseError::Ok);
  uint16_t out[8] = {};
  ASSERT_EQ(v.unknown_required(out), 2u);
  EXPECT_EQ(out[0], 0x0003);
  EXPECT_EQ(out[1], 0x7FFF);
  // A smaller output keeps the first ones.
  uint16_t one[1] = {};
  EXPECT_EQ(v.unknown_required(one), 1u);
  EXPECT_EQ(one[0], 0x0003);
}

TEST(UnknownRequired, NoneForKnownOrOptionalAttributes) {
  auto m = raw_message(kBindingRequest, {raw(Attr::Username, {'u'}), raw(0x8FFF, {1, 2}),
                                         raw(Attr::XorPeerAddress, {0, 1, 0, 0, 0, 0, 0, 0})});
  MessageView v;
  ASSERT_EQ(parse(Bytes{m}, v), ParseError::Ok);
  uint16_t out[4];
  EXPECT_EQ(v.unknown_required(out), 0u);
}

// --- demultiplexing ----------------------------------------------------------

TEST(LooksLikeStun, ChecksBitsCookieAndLength) {
  auto ok = raw_message(kBindingRequest, {raw(Attr::Username, {'u'})});
  EXPECT_TRUE(looks_like_stun(Bytes{ok}));
  // An RTCP sender report (V=2) is not STUN.
  const std::vector<uint8_t> rtcp = {0x80, 0xc8, 0x00, 0x06, 0x00, 0x00, 0x00, 0x55, 0xce, 0xa5,
                                     0x18, 0x3a, 0x39, 0xcc, 0x7d, 0x09, 0x23, 0xed, 0x19, 0x07,
                                     0x00, 0x00, 0x01, 0x56, 0x00, 0x03, 0x73, 0x50};
  EXPECT_FALSE(looks_like_stun(Bytes{rtcp}));
  EXPECT_FALSE(looks_like_stun(Bytes{ok}.first(19)));
  EXPECT_FALSE(looks_like_stun(Bytes{header_with(0x00, 0x2112A443, 0, 0)}));
  EXPECT_FALSE(looks_like_stun(Bytes{header_with(0x00, kMagicCookie, 2, 0)}));
  EXPECT_FALSE(looks_like_stun(Bytes{header_with(0x40, kMagicCookie, 0, 0)}));
}

}  // namespace
}  // namespace turn::stun
