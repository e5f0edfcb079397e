// SPDX-License-Identifier: Apache-2.0
// Where long-term keys come from (RFC 8489 §9.2): static users from the
// config, the local credential database (admin API, persisted through the
// user store), coturn's Redis user database, and TURN REST API ephemeral
// credentials (username "expiry:user", password base64(HMAC-SHA1(secret,
// username)), draft-uberti-behave-turn-rest / coturn use-auth-secret).
//
// Thread-safe: lookups take a shared lock; updates (admin API, Redis
// refresh) an exclusive one. Not on the relay path: only requests that
// carry MESSAGE-INTEGRITY look keys up.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "common/crypto/integrity.h"

namespace turn::cp {

struct Config;

struct Credential {
  crypto::Key md5_key;   // always present
  std::string password;  // when known: allows SHA-256 keys (PASSWORD-ALGORITHM)
  std::string source;    // "config", "local", "redis", "rest"
};

class CredentialStore {
 public:
  explicit CredentialStore(const Config& cfg);

  // Candidate credentials for this username in this realm: one for a known
  // user, one per shared secret for a REST username that has not expired.
  // now_s decides REST expiry.
  [[nodiscard]] std::vector<Credential> lookup(const std::string& username, const std::string& realm,
                                               uint64_t now_s) const;
  // RFC 8489 §14.4 USERHASH: the username whose SHA-256(username ":" realm)
  // is `hash`, among the users this store knows by name (config, local,
  // Redis). REST usernames cannot be found this way (they are not listed).
  [[nodiscard]] std::optional<std::string> username_for_hash(const crypto::Sha256& hash) const;

  // True when `username` is a REST username whose timestamp has passed
  // (so the answer is 401 and the log says why).
  [[nodiscard]] bool rest_expired(const std::string& username, uint64_t now_s) const;

  // Local credential database (admin API). add() replaces a user's password.
  void add_local(const std::string& name, const std::string& password);
  bool remove_local(const std::string& name);
  [[nodiscard]] std::vector<std::string> local_names() const;
  [[nodiscard]] std::vector<std::string> all_names() const;  // config + local + redis

  // Replaces the Redis-sourced users and secrets (called by the user-db poller).
  void set_redis(std::map<std::string, crypto::Key> users, std::vector<std::string> secrets);

  // The REST password for a username under a secret (for tests and turnctl).
  static std::string rest_password(const std::string& secret, const std::string& username);

 private:
  std::string realm_;
  bool use_auth_secret_;
  bool lt_cred_mech_;
  mutable std::shared_mutex mutex_;
  std::map<std::string, Credential> config_users_;
  std::map<std::string, Credential> local_users_;
  std::map<std::string, crypto::Key> redis_users_;
  std::vector<std::string> config_secrets_;
  std::vector<std::string> redis_secrets_;
  // USERHASH -> username, one index per source (the Redis one is rebuilt
  // outside the lock on every reload).
  using HashIndex = std::map<crypto::Sha256, std::string>;
  HashIndex config_hashes_, local_hashes_, redis_hashes_;
};

std::string base64_encode(Bytes data);

}  // namespace turn::cp
