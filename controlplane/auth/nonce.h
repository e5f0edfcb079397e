// SPDX-License-Identifier: Apache-2.0
// Stateless nonces (RFC 8489 §9.2.2 leaves the format to the server): the
// expiry time and an HMAC-SHA256 over expiry, realm and client IP under a
// server secret. Any control-plane instance that shares the secret can check
// a nonce another issued; no table of nonces is kept.
//
// Thread-safe: immutable after construction.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/net/address.h"

namespace turn::cp {

enum class NonceCheck { Valid, Stale, Forged };

// RFC 8489 §9.2: a nonce that starts with the cookie "obMatJos2" followed by
// the base64 Security Feature Set tells RFC 8489 clients which features the
// server supports. dpturn offers "password algorithms" (bit 0, the most
// significant of the 24 bits) and "username anonymity" (bit 1, USERHASH,
// §14.4): 0xC00000 = "wAAA".
inline constexpr std::string_view kNonceCookie = "obMatJos2wAAA";

class NonceIssuer {
 public:
  NonceIssuer(std::string secret, uint32_t lifetime_s);

  [[nodiscard]] std::string issue(std::string_view realm, const IpAddress& client, uint64_t now_s) const;
  [[nodiscard]] NonceCheck check(std::string_view nonce, std::string_view realm, const IpAddress& client,
                                 uint64_t now_s) const;

 private:
  [[nodiscard]] std::string tag(uint32_t expiry, std::string_view realm, const IpAddress& client) const;
  std::string secret_;
  uint32_t lifetime_s_;
};

}  // namespace turn::cp
