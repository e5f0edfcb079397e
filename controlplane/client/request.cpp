// SPDX-License-Identifier: Apache-2.0
// Request building and signing (see request.h).
#include "controlplane/client/request.h"

namespace turn::cp {

crypto::Key Credentials::key(stun::PasswordAlgorithm alg) const {
  return crypto::long_term_key(alg, username, realm, password);
}

bool signs(const Signing& s, const Credentials& c) noexcept {
  return s.integrity != Integrity::None && !(s.unsigned_until_challenged && c.nonce.empty());
}

std::vector<uint8_t> build_request(stun::Method m, const Attrs& attrs, const Credentials& c, const Signing& s,
                                   Bytes txid) {
  std::vector<uint8_t> id = txid.empty() ? random_txid() : std::vector<uint8_t>(txid.begin(), txid.end());
  std::vector<uint8_t> buf(4096);
  stun::MessageBuilder b(MutableBytes{buf.data(), buf.size()}, m, stun::Class::Request, Bytes{id.data(), id.size()});
  if (attrs) attrs(b);
  if (signs(s, c)) {
    const std::string& realm = s.realm_override ? *s.realm_override : c.realm;
    if (s.username && s.userhash) {
      auto h = crypto::userhash(c.username, realm);
      b.add(stun::Attr::Userhash, Bytes{h.data(), h.size()});
    } else if (s.username) {
      b.add_text(stun::Attr::Username, c.username);
    }
    if (s.realm) b.add_text(stun::Attr::Realm, realm);
    if (s.nonce) b.add_text(stun::Attr::Nonce, s.nonce_override ? *s.nonce_override : c.nonce);
    // RFC 8489 §9.2.4: PASSWORD-ALGORITHM names the key's algorithm, and
    // PASSWORD-ALGORITHMS repeats the server's list unchanged (downgrade check).
    if (s.send_algorithm.value_or(s.algorithm != stun::PasswordAlgorithm::Md5)) {
      if (!s.omit_algorithms) {
        if (s.algorithms_override)
          b.add_password_algorithms(*s.algorithms_override);
        else if (!c.offered_algorithms.empty())
          b.add(stun::Attr::PasswordAlgorithms, Bytes{c.offered_algorithms.data(), c.offered_algorithms.size()});
      }
      b.add_password_algorithm(s.algorithm);
    }
    crypto::Key k = c.key(s.algorithm);
    if (s.integrity == Integrity::Sha1)
      crypto::add_integrity(b, k.view());
    else
      crypto::add_integrity_sha256(b, k.view());
  }
  if (s.fingerprint) b.add_fingerprint();
  Bytes out = b.finish();
  return {out.begin(), out.end()};
}

std::vector<uint8_t> random_txid() {
  std::vector<uint8_t> t(stun::kTransactionIdSize);
  crypto::random_bytes(MutableBytes{t.data(), t.size()});
  return t;
}

}  // namespace turn::cp
