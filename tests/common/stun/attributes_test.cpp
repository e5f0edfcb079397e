// SPDX-License-Identifier: Apache-2.0
// Every attribute with a reader and a writer makes a round trip: written
// with MessageBuilder, parsed with stun::parse, read back with its reader.
// Then each reader's rejections (lengths, families, ranges, text limits).
#include "common/stun/attributes.h"

#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/stun/builder.h"
#include "common/stun/message.h"
#include "tests/common/test_support.h"

namespace turn::stun {
namespace {

using test::as_bytes;
using test::as_text;

// A message built by `fill`, parsed; `attr` is the first attribute.
struct Parsed {
  std::vector<uint8_t> buf = std::vector<uint8_t>(2048);
  Bytes msg;
  MessageView view;
  const AttributeRef* attr = nullptr;
  Bytes value;
};

// Held through unique_ptr because `view` and `value` point into `buf`.
std::unique_ptr<Parsed> round_trip(const std::function<void(MessageBuilder&)>& fill, Method method = Method::Allocate,
                                   Class cls = Class::Request) {
  auto p = std::make_unique<Parsed>();
  const auto tid = test::txid(0x40);
  MessageBuilder b(MutableBytes{p->buf}, method, cls, Bytes{tid});
  fill(b);
  p->msg = b.finish();
  EXPECT_TRUE(b.ok());
  EXPECT_EQ(parse(p->msg, p->view), ParseError::Ok);
  if (!p->view.attributes().empty()) {
    p->attr = &p->view.attributes()[0];
    p->value = p->view.value(*p->attr);
  }
  return p;
}

SocketAddress sa(std::string_view text) {
  auto a = SocketAddress::parse(text);
  EXPECT_TRUE(a.has_value()) << text;
  return a.value_or(SocketAddress{});
}

// --- addresses -------------------------------------------------------------

TEST(AddressRoundTrip, MappedAddressV4AndV6) {
  for (const char* text : {"192.0.2.1:32853", "[2001:db8:1234:5678:11:2233:4455:6677]:32853"}) {
    SocketAddress want = sa(text);
    auto p = round_trip([&](MessageBuilder& b) { b.add_address(Attr::MappedAddress, want); });
    ASSERT_NE(p->attr, nullptr);
    EXPECT_EQ(p->attr->type, static_cast<uint16_t>(Attr::MappedAddress));
    EXPECT_EQ(p->attr->length, want.ip.is_v4() ? 8 : 20);
    EXPECT_EQ(p->value[1], want.ip.is_v4() ? kFamilyIpv4 : kFamilyIpv6);
    auto got = read_address(p->value);
    ASSERT_TRUE(got.ok());
    EXPECT_EQ(*got, want);
    EXPECT_EQ(got->to_string(), text);
  }
}

TEST(AddressRoundTrip, AlternateServer) {
  SocketAddress want = sa("198.51.100.7:3478");
  auto p = round_trip([&](MessageBuilder& b) { b.add_address(Attr::AlternateServer, want); }, Method::Allocate,
                      Class::ErrorResponse);
  ASSERT_NE(p->view.find(Attr::AlternateServer), nullptr);
  auto got = read_address(p->value);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, want);
}

TEST(AddressRoundTrip, XorAddressesV4AndV6) {
  const Attr types[] = {Attr::XorMappedAddress, Attr::XorPeerAddress, Attr::XorRelayedAddress};
  for (Attr type : types) {
    for (const char* text : {"192.0.2.1:32853", "10.0.0.1:0", "255.255.255.255:65535",
                             "[2001:db8:1234:5678:11:2233:4455:6677]:32853", "[::1]:1"}) {
      SCOPED_TRACE(std::string(attribute_name(static_cast<uint16_t>(type))) + " " + text);
      SocketAddress want = sa(text);
      auto p = round_trip([&](MessageBuilder& b) { b.add_xor_address(type, want); });
      ASSERT_NE(p->attr, nullptr);
      EXPECT_EQ(p->attr->type, static_cast<uint16_t>(type));
      auto got = read_xor_address(p->value, p->view.xor_mask());
      ASSERT_TRUE(got.ok());
      EXPECT_EQ(*got, want);
      // The wire form really is XORed: the plain reader sees another address.
      auto plain = read_address(p->value);
      ASSERT_TRUE(plain.ok());
      EXPECT_NE(*plain, want);
    }
  }
}

TEST(AddressRoundTrip, XorEncodingMatchesRfc5769) {
  // 192.0.2.1:32853 under cookie 0x2112A442 is a1 47 e1 12 a6 43 (§2.2).
  uint8_t out[20];
  uint8_t mask[16];
  store_be32(mask, kMagicCookie);
  std::memset(mask + 4, 0xEE, 12);  // IPv4 uses only the cookie
  ASSERT_EQ(write_xor_address(out, sa("192.0.2.1:32853"), mask), 8u);
  const uint8_t want[8] = {0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43};
  EXPECT_EQ(std::memcmp(out, want, 8), 0);
  ASSERT_EQ(write_address(out, sa("192.0.2.1:32853")), 8u);
  const uint8_t plain[8] = {0x00, 0x01, 0x80, 0x55, 192, 0, 2, 1};
  EXPECT_EQ(std::memcmp(out, plain, 8), 0);
}

TEST(AddressReader, Ipv6FamilyWithAnIpv4MappedAddressReadsAsIpv4) {
  // IpAddress stores IPv4 as ::ffff:a.b.c.d, so an IPv6-family attribute
  // carrying a mapped address is that IPv4 address: peer policy sees
  // ::ffff:127.0.0.1 as 127.0.0.1 (no way around IPv4 deny ranges), and it
  // is written back as family IPv4.
  const std::vector<uint8_t> plain = {0,    2,    0x0d, 0x96,                    // family IPv6, port 3478
                                      0,    0,    0,    0,    0, 0, 0, 0, 0, 0,  // ::
                                      0xff, 0xff, 127,  0,    0, 1};             // ffff:127.0.0.1
  auto a = read_address(Bytes{plain});
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(a->ip.is_v4());
  EXPECT_EQ(a->to_string(), "127.0.0.1:3478");
  uint8_t mask[16] = {0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  std::vector<uint8_t> xored = plain;
  for (size_t i = 0; i < 16; ++i) xored[4 + i] ^= mask[i];
  xored[2] ^= 0x21;
  xored[3] ^= 0x12;
  auto x = read_xor_address(Bytes{xored}, mask);
  ASSERT_TRUE(x.ok());
  EXPECT_EQ(*x, *a);
  uint8_t out[20];
  EXPECT_EQ(write_address(out, *a), 8u);
  EXPECT_EQ(out[1], kFamilyIpv4);
}

TEST(AddressReader, Rejections) {
  uint8_t mask[16] = {0x21, 0x12, 0xa4, 0x42};
  const std::vector<uint8_t> short3 = {0, 1, 0};
  const std::vector<uint8_t> v4_too_long(20, 0), v6_too_short = {0, 2, 0, 0, 1, 2, 3, 4};
  std::vector<uint8_t> v4_with_20 = v4_too_long;
  v4_with_20[1] = kFamilyIpv4;
  std::vector<uint8_t> v4_with_9 = {0, 1, 0, 0, 1, 2, 3, 4, 5};
  const std::vector<uint8_t> family0 = {0, 0, 0, 0, 1, 2, 3, 4};
  const std::vector<uint8_t> family3 = {0, 3, 0, 0, 1, 2, 3, 4};
  using Reader = std::function<Result<SocketAddress, AttrError>(Bytes)>;
  const Reader readers[] = {[](Bytes v) { return read_address(v); },
                            [&](Bytes v) { return read_xor_address(v, mask); }};
  for (const Reader& read : readers) {
    EXPECT_EQ(read(Bytes{short3}).error(), AttrError::BadLength);
    EXPECT_EQ(read(Bytes{}).error(), AttrError::BadLength);
    EXPECT_EQ(read(Bytes{v4_with_20}).error(), AttrError::BadLength);
    EXPECT_EQ(read(Bytes{v4_with_9}).error(), AttrError::BadLength);
    EXPECT_EQ(read(Bytes{v6_too_short}).error(), AttrError::BadLength);
    EXPECT_EQ(read(Bytes{family0}).error(), AttrError::BadFamily);
    EXPECT_EQ(read(Bytes{family3}).error(), AttrError::BadFamily);
    EXPECT_FALSE(read(Bytes{family3}).ok());
  }
}

// --- text ------------------------------------------------------------------

struct TextCase {
  Attr type;
  size_t limit;
};

TEST(TextRoundTrip, UsernameRealmNonceSoftwareAlternateDomain) {
  const TextCase cases[] = {{Attr::Username, kMaxUsernameBytes},
                            {Attr::Realm, kMaxRealmBytes},
                            {Attr::Nonce, kMaxNonceBytes},
                            {Attr::Software, kMaxSoftwareBytes},
                            {Attr::AlternateDomain, kMaxRealmBytes}};
  for (const TextCase& c : cases) {
    SCOPED_TRACE(attribute_name(static_cast<uint16_t>(c.type)));
    for (size_t len : {size_t{0}, size_t{1}, size_t{5}, c.limit}) {
      std::string text(len, 'x');
      if (len > 0) text[0] = 'A';
      auto p = round_trip([&](MessageBuilder& b) { b.add_text(c.type, text); });
      ASSERT_NE(p->attr, nullptr);
      EXPECT_EQ(p->attr->type, static_cast<uint16_t>(c.type));
      auto got = read_text(p->value, c.limit);
      ASSERT_TRUE(got.ok());
      EXPECT_EQ(*got, text);
      EXPECT_EQ(p->view.text(*p->attr), text);
    }
    std::string over(c.limit + 1, 'x');
    EXPECT_EQ(read_text(as_bytes(over), c.limit).error(), AttrError::TooLong);
  }
}

TEST(TextRoundTrip, Utf8IsKeptAsBytes) {
  const std::string name = "\xe3\x83\x9e\xe3\x83\x88\xe3\x83\xaa";  // マトリ
  auto p = round_trip([&](MessageBuilder& b) { b.add_text(Attr::Username, name); });
  auto got = read_text(p->value, kMaxUsernameBytes);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, name);
  EXPECT_EQ(p->attr->length, 9);
}

// --- USERHASH --------------------------------------------------------------

TEST(UserhashRoundTrip, ThirtyTwoBytes) {
  std::array<uint8_t, 32> h{};
  for (size_t i = 0; i < h.size(); ++i) h[i] = static_cast<uint8_t>(i * 7 + 1);
  auto p = round_trip([&](MessageBuilder& b) { b.add(Attr::Userhash, Bytes{h}); });
  EXPECT_EQ(p->attr->type, static_cast<uint16_t>(Attr::Userhash));
  auto got = read_userhash(p->value);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, h);
  EXPECT_EQ(read_userhash(p->value.first(31)).error(), AttrError::BadLength);
  std::vector<uint8_t> h33(33, 1);
  EXPECT_EQ(read_userhash(Bytes{h33}).error(), AttrError::BadLength);
}

// --- ERROR-CODE --------------------------------------------------------------

TEST(ErrorCodeRoundTrip, CodesAndReasons) {
  struct Case {
    uint16_t code;
    std::string reason;
  };
  const Case cases[] = {{300, "Try Alternate"}, {401, "Unauthorized"},          {420, ""},
                        {438, "Stale Nonce"},   {508, "Insufficient Capacity"}, {699, "x"}};
  for (const Case& c : cases) {
    auto p = round_trip([&](MessageBuilder& b) { b.add_error_code(c.code, c.reason); }, Method::Allocate,
                        Class::ErrorResponse);
    EXPECT_EQ(p->attr->type, static_cast<uint16_t>(Attr::ErrorCode));
    // Class in the low 3 bits of byte 2, number in byte 3 (RFC 8489 §14.8).
    EXPECT_EQ(p->value[2], c.code / 100);
    EXPECT_EQ(p->value[3], c.code % 100);
    auto got = read_error_code(p->value);
    ASSERT_TRUE(got.ok()) << c.code;
    EXPECT_EQ(got->code, c.code);
    EXPECT_EQ(got->reason, c.reason);
  }
}

TEST(ErrorCodeRoundTrip, EnumUsesItsReasonPhrase) {
  auto p = round_trip([](MessageBuilder& b) { b.add_error_code(ErrorCode::AllocationMismatch); }, Method::Refresh,
                      Class::ErrorResponse);
  auto got = read_error_code(p->value);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->code, 437);
  EXPECT_EQ(got->reason, "Allocation Mismatch");
}

TEST(ErrorCodeReader, Rejections) {
  EXPECT_EQ(read_error_code(Bytes{}).error(), AttrError::BadLength);
  const std::vector<uint8_t> three = {0, 0, 4};
  EXPECT_EQ(read_error_code(Bytes{three}).error(), AttrError::BadLength);
  for (uint8_t cls : {0, 1, 2, 7}) {
    const std::vector<uint8_t> v = {0, 0, cls, 0};
    EXPECT_EQ(read_error_code(Bytes{v}).error(), AttrError::BadValue) << int{cls};
  }
  for (uint8_t cls : {3, 4, 5, 6}) {
    const std::vector<uint8_t> v = {0, 0, cls, 99};
    auto got = read_error_code(Bytes{v});
    ASSERT_TRUE(got.ok()) << int{cls};
    EXPECT_EQ(got->code, cls * 100 + 99);
  }
  const std::vector<uint8_t> number100 = {0, 0, 4, 100};
  EXPECT_EQ(read_error_code(Bytes{number100}).error(), AttrError::BadValue);
  const std::vector<uint8_t> number255 = {0, 0, 4, 255};
  EXPECT_EQ(read_error_code(Bytes{number255}).error(), AttrError::BadValue);
  // The 21 reserved bits above the class are ignored on receipt.
  const std::vector<uint8_t> reserved = {0xFF, 0xFF, 0xF8 | 4, 1};
  ASSERT_TRUE(read_error_code(Bytes{reserved}).ok());
  EXPECT_EQ(read_error_code(Bytes{reserved})->code, 401);
  std::vector<uint8_t> longest = {0, 0, 4, 1};
  longest.resize(4 + kMaxReasonBytes, 'r');
  EXPECT_TRUE(read_error_code(Bytes{longest}).ok());
  longest.push_back('r');
  EXPECT_EQ(read_error_code(Bytes{longest}).error(), AttrError::TooLong);
}

// --- 32-bit and small fixed attributes ---------------------------------------

TEST(U32RoundTrip, LifetimeAndPriority) {
  for (uint32_t v : {0u, 600u, 0xFFFFFFFFu}) {
    auto p = round_trip([&](MessageBuilder& b) { b.add_u32(Attr::Lifetime, v); });
    EXPECT_EQ(p->attr->type, static_cast<uint16_t>(Attr::Lifetime));
    auto got = read_u32(p->value);
    ASSERT_TRUE(got.ok());
    EXPECT_EQ(*got, v);
  }
  auto p = round_trip([](MessageBuilder& b) { b.add_u32(Attr::Priority, 0x6e0001ff); }, Method::Binding);
  EXPECT_EQ(*read_u32(p->value), 0x6e0001ffu);
  const std::vector<uint8_t> three(3, 0), five(5, 0);
  EXPECT_EQ(read_u32(Bytes{three}).error(), AttrError::BadLength);
  EXPECT_EQ(read_u32(Bytes{five}).error(), AttrError::BadLength);
}

TEST(ChannelNumberRoundTrip, NumberAndRffu) {
  for (uint16_t ch : {uint16_t{0x4000}, uint16_t{0x4ABC}, uint16_t{0x4FFF}}) {
    auto p = round_trip([&](MessageBuilder& b) { b.add_channel_number(ch); }, Method::ChannelBind);
    EXPECT_EQ(p->attr->type, static_cast<uint16_t>(Attr::ChannelNumber));
    ASSERT_EQ(p->value.size(), 4u);
    EXPECT_EQ(p->value[2], 0);
    EXPECT_EQ(p->value[3], 0);
    auto got = read_channel_number(p->value);
    ASSERT_TRUE(got.ok());
    EXPECT_EQ(*got, ch);
  }
  const std::vector<uint8_t> two = {0x40, 0x00};
  EXPECT_EQ(read_channel_number(Bytes{two}).error(), AttrError::BadLength);
  const std::vector<uint8_t> eight(8, 0x40);
  EXPECT_EQ(read_channel_number(Bytes{eight}).error(), AttrError::BadLength);
}

TEST(RequestedTransportRoundTrip, UdpAndTcp) {
  for (uint8_t proto : {kTransportUdp, kTransportTcp}) {
    auto p = round_trip([&](MessageBuilder& b) { b.add_requested_transport(proto); });
    EXPECT_EQ(p->attr->type, static_cast<uint16_t>(Attr::RequestedTransport));
    ASSERT_EQ(p->value.size(), 4u);
    EXPECT_EQ(p->value[1] | p->value[2] | p->value[3], 0);
    auto got = read_requested_transport(p->value);
    ASSERT_TRUE(got.ok());
    EXPECT_EQ(*got, proto);
  }
  const std::vector<uint8_t> one = {17};
  EXPECT_EQ(read_requested_transport(Bytes{one}).error(), AttrError::BadLength);
}

TEST(AddressFamilyRoundTrip, RequestedAndAdditional) {
  for (Attr type : {Attr::RequestedAddressFamily, Attr::AdditionalAddressFamily}) {
    for (Family f : {Family::V4, Family::V6}) {
      auto p = round_trip([&](MessageBuilder& b) { b.add_address_family(type, f); });
      EXPECT_EQ(p->attr->type, static_cast<uint16_t>(type));
      EXPECT_EQ(p->value[0], f == Family::V4 ? kFamilyIpv4 : kFamilyIpv6);
      auto got = read_address_family(p->value);
      ASSERT_TRUE(got.ok());
      EXPECT_EQ(*got, f);
    }
  }
  const std::vector<uint8_t> bad_family = {3, 0, 0, 0}, zero = {0, 0, 0, 0}, short1 = {1};
  EXPECT_EQ(read_address_family(Bytes{bad_family}).error(), AttrError::BadFamily);
  EXPECT_EQ(read_address_family(Bytes{zero}).error(), AttrError::BadFamily);
  EXPECT_EQ(read_address_family(Bytes{short1}).error(), AttrError::BadLength);
}

TEST(EvenPortRoundTrip, ReserveBit) {
  for (bool reserve : {false, true}) {
    auto p = round_trip([&](MessageBuilder& b) { b.add_even_port(reserve); });
    EXPECT_EQ(p->attr->type, static_cast<uint16_t>(Attr::EvenPort));
    EXPECT_EQ(p->attr->length, 1);
    auto got = read_even_port(p->value);
    ASSERT_TRUE(got.ok());
    EXPECT_EQ(*got, reserve);
  }
  const std::vector<uint8_t> four = {0x80, 0, 0, 0};
  EXPECT_EQ(read_even_port(Bytes{four}).error(), AttrError::BadLength);
  EXPECT_EQ(read_even_port(Bytes{}).error(), AttrError::BadLength);
  const std::vector<uint8_t> low_bits = {0x7F};  // only the R bit counts
  EXPECT_FALSE(*read_even_port(Bytes{low_bits}));
}

TEST(ReservationTokenRoundTrip, EightBytes) {
  const uint64_t token = 0x0102030405060708ull;
  auto p =
      round_trip([&](MessageBuilder& b) { b.add_reservation_token(token); }, Method::Allocate, Class::SuccessResponse);
  EXPECT_EQ(p->attr->type, static_cast<uint16_t>(Attr::ReservationToken));
  EXPECT_EQ(p->value[0], 0x01);
  EXPECT_EQ(p->value[7], 0x08);
  auto got = read_reservation_token(p->value);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, token);
  EXPECT_EQ(read_reservation_token(p->value.first(4)).error(), AttrError::BadLength);
}

TEST(FlagRoundTrip, DontFragment) {
  auto p = round_trip([](MessageBuilder& b) { b.add_flag(Attr::DontFragment); });
  EXPECT_EQ(p->attr->type, static_cast<uint16_t>(Attr::DontFragment));
  EXPECT_EQ(p->attr->length, 0);
  EXPECT_TRUE(read_flag(p->value));
  const std::vector<uint8_t> one = {0};
  EXPECT_FALSE(read_flag(Bytes{one}));
}

TEST(DataRoundTrip, OpaqueBytes) {
  for (size_t len : {0u, 1u, 5u, 160u, 1200u}) {
    std::vector<uint8_t> payload(len);
    for (size_t i = 0; i < len; ++i) payload[i] = static_cast<uint8_t>(i ^ 0x5A);
    auto p = round_trip([&](MessageBuilder& b) { b.add(Attr::Data, Bytes{payload}); }, Method::Send, Class::Indication);
    EXPECT_EQ(p->attr->type, static_cast<uint16_t>(Attr::Data));
    EXPECT_EQ(test::to_vector(p->value), payload);
  }
}

// --- ADDRESS-ERROR-CODE, ICMP --------------------------------------------

TEST(AddressErrorCodeRoundTrip, FamilyCodeReason) {
  auto p =
      round_trip([](MessageBuilder& b) { b.add_address_error_code(Family::V6, 440, "Address Family not Supported"); },
                 Method::Allocate, Class::SuccessResponse);
  EXPECT_EQ(p->attr->type, static_cast<uint16_t>(Attr::AddressErrorCode));
  auto got = read_address_error_code(p->value);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->family, Family::V6);
  EXPECT_EQ(got->code, 440);
  EXPECT_EQ(got->reason, "Address Family not Supported");

  auto p4 = round_trip([](MessageBuilder& b) { b.add_address_error_code(Family::V4, 508, ""); }, Method::Allocate,
                       Class::SuccessResponse);
  auto got4 = read_address_error_code(p4->value);
  ASSERT_TRUE(got4.ok());
  EXPECT_EQ(got4->family, Family::V4);
  EXPECT_EQ(got4->code, 508);
  EXPECT_EQ(got4->reason, "");
}

TEST(AddressErrorCodeReader, Rejections) {
  const std::vector<uint8_t> three = {1, 0, 4};
  EXPECT_EQ(read_address_error_code(Bytes{three}).error(), AttrError::BadLength);
  const std::vector<uint8_t> family3 = {3, 0, 4, 40};
  EXPECT_EQ(read_address_error_code(Bytes{family3}).error(), AttrError::BadFamily);
  const std::vector<uint8_t> class2 = {1, 0, 2, 0}, class7 = {2, 0, 7, 0};
  EXPECT_EQ(read_address_error_code(Bytes{class2}).error(), AttrError::BadValue);
  EXPECT_EQ(read_address_error_code(Bytes{class7}).error(), AttrError::BadValue);
  const std::vector<uint8_t> number100 = {1, 0, 4, 100};
  EXPECT_EQ(read_address_error_code(Bytes{number100}).error(), AttrError::BadValue);
  std::vector<uint8_t> too_long = {1, 0, 4, 40};
  too_long.resize(4 + kMaxReasonBytes + 1, 'r');
  EXPECT_EQ(read_address_error_code(Bytes{too_long}).error(), AttrError::TooLong);
}

TEST(IcmpRoundTrip, TypeCodeData) {
  auto p = round_trip([](MessageBuilder& b) { b.add_icmp(3, 4, 0x000005DCu); }, Method::Data, Class::Indication);
  EXPECT_EQ(p->attr->type, static_cast<uint16_t>(Attr::Icmp));
  EXPECT_EQ(p->value[0] | p->value[1], 0);  // reserved
  auto got = read_icmp(p->value);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->type, 3);
  EXPECT_EQ(got->code, 4);
  EXPECT_EQ(got->data, 0x5DCu);
  EXPECT_EQ(read_icmp(p->value.first(4)).error(), AttrError::BadLength);
}

// --- PASSWORD-ALGORITHM(S), UNKNOWN-ATTRIBUTES -----------------------------

TEST(PasswordAlgorithmRoundTrip, Single) {
  for (PasswordAlgorithm alg : {PasswordAlgorithm::Md5, PasswordAlgorithm::Sha256}) {
    auto p = round_trip([&](MessageBuilder& b) { b.add_password_algorithm(alg); });
    EXPECT_EQ(p->attr->type, static_cast<uint16_t>(Attr::PasswordAlgorithm));
    auto got = read_password_algorithm(p->value);
    ASSERT_TRUE(got.ok());
    EXPECT_EQ(got->algorithm, static_cast<uint16_t>(alg));
    EXPECT_TRUE(got->params.empty());
  }
}

TEST(PasswordAlgorithmReader, ParametersAndRejections) {
  const std::vector<uint8_t> two = {0, 1};
  EXPECT_EQ(read_password_algorithm(Bytes{two}).error(), AttrError::BadLength);
  // 2 bytes of parameters, padded to 4 or not: both accepted.
  const std::vector<uint8_t> padded = {0, 9, 0, 2, 0xAB, 0xCD, 0, 0};
  auto got = read_password_algorithm(Bytes{padded});
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->algorithm, 9);
  ASSERT_EQ(got->params.size(), 2u);
  EXPECT_EQ(got->params[1], 0xCD);
  EXPECT_TRUE(read_password_algorithm(Bytes{padded}.first(6)).ok());
  // Parameter length beyond the value.
  const std::vector<uint8_t> overrun = {0, 9, 0, 8, 1, 2, 3, 4};
  EXPECT_EQ(read_password_algorithm(Bytes{overrun}).error(), AttrError::BadLength);
  // Trailing bytes beyond the padded parameters.
  const std::vector<uint8_t> trailing = {0, 1, 0, 0, 1, 2, 3, 4};
  EXPECT_EQ(read_password_algorithm(Bytes{trailing}).error(), AttrError::BadLength);
}

TEST(PasswordAlgorithmsRoundTrip, List) {
  const PasswordAlgorithm algs[] = {PasswordAlgorithm::Sha256, PasswordAlgorithm::Md5};
  auto p =
      round_trip([&](MessageBuilder& b) { b.add_password_algorithms(algs); }, Method::Allocate, Class::ErrorResponse);
  EXPECT_EQ(p->attr->type, static_cast<uint16_t>(Attr::PasswordAlgorithms));
  EXPECT_EQ(p->attr->length, 8);
  PasswordAlgorithmValue out[4];
  auto n = read_password_algorithms(p->value, out);
  ASSERT_TRUE(n.ok());
  ASSERT_EQ(*n, 2u);
  EXPECT_EQ(out[0].algorithm, 2);
  EXPECT_EQ(out[1].algorithm, 1);
  EXPECT_TRUE(out[0].params.empty());
  // A smaller output still counts the whole list.
  PasswordAlgorithmValue one[1];
  auto n1 = read_password_algorithms(p->value, one);
  ASSERT_TRUE(n1.ok());
  EXPECT_EQ(*n1, 2u);
  EXPECT_EQ(one[0].algorithm, 2);
}

TEST(PasswordAlgorithmsReader, ParametersAndRejections) {
  PasswordAlgorithmValue out[4];
  auto empty = read_password_algorithms(Bytes{}, out);
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*empty, 0u);
  // An entry with 3 bytes of parameters (padded to 4) then a plain one.
  const std::vector<uint8_t> with_params = {0, 7, 0, 3, 9, 9, 9, 0, 0, 1, 0, 0};
  auto n = read_password_algorithms(Bytes{with_params}, out);
  ASSERT_TRUE(n.ok());
  ASSERT_EQ(*n, 2u);
  EXPECT_EQ(out[0].params.size(), 3u);
  EXPECT_EQ(out[1].algorithm, 1);
  const std::vector<uint8_t> trailing2 = {0, 1, 0, 0, 0, 2};
  EXPECT_EQ(read_password_algorithms(Bytes{trailing2}, out).error(), AttrError::BadLength);
  const std::vector<uint8_t> overrun = {0, 1, 0, 8, 1, 2, 3, 4};
  EXPECT_EQ(read_password_algorithms(Bytes{overrun}, out).error(), AttrError::BadLength);
  // Parameters that fit but whose padding does not.
  const std::vector<uint8_t> pad_overrun = {0, 1, 0, 3, 1, 2, 3};
  EXPECT_EQ(read_password_algorithms(Bytes{pad_overrun}, out).error(), AttrError::BadLength);
}

TEST(UnknownAttributesRoundTrip, ListWithPadding) {
  const uint16_t types[] = {0x0003, 0x7FFF, 0x0031};
  auto p =
      round_trip([&](MessageBuilder& b) { b.add_unknown_attributes(types); }, Method::Binding, Class::ErrorResponse);
  EXPECT_EQ(p->attr->type, static_cast<uint16_t>(Attr::UnknownAttributes));
  EXPECT_EQ(p->attr->length, 6);
  uint16_t out[8] = {};
  auto n = read_unknown_attributes(p->value, out);
  ASSERT_TRUE(n.ok());
  ASSERT_EQ(*n, 3u);
  EXPECT_EQ(out[0], 0x0003);
  EXPECT_EQ(out[1], 0x7FFF);
  EXPECT_EQ(out[2], 0x0031);
  uint16_t two[2] = {};
  EXPECT_EQ(*read_unknown_attributes(p->value, two), 3u);
  EXPECT_EQ(two[1], 0x7FFF);
  const std::vector<uint8_t> odd = {0, 3, 0};
  EXPECT_EQ(read_unknown_attributes(Bytes{odd}, out).error(), AttrError::BadLength);
}

// --- all at once -----------------------------------------------------------

TEST(AllAttributes, OneMessageCarriesThemAllAndReadsBack) {
  std::vector<uint8_t> buf(4096);
  const auto tid = test::txid(9);
  MessageBuilder b(MutableBytes{buf}, Method::Allocate, Class::SuccessResponse, Bytes{tid});
  const SocketAddress relayed = sa("[2001:db8::7]:49152"), mapped = sa("203.0.113.5:61000");
  const uint16_t unknown[] = {0x0003};
  const PasswordAlgorithm algs[] = {PasswordAlgorithm::Md5};
  b.add_xor_address(Attr::XorRelayedAddress, relayed)
      .add_xor_address(Attr::XorMappedAddress, mapped)
      .add_u32(Attr::Lifetime, 600)
      .add_reservation_token(42)
      .add_address_error_code(Family::V4, 440, "no v4")
      .add_text(Attr::Software, "dpturn")
      .add_unknown_attributes(unknown)
      .add_password_algorithms(algs)
      .add_channel_number(0x4001)
      .add_even_port(true)
      .add_icmp(1, 2, 3)
      .add_fingerprint();
  Bytes msg = b.finish();
  ASSERT_FALSE(msg.empty());
  MessageView v;
  ASSERT_EQ(parse(msg, v), ParseError::Ok);
  EXPECT_EQ(v.attributes().size(), 12u);
  EXPECT_EQ(*read_xor_address(v.value(*v.find(Attr::XorRelayedAddress)), v.xor_mask()), relayed);
  EXPECT_EQ(*read_xor_address(v.value(*v.find(Attr::XorMappedAddress)), v.xor_mask()), mapped);
  EXPECT_EQ(*read_u32(v.value(*v.find(Attr::Lifetime))), 600u);
  EXPECT_EQ(*read_reservation_token(v.value(*v.find(Attr::ReservationToken))), 42u);
  EXPECT_EQ(read_address_error_code(v.value(*v.find(Attr::AddressErrorCode)))->reason, "no v4");
  EXPECT_EQ(*read_text(v.value(*v.find(Attr::Software)), kMaxSoftwareBytes), "dpturn");
  EXPECT_EQ(*read_channel_number(v.value(*v.find(Attr::ChannelNumber))), 0x4001);
  EXPECT_TRUE(*read_even_port(v.value(*v.find(Attr::EvenPort))));
  EXPECT_EQ(read_icmp(v.value(*v.find(Attr::Icmp)))->data, 3u);
  EXPECT_NE(v.fingerprint(), nullptr);
}

}  // namespace
}  // namespace turn::stun
