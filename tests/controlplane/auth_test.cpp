// SPDX-License-Identifier: Apache-2.0
// Stateless nonces (controlplane/auth/nonce) and the credential store
// (controlplane/auth/credentials): config users, local users, REST API
// ephemeral credentials, base64.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "common/crypto/integrity.h"
#include "controlplane/auth/credentials.h"
#include "controlplane/auth/nonce.h"
#include "controlplane/config/config.h"

namespace turn::cp {
namespace {

constexpr uint64_t kNow = 1'700'000'000;
const std::string kSecret = "0123456789abcdef-nonce-secret";

IpAddress ip(const char* text) { return IpAddress::parse(text).value(); }

Bytes bytes_of(const std::string& s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }

std::string hex(Bytes b) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s;
  for (uint8_t x : b) {
    s.push_back(kDigits[x >> 4]);
    s.push_back(kDigits[x & 15]);
  }
  return s;
}

bool same_key(const crypto::Key& a, const crypto::Key& b) {
  return a.size == b.size && std::equal(a.bytes.begin(), a.bytes.begin() + a.size, b.bytes.begin());
}

// A different hex digit at position i.
std::string flip(std::string s, size_t i) {
  s[i] = s[i] == '0' ? '1' : '0';
  return s;
}

// ---- NonceIssuer ------------------------------------------------------------------

const size_t kCookie = kNonceCookie.size();

TEST(Nonce, FormatIsCookieThen32LowercaseHexDigits) {
  // RFC 8489 §9.2: "obMatJos2" + the base64 security feature set; "wAAA"
  // is 0xC00000, the "password algorithms" and "username anonymity" bits.
  EXPECT_EQ(kNonceCookie, "obMatJos2wAAA");
  NonceIssuer n(kSecret, 600);
  auto nonce = n.issue("example.org", ip("192.0.2.1"), kNow);
  ASSERT_EQ(nonce.size(), kCookie + 32);
  EXPECT_TRUE(nonce.starts_with(kNonceCookie)) << nonce;
  for (char c : nonce.substr(kCookie)) EXPECT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) << nonce;
  // The first 8 digits are the expiry.
  EXPECT_EQ(std::stoul(nonce.substr(kCookie, 8), nullptr, 16), kNow + 600);
}

TEST(Nonce, ValidUntilItsLifetimeEnds) {
  NonceIssuer n(kSecret, 600);
  auto nonce = n.issue("example.org", ip("192.0.2.1"), kNow);
  EXPECT_EQ(n.check(nonce, "example.org", ip("192.0.2.1"), kNow), NonceCheck::Valid);
  EXPECT_EQ(n.check(nonce, "example.org", ip("192.0.2.1"), kNow + 599), NonceCheck::Valid);
  EXPECT_EQ(n.check(nonce, "example.org", ip("192.0.2.1"), kNow + 600), NonceCheck::Stale);
  EXPECT_EQ(n.check(nonce, "example.org", ip("192.0.2.1"), kNow + 86400), NonceCheck::Stale);
}

TEST(Nonce, AnyChangedDigitIsForged) {
  NonceIssuer n(kSecret, 600);
  auto nonce = n.issue("example.org", ip("192.0.2.1"), kNow);
  for (size_t i = 0; i < nonce.size(); ++i)
    EXPECT_EQ(n.check(flip(nonce, i), "example.org", ip("192.0.2.1"), kNow), NonceCheck::Forged) << i;
}

TEST(Nonce, ExtendingTheExpiryIsForged) {
  // An attacker who rewrites the timestamp to live longer gets nothing.
  NonceIssuer n(kSecret, 1);
  auto nonce = n.issue("example.org", ip("192.0.2.1"), kNow);
  std::string later = std::string(kNonceCookie) + "ffffffff" + nonce.substr(kCookie + 8);
  EXPECT_EQ(n.check(later, "example.org", ip("192.0.2.1"), kNow + 10), NonceCheck::Forged);
}

TEST(Nonce, BoundToRealmClientAndSecret) {
  NonceIssuer n(kSecret, 600);
  auto nonce = n.issue("example.org", ip("192.0.2.1"), kNow);
  EXPECT_EQ(n.check(nonce, "other.org", ip("192.0.2.1"), kNow), NonceCheck::Forged);
  EXPECT_EQ(n.check(nonce, "example.org", ip("192.0.2.2"), kNow), NonceCheck::Forged);
  EXPECT_EQ(n.check(nonce, "example.org", ip("::ffff:192.0.2.1"), kNow), NonceCheck::Valid);  // same address
  EXPECT_EQ(n.check(nonce, "example.org", ip("2001:db8::1"), kNow), NonceCheck::Forged);
  NonceIssuer other("another-instance-secret-xyz", 600);
  EXPECT_EQ(other.check(nonce, "example.org", ip("192.0.2.1"), kNow), NonceCheck::Forged);
  // A second instance sharing the secret accepts it (several control planes).
  NonceIssuer twin(kSecret, 600);
  EXPECT_EQ(twin.check(nonce, "example.org", ip("192.0.2.1"), kNow), NonceCheck::Valid);
}

TEST(Nonce, GarbageIsForged) {
  NonceIssuer n(kSecret, 600);
  auto nonce = n.issue("example.org", ip("192.0.2.1"), kNow);
  const std::string c(kNonceCookie);
  for (std::string bad : {std::string(), std::string("abc"), c, c + std::string(32, 'z'), c + std::string(31, '0'),
                          c + std::string(33, '0'), c + std::string(32, '0'), c + "-0000001" + std::string(24, '0'),
                          nonce.substr(kCookie),                    // without the cookie
                          "obMatJos2AAAA" + nonce.substr(kCookie),  // another feature set
                          nonce + "0", nonce.substr(0, nonce.size() - 1)})
    EXPECT_EQ(n.check(bad, "example.org", ip("192.0.2.1"), kNow), NonceCheck::Forged) << bad;
}

TEST(Nonce, FreshNoncesDifferOverTime) {
  NonceIssuer n(kSecret, 600);
  EXPECT_NE(n.issue("r", ip("192.0.2.1"), kNow), n.issue("r", ip("192.0.2.1"), kNow + 1));
  EXPECT_NE(n.issue("r", ip("192.0.2.1"), kNow), n.issue("r", ip("192.0.2.2"), kNow));
}

// ---- base64 -------------------------------------------------------------------------

TEST(Base64, Rfc4648TestVectors) {
  EXPECT_EQ(base64_encode(bytes_of("")), "");
  EXPECT_EQ(base64_encode(bytes_of("f")), "Zg==");
  EXPECT_EQ(base64_encode(bytes_of("fo")), "Zm8=");
  EXPECT_EQ(base64_encode(bytes_of("foo")), "Zm9v");
  EXPECT_EQ(base64_encode(bytes_of("foob")), "Zm9vYg==");
  EXPECT_EQ(base64_encode(bytes_of("fooba")), "Zm9vYmE=");
  EXPECT_EQ(base64_encode(bytes_of("foobar")), "Zm9vYmFy");
}

TEST(Base64, AllByteValues) {
  const uint8_t hi[] = {0xff, 0xfe, 0xfd, 0x00, 0x3f};
  EXPECT_EQ(base64_encode(Bytes{hi, 3}), "//79");
  EXPECT_EQ(base64_encode(Bytes{hi, 5}), "//79AD8=");
}

// ---- CredentialStore ------------------------------------------------------------------

Config base_config() {
  Config c;
  c.realm = "example.org";
  return c;
}

crypto::Key md5(const std::string& user, const std::string& realm, const std::string& pass) {
  return crypto::long_term_key(stun::PasswordAlgorithm::Md5, user, realm, pass);
}

TEST(Credentials, ConfigUserWithPassword) {
  Config c = base_config();
  apply_config_line("user=alice:wonderland", "t:1", c);
  CredentialStore store(c);
  auto found = store.lookup("alice", "example.org", kNow);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_TRUE(same_key(found[0].md5_key, md5("alice", "example.org", "wonderland")));
  EXPECT_EQ(found[0].password, "wonderland");
  EXPECT_EQ(found[0].source, "config");
  EXPECT_TRUE(store.lookup("mallory", "example.org", kNow).empty());
  EXPECT_TRUE(store.lookup("Alice", "example.org", kNow).empty());
}

TEST(Credentials, HexKeyGivesTheSameKeyAsThePassword) {
  auto key = md5("alice", "example.org", "wonderland");
  Config c = base_config();
  apply_config_line("user=alice:wonderland", "t:1", c);
  apply_config_line("user=bob:0x" + hex(key.view()), "t:2", c);
  CredentialStore store(c);
  auto a = store.lookup("alice", "example.org", kNow);
  auto b = store.lookup("bob", "example.org", kNow);
  ASSERT_EQ(a.size(), 1u);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_TRUE(same_key(a[0].md5_key, b[0].md5_key));
  EXPECT_TRUE(b[0].password.empty());  // no SHA-256 key can be made from a stored MD5 key
  // A known MD5 value (python: md5(b"alice:test.realm:alice-secret")).
  EXPECT_EQ(hex(md5("alice", "test.realm", "alice-secret").view()), "773452952c2461443f2c3d9969bb9341");
}

TEST(Credentials, BadHexKeyIsAConfigError) {
  Config c = base_config();
  apply_config_line("user=bob:0xzz23456789abcdef0123456789abcdef", "t:1", c);
  EXPECT_THROW(CredentialStore store(c), ConfigError);
}

TEST(Credentials, RealmMismatchGivesNoCandidates) {
  Config c = base_config();
  apply_config_line("user=alice:wonderland", "t:1", c);
  c.use_auth_secret = true;
  c.static_auth_secrets = {"north"};
  CredentialStore store(c);
  EXPECT_TRUE(store.lookup("alice", "other.org", kNow).empty());
  EXPECT_TRUE(store.lookup(std::to_string(kNow + 60) + ":alice", "other.org", kNow).empty());
  EXPECT_TRUE(store.lookup("alice", "", kNow).empty());
}

TEST(Credentials, LocalUsersAddReplaceRemove) {
  Config c = base_config();
  apply_config_line("user=alice:wonderland", "t:1", c);
  CredentialStore store(c);
  EXPECT_TRUE(store.lookup("carol", "example.org", kNow).empty());
  store.add_local("carol", "pw1");
  auto found = store.lookup("carol", "example.org", kNow);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_TRUE(same_key(found[0].md5_key, md5("carol", "example.org", "pw1")));
  EXPECT_EQ(found[0].source, "local");
  EXPECT_EQ(store.local_names(), std::vector<std::string>{"carol"});
  store.add_local("carol", "pw2");
  found = store.lookup("carol", "example.org", kNow);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_TRUE(same_key(found[0].md5_key, md5("carol", "example.org", "pw2")));
  auto all = store.all_names();
  EXPECT_NE(std::find(all.begin(), all.end(), "alice"), all.end());
  EXPECT_NE(std::find(all.begin(), all.end(), "carol"), all.end());
  EXPECT_TRUE(store.remove_local("carol"));
  EXPECT_FALSE(store.remove_local("carol"));
  EXPECT_TRUE(store.lookup("carol", "example.org", kNow).empty());
  EXPECT_TRUE(store.local_names().empty());
}

TEST(Credentials, LocalUserOverridesConfigUser) {
  Config c = base_config();
  apply_config_line("user=alice:wonderland", "t:1", c);
  CredentialStore store(c);
  store.add_local("alice", "new-password");
  auto found = store.lookup("alice", "example.org", kNow);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_TRUE(same_key(found[0].md5_key, md5("alice", "example.org", "new-password")));
  EXPECT_TRUE(store.remove_local("alice"));
  found = store.lookup("alice", "example.org", kNow);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_TRUE(same_key(found[0].md5_key, md5("alice", "example.org", "wonderland")));
}

TEST(Credentials, RedisUsersAndSecrets) {
  Config c = base_config();
  c.use_auth_secret = true;
  CredentialStore store(c);
  auto key = md5("dave", "example.org", "pw");
  store.set_redis({{"dave", key}}, {"redis-secret"});
  auto found = store.lookup("dave", "example.org", kNow);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_TRUE(same_key(found[0].md5_key, key));
  EXPECT_EQ(found[0].source, "redis");
  std::string rest_user = std::to_string(kNow + 60) + ":dave";
  auto rest = store.lookup(rest_user, "example.org", kNow);
  ASSERT_EQ(rest.size(), 1u);
  EXPECT_TRUE(same_key(rest[0].md5_key,
                       md5(rest_user, "example.org", CredentialStore::rest_password("redis-secret", rest_user))));
  store.set_redis({}, {});
  EXPECT_TRUE(store.lookup("dave", "example.org", kNow).empty());
  EXPECT_TRUE(store.lookup(rest_user, "example.org", kNow).empty());
}

TEST(RestCredentials, PasswordIsBase64OfHmacSha1) {
  // python3: base64.b64encode(hmac.new(b"north", b"1700000000:alice", hashlib.sha1).digest())
  EXPECT_EQ(CredentialStore::rest_password("north", "1700000000:alice"), "Cd/49soE35ICqcJF/bCTn8Z4OyE=");
  const std::string user = "1700000000:alice", secret = "north";
  const Bytes parts[] = {bytes_of(user)};
  EXPECT_EQ(CredentialStore::rest_password(secret, user), base64_encode(crypto::hmac_sha1(bytes_of(secret), parts)));
}

TEST(RestCredentials, AcceptedBeforeExpiryNotAfter) {
  Config c = base_config();
  c.use_auth_secret = true;
  c.static_auth_secrets = {"north"};
  CredentialStore store(c);
  const std::string user = "1700000000:alice";
  // Before expiry: one candidate whose key is MD5(user:realm:base64(HMAC)).
  auto found = store.lookup(user, "example.org", kNow - 1);
  ASSERT_EQ(found.size(), 1u);
  // python3: md5(("1700000000:alice:example.org:" + password).encode())
  EXPECT_EQ(hex(found[0].md5_key.view()), "d9a6a3d964467baeffd2fce41704a913");
  EXPECT_EQ(found[0].password, "Cd/49soE35ICqcJF/bCTn8Z4OyE=");
  EXPECT_EQ(found[0].source, "rest");
  EXPECT_FALSE(store.rest_expired(user, kNow - 1));
  // At and after expiry: nothing, and rest_expired says why.
  EXPECT_TRUE(store.lookup(user, "example.org", kNow).empty());
  EXPECT_TRUE(store.lookup(user, "example.org", kNow + 3600).empty());
  EXPECT_TRUE(store.rest_expired(user, kNow));
  EXPECT_TRUE(store.rest_expired(user, kNow + 3600));
}

TEST(RestCredentials, OneCandidatePerSecret) {
  Config c = base_config();
  c.use_auth_secret = true;
  c.static_auth_secrets = {"old-secret", "new-secret"};
  CredentialStore store(c);
  std::string user = std::to_string(kNow + 600) + ":bob";
  auto found = store.lookup(user, "example.org", kNow);
  ASSERT_EQ(found.size(), 2u);
  EXPECT_TRUE(same_key(found[0].md5_key, md5(user, "example.org", CredentialStore::rest_password("old-secret", user))));
  EXPECT_TRUE(same_key(found[1].md5_key, md5(user, "example.org", CredentialStore::rest_password("new-secret", user))));
}

TEST(RestCredentials, TimestampOnlyAndNonNumericUsernames) {
  Config c = base_config();
  c.use_auth_secret = true;
  c.static_auth_secrets = {"north"};
  CredentialStore store(c);
  EXPECT_EQ(store.lookup(std::to_string(kNow + 5), "example.org", kNow).size(), 1u);
  EXPECT_TRUE(store.lookup("alice:1800000000", "example.org", kNow).empty());
  EXPECT_TRUE(store.lookup("12ab:alice", "example.org", kNow).empty());
  EXPECT_TRUE(store.lookup(":alice", "example.org", kNow).empty());
  EXPECT_FALSE(store.rest_expired("alice", kNow));
}

TEST(RestCredentials, OffWithoutUseAuthSecret) {
  Config c = base_config();
  c.static_auth_secrets = {"north"};
  CredentialStore store(c);
  std::string user = std::to_string(kNow + 600) + ":bob";
  EXPECT_TRUE(store.lookup(user, "example.org", kNow).empty());
  EXPECT_FALSE(store.rest_expired(std::to_string(kNow - 600) + ":bob", kNow));
}

TEST(RestCredentials, LtCredMechOffLeavesOnlyRest) {
  Config c = base_config();
  apply_config_line("user=alice:wonderland", "t:1", c);
  c.use_auth_secret = true;
  c.lt_cred_mech = false;
  c.static_auth_secrets = {"north"};
  CredentialStore store(c);
  EXPECT_TRUE(store.lookup("alice", "example.org", kNow).empty());
  EXPECT_EQ(store.lookup(std::to_string(kNow + 5) + ":alice", "example.org", kNow).size(), 1u);
}

}  // namespace
}  // namespace turn::cp
