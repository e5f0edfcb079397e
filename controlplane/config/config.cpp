// SPDX-License-Identifier: Apache-2.0
// turnserver.conf parsing and validation.
#include "controlplane/config/config.h"

#include "common/config/lexer.h"
#include "common/redis/client.h"
#include "common/state/keys.h"
#include "common/util/text.h"
#include "controlplane/net/tls.h"

#include <unistd.h>

#include <algorithm>
#include <functional>
#include <map>
#include <set>

namespace turn::cp {

namespace {

using config::fail;
using config::parse_bool;
using config::parse_ip;
using config::parse_port;
using config::parse_uint;

// coturn's alternate-server: "IP", "IP:PORT" or "[IPv6]:PORT".
SocketAddress parse_alternate(const std::string& where, const std::string& key, const std::string& v, uint16_t port) {
  if (auto a = SocketAddress::parse(v)) {
    if (a->port == 0 || a->ip.is_unspecified()) fail(where, key, v, "needs a specific address and a port above 0");
    return *a;
  }
  if (auto ip = IpAddress::parse(v)) {
    if (ip->is_unspecified()) fail(where, key, v, "needs a specific address");
    return SocketAddress{*ip, port};
  }
  fail(where, key, v, "expected IP, IP:PORT or [IPv6]:PORT");
}

// coturn's Redis connection string ("ip=127.0.0.1 dbname=0 password=x
// port=6379 connect_timeout=30") or the Sentinel form; one parser for both
// binaries (common/redis/endpoint.h).
redis::Endpoint parse_redis(const std::string& where, const std::string& key, const std::string& raw) {
  try {
    return redis::parse_endpoint(raw);
  } catch (const redis::EndpointError& e) {
    fail(where, key, e.item(), e.why());
  }
}

// coturn keys dpturn accepts and ignores, because its behaviour is the
// default here or the feature does not apply. Each one is reported
// (Config::ignored_keys), never silently dropped.
const std::set<std::string> kIgnoredCoturnKeys = {
    "no-cli",
    "cli-ip",
    "cli-port",
    "cli-password",
    "no-multicast-peers",
    "stale-nonce",
    "mobility",
    "no-stdout-log",
    "simple-log",
    "new-log-timestamp",
    "syslog",
    "pidfile",
    "proc-user",
    "proc-group",
    "no-rfc5780",
    "no-stun-backward-compatibility",
    "response-origin-only-with-rfc5780",
    "check-origin-consistency",
    "no-tlsv1",
    "no-tlsv1_1",
    "no-tlsv1_2",
    "dh2066",
    "log-binding",
    "no-software-attribute-legacy",
    // Siblings of the above.
    "syslog-facility",
    "new-log-timestamp-format",
    "cli-max-output-sessions",
    // No finite-field DH suite is ever offered (ECDHE only), so DH
    // parameters would never be used.
    "dh-file",
    "dh566",
    "dh1066",
    // Metrics never carry usernames (an unbounded label set with REST
    // credentials); the key asks for a label dpturn does not have.
    "prometheus-username-labels",
};

using Handler =
    std::function<void(Config&, const std::string& where, const std::string& key, const std::string& value)>;

const std::map<std::string, Handler>& handlers() {
  static const std::map<std::string, Handler> h = {
      {"listening-port", [](Config& c, auto& w, auto& k, auto& v) { c.listening_port = parse_port(w, k, v); }},
      {"tls-listening-port", [](Config& c, auto& w, auto& k, auto& v) { c.tls_listening_port = parse_port(w, k, v); }},
      {"alt-listening-port", [](Config& c, auto& w, auto& k, auto& v) { c.alt_listening_port = parse_port(w, k, v, 0); }},
      {"alt-tls-listening-port", [](Config& c, auto& w, auto& k, auto& v) { c.alt_tls_listening_port = parse_port(w, k, v, 0); }},
      {"listening-ip", [](Config& c, auto& w, auto& k, auto& v) { c.listening_ips.push_back(parse_ip(w, k, v)); }},
      {"relay-ip", [](Config& c, auto& w, auto& k, auto& v) { c.relay_ips.push_back(parse_ip(w, k, v)); }},
      {"external-ip",
       [](Config& c, auto& w, auto& k, auto& v) {
         // "public" or "public/private"; errors show the whole value.
         ExternalIp e;
         auto slash = v.find('/');
         auto pub = IpAddress::parse(v.substr(0, slash));
         if (!pub) fail(w, k, v, "expected PUBLIC-IP or PUBLIC-IP/PRIVATE-IP");
         e.public_ip = *pub;
         if (slash != std::string::npos) {
           auto priv = IpAddress::parse(v.substr(slash + 1));
           if (!priv) fail(w, k, v, "expected PUBLIC-IP or PUBLIC-IP/PRIVATE-IP");
           e.private_ip = *priv;
         }
         c.external_ips.push_back(e);
       }},
      {"min-port", [](Config& c, auto& w, auto& k, auto& v) { c.min_port = parse_port(w, k, v); }},
      {"max-port", [](Config& c, auto& w, auto& k, auto& v) { c.max_port = parse_port(w, k, v); }},
      {"no-udp", [](Config& c, auto& w, auto& k, auto& v) { c.no_udp = parse_bool(w, k, v); }},
      {"no-tcp", [](Config& c, auto& w, auto& k, auto& v) { c.no_tcp = parse_bool(w, k, v); }},
      {"no-tls", [](Config& c, auto& w, auto& k, auto& v) { c.no_tls = parse_bool(w, k, v); }},
      {"no-dtls", [](Config& c, auto& w, auto& k, auto& v) { c.no_dtls = parse_bool(w, k, v); }},
      {"cert", [](Config& c, auto&, auto&, auto& v) { c.cert = v; }},
      {"pkey-pwd", [](Config& c, auto& w, auto& k, auto& v) {
         if (v.empty()) fail(w, k, "", "empty passphrase");
         c.pkey_password = v;
       }},
      {"cipher-list", [](Config& c, auto& w, auto& k, auto& v) {
         if (v.empty()) fail(w, k, v, "empty cipher list");
         c.cipher_list = v;
       }},
      {"ec-curve-name", [](Config& c, auto& w, auto& k, auto& v) {
         try {
           check_curves(v);
         } catch (const std::invalid_argument& e) {
           fail(w, k, v, e.what());
         }
         c.ec_curve = v;
       }},
      {"prometheus", [](Config& c, auto& w, auto& k, auto& v) { c.prometheus = parse_bool(w, k, v); }},
      {"prometheus-port", [](Config& c, auto& w, auto& k, auto& v) { c.prometheus_port = parse_port(w, k, v); }},
      {"prometheus-address", [](Config& c, auto& w, auto& k, auto& v) {
         c.prometheus_ip = parse_ip(w, k, v);
         c.prometheus_ip_set = true;
       }},
      {"prometheus-path", [](Config& c, auto& w, auto& k, auto& v) {
         if (!v.starts_with('/') || v.find_first_of(" ?#") != std::string::npos)
           fail(w, k, v, "expected a path starting with '/'");
         c.prometheus_path = v;
       }},
      {"pkey", [](Config& c, auto&, auto&, auto& v) { c.pkey = v; }},
      {"realm",
       [](Config& c, auto& w, auto& k, auto& v) {
         if (v.empty() || v.size() > 763) fail(w, k, v, "realm must be 1..763 bytes");
         c.realm = v;
       }},
      {"lt-cred-mech", [](Config& c, auto& w, auto& k, auto& v) { c.lt_cred_mech = parse_bool(w, k, v); }},
      {"use-auth-secret", [](Config& c, auto& w, auto& k, auto& v) { c.use_auth_secret = parse_bool(w, k, v); }},
      {"static-auth-secret",
       [](Config& c, auto& w, auto& k, auto& v) {
         if (v.empty()) fail(w, k, v, "empty secret");
         c.static_auth_secrets.push_back(v);
       }},
      {"user",
       [](Config& c, auto& w, auto& k, auto& v) {
         auto colon = v.find(':');
         if (colon == std::string::npos || colon == 0 || colon + 1 == v.size())
           fail(w, k, "<hidden>", "expected user=name:password or user=name:0x<md5 key>");
         StaticUser u;
         u.name = v.substr(0, colon);
         std::string secret = v.substr(colon + 1);
         if (secret.size() == 34 && (secret.starts_with("0x") || secret.starts_with("0X")))
           u.key_hex = secret;
         else
           u.password = secret;
         c.users.push_back(std::move(u));
       }},
      {"redis-userdb", [](Config& c, auto& w, auto& k, auto& v) { c.redis_userdb = parse_redis(w, k, v); }},
      {"state-redis", [](Config& c, auto& w, auto& k, auto& v) { c.state_redis = parse_redis(w, k, v); }},
      {"instance-id", [](Config& c, auto& w, auto& k, auto& v) {
         if (!state::valid_instance_id(v)) fail(w, k, v, std::string(state::kInstanceIdRule));
         c.instance_id = v;
       }},
      {"alternate-server", [](Config& c, auto& w, auto& k, auto& v) {
         c.alternate_servers.push_back(parse_alternate(w, k, v, 3478));
       }},
      {"tls-alternate-server", [](Config& c, auto& w, auto& k, auto& v) {
         c.tls_alternate_servers.push_back(parse_alternate(w, k, v, 5349));
       }},
      {"alternate-domain", [](Config& c, auto& w, auto& k, auto& v) {
         if (v.empty() || v.size() > 253 || v.find_first_of(" \t/:") != std::string::npos)
           fail(w, k, v, "expected a DNS name (the alternates' TLS certificate name)");
         c.alternate_domain = v;
       }},
      {"state-queue-limit", [](Config& c, auto& w, auto& k, auto& v) {
         c.state_queue_limit = static_cast<uint32_t>(parse_uint(w, k, v, 100, 10000000));
       }},
      {"server-secret", [](Config& c, auto& w, auto& k, auto& v) {
         if (v.size() < 16) fail(w, k, "<hidden>", "must be at least 16 characters");
         c.server_secret = v;
       }},
      {"nonce-lifetime", [](Config& c, auto& w, auto& k, auto& v) { c.nonce_lifetime_s = static_cast<uint32_t>(parse_uint(w, k, v, 1, 86400)); }},
      {"max-allocate-lifetime", [](Config& c, auto& w, auto& k, auto& v) { c.max_allocate_lifetime_s = static_cast<uint32_t>(parse_uint(w, k, v, 1, 86400)); }},
      {"default-allocate-lifetime", [](Config& c, auto& w, auto& k, auto& v) { c.default_allocate_lifetime_s = static_cast<uint32_t>(parse_uint(w, k, v, 1, 86400)); }},
      {"permission-lifetime", [](Config& c, auto& w, auto& k, auto& v) { c.permission_lifetime_s = static_cast<uint32_t>(parse_uint(w, k, v, 1, 86400)); }},
      {"channel-lifetime", [](Config& c, auto& w, auto& k, auto& v) { c.channel_lifetime_s = static_cast<uint32_t>(parse_uint(w, k, v, 1, 86400)); }},
      {"no-tcp-relay", [](Config& c, auto& w, auto& k, auto& v) { c.no_tcp_relay = parse_bool(w, k, v); }},
      {"legacy-channel-range", [](Config& c, auto& w, auto& k, auto& v) { c.legacy_channel_range = parse_bool(w, k, v); }},
      {"denied-peer-ip", [](Config& c, auto& w, auto& k, auto& v) {
         try { c.denied_peers.push_back(parse_address_range(v)); } catch (const ConfigError& e) { fail(w, k, v, e.what()); }
       }},
      {"allowed-peer-ip", [](Config& c, auto& w, auto& k, auto& v) {
         try { c.allowed_peers.push_back(parse_address_range(v)); } catch (const ConfigError& e) { fail(w, k, v, e.what()); }
       }},
      {"allow-loopback-peers", [](Config& c, auto& w, auto& k, auto& v) { c.allow_loopback_peers = parse_bool(w, k, v); }},
      {"no-loopback-peers", [](Config& c, auto& w, auto& k, auto& v) { c.allow_loopback_peers = !parse_bool(w, k, v); }},
      {"user-quota", [](Config& c, auto& w, auto& k, auto& v) { c.user_quota = static_cast<uint32_t>(parse_uint(w, k, v, 0, 1u << 30)); }},
      {"total-quota", [](Config& c, auto& w, auto& k, auto& v) { c.total_quota = static_cast<uint32_t>(parse_uint(w, k, v, 0, 1u << 30)); }},
      {"max-bps", [](Config& c, auto& w, auto& k, auto& v) { c.max_bps = parse_uint(w, k, v, 0, uint64_t{1} << 40); }},
      {"max-permissions-per-allocation", [](Config& c, auto& w, auto& k, auto& v) { c.max_permissions = static_cast<uint32_t>(parse_uint(w, k, v, 0, 1u << 20)); }},
      {"request-rate-limit", [](Config& c, auto& w, auto& k, auto& v) { c.request_rate_limit = static_cast<uint32_t>(parse_uint(w, k, v, 0, 1u << 24)); }},
      {"reflection-burst", [](Config& c, auto& w, auto& k, auto& v) { c.reflection_burst = static_cast<uint32_t>(parse_uint(w, k, v, 0, 1u << 24)); }},
      {"unauth-rate-limit", [](Config& c, auto& w, auto& k, auto& v) { c.unauth_rate_limit = static_cast<uint32_t>(parse_uint(w, k, v, 0, 1u << 24)); }},
      {"admin-ip", [](Config& c, auto& w, auto& k, auto& v) { c.admin_ip = parse_ip(w, k, v); }},
      {"admin-port", [](Config& c, auto& w, auto& k, auto& v) { c.admin_port = parse_port(w, k, v, 0); c.admin_port_set = true; }},
      {"admin-token", [](Config& c, auto& w, auto& k, auto& v) {
         if (v.size() < 16) fail(w, k, "<hidden>", "must be at least 16 characters");
         c.admin_token = v;
       }},
      {"relay-threads", [](Config& c, auto& w, auto& k, auto& v) { c.relay_threads = static_cast<unsigned>(parse_uint(w, k, v, 0, 256)); }},
      {"verbose", [](Config& c, auto& w, auto& k, auto& v) { c.verbose = parse_bool(w, k, v); }},
      {"Verbose", [](Config& c, auto& w, auto& k, auto& v) { c.verbose = parse_bool(w, k, v); }},
      {"log-file", [](Config& c, auto&, auto&, auto& v) { c.log_file = v; }},
      {"no-software-attribute", [](Config& c, auto& w, auto& k, auto& v) { c.software_attribute = !parse_bool(w, k, v); }},
      {"fingerprint", [](Config& c, auto& w, auto& k, auto& v) { c.fingerprint = parse_bool(w, k, v); }},
      {"no-auth", [](Config&, auto& w, auto& k, auto& v) {
         fail(w, k, v, "dpturn always requires authentication for relaying (open relays are abused)");
       }},
  };
  return h;
}

}  // namespace

AddressRange parse_address_range(const std::string& text) {
  AddressRange r;
  r.text = text;
  auto dash = text.find('-');
  if (dash != std::string::npos) {
    auto lo = IpAddress::parse(text.substr(0, dash));
    auto hi = IpAddress::parse(text.substr(dash + 1));
    if (!lo || !hi || lo->is_v4() != hi->is_v4() || *hi < *lo)
      throw ConfigError("expected an address range a-b with a <= b of one family");
    r.lo = *lo;
    r.hi = *hi;
    return r;
  }
  auto cidr = IpRange::parse(text);
  if (!cidr) throw ConfigError("expected an address, a CIDR prefix or a range a-b");
  r.lo = cidr->base;
  r.hi = cidr->base;
  for (unsigned bit = cidr->prefix; bit < 128; ++bit) r.hi.bytes[bit / 8] |= static_cast<uint8_t>(0x80 >> (bit % 8));
  return r;
}

void apply_config_line(const std::string& raw, const std::string& where, Config& cfg) {
  const auto entry = config::split_line(raw);
  if (!entry) return;
  const auto& [key, value] = *entry;
  const auto& h = handlers();
  if (auto it = h.find(key); it != h.end()) {
    it->second(cfg, where, key, value);
    return;
  }
  if (kIgnoredCoturnKeys.count(key)) {
    cfg.ignored_keys.push_back(where + ": " + key);
    return;
  }
  fail(where, key, "", "unknown key (see docs/configuration.md)");
}

void load_config_file(const std::string& path, Config& cfg) {
  config::read_lines(
      path, [&cfg](const std::string& line, const std::string& where) { apply_config_line(line, where, cfg); });
  cfg.source = path;
}

void validate_config(Config& cfg) {
  // A build without hiredis (-Dhiredis=disabled) is one host on the kernel
  // path: the keys that need Redis are refused here, by name, not ignored.
  if (!redis::available()) {
    auto refuse = [](const std::string& key, const std::string& what) {
      throw ConfigError(key + " is set, but this turn-control was built without hiredis (-Dhiredis=disabled): " + what +
                        "; remove " + key + " or use a build with hiredis");
    };
    if (cfg.state_redis.enabled) refuse("state-redis", "no state store, so no data plane and no fleet");
    if (cfg.redis_userdb.enabled) refuse("redis-userdb", "no Redis user database (user= and static-auth-secret work)");
  }
  if (cfg.min_port > cfg.max_port)
    throw ConfigError("min-port=" + std::to_string(cfg.min_port) +
                      " is above max-port=" + std::to_string(cfg.max_port));
  if (cfg.default_allocate_lifetime_s > cfg.max_allocate_lifetime_s)
    throw ConfigError("default-allocate-lifetime is above max-allocate-lifetime");
  if (cfg.use_auth_secret && cfg.static_auth_secrets.empty() && !cfg.redis_userdb.enabled)
    throw ConfigError("use-auth-secret needs static-auth-secret (or redis-userdb with secrets)");
  if (!cfg.no_tls && (cfg.cert.empty() != cfg.pkey.empty()))
    throw ConfigError("TLS needs both cert and pkey (or neither, which turns TLS off)");
  if (cfg.cert.empty()) cfg.no_tls = true;
  if (!cfg.cipher_list.empty()) {
    // coturn's cipher-list, honoured within the safe set: the suites that
    // are not ECDHE with AEAD are dropped (and named); only a list with
    // nothing safe in it is refused.
    try {
      CipherChoice c = choose_ciphers(cfg.cipher_list);
      cfg.cipher_list_effective = c.openssl_list;
      if (!c.dropped.empty()) {
        std::string dropped;
        for (const auto& d : c.dropped) dropped += (dropped.empty() ? "" : ", ") + d;
        std::string kept;
        for (const auto& d : c.kept) kept += (kept.empty() ? "" : ", ") + d;
        cfg.notes.push_back("cipher-list: kept " + kept + "; dropped (not ECDHE with AEAD) " + dropped);
      }
    } catch (const std::invalid_argument& e) {
      throw ConfigError("cipher-list=" + cfg.cipher_list + ": " + e.what());
    }
  }
  if (cfg.no_udp && cfg.no_tcp && cfg.no_tls) throw ConfigError("no-udp, no-tcp and no-tls: nothing to listen on");
  if (cfg.admin_token.empty()) {
    if (cfg.admin_port_set && cfg.admin_port != 0)
      throw ConfigError("admin-port=" + std::to_string(cfg.admin_port) +
                        " is set but admin-token is empty: the admin API needs a token (admin-port=0 turns it off)");
    cfg.admin_port = 0;  // no token, no admin API
  }
  // prometheus: /metrics on the admin address unless prometheus-address says
  // otherwise; not on the admin API's own port.
  if (!cfg.prometheus_ip_set) cfg.prometheus_ip = cfg.admin_ip;
  if (cfg.prometheus && cfg.admin_port == cfg.prometheus_port)
    throw ConfigError("prometheus-port=" + std::to_string(cfg.prometheus_port) +
                      " is the admin API's port: /metrics is served there with the token anyway");
  if (cfg.relay_ips.empty()) {
    for (const auto& ip : cfg.listening_ips)
      if (!ip.is_unspecified()) cfg.relay_ips.push_back(ip);
  }
  for (const auto& ip : cfg.relay_ips)
    if (ip.is_unspecified()) throw ConfigError("relay-ip=" + ip.to_string() + ": must be a specific address");
  // RFC 8489 §10: never redirect a client to this server itself.
  auto own = [&](const SocketAddress& a) {
    bool port = a.port == cfg.listening_port || a.port == cfg.tls_listening_port ||
                (cfg.alt_listening_port && a.port == cfg.alt_listening_port) ||
                (cfg.alt_tls_listening_port && a.port == cfg.alt_tls_listening_port);
    if (!port) return false;
    if (cfg.listening_ips.empty())
      return a.ip.is_v4() && a.ip.v4_host_order() >> 24 == 127;  // 0.0.0.0: loopback is ours
    for (const auto& ip : cfg.listening_ips)
      if (ip == a.ip) return true;
    return false;
  };
  for (const auto& a : cfg.alternate_servers)
    if (own(a))
      throw ConfigError("alternate-server=" + a.to_string() + ": that is this server itself (a redirect loop)");
  for (const auto& a : cfg.tls_alternate_servers)
    if (own(a))
      throw ConfigError("tls-alternate-server=" + a.to_string() + ": that is this server itself (a redirect loop)");
  if (cfg.instance_id.empty()) {
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    cfg.instance_id = host;
    if (!state::valid_instance_id(cfg.instance_id))
      throw ConfigError("instance-id: the host name '" + cfg.instance_id + "' is not a valid instance id (" +
                        std::string(state::kInstanceIdRule) + "); set instance-id");
  }
}

}  // namespace turn::cp
