// SPDX-License-Identifier: Apache-2.0
// Process assembly: threads, listeners, sinks.
#include "controlplane/server/runtime.h"

#include <pthread.h>
#include <signal.h>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <future>

#include "common/redis/client.h"
#include "common/state/store.h"
#include "controlplane/admin/admin_server.h"
#include "common/log/log.h"
#include "controlplane/net/event_loop.h"
#include "controlplane/net/socket.h"
#include "controlplane/net/tls.h"
#include "controlplane/server/turn_server.h"
#include "controlplane/sync/redis_state_store.h"
#include "controlplane/sync/redis_userdb.h"

namespace turn::cp {

struct Runtime::Worker {
  EventLoop loop;
  Stats stats;
  std::unique_ptr<TurnServer> server;
  std::unique_ptr<Listeners> listeners;
  std::thread thread;
};

Runtime::Runtime(Config& cfg) : cfg_(cfg) {}

Runtime::~Runtime() { stop(); }

std::vector<const Stats*> Runtime::stats() const {
  std::vector<const Stats*> out;
  for (const auto& w : workers_) out.push_back(&w->stats);
  return out;
}

namespace {

// Blocks the stop/reload signals in the calling thread for its lifetime, and
// then puts the caller's own mask back. Every thread start() makes (relay
// loops, the state store's and user db's writers, the admin server and its
// pool, which make theirs in turn) inherits the blocked mask, so a signal
// sent to the process goes to a thread that has not blocked it: turn-control's
// main, which blocks them itself and sigwait()s, or, in a program that does
// not handle them (a test), any such thread, where the default action ends
// the process as it should.
class StopSignalsBlocked {
 public:
  StopSignalsBlocked() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, &saved_);
  }
  ~StopSignalsBlocked() { pthread_sigmask(SIG_SETMASK, &saved_, nullptr); }
  StopSignalsBlocked(const StopSignalsBlocked&) = delete;
  StopSignalsBlocked& operator=(const StopSignalsBlocked&) = delete;

 private:
  sigset_t saved_{};
};

}  // namespace

void Runtime::start() {
  const StopSignalsBlocked blocked;  // for the threads made below only; restored on return or throw
  signal(SIGPIPE, SIG_IGN);          // process-wide: peers that close their TCP/TLS connections must not kill us

  std::vector<IpAddress> listen_ips = cfg_.listening_ips;
  if (listen_ips.empty()) listen_ips = interface_addresses();
  if (cfg_.relay_ips.empty()) {
    // Sane default: relay from the machine's non-loopback addresses.
    for (const auto& ip : listen_ips) {
      bool loopback = ip.is_v4() ? (ip.v4_host_order() >> 24) == 127 : ip == *IpAddress::parse("::1");
      if (!loopback) cfg_.relay_ips.push_back(ip);
    }
    if (cfg_.relay_ips.empty()) cfg_.relay_ips = listen_ips;
    if (cfg_.relay_ips.empty()) throw ConfigError("no relay address: set relay-ip");
  }
  // Our own listening addresses are not reachable as peers (anti-SSRF),
  // unless they also relay.
  if (cfg_.listening_ips.empty()) cfg_.listening_ips = listen_ips;

  shared_ = std::make_unique<SharedState>(cfg_);
  if (!cfg_.no_tls)
    tls_ = std::make_unique<TlsContext>(
        TlsSettings{cfg_.cert, cfg_.pkey, cfg_.pkey_password, cfg_.cipher_list_effective, cfg_.ec_curve});

  unsigned threads = cfg_.relay_threads ? cfg_.relay_threads : std::max(1u, std::thread::hardware_concurrency());
  for (unsigned i = 0; i < threads; ++i) {
    auto w = std::make_unique<Worker>();
    w->server = std::make_unique<TurnServer>(*shared_, w->loop, w->stats);
    w->listeners = std::make_unique<Listeners>(*w->server, w->loop, tls_.get());
    workers_.push_back(std::move(w));
  }

  struct Port {
    Transport t;
    uint16_t port;
  };
  std::vector<Port> ports;
  if (!cfg_.no_udp) ports.push_back({Transport::Udp, cfg_.listening_port});
  if (!cfg_.no_tcp) ports.push_back({Transport::Tcp, cfg_.listening_port});
  if (cfg_.alt_listening_port) {
    if (!cfg_.no_udp) ports.push_back({Transport::Udp, cfg_.alt_listening_port});
    if (!cfg_.no_tcp) ports.push_back({Transport::Tcp, cfg_.alt_listening_port});
  }
  if (!cfg_.no_tls) {
    ports.push_back({Transport::Tls, cfg_.tls_listening_port});
    if (cfg_.alt_tls_listening_port) ports.push_back({Transport::Tls, cfg_.alt_tls_listening_port});
    if (!cfg_.no_dtls) {
      ports.push_back({Transport::Dtls, cfg_.tls_listening_port});
      if (cfg_.alt_tls_listening_port) ports.push_back({Transport::Dtls, cfg_.alt_tls_listening_port});
    }
  }
  size_t up = 0;
  for (const auto& ip : listen_ips) {
    for (const auto& p : ports) {
      ListenerStatus st{};
      for (auto& w : workers_) {
        st = w->listeners->open(p.t, SocketAddress{ip, p.port});
        if (!st.up) break;
      }
      listener_status_.push_back(st);
      if (st.up) {
        ++up;
        log_info(std::string("listening on ") + transport_name(p.t) + " " + st.address.to_string());
      } else {
        log_warn(std::string("cannot listen on ") + transport_name(p.t) + " " + st.address.to_string() + ": " +
                 st.error);
      }
    }
  }
  if (up == 0) throw std::runtime_error("no listener could be opened");
  std::string relays;
  for (const auto& ip : cfg_.relay_ips) relays += (relays.empty() ? "" : ", ") + ip.to_string();
  log_info("relay addresses: " + relays + ", ports " + std::to_string(cfg_.min_port) + "-" +
           std::to_string(cfg_.max_port) + "; realm " + cfg_.realm + "; " + std::to_string(threads) + " thread(s)");

  if (cfg_.redis_userdb.enabled) {
    userdb_ = std::make_unique<RedisUserDb>(cfg_, shared_->credentials);
    userdb_->start();
    // coturn's per-realm user-quota, total-quota and max-bps.
    realm_options_ = std::make_unique<RealmOptionsPoller>(cfg_, shared_->limits);
    realm_options_->start();
  }
  if (cfg_.state_redis.enabled) {
    state_store_ = std::make_unique<RedisStateStore>(cfg_, shared_->registry);
    state_store_->set_membership_source(
        [this, started = static_cast<uint64_t>(std::time(nullptr))] { return membership(started); });
    state_store_->set_members_sink(
        [this](std::vector<state::MembershipRecord> m) { shared_->redirector.set_members(std::move(m)); });
    state_store_->set_drain_requests([this](const std::string& request) { apply_drain_request(request); });
    restore_from_redis();
    shared_->sinks.push_back(state_store_.get());
    state_store_->start();
  }

  for (auto& w : workers_) {
    Worker* raw = w.get();
    raw->listeners->dtls_idle = std::chrono::seconds(cfg_.max_allocate_lifetime_s + 60);
    raw->loop.every(std::chrono::milliseconds(1000), [raw, this] {
      raw->server->sweep();
      raw->listeners->sweep();
      shared_->reservations.expire(raw->loop.now_s());
    });
    raw->thread = std::thread([raw] { raw->loop.run(); });
  }
  if (cfg_.admin_port != 0 || cfg_.prometheus) {
    admin_ = std::make_unique<AdminServer>(cfg_, *this);
    admin_->start();
  }
}

state::MembershipRecord Runtime::membership(uint64_t started_s) const {
  state::MembershipRecord m;
  m.instance = cfg_.instance_id;
  m.state = shared_->redirector.draining() ? state::MemberState::Draining : state::MemberState::Serving;
  m.redirects = shared_->redirector.redirects_all();
  for (const auto& l : listener_status_)
    if (l.up) m.listen.push_back({l.transport, l.address});
  {
    std::lock_guard lock(listen_mutex_);
    for (const auto& l : adopted_listen_) m.listen.push_back(l);
  }
  m.relay = cfg_.relay_ips;
  m.allocations = shared_->registry.size();
  m.updated_ms = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
  m.started_s = started_s;
  m.version = DPTURN_VERSION;
  return m;
}

void Runtime::apply_drain_request(const std::string& request) {
  // Asked through another instance's API (POST /api/v1/drain {"instance"}).
  if (request == "undrain") {
    if (shared_->redirector.draining()) log_info("drain: ended (asked through the fleet)");
    shared_->redirector.undrain();
    return;
  }
  bool force = request == "drain force";
  if (request != "drain" && !force) {
    log_warn("drain: ignored a request '" + request + "' (expected drain, drain force or undrain)");
    return;
  }
  if (auto refused = shared_->redirector.drain(force))
    log_warn("drain: refused (asked through the fleet): " + refused->why);
  else
    log_info(std::string("drain: started (asked through the fleet") + (force ? ", forced" : "") + "); " +
             std::to_string(shared_->registry.size()) + " allocation(s) left");
}

AdoptResult Runtime::adopt(const std::string& instance, std::chrono::milliseconds wait_for_expiry) {
  AdoptResult r;
  auto fail = [&r](int status, std::string why) {
    r.status = status;
    r.error = std::move(why);
    return r;
  };
  if (!state::valid_instance_id(instance))
    return fail(400, "instance '" + instance + "': " + std::string(state::kInstanceIdRule));
  if (instance == cfg_.instance_id) return fail(400, "instance '" + instance + "' is this one");
  if (!state_store_) return fail(503, "adopting goes through the state store; state-redis is not set");
  std::lock_guard one(adopt_mutex_);
  try {
    redis::Client c(cfg_.state_redis);
    c.connect();
    // Fencing: a live instance is never adopted. Its membership record
    // expires kMemberTtlMs after its last refresh.
    auto t0 = std::chrono::steady_clock::now();
    for (;;) {
      auto ttl = c.command({"PTTL", state::member_key(instance)}).integer;
      if (ttl < 0) break;  // -2: gone (-1, no expiry, is never written)
      if (std::chrono::steady_clock::now() - t0 >= wait_for_expiry)
        return fail(409, "instance '" + instance + "' is alive: its membership record was refreshed " +
                             std::to_string(state::kMemberTtlMs -
                                            static_cast<uint64_t>(std::min<long long>(ttl, state::kMemberTtlMs))) +
                             " ms ago; a live instance is never adopted");
      std::this_thread::sleep_for(std::chrono::milliseconds(std::min<long long>(ttl + 10, 100)));
    }
    r.waited_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    auto now = static_cast<uint64_t>(std::time(nullptr));
    auto snap = state::read_snapshot(c, instance, now + 1);
    if (snap.allocations.empty()) return fail(404, "instance '" + instance + "' has no live allocations in the store");
    // Every address must be ours now (the floating address moved here):
    // try them all before taking anything.
    std::vector<SocketAddress> servers;
    auto here = interface_addresses();
    auto held_here = [&](const IpAddress& ip) { return std::find(here.begin(), here.end(), ip) != here.end(); };
    for (const auto& a : snap.allocations) {
      if (a.record.transport != Transport::Udp) continue;
      for (const auto* at : {&a.record.relay, &a.record.server})
        if (!held_here(at->ip))
          return fail(409,
                      "instance '" + instance + "''s address " + at->ip.to_string() +
                          " is not on this host: its floating address has not moved here (keepalived); nothing taken");
      if (std::find(servers.begin(), servers.end(), a.record.server) == servers.end())
        servers.push_back(a.record.server);
      int fd = try_open_relay_socket(a.record.relay, false);
      if (fd < 0)
        return fail(409, "cannot bind instance '" + instance + "''s relay address " + a.record.relay.to_string() +
                             ": " + errno_text(errno) + " (is its floating address on this host?)");
      ::close(fd);
    }
    // Its client-facing UDP listeners, on every worker (on their threads).
    for (const auto& at : servers) {
      bool have = false;
      for (const auto& l : listener_status_) have |= l.up && l.transport == Transport::Udp && l.address == at;
      if (have || workers_.front()->listeners->udp_fd(at) >= 0) continue;
      for (auto& w : workers_) {
        std::promise<ListenerStatus> done;
        auto f = done.get_future();
        Worker* raw = w.get();
        raw->loop.post([raw, at, &done] { done.set_value(raw->listeners->open(Transport::Udp, at)); });
        if (f.wait_for(std::chrono::seconds(2)) != std::future_status::ready)
          return fail(503, "a relay thread did not answer while opening " + at.to_string());
        auto st = f.get();
        if (!st.up)
          return fail(409,
                      "cannot listen on instance '" + instance + "''s address " + at.to_string() + ": " + st.error);
      }
      {
        std::lock_guard lock(listen_mutex_);
        adopted_listen_.push_back({Transport::Udp, at});
      }
      r.listeners.push_back("udp " + at.to_string());
    }
    // Its allocations, as this instance's ("<us>/<relay>"), each on the
    // thread that owns its 5-tuple.
    for (auto& a : snap.allocations) {
      if (a.record.transport != Transport::Udp) {
        ++r.skipped;
        continue;
      }
      auto info = std::make_shared<AllocationInfo>();
      info->id = state::allocation_id(cfg_.instance_id, a.record.relay.to_string());
      info->relay = a.record.relay;
      info->username = a.record.username;
      info->realm = a.record.realm;
      info->expires_s = a.record.expires_s;
      for (const auto& p : a.permissions) info->permissions.push_back({p.peer, p.expires_s});
      for (const auto& ch : a.channels) info->channels.push_back({ch.number, ch.peer, ch.expires_s});
      FiveTuple t{Transport::Udp, a.record.client, a.record.server};
      Worker* w = workers_[AddressHash{}(t) % workers_.size()].get();
      std::promise<bool> done;
      auto f = done.get_future();
      w->loop.post([w, t, info, &done] {
        int fd = w->listeners->udp_fd(t.server);
        done.set_value(fd >= 0 && w->server->restore(t, ClientLink{fd, nullptr}, info));
      });
      if (f.wait_for(std::chrono::seconds(2)) == std::future_status::ready && f.get())
        ++r.adopted;
      else
        ++r.skipped;
    }
    // Its records go; ours are written by a resync (with a "resync" event,
    // which the data plane here takes as the complete picture).
    for (const auto& a : snap.allocations) state::append_event(c, instance, state::Event::deleted(a.record.id), 0);
    c.replies();
    state_store_->request_resync();
    log_info("adopt: instance '" + instance + "': " + std::to_string(r.adopted) + " allocation(s) taken over, " +
             std::to_string(r.skipped) + " skipped (stream clients or not restorable), after waiting " +
             std::to_string(static_cast<int>(r.waited_s * 1000)) + " ms for its membership to expire");
  } catch (const std::exception& e) {
    return fail(503, std::string("adopting needs the state store: ") + e.what());
  }
  return r;
}

void Runtime::restore_from_redis() {
  // A restarted turn-control takes back its live UDP allocations (docs/state.md).
  std::vector<std::pair<state::AllocationRecord, std::shared_ptr<AllocationInfo>>> own;
  try {
    own = state_store_->load_own();
  } catch (const std::exception& e) {
    log_warn(std::string("restore: cannot read allocations from redis: ") + e.what());
    return;
  }
  size_t restored = 0, dropped = 0;
  for (auto& [rec, info] : own) {
    FiveTuple t{Transport::Udp, rec.client, rec.server};
    Worker* w = workers_[AddressHash{}(t) % workers_.size()].get();
    int fd = rec.transport == Transport::Udp ? w->listeners->udp_fd(rec.server) : -1;
    if (fd >= 0 && w->server->restore(t, ClientLink{fd, nullptr}, info))
      ++restored;
    else
      ++dropped;  // the resync deletes its records
  }
  if (!own.empty())
    log_info("restore: " + std::to_string(restored) + " allocation(s) restored from redis, " + std::to_string(dropped) +
             " dropped (stream clients or ports no longer available)");
}

void Runtime::stop() {
  if (admin_) admin_->stop();
  admin_.reset();
  for (auto& w : workers_) w->loop.stop();
  for (auto& w : workers_)
    if (w->thread.joinable()) w->thread.join();
  if (state_store_) {
    // Shutdown is not a release: allocations stay in Redis so that a
    // restarted turn-control (and the data plane) keep them.
    shared_->sinks.clear();
  }
  for (auto& w : workers_) {
    w->listeners->close_all();
    w->server->clear();
  }
  workers_.clear();
  if (state_store_) state_store_->stop();
  if (userdb_) userdb_->stop();
  if (realm_options_) realm_options_->stop();
}

void Runtime::reload_tls() {
  if (!tls_) {
    log_info("SIGHUP: TLS is off, nothing to reload");
    return;
  }
  try {
    tls_->reload();
    log_info("TLS certificate reloaded from " + cfg_.cert);
  } catch (const std::exception& e) {
    log_error(std::string("TLS reload failed, keeping the old certificate: ") + e.what());
  }
}

}  // namespace turn::cp
