// SPDX-License-Identifier: Apache-2.0
// OpenSSL server context.
#include "controlplane/net/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <stdexcept>

namespace turn::cp {

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

std::shared_ptr<SSL_CTX> TlsContext::build(const std::string& cert, const std::string& pkey) {
  std::shared_ptr<SSL_CTX> ctx(SSL_CTX_new(TLS_server_method()), SSL_CTX_free);
  if (!ctx) throw std::runtime_error("TLS: SSL_CTX_new: " + openssl_error());
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  // TLS 1.2: ECDHE with AEAD only. TLS 1.3 suites are all AEAD.
  SSL_CTX_set_cipher_list(ctx.get(),
                          "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                          "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                          "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305");
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), cert.c_str()) != 1)
    throw std::runtime_error("TLS: cert=" + cert + ": " + openssl_error());
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), pkey.c_str(), SSL_FILETYPE_PEM) != 1)
    throw std::runtime_error("TLS: pkey=" + pkey + ": " + openssl_error());
  if (SSL_CTX_check_private_key(ctx.get()) != 1)
    throw std::runtime_error("TLS: pkey=" + pkey + " does not match cert=" + cert);
  return ctx;
}

TlsContext::TlsContext(std::string cert, std::string pkey)
    : cert_(std::move(cert)), pkey_(std::move(pkey)), ctx_(build(cert_, pkey_)) {}

void TlsContext::reload() {
  auto fresh = build(cert_, pkey_);
  std::lock_guard lock(mutex_);
  ctx_ = std::move(fresh);
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
