// SPDX-License-Identifier: Apache-2.0
// turnctl: command-line client of turn-control's admin API.
//
//   turnctl [--url URL] [--token TOKEN] COMMAND
//     status                     listeners, realm, Redis
//     health                     exit 0 when healthy
//     usage [--json]             "TURN relay usage": live allocations, per user
//                                (kernel path + fast path counters)
//     user list | user add NAME [--password P] | user del NAME
//     metrics                    Prometheus text
//     servers add|list|get|status|delete   the TURN server registry
// The token comes from --token, $DPTURN_ADMIN_TOKEN or --token-file.
#include <httplib.h>

#include <csignal>
#include <algorithm>
#include <chrono>
#include <thread>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

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
         "  usage [--fleet] [--json]     TURN relay usage: live allocations and per-user totals,\n"
         "                               packets/bytes each way, kernel path + data-plane fast path;\n"
         "                               --fleet: every instance's, from the state store\n"
         "  drain [INSTANCE] [--force] [--until-empty] [--timeout S]\n"
         "                               new Allocates go elsewhere (300 Try Alternate), calls go on;\n"
         "                               INSTANCE: another live one of the fleet (default: this one);\n"
         "                               --until-empty: wait until its last allocation has ended\n"
         "                               (exit 1 after --timeout, default 3600 s)\n"
         "  undrain [INSTANCE]           serve new Allocates again\n"
         "  adopt INSTANCE [--wait S]    take over a dead instance's calls (host failover); waits up to S s\n"
         "                               (0-60) for its membership to expire; never a live one\n"
         "  user list                    credentials in the local database\n"
         "  user add NAME [--password P] create (random password printed if none given)\n"
         "  user del NAME                delete\n"
         "  metrics                      Prometheus metrics\n"
         "  servers list                 registered TURN servers with their last status\n"
         "  servers add SERVER_ADDRESS CLIENT_ADDRESS -u USER -p PASS [--type udp|tcp|tls]\n"
         "                               register a TURN server (type defaults to the URI's, else udp)\n"
         "  servers get ID | servers delete ID\n"
         "  servers status ID [--json]   probe it now: reachable and round trip (exit 1 if not)\n"
         "  probe turn:HOST[:PORT][?transport=udp|tcp] | turns:HOST[:PORT] | IP:PORT\n"
         "        -u USER -p PASS [--hold SECONDS] [--peer IP:PORT] [--json]\n"
         "                               authenticated Allocate + Refresh(0) against any TURN\n"
         "                               server; prints reachable and the round trip\n"
         "                               (--peer: also CreatePermission + ChannelBind 0x4000)\n"
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

int probe(const std::vector<std::string>& args, const std::string& user, const std::string& pass, int hold_s,
          bool as_json, const std::string& peer_text) {
  turn::cp::TurnTarget target;
  std::string err;
  if (args.size() != 2 || !turn::cp::parse_turn_target(args[1], target, &err)) {
    std::cerr << "turnctl probe: " << (err.empty() ? "needs one TURN URI" : err) << "\n";
    return 2;
  }
  if (user.empty() || pass.empty()) {
    std::cerr << "turnctl probe: -u USER and -p PASS are required\n";
    return 2;
  }
  std::optional<turn::SocketAddress> peer;
  if (!peer_text.empty()) {
    peer = turn::SocketAddress::parse(peer_text);
    if (!peer || peer->port == 0) {
      std::cerr << "turnctl probe: --peer wants IP:PORT, got '" << peer_text << "'\n";
      return 2;
    }
  }
  auto r =
      turn::cp::probe_turn_server(target, user, pass, std::chrono::milliseconds(2000), hold_s, peer ? &*peer : nullptr);
  if (as_json) {
    std::cout << json{{"reachable", r.reachable},
                      {"roundTripTimeMs", r.reachable ? json(r.rtt_ms) : json(nullptr)},
                      {"relay", r.relay},
                      {"error", r.reachable ? json(nullptr) : json(r.error)}}
                     .dump()
              << "\n";
  } else if (r.reachable) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.3f", r.rtt_ms);
    std::cout << "reachable: " << args[1] << " round trip " << buf << " ms, relay " << r.relay << "\n";
  } else {
    std::cout << "unreachable: " << args[1] << ": " << r.error << "\n";
  }
  return r.reachable ? 0 : 1;
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
  std::string password, probe_user, probe_pass, type, peer;
  int hold_s = 0, timeout_s = 3600, wait_s = 0;
  bool as_json = false, force = false, until_empty = false;
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
    if (a == "--url")
      url = value();
    else if (a == "--token")
      token = value();
    else if (a == "--token-file") {
      std::ifstream f(value());
      std::getline(f, token);
    } else if (a == "--password")
      password = value();
    else if (a == "-u" || a == "--user")
      probe_user = value();
    else if (a == "-p" || a == "--pass")
      probe_pass = value();
    else if (a == "--hold")
      hold_s = std::atoi(value().c_str());
    else if (a == "--json")
      as_json = true;
    else if (a == "--type")
      type = value();
    else if (a == "--peer")
      peer = value();
    else if (a == "--timeout") {
      std::string v = value();
      char* end = nullptr;
      long t = std::strtol(v.c_str(), &end, 10);
      if (v.empty() || *end || t < 1 || t > 86400) {
        std::cerr << "turnctl: --timeout " << v << ": expected seconds, 1-86400\n";
        return 2;
      }
      timeout_s = static_cast<int>(t);
    } else if (a == "--wait") {
      std::string v = value();
      char* end = nullptr;
      long t = std::strtol(v.c_str(), &end, 10);
      if (v.empty() || *end || t < 0 || t > 60) {
        std::cerr << "turnctl: --wait " << v << ": expected seconds, 0-60\n";
        return 2;
      }
      wait_s = static_cast<int>(t);
    } else if (a == "--force")
      force = true;
    else if (a == "--until-empty")
      until_empty = true;
    else
      args.push_back(a);
  }
  if (args.empty()) return usage(2);

  signal(SIGPIPE, SIG_IGN);  // TLS probes write with SSL_write (no MSG_NOSIGNAL)
  if (args[0] == "probe") return probe(args, probe_user, probe_pass, hold_s, as_json, peer);

  httplib::Client cli(url);
  cli.set_connection_timeout(3);
  cli.set_read_timeout(wait_s + 5);  // adopt --wait S holds the request up to S s
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

  // call() hands 503 answers back (health's "degraded" is one); an action
  // answered 503 with an error (no state store: adopt, another instance's
  // drain) did nothing, and says why.
  auto refused = [](const json& r) {
    if (!r.is_object() || !r.contains("error")) return false;
    std::cerr << "turnctl: 503: " << r["error"].get<std::string>() << "\n";
    return true;
  };

  const std::string& cmd = args[0];
  if (cmd == "status") {
    json s = call("GET", "/api/v1/status");
    std::cout << "dpturn " << s["version"].get<std::string>() << ", realm " << s["realm"].get<std::string>() << ", "
              << s["threads"] << " thread(s), " << s["allocations"] << " allocation(s)\n";
    std::cout << "instance " << s.value("instance", std::string("?")) << "; state store: ";
    const json& st = s.contains("state_store") ? s["state_store"] : json::object();
    if (!st.contains("endpoint")) {
      std::cout << "off";
    } else if (st["connected"].get<bool>()) {
      std::cout << "connected, master " << st["master"].get<std::string>() << " (" << st["endpoint"].get<std::string>()
                << ")";
    } else {
      std::cout << "DEGRADED: unreachable (" << st["endpoint"].get<std::string>() << ": "
                << st["last_error"].get<std::string>() << "); new calls relay on the kernel path";
    }
    if (st.contains("queue_depth"))
      std::cout << "; " << st["queue_depth"] << " event(s) queued of " << st["queue_limit"] << ", " << st["resyncs"]
                << " resync(s), " << st["master_changes"] << " master change(s), " << st["overflows"] << " overflow(s)";
    std::cout << "\nuser db redis: " << s["userdb_redis"].get<std::string>() << "\n";
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
                  << ", tx " << d["tx_packets"] << ", sync lag " << d["sync_lag_ms"] << " ms, "
                  << d.value("snapshots", 0) << " snapshot(s), " << d.value("store_disconnects", 0)
                  << " store loss(es)\n";
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
  if (cmd == "adopt") {
    if (args.size() != 2) {
      std::cerr << "turnctl: adopt needs one INSTANCE\n";
      return 2;
    }
    json r = call("POST", "/api/v1/adopt", json{{"instance", args[1]}, {"wait_s", wait_s}}.dump());
    if (refused(r)) return 1;
    std::cout << "adopted instance " << args[1] << ": " << r["adopted"] << " allocation(s), " << r["skipped"]
              << " skipped, listening on";
    for (const auto& l : r["listeners"]) std::cout << " " << l.get<std::string>();
    std::cout << " (waited " << r["waited_s"] << " s for its membership to expire)\n";
    return 0;
  }
  if (cmd == "drain" || cmd == "undrain") {
    std::string instance = args.size() > 1 ? args[1] : "";
    json body = json::object();
    if (!instance.empty()) body["instance"] = instance;
    if (force) body["force"] = true;
    json r = call("POST", cmd == "drain" ? "/api/v1/drain" : "/api/v1/undrain", body.dump());
    if (refused(r)) return 1;
    std::string who = r.value("instance", instance);
    if (cmd == "undrain") {
      std::cout << "instance " << who << ": serving new allocations" << (r.contains("requested") ? " (asked)" : "")
                << "\n";
      return 0;
    }
    std::cout << "instance " << who << ": draining" << (r.contains("requested") ? " (asked through the fleet)" : "")
              << ", " << r.value("allocations", 0) << " allocation(s) left\n";
    if (!until_empty) return 0;
    // Until the last allocation has ended: this instance's own count, or
    // the fleet view's for another one.
    auto left = [&]() -> long {
      if (instance.empty() || instance == who) {
        json d = call("GET", "/api/v1/drain");
        if (d.value("instance", std::string()) == who) return d.value("allocations", 0L);
      }
      json f = call("GET", "/api/v1/allocations?scope=fleet");
      for (const auto& i : f["instances"])
        if (i["instance"] == who) return i["allocations"].get<long>();
      return 0;
    };
    auto start = std::chrono::steady_clock::now();
    long n = left();
    while (n > 0) {
      if (std::chrono::steady_clock::now() - start >= std::chrono::seconds(timeout_s)) {
        std::cerr << "turnctl: instance " << who << " still has " << n << " allocation(s) after " << timeout_s
                  << " s\n";
        return 1;
      }
      std::this_thread::sleep_for(std::chrono::seconds(1));
      n = left();
    }
    std::cout << "instance " << who << ": empty after "
              << std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - start).count()
              << " s\n";
    return 0;
  }
  if (cmd == "usage") {
    bool fleet = std::find(args.begin(), args.end(), "--fleet") != args.end();
    json u = call("GET", fleet ? "/api/v1/allocations?scope=fleet" : "/api/v1/allocations");
    if (as_json) {
      std::cout << u.dump(2) << "\n";
      return 0;
    }
    // Kernel path + fast path; the fast path's share in parentheses.
    auto both = [](const json& a) {
      auto dir = [](const json& d) {
        return std::to_string(d.value("packets", 0ULL)) + " pkt/" + std::to_string(d.value("bytes", 0ULL)) +
               " B (fast path " + std::to_string(d.value("fastpath_packets", 0ULL)) + " pkt/" +
               std::to_string(d.value("fastpath_bytes", 0ULL)) + " B)";
      };
      return "to peer " + dir(a["to_peer"]) + ", to client " + dir(a["to_client"]);
    };
    std::string fastpath = u.value("fastpath_counters", "off");
    if (fleet) {
      std::cout << "fleet: " << u["instances"].size() << " instance(s)";
      for (const auto& i : u["instances"])
        std::cout << "; " << i["instance"].get<std::string>() << " " << i["state"].get<std::string>() << " "
                  << i["allocations"] << " allocation(s)";
      std::cout << "\n";
    }
    std::cout << u["count"] << " active allocation(s); packets and bytes relayed: turn-control's kernel path + "
              << (fastpath == "redis" ? "the data planes' fast path (from Redis)"
                  : fastpath == "off" ? "no fast path (no state-redis)"
                                      : "fast path NOT COUNTED (Redis " + fastpath + ")")
              << "\n";
    for (const auto& a : u["allocations"]) {
      std::cout << "  " << (fleet ? a["instance"].get<std::string>() + "  " : "") << a["username"].get<std::string>()
                << "  " << a["transport"].get<std::string>() << " " << a["client"].get<std::string>() << " -> relay "
                << a["relay_advertised"].get<std::string>() << "  lifetime " << age(a["lifetime_remaining_s"]) << "  "
                << both(a) << "\n";
      for (const auto& p : a["permissions"]) std::cout << "      permission " << p["peer"].get<std::string>() << "\n";
      for (const auto& c : a["channels"])
        std::cout << "      channel 0x" << std::hex << c["channel"].get<int>() << std::dec << " -> "
                  << c["peer"].get<std::string>() << "\n";
    }
    if (u.contains("users") && !u["users"].empty()) {
      std::cout << "per user:\n";
      for (const auto& x : u["users"])
        std::cout << "  " << x["username"].get<std::string>() << ": " << x["allocations"] << " allocation(s), "
                  << both(x) << "\n";
    }
    return 0;
  }
  if (cmd == "metrics") {
    call("GET", "/metrics");
    return 0;
  }
  if (cmd == "servers" && args.size() >= 2) {
    const std::string& sub = args[1];
    auto line = [](const json& e) {
      std::string st = "not probed yet";
      if (e.contains("lastStatus") && e["lastStatus"].is_object()) {
        const json& l = e["lastStatus"];
        char buf[64];
        if (l["reachable"].get<bool>()) {
          std::snprintf(buf, sizeof buf, "%.3f", l["roundTripTimeMs"].get<double>());
          st = std::string("reachable, ") + buf + " ms";
        } else {
          st = "UNREACHABLE: " + l["error"].get<std::string>();
        }
      }
      std::cout << e["id"].get<std::string>() << "  " << e["type"].get<std::string>() << "  server "
                << e["serverAddress"].get<std::string>() << "  client " << e["clientAddress"].get<std::string>()
                << "  user " << e["username"].get<std::string>() << "  (" << st << ")\n";
    };
    if (sub == "list" && args.size() == 2) {
      json l = call("GET", "/api/v1/turn-servers");
      std::cout << l["count"] << " TURN server(s), stored in " << l["persistence"].get<std::string>() << "\n";
      for (const auto& e : l["turnServers"]) line(e);
      return 0;
    }
    if (sub == "add" && args.size() == 4) {
      if (probe_user.empty() || probe_pass.empty()) {
        std::cerr << "turnctl servers add: -u USER and -p PASS are required\n";
        return 2;
      }
      if (type.empty()) {
        turn::cp::TurnTarget t;
        type = turn::cp::parse_turn_target(args[2], t, nullptr) ? turn::transport_name(t.transport) : "udp";
      }
      json e = call("POST", "/api/v1/turn-servers",
                    json{{"serverAddress", args[2]},
                         {"clientAddress", args[3]},
                         {"username", probe_user},
                         {"password", probe_pass},
                         {"type", type}}
                        .dump());
      std::cout << e["id"].get<std::string>() << "\n";
      return 0;
    }
    if (sub == "get" && args.size() == 3) {
      std::cout << call("GET", "/api/v1/turn-servers/" + args[2]).dump(2) << "\n";
      return 0;
    }
    if (sub == "delete" && args.size() == 3) {
      call("DELETE", "/api/v1/turn-servers/" + args[2]);
      std::cout << "deleted " << args[2] << "\n";
      return 0;
    }
    if (sub == "status" && args.size() == 3) {
      json st = call("GET", "/api/v1/turn-servers/" + args[2] + "/status");
      if (!st.contains("reachable")) {  // 503: too many probes in flight
        std::cerr << "turnctl: " << st.value("error", st.dump()) << "\n";
        return 1;
      }
      bool ok = st["reachable"].get<bool>();
      if (as_json) {
        std::cout << st.dump() << "\n";
      } else if (ok) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.3f", st["roundTripTimeMs"].get<double>());
        std::cout << "reachable: " << args[2] << " round trip " << buf << " ms\n";
      } else {
        std::cout << "unreachable: " << args[2] << ": " << st["error"].get<std::string>() << "\n";
      }
      return ok ? 0 : 1;
    }
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
