// SPDX-License-Identifier: Apache-2.0
// MESSAGE-INTEGRITY (HMAC-SHA1, RFC 8489 §14.5), MESSAGE-INTEGRITY-SHA256
// (§14.6), long-term key derivation (§9.2.2, §18.5) and USERHASH (§14.4),
// over OpenSSL 3. Comparisons are constant-time (CRYPTO_memcmp).
//
// Thread-safe: the OpenSSL algorithm handles are fetched once and shared;
// each thread keeps its own HMAC context per digest (made on first use,
// keyed again only when the key changes, freed when the thread ends).
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string_view>

#include "common/stun/builder.h"
#include "common/stun/constants.h"
#include "common/stun/message.h"
#include "common/util/bytes.h"

namespace turn::crypto {

using Sha1 = std::array<uint8_t, 20>;
using Sha256 = std::array<uint8_t, 32>;

// A long-term key: MD5 (16 bytes) or SHA-256 (32 bytes) of
// "username:realm:password" (RFC 8489 §9.2.2, §18.5.1), or a short-term
// password of up to 64 bytes (the HMAC block size of SHA-1 and SHA-256, up
// to which HMAC uses a key verbatim). The caller applies OpaqueString to the
// password; usernames and realms go as received. size 0 means "no valid
// key": check_integrity*() never accept a message under it.
struct Key {
  std::array<uint8_t, 64> bytes{};
  uint8_t size = 0;
  [[nodiscard]] Bytes view() const noexcept { return {bytes.data(), size}; }
};

[[nodiscard]] Key long_term_key(stun::PasswordAlgorithm alg, std::string_view username, std::string_view realm,
                                std::string_view password);
// Short-term credentials use the password itself as the key (§9.1.1).
// An empty or over-64-byte password gives an empty (invalid) Key.
[[nodiscard]] Key short_term_key(std::string_view password);
// A key from a stored hex digest (coturn's Redis "key" or a config line
// "user=name:0x<hex>"); size 0 on bad hex.
[[nodiscard]] Key key_from_hex(std::string_view hex);

// USERHASH = SHA-256(username ":" realm) (§14.4).
[[nodiscard]] Sha256 userhash(std::string_view username, std::string_view realm);

[[nodiscard]] Sha1 hmac_sha1(Bytes key, std::span<const Bytes> parts);
[[nodiscard]] Sha256 hmac_sha256(Bytes key, std::span<const Bytes> parts);
[[nodiscard]] Sha256 sha256(Bytes data);

// Verify the integrity attributes of a parsed message. False when the
// attribute is absent or does not match, and for an empty key (an invalid
// Key; anyone can compute an HMAC under the empty key).
[[nodiscard]] bool check_integrity(const stun::MessageView& m, Bytes key);
[[nodiscard]] bool check_integrity_sha256(const stun::MessageView& m, Bytes key);

// Append the integrity attributes to a message under construction (before
// any FINGERPRINT).
void add_integrity(stun::MessageBuilder& b, Bytes key);
void add_integrity_sha256(stun::MessageBuilder& b, Bytes key);

// Constant-time equality.
[[nodiscard]] bool equal_ct(Bytes a, Bytes b) noexcept;

// Random bytes from the OpenSSL DRBG (transaction ids, nonce salts, tokens).
void random_bytes(MutableBytes out);

}  // namespace turn::crypto
