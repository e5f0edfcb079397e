// SPDX-License-Identifier: Apache-2.0
// TURN/STUN requests as bytes, for TurnSession (session.h) and for callers
// that want the bytes themselves: the attributes a caller adds, then the
// long-term credential attributes (RFC 8489 §9.2: USERNAME or USERHASH,
// REALM, NONCE, PASSWORD-ALGORITHM(S)), MESSAGE-INTEGRITY or
// MESSAGE-INTEGRITY-SHA256 and FINGERPRINT, each as Signing chooses. A
// choice may break a rule on purpose (an omitted or foreign NONCE, no
// USERNAME): the server's answer to that is what a test checks.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/crypto/integrity.h"
#include "common/stun/builder.h"
#include "common/stun/constants.h"
#include "common/util/bytes.h"

namespace turn::cp {

using Attrs = std::function<void(stun::MessageBuilder&)>;

enum class Integrity : uint8_t { None, Sha1, Sha256 };

// How a request is signed. The defaults: USERNAME, REALM and NONCE, the MD5
// key, MESSAGE-INTEGRITY, no FINGERPRINT.
struct Signing {
  Integrity integrity = Integrity::Sha1;  // None: no credential attributes at all
  // RFC 8489 §9.2.3.1: a client's first request carries no credentials; it
  // signs once a 401 has given it a REALM and NONCE. false: sign with
  // whatever nonce is known, even none.
  bool unsigned_until_challenged = false;
  bool username = true, realm = true, nonce = true;
  std::optional<std::string> nonce_override;
  std::optional<std::string> realm_override;
  // The key's algorithm. When PASSWORD-ALGORITHM is sent (by default only
  // for SHA-256), PASSWORD-ALGORITHMS goes with it: the list the server
  // offered in its last 401/438 (RFC 8489 §9.2.4), unless overridden.
  stun::PasswordAlgorithm algorithm = stun::PasswordAlgorithm::Md5;
  std::optional<bool> send_algorithm;
  std::optional<std::vector<stun::PasswordAlgorithm>> algorithms_override;
  bool omit_algorithms = false;
  bool fingerprint = false;
  // RFC 8489 §14.4: USERHASH (SHA-256 of "username:realm") instead of USERNAME.
  bool userhash = false;
  // How often TurnSession::request() answers a challenge (401 or 438 with
  // REALM and NONCE) by sending the request again, signed with them.
  int challenge_retries = 1;
};

// Long-term credentials and what the server's last challenge said.
struct Credentials {
  std::string username, password, realm;
  std::string nonce;
  std::vector<uint8_t> offered_algorithms;  // PASSWORD-ALGORITHMS value as received

  [[nodiscard]] crypto::Key key(stun::PasswordAlgorithm alg = stun::PasswordAlgorithm::Md5) const;
};

// Whether a request built with `s` and `c` carries credentials.
[[nodiscard]] bool signs(const Signing& s, const Credentials& c) noexcept;

// A request of method `m`: `attrs`, then the credentials as `s` says. txid:
// 12 bytes, random when empty. Empty when the message does not fit 4096
// bytes.
[[nodiscard]] std::vector<uint8_t> build_request(stun::Method m, const Attrs& attrs, const Credentials& c,
                                                 const Signing& s, Bytes txid = {});

[[nodiscard]] std::vector<uint8_t> random_txid();

}  // namespace turn::cp
