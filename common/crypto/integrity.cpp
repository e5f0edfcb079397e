// SPDX-License-Identifier: Apache-2.0
// HMAC and digests for STUN integrity, over OpenSSL 3's EVP interfaces.
#include "common/crypto/integrity.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cstring>
#include <stdexcept>

namespace turn::crypto {

namespace {

// Fetched once: EVP_MAC_fetch/EVP_MD_fetch are not cheap.
EVP_MAC* hmac_algorithm() {
  static EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  if (mac == nullptr) throw std::runtime_error("OpenSSL: HMAC not available");
  return mac;
}
const EVP_MD* digest(const char* name) {
  const EVP_MD* md = EVP_get_digestbyname(name);
  if (md == nullptr) throw std::runtime_error(std::string("OpenSSL: digest not available: ") + name);
  return md;
}

// One HMAC context per thread and digest, made once with its digest set
// (a fresh EVP_MAC_CTX per call, with the digest looked up by name in
// EVP_MAC_init, cost more than the HMAC itself over a STUN message), and
// keyed again only when the key changes: the same key as the last call (a
// client's request and the response signed with its key, a client's next
// request) re-arms the context with EVP_MAC_init(ctx, NULL, ...), which for
// HMAC keeps the key and its precomputed inner/outer pads (OpenSSL 3
// providers/implementations/macs/hmac_prov.c, hmac_init). thread_local:
// an EVP_MAC_CTX must not be shared between threads, and turn-control runs
// several relay threads plus the admin API's (its probes sign requests).
class HmacContext {
 public:
  explicit HmacContext(const char* md_name) : ctx_(EVP_MAC_CTX_new(hmac_algorithm())) {
    if (ctx_ == nullptr) throw std::runtime_error("OpenSSL: EVP_MAC_CTX_new failed");
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>(md_name), 0),
                           OSSL_PARAM_construct_end()};
    if (EVP_MAC_CTX_set_params(ctx_, params) != 1) {
      EVP_MAC_CTX_free(ctx_);
      throw std::runtime_error(std::string("OpenSSL: HMAC-") + md_name + " not available");
    }
  }
  ~HmacContext() {
    EVP_MAC_CTX_free(ctx_);
    OPENSSL_cleanse(key_.data(), key_.size());
  }
  HmacContext(const HmacContext&) = delete;
  HmacContext& operator=(const HmacContext&) = delete;

  template <size_t N>
  std::array<uint8_t, N> mac(Bytes key, std::span<const Bytes> parts) {
    std::array<uint8_t, N> out{};
    bool same_key = keyed_ && key.size() == key_size_ && CRYPTO_memcmp(key.data(), key_.data(), key.size()) == 0;
    bool good;
    if (same_key) {
      good = EVP_MAC_init(ctx_, nullptr, 0, nullptr) == 1;
    } else {
      keyed_ = false;
      // An empty key is legal HMAC; OpenSSL wants a non-null pointer for it.
      static const uint8_t kEmpty = 0;
      good = EVP_MAC_init(ctx_, key.empty() ? &kEmpty : key.data(), key.size(), nullptr) == 1;
      if (good && key.size() <= key_.size()) {  // longer keys (not a Key) are not kept: keyed each time
        if (!key.empty()) std::memcpy(key_.data(), key.data(), key.size());  // an empty span's data() may be null
        key_size_ = key.size();
        keyed_ = true;
      }
    }
    for (Bytes part : parts) good = good && EVP_MAC_update(ctx_, part.data(), part.size()) == 1;
    size_t len = 0;
    good = good && EVP_MAC_final(ctx_, out.data(), &len, out.size()) == 1 && len == N;
    if (!good) {
      keyed_ = false;  // key again next time
      throw std::runtime_error("OpenSSL: HMAC failed");
    }
    return out;
  }

 private:
  EVP_MAC_CTX* ctx_;
  std::array<uint8_t, 64> key_{};  // the key ctx_ holds (a Key's largest)
  size_t key_size_ = 0;
  bool keyed_ = false;
};

void digest_into(const char* name, std::span<const Bytes> parts, uint8_t* out, unsigned expect) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (ctx == nullptr) throw std::runtime_error("OpenSSL: EVP_MD_CTX_new failed");
  bool good = EVP_DigestInit_ex(ctx, digest(name), nullptr) == 1;
  for (Bytes part : parts) good = good && EVP_DigestUpdate(ctx, part.data(), part.size()) == 1;
  unsigned len = 0;
  good = good && EVP_DigestFinal_ex(ctx, out, &len) == 1 && len == expect;
  EVP_MD_CTX_free(ctx);
  if (!good) throw std::runtime_error(std::string("OpenSSL: digest failed: ") + name);
}

Bytes as_bytes(std::string_view s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }

// The HMAC input for an integrity attribute at value offset `value_at`: the
// header with its length field rewritten to end at this attribute, then
// everything up to the attribute's header (RFC 8489 §14.5).
struct IntegrityInput {
  uint8_t header[stun::kHeaderSize];
  Bytes body;
};
IntegrityInput integrity_input(Bytes msg, size_t value_at, size_t value_len) {
  IntegrityInput in{};
  std::memcpy(in.header, msg.data(), stun::kHeaderSize);
  store_be16(in.header + 2, static_cast<uint16_t>(value_at + value_len - stun::kHeaderSize));
  in.body = msg.subspan(stun::kHeaderSize, value_at - 4 - stun::kHeaderSize);
  return in;
}

}  // namespace

Key long_term_key(stun::PasswordAlgorithm alg, std::string_view username, std::string_view realm,
                  std::string_view password) {
  static constexpr uint8_t kColon = ':';
  const Bytes parts[] = {as_bytes(username), {&kColon, 1}, as_bytes(realm), {&kColon, 1}, as_bytes(password)};
  Key k;
  if (alg == stun::PasswordAlgorithm::Sha256) {
    digest_into("SHA256", parts, k.bytes.data(), 32);
    k.size = 32;
  } else {
    digest_into("MD5", parts, k.bytes.data(), 16);
    k.size = 16;
  }
  return k;
}

Key short_term_key(std::string_view password) {
  Key k;
  // HMAC hashes a key longer than its block size (64 bytes) with its own
  // digest, which differs between SHA-1 and SHA-256, so such a password has
  // no single Key; it is left empty (invalid) and verifies nothing.
  if (password.size() <= k.bytes.size()) {
    std::memcpy(k.bytes.data(), password.data(), password.size());
    k.size = static_cast<uint8_t>(password.size());
  }
  return k;
}

Key key_from_hex(std::string_view hex) {
  Key k;
  if (hex.starts_with("0x") || hex.starts_with("0X")) hex.remove_prefix(2);
  if ((hex.size() != 32 && hex.size() != 64)) return k;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < hex.size() / 2; ++i) {
    int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return Key{};
    k.bytes[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  k.size = static_cast<uint8_t>(hex.size() / 2);
  return k;
}

Sha256 userhash(std::string_view username, std::string_view realm) {
  static constexpr uint8_t kColon = ':';
  const Bytes parts[] = {as_bytes(username), {&kColon, 1}, as_bytes(realm)};
  Sha256 out{};
  digest_into("SHA256", parts, out.data(), 32);
  return out;
}

Sha1 hmac_sha1(Bytes key, std::span<const Bytes> parts) {
  thread_local HmacContext ctx("SHA1");
  return ctx.mac<20>(key, parts);
}
Sha256 hmac_sha256(Bytes key, std::span<const Bytes> parts) {
  thread_local HmacContext ctx("SHA256");
  return ctx.mac<32>(key, parts);
}
Sha256 sha256(Bytes data) {
  Sha256 out{};
  digest_into("SHA256", std::span<const Bytes>{&data, 1}, out.data(), 32);
  return out;
}

bool equal_ct(Bytes a, Bytes b) noexcept {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

bool check_integrity(const stun::MessageView& m, Bytes key) {
  const stun::AttributeRef* mi = m.integrity();
  if (mi == nullptr || key.empty()) return false;
  IntegrityInput in = integrity_input(m.bytes(), mi->offset, mi->length);
  const Bytes parts[] = {{in.header, stun::kHeaderSize}, in.body};
  Sha1 mac = hmac_sha1(key, parts);
  return equal_ct(Bytes{mac}, m.value(*mi));
}

bool check_integrity_sha256(const stun::MessageView& m, Bytes key) {
  const stun::AttributeRef* mi = m.integrity_sha256();
  if (mi == nullptr || key.empty()) return false;
  IntegrityInput in = integrity_input(m.bytes(), mi->offset, mi->length);
  const Bytes parts[] = {{in.header, stun::kHeaderSize}, in.body};
  Sha256 mac = hmac_sha256(key, parts);
  // The attribute may carry a truncated HMAC (16..32 bytes, §14.6).
  return equal_ct(Bytes{mac}.first(mi->length), m.value(*mi));
}

void add_integrity(stun::MessageBuilder& b, Bytes key) {
  size_t before = b.size();
  uint8_t* p = b.reserve(static_cast<uint16_t>(stun::Attr::MessageIntegrity), 20);
  if (p == nullptr) return;
  // The header length now already counts this attribute, as §14.5 requires.
  const Bytes parts[] = {{b.data(), before}};
  Sha1 mac = hmac_sha1(key, parts);
  std::memcpy(p, mac.data(), mac.size());
}

void add_integrity_sha256(stun::MessageBuilder& b, Bytes key) {
  size_t before = b.size();
  uint8_t* p = b.reserve(static_cast<uint16_t>(stun::Attr::MessageIntegritySha256), 32);
  if (p == nullptr) return;
  const Bytes parts[] = {{b.data(), before}};
  Sha256 mac = hmac_sha256(key, parts);
  std::memcpy(p, mac.data(), mac.size());
}

void random_bytes(MutableBytes out) {
  if (RAND_bytes(out.data(), static_cast<int>(out.size())) != 1) throw std::runtime_error("OpenSSL: RAND_bytes failed");
}

}  // namespace turn::crypto
