// SPDX-License-Identifier: Apache-2.0
// turnserver.conf parsing (controlplane/config): every key, the line forms
// coturn accepts, and refusals that name file:line, key and value (never a
// secret).
#include "controlplane/config/config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

namespace turn::cp {
namespace {

IpAddress ip(const char* text) { return IpAddress::parse(text).value(); }

Config apply(const std::string& line) {
  Config c;
  apply_config_line(line, "t.conf:1", c);
  return c;
}

// The message of the ConfigError `f` throws; fails the test if none.
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no ConfigError thrown";
  return {};
}

std::string line_error(const std::string& line) {
  return error_of([&] {
    Config c;
    apply_config_line(line, "t.conf:7", c);
  });
}

// A config file in a temporary directory, removed with the object.
class TempFile {
 public:
  explicit TempFile(const std::string& text) {
    std::string tmpl = ::testing::TempDir() + "cptest-XXXXXX";
    std::vector<char> name(tmpl.begin(), tmpl.end());
    name.push_back('\0');
    int fd = mkstemp(name.data());
    if (fd < 0) throw std::runtime_error("mkstemp");
    close(fd);
    path_ = name.data();
    std::ofstream(path_, std::ios::binary) << text;
  }
  ~TempFile() { std::remove(path_.c_str()); }
  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// ---- every key ----------------------------------------------------------------

struct KeyCase {
  std::string line;
  std::function<bool(const Config&)> check;
};

TEST(ConfigKeys, EveryKeyParsesIntoItsField) {
  const std::vector<KeyCase> cases = {
      {"listening-port=3479", [](const Config& c) { return c.listening_port == 3479; }},
      {"tls-listening-port=5350", [](const Config& c) { return c.tls_listening_port == 5350; }},
      {"alt-listening-port=443", [](const Config& c) { return c.alt_listening_port == 443; }},
      {"alt-listening-port=0", [](const Config& c) { return c.alt_listening_port == 0; }},
      {"alt-tls-listening-port=8443", [](const Config& c) { return c.alt_tls_listening_port == 8443; }},
      {"listening-ip=192.0.2.10", [](const Config& c) { return c.listening_ips == std::vector{ip("192.0.2.10")}; }},
      {"listening-ip=2001:db8::1", [](const Config& c) { return c.listening_ips == std::vector{ip("2001:db8::1")}; }},
      {"relay-ip=192.0.2.11", [](const Config& c) { return c.relay_ips == std::vector{ip("192.0.2.11")}; }},
      {"external-ip=203.0.113.5",
       [](const Config& c) {
         return c.external_ips.size() == 1 && c.external_ips[0].public_ip == ip("203.0.113.5") &&
                c.external_ips[0].private_ip.is_unspecified();
       }},
      {"external-ip=203.0.113.5/10.0.0.5",
       [](const Config& c) {
         return c.external_ips.size() == 1 && c.external_ips[0].public_ip == ip("203.0.113.5") &&
                c.external_ips[0].private_ip == ip("10.0.0.5");
       }},
      {"min-port=50000", [](const Config& c) { return c.min_port == 50000; }},
      {"max-port=50100", [](const Config& c) { return c.max_port == 50100; }},
      {"no-udp", [](const Config& c) { return c.no_udp; }},
      {"no-tcp=true", [](const Config& c) { return c.no_tcp; }},
      {"no-tls=yes", [](const Config& c) { return c.no_tls; }},
      {"cert=/etc/dpturn/cert.pem", [](const Config& c) { return c.cert == "/etc/dpturn/cert.pem"; }},
      {"pkey=/etc/dpturn/key.pem", [](const Config& c) { return c.pkey == "/etc/dpturn/key.pem"; }},
      {"realm=example.org", [](const Config& c) { return c.realm == "example.org"; }},
      {"lt-cred-mech=false", [](const Config& c) { return !c.lt_cred_mech; }},
      {"use-auth-secret", [](const Config& c) { return c.use_auth_secret; }},
      {"static-auth-secret=north",
       [](const Config& c) { return c.static_auth_secrets == std::vector<std::string>{"north"}; }},
      {"user=alice:pw",
       [](const Config& c) {
         return c.users.size() == 1 && c.users[0].name == "alice" && c.users[0].password == "pw" &&
                c.users[0].key_hex.empty();
       }},
      {"user=bob:0x0123456789abcdef0123456789abcdef",
       [](const Config& c) {
         return c.users.size() == 1 && c.users[0].name == "bob" && c.users[0].password.empty() &&
                c.users[0].key_hex == "0x0123456789abcdef0123456789abcdef";
       }},
      {"redis-userdb=ip=10.0.0.1 dbname=2 password=pw port=6380 connect_timeout=7",
       [](const Config& c) {
         const auto& r = c.redis_userdb;
         return r.enabled && r.host == "10.0.0.1" && r.db == 2 && r.password == "pw" && r.port == 6380 &&
                r.connect_timeout_ms == 7000;
       }},
      {"state-redis=host=127.0.0.2 db=3",
       [](const Config& c) {
         return c.state_redis.enabled && c.state_redis.host == "127.0.0.2" && c.state_redis.db == 3 &&
                c.state_redis.port == 6379 && !c.redis_userdb.enabled;
       }},
      {"instance-id=cp-7", [](const Config& c) { return c.instance_id == "cp-7"; }},
      {"server-secret=0123456789abcdefXYZ", [](const Config& c) { return c.server_secret == "0123456789abcdefXYZ"; }},
      {"nonce-lifetime=120", [](const Config& c) { return c.nonce_lifetime_s == 120; }},
      {"max-allocate-lifetime=7200", [](const Config& c) { return c.max_allocate_lifetime_s == 7200; }},
      {"default-allocate-lifetime=300", [](const Config& c) { return c.default_allocate_lifetime_s == 300; }},
      {"permission-lifetime=120", [](const Config& c) { return c.permission_lifetime_s == 120; }},
      {"channel-lifetime=900", [](const Config& c) { return c.channel_lifetime_s == 900; }},
      {"legacy-channel-range", [](const Config& c) { return c.legacy_channel_range; }},
      {"no-tcp-relay", [](const Config& c) { return c.no_tcp_relay; }},
      {"no-dtls", [](const Config& c) { return c.no_dtls; }},
      {"denied-peer-ip=10.0.0.0-10.255.255.255",
       [](const Config& c) {
         return c.denied_peers.size() == 1 && c.denied_peers[0].lo == ip("10.0.0.0") &&
                c.denied_peers[0].hi == ip("10.255.255.255");
       }},
      {"allowed-peer-ip=192.168.1.0/24",
       [](const Config& c) {
         return c.allowed_peers.size() == 1 && c.allowed_peers[0].lo == ip("192.168.1.0") &&
                c.allowed_peers[0].hi == ip("192.168.1.255");
       }},
      {"allow-loopback-peers", [](const Config& c) { return c.allow_loopback_peers; }},
      {"no-loopback-peers", [](const Config& c) { return !c.allow_loopback_peers; }},
      {"user-quota=5", [](const Config& c) { return c.user_quota == 5; }},
      {"total-quota=1000", [](const Config& c) { return c.total_quota == 1000; }},
      {"max-bps=125000", [](const Config& c) { return c.max_bps == 125000; }},
      {"max-permissions-per-allocation=50", [](const Config& c) { return c.max_permissions == 50; }},
      {"max-permissions-per-allocation=0", [](const Config& c) { return c.max_permissions == 0; }},
      {"request-rate-limit=50", [](const Config& c) { return c.request_rate_limit == 50; }},
      {"unauth-rate-limit=0", [](const Config& c) { return c.unauth_rate_limit == 0; }},
      {"reflection-burst=4096", [](const Config& c) { return c.reflection_burst == 4096; }},
      {"reflection-burst=0", [](const Config& c) { return c.reflection_burst == 0; }},
      {"admin-ip=127.0.0.2", [](const Config& c) { return c.admin_ip == ip("127.0.0.2"); }},
      {"admin-port=0", [](const Config& c) { return c.admin_port == 0; }},
      {"admin-port=9090", [](const Config& c) { return c.admin_port == 9090; }},
      {"admin-token=abcdefghijklmnopq", [](const Config& c) { return c.admin_token == "abcdefghijklmnopq"; }},
      {"relay-threads=4", [](const Config& c) { return c.relay_threads == 4; }},
      {"verbose", [](const Config& c) { return c.verbose; }},
      {"Verbose", [](const Config& c) { return c.verbose; }},
      {"log-file=/var/log/dpturn.log", [](const Config& c) { return c.log_file == "/var/log/dpturn.log"; }},
      {"no-software-attribute", [](const Config& c) { return !c.software_attribute; }},
      {"fingerprint", [](const Config& c) { return c.fingerprint; }},
      {"cipher-list=\"ECDHE-RSA-AES256-GCM-SHA384\"",
       [](const Config& c) { return c.cipher_list == "ECDHE-RSA-AES256-GCM-SHA384"; }},
      {"ec-curve-name=prime256v1", [](const Config& c) { return c.ec_curve == "prime256v1"; }},
      {"pkey-pwd=sesame", [](const Config& c) { return c.pkey_password == "sesame"; }},
      {"prometheus", [](const Config& c) { return c.prometheus && c.prometheus_port == 9641; }},
      {"prometheus-port=9642", [](const Config& c) { return c.prometheus_port == 9642; }},
      {"prometheus-address=10.0.0.7",
       [](const Config& c) { return c.prometheus_ip_set && c.prometheus_ip == ip("10.0.0.7"); }},
      {"prometheus-path=/turn/metrics", [](const Config& c) { return c.prometheus_path == "/turn/metrics"; }},
  };
  for (const auto& kc : cases) {
    Config c;
    ASSERT_NO_THROW(apply_config_line(kc.line, "t.conf:1", c)) << kc.line;
    EXPECT_TRUE(kc.check(c)) << kc.line;
  }
}

TEST(ConfigKeys, DefaultsMatchTheDocumentedValues) {
  Config c;
  EXPECT_EQ(c.listening_port, 3478);
  EXPECT_EQ(c.tls_listening_port, 5349);
  EXPECT_EQ(c.min_port, 49152);
  EXPECT_EQ(c.max_port, 65535);
  EXPECT_EQ(c.default_allocate_lifetime_s, 600u);
  EXPECT_EQ(c.max_allocate_lifetime_s, 3600u);
  EXPECT_EQ(c.permission_lifetime_s, 300u);
  EXPECT_EQ(c.channel_lifetime_s, 600u);
  EXPECT_FALSE(c.allow_loopback_peers);
  EXPECT_TRUE(c.lt_cred_mech);
  EXPECT_FALSE(c.legacy_channel_range);
  EXPECT_EQ(c.max_permissions, 1000u);
  // Safe behind a NAT shared by a whole meeting (issue 16), still against reflection.
  EXPECT_EQ(c.request_rate_limit, 0u);
  EXPECT_EQ(c.unauth_rate_limit, 500u);
  EXPECT_EQ(c.reflection_burst, 65536u);
}

TEST(ConfigKeys, RepeatableKeysAccumulate) {
  Config c;
  apply_config_line("listening-ip=127.0.0.1", "t:1", c);
  apply_config_line("listening-ip=::1", "t:2", c);
  apply_config_line("static-auth-secret=one", "t:3", c);
  apply_config_line("static-auth-secret=two", "t:4", c);
  apply_config_line("user=a:1", "t:5", c);
  apply_config_line("user=b:2", "t:6", c);
  EXPECT_EQ(c.listening_ips, (std::vector{ip("127.0.0.1"), ip("::1")}));
  EXPECT_EQ(c.static_auth_secrets, (std::vector<std::string>{"one", "two"}));
  ASSERT_EQ(c.users.size(), 2u);
  EXPECT_EQ(c.users[1].name, "b");
}

TEST(ConfigKeys, BooleanSpellings) {
  for (const char* v : {"", "=1", "=true", "=yes", "=on"}) EXPECT_TRUE(apply(std::string("no-udp") + v).no_udp) << v;
  for (const char* v : {"=0", "=false", "=no", "=off"}) EXPECT_FALSE(apply(std::string("no-udp") + v).no_udp) << v;
  auto msg = line_error("no-udp=maybe");
  EXPECT_NE(msg.find("no-udp"), std::string::npos) << msg;
  EXPECT_NE(msg.find("maybe"), std::string::npos) << msg;
}

TEST(ConfigKeys, IgnoredCoturnKeysAreAccepted) {
  Config c;
  for (const char* k : {"no-cli", "stale-nonce", "no-multicast-peers", "mobility", "syslog", "no-stdout-log",
                        "pidfile=/run/turnserver.pid", "no-tlsv1", "dh1066", "log-binding", "dh566",
                        "syslog-facility=LOCAL0", "new-log-timestamp-format=%FT%T", "cli-max-output-sessions=256"})
    EXPECT_NO_THROW(apply_config_line(k, "t:1", c)) << k;
  // Each one is recorded with where it was, for turn-control to report.
  ASSERT_EQ(c.ignored_keys.size(), 14u);
  EXPECT_EQ(c.ignored_keys[0], "t:1: no-cli");
  EXPECT_EQ(c.ignored_keys[6], "t:1: pidfile");
  EXPECT_EQ(c.ignored_keys[13], "t:1: cli-max-output-sessions");
}

TEST(ConfigKeys, NoAuthIsRefused) {
  auto msg = line_error("no-auth");
  EXPECT_NE(msg.find("no-auth"), std::string::npos) << msg;
  EXPECT_NE(msg.find("t.conf:7"), std::string::npos) << msg;
}

// ---- line forms -----------------------------------------------------------------

TEST(ConfigLines, CommentsAndBlankLinesAreSkipped) {
  Config c;
  apply_config_line("# realm=commented.out", "t:1", c);
  apply_config_line("   # indented comment", "t:2", c);
  apply_config_line("", "t:3", c);
  apply_config_line("   \t  ", "t:4", c);
  EXPECT_EQ(c.realm, Config{}.realm);
}

TEST(ConfigLines, KeyValueForms) {
  EXPECT_EQ(apply("listening-port=3480").listening_port, 3480);
  EXPECT_EQ(apply("listening-port 3481").listening_port, 3481);
  EXPECT_EQ(apply("listening-port\t3482").listening_port, 3482);
  EXPECT_EQ(apply("--listening-port=3483").listening_port, 3483);
  EXPECT_EQ(apply("--listening-port 3484").listening_port, 3484);
  EXPECT_EQ(apply("   listening-port=3485   ").listening_port, 3485);
  EXPECT_TRUE(apply("--no-udp").no_udp);
}

TEST(ConfigLines, QuotedValuesAreUnquoted) {
  EXPECT_EQ(apply("realm=\"quoted realm\"").realm, "quoted realm");
  EXPECT_EQ(apply("realm='single quoted'").realm, "single quoted");
  EXPECT_EQ(apply("realm \"spaced form\"").realm, "spaced form");
  auto c = apply("user=\"carol:pass word\"");
  ASSERT_EQ(c.users.size(), 1u);
  EXPECT_EQ(c.users[0].name, "carol");
  EXPECT_EQ(c.users[0].password, "pass word");
}

// "key = value" (spaces around '=') is a common way to write the file by
// hand; it must mean the same as "key=value", not value "= value".
TEST(ConfigLines, SpacesAroundEqualsSign) {
  Config c;
  try {
    apply_config_line("realm = spaced.example", "t:1", c);
  } catch (const ConfigError& e) {
    // Refusing the form is acceptable too; silently mis-parsing is not.
    SUCCEED() << e.what();
    return;
  }
  EXPECT_EQ(c.realm, "spaced.example");
}

TEST(ConfigFile, LoadsEveryLineAndRecordsTheSource) {
  TempFile f(
      "# dpturn test config\n"
      "\n"
      "listening-port=3490\n"
      "realm=\"file realm\"\n"
      "  min-port 40000\n"
      "max-port=40100\n"
      "user=dave:pw1\n"
      "--relay-ip=127.0.0.1\n"
      "no-cli\n");
  Config c;
  load_config_file(f.path(), c);
  EXPECT_EQ(c.listening_port, 3490);
  EXPECT_EQ(c.realm, "file realm");
  EXPECT_EQ(c.min_port, 40000);
  EXPECT_EQ(c.max_port, 40100);
  ASSERT_EQ(c.users.size(), 1u);
  EXPECT_EQ(c.users[0].password, "pw1");
  EXPECT_EQ(c.relay_ips, std::vector{ip("127.0.0.1")});
  EXPECT_EQ(c.source, f.path());
}

TEST(ConfigFile, WindowsLineEndings) {
  TempFile f("listening-port=3491\r\nrealm=crlf.example\r\n");
  Config c;
  load_config_file(f.path(), c);
  EXPECT_EQ(c.listening_port, 3491);
  EXPECT_EQ(c.realm, "crlf.example");
}

TEST(ConfigFile, UnknownKeyNamesFileLineAndKey) {
  TempFile f("listening-port=3478\n# comment\nbogus-key=1\n");
  auto msg = error_of([&] {
    Config c;
    load_config_file(f.path(), c);
  });
  EXPECT_NE(msg.find(f.path() + ":3"), std::string::npos) << msg;
  EXPECT_NE(msg.find("bogus-key"), std::string::npos) << msg;
}

TEST(ConfigFile, BadValueNamesFileLineKeyAndValue) {
  TempFile f("realm=ok\nlistening-port=70000\n");
  auto msg = error_of([&] {
    Config c;
    load_config_file(f.path(), c);
  });
  EXPECT_NE(msg.find(f.path() + ":2"), std::string::npos) << msg;
  EXPECT_NE(msg.find("listening-port"), std::string::npos) << msg;
  EXPECT_NE(msg.find("70000"), std::string::npos) << msg;
}

TEST(ConfigFile, MissingFileIsAnError) {
  auto msg = error_of([] {
    Config c;
    load_config_file("/nonexistent/dpturn-test.conf", c);
  });
  EXPECT_NE(msg.find("/nonexistent/dpturn-test.conf"), std::string::npos) << msg;
}

TEST(ConfigLines, UnknownKeyOnTheCommandLine) {
  auto msg = error_of([] {
    Config c;
    apply_config_line("--no-such-key=1", "command line", c);
  });
  EXPECT_NE(msg.find("command line"), std::string::npos) << msg;
  EXPECT_NE(msg.find("no-such-key"), std::string::npos) << msg;
}

// ---- bad values -----------------------------------------------------------------

void expect_refused(const std::string& line, const std::string& key, const std::string& value) {
  auto msg = line_error(line);
  EXPECT_NE(msg.find("t.conf:7"), std::string::npos) << line << " -> " << msg;
  EXPECT_NE(msg.find(key), std::string::npos) << line << " -> " << msg;
  if (!value.empty()) {
    EXPECT_NE(msg.find(value), std::string::npos) << line << " -> " << msg;
  }
}

TEST(ConfigValues, PortsOutOfRangeOrNotNumbers) {
  expect_refused("listening-port=70000", "listening-port", "70000");
  expect_refused("listening-port=0", "listening-port", "0");
  expect_refused("min-port=-1", "min-port", "-1");
  expect_refused("max-port=65536", "max-port", "65536");
  expect_refused("max-port=12ab", "max-port", "12ab");
  expect_refused("tls-listening-port=", "tls-listening-port", "");
  expect_refused("user-quota=lots", "user-quota", "lots");
  expect_refused("relay-threads=1000", "relay-threads", "1000");
  expect_refused("nonce-lifetime=0", "nonce-lifetime", "0");
}

TEST(ConfigValues, BadAddresses) {
  expect_refused("listening-ip=1.2.3.999", "listening-ip", "1.2.3.999");
  expect_refused("relay-ip=banana", "relay-ip", "banana");
  expect_refused("external-ip=203.0.113.5/notanip", "external-ip", "notanip");
  expect_refused("admin-ip=300.1.1.1", "admin-ip", "300.1.1.1");
}

TEST(ConfigValues, BadPeerRanges) {
  expect_refused("denied-peer-ip=10.0.0.9-10.0.0.1", "denied-peer-ip", "10.0.0.9-10.0.0.1");
  expect_refused("allowed-peer-ip=10.0.0.1-::1", "allowed-peer-ip", "10.0.0.1-::1");
  expect_refused("denied-peer-ip=10.0.0.0/33", "denied-peer-ip", "10.0.0.0/33");
  expect_refused("denied-peer-ip=garbage", "denied-peer-ip", "garbage");
}

TEST(ConfigValues, EmptyRealm) {
  expect_refused("realm=", "realm", "");
  expect_refused("realm=\"\"", "realm", "");
  expect_refused("realm=" + std::string(764, 'r'), "realm", "");
}

TEST(ConfigValues, UserErrorsNeverShowTheSecret) {
  {
    auto msg = line_error("user=nocolon");
    EXPECT_NE(msg.find("t.conf:7"), std::string::npos) << msg;
    EXPECT_NE(msg.find("user"), std::string::npos) << msg;
    // "nocolon" may well be a password typed without its user name.
    EXPECT_EQ(msg.find("nocolon"), std::string::npos) << msg;
  }
  {
    auto msg = line_error("user=:Sup3rSecret");
    EXPECT_NE(msg.find("user"), std::string::npos) << msg;
    EXPECT_EQ(msg.find("Sup3rSecret"), std::string::npos) << msg;
  }
  {
    auto msg = line_error("user=erin:");
    EXPECT_NE(msg.find("user"), std::string::npos) << msg;
  }
}

TEST(ConfigValues, SecretsAreHiddenInErrors) {
  {
    auto msg = line_error("server-secret=tooShort1");
    EXPECT_NE(msg.find("server-secret"), std::string::npos) << msg;
    EXPECT_EQ(msg.find("tooShort1"), std::string::npos) << msg;
  }
  {
    auto msg = line_error("admin-token=tok3n");
    EXPECT_NE(msg.find("admin-token"), std::string::npos) << msg;
    EXPECT_EQ(msg.find("tok3n"), std::string::npos) << msg;
  }
  expect_refused("static-auth-secret=", "static-auth-secret", "");
}

TEST(ConfigValues, RedisConnectionStrings) {
  expect_refused("redis-userdb=ip=10.0.0.1 port=99999", "redis-userdb", "99999");
  expect_refused("redis-userdb=ip=10.0.0.1 dbname=x", "redis-userdb", "x");
  auto msg = line_error("redis-userdb=ip=10.0.0.1 colour=blue");
  EXPECT_NE(msg.find("colour"), std::string::npos) << msg;
}

// A Redis password must not end up in a log line or on a terminal because
// some other item of the same connection string was mistyped.
TEST(ConfigValues, RedisErrorsNeverShowThePassword) {
  for (const char* line :
       {"redis-userdb=ip=10.0.0.1 password=Hunter2pw colour=blue", "state-redis=password=Hunter2pw justaword"}) {
    auto msg = line_error(line);
    EXPECT_NE(msg.find("t.conf:7"), std::string::npos) << msg;
    EXPECT_EQ(msg.find("Hunter2pw"), std::string::npos) << line << " -> " << msg;
  }
}

// ---- validate_config -------------------------------------------------------------

Config valid_base() {
  Config c;
  c.admin_port = 0;
  c.listening_ips = {ip("127.0.0.1")};
  return c;
}

TEST(ConfigValidate, BaseConfigIsValid) {
  Config c = valid_base();
  EXPECT_NO_THROW(validate_config(c));
  // relay-ip defaults to the specific listening addresses; TLS without a
  // certificate is off; the instance gets a name.
  EXPECT_EQ(c.relay_ips, std::vector{ip("127.0.0.1")});
  EXPECT_TRUE(c.no_tls);
  EXPECT_FALSE(c.instance_id.empty());
}

TEST(ConfigValidate, MinPortAboveMaxPort) {
  Config c = valid_base();
  apply_config_line("min-port=60000", "t:1", c);
  apply_config_line("max-port=50000", "t:2", c);
  auto msg = error_of([&] { validate_config(c); });
  EXPECT_NE(msg.find("min-port"), std::string::npos) << msg;
  EXPECT_NE(msg.find("60000"), std::string::npos) << msg;
  EXPECT_NE(msg.find("max-port"), std::string::npos) << msg;
  EXPECT_NE(msg.find("50000"), std::string::npos) << msg;
}

TEST(ConfigValidate, AdminPortWithoutToken) {
  Config c = valid_base();
  apply_config_line("admin-port=8081", "t:1", c);
  auto msg = error_of([&] { validate_config(c); });
  EXPECT_NE(msg.find("admin-port"), std::string::npos) << msg;
  EXPECT_NE(msg.find("admin-token"), std::string::npos) << msg;
  apply_config_line("admin-token=0123456789abcdef", "t:2", c);
  EXPECT_NO_THROW(validate_config(c));
}

TEST(ConfigValidate, CipherListAndPrometheus) {
  {
    Config c = valid_base();
    apply_config_line("cipher-list=\"DEFAULT\"", "t:1", c);
    validate_config(c);
    ASSERT_EQ(c.notes.size(), 1u);
    EXPECT_NE(c.notes[0].find("dropped"), std::string::npos) << c.notes[0];
    EXPECT_NE(c.cipher_list_effective.find("ECDHE-RSA-AES128-GCM-SHA256"), std::string::npos);
  }
  {
    Config c = valid_base();
    apply_config_line("cipher-list=AES256-SHA:DHE-RSA-AES128-GCM-SHA256", "t:1", c);
    auto msg = error_of([&] { validate_config(c); });
    EXPECT_NE(msg.find("cipher-list=AES256-SHA"), std::string::npos) << msg;
    EXPECT_NE(msg.find("dropped: AES256-SHA:DHE-RSA-AES128-GCM-SHA256"), std::string::npos) << msg;
  }
  {
    Config c = valid_base();
    apply_config_line("prometheus", "t:1", c);
    validate_config(c);
    EXPECT_EQ(c.prometheus_ip, c.admin_ip);  // bound to the admin address unless told otherwise
    EXPECT_EQ(c.prometheus_port, 9641);
  }
  {
    Config c = valid_base();
    apply_config_line("prometheus", "t:1", c);
    apply_config_line("admin-token=0123456789abcdefgh", "t:2", c);
    apply_config_line("admin-port=9641", "t:3", c);
    auto msg = error_of([&] { validate_config(c); });
    EXPECT_NE(msg.find("prometheus-port=9641"), std::string::npos) << msg;
  }
  {
    Config c;
    apply_config_line("pkey-pwd=top-secret-phrase", "t:1", c);
    apply_config_line("dh-file=/etc/ssl/dh.pem", "t:2", c);
    apply_config_line("prometheus-username-labels", "t:3", c);
    EXPECT_EQ(c.ignored_keys, (std::vector<std::string>{"t:2: dh-file", "t:3: prometheus-username-labels"}));
  }
}

TEST(ConfigValidate, CrossKeyRules) {
  {
    Config c = valid_base();
    c.default_allocate_lifetime_s = 7200;
    auto msg = error_of([&] { validate_config(c); });
    EXPECT_NE(msg.find("default-allocate-lifetime"), std::string::npos) << msg;
  }
  {
    Config c = valid_base();
    c.use_auth_secret = true;
    auto msg = error_of([&] { validate_config(c); });
    EXPECT_NE(msg.find("static-auth-secret"), std::string::npos) << msg;
  }
  {
    Config c = valid_base();
    c.cert = "/tmp/cert.pem";
    auto msg = error_of([&] { validate_config(c); });
    EXPECT_NE(msg.find("pkey"), std::string::npos) << msg;
  }
  {
    Config c = valid_base();
    c.no_udp = c.no_tcp = true;
    auto msg = error_of([&] { validate_config(c); });
    EXPECT_NE(msg.find("no-udp"), std::string::npos) << msg;
  }
  {
    Config c = valid_base();
    apply_config_line("relay-ip=0.0.0.0", "t:1", c);
    auto msg = error_of([&] { validate_config(c); });
    EXPECT_NE(msg.find("relay-ip"), std::string::npos) << msg;
  }
}

// ---- parse_address_range ----------------------------------------------------------

TEST(AddressRange, DashRange) {
  auto r = parse_address_range("10.0.0.1-10.0.0.9");
  EXPECT_EQ(r.lo, ip("10.0.0.1"));
  EXPECT_EQ(r.hi, ip("10.0.0.9"));
  EXPECT_EQ(r.text, "10.0.0.1-10.0.0.9");
  EXPECT_TRUE(r.contains(ip("10.0.0.1")));
  EXPECT_TRUE(r.contains(ip("10.0.0.5")));
  EXPECT_TRUE(r.contains(ip("10.0.0.9")));
  EXPECT_FALSE(r.contains(ip("10.0.0.0")));
  EXPECT_FALSE(r.contains(ip("10.0.0.10")));
  EXPECT_FALSE(r.contains(ip("::a00:5")));  // an IPv6 address is not an IPv4 one
}

TEST(AddressRange, Cidr) {
  auto r = parse_address_range("10.0.0.0/8");
  EXPECT_EQ(r.lo, ip("10.0.0.0"));
  EXPECT_EQ(r.hi, ip("10.255.255.255"));
  EXPECT_TRUE(r.contains(ip("10.200.1.1")));
  EXPECT_FALSE(r.contains(ip("11.0.0.0")));
  EXPECT_FALSE(r.contains(ip("9.255.255.255")));
  // Host bits in the prefix are ignored.
  auto r2 = parse_address_range("192.168.1.77/24");
  EXPECT_EQ(r2.lo, ip("192.168.1.0"));
  EXPECT_EQ(r2.hi, ip("192.168.1.255"));
  auto all = parse_address_range("0.0.0.0/0");
  EXPECT_TRUE(all.contains(ip("0.0.0.0")));
  EXPECT_TRUE(all.contains(ip("255.255.255.255")));
  EXPECT_FALSE(all.contains(ip("2001:db8::1")));
}

TEST(AddressRange, SingleHost) {
  auto r = parse_address_range("169.254.169.254");
  EXPECT_EQ(r.lo, r.hi);
  EXPECT_TRUE(r.contains(ip("169.254.169.254")));
  EXPECT_FALSE(r.contains(ip("169.254.169.253")));
  EXPECT_FALSE(r.contains(ip("169.254.169.255")));
}

TEST(AddressRange, Ipv6) {
  auto r = parse_address_range("2001:db8::1-2001:db8::ff");
  EXPECT_TRUE(r.contains(ip("2001:db8::80")));
  EXPECT_FALSE(r.contains(ip("2001:db8::100")));
  auto c = parse_address_range("fe80::/10");
  EXPECT_TRUE(c.contains(ip("fe80::1")));
  EXPECT_TRUE(c.contains(ip("febf:ffff::1")));
  EXPECT_FALSE(c.contains(ip("fec0::1")));
  auto h = parse_address_range("::1");
  EXPECT_TRUE(h.contains(ip("::1")));
  EXPECT_FALSE(h.contains(ip("::2")));
  EXPECT_FALSE(h.contains(ip("127.0.0.1")));
}

TEST(AddressRange, Refusals) {
  for (const char* bad : {"10.0.0.9-10.0.0.1", "10.0.0.1-::1", "10.0.0.0/33", "::/129", "abc", "", "10.0.0.1-",
                          "-10.0.0.1", "10.0.0.0/", "10.0.0.0/x"})
    EXPECT_THROW((void)parse_address_range(bad), ConfigError) << bad;
}

// ---- every invalid value, table-driven (issue 7) ----------------------------------------
// Each line must be refused with a ConfigError that names where (t.conf:7),
// the key and the offending value (secrets: "<hidden>" instead). Free-form
// keys (cert, pkey, instance-id, log-file) take any text and are checked
// when used (TLS load, file open).

struct BadValue {
  std::string line;
  std::string key;
  std::string shown;  // what the message must show of the value
};

TEST(ConfigValues, EveryKeyRefusesInvalidValuesNamingKeyAndValue) {
  std::vector<BadValue> cases;
  auto add = [&](const std::string& key, const std::vector<std::string>& values) {
    for (const auto& v : values) cases.push_back({key + "=" + v, key, v});
  };
  const std::vector<std::string> not_numbers = {
      "abc", "12ab", "-1", "+5", "0x10", "1e3", "3.5", "1 2", "99999999999999999999999"};
  for (const char* k : {"listening-port", "tls-listening-port", "min-port", "max-port"}) {
    add(k, not_numbers);
    add(k, {"0", "65536", "70000"});
  }
  for (const char* k : {"alt-listening-port", "alt-tls-listening-port", "admin-port"}) {
    add(k, not_numbers);
    add(k, {"65536"});
  }
  for (const char* k : {"nonce-lifetime", "max-allocate-lifetime", "default-allocate-lifetime", "permission-lifetime",
                        "channel-lifetime"}) {
    add(k, not_numbers);
    add(k, {"0", "86401"});
  }
  for (const char* k : {"user-quota", "total-quota", "request-rate-limit", "unauth-rate-limit", "max-bps"})
    add(k, not_numbers);
  add("user-quota", {"1073741825"});
  add("request-rate-limit", {"16777217"});
  add("max-bps", {"1099511627777"});
  add("max-permissions-per-allocation", not_numbers);
  add("reflection-burst", not_numbers);
  add("reflection-burst", {"16777217"});
  add("prometheus-port", not_numbers);
  add("prometheus-port", {"0", "65536"});
  add("prometheus-address", {"banana", "1.2.3"});
  add("prometheus-path", {"metrics", "/a b", "/x?y"});
  add("prometheus", {"maybe"});
  add("ec-curve-name", {"no-such-curve"});
  add("cipher-list", {""});
  add("max-permissions-per-allocation", {"1048577"});
  add("relay-threads", {"257", "-1", "many"});
  for (const char* k : {"listening-ip", "relay-ip", "admin-ip"})
    add(k, {"1.2.3.999", "banana", "1.2.3", "::g", "1.2.3.4.5", "10.0.0.1/24", "localhost"});
  add("external-ip", {"203.0.113.5/notanip", "nothing", "203.0.113.5/", "/10.0.0.1", "1.2.3.4/5.6.7.8/9"});
  for (const char* k : {"denied-peer-ip", "allowed-peer-ip"})
    add(k, {"10.0.0.9-10.0.0.1", "10.0.0.1-::1", "10.0.0.0/33", "::/129", "garbage", "10.0.0.1-", "/8", "10.0.0.0/-1",
            "10.0.0.0/8x"});
  for (const char* k : {"no-udp", "no-tcp", "no-tls", "lt-cred-mech", "use-auth-secret", "legacy-channel-range",
                        "allow-loopback-peers", "no-loopback-peers", "verbose", "no-software-attribute", "fingerprint"})
    add(k, {"maybe", "2", "TRUEISH", "-1"});
  add("realm", {std::string(764, 'r')});
  cases.push_back({"realm=", "realm", ""});
  cases.push_back({"static-auth-secret=", "static-auth-secret", ""});
  for (const char* v : {"nocolon", ":password", "name:"})
    cases.push_back({std::string("user=") + v, "user", "<hidden>"});
  cases.push_back({"server-secret=short", "server-secret", "<hidden>"});
  cases.push_back({"admin-token=short-token", "admin-token", "<hidden>"});
  for (const char* k : {"state-redis", "redis-userdb"}) {
    cases.push_back({std::string(k) + "=ip=127.0.0.1 port=99999", k, "99999"});
    cases.push_back({std::string(k) + "=ip=127.0.0.1 port=redis", k, "redis"});
    cases.push_back({std::string(k) + "=ip=127.0.0.1 dbname=x", k, "dbname=x"});
    cases.push_back({std::string(k) + "=ip=127.0.0.1 connect_timeout=0", k, "connect_timeout=0"});
    cases.push_back({std::string(k) + "=ip=127.0.0.1 colour=blue", k, "colour"});
    cases.push_back({std::string(k) + "=127.0.0.1", k, "127.0.0.1"});
    cases.push_back({std::string(k) + "=sentinel=10.0.0.9:26379", k, "master=NAME"});
    cases.push_back({std::string(k) + "=sentinel=10.0.0.9 master=m", k, "sentinel '10.0.0.9'"});
    cases.push_back({std::string(k) + "=sentinel=10.0.0.9:26379 master=m port=6379", k, "not with sentinel="});
    cases.push_back({std::string(k) + "=master=m", k, "needs sentinel="});
  }
  cases.push_back({"instance-id=a b", "instance-id", "a b"});
  cases.push_back({"instance-id=host/1", "instance-id", "host/1"});
  cases.push_back({"state-queue-limit=5", "state-queue-limit", "5"});
  cases.push_back({"no-auth", "no-auth", ""});

  size_t checked = 0;
  for (const auto& c : cases) {
    std::string msg;
    try {
      Config cfg;
      apply_config_line(c.line, "t.conf:7", cfg);
      ADD_FAILURE() << "accepted: " << c.line;
      continue;
    } catch (const ConfigError& e) {
      msg = e.what();
    }
    ++checked;
    EXPECT_NE(msg.find("t.conf:7"), std::string::npos) << c.line << " -> " << msg;
    EXPECT_NE(msg.find(c.key), std::string::npos) << c.line << " -> " << msg;
    if (!c.shown.empty()) {
      EXPECT_NE(msg.find(c.shown), std::string::npos) << c.line << " -> " << msg;
    }
    // A reason follows the value: "...: key=value: why".
    EXPECT_GT(msg.size(), msg.find(c.key) + c.key.size() + c.shown.size() + 3) << c.line << " -> " << msg;
  }
  EXPECT_GT(checked, 250u);
}

// The admin API is off unless a token is configured and, by default, listens
// on loopback only (not reachable from other hosts).
TEST(ConfigValidate, AdminApiDefaultsToLoopbackOnly) {
  Config c = valid_base();
  EXPECT_EQ(c.admin_ip, ip("127.0.0.1"));
  apply_config_line("admin-token=0123456789abcdef", "t:1", c);
  validate_config(c);
  EXPECT_EQ(c.admin_ip, ip("127.0.0.1"));
}

}  // namespace
}  // namespace turn::cp
