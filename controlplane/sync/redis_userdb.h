// SPDX-License-Identifier: Apache-2.0
// RedisUserDb: coturn's Redis user database (schema.userdb.redis):
// "turn/realm/<realm>/user/<name>/key" = hex MD5(name:realm:password) and
// the set "turn/realm/<realm>/secret" of REST secrets. A poller thread
// reloads them into the CredentialStore every few seconds, so lookups never
// wait on Redis. Users added through the admin API are written here too.
#pragma once

#include <atomic>
#include <string>

#include "common/util/periodic_thread.h"
#include "controlplane/config/config.h"

namespace turn::cp {

class CredentialStore;

class RedisUserDb {
 public:
  RedisUserDb(const Config& cfg, CredentialStore& store);
  ~RedisUserDb();
  void start();
  void stop();
  // Writes/deletes a user's key (admin API). Throws redis::Error.
  void put_user(const std::string& name, const std::string& md5_hex);
  void delete_user(const std::string& name);
  [[nodiscard]] bool healthy() const { return healthy_.load(); }

 private:
  void reload();
  const Config& cfg_;
  CredentialStore& store_;
  PeriodicThread thread_;
  std::atomic<bool> healthy_{false};
};

}  // namespace turn::cp
