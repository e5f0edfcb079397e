// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: stun::parse and everything downstream of a parsed
// message. A message that parses is walked attribute by attribute through
// its typed reader, checked for unknown comprehension-required attributes
// and integrity (fixed key), then re-encoded with MessageBuilder (typed
// writers where the reader accepted the value, raw bytes otherwise) and
// re-parsed: the copy must parse, carry the same attributes, read back the
// same values, and verify under the key it was re-signed with.
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "common/crypto/integrity.h"
#include "common/stun/attributes.h"
#include "common/stun/builder.h"
#include "common/stun/message.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using namespace turn;
using namespace turn::stun;

constexpr uint8_t kKey[16] = {0x84, 0x93, 0xfb, 0xc5, 0x3b, 0xa5, 0x82, 0xfb,
                              0x4c, 0x04, 0x4c, 0x45, 0x6b, 0xdc, 0x40, 0xeb};
constexpr Bytes key() { return Bytes{kKey, sizeof kKey}; }

// Big enough for the largest message plus the 16 bytes a truncated
// MESSAGE-INTEGRITY-SHA256 grows by when re-signed at full length.
uint8_t g_out[kHeaderSize + 0xFFFF + 64];
std::array<uint16_t, 0x8000> g_types_a, g_types_b;

bool same_bytes(Bytes a, Bytes b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size()) == 0);
}

template <class T, class Eq>
void check_same(const Result<T, AttrError>& a, const Result<T, AttrError>& b, Eq eq) {
  TURN_FUZZ_CHECK(a.ok() == b.ok());
  if (a.ok())
    TURN_FUZZ_CHECK(eq(a.value(), b.value()));
  else
    TURN_FUZZ_CHECK(a.error() == b.error());
}
template <class T>
void check_same(const Result<T, AttrError>& a, const Result<T, AttrError>& b) {
  check_same(a, b, [](const T& x, const T& y) { return x == y; });
}

size_t text_limit(Attr t) {
  switch (t) {
    case Attr::Username:
      return kMaxUsernameBytes;
    case Attr::Software:
      return kMaxSoftwareBytes;
    case Attr::Nonce:
      return kMaxNonceBytes;
    default:
      return kMaxRealmBytes;  // REALM, ALTERNATE-DOMAIN
  }
}

bool is_plain_algorithm(const PasswordAlgorithmValue& p) {
  return (p.algorithm == static_cast<uint16_t>(PasswordAlgorithm::Md5) ||
          p.algorithm == static_cast<uint16_t>(PasswordAlgorithm::Sha256)) &&
         p.params.empty();
}

// The value length after re-encoding. Equal to the original except:
// a truncated MESSAGE-INTEGRITY-SHA256 is re-signed at 32 bytes, and an
// address sent with family IPv6 whose value is IPv4-mapped (::ffff:a.b.c.d)
// reads back as that IPv4 address (IpAddress keeps IPv4 in mapped form, so
// peer policy sees ::ffff:127.0.0.1 as 127.0.0.1) and is written as 8 bytes.
size_t reencoded_length(const MessageView& m, const AttributeRef& a) {
  const Bytes v = m.value(a);
  switch (static_cast<Attr>(a.type)) {
    case Attr::MessageIntegritySha256:
      return 32;
    case Attr::MappedAddress:
    case Attr::AlternateServer:
      if (auto r = read_address(v); r.ok()) return r->ip.is_v4() ? 8 : 20;
      break;
    case Attr::XorMappedAddress:
    case Attr::XorPeerAddress:
    case Attr::XorRelayedAddress:
      if (auto r = read_xor_address(v, m.xor_mask()); r.ok()) return r->ip.is_v4() ? 8 : 20;
      break;
    default:
      break;
  }
  return a.length;
}

// Re-encodes one attribute of `m` into `b`.
void reencode(const MessageView& m, const AttributeRef& a, MessageBuilder& b) {
  const Bytes v = m.value(a);
  const Attr t = static_cast<Attr>(a.type);
  switch (t) {
    case Attr::MappedAddress:
    case Attr::AlternateServer:
      if (auto r = read_address(v); r.ok()) return void(b.add_address(t, *r));
      break;
    case Attr::XorMappedAddress:
    case Attr::XorPeerAddress:
    case Attr::XorRelayedAddress:
      if (auto r = read_xor_address(v, m.xor_mask()); r.ok()) return void(b.add_xor_address(t, *r));
      break;
    case Attr::Username:
    case Attr::Realm:
    case Attr::Nonce:
    case Attr::Software:
    case Attr::AlternateDomain:
      if (auto r = read_text(v, text_limit(t)); r.ok()) return void(b.add_text(t, *r));
      break;
    case Attr::ErrorCode:
      if (auto r = read_error_code(v); r.ok()) return void(b.add_error_code(r->code, r->reason));
      break;
    case Attr::Lifetime:
    case Attr::Priority:
      if (auto r = read_u32(v); r.ok()) return void(b.add_u32(t, *r));
      break;
    case Attr::ChannelNumber:
      if (auto r = read_channel_number(v); r.ok()) return void(b.add_channel_number(*r));
      break;
    case Attr::RequestedTransport:
      if (auto r = read_requested_transport(v); r.ok()) return void(b.add_requested_transport(*r));
      break;
    case Attr::RequestedAddressFamily:
    case Attr::AdditionalAddressFamily:
      if (auto r = read_address_family(v); r.ok()) return void(b.add_address_family(t, *r));
      break;
    case Attr::EvenPort:
      if (auto r = read_even_port(v); r.ok()) return void(b.add_even_port(*r));
      break;
    case Attr::ReservationToken:
      if (auto r = read_reservation_token(v); r.ok()) return void(b.add_reservation_token(*r));
      break;
    case Attr::DontFragment:
    case Attr::UseCandidate:
      if (read_flag(v)) return void(b.add_flag(t));
      break;
    case Attr::AddressErrorCode:
      if (auto r = read_address_error_code(v); r.ok())
        return void(b.add_address_error_code(r->family, r->code, r->reason));
      break;
    case Attr::Icmp:
      if (auto r = read_icmp(v); r.ok()) return void(b.add_icmp(r->type, r->code, r->data));
      break;
    case Attr::PasswordAlgorithm:
      if (auto r = read_password_algorithm(v); r.ok() && is_plain_algorithm(*r))
        return void(b.add_password_algorithm(static_cast<PasswordAlgorithm>(r->algorithm)));
      break;
    case Attr::PasswordAlgorithms: {
      std::array<PasswordAlgorithmValue, 8> list;
      auto r = read_password_algorithms(v, list);
      if (r.ok() && *r <= list.size()) {
        std::array<PasswordAlgorithm, 8> algs;
        bool plain = true;
        for (size_t i = 0; i < *r; ++i) {
          plain = plain && is_plain_algorithm(list[i]);
          algs[i] = static_cast<PasswordAlgorithm>(list[i].algorithm);
        }
        if (plain) return void(b.add_password_algorithms(std::span{algs.data(), *r}));
      }
      break;
    }
    case Attr::UnknownAttributes:
      if (auto r = read_unknown_attributes(v, g_types_a); r.ok())
        return void(b.add_unknown_attributes(std::span{g_types_a.data(), *r}));
      break;
    case Attr::Userhash:
      if (auto r = read_userhash(v); r.ok()) return void(b.add(t, Bytes{*r}));
      break;
    case Attr::MessageIntegrity:
      return crypto::add_integrity(b, key());
    case Attr::MessageIntegritySha256:
      return crypto::add_integrity_sha256(b, key());
    case Attr::Fingerprint:
      return void(b.add_fingerprint());
    default:
      break;
  }
  b.add(a.type, v);  // unknown type, or a value its reader rejects: copy it
}

// Both attributes read back the same way.
void compare(const MessageView& m1, const AttributeRef& a1, const MessageView& m2, const AttributeRef& a2) {
  TURN_FUZZ_CHECK(a1.type == a2.type);
  const Bytes v1 = m1.value(a1), v2 = m2.value(a2);
  const Attr t = static_cast<Attr>(a1.type);
  switch (t) {
    case Attr::MappedAddress:
    case Attr::AlternateServer:
      return check_same(read_address(v1), read_address(v2));
    case Attr::XorMappedAddress:
    case Attr::XorPeerAddress:
    case Attr::XorRelayedAddress:
      return check_same(read_xor_address(v1, m1.xor_mask()), read_xor_address(v2, m2.xor_mask()));
    case Attr::Username:
    case Attr::Realm:
    case Attr::Nonce:
    case Attr::Software:
    case Attr::AlternateDomain:
      return check_same(read_text(v1, text_limit(t)), read_text(v2, text_limit(t)));
    case Attr::ErrorCode:
      return check_same(read_error_code(v1), read_error_code(v2), [](const ErrorCodeValue& x, const ErrorCodeValue& y) {
        return x.code == y.code && x.reason == y.reason;
      });
    case Attr::Lifetime:
    case Attr::Priority:
      return check_same(read_u32(v1), read_u32(v2));
    case Attr::ChannelNumber:
      return check_same(read_channel_number(v1), read_channel_number(v2));
    case Attr::RequestedTransport:
      return check_same(read_requested_transport(v1), read_requested_transport(v2));
    case Attr::RequestedAddressFamily:
    case Attr::AdditionalAddressFamily:
      return check_same(read_address_family(v1), read_address_family(v2));
    case Attr::EvenPort:
      return check_same(read_even_port(v1), read_even_port(v2));
    case Attr::ReservationToken:
      return check_same(read_reservation_token(v1), read_reservation_token(v2));
    case Attr::DontFragment:
    case Attr::UseCandidate:
      TURN_FUZZ_CHECK(read_flag(v1) == read_flag(v2));
      if (!read_flag(v1)) TURN_FUZZ_CHECK(same_bytes(v1, v2));
      return;
    case Attr::AddressErrorCode:
      return check_same(read_address_error_code(v1), read_address_error_code(v2),
                        [](const AddressErrorValue& x, const AddressErrorValue& y) {
                          return x.family == y.family && x.code == y.code && x.reason == y.reason;
                        });
    case Attr::Icmp:
      return check_same(read_icmp(v1), read_icmp(v2), [](const IcmpValue& x, const IcmpValue& y) {
        return x.type == y.type && x.code == y.code && x.data == y.data;
      });
    case Attr::PasswordAlgorithm:
      return check_same(read_password_algorithm(v1), read_password_algorithm(v2),
                        [](const PasswordAlgorithmValue& x, const PasswordAlgorithmValue& y) {
                          return x.algorithm == y.algorithm && same_bytes(x.params, y.params);
                        });
    case Attr::PasswordAlgorithms: {
      std::array<PasswordAlgorithmValue, 8> l1, l2;
      auto r1 = read_password_algorithms(v1, l1);
      auto r2 = read_password_algorithms(v2, l2);
      check_same(r1, r2);
      if (r1.ok())
        for (size_t i = 0; i < *r1 && i < l1.size(); ++i)
          TURN_FUZZ_CHECK(l1[i].algorithm == l2[i].algorithm && same_bytes(l1[i].params, l2[i].params));
      return;
    }
    case Attr::UnknownAttributes: {
      auto r1 = read_unknown_attributes(v1, g_types_a);
      auto r2 = read_unknown_attributes(v2, g_types_b);
      check_same(r1, r2);
      if (r1.ok()) TURN_FUZZ_CHECK(std::memcmp(g_types_a.data(), g_types_b.data(), *r1 * 2) == 0);
      return;
    }
    case Attr::Userhash:
      return check_same(read_userhash(v1), read_userhash(v2));
    case Attr::MessageIntegrity:
      TURN_FUZZ_CHECK(a2.length == 20);
      TURN_FUZZ_CHECK(crypto::check_integrity(m2, key()));
      return;
    case Attr::MessageIntegritySha256:
      TURN_FUZZ_CHECK(a2.length == 32);  // re-signed at full length
      TURN_FUZZ_CHECK(crypto::check_integrity_sha256(m2, key()));
      return;
    case Attr::Fingerprint:
      TURN_FUZZ_CHECK(a2.length == 4);  // and parse() has verified it
      return;
    default:
      TURN_FUZZ_CHECK(same_bytes(v1, v2));
      return;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Bytes in{data, size};
  (void)stream_frame_length(in);
  const bool stunlike = looks_like_stun(in);

  MessageView m;
  const ParseError e = parse(in, m);
  if (e == ParseError::TooManyAttributes) {
    // The header stays readable for a 400 answer; nothing else does.
    TURN_FUZZ_CHECK(m.type() == load_be16(data));
    TURN_FUZZ_CHECK(m.transaction_id().size() == kTransactionIdSize);
    TURN_FUZZ_CHECK(m.attributes().empty() && !m.integrity() && !m.integrity_sha256() && !m.fingerprint());
    return 0;
  }
  if (e != ParseError::Ok) return 0;
  TURN_FUZZ_CHECK(stunlike);
  TURN_FUZZ_CHECK(stream_frame_length(in) == static_cast<long>(size));
  TURN_FUZZ_CHECK(m.attributes().size() <= MessageView::kMaxAttributes);

  uint16_t unknown1[8];
  const size_t n_unknown = m.unknown_required(unknown1);
  TURN_FUZZ_CHECK(n_unknown <= 8);
  const bool mi_ok = crypto::check_integrity(m, key());
  const bool mi256_ok = crypto::check_integrity_sha256(m, key());
  (void)mi_ok;
  (void)mi256_ok;

  // Re-encode (see reencoded_length() for the values whose size changes).
  size_t expect = kHeaderSize;
  for (const AttributeRef& a : m.attributes()) expect += 4 + pad4(reencoded_length(m, a));

  MessageBuilder b(MutableBytes{g_out, sizeof g_out}, m.type(), m.transaction_id());
  for (const AttributeRef& a : m.attributes()) reencode(m, a, b);
  if (expect - kHeaderSize > 0xFFFC) {
    TURN_FUZZ_CHECK(!b.ok());  // cannot fit a 16-bit length: must overflow
    return 0;
  }
  TURN_FUZZ_CHECK(b.ok());
  const Bytes out = b.finish();
  TURN_FUZZ_CHECK(out.size() == expect);

  MessageView m2;
  const ParseError e2 = parse(out, m2);
  if (e2 != ParseError::Ok) {
    std::fprintf(stderr, "re-encoded message does not parse: %s\n", std::string(parse_error_name(e2)).c_str());
    std::abort();
  }
  TURN_FUZZ_CHECK(m2.type() == m.type());
  TURN_FUZZ_CHECK(m2.attributes().size() == m.attributes().size());
  TURN_FUZZ_CHECK(m2.ignored() == 0);  // what RFC 8489 §14.5/§14.6 ignore is not re-encoded
  TURN_FUZZ_CHECK((m2.integrity() == nullptr) == (m.integrity() == nullptr));
  TURN_FUZZ_CHECK((m2.integrity_sha256() == nullptr) == (m.integrity_sha256() == nullptr));
  TURN_FUZZ_CHECK((m2.fingerprint() == nullptr) == (m.fingerprint() == nullptr));
  for (size_t i = 0; i < m.attributes().size(); ++i) compare(m, m.attributes()[i], m2, m2.attributes()[i]);

  uint16_t unknown2[8];
  TURN_FUZZ_CHECK(m2.unknown_required(unknown2) == n_unknown);
  TURN_FUZZ_CHECK(std::memcmp(unknown1, unknown2, n_unknown * sizeof(uint16_t)) == 0);
  return 0;
}
