// SPDX-License-Identifier: Apache-2.0
// Admin API routes and /metrics.
#include "controlplane/admin/admin_server.h"

#include "controlplane/admin/status_page.h"
#include "controlplane/admin/turn_registry.h"

#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <nlohmann/json.hpp>

#include <map>

#include "common/crypto/integrity.h"
#include "common/state/records.h"
#include "common/state/store.h"
#include "common/util/text.h"
#include "controlplane/config/config.h"
#include "common/log/log.h"
#include "controlplane/server/runtime.h"
#include "common/redis/client.h"
#include "controlplane/sync/redis_state_store.h"
#include "controlplane/sync/redis_userdb.h"

namespace turn::cp {

using json = nlohmann::json;

namespace {

const char* kMethodNames[16] = {
    "0",       "binding",         "2",  "allocate", "refresh", "5", "send", "data", "create_permission", "channel_bind",
    "connect", "connection_bind", "12", "13",       "14",      "15"};

bool valid_username(const std::string& n) {
  if (n.empty() || n.size() > 128) return false;
  for (unsigned char c : n)
    if (c < 0x21 || c == ':' || c == '/' || c == 0x7f) return false;  // no spaces, no REST/coturn separators
  return true;
}

void reply(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(2) + "\n", "application/json");
}
void error(httplib::Response& res, int status, const std::string& msg) { reply(res, status, json{{"error", msg}}); }
void no_such_server(httplib::Response& res, const std::string& id) {
  reply(res, 404, {{"error", "no TURN server with id '" + id + "'"}, {"field", "id"}, {"value", id}});
}

// The admin's reads of the state store connect afresh each time; while the
// store writer has lost the store (a hung or failed-over master), they do
// not wait out its timeouts (2 s per attempt, per sentinel): every view
// answers at once, saying the store is away, so /metrics scrapes and
// `turnctl status` stay fast during the outage they are there to show.
void connect_store(redis::Client& c, const RedisStateStore* writer) {
  if (writer && !writer->connected()) {
    std::string why = writer->status().last_error;
    throw redis::Error("the state store is unreachable" + (why.empty() ? std::string() : " (" + why + ")") +
                       "; not waiting for it");
  }
  c.connect();
}

// One direction's relay counters: the kernel path's (turn-control's own
// sockets) plus the fast path's (a data plane's, from Redis).
struct PathCounters {
  uint64_t kernel_packets = 0, kernel_bytes = 0, fastpath_packets = 0, fastpath_bytes = 0;
  PathCounters& operator+=(const PathCounters& o) {
    kernel_packets += o.kernel_packets;
    kernel_bytes += o.kernel_bytes;
    fastpath_packets += o.fastpath_packets;
    fastpath_bytes += o.fastpath_bytes;
    return *this;
  }
  [[nodiscard]] json to_json() const {
    return {{"packets", kernel_packets + fastpath_packets},
            {"bytes", kernel_bytes + fastpath_bytes},
            {"kernel_packets", kernel_packets},
            {"kernel_bytes", kernel_bytes},
            {"fastpath_packets", fastpath_packets},
            {"fastpath_bytes", fastpath_bytes}};
  }
};
struct Usage {
  PathCounters to_peer, to_client;
  Usage& operator+=(const Usage& o) {
    to_peer += o.to_peer;
    to_client += o.to_client;
    return *this;
  }
  void add_kernel(const state::Traffic& t) {
    to_peer.kernel_packets += t.packets_to_peer;
    to_peer.kernel_bytes += t.bytes_to_peer;
    to_client.kernel_packets += t.packets_to_client;
    to_client.kernel_bytes += t.bytes_to_client;
  }
  void add_fast(const state::Traffic& t) {
    to_peer.fastpath_packets += t.packets_to_peer;
    to_peer.fastpath_bytes += t.bytes_to_peer;
    to_client.fastpath_packets += t.packets_to_client;
    to_client.fastpath_bytes += t.bytes_to_client;
  }
  void clear_fast() {
    to_peer.fastpath_packets = to_peer.fastpath_bytes = to_client.fastpath_packets = to_client.fastpath_bytes = 0;
  }
};

// The fast path's per-allocation counters (TrafficRecord's dp_* fields,
// added by turn-dataplane every second). Fills usage[i].*.fastpath_* for
// allocs[i]; returns "redis" when read, "off" without a state store (no
// data plane can relay then), else why not.
std::string read_fastpath_usage(const Config& cfg, const RedisStateStore* writer,
                                const std::vector<std::shared_ptr<AllocationInfo>>& allocs, std::vector<Usage>& usage) {
  if (!cfg.state_redis.enabled) return "off";
  try {
    redis::Client c(cfg.state_redis);
    connect_store(c, writer);
    std::vector<std::string> ids;
    ids.reserve(allocs.size());
    for (const auto& a : allocs) ids.push_back(a->id);
    auto traffic = state::read_traffic(c, ids);
    for (size_t i = 0; i < allocs.size(); ++i) usage[i].add_fast(traffic[i].fast);
  } catch (const std::exception& e) {
    for (auto& u : usage) u.clear_fast();
    return std::string("unreachable: ") + e.what();
  }
  return "redis";
}

json allocation_json(const AllocationInfo& a, const Usage& u, uint64_t now) {
  uint64_t exp = a.expires_s.load();
  json perms = json::array(), chans = json::array();
  {
    std::lock_guard lock(a.mutex);
    for (const auto& p : a.permissions)
      perms.push_back({{"peer", p.peer.to_string()}, {"expires_in_s", p.expires_s > now ? p.expires_s - now : 0}});
    for (const auto& c : a.channels)
      chans.push_back({{"channel", c.number},
                       {"peer", c.peer.to_string()},
                       {"expires_in_s", c.expires_s > now ? c.expires_s - now : 0}});
  }
  json j = {{"id", a.id},
            {"transport", transport_name(a.tuple.transport)},
            {"client", a.tuple.client.to_string()},
            {"server", a.tuple.server.to_string()},
            {"relay", a.relay.to_string()},
            {"relay_advertised", a.relay_advertised.to_string()},
            {"username", a.username},
            {"realm", a.realm},
            {"lifetime_remaining_s", exp > now ? exp - now : 0},
            {"permissions", perms},
            {"channels", chans},
            {"to_peer", u.to_peer.to_json()},
            {"to_client", u.to_client.to_json()}};
  if (a.relay6.port != 0) {  // a dual-stack allocation's IPv6 half (RFC 8656 §7.2)
    j["relay6"] = a.relay6.to_string();
    j["relay6_advertised"] = a.relay6_advertised.to_string();
  }
  return j;
}

// One allocation as the store holds it (the fleet view: any instance's).
json allocation_json(const state::AllocationState& s, const state::TrafficRecord& t, uint64_t now) {
  json perms = json::array(), chans = json::array();
  for (const auto& p : s.permissions)
    perms.push_back({{"peer", p.peer.to_string()}, {"expires_in_s", p.expires_s > now ? p.expires_s - now : 0}});
  for (const auto& c : s.channels)
    chans.push_back({{"channel", c.number},
                     {"peer", c.peer.to_string()},
                     {"expires_in_s", c.expires_s > now ? c.expires_s - now : 0}});
  Usage u;
  u.add_kernel(t.kernel);
  u.add_fast(t.fast);
  const auto& r = s.record;
  json j = {{"id", r.id},
            {"instance", r.instance},
            {"transport", transport_name(r.transport)},
            {"client", r.client.to_string()},
            {"server", r.server.to_string()},
            {"relay", r.relay.to_string()},
            {"relay_advertised", r.relay.to_string()},
            {"username", r.username},
            {"realm", r.realm},
            {"lifetime_remaining_s", r.expires_s > now ? r.expires_s - now : 0},
            {"permissions", perms},
            {"channels", chans},
            {"to_peer", u.to_peer.to_json()},
            {"to_client", u.to_client.to_json()}};
  if (r.dual()) {  // a dual-stack allocation's IPv6 half (RFC 8656 §7.2)
    j["relay6"] = r.relay6.to_string();
    j["relay6_advertised"] = r.relay6.to_string();
  }
  return j;
}

// Per-user totals of a list of allocations (their JSON).
json users_json(const json& allocations) {
  std::map<std::string, std::pair<size_t, Usage>> by_user;
  for (const auto& a : allocations) {
    auto& [count, total] = by_user[a["username"].get<std::string>()];
    ++count;
    auto add = [](PathCounters& pc, const json& d) {
      pc.kernel_packets += d["kernel_packets"].get<uint64_t>();
      pc.kernel_bytes += d["kernel_bytes"].get<uint64_t>();
      pc.fastpath_packets += d["fastpath_packets"].get<uint64_t>();
      pc.fastpath_bytes += d["fastpath_bytes"].get<uint64_t>();
    };
    add(total.to_peer, a["to_peer"]);
    add(total.to_client, a["to_client"]);
  }
  json users = json::array();
  for (const auto& [name, cu] : by_user)
    users.push_back({{"username", name},
                     {"allocations", cu.first},
                     {"to_peer", cu.second.to_peer.to_json()},
                     {"to_client", cu.second.to_client.to_json()}});
  return users;
}

// Every data plane's status (state::DataplaneStatus, rewritten every
// second) with its age; none when the store is away (the state gauges say why).
struct DataplaneView {
  state::DataplaneStatus s;
  uint64_t age_s = 0;
  [[nodiscard]] bool up() const { return age_s <= 5; }
};

std::vector<DataplaneView> read_dataplanes(const Config& cfg, const RedisStateStore* writer) {
  std::vector<DataplaneView> out;
  if (!cfg.state_redis.enabled) return out;
  try {
    redis::Client c(cfg.state_redis);
    connect_store(c, writer);
    auto now = static_cast<uint64_t>(std::time(nullptr));
    for (auto& s : state::read_dataplanes(c, now)) {
      uint64_t age = now > s.updated_s ? now - s.updated_s : 0;
      out.push_back({std::move(s), age});
    }
  } catch (const std::exception&) {
  }
  return out;
}

}  // namespace

AdminServer::AdminServer(const Config& cfg, Runtime& rt)
    : cfg_(cfg),
      rt_(rt),
      turn_servers_(std::make_unique<TurnServerRegistry>(cfg)),
      http_(std::make_unique<httplib::Server>()) {
  turn_servers_->set_store_away([this] {
    const RedisStateStore* s = rt_.state_store();
    return s && !s->connected();
  });
  routes();
}

AdminServer::~AdminServer() { stop(); }

namespace {
// Binds and starts `http` on its own thread. httplib's stop() does nothing
// until the listening thread has marked the server running: a stop() right
// after start() would leave that thread in accept() forever (and stop()
// joining it). Wait, bounded, for it.
std::thread serve(httplib::Server& http, const SocketAddress& at, const char* what) {
  std::string host = at.ip.to_string();
  if (!http.bind_to_port(host.c_str(), at.port))
    throw std::runtime_error(std::string(what) + ": cannot bind " + at.to_string());
  std::thread t([&http] { http.listen_after_bind(); });
  for (int i = 0; i < 5000 && !http.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return t;
}
}  // namespace

void AdminServer::start() {
  if (cfg_.admin_port != 0) {
    SocketAddress at{cfg_.admin_ip, cfg_.admin_port};
    thread_ = serve(*http_, at, "admin API");
    log_info("admin API on http://" + at.to_string() + "/api/v1/, status page on http://" + at.to_string() + "/");
  }
  if (cfg_.prometheus) {
    metrics_http_ = std::make_unique<httplib::Server>();
    metrics_http_->Get(cfg_.prometheus_path, [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(metrics(), "text/plain; version=0.0.4");
    });
    if (cfg_.prometheus_path != "/")
      metrics_http_->Get(
          "/", [](const httplib::Request&, httplib::Response& res) { res.set_content("ok\n", "text/plain"); });
    SocketAddress at{cfg_.prometheus_ip, cfg_.prometheus_port};
    metrics_thread_ = serve(*metrics_http_, at, "prometheus");
    log_info("prometheus metrics (no token) on http://" + at.to_string() + cfg_.prometheus_path);
  }
}

void AdminServer::stop() {
  if (http_) http_->stop();
  if (thread_.joinable()) thread_.join();
  if (metrics_http_) metrics_http_->stop();
  if (metrics_thread_.joinable()) metrics_thread_.join();
}

bool AdminServer::token_ok(const std::string& token) const {
  const auto& want = cfg_.admin_token;
  return !token.empty() && crypto::equal_ct({reinterpret_cast<const uint8_t*>(token.data()), token.size()},
                                            {reinterpret_cast<const uint8_t*>(want.data()), want.size()});
}

namespace {
std::string cookie_value(const httplib::Request& req, const std::string& name) {
  std::string all = req.get_header_value("Cookie");
  size_t pos = 0;
  while (pos < all.size()) {
    size_t end = all.find(';', pos);
    if (end == std::string::npos) end = all.size();
    std::string part = trim(std::string_view(all).substr(pos, end - pos));
    if (part.rfind(name + "=", 0) == 0) return part.substr(name.size() + 1);
    pos = end + 1;
  }
  return "";
}

void html(httplib::Response& res, int status, std::string body) {
  res.status = status;
  res.set_header("Content-Security-Policy", status_page::kContentSecurityPolicy);
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_header("X-Frame-Options", "DENY");
  res.set_header("Referrer-Policy", "no-referrer");
  res.set_header("Cache-Control", "no-store");
  res.set_content(std::move(body), "text/html; charset=utf-8");
}
}  // namespace

bool AdminServer::session_ok(const httplib::Request& req) {
  std::string id = cookie_value(req, kSessionCookie);
  if (id.empty()) return false;
  auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(sessions_mutex_);
  std::erase_if(sessions_, [&](const Session& s) { return s.expires <= now; });
  bool found = false;
  for (const auto& s : sessions_)  // every one compared, in constant time
    found |= crypto::equal_ct({reinterpret_cast<const uint8_t*>(id.data()), id.size()},
                              {reinterpret_cast<const uint8_t*>(s.id.data()), s.id.size()});
  return found;
}

std::string AdminServer::new_session() {
  uint8_t raw[32];
  crypto::random_bytes(raw);
  std::string id = to_hex(raw, sizeof raw);
  std::lock_guard lock(sessions_mutex_);
  if (sessions_.size() >= kMaxSessions) sessions_.erase(sessions_.begin());  // the oldest
  sessions_.push_back({id, std::chrono::steady_clock::now() + kSessionLifetime});
  return id;
}

void AdminServer::end_session(const httplib::Request& req) {
  std::string id = cookie_value(req, kSessionCookie);
  std::lock_guard lock(sessions_mutex_);
  std::erase_if(sessions_, [&](const Session& s) { return s.id == id; });
}

void AdminServer::login_redirect(httplib::Response& res, const std::string& to) {
  res.set_header("Set-Cookie",
                 std::string(kSessionCookie) + "=" + new_session() + "; Path=/; HttpOnly; SameSite=Strict; Max-Age=" +
                     std::to_string(std::chrono::duration_cast<std::chrono::seconds>(kSessionLifetime).count()));
  res.set_header("Location", to);
  res.set_header("Cache-Control", "no-store");
  res.set_header("Referrer-Policy", "no-referrer");
  res.status = 303;
}

// The status page: GET / (or /status) shows it to a logged-in browser, else
// the login form. ?token=T logs in and redirects to the same path without
// the token. POST /login takes the form, POST /logout ends the session.
void AdminServer::page_routes() {
  auto& s = *http_;
  auto page = [this](const httplib::Request& req, httplib::Response& res) {
    std::string token;
    if (auto h = req.get_header_value("Authorization"); h.rfind("Bearer ", 0) == 0) token = h.substr(7);
    if (token_ok(token) || session_ok(req)) return html(res, 200, std::string(status_page::page_html()));
    if (req.has_param("token")) {
      if (token_ok(req.get_param_value("token"))) return login_redirect(res, req.path);
      return html(res, 401, status_page::login_html("Wrong admin token."));
    }
    html(res, 200, status_page::login_html(""));
  };
  s.Get("/", page);
  s.Get("/status", page);
  s.Post("/login", [this](const httplib::Request& req, httplib::Response& res) {
    if (token_ok(req.get_param_value("token"))) return login_redirect(res, "/");
    log_warn("admin: status page login with a wrong token from " + req.remote_addr);
    html(res, 401, status_page::login_html("Wrong admin token."));
  });
  s.Post("/logout", [this](const httplib::Request& req, httplib::Response& res) {
    end_session(req);
    res.set_header("Set-Cookie", std::string(kSessionCookie) + "=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    res.set_header("Location", "/");
    res.status = 303;
  });
  auto asset = [](std::string_view body, const char* type) {
    return [body, type](const httplib::Request&, httplib::Response& res) {
      res.set_header("X-Content-Type-Options", "nosniff");
      res.set_header("Cache-Control", "no-cache");
      res.set_content(std::string(body), type);
    };
  };
  s.Get("/ui/app.js", asset(status_page::app_js(), "text/javascript; charset=utf-8"));
  s.Get("/ui/app.css", asset(status_page::app_css(), "text/css; charset=utf-8"));
  s.Get("/favicon.ico", [](const httplib::Request&, httplib::Response& res) { res.status = 204; });
}

void AdminServer::routes() {
  auto& s = *http_;
  // Every API route needs the token: in a header, or (GET only) the status
  // page's session cookie. The page routes check for themselves.
  s.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    const std::string& p = req.path;
    if (p == "/" || p == "/status" || p == "/login" || p == "/logout" || p.rfind("/ui/", 0) == 0 || p == "/favicon.ico")
      return httplib::Server::HandlerResponse::Unhandled;
    std::string token;
    if (auto h = req.get_header_value("Authorization"); h.rfind("Bearer ", 0) == 0) token = h.substr(7);
    if (token.empty()) token = req.get_header_value("X-Admin-Token");
    bool ok = token_ok(token) || ((req.method == "GET" || req.method == "HEAD") && session_ok(req));
    if (!ok) {
      res.set_header("WWW-Authenticate", "Bearer");
      error(res, 401, "missing or wrong admin token");
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  page_routes();

  // A store outage degrades (the fast path waits) but this instance still
  // serves every call: 200, so that load balancers keep sending calls here.
  s.Get("/api/v1/health", [this](const httplib::Request&, httplib::Response& res) {
    auto* store = rt_.state_store();
    bool redis_ok = !store || store->connected();
    reply(res, 200,
          {{"status", redis_ok ? "ok" : "degraded"},
           {"state_redis", store ? (store->connected() ? "connected" : "unreachable") : "off"},
           {"allocations", rt_.shared().registry.size()}});
  });

  s.Get("/api/v1/status", [this](const httplib::Request&, httplib::Response& res) {
    json listeners = json::array();
    for (const auto& l : rt_.listeners())
      listeners.push_back({{"transport", transport_name(l.transport)},
                           {"ip", l.address.ip.to_string()},
                           {"port", l.address.port},
                           {"up", l.up},
                           {"error", l.error}});
    auto* store = rt_.state_store();
    json relay_ips = json::array();
    for (const auto& ip : cfg_.relay_ips) relay_ips.push_back(ip.to_string());
    reply(res, 200,
          {{"version", DPTURN_VERSION},
           {"realm", cfg_.realm},
           {"threads", rt_.thread_count()},
           {"listeners", listeners},
           {"relay_ips", relay_ips},
           {"relay_ports", std::to_string(cfg_.min_port) + "-" + std::to_string(cfg_.max_port)},
           {"allocations", rt_.shared().registry.size()},
           {"state_redis", store ? (store->connected() ? "connected" : "unreachable") : "off"},
           {"state_store",
            [store] {
              if (!store) return json{{"mode", "off"}};
              auto st = store->status();
              return json{{"endpoint", st.endpoint},
                          {"master", st.master},
                          {"connected", st.connected},
                          {"degraded", !st.connected},
                          {"last_error", st.last_error},
                          {"queue_depth", st.queue_depth},
                          {"queue_limit", st.queue_limit},
                          {"resync_pending", st.resync_pending},
                          {"lag_s", st.lag_s},
                          {"events_written", st.events_written},
                          {"overflows", st.overflows},
                          {"resyncs", st.resyncs},
                          {"replays", st.replays},
                          {"disconnects", st.disconnects},
                          {"master_changes", st.master_changes},
                          {"refused_replicas", st.refused_replicas},
                          {"bad_replies", st.bad_replies},
                          {"readonly_replies", st.readonly_replies}};
            }()},
           {"instance", cfg_.instance_id},
           {"draining", rt_.shared().redirector.draining()},
           {"redirects_all", rt_.shared().redirector.redirects_all()},
           {"userdb_redis", rt_.userdb() ? (rt_.userdb()->healthy() ? "connected" : "unreachable") : "off"},
           {"dataplanes", [this] {
              json list = json::array();
              for (auto& d : read_dataplanes(cfg_, rt_.state_store()))
                list.push_back({{"instance", d.s.instance},
                                {"up", d.up()},
                                {"updated_s_ago", d.age_s},
                                {"store_disconnects", d.s.disconnects},
                                {"workers", d.s.workers.size()},
                                {"allocations", d.s.allocations},
                                {"rx_packets", d.s.rx_packets},
                                {"tx_packets", d.s.tx_packets},
                                {"rx_ring_drops", d.s.rx_ring_drops},
                                {"sync_lag_ms", d.s.sync_lag_ms},
                                {"snapshots", d.s.snapshots}});
              return list;
            }()}});
  });

  // Drain (docs/fleet.md): this instance, or another live one through the
  // state store ({"instance": "b"}); {"force": true} drains the last one.
  auto drain_body = [](const httplib::Request& req, std::string& instance, bool& force, std::string& err) {
    if (req.body.empty()) return true;
    json b = json::parse(req.body, nullptr, false);
    if (b.is_discarded() || !b.is_object()) return err = "body must be a JSON object (or empty)", false;
    if (b.contains("instance")) {
      if (!b["instance"].is_string()) return err = "\"instance\" must be a string", false;
      instance = b["instance"];
    }
    if (b.contains("force")) {
      if (!b["force"].is_boolean()) return err = "\"force\" must be true or false", false;
      force = b["force"];
    }
    return true;
  };
  auto drain_view = [this] {
    auto& r = rt_.shared().redirector;
    return json{{"instance", cfg_.instance_id},
                {"draining", r.draining()},
                {"forced", r.forced()},
                {"since", r.drain_started_s()},
                {"allocations", rt_.shared().registry.size()},
                {"serving_elsewhere", r.serving_others()},
                {"redirected", r.stats().drain.load()},
                {"no_target", r.stats().no_target.load()}};
  };
  s.Get("/api/v1/drain",
        [drain_view](const httplib::Request&, httplib::Response& res) { reply(res, 200, drain_view()); });
  auto drain_route = [this, drain_body, drain_view](bool start) {
    return [this, drain_body, drain_view, start](const httplib::Request& req, httplib::Response& res) {
      std::string instance = cfg_.instance_id, err;
      bool force = false;
      if (!drain_body(req, instance, force, err)) return error(res, 400, err);
      auto& r = rt_.shared().redirector;
      if (instance == cfg_.instance_id) {
        if (!start) {
          if (r.draining()) log_info("drain: ended (admin API)");
          r.undrain();
          return reply(res, 200, drain_view());
        }
        if (auto refused = r.drain(force)) return error(res, 409, refused->why);
        log_info(std::string("drain: started (admin API") + (force ? ", forced" : "") + "); " +
                 std::to_string(rt_.shared().registry.size()) + " allocation(s) left");
        return reply(res, 200, drain_view());
      }
      // Another instance: it must be live in the fleet; it takes the
      // request from the store within a second.
      if (!cfg_.state_redis.enabled)
        return error(res, 400,
                     "draining instance '" + instance + "' goes through the state store; state-redis is not set");
      try {
        redis::Client c(cfg_.state_redis);
        connect_store(c, rt_.state_store());
        auto now = static_cast<uint64_t>(std::time(nullptr));
        auto members = state::read_members(c, now);
        std::string live;
        const state::MembershipRecord* target = nullptr;
        size_t serving = 0;
        for (const auto& m : members) {
          live += (live.empty() ? "" : ", ") + m.instance;
          if (m.instance == instance) target = &m;
          if (m.state == state::MemberState::Serving && !m.redirects) ++serving;
        }
        if (!target)
          return reply(res, 404,
                       {{"error", "no live instance '" + instance +
                                      "' in the fleet (live: " + (live.empty() ? "none" : live) + ")"},
                        {"field", "instance"},
                        {"value", instance}});
        if (start && !force && target->state == state::MemberState::Serving && serving <= 1)
          return error(res, 409,
                       "instance '" + instance +
                           "' is the last serving instance of the fleet: new calls "
                           "would have nowhere to go; force the drain to turn them away (508) anyway");
        std::string request = start ? (force ? "drain force" : "drain") : "undrain";
        c.command({"SET", state::drain_request_key(instance), request, "EX", std::to_string(state::kDrainRequestTtlS)});
        log_info("drain: asked instance '" + instance + "' to " + request);
        reply(res, 202, {{"instance", instance}, {"requested", request}, {"allocations", target->allocations}});
      } catch (const std::exception& e) {
        error(res, 503, std::string("draining another instance needs the state store: ") + e.what());
      }
    };
  };
  // Host failover (docs/fleet.md): take over a dead instance's calls.
  s.Post("/api/v1/adopt", [this](const httplib::Request& req, httplib::Response& res) {
    json b = json::parse(req.body, nullptr, false);
    if (b.is_discarded() || !b.is_object() || !b.contains("instance") || !b["instance"].is_string())
      return error(res, 400, "body must be {\"instance\": \"NAME\"[, \"wait_s\": S]}");
    int wait_s = 0;
    if (b.contains("wait_s")) {
      if (!b["wait_s"].is_number_integer() || b["wait_s"].get<int>() < 0 || b["wait_s"].get<int>() > 60)
        return error(res, 400, "\"wait_s\" must be 0-60 (seconds to wait for the instance's membership to expire)");
      wait_s = b["wait_s"];
    }
    auto r = rt_.adopt(b["instance"].get<std::string>(), std::chrono::seconds(wait_s));
    if (r.status != 200) return error(res, r.status, r.error);
    reply(res, 200,
          {{"instance", b["instance"]},
           {"adopted", r.adopted},
           {"skipped", r.skipped},
           {"listeners", r.listeners},
           {"waited_s", r.waited_s}});
  });

  s.Post("/api/v1/drain", drain_route(true));
  s.Post("/api/v1/undrain", drain_route(false));

  s.Get("/api/v1/users", [this](const httplib::Request&, httplib::Response& res) {
    json users = json::array();
    for (const auto& n : rt_.shared().credentials.local_names()) users.push_back({{"name", n}, {"source", "local"}});
    json all = json::array();
    for (const auto& n : rt_.shared().credentials.all_names()) all.push_back(n);
    reply(res, 200, {{"users", users}, {"all_names", all}});
  });

  s.Post("/api/v1/users", [this](const httplib::Request& req, httplib::Response& res) {
    json body = json::parse(req.body, nullptr, false);
    if (body.is_discarded() || !body.is_object()) return error(res, 400, "body must be a JSON object");
    if (!body.contains("name") || !body["name"].is_string()) return error(res, 400, "\"name\" (string) is required");
    if (!body.contains("password") || !body["password"].is_string())
      return error(res, 400, "\"password\" (string) is required");
    std::string name = body["name"], password = body["password"];
    if (!valid_username(name))
      return error(res, 400, "invalid name '" + name + "': 1-128 printable characters, no spaces, ':' or '/'");
    if (password.size() < 8 || password.size() > 256) return error(res, 400, "password must be 8-256 characters");
    rt_.shared().credentials.add_local(name, password);
    if (auto* db = rt_.userdb()) {
      auto key = crypto::long_term_key(stun::PasswordAlgorithm::Md5, name, cfg_.realm, password);
      std::string hex = to_hex(key.bytes.data(), key.size);
      try {
        db->put_user(name, hex);
      } catch (const std::exception& e) {
        log_warn(std::string("admin: user '") + name + "' added locally, not persisted: " + e.what());
      }
    }
    log_info("admin: credential '" + name + "' created");
    reply(res, 201, {{"name", name}, {"realm", cfg_.realm}});
  });

  s.Delete(R"(/api/v1/users/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    std::string name = req.matches[1];
    if (!rt_.shared().credentials.remove_local(name)) return error(res, 404, "no local credential '" + name + "'");
    if (auto* db = rt_.userdb()) {
      try {
        db->delete_user(name);
      } catch (const std::exception& e) {
        log_warn(std::string("admin: user '") + name + "' removed locally, not from redis: " + e.what());
      }
    }
    log_info("admin: credential '" + name + "' deleted");
    reply(res, 200, {{"deleted", name}});
  });

  // "TURN relay usage": packets and bytes each way, kernel path plus fast
  // path, per allocation and per user (docs/admin-api.md).
  s.Get("/api/v1/allocations", [this](const httplib::Request& req, httplib::Response& res) {
    auto now = static_cast<uint64_t>(std::time(nullptr));
    std::string scope = req.has_param("scope") ? req.get_param_value("scope") : "instance";
    if (scope == "fleet") return fleet_allocations(res, now);
    if (scope != "instance")
      return error(
          res, 400,
          "scope '" + scope +
              "': expected 'instance' (this turn-control's) or 'fleet' (every instance's, from the state store)");
    auto allocs = rt_.shared().registry.snapshot();
    std::vector<Usage> usage(allocs.size());
    for (size_t i = 0; i < allocs.size(); ++i) {
      const auto& a = *allocs[i];
      usage[i].to_peer.kernel_packets = a.packets_to_peer.load();
      usage[i].to_peer.kernel_bytes = a.bytes_to_peer.load();
      usage[i].to_client.kernel_packets = a.packets_to_client.load();
      usage[i].to_client.kernel_bytes = a.bytes_to_client.load();
    }
    std::string fastpath = read_fastpath_usage(cfg_, rt_.state_store(), allocs, usage);
    json list = json::array();
    for (size_t i = 0; i < allocs.size(); ++i) list.push_back(allocation_json(*allocs[i], usage[i], now));
    json users = users_json(list);
    reply(res, 200,
          {{"scope", "instance"},
           {"instance", cfg_.instance_id},
           {"allocations", list},
           {"count", list.size()},
           {"users", users},
           {"fastpath_counters", fastpath}});
  });

  // TURN server registry (docs/admin-api.md).
  s.Post("/api/v1/turn-servers", [this](const httplib::Request& req, httplib::Response& res) {
    json body = json::parse(req.body, nullptr, false);
    TurnServerEntry e;
    if (auto err = TurnServerRegistry::parse(body, e)) return reply(res, 400, err->to_json());
    json view = e.to_json();
    if (!turn_servers_->add(std::move(e)))
      return error(res, 409, "registry full: " + std::to_string(TurnServerRegistry::kMaxServers) + " TURN servers");
    log_info("admin: TURN server " + view["id"].get<std::string>() + " (" + view["serverAddress"].get<std::string>() +
             ") registered");
    res.set_header("Location", "/api/v1/turn-servers/" + view["id"].get<std::string>());
    reply(res, 201, view);
  });

  s.Get("/api/v1/turn-servers", [this](const httplib::Request&, httplib::Response& res) {
    json list = json::array();
    for (const auto& e : turn_servers_->list()) list.push_back(e.to_json(true));
    reply(res, 200, {{"turnServers", list}, {"count", list.size()}, {"persistence", turn_servers_->persistence()}});
  });

  s.Get(R"(/api/v1/turn-servers/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    std::string id = req.matches[1];
    auto e = turn_servers_->get(id);
    if (!e) return no_such_server(res, id);
    reply(res, 200, e->to_json(true));
  });

  s.Delete(R"(/api/v1/turn-servers/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    std::string id = req.matches[1];
    if (!turn_servers_->remove(id)) return no_such_server(res, id);
    log_info("admin: TURN server " + id + " deleted");
    reply(res, 200, {{"deleted", id}});
  });

  s.Get(R"(/api/v1/turn-servers/([^/]+)/status)", [this](const httplib::Request& req, httplib::Response& res) {
    std::string id = req.matches[1];
    bool busy = false;
    auto st = turn_servers_->probe(id, busy);
    if (busy)
      return error(res, 503,
                   "too many probes in flight (at most " + std::to_string(TurnServerRegistry::kMaxConcurrentProbes) +
                       "); retry");
    if (!st) return no_such_server(res, id);
    reply(res, 200,
          {{"id", id},
           {"reachable", st->reachable},
           {"roundTripTimeMs", st->rtt_ms ? json(*st->rtt_ms) : json(nullptr)},
           {"error", st->reachable ? json(nullptr) : json(st->error)},
           {"checkedAt", st->checked_s}});
  });

  s.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics(), "text/plain; version=0.0.4");
  });

  s.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (res.body.empty() && res.status >= 400) error(res, res.status, "no such resource");
  });
}

namespace {

// Prometheus text exposition format 0.0.4: one # HELP and # TYPE per
// family, its samples together, label values escaped (\\, \", \n).
class Exposition {
 public:
  using Labels = std::vector<std::pair<std::string, std::string>>;
  void family(const std::string& name, const char* type, const std::string& help) {
    out_ += "# HELP " + name + " " + escape(help, false) + "\n# TYPE " + name + " " + type + "\n";
  }
  void sample(const std::string& name, const Labels& labels, uint64_t v) { line(name, labels, std::to_string(v)); }
  void sample_double(const std::string& name, const Labels& labels, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.6g", v);
    line(name, labels, buf);
  }
  std::string take() { return std::move(out_); }

  static std::string escape(const std::string& v, bool quote = true) {
    std::string e;
    for (char c : v) {
      if (c == '\\')
        e += "\\\\";
      else if (c == '\n')
        e += "\\n";
      else if (c == '"' && quote)
        e += "\\\"";
      else
        e.push_back(c);
    }
    return e;
  }

 private:
  void line(const std::string& name, const Labels& labels, const std::string& value) {
    out_ += name;
    if (!labels.empty()) {
      out_ += "{";
      for (size_t i = 0; i < labels.size(); ++i)
        out_ += (i ? "," : "") + labels[i].first + "=\"" + escape(labels[i].second) + "\"";
      out_ += "}";
    }
    out_ += " " + value + "\n";
  }
  std::string out_;
};

}  // namespace

void AdminServer::fleet_allocations(httplib::Response& res, uint64_t now) const {
  if (!cfg_.state_redis.enabled)
    return error(res, 400,
                 "scope 'fleet' reads every instance's allocations from the state store; state-redis is not set");
  try {
    redis::Client c(cfg_.state_redis);
    connect_store(c, rt_.state_store());
    // Instances seen within an allocation's longest life: a dead instance's
    // allocations stay listed until they expire (or are adopted).
    auto instances = state::read_instances(c, now, cfg_.max_allocate_lifetime_s + state::kRecordGraceS);
    std::map<std::string, state::MembershipRecord> members;
    for (auto& m : state::read_members(c, now)) members[m.instance] = std::move(m);
    json list = json::array(), per_instance = json::array();
    uint64_t malformed = 0;
    for (const auto& inst : instances) {
      auto snap = state::read_snapshot(c, inst, now);
      malformed += snap.malformed;
      std::vector<std::string> ids;
      for (const auto& a : snap.allocations) ids.push_back(a.record.id);
      auto traffic = state::read_traffic(c, ids);
      for (size_t i = 0; i < snap.allocations.size(); ++i)
        list.push_back(allocation_json(snap.allocations[i], traffic[i], now));
      auto m = members.find(inst);
      per_instance.push_back(
          {{"instance", inst},
           {"allocations", snap.allocations.size()},
           {"state", m == members.end() ? "gone" : std::string(state::member_state_name(m->second.state))}});
    }
    reply(res, 200,
          {{"scope", "fleet"},
           {"instances", per_instance},
           {"allocations", list},
           {"count", list.size()},
           {"users", users_json(list)},
           {"malformed_records", malformed},
           {"fastpath_counters", "redis"}});
  } catch (const std::exception& e) {
    error(res, 503, std::string("scope 'fleet' needs the state store: ") + e.what());
  }
}

std::string AdminServer::metrics() const {
  Exposition m;
  auto stats = rt_.stats();
  auto sum = [&](auto field) {
    uint64_t v = 0;
    for (const auto* s : stats) v += (s->*field).load(std::memory_order_relaxed);
    return v;
  };

  m.family("dpturn_build_info", "gauge", "turn-control's version (always 1).");
  m.sample("dpturn_build_info", {{"version", DPTURN_VERSION}}, 1);
  m.family("dpturn_listener_up", "gauge", "1 while a listener is bound, 0 if it failed (see /api/v1/status for why).");
  for (const auto& l : rt_.listeners())
    m.sample("dpturn_listener_up",
             {{"transport", transport_name(l.transport)},
              {"ip", l.address.ip.to_string()},
              {"port", std::to_string(l.address.port)}},
             l.up ? 1 : 0);

  m.family("dpturn_allocations", "gauge", "Live allocations.");
  m.sample("dpturn_allocations", {}, rt_.shared().registry.size());
  size_t perms = 0, chans = 0;
  for (const auto& a : rt_.shared().registry.snapshot()) {
    std::lock_guard lock(a->mutex);
    perms += a->permissions.size();
    chans += a->channels.size();
  }
  m.family("dpturn_permissions", "gauge", "Live permissions (RFC 8656 section 9).");
  m.sample("dpturn_permissions", {}, perms);
  m.family("dpturn_channels", "gauge", "Live channel bindings (RFC 8656 section 12).");
  m.sample("dpturn_channels", {}, chans);

  m.family("dpturn_requests_total", "counter",
           "STUN/TURN requests by method and result (unanswered: dropped or still in progress).");
  for (int meth = 0; meth < 16; ++meth) {
    uint64_t req = 0, ok = 0, err = 0;
    for (const auto* s : stats) {
      req += s->requests[meth].load();
      ok += s->successes[meth].load();
      err += s->errors[meth].load();
    }
    // The request methods always, others once seen.
    bool request_method = meth == 1 || meth == 3 || meth == 4 || meth == 8 || meth == 9;
    if (req == 0 && !request_method) continue;
    std::string method = kMethodNames[meth];
    m.sample("dpturn_requests_total", {{"method", method}, {"result", "success"}}, ok);
    m.sample("dpturn_requests_total", {{"method", method}, {"result", "error"}}, err);
    m.sample("dpturn_requests_total", {{"method", method}, {"result", "unanswered"}},
             req >= ok + err ? req - ok - err : 0);
  }
  m.family("dpturn_auth_failures_total", "counter", "Requests whose MESSAGE-INTEGRITY did not verify (401).");
  m.sample("dpturn_auth_failures_total", {}, sum(&Stats::auth_failures));
  m.family("dpturn_stale_nonces_total", "counter", "438 (Stale Nonce) answers.");
  m.sample("dpturn_stale_nonces_total", {}, sum(&Stats::stale_nonces));
  m.family("dpturn_quota_refusals_total", "counter", "486 (Allocation Quota Reached) answers.");
  m.sample("dpturn_quota_refusals_total", {}, sum(&Stats::quota_refusals));
  m.family("dpturn_forbidden_peers_total", "counter", "403 answers (peer address policy).");
  m.sample("dpturn_forbidden_peers_total", {}, sum(&Stats::forbidden_peers));

  auto dps = read_dataplanes(cfg_, rt_.state_store());
  m.family("dpturn_relayed_packets_total", "counter",
           "Relayed packets by direction and path (slow: turn-control's kernel sockets; fast: a data plane).");
  m.sample("dpturn_relayed_packets_total", {{"direction", "to_peer"}, {"path", "slow"}}, sum(&Stats::packets_to_peer));
  m.sample("dpturn_relayed_packets_total", {{"direction", "to_client"}, {"path", "slow"}},
           sum(&Stats::packets_to_client));
  for (auto& d : dps) {
    m.sample("dpturn_relayed_packets_total", {{"direction", "to_peer"}, {"path", "fast"}, {"dataplane", d.s.instance}},
             d.s.packets_to_peer);
    m.sample("dpturn_relayed_packets_total",
             {{"direction", "to_client"}, {"path", "fast"}, {"dataplane", d.s.instance}}, d.s.packets_to_client);
  }
  m.family("dpturn_relayed_bytes_total", "counter",
           "Relayed payload bytes by direction and path (fast: summed from the per-allocation counters a data plane "
           "pushes every second).");
  m.sample("dpturn_relayed_bytes_total", {{"direction", "to_peer"}, {"path", "slow"}}, sum(&Stats::bytes_to_peer));
  m.sample("dpturn_relayed_bytes_total", {{"direction", "to_client"}, {"path", "slow"}}, sum(&Stats::bytes_to_client));
  for (auto& d : dps) {
    m.sample("dpturn_relayed_bytes_total", {{"direction", "to_peer"}, {"path", "fast"}, {"dataplane", d.s.instance}},
             d.s.bytes_to_peer);
    m.sample("dpturn_relayed_bytes_total", {{"direction", "to_client"}, {"path", "fast"}, {"dataplane", d.s.instance}},
             d.s.bytes_to_client);
  }
  m.family("dpturn_icmp_indications_total", "counter",
           "ICMP errors about peers relayed to clients as Data indications with ICMP (RFC 8656 section 11.5).");
  m.sample("dpturn_icmp_indications_total", {}, sum(&Stats::icmp_to_client));
  m.family("dpturn_drops_total", "counter", "Dropped packets by reason and path.");
  for (size_t i = 0; i < kCpDropKeys.size(); ++i) {
    uint64_t v = 0;
    for (const auto* s : stats) v += s->drops[i].load();
    m.sample("dpturn_drops_total", {{"reason", std::string(kCpDropKeys[i])}, {"path", "slow"}}, v);
  }
  for (auto& d : dps) {
    for (const auto& [reason, v] : d.s.drops)
      m.sample("dpturn_drops_total", {{"reason", reason}, {"path", "fast"}, {"dataplane", d.s.instance}}, v);
    m.sample("dpturn_drops_total", {{"reason", "rx_ring"}, {"path", "fast"}, {"dataplane", d.s.instance}},
             d.s.rx_ring_drops);
  }

  m.family("dpturn_refusals_total", "counter",
           "Requests answered with an error because a limit was reached, by reason.");
  for (size_t i = 0; i < kCpRefusalKeys.size(); ++i) {
    uint64_t v = 0;
    for (const auto* s : stats) v += s->refusals[i].load();
    m.sample("dpturn_refusals_total", {{"reason", std::string(kCpRefusalKeys[i])}}, v);
  }

  // Per relay thread of turn-control: the kernel path's load.
  m.family("dpturn_thread_requests_total", "counter", "STUN/TURN requests handled per turn-control relay thread.");
  for (size_t t = 0; t < stats.size(); ++t) {
    uint64_t v = 0;
    for (const auto& r : stats[t]->requests) v += r.load();
    m.sample("dpturn_thread_requests_total", {{"thread", std::to_string(t)}}, v);
  }
  m.family("dpturn_thread_relayed_packets_total", "counter",
           "Packets relayed per turn-control relay thread (both directions).");
  for (size_t t = 0; t < stats.size(); ++t)
    m.sample("dpturn_thread_relayed_packets_total", {{"thread", std::to_string(t)}},
             stats[t]->packets_to_peer.load() + stats[t]->packets_to_client.load());

  m.family("dpturn_dataplanes", "gauge", "Data planes that published counters to the state Redis in the last 10 s.");
  m.sample("dpturn_dataplanes", {}, dps.size());
  if (!dps.empty()) {
    m.family("dpturn_dataplane_up", "gauge", "1 while a data plane has published its counters in the last 5 s.");
    for (auto& d : dps) m.sample("dpturn_dataplane_up", {{"dataplane", d.s.instance}}, d.up() ? 1 : 0);
    m.family(
        "dpturn_dataplane_store_disconnects_total", "counter",
        "Times a data plane lost the state store (its tables stayed; new flows went to the kernel path meanwhile).");
    for (auto& d : dps)
      m.sample("dpturn_dataplane_store_disconnects_total", {{"dataplane", d.s.instance}}, d.s.disconnects);
    m.family("dpturn_dataplane_punts_total", "counter", "Frames a data plane handed to the kernel path, by reason.");
    for (auto& d : dps)
      for (const auto& [reason, v] : d.s.punts)
        m.sample("dpturn_dataplane_punts_total", {{"reason", reason}, {"dataplane", d.s.instance}}, v);
    m.family("dpturn_dataplane_polls_total", "counter",
             "Worker rx polls that returned packets (busy) or none (idle): the load per worker.");
    for (auto& d : dps)
      for (size_t w = 0; w < d.s.workers.size(); ++w) {
        m.sample("dpturn_dataplane_polls_total",
                 {{"worker", std::to_string(w)}, {"result", "busy"}, {"dataplane", d.s.instance}},
                 d.s.workers[w].busy_polls);
        m.sample("dpturn_dataplane_polls_total",
                 {{"worker", std::to_string(w)}, {"result", "idle"}, {"dataplane", d.s.instance}},
                 d.s.workers[w].idle_polls);
      }
    m.family("dpturn_dataplane_worker_rx_packets_total", "counter", "Packets received per data-plane worker.");
    for (auto& d : dps)
      for (size_t w = 0; w < d.s.workers.size(); ++w)
        m.sample("dpturn_dataplane_worker_rx_packets_total",
                 {{"worker", std::to_string(w)}, {"dataplane", d.s.instance}}, d.s.workers[w].rx_packets);
    m.family("dpturn_dataplane_allocations", "gauge", "Allocations in a data plane's tables.");
    for (auto& d : dps) m.sample("dpturn_dataplane_allocations", {{"dataplane", d.s.instance}}, d.s.allocations);
    m.family("dpturn_dataplane_sync_lag_ms", "gauge",
             "Age of the last state event a data plane applied (its lag behind the state store).");
    for (auto& d : dps) m.sample("dpturn_dataplane_sync_lag_ms", {{"dataplane", d.s.instance}}, d.s.sync_lag_ms);
    m.family("dpturn_dataplane_snapshots_total", "counter",
             "Snapshots a data plane took of its instance's records (one per (re)connection).");
    for (auto& d : dps) m.sample("dpturn_dataplane_snapshots_total", {{"dataplane", d.s.instance}}, d.s.snapshots);
    m.family("dpturn_dataplane_bad_events_total", "counter",
             "State events or records a data plane could not decode (skipped).");
    for (auto& d : dps) m.sample("dpturn_dataplane_bad_events_total", {{"dataplane", d.s.instance}}, d.s.bad_events);
  }
  const auto& rs = rt_.shared().redirector;
  m.family("dpturn_draining", "gauge",
           "1 while this instance drains: new Allocates are redirected (300), its calls go on.");
  m.sample("dpturn_draining", {}, rs.draining() ? 1 : 0);
  m.family("dpturn_redirects_total", "counter",
           "New Allocates answered 300 Try Alternate (RFC 8489 section 10): drain, or alternate-server.");
  m.sample("dpturn_redirects_total", {{"reason", "drain"}}, rs.stats().drain.load());
  m.sample("dpturn_redirects_total", {{"reason", "alternate"}}, rs.stats().alternate.load());
  m.family("dpturn_drain_no_target_total", "counter",
           "New Allocates a draining instance had nowhere to send (served here, or 508 when the drain was forced).");
  m.sample("dpturn_drain_no_target_total", {}, rs.stats().no_target.load());
  if (auto* store = rt_.state_store()) {
    auto st = store->status();
    m.family("dpturn_state_redis_up", "gauge", "1 while the state store's master is reachable.");
    m.sample("dpturn_state_redis_up", {}, st.connected ? 1 : 0);
    m.family(
        "dpturn_state_degraded", "gauge",
        "1 while the state store is unreachable: calls still connect, on the kernel path; their events are queued.");
    m.sample("dpturn_state_degraded", {}, st.connected ? 0 : 1);
    m.family("dpturn_state_queue_depth", "gauge", "State events waiting to be written to the store.");
    m.sample("dpturn_state_queue_depth", {}, st.queue_depth);
    m.family("dpturn_state_queue_limit", "gauge",
             "state-queue-limit: queued events beyond it are dropped for a full resync.");
    m.sample("dpturn_state_queue_limit", {}, st.queue_limit);
    m.family("dpturn_state_sync_lag_seconds", "gauge",
             "Age of the oldest state event not yet written to the store (0: the store is up to date).");
    m.sample_double("dpturn_state_sync_lag_seconds", {}, st.lag_s);
    m.family("dpturn_state_events_total", "counter", "State events written to the store.");
    m.sample("dpturn_state_events_total", {}, st.events_written);
    m.family("dpturn_state_queue_overflows_total", "counter", "Times the event queue filled while the store was away.");
    m.sample("dpturn_state_queue_overflows_total", {}, st.overflows);
    m.family("dpturn_state_resyncs_total", "counter",
             "Full rewrites of this instance's records (first connect, failover, overflow).");
    m.sample("dpturn_state_resyncs_total", {}, st.resyncs);
    m.family("dpturn_state_disconnects_total", "counter", "Times the state store was lost.");
    m.sample("dpturn_state_disconnects_total", {}, st.disconnects);
    m.family("dpturn_state_master_changes_total", "counter", "Reconnections that found another master (failovers).");
    m.sample("dpturn_state_master_changes_total", {}, st.master_changes);
    m.family("dpturn_state_store_refusals_total", "counter",
             "What the state store's client refused: an address whose ROLE was not master (replica), a reply that "
             "made no sense (bad_reply), a write refused by a demoted master (readonly); nothing was written there.");
    m.sample("dpturn_state_store_refusals_total", {{"reason", "replica"}}, st.refused_replicas);
    m.sample("dpturn_state_store_refusals_total", {{"reason", "bad_reply"}}, st.bad_replies);
    m.sample("dpturn_state_store_refusals_total", {{"reason", "readonly"}}, st.readonly_replies);
  }

  auto servers = turn_servers_->list();
  m.family("dpturn_turn_servers", "gauge", "TURN servers in the registry (/api/v1/turn-servers).");
  m.sample("dpturn_turn_servers", {}, servers.size());
  m.family("dpturn_turn_server_up", "gauge",
           "Last probe of a registered TURN server: 1 reachable, 0 not (probed ones only).");
  for (const auto& e : servers)
    if (e.last_status)
      m.sample("dpturn_turn_server_up", {{"id", e.id}, {"server", e.server_address}}, e.last_status->reachable ? 1 : 0);
  m.family("dpturn_turn_server_rtt_seconds", "gauge",
           "Round trip of the last successful probe's authenticated Allocate.");
  for (const auto& e : servers)
    if (e.last_status && e.last_status->rtt_ms)
      m.sample_double("dpturn_turn_server_rtt_seconds", {{"id", e.id}, {"server", e.server_address}},
                      *e.last_status->rtt_ms / 1000.0);
  return m.take();
}

}  // namespace turn::cp
