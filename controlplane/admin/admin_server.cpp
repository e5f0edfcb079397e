// SPDX-License-Identifier: Apache-2.0
// Admin API routes and /metrics.
#include "controlplane/admin/admin_server.h"

#include <httplib.h>

#include <chrono>
#include <ctime>
#include <nlohmann/json.hpp>

#include <map>

#include "common/crypto/integrity.h"
#include "common/state/records.h"
#include "common/util/text.h"
#include "controlplane/config/config.h"
#include "controlplane/log.h"
#include "controlplane/server/runtime.h"
#include "controlplane/sync/redis_client.h"
#include "controlplane/sync/redis_state_store.h"
#include "controlplane/sync/redis_userdb.h"

namespace turn::cp {

using json = nlohmann::json;

namespace {

const char* kMethodNames[16] = {"0", "binding", "2", "allocate", "refresh", "5", "send", "data",
                                "create_permission", "channel_bind", "connect", "11", "12", "13", "14", "15"};

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

json allocation_json(const AllocationInfo& a, uint64_t now) {
  uint64_t exp = a.expires_s.load();
  json perms = json::array(), chans = json::array();
  {
    std::lock_guard lock(a.mutex);
    for (const auto& p : a.permissions)
      perms.push_back({{"peer", p.peer.to_string()}, {"expires_in_s", p.expires_s > now ? p.expires_s - now : 0}});
    for (const auto& c : a.channels)
      chans.push_back({{"channel", c.number}, {"peer", c.peer.to_string()},
                       {"expires_in_s", c.expires_s > now ? c.expires_s - now : 0}});
  }
  return {{"id", a.id},
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
          {"to_peer", {{"packets", a.packets_to_peer.load()}, {"bytes", a.bytes_to_peer.load()}}},
          {"to_client", {{"packets", a.packets_to_client.load()}, {"bytes", a.bytes_to_client.load()}}}};
}

// Data planes publish their counters to Redis every second (docs/state.md).
struct DataplaneStats {
  std::string instance;
  std::map<std::string, uint64_t> values;
  uint64_t age_s = 0;
};

std::vector<DataplaneStats> read_dataplanes(const Config& cfg) {
  std::vector<DataplaneStats> out;
  if (!cfg.state_redis.enabled) return out;
  try {
    RedisClient c(cfg.state_redis);
    c.connect();
    std::string prefix(state::kDataplanePrefix);
    std::string cursor = "0";
    auto now = static_cast<uint64_t>(std::time(nullptr));
    do {
      auto r = c.command({"SCAN", cursor, "MATCH", prefix + "*", "COUNT", "100"});
      if (r.elements.size() != 2) break;
      cursor = r.elements[0].str;
      for (const auto& k : r.elements[1].elements) {
        DataplaneStats d;
        d.instance = k.str.substr(prefix.size());
        auto h = c.command({"HGETALL", k.str});
        for (size_t i = 0; i + 1 < h.elements.size(); i += 2)
          if (auto v = state::parse_u64(h.elements[i + 1].str)) d.values[h.elements[i].str] = *v;
        uint64_t updated = d.values["updated"];
        d.age_s = now > updated ? now - updated : 0;
        out.push_back(std::move(d));
      }
    } while (cursor != "0");
  } catch (const std::exception&) {
    // Redis away: no data-plane figures this scrape (dpturn_state_redis_up says why).
  }
  return out;
}

}  // namespace

AdminServer::AdminServer(const Config& cfg, Runtime& rt) : cfg_(cfg), rt_(rt), http_(std::make_unique<httplib::Server>()) {
  routes();
}

AdminServer::~AdminServer() { stop(); }

void AdminServer::start() {
  std::string host = cfg_.admin_ip.to_string();
  if (!http_->bind_to_port(host.c_str(), cfg_.admin_port))
    throw std::runtime_error("admin API: cannot bind " + SocketAddress{cfg_.admin_ip, cfg_.admin_port}.to_string());
  thread_ = std::thread([this] { http_->listen_after_bind(); });
  log_info("admin API on http://" + SocketAddress{cfg_.admin_ip, cfg_.admin_port}.to_string() + "/api/v1/");
}

void AdminServer::stop() {
  if (http_) http_->stop();
  if (thread_.joinable()) thread_.join();
}

void AdminServer::routes() {
  auto& s = *http_;
  // Every route needs the token.
  s.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    std::string token;
    if (auto h = req.get_header_value("Authorization"); h.rfind("Bearer ", 0) == 0) token = h.substr(7);
    if (token.empty()) token = req.get_header_value("X-Admin-Token");
    const auto& want = cfg_.admin_token;
    bool ok = !token.empty() &&
              crypto::equal_ct({reinterpret_cast<const uint8_t*>(token.data()), token.size()},
                               {reinterpret_cast<const uint8_t*>(want.data()), want.size()});
    if (!ok) {
      res.set_header("WWW-Authenticate", "Bearer");
      error(res, 401, "missing or wrong admin token");
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });

  s.Get("/api/v1/health", [this](const httplib::Request&, httplib::Response& res) {
    auto* store = rt_.state_store();
    bool redis_ok = !store || store->connected();
    reply(res, redis_ok ? 200 : 503,
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
           {"userdb_redis", rt_.userdb() ? (rt_.userdb()->healthy() ? "connected" : "unreachable") : "off"},
           {"dataplanes", [this] {
              json list = json::array();
              for (auto& d : read_dataplanes(cfg_))
                list.push_back({{"instance", d.instance},
                                {"up", d.age_s <= 5},
                                {"updated_s_ago", d.age_s},
                                {"workers", d.values["workers"]},
                                {"allocations", d.values["allocations"]},
                                {"rx_packets", d.values["rx_packets"]},
                                {"tx_packets", d.values["tx_packets"]},
                                {"sync_lag_ms", d.values["sync_lag_ms"]}});
              return list;
            }()}});
  });

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

  s.Get("/api/v1/allocations", [this](const httplib::Request&, httplib::Response& res) {
    auto now = static_cast<uint64_t>(std::time(nullptr));
    json list = json::array();
    for (const auto& a : rt_.shared().registry.snapshot()) list.push_back(allocation_json(*a, now));
    reply(res, 200, {{"allocations", list}, {"count", list.size()}});
  });

  s.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics(), "text/plain; version=0.0.4");
  });

  s.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (res.body.empty()) error(res, res.status, "no such resource");
  });
}

std::string AdminServer::metrics() const {
  std::string out;
  auto counter = [&](const std::string& name, const std::string& help) {
    out += "# HELP " + name + " " + help + "\n# TYPE " + name + " counter\n";
  };
  auto gauge = [&](const std::string& name, const std::string& help) {
    out += "# HELP " + name + " " + help + "\n# TYPE " + name + " gauge\n";
  };
  auto stats = rt_.stats();
  auto sum = [&](auto field) {
    uint64_t v = 0;
    for (const auto* s : stats) v += (s->*field).load(std::memory_order_relaxed);
    return v;
  };
  gauge("dpturn_allocations", "Live allocations.");
  out += "dpturn_allocations " + std::to_string(rt_.shared().registry.size()) + "\n";
  size_t perms = 0, chans = 0;
  for (const auto& a : rt_.shared().registry.snapshot()) {
    std::lock_guard lock(a->mutex);
    perms += a->permissions.size();
    chans += a->channels.size();
  }
  gauge("dpturn_permissions", "Live permissions.");
  out += "dpturn_permissions " + std::to_string(perms) + "\n";
  gauge("dpturn_channels", "Live channel bindings.");
  out += "dpturn_channels " + std::to_string(chans) + "\n";

  counter("dpturn_requests_total", "STUN/TURN requests by method and result.");
  for (int m = 0; m < 16; ++m) {
    uint64_t req = 0, ok = 0, err = 0;
    for (const auto* s : stats) {
      req += s->requests[m].load();
      ok += s->successes[m].load();
      err += s->errors[m].load();
    }
    if (req == 0) continue;
    std::string method = kMethodNames[m];
    out += "dpturn_requests_total{method=\"" + method + "\",result=\"success\"} " + std::to_string(ok) + "\n";
    out += "dpturn_requests_total{method=\"" + method + "\",result=\"error\"} " + std::to_string(err) + "\n";
    out += "dpturn_requests_total{method=\"" + method + "\",result=\"unanswered\"} " +
           std::to_string(req >= ok + err ? req - ok - err : 0) + "\n";
  }
  counter("dpturn_auth_failures_total", "Requests whose MESSAGE-INTEGRITY did not verify (401).");
  out += "dpturn_auth_failures_total " + std::to_string(sum(&Stats::auth_failures)) + "\n";
  counter("dpturn_stale_nonces_total", "438 answers.");
  out += "dpturn_stale_nonces_total " + std::to_string(sum(&Stats::stale_nonces)) + "\n";
  counter("dpturn_quota_refusals_total", "486 answers.");
  out += "dpturn_quota_refusals_total " + std::to_string(sum(&Stats::quota_refusals)) + "\n";
  counter("dpturn_forbidden_peers_total", "403 answers (peer policy).");
  out += "dpturn_forbidden_peers_total " + std::to_string(sum(&Stats::forbidden_peers)) + "\n";
  auto dps = read_dataplanes(cfg_);
  auto dpv = [](DataplaneStats& d, const char* k) { return std::to_string(d.values[k]); };
  counter("dpturn_relayed_packets_total", "Relayed packets by direction and path (slow: turn-control's kernel sockets; fast: a data plane).");
  out += "dpturn_relayed_packets_total{direction=\"to_peer\",path=\"slow\"} " + std::to_string(sum(&Stats::packets_to_peer)) + "\n";
  out += "dpturn_relayed_packets_total{direction=\"to_client\",path=\"slow\"} " + std::to_string(sum(&Stats::packets_to_client)) + "\n";
  for (auto& d : dps) {
    uint64_t to_peer = d.values["path_channel_data_to_peer"] + d.values["path_send_indication_to_peer"] + d.values["path_hairpin"];
    uint64_t to_client = d.values["path_peer_to_client_channel_data"] + d.values["path_peer_to_client_data_indication"] +
                         d.values["path_hairpin"];
    out += "dpturn_relayed_packets_total{direction=\"to_peer\",path=\"fast\",dataplane=\"" + d.instance + "\"} " + std::to_string(to_peer) + "\n";
    out += "dpturn_relayed_packets_total{direction=\"to_client\",path=\"fast\",dataplane=\"" + d.instance + "\"} " + std::to_string(to_client) + "\n";
  }
  counter("dpturn_relayed_bytes_total", "Relayed payload bytes by direction and path.");
  out += "dpturn_relayed_bytes_total{direction=\"to_peer\",path=\"slow\"} " + std::to_string(sum(&Stats::bytes_to_peer)) + "\n";
  out += "dpturn_relayed_bytes_total{direction=\"to_client\",path=\"slow\"} " + std::to_string(sum(&Stats::bytes_to_client)) + "\n";
  counter("dpturn_drops_total", "Dropped packets by reason (control-plane path).");
  for (size_t i = 0; i < kCpDropKeys.size(); ++i) {
    uint64_t v = 0;
    for (const auto* s : stats) v += s->drops[i].load();
    out += "dpturn_drops_total{reason=\"" + std::string(kCpDropKeys[i]) + "\",path=\"slow\"} " + std::to_string(v) + "\n";
  }
  for (auto& d : dps)
    for (const auto& [k, v] : d.values)
      if (k.rfind("drop_", 0) == 0)
        out += "dpturn_drops_total{reason=\"" + k.substr(5) + "\",path=\"fast\",dataplane=\"" + d.instance + "\"} " + std::to_string(v) + "\n";
  if (!dps.empty()) {
    gauge("dpturn_dataplane_up", "1 while a data plane has published its counters in the last 5 s.");
    for (auto& d : dps) out += "dpturn_dataplane_up{dataplane=\"" + d.instance + "\"} " + (d.age_s <= 5 ? "1" : "0") + "\n";
    counter("dpturn_dataplane_punts_total", "Frames a data plane handed to the kernel path, by reason.");
    for (auto& d : dps)
      for (const auto& [k, v] : d.values)
        if (k.rfind("punt_", 0) == 0)
          out += "dpturn_dataplane_punts_total{reason=\"" + k.substr(5) + "\",dataplane=\"" + d.instance + "\"} " + std::to_string(v) + "\n";
    counter("dpturn_dataplane_polls_total", "Worker rx polls that returned packets (busy) or none (idle): the load per worker.");
    for (auto& d : dps)
      for (const auto& [k, v] : d.values) {
        auto us = k.find('_');
        if (k.rfind("worker", 0) != 0 || us == std::string::npos) continue;
        std::string w = k.substr(6, us - 6), what = k.substr(us + 1);
        if (what == "busy_polls" || what == "idle_polls")
          out += "dpturn_dataplane_polls_total{worker=\"" + w + "\",result=\"" + what.substr(0, 4) + "\",dataplane=\"" +
                 d.instance + "\"} " + std::to_string(v) + "\n";
      }
    gauge("dpturn_dataplane_allocations", "Allocations in a data plane's tables.");
    for (auto& d : dps) out += "dpturn_dataplane_allocations{dataplane=\"" + d.instance + "\"} " + dpv(d, "allocations") + "\n";
    gauge("dpturn_dataplane_sync_lag_ms", "Age of the last state event a data plane applied.");
    for (auto& d : dps) out += "dpturn_dataplane_sync_lag_ms{dataplane=\"" + d.instance + "\"} " + dpv(d, "sync_lag_ms") + "\n";
  }
  if (auto* store = rt_.state_store()) {
    gauge("dpturn_state_redis_up", "1 while the state Redis is reachable.");
    out += "dpturn_state_redis_up " + std::string(store->connected() ? "1" : "0") + "\n";
    gauge("dpturn_state_queue_depth", "State events waiting to be written to Redis (sync lag).");
    out += "dpturn_state_queue_depth " + std::to_string(store->queue_depth()) + "\n";
    counter("dpturn_state_events_total", "State events written to Redis.");
    out += "dpturn_state_events_total " + std::to_string(store->events_written()) + "\n";
  }
  return out;
}

}  // namespace turn::cp
