// SPDX-License-Identifier: Apache-2.0
// TlsContext: the server's OpenSSL context for TURN over TLS (RFC 8656
// §3.1, port 5349). TLS 1.2 and 1.3 only, forward-secret AEAD ciphers.
// reload() re-reads cert and key (SIGHUP) without dropping connections:
// new connections get the new context. Thread-safe.
#pragma once

#include <memory>
#include <mutex>
#include <string>

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

namespace turn::cp {

class TlsContext {
public:
  TlsContext(std::string cert, std::string pkey);  // throws with the OpenSSL reason
  void reload();                                    // throws; keeps the old context on failure
  [[nodiscard]] SSL* new_session() const;           // nullptr on failure

private:
  static std::shared_ptr<SSL_CTX> build(const std::string& cert, const std::string& pkey);
  std::string cert_, pkey_;
  mutable std::mutex mutex_;
  std::shared_ptr<SSL_CTX> ctx_;
};

std::string openssl_error();

}  // namespace turn::cp
