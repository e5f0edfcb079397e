// SPDX-License-Identifier: Apache-2.0
// turn-control's admin API over real HTTP on loopback (cpp-httplib client
// against the in-process Runtime's AdminServer): token checks, the TURN
// server registry (create/list/get/delete, every validation error, status
// probes that really Allocate + Refresh(0) against the in-process server
// over UDP, TCP and TLS, and the unreachable cases with their reasons), its
// Redis persistence (a redis-server started here on loopback), the status
// page and its login, and /metrics.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "common/state/records.h"
#include "common/state/store.h"
#include "controlplane/admin/turn_registry.h"
#include "common/redis/client.h"
#include "tests/controlplane/redis_server.h"
#include "tests/controlplane/turn_fixture.h"

extern char** environ;

namespace turn::cptest {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr const char* kToken = "admin-test-token-0123456789";

class AdminApi : public TurnServerFixture {
 protected:
  void SetUp() override { start_with({}); }

  // Restarts with an admin API on a free port plus `extra` lines.
  void start_with(std::vector<std::string> extra) {
    for (int attempt = 0; attempt < 5; ++attempt) {
      admin_port_ = free_port();
      std::vector<std::string> lines = {"admin-port=" + std::to_string(admin_port_),
                                        std::string("admin-token=") + kToken};
      lines.insert(lines.end(), extra.begin(), extra.end());
      restart(lines);
      if (port_ != admin_port_) break;  // the TURN port was picked after ours: may be the same one
    }
    http_ = std::make_unique<httplib::Client>("127.0.0.1", admin_port_);
    http_->set_connection_timeout(2);
    http_->set_read_timeout(10);
    auth_ = {{"Authorization", std::string("Bearer ") + kToken}};
  }

  struct Answer {
    int status = 0;
    json body;
    std::string text;
    httplib::Headers headers;
  };
  Answer call(const std::string& method, const std::string& path, const std::string& body = "",
              const httplib::Headers* headers = nullptr) {
    const httplib::Headers& h = headers ? *headers : auth_;
    httplib::Result r = method == "GET"    ? http_->Get(path, h)
                        : method == "POST" ? http_->Post(path, h, body, "application/json")
                                           : http_->Delete(path, h);
    Answer a;
    if (!r) {
      ADD_FAILURE() << method << " " << path << ": " << httplib::to_string(r.error());
      return a;
    }
    a.status = r->status;
    a.text = r->body;
    a.headers = r->headers;
    a.body = json::parse(r->body, nullptr, false);
    return a;
  }

  json turn_server(const std::string& type = "udp", const std::string& pass = kAlicePass) {
    return {{"serverAddress", "127.0.0.1:" + std::to_string(port_)},
            {"clientAddress", "203.0.113.10:3478"},
            {"username", kAlice},
            {"password", pass},
            {"type", type}};
  }

  std::string add(const json& body) {
    auto a = call("POST", "/api/v1/turn-servers", body.dump());
    EXPECT_EQ(a.status, 201) << a.text;
    return a.body.value("id", "");
  }

  uint16_t admin_port_ = 0;
  std::unique_ptr<httplib::Client> http_;
  httplib::Headers auth_;
};

// ---- token -------------------------------------------------------------------------

TEST_F(AdminApi, EveryApiRouteNeedsTheToken) {
  httplib::Headers none, wrong = {{"Authorization", "Bearer not-the-token"}};
  for (const char* path :
       {"/api/v1/status", "/api/v1/turn-servers", "/api/v1/turn-servers/x/status", "/metrics", "/api/v1/allocations"}) {
    EXPECT_EQ(call("GET", path, "", &none).status, 401) << path;
    EXPECT_EQ(call("GET", path, "", &wrong).status, 401) << path;
  }
  EXPECT_EQ(call("POST", "/api/v1/turn-servers", turn_server().dump(), &none).status, 401);
  EXPECT_EQ(call("GET", "/api/v1/turn-servers").body["count"], 0) << "the refused POST stored nothing";
  EXPECT_EQ(call("GET", "/api/v1/status").status, 200);
}

// ---- registry: CRUD ------------------------------------------------------------------

TEST_F(AdminApi, RegistryCreateListGetDelete) {
  EXPECT_EQ(call("GET", "/api/v1/turn-servers").body["count"], 0);
  auto created = call("POST", "/api/v1/turn-servers", turn_server().dump());
  ASSERT_EQ(created.status, 201) << created.text;
  std::string id = created.body["id"];
  EXPECT_FALSE(id.empty());
  EXPECT_EQ(created.body["serverAddress"], "127.0.0.1:" + std::to_string(port_));
  EXPECT_EQ(created.body["clientAddress"], "203.0.113.10:3478");
  EXPECT_EQ(created.body["username"], kAlice);
  EXPECT_EQ(created.body["type"], "udp");
  EXPECT_FALSE(created.body.contains("password"));
  EXPECT_EQ(created.text.find(kAlicePass), std::string::npos) << "the password is never echoed";
  EXPECT_EQ(created.headers.find("Location")->second, "/api/v1/turn-servers/" + id);

  std::string id2 = add({{"serverAddress", "turns:turn.example.org"},
                         {"clientAddress", "turns:turn.example.org:443"},
                         {"username", "bob"},
                         {"password", "pw"},
                         {"type", "tls"}});
  ASSERT_FALSE(id2.empty());
  EXPECT_NE(id, id2);

  auto list = call("GET", "/api/v1/turn-servers");
  ASSERT_EQ(list.status, 200);
  EXPECT_EQ(list.body["count"], 2);
  EXPECT_EQ(list.body["persistence"], "memory");
  ASSERT_EQ(list.body["turnServers"].size(), 2u);
  EXPECT_EQ(list.text.find(kAlicePass), std::string::npos);
  bool seen = false;
  for (const auto& e : list.body["turnServers"])
    if (e["id"] == id) {
      seen = true;
      EXPECT_EQ(e["username"], kAlice);
      EXPECT_TRUE(e["lastStatus"].is_null()) << "not probed yet";
    }
  EXPECT_TRUE(seen);

  auto one = call("GET", "/api/v1/turn-servers/" + id2);
  ASSERT_EQ(one.status, 200);
  EXPECT_EQ(one.body["serverAddress"], "turns:turn.example.org");
  EXPECT_EQ(one.body["type"], "tls");
  EXPECT_FALSE(one.body.contains("password"));

  auto unknown = call("GET", "/api/v1/turn-servers/0123456789abcdef");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(unknown.body["value"], "0123456789abcdef");
  EXPECT_EQ(call("GET", "/api/v1/turn-servers/0123456789abcdef/status").status, 404);

  auto del = call("DELETE", "/api/v1/turn-servers/" + id);
  EXPECT_EQ(del.status, 200) << del.text;
  EXPECT_EQ(call("GET", "/api/v1/turn-servers/" + id).status, 404);
  EXPECT_EQ(call("DELETE", "/api/v1/turn-servers/" + id).status, 404);
  list = call("GET", "/api/v1/turn-servers");
  EXPECT_EQ(list.body["count"], 1);
  EXPECT_EQ(list.body["turnServers"][0]["id"], id2);
}

TEST_F(AdminApi, RegistryAcceptsTurnUriForms) {
  struct Case {
    const char* server;
    const char* type;
  } cases[] = {
      {"turn:127.0.0.1:3478", "udp"},
      {"turn:127.0.0.1:3478?transport=udp", "udp"},
      {"turn:127.0.0.1:3478?transport=tcp", "tcp"},
      {"turn:127.0.0.1", "tcp"},  // no transport in the URI: the type decides
      {"turns:127.0.0.1:5349", "tls"},
      {"turns:127.0.0.1?transport=tcp", "tls"},
      {"[::1]:3478", "udp"},
      {"turn:[2001:db8::1]:3478", "udp"},
      {"turn.example.org:3478", "tcp"},
      {"  10.0.0.1:3478 ", "udp"},
  };
  for (const auto& c : cases) {
    json body = turn_server(c.type);
    body["serverAddress"] = c.server;
    auto a = call("POST", "/api/v1/turn-servers", body.dump());
    EXPECT_EQ(a.status, 201) << c.server << ": " << a.text;
  }
  EXPECT_EQ(call("GET", "/api/v1/turn-servers").body["count"], std::size(cases));
}

TEST_F(AdminApi, RegistryRefusesEachInvalidFieldNamingItAndItsValue) {
  struct Case {
    std::string what;
    json body;
    std::string field;
    json value;  // expected "value" in the answer
  };
  auto with = [&](const char* key, json v) {
    json b = turn_server();
    b[key] = std::move(v);
    return b;
  };
  auto without = [&](const char* key) {
    json b = turn_server();
    b.erase(key);
    return b;
  };
  std::vector<Case> cases = {
      {"array body", json::array({1, 2}), "body", json::array({1, 2})},
      {"missing serverAddress", without("serverAddress"), "serverAddress", nullptr},
      {"missing clientAddress", without("clientAddress"), "clientAddress", nullptr},
      {"missing username", without("username"), "username", nullptr},
      {"missing password", without("password"), "password", nullptr},
      {"missing type", without("type"), "type", nullptr},
      {"serverAddress a number", with("serverAddress", 3478), "serverAddress", 3478},
      {"serverAddress without port", with("serverAddress", "10.0.0.1"), "serverAddress", "10.0.0.1"},
      {"serverAddress port 0", with("serverAddress", "10.0.0.1:0"), "serverAddress", "10.0.0.1:0"},
      {"serverAddress port too big", with("serverAddress", "10.0.0.1:70000"), "serverAddress", "10.0.0.1:70000"},
      {"serverAddress port not a number", with("serverAddress", "10.0.0.1:http"), "serverAddress", "10.0.0.1:http"},
      {"serverAddress bad host", with("serverAddress", "bad host!:3478"), "serverAddress", "bad host!:3478"},
      {"serverAddress empty", with("serverAddress", ""), "serverAddress", ""},
      {"serverAddress IPv6 without brackets", with("serverAddress", "::1:3478"), "serverAddress", "::1:3478"},
      {"serverAddress bad query", with("serverAddress", "turn:10.0.0.1?transport=sctp"), "serverAddress",
       "turn:10.0.0.1?transport=sctp"},
      {"serverAddress other scheme", with("serverAddress", "stun:10.0.0.1:3478"), "serverAddress",
       "stun:10.0.0.1:3478"},
      {"clientAddress empty", with("clientAddress", ""), "clientAddress", ""},
      {"clientAddress not an address", with("clientAddress", "turn:"), "clientAddress", "turn:"},
      {"username empty", with("username", ""), "username", ""},
      {"username with a newline", with("username", "a\nb"), "username", "a\nb"},
      {"username an object", with("username", json{{"a", 1}}), "username", json{{"a", 1}}},
      {"type unknown", with("type", "sctp"), "type", "sctp"},
      {"type upper case", with("type", "UDP"), "type", "UDP"},
      {"type contradicts turns:",
       [&] {
         json b = turn_server("udp");
         b["serverAddress"] = "turns:10.0.0.1";
         return b;
       }(),
       "type", "udp"},
      {"type contradicts ?transport=tcp",
       [&] {
         json b = turn_server("udp");
         b["serverAddress"] = "turn:10.0.0.1?transport=tcp";
         return b;
       }(),
       "type", "udp"},
      {"unknown field (a typo)", with("serveraddress", "10.0.0.1:3478"), "serveraddress", "10.0.0.1:3478"},
  };
  for (const auto& c : cases) {
    auto a = call("POST", "/api/v1/turn-servers", c.body.dump());
    EXPECT_EQ(a.status, 400) << c.what << ": " << a.text;
    EXPECT_EQ(a.body["field"], c.field) << c.what << ": " << a.text;
    EXPECT_EQ(a.body["value"], c.value) << c.what << ": " << a.text;
    ASSERT_TRUE(a.body["error"].is_string()) << c.what;
    if (c.value.is_string() && !c.value.get<std::string>().empty()) {
      EXPECT_NE(a.body["error"].get<std::string>().find(c.value.get<std::string>()), std::string::npos)
          << c.what << ": the message quotes the value: " << a.text;
    }
  }
  // Not JSON at all.
  auto a = call("POST", "/api/v1/turn-servers", "{not json");
  EXPECT_EQ(a.status, 400);
  EXPECT_EQ(a.body["field"], "body");
  // A bad password is refused without being echoed.
  a = call("POST", "/api/v1/turn-servers", with("password", std::string(300, 'x')).dump());
  EXPECT_EQ(a.status, 400);
  EXPECT_EQ(a.body["field"], "password");
  EXPECT_EQ(a.text.find(std::string(300, 'x')), std::string::npos);
  a = call("POST", "/api/v1/turn-servers", with("password", "").dump());
  EXPECT_EQ(a.status, 400);
  EXPECT_EQ(a.body["field"], "password");
  EXPECT_EQ(call("GET", "/api/v1/turn-servers").body["count"], 0) << "nothing invalid was stored";
}

// ---- registry: status probes --------------------------------------------------------

TEST_F(AdminApi, StatusReachableMeansARealAllocateThenRefreshZero) {
  for (const char* type : {"udp", "tcp"}) {
    std::string id = add(turn_server(type));
    uint64_t allocates_before = 0;
    for (const auto* s : runtime().stats()) allocates_before += s->successes[3].load();
    auto st = call("GET", "/api/v1/turn-servers/" + id + "/status");
    ASSERT_EQ(st.status, 200) << type << ": " << st.text;
    EXPECT_EQ(st.body["id"], id);
    EXPECT_EQ(st.body["reachable"], true) << type << ": " << st.text;
    ASSERT_TRUE(st.body["roundTripTimeMs"].is_number()) << st.text;
    EXPECT_GT(st.body["roundTripTimeMs"].get<double>(), 0.0);
    EXPECT_LT(st.body["roundTripTimeMs"].get<double>(), 1000.0);
    EXPECT_TRUE(st.body["error"].is_null());
    uint64_t allocates_after = 0;
    for (const auto* s : runtime().stats()) allocates_after += s->successes[3].load();
    EXPECT_EQ(allocates_after, allocates_before + 1) << type << ": the server granted exactly one Allocate";
    EXPECT_TRUE(allocations_become(0)) << type << ": Refresh(0) released the probe's allocation";
    // The list now carries the last status.
    auto one = call("GET", "/api/v1/turn-servers/" + id);
    EXPECT_EQ(one.body["lastStatus"]["reachable"], true) << one.text;
  }
}

TEST_F(AdminApi, StatusUnreachableWithWrongPasswordSaysWhy) {
  std::string id = add(turn_server("udp", "not-alices-password"));
  auto st = call("GET", "/api/v1/turn-servers/" + id + "/status");
  ASSERT_EQ(st.status, 200) << st.text;
  EXPECT_EQ(st.body["reachable"], false);
  EXPECT_TRUE(st.body["roundTripTimeMs"].is_null());
  ASSERT_TRUE(st.body["error"].is_string());
  EXPECT_NE(st.body["error"].get<std::string>().find("401"), std::string::npos) << st.text;
  EXPECT_EQ(live_allocations(), 0u);
}

TEST_F(AdminApi, StatusUnreachableOnAClosedPortSaysWhy) {
  uint16_t closed = free_port();  // nothing listens there (UDP: ICMP port unreachable; TCP: RST)
  for (const char* type : {"udp", "tcp", "tls"}) {
    json body = turn_server(type);
    body["serverAddress"] = "127.0.0.1:" + std::to_string(closed);
    std::string id = add(body);
    auto st = call("GET", "/api/v1/turn-servers/" + id + "/status");
    ASSERT_EQ(st.status, 200) << st.text;
    EXPECT_EQ(st.body["reachable"], false) << type;
    EXPECT_TRUE(st.body["roundTripTimeMs"].is_null());
    ASSERT_TRUE(st.body["error"].is_string());
    EXPECT_NE(st.body["error"].get<std::string>().find("refused"), std::string::npos) << type << ": " << st.text;
    EXPECT_NE(st.body["error"].get<std::string>().find(std::to_string(closed)), std::string::npos) << st.text;
  }
}

TEST_F(AdminApi, StatusOfASilentServerIsBoundedAndDoesNotBlockOtherRequests) {
  // A UDP socket that takes requests and never answers.
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(0x7f000001);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin), 0);
  socklen_t len = sizeof sin;
  getsockname(fd, reinterpret_cast<sockaddr*>(&sin), &len);
  json body = turn_server();
  body["serverAddress"] = "127.0.0.1:" + std::to_string(ntohs(sin.sin_port));
  std::string id = add(body);

  auto start = Clock::now();
  auto probe = std::async(std::launch::async, [&] {
    httplib::Client c("127.0.0.1", admin_port_);
    c.set_read_timeout(10);
    auto r = c.Get("/api/v1/turn-servers/" + id + "/status", auth_);
    return r ? json::parse(r->body, nullptr, false) : json();
  });
  sleep_ms(200);
  // Meanwhile the admin API answers at once.
  auto t0 = Clock::now();
  EXPECT_EQ(call("GET", "/api/v1/health").status, 200);
  EXPECT_LT(Clock::now() - t0, std::chrono::milliseconds(500));
  json st = probe.get();
  auto took = Clock::now() - start;
  close(fd);
  EXPECT_EQ(st["reachable"], false) << st.dump();
  EXPECT_NE(st["error"].get<std::string>().find("timeout"), std::string::npos) << st.dump();
  EXPECT_LT(took, std::chrono::milliseconds(3500)) << "a probe is bounded";
  EXPECT_GE(took, std::chrono::milliseconds(900)) << "it did wait for an answer";
}

// A TLS listener with a certificate made here by the openssl command.
TEST_F(AdminApi, StatusReachableOverTls) {
  auto dir = std::filesystem::temp_directory_path() / ("dpturn-admin-tls-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::string cmd =
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
      "-subj /CN=dpturn-test -keyout " +
      (dir / "key.pem").string() + " -out " + (dir / "cert.pem").string() + " >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << "openssl (scripts/setup.sh installs it) made no certificate";
  uint16_t tls_port = free_port();
  start_with({"no-tls=no", "tls-listening-port=" + std::to_string(tls_port), "cert=" + (dir / "cert.pem").string(),
              "pkey=" + (dir / "key.pem").string()});
  json body = turn_server("tls");
  body["serverAddress"] = "turns:127.0.0.1:" + std::to_string(tls_port);
  std::string id = add(body);
  auto st = call("GET", "/api/v1/turn-servers/" + id + "/status");
  std::filesystem::remove_all(dir);
  EXPECT_EQ(st.body["reachable"], true) << st.text;
  EXPECT_TRUE(st.body["roundTripTimeMs"].is_number()) << st.text;
  EXPECT_TRUE(allocations_become(0));
  // The plain TCP port takes TLS too (issue 16: a ClientHello is detected
  // there, as coturn does).
  body["serverAddress"] = "127.0.0.1:" + std::to_string(port_);
  id = add(body);
  st = call("GET", "/api/v1/turn-servers/" + id + "/status");
  EXPECT_EQ(st.body["reachable"], true) << st.text;
  // A TLS probe at a port that answers STUN over plain UDP only fails and says so.
  start_with({});
  body["serverAddress"] = "127.0.0.1:" + std::to_string(port_);
  id = add(body);
  st = call("GET", "/api/v1/turn-servers/" + id + "/status");
  EXPECT_EQ(st.body["reachable"], false) << st.text;
  EXPECT_NE(st.body["error"].get<std::string>().find("TLS"), std::string::npos) << st.text;
}

// ---- status page and its login -------------------------------------------------------

TEST_F(AdminApi, StatusPageNeedsALoginAndTheSessionCookieOnlyReads) {
  httplib::Headers none;
  // Not logged in: the login form, not the page.
  auto login = call("GET", "/", "", &none);
  EXPECT_EQ(login.status, 200);
  EXPECT_NE(login.text.find("action=\"/login\""), std::string::npos);
  EXPECT_EQ(login.text.find("id=\"allocations\""), std::string::npos);
  // A wrong token: 401 and the form again; no cookie.
  auto wrong = http_->Post("/login", none, "token=nope", "application/x-www-form-urlencoded");
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 401);
  EXPECT_FALSE(wrong->has_header("Set-Cookie"));
  EXPECT_NE(wrong->body.find("Wrong admin token"), std::string::npos);
  EXPECT_EQ(call("GET", "/?token=nope", "", &none).status, 401);
  // The right token: a session cookie and a redirect to the page.
  auto ok = http_->Post("/login", none, std::string("token=") + kToken, "application/x-www-form-urlencoded");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 303);
  EXPECT_EQ(ok->get_header_value("Location"), "/");
  std::string cookie = ok->get_header_value("Set-Cookie");
  EXPECT_NE(cookie.find("HttpOnly"), std::string::npos);
  EXPECT_NE(cookie.find("SameSite=Strict"), std::string::npos);
  EXPECT_EQ(cookie.find(kToken), std::string::npos) << "the cookie is a session id, not the token";
  std::string session = cookie.substr(0, cookie.find(';'));
  httplib::Headers with_cookie = {{"Cookie", "other=1; " + session}};
  auto page = call("GET", "/", "", &with_cookie);
  EXPECT_EQ(page.status, 200);
  EXPECT_NE(page.text.find("id=\"allocations\""), std::string::npos);
  EXPECT_NE(page.headers.find("Content-Security-Policy")->second.find("default-src 'none'"), std::string::npos);
  EXPECT_EQ(page.text.find("http://"), std::string::npos) << "nothing loaded from elsewhere";
  EXPECT_EQ(page.text.find("https://"), std::string::npos) << "nothing loaded from elsewhere";
  // The cookie reads the API the page polls...
  for (const char* path : {"/api/v1/status", "/api/v1/users", "/api/v1/allocations", "/api/v1/turn-servers"})
    EXPECT_EQ(call("GET", path, "", &with_cookie).status, 200) << path;
  // ...but changes nothing (a cross-site form cannot use it).
  EXPECT_EQ(call("POST", "/api/v1/turn-servers", turn_server().dump(), &with_cookie).status, 401);
  EXPECT_EQ(call("POST", "/api/v1/users", R"({"name":"eve","password":"12345678"})", &with_cookie).status, 401);
  // ?token= logs in too and drops the token from the address.
  auto via_query = http_->Get(std::string("/status?token=") + kToken, none);
  ASSERT_TRUE(via_query);
  EXPECT_EQ(via_query->status, 303);
  EXPECT_EQ(via_query->get_header_value("Location"), "/status");
  // Assets are public and static.
  auto js = call("GET", "/ui/app.js", "", &none);
  EXPECT_EQ(js.status, 200);
  EXPECT_NE(js.text.find("/api/v1/allocations"), std::string::npos);
  EXPECT_EQ(js.text.find("innerHTML"), std::string::npos) << "values go in as text only";
  EXPECT_EQ(call("GET", "/ui/app.css", "", &none).status, 200);
  // Logout ends the session.
  auto out = http_->Post("/logout", with_cookie, "", "application/x-www-form-urlencoded");
  ASSERT_TRUE(out);
  EXPECT_EQ(out->status, 303);
  EXPECT_EQ(call("GET", "/api/v1/status", "", &with_cookie).status, 401);
  EXPECT_EQ(call("GET", "/", "", &with_cookie).text.find("id=\"allocations\""), std::string::npos);
  // A made-up session id is refused.
  httplib::Headers forged = {{"Cookie", "dpturn_session=" + std::string(64, 'a')}};
  EXPECT_EQ(call("GET", "/api/v1/status", "", &forged).status, 401);
}

// ---- /metrics --------------------------------------------------------------------------

TEST_F(AdminApi, MetricsCountWhatHappened) {
  SocketAddress relay;
  auto c = allocated(&relay);
  ASSERT_TRUE(c->create_permission(SocketAddress{IpAddress::v4(0x7f000001), 9}).success());
  ASSERT_TRUE(c->channel_bind(0x4001, SocketAddress{IpAddress::v4(0x7f000001), 9}).success());
  auto bad = client(Proto::Udp, kAlice, "wrong");
  EXPECT_EQ(bad->allocate().error(), 401);
  // A registered, probed server gets an up gauge. (Label escaping is
  // checked by tests/controlplane/metrics_parse_test.py with a data plane
  // whose name needs it.)
  std::string id = add(turn_server());
  ASSERT_EQ(call("GET", "/api/v1/turn-servers/" + id + "/status").body["reachable"], true);
  auto m = call("GET", "/metrics");
  ASSERT_EQ(m.status, 200);
  EXPECT_NE(m.headers.find("Content-Type")->second.find("text/plain; version=0.0.4"), std::string::npos);
  const std::string& t = m.text;
  auto has = [&](const std::string& line) { return t.find("\n" + line + "\n") != std::string::npos; };
  EXPECT_TRUE(has("dpturn_allocations 1")) << t;
  EXPECT_TRUE(has("dpturn_permissions 1")) << t;
  EXPECT_TRUE(has("dpturn_channels 1")) << t;
  EXPECT_TRUE(has("dpturn_auth_failures_total 1")) << t;
  EXPECT_TRUE(has(R"(dpturn_requests_total{method="allocate",result="success"} 2)")) << t;  // ours + the probe's
  EXPECT_TRUE(has(R"(dpturn_requests_total{method="channel_bind",result="success"} 1)")) << t;
  EXPECT_TRUE(has(R"(dpturn_requests_total{method="refresh",result="success"} 1)")) << t;  // the probe's Refresh(0)
  EXPECT_TRUE(has("dpturn_turn_servers 1")) << t;
  EXPECT_TRUE(has(R"(dpturn_turn_server_up{id=")" + id + R"(",server="127.0.0.1:)" + std::to_string(port_) + R"("} 1)"))
      << t;
  EXPECT_TRUE(has(R"(dpturn_listener_up{transport="udp",ip="127.0.0.1",port=")" + std::to_string(port_) + R"("} 1)"))
      << t;
  EXPECT_TRUE(has("# TYPE dpturn_drops_total counter")) << t;
  EXPECT_TRUE(has(R"(dpturn_thread_requests_total{thread="0"} )" + std::to_string([&] {
                    uint64_t n = 0;
                    for (const auto& r : runtime().stats()[0]->requests) n += r.load();
                    return n;
                  }())))
      << t;
}

// ---- registry: Redis persistence ----------------------------------------------------

cp::TurnServerEntry entry(const std::string& server, const std::string& type = "udp") {
  cp::TurnServerEntry e;
  auto err = cp::TurnServerRegistry::parse({{"serverAddress", server},
                                            {"clientAddress", "198.51.100.1:3478"},
                                            {"username", "app"},
                                            {"password", "app-secret"},
                                            {"type", type}},
                                           e);
  EXPECT_FALSE(err) << err->to_json().dump();
  return e;
}

// ---- relay usage: kernel path + fast path ---------------------------------------------

// A data plane's per-allocation counters, written by the same typed writer
// turn-dataplane's StateSync::push_counters uses every second
// (state::append_fast_traffic: HINCRBY of the dp_* fields by what it
// relayed since its last push).
void push_dataplane_counters(redis::Client& c, const std::string& id, uint64_t to_peer_packets, uint64_t to_peer_bytes,
                             uint64_t to_client_packets, uint64_t to_client_bytes) {
  state::append_fast_traffic(c, id, {to_peer_packets, to_peer_bytes, to_client_packets, to_client_bytes});
  for (const auto& r : c.replies()) ASSERT_EQ(r.type, redis::Reply::Type::Integer) << r.str;
}

// {packets, bytes, kernel_packets, kernel_bytes, fastpath_packets, fastpath_bytes} of one direction.
std::vector<uint64_t> counts(const json& dir) {
  std::vector<uint64_t> out;
  for (const char* k : {"packets", "bytes", "kernel_packets", "kernel_bytes", "fastpath_packets", "fastpath_bytes"})
    out.push_back(dir.contains(k) ? dir[k].get<uint64_t>() : ~0ULL);
  return out;
}
using Counts = std::vector<uint64_t>;

TEST_F(AdminApi, RelayUsageSumsTheKernelPathAndTheFastPathPerAllocationAndPerUser) {
  SKIP_WITHOUT_HIREDIS();
  // Without a state Redis no data plane can relay: the fast path is "off".
  EXPECT_EQ(call("GET", "/api/v1/allocations").body["fastpath_counters"], "off");

  auto redis = std::make_unique<RedisServer>();
  ASSERT_TRUE(redis->up()) << "redis-server (scripts/setup.sh installs it) did not start";
  start_with({"state-redis=\"ip=127.0.0.1 port=" + std::to_string(redis->endpoint().port) + "\""});

  // Kernel path: alice's first allocation relays 3 x 100 bytes to a peer
  // and gets 1 x 40 back; her second and bob's relay nothing here.
  SocketAddress relay1, relay2, relay3;
  auto a1 = allocated(&relay1);
  auto a2 = allocated(&relay2);
  auto b1 = allocated(&relay3, Proto::Udp, kBob, kBobPass);
  UdpPeer peer;
  ASSERT_TRUE(a1->create_permission(peer.address()).success());
  std::vector<uint8_t> hundred(100, 0xab), forty(40, 0xcd);
  for (int i = 0; i < 3; ++i) {
    a1->send_indication(peer.address(), Bytes{hundred});
    ASSERT_TRUE(peer.receive(kReplyTimeoutMs)) << i;
  }
  peer.send_to(relay1, Bytes{forty});
  ASSERT_TRUE(a1->next_frame(kReplyTimeoutMs)) << "the Data indication";

  auto ids = [&] {
    std::map<std::string, std::string> by_client;  // client address -> allocation id
    auto list = call("GET", "/api/v1/allocations");
    for (const auto& a : list.body["allocations"])
      by_client[a["client"].get<std::string>()] = a["id"].get<std::string>();
    return by_client;
  }();
  ASSERT_EQ(ids.size(), 3u);
  const std::string id1 = ids[a1->local().to_string()], id2 = ids[a2->local().to_string()],
                    id3 = ids[b1->local().to_string()];
  ASSERT_FALSE(id1.empty() || id2.empty() || id3.empty());

  // Fast path: two pushes for alice's first (they add up), one for her
  // second, none for bob's.
  redis::Client rc(redis->endpoint());
  rc.connect();
  push_dataplane_counters(rc, id1, 10, 1000, 20, 2400);
  push_dataplane_counters(rc, id1, 5, 500, 1, 60);
  push_dataplane_counters(rc, id2, 7, 1120, 0, 0);

  auto u = call("GET", "/api/v1/allocations");
  ASSERT_EQ(u.status, 200) << u.text;
  EXPECT_EQ(u.body["fastpath_counters"], "redis");
  std::map<std::string, json> by_id;
  for (const auto& a : u.body["allocations"]) by_id[a["id"].get<std::string>()] = a;
  //                                   total pkts, bytes, kernel pkts, bytes, fast pkts, bytes
  EXPECT_EQ(counts(by_id[id1]["to_peer"]), (Counts{18, 1800, 3, 300, 15, 1500}));
  EXPECT_EQ(counts(by_id[id1]["to_client"]), (Counts{22, 2500, 1, 40, 21, 2460}));
  EXPECT_EQ(counts(by_id[id2]["to_peer"]), (Counts{7, 1120, 0, 0, 7, 1120}));
  EXPECT_EQ(counts(by_id[id2]["to_client"]), (Counts{0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(counts(by_id[id3]["to_peer"]), (Counts{0, 0, 0, 0, 0, 0}));

  // Per user: alice's two allocations summed, bob's one.
  ASSERT_EQ(u.body["users"].size(), 2u) << u.text;
  const json& alice = u.body["users"][0];
  const json& bob = u.body["users"][1];
  EXPECT_EQ(alice["username"], kAlice);
  EXPECT_EQ(alice["allocations"], 2);
  EXPECT_EQ(counts(alice["to_peer"]), (Counts{25, 2920, 3, 300, 22, 2620}));
  EXPECT_EQ(counts(alice["to_client"]), (Counts{22, 2500, 1, 40, 21, 2460}));
  EXPECT_EQ(bob["username"], kBob);
  EXPECT_EQ(bob["allocations"], 1);
  EXPECT_EQ(counts(bob["to_peer"]), (Counts{0, 0, 0, 0, 0, 0}));

  // turn-control's own per-second write of its cp_* fields into the same
  // hash leaves the data plane's dp_* fields alone.
  // (Written every second: wait, bounded, for the write after the sends.)
  for (int i = 0; i < 60 && rc.command({"HGET", state::traffic_key(id1), "cp_packets_to_peer"}).str != "3"; ++i)
    sleep_ms(50);
  EXPECT_EQ(rc.command({"HGET", state::traffic_key(id1), "cp_packets_to_peer"}).str, "3");
  EXPECT_EQ(counts(call("GET", "/api/v1/allocations").body["users"][0]["to_peer"]),
            (Counts{25, 2920, 3, 300, 22, 2620}));

  // Redis away: the API still answers, says the fast path is not counted,
  // and reports the kernel path alone.
  redis.reset();
  auto away = call("GET", "/api/v1/allocations");
  ASSERT_EQ(away.status, 200);
  EXPECT_EQ(away.body["fastpath_counters"].get<std::string>().rfind("unreachable: ", 0), 0u) << away.text;
  bool seen = false;
  for (const auto& a : away.body["allocations"]) {
    if (a["id"] != id1) continue;
    seen = true;
    EXPECT_EQ(counts(a["to_peer"]), (Counts{3, 300, 3, 300, 0, 0}));
  }
  EXPECT_TRUE(seen) << away.text;
}

TEST_F(AdminApi, FleetUsageListsEveryInstancesAllocationsFromTheStore) {
  auto none = call("GET", "/api/v1/allocations?scope=fleet");
  EXPECT_EQ(none.status, 400) << none.text;
  EXPECT_NE(none.text.find("state-redis is not set"), std::string::npos) << none.text;
  auto bad = call("GET", "/api/v1/allocations?scope=planet");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.text.find("scope 'planet'"), std::string::npos) << bad.text;
  SKIP_WITHOUT_HIREDIS();

  auto redis = std::make_unique<RedisServer>();
  ASSERT_TRUE(redis->up());
  start_with(
      {"state-redis=\"ip=127.0.0.1 port=" + std::to_string(redis->endpoint().port) + "\"", "instance-id=host-a"});
  SocketAddress relay;
  auto mine = allocated(&relay);
  // Another host's allocation and membership, written as its turn-control
  // would (the typed writers of common/state).
  redis::Client rc(redis->endpoint());
  rc.connect();
  auto now = static_cast<uint64_t>(std::time(nullptr));
  state::AllocationRecord other;
  other.instance = "host-b";
  other.id = state::allocation_id("host-b", "198.51.100.20:50000");
  other.client = *SocketAddress::parse("203.0.113.7:40000");
  other.server = *SocketAddress::parse("198.51.100.20:3478");
  other.relay = *SocketAddress::parse("198.51.100.20:50000");
  other.relay6 = *SocketAddress::parse("[2001:db8::20]:50002");  // dual-stack (RFC 8656 §7.2)
  other.username = "carol";
  other.realm = kRealm;
  other.expires_s = now + 300;
  state::append_event(rc, "host-b", state::Event::create(other), other.expires_s);
  state::append_event(
      rc, "host-b",
      state::Event::channel_bound(other.id, {0x4001, *SocketAddress::parse("203.0.113.9:5000"), now + 300}),
      other.expires_s);
  state::append_fast_traffic(rc, other.id, {7, 700, 8, 800});
  state::MembershipRecord m;
  m.instance = "host-b";
  m.state = state::MemberState::Draining;
  m.updated_ms = now * 1000;
  m.started_s = now;
  state::append_membership(rc, m, 60000, now);
  for (const auto& r : rc.replies()) ASSERT_FALSE(r.is_error()) << r.str;
  // Ours reaches the store within a second (and our membership with it).
  for (int i = 0; i < 40 && rc.command({"ZCARD", state::alloc_index_key("host-a")}).integer == 0; ++i) sleep_ms(50);
  for (int i = 0; i < 40 && rc.command({"EXISTS", state::member_key("host-a")}).integer == 0; ++i) sleep_ms(50);

  auto f = call("GET", "/api/v1/allocations?scope=fleet");
  ASSERT_EQ(f.status, 200) << f.text;
  EXPECT_EQ(f.body["scope"], "fleet");
  EXPECT_EQ(f.body["count"], 2) << f.text;
  std::map<std::string, json> inst;
  for (const auto& i : f.body["instances"]) inst[i["instance"].get<std::string>()] = i;
  EXPECT_EQ(inst["host-a"]["state"], "serving");
  EXPECT_EQ(inst["host-a"]["allocations"], 1);
  EXPECT_EQ(inst["host-b"]["state"], "draining");
  std::map<std::string, json> by_id;
  for (const auto& a : f.body["allocations"]) by_id[a["id"].get<std::string>()] = a;
  ASSERT_TRUE(by_id.count(other.id)) << f.text;
  EXPECT_EQ(by_id[other.id]["instance"], "host-b");
  EXPECT_EQ(by_id[other.id]["username"], "carol");
  EXPECT_EQ(by_id[other.id]["channels"][0]["channel"], 0x4001);
  EXPECT_EQ(by_id[other.id]["to_peer"]["fastpath_packets"], 7);
  EXPECT_EQ(by_id[other.id]["relay6"], "[2001:db8::20]:50002") << "a dual-stack allocation's IPv6 half";
  EXPECT_EQ(by_id["host-a/" + relay.to_string()]["relay"], relay.to_string());
  EXPECT_FALSE(by_id["host-a/" + relay.to_string()].contains("relay6")) << "single-family: no relay6";
  EXPECT_EQ(f.body["users"].size(), 2u);
  // The instance view is still this turn-control's alone.
  EXPECT_EQ(call("GET", "/api/v1/allocations").body["count"], 1);

  // Without the store there is no fleet view: 503 and why.
  redis.reset();
  auto away = call("GET", "/api/v1/allocations?scope=fleet");
  EXPECT_EQ(away.status, 503) << away.text;
  EXPECT_NE(away.text.find("needs the state store"), std::string::npos) << away.text;
  (void)mine;
}

TEST_F(AdminApi, AStoreThatIsNotThereCostsSpeedNotCalls) {
  SKIP_WITHOUT_HIREDIS();
  // Sentinels that do not answer: turn-control starts, answers Allocate,
  // and says why the store is away (naming the sentinels it asked).
  uint16_t s1 = free_port(), s2 = free_port();
  start_with({"state-redis=\"sentinel=127.0.0.1:" + std::to_string(s1) + ",127.0.0.1:" + std::to_string(s2) +
                  " master=dpturn\"",
              "state-queue-limit=100"});
  SocketAddress relay;
  auto c = allocated(&relay);
  ASSERT_TRUE(c->create_permission(SocketAddress{IpAddress::v4(0x7f000001), 9}).success());
  auto h = call("GET", "/api/v1/health");
  EXPECT_EQ(h.status, 200) << "a load balancer keeps sending calls here";
  EXPECT_EQ(h.body["status"], "degraded");
  auto st = call("GET", "/api/v1/status").body["state_store"];
  EXPECT_EQ(st["degraded"], true);
  std::string why = st["last_error"];
  EXPECT_NE(why.find("127.0.0.1:" + std::to_string(s1)), std::string::npos) << why;
  EXPECT_NE(why.find("127.0.0.1:" + std::to_string(s2)), std::string::npos) << why;
  EXPECT_EQ(st["queue_limit"], 100);
  auto m = call("GET", "/metrics").text;
  EXPECT_NE(m.find("\ndpturn_state_degraded 1\n"), std::string::npos) << m;
  // Never connected: the first connection rewrites everything from the
  // registry, so nothing needs queueing.
  EXPECT_EQ(st["resync_pending"], true);
  EXPECT_EQ(st["queue_depth"], 0);

  // Connected, then the store goes: events queue, up to the limit; beyond
  // it they are dropped for a full resync, and that is counted.
  auto redis = std::make_unique<RedisServer>();
  ASSERT_TRUE(redis->up());
  start_with(
      {"state-redis=\"ip=127.0.0.1 port=" + std::to_string(redis->endpoint().port) + "\"", "state-queue-limit=100"});
  for (int i = 0; i < 40 && call("GET", "/api/v1/status").body["state_store"]["connected"] != true; ++i) sleep_ms(50);
  SocketAddress anchor_relay;
  auto anchor = allocated(&anchor_relay);
  redis.reset();
  // turn-control notices the store's death on its next write or read: wait
  // for that (bounded) before making the events, or the race decides.
  for (int i = 0; i < 100 && call("GET", "/api/v1/status").body["state_store"]["connected"] == true; ++i) {
    (void)anchor->create_permission(SocketAddress{IpAddress::v4(0x7f000001), 9});  // an event: the writer finds out
    sleep_ms(50);
  }
  ASSERT_EQ(call("GET", "/api/v1/status").body["state_store"]["connected"], false) << "the store was killed";
  std::vector<std::unique_ptr<TurnClient>> more;
  bool queued = false;
  for (int i = 0; i < 20; ++i) {  // 20 x 6 events (the fixture has 24 relay ports; the anchor has one)
    SocketAddress r;
    more.push_back(allocated(&r));
    ASSERT_TRUE(more.back()->create_permission(SocketAddress{IpAddress::v4(0x7f000001), 9}).success());
    ASSERT_TRUE(more.back()->channel_bind(0x4001, SocketAddress{IpAddress::v4(0x7f000001), 9}).success());
    ASSERT_TRUE(more.back()->refresh(600).success());
    ASSERT_TRUE(more.back()->refresh(600).success());
    queued |= call("GET", "/api/v1/status").body["state_store"]["queue_depth"].get<int>() > 0;
  }
  auto after = call("GET", "/api/v1/status").body["state_store"];
  EXPECT_TRUE(queued) << "events waited in the queue while the store was away";
  EXPECT_GE(after["overflows"].get<int>(), 1) << after.dump();
  EXPECT_LE(after["queue_depth"].get<int>(), 100) << after.dump();
  EXPECT_EQ(after["resync_pending"], true) << after.dump();
  EXPECT_EQ(after["degraded"], true) << after.dump();
}

TEST(TurnServerRegistry, PersistsInRedisAcrossRestartsAndInstances) {
  SKIP_WITHOUT_HIREDIS();
  RedisServer redis;
  ASSERT_TRUE(redis.up()) << "redis-server (scripts/setup.sh installs it) did not start";
  cp::Config cfg;
  cfg.state_redis = redis.endpoint();
  std::string id;
  {
    cp::TurnServerRegistry first(cfg);
    EXPECT_EQ(first.persistence(), "redis");
    auto e = entry("10.1.2.3:3478");
    id = e.id;
    ASSERT_TRUE(first.add(e));
    ASSERT_TRUE(first.add(entry("turns:turn.example.org", "tls")));
  }
  // "Restart": a new registry reads what the first one stored.
  cp::TurnServerRegistry second(cfg);
  auto list = second.list();
  ASSERT_EQ(list.size(), 2u);
  auto e = second.get(id);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->server_address, "10.1.2.3:3478");
  EXPECT_EQ(e->client_address, "198.51.100.1:3478");
  EXPECT_EQ(e->username, "app");
  EXPECT_EQ(e->password, "app-secret") << "kept for the probe";
  EXPECT_EQ(e->type, "udp");
  // Two instances on one Redis share the registry.
  cp::TurnServerRegistry other(cfg);
  ASSERT_TRUE(other.remove(id));
  EXPECT_FALSE(second.get(id));
  EXPECT_EQ(second.list().size(), 1u);
  redis::Client c(redis.endpoint());
  c.connect();
  EXPECT_EQ(c.command({"HLEN", cp::TurnServerRegistry::kRedisKey}).integer, 1);
}

TEST(TurnServerRegistry, WorksFromMemoryWhileRedisIsAwayAndCatchesUpAfter) {
  SKIP_WITHOUT_HIREDIS();
  cp::Config cfg;
  cfg.state_redis.enabled = true;
  cfg.state_redis.port = free_port();  // nothing there yet
  cp::TurnServerRegistry reg(cfg);
  EXPECT_NE(reg.persistence().find("unreachable"), std::string::npos) << reg.persistence();
  auto e = entry("10.9.9.9:3478");
  ASSERT_TRUE(reg.add(e));
  EXPECT_TRUE(reg.get(e.id));
  EXPECT_EQ(reg.list().size(), 1u);
  auto gone = entry("10.9.9.10:3478");
  EXPECT_TRUE(reg.add(gone));
  EXPECT_TRUE(reg.remove(gone.id));
  EXPECT_EQ(reg.list().size(), 1u);
  // Redis comes up: after the retry pause the registry writes what it holds.
  RedisServer redis(cfg.state_redis.port);
  ASSERT_TRUE(redis.up());
  std::this_thread::sleep_for(std::chrono::milliseconds(2200));
  ASSERT_EQ(reg.list().size(), 1u);
  EXPECT_EQ(reg.persistence(), "redis");
  redis::Client c(redis.endpoint());
  c.connect();
  EXPECT_EQ(c.command({"HLEN", cp::TurnServerRegistry::kRedisKey}).integer, 1);
  EXPECT_EQ(c.command({"HEXISTS", cp::TurnServerRegistry::kRedisKey, e.id}).integer, 1);
  EXPECT_EQ(c.command({"HEXISTS", cp::TurnServerRegistry::kRedisKey, gone.id}).integer, 0);
}

TEST(TurnServerRegistry, WithoutRedisItIsInMemory) {
  cp::Config cfg;
  cp::TurnServerRegistry reg(cfg);
  EXPECT_EQ(reg.persistence(), "memory");
  auto e = entry("10.0.0.1:3478");
  ASSERT_TRUE(reg.add(e));
  EXPECT_EQ(reg.list().size(), 1u);
  EXPECT_TRUE(reg.remove(e.id));
  EXPECT_FALSE(reg.remove(e.id));
  bool busy = true;
  EXPECT_FALSE(reg.probe(e.id, busy)) << "unknown id";
  EXPECT_FALSE(busy);
}

}  // namespace
}  // namespace turn::cptest
