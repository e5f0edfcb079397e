// SPDX-License-Identifier: Apache-2.0
// Credential lookup across config, local database, Redis and REST secrets.
#include "controlplane/auth/credentials.h"

#include <charconv>
#include <mutex>

#include "controlplane/config/config.h"

namespace turn::cp {

std::string base64_encode(Bytes data) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < data.size(); i += 3) {
    uint32_t v = (uint32_t{data[i]} << 16) | (uint32_t{data[i + 1]} << 8) | data[i + 2];
    for (int s = 18; s >= 0; s -= 6) out.push_back(kAlphabet[(v >> s) & 63]);
  }
  if (i < data.size()) {
    uint32_t v = uint32_t{data[i]} << 16;
    if (i + 1 < data.size()) v |= uint32_t{data[i + 1]} << 8;
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(i + 1 < data.size() ? kAlphabet[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

namespace {
Credential from_password(const std::string& name, const std::string& realm, const std::string& password,
                         const char* source) {
  Credential c;
  c.md5_key = crypto::long_term_key(stun::PasswordAlgorithm::Md5, name, realm, password);
  c.password = password;
  c.source = source;
  return c;
}

// REST usernames are "<unix expiry>" or "<unix expiry>:<user>" (coturn also
// accepts the user first with a separator; dpturn follows the common form).
std::optional<uint64_t> rest_expiry(const std::string& username) {
  auto colon = username.find(':');
  std::string ts = username.substr(0, colon);
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(ts.data(), ts.data() + ts.size(), v);
  if (ts.empty() || ec != std::errc{} || p != ts.data() + ts.size()) return std::nullopt;
  return v;
}
}  // namespace

CredentialStore::CredentialStore(const Config& cfg)
    : realm_(cfg.realm), use_auth_secret_(cfg.use_auth_secret), lt_cred_mech_(cfg.lt_cred_mech) {
  for (const auto& u : cfg.users) {
    if (!u.key_hex.empty()) {
      Credential c;
      c.md5_key = crypto::key_from_hex(u.key_hex);
      c.source = "config";
      if (c.md5_key.size != 16) throw ConfigError("user=" + u.name + ":<key>: key must be 0x + 32 hex digits");
      config_users_[u.name] = c;
    } else {
      config_users_[u.name] = from_password(u.name, realm_, u.password, "config");
    }
  }
  config_secrets_ = cfg.static_auth_secrets;
  for (const auto& [name, c] : config_users_) config_hashes_[crypto::userhash(name, realm_)] = name;
}

std::optional<std::string> CredentialStore::username_for_hash(const crypto::Sha256& hash) const {
  if (!lt_cred_mech_ && use_auth_secret_) return std::nullopt;  // REST only: nobody is listed
  std::shared_lock lock(mutex_);
  for (const HashIndex* index : {&local_hashes_, &config_hashes_, &redis_hashes_})
    if (auto it = index->find(hash); it != index->end()) return it->second;
  return std::nullopt;
}

std::string CredentialStore::rest_password(const std::string& secret, const std::string& username) {
  const Bytes parts[] = {{reinterpret_cast<const uint8_t*>(username.data()), username.size()}};
  auto mac = crypto::hmac_sha1({reinterpret_cast<const uint8_t*>(secret.data()), secret.size()}, parts);
  return base64_encode(mac);
}

bool CredentialStore::rest_expired(const std::string& username, uint64_t now_s) const {
  if (!use_auth_secret_) return false;
  auto e = rest_expiry(username);
  return e && *e <= now_s;
}

std::vector<Credential> CredentialStore::lookup(const std::string& username, const std::string& realm,
                                                uint64_t now_s) const {
  std::vector<Credential> out;
  if (realm != realm_) return out;
  std::shared_lock lock(mutex_);
  if (use_auth_secret_) {
    auto e = rest_expiry(username);
    if (e && *e > now_s) {
      auto add_secret = [&](const std::string& secret) {
        out.push_back(from_password(username, realm, rest_password(secret, username), "rest"));
      };
      for (const auto& s : config_secrets_) add_secret(s);
      for (const auto& s : redis_secrets_) add_secret(s);
    }
  }
  if (lt_cred_mech_ || !use_auth_secret_) {
    if (auto it = local_users_.find(username); it != local_users_.end())
      out.push_back(it->second);
    else if (auto it2 = config_users_.find(username); it2 != config_users_.end())
      out.push_back(it2->second);
    else if (auto it3 = redis_users_.find(username); it3 != redis_users_.end()) {
      Credential c;
      c.md5_key = it3->second;
      c.source = "redis";
      out.push_back(c);
    }
  }
  return out;
}

void CredentialStore::add_local(const std::string& name, const std::string& password) {
  auto c = from_password(name, realm_, password, "local");
  auto h = crypto::userhash(name, realm_);
  std::unique_lock lock(mutex_);
  local_users_[name] = std::move(c);
  local_hashes_[h] = name;
}

bool CredentialStore::remove_local(const std::string& name) {
  auto h = crypto::userhash(name, realm_);
  std::unique_lock lock(mutex_);
  local_hashes_.erase(h);
  return local_users_.erase(name) > 0;
}

std::vector<std::string> CredentialStore::local_names() const {
  std::shared_lock lock(mutex_);
  std::vector<std::string> names;
  for (const auto& [n, c] : local_users_) names.push_back(n);
  return names;
}

std::vector<std::string> CredentialStore::all_names() const {
  std::shared_lock lock(mutex_);
  std::vector<std::string> names;
  for (const auto& [n, c] : config_users_) names.push_back(n);
  for (const auto& [n, c] : local_users_) names.push_back(n);
  for (const auto& [n, c] : redis_users_) names.push_back(n);
  return names;
}

void CredentialStore::set_redis(std::map<std::string, crypto::Key> users, std::vector<std::string> secrets) {
  HashIndex hashes;
  for (const auto& [name, key] : users) hashes[crypto::userhash(name, realm_)] = name;
  std::unique_lock lock(mutex_);
  redis_users_ = std::move(users);
  redis_secrets_ = std::move(secrets);
  redis_hashes_ = std::move(hashes);
}

}  // namespace turn::cp
