// SPDX-License-Identifier: Apache-2.0
// turnctl: command-line client of turn-control's admin API.
//
//   turnctl [--url URL] [--token TOKEN] COMMAND
//     status                     listeners, realm, Redis
//     health                     exit 0 when healthy
//     usage                      "TURN relay usage": live allocations
//     user list | user add NAME [--password P] | user del NAME
//     metrics                    Prometheus text
// The token comes from --token, $DPTURN_ADMIN_TOKEN or --token-file.
#include <httplib.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include <netdb.h>

#include <thread>

#include "common/crypto/integrity.h"
#include "controlplane/client/turn_client.h"
#include "controlplane/net/socket.h"

using json = nlohmann::json;

namespace {

int usage(int code) {
  (code ? std::cerr : std::cout)
      << "usage: turnctl [--url http://127.0.0.1:8080] [--token T | --token-file F] COMMAND\n"
         "commands:\n"
         "  status                       listeners, realm, relay addresses, Redis\n"
         "  health                       exit 0 when healthy, 1 otherwise\n"
         "  usage                        TURN relay usage (live allocations)\n"
         "  user list                    credentials in the local database\n"
         "  user add NAME [--password P] create (random password printed if none given)\n"
         "  user del NAME                delete\n"
         "  metrics                      Prometheus metrics\n"
         "  probe turn:HOST[:PORT][?transport=udp|tcp] -u USER -p PASS [--hold SECONDS]\n"
         "                               authenticated Allocate + Refresh(0) against any TURN\n"
         "                               server; prints reachable and the round trip\n"
         "environment: DPTURN_ADMIN_URL, DPTURN_ADMIN_TOKEN\n";
  return code;
}

std::string random_password() {
  static constexpr char kChars[] = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
  uint8_t raw[20];
  turn::crypto::random_bytes(raw);
  std::string p;
  for (uint8_t b : raw) p.push_back(kChars[b % (sizeof kChars - 1)]);
  return p;
}

// RFC 7065 TURN URI: turn:host[:port][?transport=udp|tcp]
bool parse_turn_uri(const std::string& uri, turn::SocketAddress& server, bool& tcp, std::string& err) {
  std::string rest;
  if (uri.rfind("turn:", 0) == 0) rest = uri.substr(5);
  else { err = "expected turn:HOST[:PORT][?transport=udp|tcp], got '" + uri + "'"; return false; }
  tcp = false;
  if (auto q = rest.find('?'); q != std::string::npos) {
    std::string query = rest.substr(q + 1);
    rest = rest.substr(0, q);
    if (query == "transport=tcp") tcp = true;
    else if (query != "transport=udp") { err = "unsupported query '" + query + "'"; return false; }
  }
  std::string host = rest, port = "3478";
  if (!rest.empty() && rest[0] == '[') {
    auto close = rest.find(']');
    if (close == std::string::npos) { err = "unclosed [ in '" + uri + "'"; return false; }
    host = rest.substr(1, close - 1);
    if (close + 1 < rest.size() && rest[close + 1] == ':') port = rest.substr(close + 2);
  } else if (auto colon = rest.rfind(':'); colon != std::string::npos) {
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
  }
  addrinfo hints{};
  hints.ai_socktype = tcp ? SOCK_STREAM : SOCK_DGRAM;
  addrinfo* res = nullptr;
  if (int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0) {
    err = "cannot resolve '" + host + ":" + port + "': " + gai_strerror(rc);
    return false;
  }
  sockaddr_storage ss{};
  std::memcpy(&ss, res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
  server = turn::cp::from_sockaddr(ss);
  return true;
}

int probe(const std::vector<std::string>& args, const std::string& user, const std::string& pass, int hold_s,
          bool as_json) {
  turn::cp::TurnClient::Options o;
  std::string err;
  if (args.size() != 2 || !parse_turn_uri(args[1], o.server, o.tcp, err)) {
    std::cerr << "turnctl probe: " << (err.empty() ? "needs one TURN URI" : err) << "\n";
    return 2;
  }
  if (user.empty() || pass.empty()) {
    std::cerr << "turnctl probe: -u USER and -p PASS are required\n";
    return 2;
  }
  o.username = user;
  o.password = pass;
  turn::cp::TurnClient c(o);
  bool ok = c.connect() && c.allocate(600);
  double rtt_ms = static_cast<double>(c.last_rtt().count()) / 1000.0;
  std::string relay = ok ? c.relay().to_string() : "";
  if (ok && hold_s > 0) {
    for (int t = 0; t < hold_s; ++t) std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  if (ok && !c.refresh(0)) ok = false;
  if (as_json) {
    std::cout << json{{"reachable", ok}, {"roundTripTimeMs", ok ? rtt_ms : 0.0}, {"relay", relay},
                      {"error", ok ? "" : c.error()}}.dump() << "\n";
  } else if (ok) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.3f", rtt_ms);
    std::cout << "reachable: " << args[1] << " round trip " << buf << " ms, relay " << relay << "\n";
  } else {
    std::cout << "unreachable: " << args[1] << ": " << c.error() << "\n";
  }
  return ok ? 0 : 1;
}

std::string age(uint64_t s) {
  if (s >= 3600) return std::to_string(s / 3600) + "h" + std::to_string(s % 3600 / 60) + "m";
  if (s >= 60) return std::to_string(s / 60) + "m" + std::to_string(s % 60) + "s";
  return std::to_string(s) + "s";
}

}  // namespace

int main(int argc, char** argv) {
  std::string url = std::getenv("DPTURN_ADMIN_URL") ? std::getenv("DPTURN_ADMIN_URL") : "http://127.0.0.1:8080";
  std::string token = std::getenv("DPTURN_ADMIN_TOKEN") ? std::getenv("DPTURN_ADMIN_TOKEN") : "";
  std::vector<std::string> args;
  std::string password, probe_user, probe_pass;
  int hold_s = 0;
  bool as_json = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "turnctl: " << a << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "-h" || a == "--help") return usage(0);
    if (a == "--url") url = value();
    else if (a == "--token") token = value();
    else if (a == "--token-file") {
      std::ifstream f(value());
      std::getline(f, token);
    } else if (a == "--password") password = value();
    else if (a == "-u" || a == "--user") probe_user = value();
    else if (a == "-p" || a == "--pass") probe_pass = value();
    else if (a == "--hold") hold_s = std::atoi(value().c_str());
    else if (a == "--json") as_json = true;
    else args.push_back(a);
  }
  if (args.empty()) return usage(2);

  if (args[0] == "probe") return probe(args, probe_user, probe_pass, hold_s, as_json);

  httplib::Client cli(url);
  cli.set_connection_timeout(3);
  cli.set_read_timeout(5);
  httplib::Headers headers = {{"Authorization", "Bearer " + token}};
  auto call = [&](const std::string& method, const std::string& path, const std::string& body = "") -> json {
    httplib::Result r = method == "GET"    ? cli.Get(path.c_str(), headers)
                        : method == "POST" ? cli.Post(path.c_str(), headers, body, "application/json")
                                           : cli.Delete(path.c_str(), headers);
    if (!r) {
      std::cerr << "turnctl: cannot reach " << url << ": " << httplib::to_string(r.error()) << "\n";
      std::exit(1);
    }
    json j = json::parse(r->body, nullptr, false);
    if (r->status >= 400 && r->status != 503) {
      std::cerr << "turnctl: " << r->status << ": "
                << (j.is_object() && j.contains("error") ? j["error"].get<std::string>() : r->body) << "\n";
      std::exit(1);
    }
    if (path == "/metrics") {
      std::cout << r->body;
      std::exit(0);
    }
    return j;
  };

  const std::string& cmd = args[0];
  if (cmd == "status") {
    json s = call("GET", "/api/v1/status");
    std::cout << "dpturn " << s["version"].get<std::string>() << ", realm " << s["realm"].get<std::string>() << ", "
              << s["threads"] << " thread(s), " << s["allocations"] << " allocation(s)\n";
    std::cout << "state redis: " << s["state_redis"].get<std::string>()
              << ", user db redis: " << s["userdb_redis"].get<std::string>() << "\n";
    std::cout << "relay: ";
    for (const auto& ip : s["relay_ips"]) std::cout << ip.get<std::string>() << " ";
    std::cout << "ports " << s["relay_ports"].get<std::string>() << "\nlisteners:\n";
    for (const auto& l : s["listeners"]) {
      std::string ip = l["ip"];
      bool v6 = ip.find(':') != std::string::npos;
      std::cout << "  " << l["transport"].get<std::string>() << "\t" << (v6 ? "[" + ip + "]" : ip) << ":" << l["port"]
                << "\t" << (l["up"].get<bool>() ? "up" : "DOWN: " + l["error"].get<std::string>()) << "\n";
    }
    if (s.contains("dataplanes") && !s["dataplanes"].empty()) {
      std::cout << "data planes:\n";
      for (const auto& d : s["dataplanes"])
        std::cout << "  " << d["instance"].get<std::string>() << "\t" << (d["up"].get<bool>() ? "up" : "STALE") << "\t"
                  << d["workers"] << " worker(s), " << d["allocations"] << " allocation(s), rx " << d["rx_packets"]
                  << ", tx " << d["tx_packets"] << ", sync lag " << d["sync_lag_ms"] << " ms\n";
    } else {
      std::cout << "data planes: none (media relayed by turn-control on kernel sockets)\n";
    }
    return 0;
  }
  if (cmd == "health") {
    json h = call("GET", "/api/v1/health");
    std::cout << h.dump() << "\n";
    return h["status"] == "ok" ? 0 : 1;
  }
  if (cmd == "usage") {
    json u = call("GET", "/api/v1/allocations");
    std::cout << u["count"] << " active allocation(s)\n";
    for (const auto& a : u["allocations"]) {
      std::cout << "  " << a["username"].get<std::string>() << "  " << a["transport"].get<std::string>() << " "
                << a["client"].get<std::string>() << " -> relay " << a["relay_advertised"].get<std::string>()
                << "  lifetime " << age(a["lifetime_remaining_s"]) << "  to peer " << a["to_peer"]["packets"]
                << " pkt/" << a["to_peer"]["bytes"] << " B, to client " << a["to_client"]["packets"] << " pkt/"
                << a["to_client"]["bytes"] << " B\n";
      for (const auto& p : a["permissions"]) std::cout << "      permission " << p["peer"].get<std::string>() << "\n";
      for (const auto& c : a["channels"])
        std::cout << "      channel 0x" << std::hex << c["channel"].get<int>() << std::dec << " -> "
                  << c["peer"].get<std::string>() << "\n";
    }
    return 0;
  }
  if (cmd == "metrics") {
    call("GET", "/metrics");
    return 0;
  }
  if (cmd == "user" && args.size() >= 2) {
    if (args[1] == "list") {
      json u = call("GET", "/api/v1/users");
      for (const auto& x : u["users"]) std::cout << x["name"].get<std::string>() << "\n";
      return 0;
    }
    if (args[1] == "add" && args.size() == 3) {
      bool generated = password.empty();
      if (generated) password = random_password();
      call("POST", "/api/v1/users", json{{"name", args[2]}, {"password", password}}.dump());
      std::cout << "created " << args[2];
      if (generated) std::cout << " with password " << password;
      std::cout << "\n";
      return 0;
    }
    if (args[1] == "del" && args.size() == 3) {
      call("DELETE", "/api/v1/users/" + args[2]);
      std::cout << "deleted " << args[2] << "\n";
      return 0;
    }
  }
  std::cerr << "turnctl: unknown command\n";
  return usage(2);
}
