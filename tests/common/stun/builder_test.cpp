// SPDX-License-Identifier: Apache-2.0
// MessageBuilder: header and length bookkeeping, zeroed padding, and the
// sticky overflow flag (never a byte written past the caller's buffer).
#include "common/stun/builder.h"

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "common/crypto/integrity.h"
#include "common/stun/attributes.h"
#include "common/stun/message.h"
#include "tests/common/test_support.h"

namespace turn::stun {
namespace {

constexpr uint8_t kGuard = 0xEE;

TEST(MessageBuilder, WritesTheHeader) {
  std::vector<uint8_t> buf(64, kGuard);
  const auto tid = test::txid(0x10);
  MessageBuilder b(MutableBytes{buf}, Method::Allocate, Class::Request, Bytes{tid});
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b.size(), 20u);
  EXPECT_EQ(b.data(), buf.data());
  EXPECT_EQ(b.xor_mask(), buf.data() + 4);
  Bytes msg = b.finish();
  ASSERT_EQ(msg.size(), 20u);
  EXPECT_EQ(load_be16(msg.data()), 0x0003);
  EXPECT_EQ(load_be16(msg.data() + 2), 0);
  EXPECT_EQ(load_be32(msg.data() + 4), kMagicCookie);
  EXPECT_EQ(test::to_vector(msg.subspan(8, 12)), tid);
  EXPECT_EQ(buf[20], kGuard);  // nothing beyond the message touched
  MessageView v;
  ASSERT_EQ(parse(msg, v), ParseError::Ok);
  EXPECT_EQ(v.method(), Method::Allocate);
  EXPECT_EQ(v.message_class(), Class::Request);
}

TEST(MessageBuilder, RawTypeKeepsOnly14Bits) {
  std::vector<uint8_t> buf(20);
  const auto tid = test::txid();
  MessageBuilder b(MutableBytes{buf}, uint16_t{0xC113}, Bytes{tid});
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(load_be16(buf.data()), 0x0113);
}

TEST(MessageBuilder, RejectsABadTransactionId) {
  std::vector<uint8_t> buf(64, kGuard);
  const std::vector<uint8_t> short_tid(11, 1), long_tid(13, 1);
  for (const auto* t : {&short_tid, &long_tid}) {
    MessageBuilder b(MutableBytes{buf}, Method::Binding, Class::Request, Bytes{*t});
    EXPECT_FALSE(b.ok());
    EXPECT_TRUE(b.finish().empty());
    b.add_text(Attr::Software, "x").add_fingerprint();
    EXPECT_TRUE(b.finish().empty());
  }
  for (uint8_t c : buf) EXPECT_EQ(c, kGuard);
}

TEST(MessageBuilder, BufferSmallerThanTheHeader) {
  std::vector<uint8_t> storage(64, kGuard);
  const auto tid = test::txid();
  MessageBuilder b(MutableBytes{storage}.first(19), Method::Binding, Class::Request, Bytes{tid});
  EXPECT_FALSE(b.ok());
  b.add_xor_address(Attr::XorMappedAddress, *SocketAddress::parse("1.2.3.4:5"))
      .add_u32(Attr::Lifetime, 1)
      .add_fingerprint();
  crypto::add_integrity(b, Bytes{tid});
  EXPECT_TRUE(b.finish().empty());
  EXPECT_EQ(b.size(), 0u);
  for (uint8_t c : storage) EXPECT_EQ(c, kGuard);
}

TEST(MessageBuilder, LengthFieldFollowsEveryAttribute) {
  std::vector<uint8_t> buf(1024);
  const auto tid = test::txid();
  MessageBuilder b(MutableBytes{buf}, Method::Refresh, Class::Request, Bytes{tid});
  auto check = [&](size_t expect_size) {
    EXPECT_EQ(b.size(), expect_size);
    EXPECT_EQ(b.size() % 4, 0u);
    EXPECT_EQ(load_be16(buf.data() + 2), b.size() - 20);
  };
  b.add_text(Attr::Username, "abc");
  check(20 + 8);
  b.add_u32(Attr::Lifetime, 0);
  check(28 + 8);
  b.add_flag(Attr::DontFragment);
  check(36 + 4);
  b.add_even_port(false);
  check(40 + 8);
  b.add_text(Attr::Realm, "example.org");
  check(48 + 16);
  b.add_xor_address(Attr::XorPeerAddress, *SocketAddress::parse("[2001:db8::1]:9"));
  check(64 + 24);
  b.add_fingerprint();
  check(88 + 8);
  EXPECT_TRUE(b.ok());
}

TEST(MessageBuilder, PaddingIsZeroed) {
  std::vector<uint8_t> buf(256, 0xAA);
  const auto tid = test::txid();
  MessageBuilder b(MutableBytes{buf}, Method::Binding, Class::Request, Bytes{tid});
  b.add_text(Attr::Software, "abcde");  // value at 24..28, padding 29..31
  const uint16_t unknown[] = {0x0003};  // value at 36..37, padding 38..39
  b.add_unknown_attributes(unknown);
  b.add_even_port(true);  // value at 44, padding 45..47
  const uint8_t one[1] = {0xFF};
  b.add(Attr::Data, Bytes{one});  // value at 52, padding 53..55
  ASSERT_TRUE(b.ok());
  ASSERT_EQ(b.size(), 56u);
  for (size_t i : {29u, 30u, 31u, 38u, 39u, 45u, 46u, 47u, 53u, 54u, 55u}) EXPECT_EQ(buf[i], 0) << i;
  EXPECT_EQ(buf[28], 'e');
  EXPECT_EQ(buf[44], 0x80);
  EXPECT_EQ(buf[52], 0xFF);
  EXPECT_EQ(buf[56], 0xAA);  // and nothing after the message
}

TEST(MessageBuilder, ReserveReturnsTheValueSlot) {
  std::vector<uint8_t> buf(64, 0xAA);
  const auto tid = test::txid();
  MessageBuilder b(MutableBytes{buf}, Method::Binding, Class::Request, Bytes{tid});
  uint8_t* p = b.reserve(0x8050, 3);
  ASSERT_EQ(p, buf.data() + 24);
  EXPECT_EQ(load_be16(buf.data() + 20), 0x8050);
  EXPECT_EQ(load_be16(buf.data() + 22), 3);
  EXPECT_EQ(buf[27], 0);  // padding already zeroed
  EXPECT_EQ(b.size(), 28u);
}

// The steps of a typical response, each one attribute.
using Step = std::function<void(MessageBuilder&)>;
std::vector<Step> response_steps() {
  static const uint8_t key[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  static const uint16_t unknown[] = {0x0003, 0x0004, 0x0005};
  static const PasswordAlgorithm algs[] = {PasswordAlgorithm::Sha256, PasswordAlgorithm::Md5};
  return {
      [](MessageBuilder& b) {
        b.add_xor_address(Attr::XorRelayedAddress, *SocketAddress::parse("[2001:db8::5]:50000"));
      },
      [](MessageBuilder& b) { b.add_xor_address(Attr::XorMappedAddress, *SocketAddress::parse("198.51.100.1:4000")); },
      [](MessageBuilder& b) { b.add_u32(Attr::Lifetime, 600); },
      [](MessageBuilder& b) { b.add_error_code(ErrorCode::UnknownAttribute); },
      [](MessageBuilder& b) { b.add_unknown_attributes(unknown); },
      [](MessageBuilder& b) { b.add_password_algorithms(algs); },
      [](MessageBuilder& b) { b.add_reservation_token(7); },
      [](MessageBuilder& b) { b.add_address(Attr::AlternateServer, *SocketAddress::parse("192.0.2.9:3478")); },
      [](MessageBuilder& b) { b.add_text(Attr::Software, "dpturn 0.1"); },
      [](MessageBuilder& b) { b.add_flag(Attr::DontFragment); },
      [](MessageBuilder& b) { crypto::add_integrity(b, Bytes{key}); },
      [](MessageBuilder& b) { crypto::add_integrity_sha256(b, Bytes{key}); },
      [](MessageBuilder& b) { b.add_fingerprint(); },
  };
}

TEST(MessageBuilder, StickyOverflowAtEveryStep) {
  const auto steps = response_steps();
  const auto tid = test::txid(0x77);

  // Reference: a large buffer, recording the size after each step.
  std::vector<uint8_t> ref(2048);
  std::vector<size_t> size_after;
  MessageBuilder rb(MutableBytes{ref}, Method::Allocate, Class::ErrorResponse, Bytes{tid});
  for (const Step& s : steps) {
    s(rb);
    size_after.push_back(rb.size());
  }
  ASSERT_TRUE(rb.ok());
  const std::vector<uint8_t> full = test::to_vector(rb.finish());
  MessageView v;
  ASSERT_EQ(parse(Bytes{full}, v), ParseError::Ok);

  // An exact fit works and produces the same bytes.
  {
    std::vector<uint8_t> exact(full.size());
    MessageBuilder b(MutableBytes{exact}, Method::Allocate, Class::ErrorResponse, Bytes{tid});
    for (const Step& s : steps) s(b);
    EXPECT_TRUE(b.ok());
    EXPECT_EQ(test::to_vector(b.finish()), full);
  }

  // For each step, a buffer one byte short of what that step needs: it and
  // every later step (even ones that would fit) are no-ops, finish() is
  // empty, and the guard bytes after the buffer are never written.
  for (size_t i = 0; i < steps.size(); ++i) {
    SCOPED_TRACE("step " + std::to_string(i));
    const size_t cap = size_after[i] - 1;
    std::vector<uint8_t> storage(cap + 64, kGuard);
    MessageBuilder b(MutableBytes{storage}.first(cap), Method::Allocate, Class::ErrorResponse, Bytes{tid});
    const size_t before = i == 0 ? 20 : size_after[i - 1];
    for (size_t j = 0; j < steps.size(); ++j) {
      steps[j](b);
      if (j < i) {
        EXPECT_TRUE(b.ok());
      } else {
        EXPECT_FALSE(b.ok());
        EXPECT_EQ(b.size(), before);
      }
    }
    EXPECT_TRUE(b.finish().empty());
    for (size_t k = cap; k < storage.size(); ++k) ASSERT_EQ(storage[k], kGuard) << k;
    // What was written before the overflow is the same as the reference.
    EXPECT_EQ(std::vector<uint8_t>(storage.begin() + 4, storage.begin() + static_cast<long>(before)),
              std::vector<uint8_t>(ref.begin() + 4, ref.begin() + static_cast<long>(before)));
  }
}

TEST(MessageBuilder, ValueLongerThan16BitsOverflows) {
  std::vector<uint8_t> buf(70000 + 64);
  std::vector<uint8_t> big(0x10000, 1);
  const auto tid = test::txid();
  MessageBuilder b(MutableBytes{buf}, Method::Send, Class::Indication, Bytes{tid});
  b.add(Attr::Data, Bytes{big});
  EXPECT_FALSE(b.ok());
  EXPECT_EQ(b.size(), 20u);
}

TEST(MessageBuilder, MessageLengthIsBoundedBy16Bits) {
  std::vector<uint8_t> buf(70000 + 64);
  const auto tid = test::txid();
  MessageBuilder b(MutableBytes{buf}, Method::Send, Class::Indication, Bytes{tid});
  std::vector<uint8_t> payload(65000, 1);
  b.add(Attr::Data, Bytes{payload});
  ASSERT_TRUE(b.ok());
  // Body is now 65004; 65532 is the largest 4-aligned length: 528 more bytes
  // fit (an attribute of 524), 529 do not.
  std::vector<uint8_t> fits(524, 2);
  b.add(Attr::Data, Bytes{fits});
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(load_be16(buf.data() + 2), 65532);
  b.add_flag(Attr::DontFragment);
  EXPECT_FALSE(b.ok());
  EXPECT_TRUE(b.finish().empty());
}

// Regression: a list longer than a 16-bit length can describe used to be
// truncated in the header while the loop wrote every element, past the
// reserved space and past the buffer.
TEST(MessageBuilder, OverlongListsOverflowInsteadOfWritingPastTheBuffer) {
  const auto tid = test::txid();
  {
    std::vector<uint16_t> types(40000, 0x0003);  // 80000 bytes: length would wrap to 14464
    std::vector<uint8_t> storage(20 + 14464 + 4 + 64, kGuard);
    MessageBuilder b(MutableBytes{storage}.first(20 + 14464 + 4), Method::Binding, Class::ErrorResponse, Bytes{tid});
    b.add_unknown_attributes(types);
    EXPECT_FALSE(b.ok());
    EXPECT_EQ(b.size(), 20u);
    for (size_t k = 20; k < storage.size(); ++k) ASSERT_EQ(storage[k], kGuard) << k;
  }
  {
    std::vector<PasswordAlgorithm> algs(20000, PasswordAlgorithm::Md5);  // 80000 bytes
    std::vector<uint8_t> storage(20 + 14464 + 4 + 64, kGuard);
    MessageBuilder b(MutableBytes{storage}.first(20 + 14464 + 4), Method::Allocate, Class::ErrorResponse, Bytes{tid});
    b.add_password_algorithms(algs);
    EXPECT_FALSE(b.ok());
    for (size_t k = 20; k < storage.size(); ++k) ASSERT_EQ(storage[k], kGuard) << k;
  }
  {
    // The longest list that does fit a 16-bit length still works.
    std::vector<uint16_t> types(0xFFFC / 2 - 2, 0x0003);
    std::vector<uint8_t> buf(70000);
    MessageBuilder b(MutableBytes{buf}, Method::Binding, Class::ErrorResponse, Bytes{tid});
    b.add_unknown_attributes(types);
    EXPECT_TRUE(b.ok());
  }
}

TEST(MessageBuilder, OverlongReasonsAreTruncatedToTheLimit) {
  std::vector<uint8_t> buf(2048);
  const auto tid = test::txid();
  MessageBuilder b(MutableBytes{buf}, Method::Allocate, Class::ErrorResponse, Bytes{tid});
  const std::string reason(kMaxReasonBytes + 100, 'r');
  b.add_error_code(400, reason).add_address_error_code(Family::V6, 440, reason);
  MessageView v;
  ASSERT_EQ(parse(b.finish(), v), ParseError::Ok);
  auto e = read_error_code(v.value(*v.find(Attr::ErrorCode)));
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->reason.size(), kMaxReasonBytes);
  auto ae = read_address_error_code(v.value(*v.find(Attr::AddressErrorCode)));
  ASSERT_TRUE(ae.ok());
  EXPECT_EQ(ae->reason.size(), kMaxReasonBytes);
}

}  // namespace
}  // namespace turn::stun
