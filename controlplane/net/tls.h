// SPDX-License-Identifier: Apache-2.0
// TlsContext: the server's OpenSSL context for TURN over TLS (RFC 8656
// §3.1, port 5349). TLS 1.2 and 1.3 only, forward-secret AEAD ciphers: an
// operator's cipher-list is honoured within that set (choose_ciphers).
// reload() re-reads cert and key (SIGHUP) without dropping connections:
// new connections get the new context. Thread-safe.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

namespace turn::cp {

struct TlsSettings {
  std::string cert, pkey;
  std::string pkey_password;  // pkey-pwd: for an encrypted PEM key
  std::string cipher_list;    // OpenSSL form, already within the safe set; empty = all safe ones
  std::string curves;         // ec-curve-name; empty = OpenSSL's default groups
};

class TlsContext {
 public:
  explicit TlsContext(TlsSettings settings);  // throws with the OpenSSL reason
  void reload();                              // throws; keeps the old context on failure
  [[nodiscard]] SSL* new_session() const;     // nullptr on failure
  // DTLS 1.2 (RFC 7350) with the same certificate and cipher policy, and
  // stateless cookies (RFC 6347 §4.2.1: no state and no answer larger than
  // the ClientHello before the client proves its address). Server side,
  // no BIO yet.
  [[nodiscard]] SSL* new_dtls_session() const;

 private:
  static std::shared_ptr<SSL_CTX> build(const TlsSettings& s, bool dtls);
  TlsSettings settings_;
  mutable std::mutex mutex_;
  std::shared_ptr<SSL_CTX> ctx_;
  std::shared_ptr<SSL_CTX> dtls_ctx_;
};

// The TLS 1.2 cipher suites dpturn offers at most: ECDHE key exchange with
// an AEAD cipher (TLS 1.3 suites are all of that kind and always on).
extern const char* const kSafeTls12Ciphers;

// An operator's cipher-list (coturn's key; OpenSSL syntax such as
// "DEFAULT" or "ECDHE-RSA-AES256-GCM-SHA384:...") intersected with the safe
// set, in the operator's order.
struct CipherChoice {
  std::string openssl_list;          // what goes to SSL_CTX_set_cipher_list
  std::vector<std::string> kept;     // suites kept
  std::vector<std::string> dropped;  // suites the list named that are not ECDHE+AEAD
};
// Throws std::invalid_argument when OpenSSL matches nothing in `list` or
// nothing safe is left (naming what was dropped).
CipherChoice choose_ciphers(const std::string& list);

// Checks an ec-curve-name value (OpenSSL group names, ":"-separated);
// throws std::invalid_argument naming it when OpenSSL does not know it.
void check_curves(const std::string& curves);

std::string openssl_error();

}  // namespace turn::cp
