// SPDX-License-Identifier: Apache-2.0
// The RFC 5769 STUN test vectors (§2.1-§2.4) and RFC 8489 Appendix B.1 (with
// errata 6268), read from tests/data: parsed, every attribute checked,
// integrity verified, and re-encoded with MessageBuilder.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "common/crypto/integrity.h"
#include "common/stun/attributes.h"
#include "common/stun/builder.h"
#include "common/stun/fingerprint.h"
#include "common/stun/message.h"
#include "tests/common/test_support.h"

namespace turn::stun {
namespace {

using test::from_hex;
using test::load_hex;

constexpr std::string_view kShortTermPassword = "VOkJxbRl1RmTxUk/WvJxBt";
// U+30DE U+30C8 U+30EA U+30C3 U+30AF U+30B9 in UTF-8.
constexpr std::string_view kLongTermUsername =
    "\xe3\x83\x9e\xe3\x83\x88\xe3\x83\xaa\xe3\x83\x83\xe3\x82\xaf\xe3\x82\xb9";
constexpr std::string_view kLongTermPassword = "TheMatrIX";  // after SASLprep/OpaqueString
constexpr std::string_view kRealm = "example.org";

const std::vector<uint8_t> kTxid = from_hex("b7e7a701bc34d686fa87dfae");
const std::vector<uint8_t> kLongTermTxid = from_hex("78ad3433c6ad72c029da412e");

std::string_view text_of(const MessageView& v, Attr a) {
  const AttributeRef* r = v.find(a);
  EXPECT_NE(r, nullptr) << attribute_name(static_cast<uint16_t>(a));
  return r ? v.text(*r) : std::string_view{};
}

void expect_fingerprint_matches(const std::vector<uint8_t>& m, const MessageView& v) {
  const auto* fingerprint_ref = v.fingerprint();
  ASSERT_NE(fingerprint_ref, nullptr);
  EXPECT_EQ(load_be32(m.data() + m.size() - 4), crc32(Bytes{m}.first(m.size() - 8)) ^ 0x5354554e);
}

// --- RFC 5769 §2.1 -----------------------------------------------------------

TEST(Rfc5769, SampleRequest) {
  const auto m = load_hex("rfc5769/sample_request.hex");
  ASSERT_EQ(m.size(), 108u);
  MessageView v;
  ASSERT_EQ(parse(Bytes{m}, v), ParseError::Ok);
  EXPECT_EQ(v.method(), Method::Binding);
  EXPECT_EQ(v.message_class(), Class::Request);
  EXPECT_EQ(test::to_vector(v.transaction_id()), kTxid);
  ASSERT_EQ(v.attributes().size(), 6u);
  EXPECT_EQ(text_of(v, Attr::Software), "STUN test client");
  EXPECT_EQ(text_of(v, Attr::Username), "evtj:h6vY");
  ASSERT_TRUE(v.has(Attr::Priority));
  EXPECT_EQ(*read_u32(v.value(*v.find(Attr::Priority))), 0x6e0001ffu);
  ASSERT_TRUE(v.has(Attr::IceControlled));
  EXPECT_EQ(test::to_vector(v.value(*v.find(Attr::IceControlled))), from_hex("932ff9b151263b36"));
  uint16_t unknown[4];
  EXPECT_EQ(v.unknown_required(unknown), 0u);

  crypto::Key key = crypto::short_term_key(kShortTermPassword);
  EXPECT_TRUE(crypto::check_integrity(v, key.view()));
  EXPECT_FALSE(crypto::check_integrity(v, crypto::short_term_key("VOkJxbRl1RmTxUk/WvJxBT").view()));
  expect_fingerprint_matches(m, v);
}

TEST(Rfc5769, SampleRequestReencodesExactly) {
  const auto want = load_hex("rfc5769/sample_request.hex");
  std::vector<uint8_t> buf(256);
  MessageBuilder b(MutableBytes{buf}, Method::Binding, Class::Request, Bytes{kTxid});
  const auto tie_breaker = from_hex("932ff9b151263b36");
  b.add_text(Attr::Software, "STUN test client")
      .add_u32(Attr::Priority, 0x6e0001ff)
      .add(Attr::IceControlled, Bytes{tie_breaker});
  // The RFC pads USERNAME with 0x20 (any padding is legal, §14); our builder
  // writes zeros, so lay this one attribute out by hand to match byte for byte.
  uint8_t* user = b.reserve(static_cast<uint16_t>(Attr::Username), 9);
  ASSERT_NE(user, nullptr);
  std::memcpy(user, "evtj:h6vY", 9);
  std::memset(user + 9, 0x20, 3);
  crypto::add_integrity(b, crypto::short_term_key(kShortTermPassword).view());
  b.add_fingerprint();
  EXPECT_EQ(test::to_vector(b.finish()), want);
}

TEST(Rfc5769, SampleRequestWithZeroPaddingMatchesWebrtc) {
  // Same message with the builder's zero padding: the MI differs from the
  // RFC's, and equals the one libwebrtc computes for it (kCalculatedHmac1 in
  // webrtc's stun_unittest.cc), an independent implementation.
  std::vector<uint8_t> buf(256);
  MessageBuilder b(MutableBytes{buf}, Method::Binding, Class::Request, Bytes{kTxid});
  const auto tie_breaker = from_hex("932ff9b151263b36");
  b.add_text(Attr::Software, "STUN test client")
      .add_u32(Attr::Priority, 0x6e0001ff)
      .add(Attr::IceControlled, Bytes{tie_breaker})
      .add_text(Attr::Username, "evtj:h6vY");
  crypto::add_integrity(b, crypto::short_term_key(kShortTermPassword).view());
  Bytes msg = b.finish();
  ASSERT_EQ(msg.size(), 100u);
  EXPECT_EQ(test::to_vector(msg.last(20)), from_hex("7907c2d2edbfea480e4c76d82962d5c3742af9e3"));
}

// --- RFC 5769 §2.2 / §2.3 ----------------------------------------------------

struct ResponseCase {
  const char* file;
  const char* address;
  size_t size;
};

const ResponseCase kResponses[] = {
    {"rfc5769/sample_ipv4_response.hex", "192.0.2.1:32853", 80},
    {"rfc5769/sample_ipv6_response.hex", "[2001:db8:1234:5678:11:2233:4455:6677]:32853", 92},
};

TEST(Rfc5769, SampleResponses) {
  for (const ResponseCase& c : kResponses) {
    SCOPED_TRACE(c.file);
    const auto m = load_hex(c.file);
    ASSERT_EQ(m.size(), c.size);
    MessageView v;
    ASSERT_EQ(parse(Bytes{m}, v), ParseError::Ok);
    EXPECT_EQ(v.method(), Method::Binding);
    EXPECT_EQ(v.message_class(), Class::SuccessResponse);
    EXPECT_EQ(test::to_vector(v.transaction_id()), kTxid);
    ASSERT_EQ(v.attributes().size(), 4u);
    EXPECT_EQ(text_of(v, Attr::Software), "test vector");
    const AttributeRef* xma = v.find(Attr::XorMappedAddress);
    ASSERT_NE(xma, nullptr);
    auto addr = read_xor_address(v.value(*xma), v.xor_mask());
    ASSERT_TRUE(addr.ok());
    EXPECT_EQ(addr->to_string(), c.address);
    EXPECT_EQ(addr->port, 32853);
    EXPECT_TRUE(crypto::check_integrity(v, crypto::short_term_key(kShortTermPassword).view()));
    EXPECT_FALSE(crypto::check_integrity(v, crypto::short_term_key("wrong").view()));
    expect_fingerprint_matches(m, v);
  }
}

TEST(Rfc5769, SampleResponsesReencode) {
  const crypto::Key key = crypto::short_term_key(kShortTermPassword);
  for (const ResponseCase& c : kResponses) {
    SCOPED_TRACE(c.file);
    const auto want = load_hex(c.file);
    const SocketAddress addr = *SocketAddress::parse(c.address);

    // (a) The plain builder: SOFTWARE "test vector" is 11 bytes, and we pad
    // it with 0x00 where RFC 5769 used 0x20. Everything else that does not
    // depend on that byte is identical; MESSAGE-INTEGRITY and FINGERPRINT
    // cover it and so differ. The result is still valid and verifies.
    std::vector<uint8_t> buf(256);
    MessageBuilder b(MutableBytes{buf}, Method::Binding, Class::SuccessResponse, Bytes{kTxid});
    b.add_text(Attr::Software, "test vector").add_xor_address(Attr::XorMappedAddress, addr);
    crypto::add_integrity(b, key.view());
    b.add_fingerprint();
    const auto got = test::to_vector(b.finish());
    ASSERT_EQ(got.size(), want.size());
    const size_t pad = 20 + 4 + 11;                // the SOFTWARE padding byte
    const size_t mi_value = want.size() - 8 - 20;  // MI value, then FINGERPRINT
    EXPECT_EQ(got[pad], 0x00);
    EXPECT_EQ(want[pad], 0x20);
    for (size_t i = 0; i < want.size(); ++i) {
      bool differs = i == pad || (i >= mi_value && i < mi_value + 20) || i >= want.size() - 4;
      if (!differs) {
        EXPECT_EQ(got[i], want[i]) << "byte " << i;
      }
    }
    MessageView v;
    ASSERT_EQ(parse(Bytes{got}, v), ParseError::Ok);
    EXPECT_TRUE(crypto::check_integrity(v, key.view()));
    EXPECT_EQ(*read_xor_address(v.value(*v.find(Attr::XorMappedAddress)), v.xor_mask()), addr);

    // (b) With the padding byte set to 0x20 by hand, MESSAGE-INTEGRITY and
    // FINGERPRINT come out exactly as in the RFC.
    std::vector<uint8_t> buf2(256);
    MessageBuilder b2(MutableBytes{buf2}, Method::Binding, Class::SuccessResponse, Bytes{kTxid});
    uint8_t* sw = b2.reserve(static_cast<uint16_t>(Attr::Software), 11);
    ASSERT_NE(sw, nullptr);
    std::memcpy(sw, "test vector", 11);
    sw[11] = 0x20;
    b2.add_xor_address(Attr::XorMappedAddress, addr);
    crypto::add_integrity(b2, key.view());
    b2.add_fingerprint();
    EXPECT_EQ(test::to_vector(b2.finish()), want);
  }
}

TEST(Rfc5769, ZeroPaddedIpv4ResponseMatchesWebrtc) {
  // kCalculatedHmac2 in libwebrtc's stun_unittest.cc: the §2.2 response's MI
  // recomputed over zero padding.
  std::vector<uint8_t> buf(256);
  MessageBuilder b(MutableBytes{buf}, Method::Binding, Class::SuccessResponse, Bytes{kTxid});
  b.add_text(Attr::Software, "test vector")
      .add_xor_address(Attr::XorMappedAddress, *SocketAddress::parse("192.0.2.1:32853"));
  crypto::add_integrity(b, crypto::short_term_key(kShortTermPassword).view());
  EXPECT_EQ(test::to_vector(b.finish().last(20)), from_hex("5d6b58bead94e07eef0dfc1282a2bd0843141028"));
}

// --- RFC 5769 §2.4 -----------------------------------------------------------

TEST(Rfc5769, SampleRequestWithLongTermAuthentication) {
  const auto m = load_hex("rfc5769/sample_request_long_term.hex");
  ASSERT_EQ(m.size(), 116u);
  MessageView v;
  ASSERT_EQ(parse(Bytes{m}, v), ParseError::Ok);
  EXPECT_EQ(v.method(), Method::Binding);
  EXPECT_EQ(v.message_class(), Class::Request);
  EXPECT_EQ(test::to_vector(v.transaction_id()), kLongTermTxid);
  ASSERT_EQ(v.attributes().size(), 4u);
  EXPECT_EQ(text_of(v, Attr::Username), kLongTermUsername);
  EXPECT_EQ(text_of(v, Attr::Nonce), "f//499k954d6OL34oL9FSTvy64sA");
  EXPECT_EQ(text_of(v, Attr::Realm), kRealm);
  EXPECT_EQ(v.fingerprint(), nullptr);

  // key = MD5(username ":" realm ":" SASLprep(password)), RFC 5389 §15.4.
  crypto::Key key = crypto::long_term_key(PasswordAlgorithm::Md5, kLongTermUsername, kRealm, kLongTermPassword);
  ASSERT_EQ(key.size, 16);
  EXPECT_EQ(test::to_vector(key.view()), from_hex("e8ca7ad59d5eb0518e312911d2dab2a9"));
  EXPECT_TRUE(crypto::check_integrity(v, key.view()));
  crypto::Key wrong = crypto::long_term_key(PasswordAlgorithm::Md5, kLongTermUsername, kRealm, "thematrix");
  EXPECT_FALSE(crypto::check_integrity(v, wrong.view()));
}

TEST(Rfc5769, LongTermRequestReencodesExactly) {
  // Here every padding in the vector is zero, so the plain builder matches.
  const auto want = load_hex("rfc5769/sample_request_long_term.hex");
  std::vector<uint8_t> buf(256);
  MessageBuilder b(MutableBytes{buf}, Method::Binding, Class::Request, Bytes{kLongTermTxid});
  b.add_text(Attr::Username, kLongTermUsername)
      .add_text(Attr::Nonce, "f//499k954d6OL34oL9FSTvy64sA")
      .add_text(Attr::Realm, kRealm);
  crypto::add_integrity(
      b, crypto::long_term_key(PasswordAlgorithm::Md5, kLongTermUsername, kRealm, kLongTermPassword).view());
  EXPECT_EQ(test::to_vector(b.finish()), want);
}

// --- RFC 8489 Appendix B.1 (errata 6268) ------------------------------------

constexpr std::string_view kB1Nonce = "obMatJos2AAACf//499k954d6OL34oL9FSTvy64sA";

TEST(Rfc8489, SampleRequestWithSha256AndUserhash) {
  const auto m = load_hex("rfc8489/sample_request_long_term_sha256.hex");
  ASSERT_EQ(m.size(), 164u);
  MessageView v;
  ASSERT_EQ(parse(Bytes{m}, v), ParseError::Ok);
  EXPECT_EQ(v.method(), Method::Binding);
  EXPECT_EQ(v.message_class(), Class::Request);
  EXPECT_EQ(test::to_vector(v.transaction_id()), kLongTermTxid);
  ASSERT_EQ(v.attributes().size(), 5u);

  const AttributeRef* uh = v.find(Attr::Userhash);
  ASSERT_NE(uh, nullptr);
  auto hash = read_userhash(v.value(*uh));
  ASSERT_TRUE(hash.ok());
  EXPECT_EQ(*hash, crypto::userhash(kLongTermUsername, kRealm));
  EXPECT_EQ(test::to_vector(Bytes{*hash}),
            from_hex("4a3cf38fef6992bda952c6780417da0f24819415569e60b205c46e41407f1704"));

  EXPECT_EQ(text_of(v, Attr::Nonce), kB1Nonce);
  EXPECT_EQ(text_of(v, Attr::Realm), kRealm);
  const AttributeRef* pa = v.find(Attr::PasswordAlgorithm);
  ASSERT_NE(pa, nullptr);
  auto alg = read_password_algorithm(v.value(*pa));
  ASSERT_TRUE(alg.ok());
  EXPECT_EQ(alg->algorithm, static_cast<uint16_t>(PasswordAlgorithm::Sha256));
  EXPECT_TRUE(alg->params.empty());

  const auto* integrity_sha256_ref = v.integrity_sha256();
  ASSERT_NE(integrity_sha256_ref, nullptr);
  EXPECT_EQ(integrity_sha256_ref->length, 32);
  EXPECT_EQ(v.integrity(), nullptr);
  crypto::Key key = crypto::long_term_key(PasswordAlgorithm::Sha256, kLongTermUsername, kRealm, kLongTermPassword);
  ASSERT_EQ(key.size, 32);
  EXPECT_TRUE(crypto::check_integrity_sha256(v, key.view()));
  EXPECT_FALSE(crypto::check_integrity(v, key.view()));  // no MESSAGE-INTEGRITY
  crypto::Key md5 = crypto::long_term_key(PasswordAlgorithm::Md5, kLongTermUsername, kRealm, kLongTermPassword);
  EXPECT_FALSE(crypto::check_integrity_sha256(v, md5.view()));
}

TEST(Rfc8489, SampleRequestReencodesExactly) {
  const auto want = load_hex("rfc8489/sample_request_long_term_sha256.hex");
  std::vector<uint8_t> buf(256);
  MessageBuilder b(MutableBytes{buf}, Method::Binding, Class::Request, Bytes{kLongTermTxid});
  const crypto::Sha256 hash = crypto::userhash(kLongTermUsername, kRealm);
  b.add(Attr::Userhash, Bytes{hash})
      .add_text(Attr::Nonce, kB1Nonce)
      .add_text(Attr::Realm, kRealm)
      .add_password_algorithm(PasswordAlgorithm::Sha256);
  crypto::add_integrity_sha256(
      b, crypto::long_term_key(PasswordAlgorithm::Sha256, kLongTermUsername, kRealm, kLongTermPassword).view());
  EXPECT_EQ(test::to_vector(b.finish()), want);
}

}  // namespace
}  // namespace turn::stun
