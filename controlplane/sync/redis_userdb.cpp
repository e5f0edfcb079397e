// SPDX-License-Identifier: Apache-2.0
// coturn-compatible Redis user database.
#include "controlplane/sync/redis_userdb.h"

#include "common/crypto/integrity.h"
#include "controlplane/auth/credentials.h"
#include "common/log/log.h"
#include "common/redis/client.h"

namespace turn::cp {

RedisUserDb::RedisUserDb(const Config& cfg, CredentialStore& store) : cfg_(cfg), store_(store) {}
RedisUserDb::~RedisUserDb() { stop(); }

void RedisUserDb::reload() {
  redis::Client c(cfg_.redis_userdb);
  c.connect();
  std::string prefix = "turn/realm/" + cfg_.realm + "/user/";
  std::map<std::string, crypto::Key> users;
  std::string cursor = "0";
  do {
    auto r = c.command({"SCAN", cursor, "MATCH", prefix + "*/key", "COUNT", "1000"});
    if (r.elements.size() != 2) break;
    cursor = r.elements[0].str;
    for (const auto& k : r.elements[1].elements) {
      std::string name = k.str.substr(prefix.size(), k.str.size() - prefix.size() - 4);
      auto v = c.command({"GET", k.str});
      auto key = crypto::key_from_hex(v.str);
      if (key.size == 16) users[name] = key;
    }
  } while (cursor != "0");
  std::vector<std::string> secrets;
  for (const auto& s : c.command({"SMEMBERS", "turn/realm/" + cfg_.realm + "/secret"}).elements)
    secrets.push_back(s.str);
  store_.set_redis(std::move(users), std::move(secrets));
}

void RedisUserDb::start() {
  thread_.start(std::chrono::seconds(3), [this] {
    try {
      reload();
      if (!healthy_.exchange(true)) log_info("userdb: loaded users from redis " + cfg_.redis_userdb.host);
    } catch (const std::exception& e) {
      if (healthy_.exchange(false)) log_warn(std::string("userdb: ") + e.what() + " (keeping the last users)");
    }
  });
}

void RedisUserDb::stop() { thread_.stop(); }

void RedisUserDb::put_user(const std::string& name, const std::string& md5_hex) {
  redis::Client c(cfg_.redis_userdb);
  c.connect();
  c.command({"SET", "turn/realm/" + cfg_.realm + "/user/" + name + "/key", md5_hex});
}

void RedisUserDb::delete_user(const std::string& name) {
  redis::Client c(cfg_.redis_userdb);
  c.connect();
  c.command({"DEL", "turn/realm/" + cfg_.realm + "/user/" + name + "/key"});
}

}  // namespace turn::cp
