// SPDX-License-Identifier: Apache-2.0
// Nonce format: the RFC 8489 cookie "obMatJos2wAAA", then 8 hex digits of the expiry (Unix seconds) followed by 24 hex
// digits of HMAC-SHA256(secret, expiry || realm || client IP), truncated to
// 96 bits. 32 characters, all within RFC 8489's qdtext.
#include "controlplane/auth/nonce.h"

#include <charconv>

#include "common/crypto/integrity.h"
#include "common/util/text.h"

namespace turn::cp {

NonceIssuer::NonceIssuer(std::string secret, uint32_t lifetime_s)
    : secret_(std::move(secret)), lifetime_s_(lifetime_s) {}

std::string NonceIssuer::tag(uint32_t expiry, std::string_view realm, const IpAddress& client) const {
  uint8_t e[4];
  store_be32(e, expiry);
  const Bytes parts[] = {{e, 4},
                         {reinterpret_cast<const uint8_t*>(realm.data()), realm.size()},
                         {client.bytes.data(), client.bytes.size()}};
  auto mac = crypto::hmac_sha256({reinterpret_cast<const uint8_t*>(secret_.data()), secret_.size()}, parts);
  return to_hex(mac.data(), 12);
}

std::string NonceIssuer::issue(std::string_view realm, const IpAddress& client, uint64_t now_s) const {
  auto expiry = static_cast<uint32_t>(now_s + lifetime_s_);
  uint8_t e[4];
  store_be32(e, expiry);
  return std::string(kNonceCookie) + to_hex(e, 4) + tag(expiry, realm, client);
}

NonceCheck NonceIssuer::check(std::string_view nonce, std::string_view realm, const IpAddress& client,
                              uint64_t now_s) const {
  if (!nonce.starts_with(kNonceCookie)) return NonceCheck::Forged;
  nonce.remove_prefix(kNonceCookie.size());
  if (nonce.size() != 32) return NonceCheck::Forged;
  uint32_t expiry = 0;
  auto [p, ec] = std::from_chars(nonce.data(), nonce.data() + 8, expiry, 16);
  if (ec != std::errc{} || p != nonce.data() + 8) return NonceCheck::Forged;
  std::string want = tag(expiry, realm, client);
  if (!crypto::equal_ct({reinterpret_cast<const uint8_t*>(want.data()), want.size()},
                        {reinterpret_cast<const uint8_t*>(nonce.data() + 8), 24}))
    return NonceCheck::Forged;
  return expiry > now_s ? NonceCheck::Valid : NonceCheck::Stale;
}

}  // namespace turn::cp
