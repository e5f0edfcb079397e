// SPDX-License-Identifier: Apache-2.0
// MESSAGE-INTEGRITY(-SHA256) written by add_integrity*() and checked by
// check_integrity*(), key derivation, USERHASH, and the primitives under
// them (known-answer tests from RFC 2202 / RFC 4231 / FIPS 180-2).
#include "common/crypto/integrity.h"

#include <gtest/gtest.h>

#include <cstring>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "common/stun/attributes.h"
#include "common/stun/builder.h"
#include "common/stun/message.h"
#include "tests/common/test_support.h"

namespace turn::crypto {
namespace {

using stun::Attr;
using stun::Class;
using stun::MessageBuilder;
using stun::MessageView;
using stun::Method;
using stun::ParseError;
using stun::PasswordAlgorithm;
using test::as_bytes;
using test::from_hex;

std::vector<uint8_t> key_bytes(const Key& k) { return test::to_vector(k.view()); }

// --- keys --------------------------------------------------------------------

TEST(LongTermKey, Md5OfUserRealmPassword) {
  // printf 'user:realm:pass' | md5sum
  //   8493fbc53ba582fb4c044c456bdc40eb
  Key k = long_term_key(PasswordAlgorithm::Md5, "user", "realm", "pass");
  EXPECT_EQ(k.size, 16);
  EXPECT_EQ(key_bytes(k), from_hex("8493fbc53ba582fb4c044c456bdc40eb"));
}

TEST(LongTermKey, Sha256OfUserRealmPassword) {
  // printf 'user:realm:pass' | sha256sum
  Key k = long_term_key(PasswordAlgorithm::Sha256, "user", "realm", "pass");
  EXPECT_EQ(k.size, 32);
  EXPECT_EQ(key_bytes(k), from_hex("07e934117abd40836e7c6329b54731b2b2d2a5f9a71f544922d75e0730d8251b"));
}

TEST(ShortTermKey, IsThePasswordItself) {
  Key k = short_term_key("VOkJxbRl1RmTxUk/WvJxBt");
  EXPECT_EQ(k.size, 22);
  EXPECT_EQ(test::as_text(k.view()), "VOkJxbRl1RmTxUk/WvJxBt");
  // Up to the 64-byte HMAC block size, a password is used verbatim.
  const std::string p64(64, 'p');
  EXPECT_EQ(test::as_text(short_term_key(p64).view()), p64);
  // Beyond it there is no single key (HMAC-SHA1 and HMAC-SHA256 would hash
  // it differently): the key is empty, which never verifies anything.
  EXPECT_EQ(short_term_key(std::string(65, 'p')).size, 0);
  EXPECT_EQ(short_term_key("").size, 0);
}

TEST(KeyFromHex, AcceptsMd5AndSha256Digests) {
  Key md5 = key_from_hex("8493fbc53ba582fb4c044c456bdc40eb");
  EXPECT_EQ(md5.size, 16);
  EXPECT_EQ(key_bytes(md5), key_bytes(long_term_key(PasswordAlgorithm::Md5, "user", "realm", "pass")));
  EXPECT_EQ(key_bytes(key_from_hex("0x8493FBC53BA582FB4C044C456BDC40EB")), key_bytes(md5));
  EXPECT_EQ(key_bytes(key_from_hex("0X8493fbc53ba582fb4c044c456bdc40eb")), key_bytes(md5));
  Key sha = key_from_hex("07e934117abd40836e7c6329b54731b2b2d2a5f9a71f544922d75e0730d8251b");
  EXPECT_EQ(sha.size, 32);
  EXPECT_EQ(sha.bytes[31], 0x1b);
}

TEST(KeyFromHex, RejectsBadHex) {
  for (std::string_view bad : {"", "0x", "8493fbc53ba582fb4c044c456bdc40e",  // 31 digits
                               "8493fbc53ba582fb4c044c456bdc40ebb",          // 33
                               "8493fbc53ba582fb4c044c456bdc40eg",           // not hex
                               "8493fbc53ba582fb4c044c456bdc40 e",           // space
                               "0x0x8493fbc53ba582fb4c044c456bdc40eb"}) {
    EXPECT_EQ(key_from_hex(bad).size, 0) << bad;
  }
}

// --- primitives --------------------------------------------------------------

TEST(Primitives, KnownAnswers) {
  const std::vector<uint8_t> key(20, 0x0b);
  const Bytes msg[] = {as_bytes("Hi There")};
  // RFC 2202 §3 test case 1, RFC 4231 §4.2 test case 1.
  EXPECT_EQ(test::to_vector(Bytes{hmac_sha1(Bytes{key}, msg)}), from_hex("b617318655057264e28bc0b6fb378c8ef146be00"));
  EXPECT_EQ(test::to_vector(Bytes{hmac_sha256(Bytes{key}, msg)}),
            from_hex("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"));
  EXPECT_EQ(test::to_vector(Bytes{sha256(as_bytes("abc"))}),
            from_hex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
  // Parts are concatenated.
  const Bytes split[] = {as_bytes("Hi "), as_bytes(""), as_bytes("There")};
  EXPECT_EQ(hmac_sha1(Bytes{key}, split), hmac_sha1(Bytes{key}, msg));
  EXPECT_EQ(hmac_sha256(Bytes{key}, split), hmac_sha256(Bytes{key}, msg));
}

// hmac_sha1/hmac_sha256 keep one context per thread and digest and key it
// again only when the key changes: a repeated key, a changed key, keys of
// other lengths (empty, over the 64-byte block), both digests interleaved
// and several threads at once must all give the RFC 2202 / RFC 4231 answers.
TEST(Primitives, ReusedContextsGiveTheKnownAnswersInAnyOrderAndThread) {
  const std::vector<uint8_t> k20(20, 0x0b), k4 = {'J', 'e', 'f', 'e'}, k80(80, 0xaa), none;
  const Bytes hi[] = {as_bytes("Hi There")};
  const Bytes jefe[] = {as_bytes("what do ya want for nothing?")};
  const Bytes big[] = {as_bytes("Test Using Larger Than Block-Size Key - Hash Key First")};
  const Bytes empty_msg[] = {as_bytes("")};
  struct Case {
    const std::vector<uint8_t>* key;
    std::span<const Bytes> msg;
    std::vector<uint8_t> sha1, sha256;
  };
  const std::vector<Case> cases = {
      // RFC 2202 §3 cases 1, 2, 6; RFC 4231 §4.2, §4.3 (its §4.7 has a
      // 131-byte key; this 80-byte one's SHA-256 answer is OpenSSL's:
      // `openssl mac -digest SHA256 -macopt hexkey:aa..aa HMAC`).
      {&k20, hi, from_hex("b617318655057264e28bc0b6fb378c8ef146be00"),
       from_hex("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")},
      {&k4, jefe, from_hex("effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"),
       from_hex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")},
      {&k80, big, from_hex("aa4ae5e15272d00e95705637ce8a3b55ed402112"),
       from_hex("6953025ed96f0c09f80a96f78e6538dbe2e7b820e3dd970e7ddd39091b32352f")},
      // HMAC under the empty key of the empty message (OpenSSL's own answer:
      // `openssl mac -digest SHA1 -macopt hexkey: HMAC </dev/null`).
      {&none, empty_msg, from_hex("fbdb1d1b18aa6c08324b7d64b71fb76370690e1d"),
       from_hex("b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad")},
  };
  // Each case twice in a row (same key: the context is re-armed, not
  // rekeyed), then the next (a new key), SHA-1 and SHA-256 interleaved.
  auto run = [&](int rounds) {
    int bad = 0;
    for (int r = 0; r < rounds; ++r)
      for (size_t i = 0; i < cases.size(); ++i) {
        const Case& c = cases[(i + static_cast<size_t>(r)) % cases.size()];
        for (int twice = 0; twice < 2; ++twice) {
          bad += test::to_vector(Bytes{hmac_sha1(Bytes{*c.key}, c.msg)}) != c.sha1;
          bad += test::to_vector(Bytes{hmac_sha256(Bytes{*c.key}, c.msg)}) != c.sha256;
        }
      }
    return bad;
  };
  EXPECT_EQ(run(3), 0);
  std::vector<std::thread> threads;
  std::vector<int> bad(4, -1);
  for (size_t t = 0; t < bad.size(); ++t) threads.emplace_back([&, t] { bad[t] = run(200); });
  for (auto& t : threads) t.join();
  for (size_t t = 0; t < bad.size(); ++t) EXPECT_EQ(bad[t], 0) << "thread " << t;
}

TEST(EqualCt, ComparesContentAndLength) {
  const std::vector<uint8_t> a = {1, 2, 3}, b = {1, 2, 3}, c = {1, 2, 4}, d = {1, 2};
  EXPECT_TRUE(equal_ct(Bytes{a}, Bytes{b}));
  EXPECT_FALSE(equal_ct(Bytes{a}, Bytes{c}));
  EXPECT_FALSE(equal_ct(Bytes{a}, Bytes{d}));
  EXPECT_FALSE(equal_ct(Bytes{d}, Bytes{a}));
  EXPECT_TRUE(equal_ct(Bytes{}, Bytes{}));
}

TEST(RandomBytes, FillsTheBuffer) {
  std::array<uint8_t, 16> a{}, b{};
  random_bytes(MutableBytes{a});
  random_bytes(MutableBytes{b});
  // 2^-128 chance of a false failure.
  EXPECT_NE(a, b);
  EXPECT_NE(a, (std::array<uint8_t, 16>{}));
}

// --- MESSAGE-INTEGRITY ---------------------------------------------------------

struct Built {
  std::vector<uint8_t> bytes;
  size_t mi_end = 0;  // offset just past the integrity attribute(s)
};

Built build_signed(Bytes key, bool sha1, bool sha256, bool fingerprint) {
  std::vector<uint8_t> buf(512);
  const auto tid = test::txid(0x21);
  MessageBuilder b(MutableBytes{buf}, Method::Allocate, Class::Request, Bytes{tid});
  b.add_requested_transport(stun::kTransportUdp)
      .add_text(Attr::Username, "alice")
      .add_text(Attr::Realm, "example.org")
      .add_text(Attr::Nonce, "abcdefgh");
  if (sha1) add_integrity(b, key);
  if (sha256) add_integrity_sha256(b, key);
  size_t mi_end = b.size();
  if (fingerprint) b.add_fingerprint();
  EXPECT_TRUE(b.ok());
  return {test::to_vector(b.finish()), mi_end};
}

TEST(MessageIntegrity, RoundTripWithTheRightKey) {
  Key k = long_term_key(PasswordAlgorithm::Md5, "alice", "example.org", "secret");
  for (bool fp : {false, true}) {
    Built m = build_signed(k.view(), true, false, fp);
    MessageView v;
    ASSERT_EQ(parse(Bytes{m.bytes}, v), ParseError::Ok);
    const auto* integrity_ref = v.integrity();
    ASSERT_NE(integrity_ref, nullptr);
    EXPECT_EQ(integrity_ref->length, 20);
    EXPECT_EQ(integrity_ref->offset + 20, m.mi_end);
    EXPECT_TRUE(check_integrity(v, k.view())) << "fingerprint " << fp;
    EXPECT_FALSE(check_integrity_sha256(v, k.view()));  // absent
  }
}

TEST(MessageIntegrity, HmacCoversHeaderWithLengthUpToIntegrity) {
  // Recompute the HMAC by hand: header with the length ending at MI, then the
  // attributes before MI (RFC 8489 §14.5), with a FINGERPRINT after it.
  Key k = short_term_key("pass");
  Built m = build_signed(k.view(), true, false, true);
  std::vector<uint8_t> input(m.bytes.begin(), m.bytes.begin() + static_cast<long>(m.mi_end - 24));
  store_be16(input.data() + 2, static_cast<uint16_t>(m.mi_end - 20));
  const Bytes parts[] = {Bytes{input}};
  Sha1 want = hmac_sha1(k.view(), parts);
  EXPECT_EQ(std::memcmp(m.bytes.data() + m.mi_end - 20, want.data(), 20), 0);
}

TEST(MessageIntegrity, WrongKeyFails) {
  Key k = long_term_key(PasswordAlgorithm::Md5, "alice", "example.org", "secret");
  Key wrong = long_term_key(PasswordAlgorithm::Md5, "alice", "example.org", "Secret");
  Built m = build_signed(k.view(), true, false, true);
  MessageView v;
  ASSERT_EQ(parse(Bytes{m.bytes}, v), ParseError::Ok);
  EXPECT_FALSE(check_integrity(v, wrong.view()));
  EXPECT_FALSE(check_integrity(v, k.view().first(15)));
  EXPECT_FALSE(check_integrity(v, Bytes{}));
}

TEST(MessageIntegrity, AnyFlippedBitFails) {
  Key k = short_term_key("VOkJxbRl1RmTxUk/WvJxBt");
  Built m = build_signed(k.view(), true, false, false);
  size_t parsed = 0;
  for (size_t i = 0; i < m.bytes.size(); ++i) {
    auto copy = m.bytes;
    copy[i] ^= 0x01;
    MessageView v;
    if (parse(Bytes{copy}, v) != ParseError::Ok || v.integrity() == nullptr) continue;
    ++parsed;
    EXPECT_FALSE(check_integrity(v, k.view())) << "flipped byte " << i;
  }
  // Most single flips (transaction id, values, the MAC itself) still parse.
  EXPECT_GT(parsed, m.bytes.size() / 2);
}

TEST(MessageIntegrity, AbsentIntegrityFails) {
  Key k = short_term_key("pass");
  Built m = build_signed(k.view(), false, false, true);
  MessageView v;
  ASSERT_EQ(parse(Bytes{m.bytes}, v), ParseError::Ok);
  EXPECT_FALSE(check_integrity(v, k.view()));
  EXPECT_FALSE(check_integrity_sha256(v, k.view()));
}

// Regression: an empty key is what short_term_key() and key_from_hex() return
// for bad input; anyone can compute an HMAC under it, so it must verify
// nothing (it used to verify a message signed with the empty key).
TEST(MessageIntegrity, EmptyKeyNeverVerifies) {
  Built m = build_signed(Bytes{}, true, true, false);
  MessageView v;
  ASSERT_EQ(parse(Bytes{m.bytes}, v), ParseError::Ok);
  const auto* integrity_ref = v.integrity();
  ASSERT_NE(integrity_ref, nullptr);
  EXPECT_FALSE(check_integrity(v, Bytes{}));
  EXPECT_FALSE(check_integrity_sha256(v, Bytes{}));
  EXPECT_FALSE(check_integrity(v, short_term_key(std::string(100, 'x')).view()));
}

// --- MESSAGE-INTEGRITY-SHA256 ----------------------------------------------------

TEST(MessageIntegritySha256, RoundTrip) {
  Key k = long_term_key(PasswordAlgorithm::Sha256, "alice", "example.org", "secret");
  Built m = build_signed(k.view(), false, true, true);
  MessageView v;
  ASSERT_EQ(parse(Bytes{m.bytes}, v), ParseError::Ok);
  const auto* integrity_sha256_ref = v.integrity_sha256();
  ASSERT_NE(integrity_sha256_ref, nullptr);
  EXPECT_EQ(integrity_sha256_ref->length, 32);
  EXPECT_TRUE(check_integrity_sha256(v, k.view()));
  EXPECT_FALSE(check_integrity(v, k.view()));
  Key wrong = long_term_key(PasswordAlgorithm::Sha256, "alice", "example.org", "secreT");
  EXPECT_FALSE(check_integrity_sha256(v, wrong.view()));
}

TEST(MessageIntegritySha256, BothIntegritiesVerify) {
  // MI then MI-SHA256 (RFC 8489 §14.6: the SHA-256 HMAC covers the MI too).
  Key k = long_term_key(PasswordAlgorithm::Md5, "alice", "example.org", "secret");
  Built m = build_signed(k.view(), true, true, true);
  MessageView v;
  ASSERT_EQ(parse(Bytes{m.bytes}, v), ParseError::Ok);
  EXPECT_TRUE(check_integrity(v, k.view()));
  EXPECT_TRUE(check_integrity_sha256(v, k.view()));
  // Corrupting the MI breaks both (built without FINGERPRINT, which would
  // reject the corrupted message first).
  Built plain = build_signed(k.view(), true, true, false);
  ASSERT_EQ(parse(Bytes{plain.bytes}, v), ParseError::Ok);
  const auto* integrity_ref = v.integrity();
  ASSERT_NE(integrity_ref, nullptr);
  auto copy = plain.bytes;
  copy[integrity_ref->offset] ^= 0x40;
  MessageView c;
  ASSERT_EQ(parse(Bytes{copy}, c), ParseError::Ok);
  EXPECT_FALSE(check_integrity(c, k.view()));
  EXPECT_FALSE(check_integrity_sha256(c, k.view()));
}

// Writes MI-SHA256 truncated to `len` bytes (16..32), as RFC 8489 §14.6
// allows a sender to.
std::vector<uint8_t> build_truncated_sha256(Bytes key, uint16_t len, size_t payload = 8) {
  std::vector<uint8_t> buf(70000);
  const auto tid = test::txid(0x31);
  MessageBuilder b(MutableBytes{buf}, Method::Send, Class::Indication, Bytes{tid});
  std::vector<uint8_t> data(payload, 0x42);
  b.add(Attr::Data, Bytes{data});
  size_t before = b.size();
  uint8_t* p = b.reserve(static_cast<uint16_t>(Attr::MessageIntegritySha256), len);
  EXPECT_NE(p, nullptr);
  if (p == nullptr) return {};
  const Bytes parts[] = {Bytes{buf}.first(before)};
  Sha256 mac = hmac_sha256(key, parts);
  std::memcpy(p, mac.data(), len);
  return test::to_vector(b.finish());
}

TEST(MessageIntegritySha256, TruncatedMacsVerify) {
  Key k = long_term_key(PasswordAlgorithm::Sha256, "bob", "example.org", "pw");
  for (uint16_t len : {16, 20, 28, 32}) {
    auto m = build_truncated_sha256(k.view(), len);
    MessageView v;
    ASSERT_EQ(parse(Bytes{m}, v), ParseError::Ok) << len;
    const auto* integrity_sha256_ref = v.integrity_sha256();
    ASSERT_NE(integrity_sha256_ref, nullptr);
    EXPECT_EQ(integrity_sha256_ref->length, len);
    EXPECT_TRUE(check_integrity_sha256(v, k.view())) << len;
    m[m.size() - 1] ^= 1;  // last byte of the truncated MAC
    ASSERT_EQ(parse(Bytes{m}, v), ParseError::Ok);
    EXPECT_FALSE(check_integrity_sha256(v, k.view())) << len;
  }
}

// Regression: with 16-bit attribute offsets, a 16-byte MI-SHA256 ending a
// maximum-size message (value at offset 65536) wrapped to offset 0 and
// check_integrity_sha256() read far outside the message.
TEST(MessageIntegritySha256, VerifiesPast64KiB) {
  Key k = long_term_key(PasswordAlgorithm::Sha256, "bob", "example.org", "pw");
  auto m = build_truncated_sha256(k.view(), 16, 65508);
  ASSERT_EQ(m.size(), 20u + 65532u);
  MessageView v;
  ASSERT_EQ(parse(Bytes{m}, v), ParseError::Ok);
  const auto* integrity_sha256_ref = v.integrity_sha256();
  ASSERT_NE(integrity_sha256_ref, nullptr);
  EXPECT_EQ(integrity_sha256_ref->offset, 65536u);
  EXPECT_TRUE(check_integrity_sha256(v, k.view()));
}

// --- USERHASH ----------------------------------------------------------------------

TEST(Userhash, Sha256OfUsernameColonRealm) {
  // The RFC 8489 B.1 vector (rfc5769_test.cpp) checks a known answer.
  Sha256 h = userhash("user", "realm");
  EXPECT_EQ(h, sha256(as_bytes("user:realm")));
  EXPECT_NE(h, userhash("user", "realm2"));
}

}  // namespace
}  // namespace turn::crypto
