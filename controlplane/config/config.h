// SPDX-License-Identifier: Apache-2.0
// turn-control configuration: coturn's turnserver.conf syntax and key names
// where the concept is the same (docs/configuration.md lists every key).
// Parsed once at start-up; immutable afterwards and shared read-only by all
// event-loop threads.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/config/lexer.h"
#include "common/net/address.h"
#include "common/redis/endpoint.h"

namespace turn::cp {

// A config error names where it came from: "file:line: key=value: message"
// (common/config/lexer.h, shared with turn-dataplane).
using ConfigError = config::Error;

struct StaticUser {
  std::string name;
  std::string password;  // plaintext, or empty when key_hex is set
  std::string key_hex;   // "0x<md5 hex>" form of coturn's user=name:0x...
};

// An inclusive address range [lo, hi] in the 16-byte (IPv4-mapped) space:
// coturn writes "a-b", we also accept CIDR and single addresses.
struct AddressRange {
  IpAddress lo;
  IpAddress hi;
  std::string text;
  [[nodiscard]] bool contains(const IpAddress& ip) const noexcept { return lo <= ip && ip <= hi; }
};

struct ExternalIp {
  IpAddress public_ip;
  IpAddress private_ip;  // unspecified: applies to every relay address
};

struct Config {
  // Listeners (RFC 8656 §3.1: UDP/TCP 3478, TLS 5349).
  uint16_t listening_port = 3478;
  uint16_t tls_listening_port = 5349;
  uint16_t alt_listening_port = 0;       // extra UDP+TCP port, e.g. 443; 0 = off
  uint16_t alt_tls_listening_port = 0;   // extra TLS port; 0 = off
  std::vector<IpAddress> listening_ips;  // empty = 0.0.0.0
  bool no_udp = false, no_tcp = false, no_tls = false;
  bool no_dtls = false;  // DTLS (RFC 7350) on the TLS ports' UDP side
  std::string cert, pkey;
  std::string pkey_password;  // pkey-pwd
  // cipher-list as written, and what validate_config() keeps of it (the
  // ECDHE+AEAD suites, OpenSSL syntax; empty = every safe suite).
  std::string cipher_list;
  std::string cipher_list_effective;
  std::string ec_curve;  // ec-curve-name (OpenSSL group names)

  // Relay.
  std::vector<IpAddress> relay_ips;  // empty = first listening IP, else 0.0.0.0 is refused
  std::vector<ExternalIp> external_ips;
  uint16_t min_port = 49152, max_port = 65535;

  // Auth.
  std::string realm = "dpturn.local";
  bool lt_cred_mech = true;
  bool use_auth_secret = false;
  std::vector<std::string> static_auth_secrets;
  std::vector<StaticUser> users;
  redis::Endpoint redis_userdb;
  uint32_t nonce_lifetime_s = 600;
  std::string server_secret;  // nonce HMAC key; random when empty (set it for several instances)

  // Lifetimes (RFC 8656 §3.9, §9, §12).
  uint32_t default_allocate_lifetime_s = 600;
  uint32_t max_allocate_lifetime_s = 3600;
  uint32_t permission_lifetime_s = 300;
  uint32_t channel_lifetime_s = 600;
  bool no_tcp_relay = false;  // refuse RFC 6062 TCP allocations (442)
  // Accept RFC 5766 channel numbers 0x5000-0x7FFF too (RFC 8656 §12 reserves them).
  bool legacy_channel_range = false;

  // Policy.
  std::vector<AddressRange> denied_peers;
  std::vector<AddressRange> allowed_peers;
  bool allow_loopback_peers = false;
  uint32_t user_quota = 0;   // allocations per user, 0 = unlimited
  uint32_t total_quota = 0;  // allocations in all, 0 = unlimited
  uint64_t max_bps = 0;      // per allocation, bytes/s each way, 0 = unlimited
  // Permissions (distinct peer IPs) per allocation; ICE needs a handful per
  // remote candidate set. Over it: 508 (RFC 8656 §10.2, §19). 0 = none.
  uint32_t max_permissions = 1000;
  // Per source IP. Not requests: one address may be a whole NAT (a meeting
  // of 1,000 behind one enterprise NAT must start), so 0 = unlimited.
  uint32_t request_rate_limit = 0;   // requests per second per source IP
  uint32_t unauth_rate_limit = 500;  // 401/438 answers per second per source IP (guessing)
  // Bytes of unauthenticated UDP answers a source may get beyond what it
  // sent (anti-reflection/amplification), once; 0 = off.
  uint32_t reflection_burst = 65536;

  // Redirects (RFC 8489 §10, coturn's keys): every new Allocate is answered
  // 300 Try Alternate naming the next of these, round robin; and where a
  // draining instance sends new Allocates when the fleet names no other.
  std::vector<SocketAddress> alternate_servers;      // UDP and TCP clients
  std::vector<SocketAddress> tls_alternate_servers;  // TLS clients
  std::string alternate_domain;                      // ALTERNATE-DOMAIN sent with TLS redirects

  // State (dpturn: the data plane reads it).
  redis::Endpoint state_redis;
  std::string instance_id;              // names this host's instance in the store; hostname by default
  uint32_t state_queue_limit = 200000;  // events held while the store is away; beyond: a full resync

  // coturn's Prometheus exporter keys: the admin API's /metrics, without a
  // token, on its own port (docs/admin-api.md says what it exposes).
  bool prometheus = false;
  uint16_t prometheus_port = 9641;
  IpAddress prometheus_ip;  // prometheus-address; unset: admin-ip
  bool prometheus_ip_set = false;
  std::string prometheus_path = "/metrics";

  // Admin API (dpturn).
  IpAddress admin_ip = IpAddress::v4(0x7f000001);
  uint16_t admin_port = 8080;  // 0 = off; off by default when no admin-token is set
  bool admin_port_set = false;
  std::string admin_token;

  // Process.
  unsigned relay_threads = 0;  // 0 = one per CPU
  bool verbose = false;
  std::string log_file;
  bool software_attribute = true;
  bool fingerprint = false;  // coturn compatibility: always add FINGERPRINT

  // Where the values came from, for messages.
  std::string source;
  // coturn keys accepted and ignored, as "file:line: key"; turn-control
  // reports each one (--check-config prints them, a start logs them).
  std::vector<std::string> ignored_keys;
  // What validate_config() changed of what the file asked, for the
  // operator ("cipher-list: kept ...; dropped ..."); --check-config prints
  // them as "note:" lines, a start logs them as warnings.
  std::vector<std::string> notes;
};

// Parses a turnserver.conf-style file. Throws ConfigError naming file, line,
// key and value on any unknown key or bad value.
void load_config_file(const std::string& path, Config& cfg);
// Applies one "key=value" / "key value" / "key" line; `where` is used in errors.
void apply_config_line(const std::string& line, const std::string& where, Config& cfg);
// Cross-key checks after everything is loaded (ports, certs present, ...).
void validate_config(Config& cfg);

// Parses coturn-style address ranges: "a.b.c.d-e.f.g.h", CIDR, or one address.
AddressRange parse_address_range(const std::string& text);

}  // namespace turn::cp
