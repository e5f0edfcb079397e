// SPDX-License-Identifier: Apache-2.0
// turn-dataplane configuration parsing.
#include "dataplane/config.h"

#include "common/config/lexer.h"
#include "common/state/keys.h"
#include "common/util/text.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <cstring>

namespace turn::dp {

namespace {

using config::fail;

uint64_t num(const std::string& w, const std::string& k, const std::string& v, uint64_t lo, uint64_t hi) {
  return config::parse_uint(w, k, v, lo, hi);
}

uint32_t ipv4(const std::string& w, const std::string& k, const std::string& v) {
  in_addr a{};
  if (inet_pton(AF_INET, v.c_str(), &a) != 1) fail(w, k, v, "not an IPv4 address");
  return a.s_addr;
}

// "A.B.C.D[/LEN]" -> (address, netmask), network order.
std::pair<uint32_t, uint32_t> prefix(const std::string& w, const std::string& k, const std::string& v) {
  auto slash = v.find('/');
  in_addr a{};
  if (inet_pton(AF_INET, v.substr(0, slash).c_str(), &a) != 1) fail(w, k, v, "not an IPv4 address");
  unsigned bits = 32;
  if (slash != std::string::npos) {
    std::string len = v.substr(slash + 1);
    auto [p, ec] = std::from_chars(len.data(), len.data() + len.size(), bits);
    if (len.empty() || ec != std::errc{} || p != len.data() + len.size() || bits > 32)
      fail(w, k, v, "prefix length out of range 0..32");
  }
  return {a.s_addr, bits == 0 ? 0 : htonl(~uint32_t{0} << (32 - bits))};
}

std::string text(uint32_t ip) {
  char b[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &ip, b, sizeof b);
  return b;
}

}  // namespace

void apply_dp_line(const std::string& raw, const std::string& w, DpConfig& c) {
  const auto entry = config::split_line(raw);
  if (!entry) return;
  const std::string& k = entry->key;
  const std::string& v = entry->value;

  // Interface keys apply to the latest "port=" (an implicit port 0 when
  // there is none: single-port configs need no port= line).
  auto cur = [&]() -> DpInterface& {
    if (c.interfaces.empty()) c.interfaces.emplace_back();
    return c.interfaces.back();
  };
  if (k == "port") {
    if (c.interfaces.size() >= kMaxPorts) fail(w, k, v, "at most " + std::to_string(kMaxPorts) + " ports");
    DpInterface i;
    i.port_id = static_cast<uint16_t>(num(w, k, v, 0, 1023));
    c.interfaces.push_back(i);
  } else if (k == "ip") {
    auto [ip, mask] = prefix(w, k, v);
    cur().ip = ip;
    cur().netmask = mask;
  } else if (k == "gateway")
    cur().gateway = ipv4(w, k, v);
  else if (k == "ip6") {
    auto slash = v.find('/');
    in6_addr a{};
    if (inet_pton(AF_INET6, v.substr(0, slash).c_str(), &a) != 1) fail(w, k, v, "not an IPv6 address");
    unsigned bits = 64;
    if (slash != std::string::npos) bits = static_cast<unsigned>(num(w, k, v.substr(slash + 1), 1, 128));
    cur().has_ip6 = true;
    std::memcpy(cur().ip6.b, &a, 16);
    cur().prefix6 = static_cast<uint8_t>(bits);
  } else if (k == "gateway6") {
    in6_addr a{};
    if (inet_pton(AF_INET6, v.c_str(), &a) != 1) fail(w, k, v, "not an IPv6 address");
    std::memcpy(cur().gateway6.b, &a, 16);
  } else if (k == "route") {
    // route=NET/LEN,GATEWAY
    auto comma = v.find(',');
    if (comma == std::string::npos) fail(w, k, v, "expected NET/LEN,GATEWAY");
    auto [net, mask] = prefix(w, k, v.substr(0, comma));
    if ((net & ~mask) != 0) fail(w, k, v, "host bits set in the network address");
    c.routes.push_back(DpRoute{net, mask, ipv4(w, k, v.substr(comma + 1))});
  } else if (k == "checksum-offload") {
    if (v == "auto" || v == "on" || v == "true" || v == "yes")
      c.checksum_offload = true;
    else if (v == "off" || v == "false" || v == "no")
      c.checksum_offload = false;
    else
      fail(w, k, v, "expected auto or off");
  } else if (k == "relay-ip") {
    in6_addr a6{};
    if (v.find(':') != std::string::npos) {
      if (inet_pton(AF_INET6, v.c_str(), &a6) != 1) fail(w, k, v, "not an IP address");
      Ip6 b{};
      std::memcpy(b.b, &a6, 16);
      c.relay_ips6.push_back(b);
    } else {
      c.relay_ips.push_back(ipv4(w, k, v));
    }
  } else if (k == "floating-ip")
    c.floating_ips.push_back(ipv4(w, k, v));
  else if (k == "listening-port")
    c.turn_ports[0] = config::parse_port(w, k, v);
  else if (k == "alt-listening-port") {
    const uint16_t p = config::parse_port(w, k, v, 0);
    if (p && c.turn_ports.size() < 4) c.turn_ports.push_back(p);
  } else if (k == "min-port")
    c.min_port = config::parse_port(w, k, v);
  else if (k == "max-port")
    c.max_port = config::parse_port(w, k, v);
  else if (k == "legacy-channel-range")
    c.legacy_channel_range = config::parse_bool(w, k, v);
  else if (k == "tap") {
    if (v.empty() || v.size() > 15) fail(w, k, v, "interface names are 1-15 characters");
    for (char ch : v)
      if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '-' && ch != '_' && ch != '.')
        fail(w, k, v, "interface names use letters, digits, '-', '_' and '.'");
    cur().tap_name = v;
  } else if (k == "exception-port") {
    cur().exception_port = static_cast<int>(num(w, k, v, 0, 1023));
  } else if (k == "neighbor" || k == "neighbour") {
    // neighbour=IP,MAC : a static next hop (no ARP needed for it); "neighbor" is accepted too
    auto comma = v.find(',');
    if (comma == std::string::npos) fail(w, k, v, "expected IP,MAC");
    uint32_t ip = ipv4(w, k, v.substr(0, comma));
    Mac mac{};
    unsigned b[6];
    if (std::sscanf(v.substr(comma + 1).c_str(), "%x:%x:%x:%x:%x:%x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]) != 6)
      fail(w, k, v, "MAC must be xx:xx:xx:xx:xx:xx");
    for (int i = 0; i < 6; ++i) {
      if (b[i] > 255) fail(w, k, v, "MAC byte out of range");
      mac.b[i] = static_cast<uint8_t>(b[i]);
    }
    c.neighbours.emplace_back(ip, mac);
  } else if (k == "state-redis") {
    // The same syntax as turn-control's (common/redis/endpoint.h): coturn's
    // "ip=... port=..." or "sentinel=IP:PORT[,...] master=NAME ...".
    try {
      c.store = redis::parse_endpoint(v);
    } catch (const redis::EndpointError& e) {
      fail(w, k, e.item(), e.why());
    }
  } else if (k == "allocations")
    c.allocations = static_cast<uint32_t>(num(w, k, v, 16, 1u << 24));
  else if (k == "channels")
    c.channels = static_cast<uint32_t>(num(w, k, v, 16, 1u << 26));
  else if (k == "burst")
    c.burst = static_cast<uint16_t>(num(w, k, v, 1, 64));
  else if (k == "tx-drain-us")
    c.tx_drain_us = static_cast<uint32_t>(num(w, k, v, 0, 1000));
  else if (k == "idle-sleep-us")
    c.idle_sleep_us = static_cast<uint32_t>(num(w, k, v, 0, 1000));
  else if (k == "mbufs")
    c.mbufs = static_cast<uint32_t>(num(w, k, v, 1023, 1u << 22));
  else if (k == "stats-file")
    c.stats_file = v;
  else if (k == "instance-id") {
    if (!state::valid_instance_id(v)) fail(w, k, v, std::string(state::kInstanceIdRule));
    c.instance_id = v;
  } else
    fail(w, k, v, "unknown key (see docs/dataplane.md)");
  if (c.min_port > c.max_port) fail(w, k, v, "min-port is above max-port");
}

void finish_dp_config(DpConfig& c) {
  if (c.interfaces.empty()) c.interfaces.emplace_back();
  int defaults = 0;
  for (size_t i = 0; i < c.interfaces.size(); ++i) {
    DpInterface& f = c.interfaces[i];
    std::string where = "port " + std::to_string(f.port_id);
    if (f.ip == 0)
      throw DpConfigError(where + ": ip= is required (the port's IPv4 address/prefix, shared with turn-control)");
    if (f.tap_name.empty()) f.tap_name = "dpt" + std::to_string(i);
    if (f.gateway != 0) {
      if (((f.gateway ^ f.ip) & f.netmask) != 0)
        throw DpConfigError(where + ": gateway=" + text(f.gateway) + " is not on the port's link " +
                            text(f.ip & f.netmask));
      ++defaults;
    }
    for (size_t j = 0; j < i; ++j) {
      const DpInterface& g = c.interfaces[j];
      if (g.port_id == f.port_id)
        throw DpConfigError(where + ": port=" + std::to_string(f.port_id) + " is listed twice");
      if (g.tap_name == f.tap_name && f.exception_port < 0 && g.exception_port < 0)
        throw DpConfigError(where + ": tap=" + f.tap_name + " is already the exception interface of port " +
                            std::to_string(g.port_id));
      if (f.exception_port >= 0 && f.exception_port == g.exception_port)
        throw DpConfigError(where + ": exception-port=" + std::to_string(f.exception_port) +
                            " is already used by port " + std::to_string(g.port_id));
    }
    for (const DpInterface& g : c.interfaces)
      if (f.exception_port >= 0 && f.exception_port == g.port_id)
        throw DpConfigError(where + ": exception-port=" + std::to_string(f.exception_port) + " is a network port");
  }
  if (defaults > 1)
    throw DpConfigError(
        "gateway= is set on more than one port: one default route only (use route=NET/LEN,GATEWAY for the others)");
  for (const DpRoute& r : c.routes) {
    bool on_link = false;
    for (const DpInterface& f : c.interfaces) on_link |= ((r.gateway ^ f.ip) & f.netmask) == 0;
    if (!on_link)
      throw DpConfigError("route=" + text(r.net) + ",...: gateway " + text(r.gateway) +
                          " is on none of the ports' links");
  }
  for (const DpInterface& f : c.interfaces) {
    bool gw = !(f.gateway6 == Ip6{});
    if (gw && !f.has_ip6) throw DpConfigError("port " + std::to_string(f.port_id) + ": gateway6= needs ip6=");
  }
  if (c.relay_ips.empty()) c.relay_ips.push_back(c.interfaces.front().ip);
  if (c.relay_ips6.empty())
    for (const DpInterface& f : c.interfaces)
      if (f.has_ip6 && c.relay_ips6.size() < kMaxRelayAddresses) c.relay_ips6.push_back(f.ip6);
  for (uint32_t ip : c.floating_ips)
    if (std::find(c.relay_ips.begin(), c.relay_ips.end(), ip) == c.relay_ips.end()) c.relay_ips.push_back(ip);
  if (c.relay_ips.size() > kMaxRelayAddresses)
    throw DpConfigError("relay-ip: at most " + std::to_string(kMaxRelayAddresses) + " IPv4 relay addresses (" +
                        std::to_string(c.relay_ips.size()) + " given, floating-ip ones included)");
  if (c.interfaces.size() + c.floating_ips.size() > kMaxPorts)
    throw DpConfigError("floating-ip: at most " + std::to_string(kMaxPorts) +
                        " port and floating addresses together (" +
                        std::to_string(c.interfaces.size() + c.floating_ips.size()) + " given)");
  if (c.relay_ips6.size() > kMaxRelayAddresses)
    throw DpConfigError("relay-ip: at most " + std::to_string(kMaxRelayAddresses) + " IPv6 relay addresses (" +
                        std::to_string(c.relay_ips6.size()) + " given)");
}

void load_dp_config(const std::string& path, DpConfig& cfg) {
  config::read_lines(path,
                     [&cfg](const std::string& line, const std::string& where) { apply_dp_line(line, where, cfg); });
}

}  // namespace turn::dp
