// SPDX-License-Identifier: Apache-2.0
// CRC-32 (slicing-by-4) against its check values and a bitwise reference,
// and FINGERPRINT written by the builder and verified by the parser.
#include "common/stun/fingerprint.h"

#include <gtest/gtest.h>

#include <random>
#include <string_view>
#include <vector>

#include "common/stun/builder.h"
#include "common/stun/message.h"
#include "tests/common/test_support.h"

namespace turn::stun {
namespace {

using test::as_bytes;

// The textbook bit-at-a-time CRC-32 (reflected, polynomial 0xEDB88320).
uint32_t crc32_bitwise(Bytes data) {
  uint32_t c = 0xFFFFFFFFu;
  for (uint8_t byte : data) {
    c ^= byte;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
  }
  return ~c;
}

TEST(Crc32, CheckValues) {
  EXPECT_EQ(crc32(Bytes{}), 0u);
  EXPECT_EQ(crc32(as_bytes("123456789")), 0xCBF43926u);  // the CRC-32/ISO-HDLC check value
  EXPECT_EQ(crc32(as_bytes("The quick brown fox jumps over the lazy dog")), 0x414FA339u);
  EXPECT_EQ(crc32(as_bytes("a")), 0xE8B7BE43u);
}

TEST(Crc32, MatchesBitwiseReferenceAtEveryLengthAndAlignment) {
  std::mt19937 rng(12345);
  std::vector<uint8_t> data(1300 + 3);
  for (auto& b : data) b = static_cast<uint8_t>(rng());
  for (size_t offset = 0; offset < 4; ++offset) {
    for (size_t len = 0; len <= 300; ++len) {
      Bytes s = Bytes{data}.subspan(offset, len);
      ASSERT_EQ(crc32(s), crc32_bitwise(s)) << "offset " << offset << " len " << len;
    }
    Bytes big = Bytes{data}.subspan(offset, 1300);
    EXPECT_EQ(crc32(big), crc32_bitwise(big));
  }
}

TEST(Fingerprint, ValueIsCrcXorStun) {
  auto d = as_bytes("STUN");
  EXPECT_EQ(fingerprint_value(d), crc32(d) ^ 0x5354554eu);
  EXPECT_EQ(kFingerprintXor, 0x5354554eu);
}

std::vector<uint8_t> build_with_fingerprint(bool with_software = true) {
  std::vector<uint8_t> buf(256);
  const auto tid = test::txid(3);
  MessageBuilder b(MutableBytes{buf}, Method::Binding, Class::Request, Bytes{tid});
  if (with_software) b.add_text(Attr::Software, "fingerprint test");
  b.add_u32(Attr::Priority, 0x12345678);
  b.add_fingerprint();
  return test::to_vector(b.finish());
}

TEST(Fingerprint, BuilderWritesWhatTheParserVerifies) {
  auto m = build_with_fingerprint();
  ASSERT_FALSE(m.empty());
  MessageView v;
  ASSERT_EQ(parse(Bytes{m}, v), ParseError::Ok);
  const auto* fingerprint_ref = v.fingerprint();
  ASSERT_NE(fingerprint_ref, nullptr);
  EXPECT_EQ(v.fingerprint(), &v.attributes().back());
  EXPECT_EQ(fingerprint_ref->offset, m.size() - 4);
  // Covers the header (with the final length) and every byte before the
  // FINGERPRINT attribute header.
  EXPECT_EQ(load_be32(m.data() + m.size() - 4), fingerprint_value(Bytes{m}.first(m.size() - 8)));
  EXPECT_EQ(load_be16(m.data() + 2), m.size() - 20);
}

TEST(Fingerprint, HeaderOnlyMessage) {
  auto m = build_with_fingerprint(false);
  MessageView v;
  EXPECT_EQ(parse(Bytes{m}, v), ParseError::Ok);
}

TEST(Fingerprint, AnyFlippedBitInTheCoveredBytesIsCaught) {
  const auto good = build_with_fingerprint();
  size_t caught = 0;
  const size_t fp_type = good.size() - 8;
  for (size_t i = 0; i < good.size(); ++i) {
    // Flipping the FINGERPRINT's own type turns it into another attribute
    // (0x8029 ICE-CONTROLLED, 0x0028): the message is then simply
    // unfingerprinted, which is legal.
    if (i == fp_type || i == fp_type + 1) continue;
    for (uint8_t bit : {uint8_t{0x01}, uint8_t{0x80}}) {
      auto m = good;
      m[i] ^= bit;
      MessageView v;
      ParseError e = parse(Bytes{m}, v);
      // A flip in the header or an attribute header may break the framing
      // first; it must never parse Ok.
      ASSERT_NE(e, ParseError::Ok) << "byte " << i;
      caught += e == ParseError::BadFingerprint;
    }
  }
  // Flips inside values, the transaction id and the FINGERPRINT itself are
  // reported as BadFingerprint.
  EXPECT_GT(caught, good.size());
}

}  // namespace
}  // namespace turn::stun
