// SPDX-License-Identifier: Apache-2.0
// OpenSSL server context and the cipher policy.
#include "controlplane/net/tls.h"

#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include <array>

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace turn::cp {

const char* const kSafeTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

std::string openssl_error() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

namespace {

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  size_t p = 0;
  while (p <= s.size()) {
    size_t e = s.find(':', p);
    if (e == std::string::npos) e = s.size();
    if (e > p) out.push_back(s.substr(p, e - p));
    p = e + 1;
  }
  return out;
}

// The TLS <= 1.2 suites OpenSSL expands `list` to, in preference order
// (TLS 1.3 suites are configured apart and are skipped here).
std::vector<std::string> expand(const std::string& list) {
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_server_method()), SSL_CTX_free);
  if (!ctx) throw std::runtime_error("TLS: SSL_CTX_new: " + openssl_error());
  if (SSL_CTX_set_cipher_list(ctx.get(), list.c_str()) != 1) {
    ERR_clear_error();
    return {};
  }
  std::vector<std::string> out;
  STACK_OF(SSL_CIPHER)* ciphers = SSL_CTX_get_ciphers(ctx.get());
  for (int i = 0; i < sk_SSL_CIPHER_num(ciphers); ++i) {
    const SSL_CIPHER* c = sk_SSL_CIPHER_value(ciphers, i);
    if (std::strcmp(SSL_CIPHER_get_version(c), "TLSv1.3") == 0) continue;
    out.emplace_back(SSL_CIPHER_get_name(c));
  }
  return out;
}

// PEM passphrase callback: pkey-pwd, or none (never a prompt on a terminal,
// which OpenSSL's default callback would do for an encrypted key).
int pem_password(char* buf, int size, int, void* userdata) {
  if (!userdata || size <= 0) return 0;
  const auto* pw = static_cast<const std::string*>(userdata);
  int n = static_cast<int>(std::min<size_t>(pw->size(), static_cast<size_t>(size)));
  std::memcpy(buf, pw->data(), static_cast<size_t>(n));
  return n;
}

}  // namespace

CipherChoice choose_ciphers(const std::string& list) {
  auto named = expand(list);
  if (named.empty()) throw std::invalid_argument("OpenSSL matches no TLS 1.2 cipher in '" + list + "'");
  auto safe = split(kSafeTls12Ciphers);
  CipherChoice c;
  for (const auto& n : named) {
    if (std::find(safe.begin(), safe.end(), n) != safe.end())
      c.kept.push_back(n);
    else
      c.dropped.push_back(n);
  }
  auto join = [](const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ":") + x;
    return s;
  };
  if (c.kept.empty())
    throw std::invalid_argument(
        "no cipher left after keeping only ECDHE with AEAD (TLS 1.2; TLS 1.3 stays on); dropped: " + join(c.dropped));
  c.openssl_list = join(c.kept);
  return c;
}

void check_curves(const std::string& curves) {
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_server_method()), SSL_CTX_free);
  if (!ctx || SSL_CTX_set1_groups_list(ctx.get(), curves.c_str()) != 1) {
    ERR_clear_error();
    throw std::invalid_argument("OpenSSL knows no curve (group) '" + curves + "' (e.g. prime256v1, X25519)");
  }
}

namespace {

// DTLS cookies: HMAC-SHA256 over the client's address and port under a
// secret made at start (RFC 6347 §4.2.1). Any thread checks any cookie.
const std::array<uint8_t, 32>& cookie_secret() {
  static const std::array<uint8_t, 32> secret = [] {
    std::array<uint8_t, 32> s{};
    if (RAND_bytes(s.data(), static_cast<int>(s.size())) != 1) throw std::runtime_error("DTLS: no random bytes");
    return s;
  }();
  return secret;
}

bool cookie_for(SSL* ssl, unsigned char* out, unsigned int* len) {
  BIO_ADDR* peer = BIO_ADDR_new();
  if (!peer) return false;
  bool ok = BIO_dgram_get_peer(SSL_get_rbio(ssl), peer) > 0;
  unsigned char addr[16] = {};
  size_t addr_len = 0;
  ok = ok && BIO_ADDR_rawaddress(peer, addr, &addr_len) == 1 && addr_len <= sizeof addr;
  unsigned char msg[20] = {};
  if (ok) {
    std::memcpy(msg, addr, addr_len);
    unsigned short port = BIO_ADDR_rawport(peer);
    std::memcpy(msg + 16, &port, sizeof port);
    msg[18] = static_cast<unsigned char>(BIO_ADDR_family(peer));
  }
  BIO_ADDR_free(peer);
  if (!ok) return false;
  const auto& key = cookie_secret();
  return HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), msg, sizeof msg, out, len) != nullptr;
}

int generate_cookie(SSL* ssl, unsigned char* cookie, unsigned int* len) { return cookie_for(ssl, cookie, len) ? 1 : 0; }

int verify_cookie(SSL* ssl, const unsigned char* cookie, unsigned int len) {
  unsigned char expect[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  return cookie_for(ssl, expect, &n) && n == len && CRYPTO_memcmp(expect, cookie, n) == 0 ? 1 : 0;
}

}  // namespace

std::shared_ptr<SSL_CTX> TlsContext::build(const TlsSettings& s, bool dtls) {
  std::shared_ptr<SSL_CTX> ctx(SSL_CTX_new(dtls ? DTLS_server_method() : TLS_server_method()), SSL_CTX_free);
  if (!ctx) throw std::runtime_error("TLS: SSL_CTX_new: " + openssl_error());
  SSL_CTX_set_min_proto_version(ctx.get(), dtls ? DTLS1_2_VERSION : TLS1_2_VERSION);
  if (dtls) {
    SSL_CTX_set_cookie_generate_cb(ctx.get(), generate_cookie);
    SSL_CTX_set_cookie_verify_cb(ctx.get(), verify_cookie);
    SSL_CTX_set_read_ahead(ctx.get(), 1);
  }
  // TLS 1.2: ECDHE with AEAD only (the operator's cipher-list within that
  // set). TLS 1.3 suites are all AEAD.
  if (SSL_CTX_set_cipher_list(ctx.get(), s.cipher_list.empty() ? kSafeTls12Ciphers : s.cipher_list.c_str()) != 1)
    throw std::runtime_error("TLS: cipher-list: " + openssl_error());
  if (!s.curves.empty() && SSL_CTX_set1_groups_list(ctx.get(), s.curves.c_str()) != 1)
    throw std::runtime_error("TLS: ec-curve-name=" + s.curves + ": " + openssl_error());
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), s.cert.c_str()) != 1)
    throw std::runtime_error("TLS: cert=" + s.cert + ": " + openssl_error());
  // pkey-pwd: the key's passphrase, handed to OpenSSL's PEM reader only for
  // this load (the context keeps no pointer to it afterwards).
  std::string password = s.pkey_password;
  SSL_CTX_set_default_passwd_cb(ctx.get(), pem_password);
  SSL_CTX_set_default_passwd_cb_userdata(ctx.get(), password.empty() ? nullptr : &password);
  int loaded = SSL_CTX_use_PrivateKey_file(ctx.get(), s.pkey.c_str(), SSL_FILETYPE_PEM);
  SSL_CTX_set_default_passwd_cb_userdata(ctx.get(), nullptr);
  if (loaded != 1) throw std::runtime_error("TLS: pkey=" + s.pkey + ": " + openssl_error());
  if (SSL_CTX_check_private_key(ctx.get()) != 1)
    throw std::runtime_error("TLS: pkey=" + s.pkey + " does not match cert=" + s.cert);
  return ctx;
}

TlsContext::TlsContext(TlsSettings settings)
    : settings_(std::move(settings)), ctx_(build(settings_, false)), dtls_ctx_(build(settings_, true)) {}

void TlsContext::reload() {
  auto fresh = build(settings_, false);
  auto fresh_dtls = build(settings_, true);
  std::lock_guard lock(mutex_);
  ctx_ = std::move(fresh);
  dtls_ctx_ = std::move(fresh_dtls);
}

SSL* TlsContext::new_dtls_session() const {
  std::shared_ptr<SSL_CTX> ctx;
  {
    std::lock_guard lock(mutex_);
    ctx = dtls_ctx_;
  }
  SSL* ssl = SSL_new(ctx.get());
  if (ssl) {
    SSL_set_accept_state(ssl);
    SSL_set_options(ssl, SSL_OP_COOKIE_EXCHANGE);
  }
  return ssl;
}

SSL* TlsContext::new_session() const {
  std::shared_ptr<SSL_CTX> ctx;
  {
    std::lock_guard lock(mutex_);
    ctx = ctx_;
  }
  SSL* ssl = SSL_new(ctx.get());  // holds its own reference to ctx
  if (ssl) SSL_set_accept_state(ssl);
  return ssl;
}

}  // namespace turn::cp
