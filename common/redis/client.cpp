// SPDX-License-Identifier: Apache-2.0
// hiredis, Sentinel discovery and ROLE checks (client.h).
#include "common/redis/client.h"

#include <hiredis/hiredis.h>
#include <poll.h>
#include <sys/time.h>

#include <cstring>
#include <memory>

namespace turn::redis {

namespace {

Reply convert(const redisReply* r) {
  Reply out;
  if (!r) return out;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      out.type = Reply::Type::String;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = Reply::Type::Status;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = Reply::Type::Error;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = Reply::Type::Integer;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = Reply::Type::Array;
      out.elements.reserve(r->elements);
      for (size_t i = 0; i < r->elements; ++i) out.elements.push_back(convert(r->element[i]));
      break;
    default:
      break;
  }
  return out;
}

timeval ms_to_tv(int ms) { return timeval{ms / 1000, (ms % 1000) * 1000}; }

// One command on a raw context (discovery, before ctx_ is ours).
Reply raw_command(redisContext* c, const std::vector<std::string>& args, std::string& why) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  void* raw = redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data());
  if (!raw) {
    why = c->errstr[0] ? c->errstr : "no reply";
    Reply none;
    none.type = Reply::Type::Error;
    none.str = why;
    return none;
  }
  Reply r = convert(static_cast<redisReply*>(raw));
  freeReplyObject(raw);
  if (r.is_error()) why = args.front() + ": " + r.str;
  return r;
}

std::string first_line_field(const std::string& info, std::string_view name) {
  auto p = info.find(std::string(name) + ":");
  if (p == std::string::npos) return "";
  p += name.size() + 1;
  auto e = info.find_first_of("\r\n", p);
  return info.substr(p, e == std::string::npos ? std::string::npos : e - p);
}

}  // namespace

bool available() noexcept { return true; }

Client::Client(Endpoint ep) : ep_(std::move(ep)) {}
Client::~Client() { disconnect(); }

void Client::disconnect() noexcept {
  if (ctx_) redisFree(ctx_);
  if (sub_) redisFree(sub_);
  ctx_ = sub_ = nullptr;
  pending_ = 0;
  switched_ = false;
}

std::string Client::where() const { return ctx_ ? master_.to_string() : ""; }

redisContext* Client::open(const HostPort& at, const std::string& password, std::string& why) const {
  redisContext* c = redisConnectWithTimeout(at.host.c_str(), at.port, ms_to_tv(ep_.connect_timeout_ms));
  if (!c || c->err) {
    why = c ? c->errstr : "out of memory";
    if (c) redisFree(c);
    return nullptr;
  }
  redisSetTimeout(c, ms_to_tv(ep_.io_timeout_ms));
  redisEnableKeepAlive(c);
  if (!password.empty()) {
    Reply r = raw_command(c, {"AUTH", password}, why);
    if (r.is_error()) {
      redisFree(c);
      return nullptr;
    }
  }
  return c;
}

void Client::connect_direct(const HostPort& at, std::string& why) {
  redisContext* c = open(at, ep_.password, why);
  if (!c) return;
  auto fail = [&](std::string w) {
    why = std::move(w);
    redisFree(c);
  };
  if (ep_.db != 0) {
    Reply r = raw_command(c, {"SELECT", std::to_string(ep_.db)}, why);
    if (r.is_error()) return fail(why);
  }
  // Never write to a replica: the address must say it is the master.
  Reply role = raw_command(c, {"ROLE"}, why);
  if (role.is_error()) return fail(why);
  if (role.type != Reply::Type::Array || role.elements.empty() || role.elements[0].type != Reply::Type::String) {
    ++stats_.bad_replies;
    return fail("ROLE: unexpected reply (not a Redis server?)");
  }
  if (role.elements[0].str != "master") {
    ++stats_.refused_replicas;
    return fail("is a " + role.elements[0].str + ", not the master (ROLE " + role.elements[0].str +
                "); refusing to write there");
  }
  Reply info = raw_command(c, {"INFO", "server"}, why);
  if (info.is_error()) return fail(why);
  ctx_ = c;
  master_ = at;
  run_id_ = first_line_field(info.str, "run_id");
  std::string now = at.to_string();
  if (!last_master_.empty() && last_master_ != now) ++stats_.master_changes;
  last_master_ = now;
  ++stats_.connects;
  why.clear();
}

void Client::subscribe(const HostPort& sentinel) {
  std::string why;
  redisContext* s = open(sentinel, ep_.sentinel_password, why);
  if (!s) return;  // discovery worked a moment ago; errors still find the master again
  Reply r = raw_command(s, {"SUBSCRIBE", "+switch-master"}, why);
  if (r.is_error()) {
    redisFree(s);
    return;
  }
  sub_ = s;
}

void Client::check_switch() {
  while (sub_) {
    pollfd p{sub_->fd, POLLIN, 0};
    if (::poll(&p, 1, 0) <= 0) return;
    if ((p.revents & (POLLERR | POLLHUP | POLLNVAL)) || redisBufferRead(sub_) != REDIS_OK) {
      // The sentinel went away: errors on the master connection still
      // trigger a new discovery, which subscribes again.
      redisFree(sub_);
      sub_ = nullptr;
      return;
    }
    void* raw = nullptr;
    while (sub_ && redisGetReplyFromReader(sub_, &raw) == REDIS_OK && raw) {
      Reply m = convert(static_cast<redisReply*>(raw));
      freeReplyObject(raw);
      raw = nullptr;
      // ["message", "+switch-master", "<name> <old ip> <old port> <new ip> <new port>"]
      if (m.type == Reply::Type::Array && m.elements.size() == 3 && m.elements[0].str == "message") {
        // "<name> <old ip> <old port> <new ip> <new port>"; a switch to
        // the master we are on already (we connected after it) is no news.
        const std::string& payload = m.elements[2].str;
        if (payload.compare(0, ep_.master.size() + 1, ep_.master + " ") == 0) {
          auto sp = payload.rfind(' ');
          auto sp2 = sp == std::string::npos || sp == 0 ? std::string::npos : payload.rfind(' ', sp - 1);
          bool same = false;
          if (sp2 != std::string::npos) {
            std::string ip = payload.substr(sp2 + 1, sp - sp2 - 1), port = payload.substr(sp + 1);
            same =
                ctx_ && (ip == master_.host || "[" + ip + "]" == master_.host) && port == std::to_string(master_.port);
          }
          if (!same) {
            ++stats_.switch_messages;
            switched_ = true;
          }
        }
      }
    }
  }
}

bool Client::master_switched() {
  check_switch();
  return switched_;
}

void Client::connect() {
  disconnect();
  std::string why;
  if (!ep_.sentinel()) {
    connect_direct({ep_.host, ep_.port}, why);
    if (!ctx_) throw Error(ep_.describe() + ": " + why);
    return;
  }
  std::string tried;
  for (const auto& s : ep_.sentinels) {
    auto note = [&](const std::string& w) { tried += (tried.empty() ? "" : "; ") + s.to_string() + ": " + w; };
    redisContext* sc = open(s, ep_.sentinel_password, why);
    if (!sc) {
      note(why);
      continue;
    }
    Reply r = raw_command(sc, {"SENTINEL", "get-master-addr-by-name", ep_.master}, why);
    redisFree(sc);
    if (r.is_error()) {
      note(why);
      continue;
    }
    if (r.type == Reply::Type::Nil) {
      note("monitors no master named '" + ep_.master + "'");
      continue;
    }
    HostPort at;
    try {
      if (r.type != Reply::Type::Array || r.elements.size() != 2) throw EndpointError("", "");
      at = parse_host_port(r.elements[0].str.find(':') != std::string::npos
                               ? "[" + r.elements[0].str + "]:" + r.elements[1].str
                               : r.elements[0].str + ":" + r.elements[1].str);
    } catch (const EndpointError&) {
      ++stats_.bad_replies;
      note("unexpected reply to SENTINEL get-master-addr-by-name (not a sentinel?)");
      continue;
    }
    connect_direct(at, why);
    if (!ctx_) {
      note("named master " + at.to_string() + ", which " + why);
      continue;
    }
    subscribe(s);
    return;
  }
  throw Error(ep_.describe() + ": " + tried);
}

void Client::append_argv(int argc, const char** argv, const size_t* lens) {
  if (pending_ == 0 && ctx_ && master_switched()) {
    // Not reconnected here: the caller decides what a new master means
    // (turn-control rewrites its records, a data plane takes a snapshot).
    std::string at = where();
    disconnect();
    throw Error("redis " + at + ": the sentinels switched master '" + ep_.master + "'; connect again");
  }
  if (!ctx_) throw Error(ep_.describe() + ": not connected");
  if (redisAppendCommandArgv(ctx_, argc, argv, lens) != REDIS_OK) {
    std::string why = ctx_->errstr;
    std::string at = where();
    disconnect();
    throw Error("redis " + at + ": " + why);
  }
  ++pending_;
}

void Client::append(const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  argv.reserve(args.size());
  lens.reserve(args.size());
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  append_argv(static_cast<int>(args.size()), argv.data(), lens.data());
}

void Client::append_view(std::initializer_list<std::string_view> args) {
  constexpr size_t kMax = 16;
  if (args.size() > kMax) throw Error("append_view: more than 16 arguments");
  const char* argv[kMax];
  size_t lens[kMax];
  size_t n = 0;
  for (auto a : args) {
    argv[n] = a.data();
    lens[n++] = a.size();
  }
  append_argv(static_cast<int>(n), argv, lens);
}

Reply::Type ReplyRef::type() const noexcept {
  if (!r_) return Reply::Type::Nil;
  switch (r_->type) {
    case REDIS_REPLY_STRING:
      return Reply::Type::String;
    case REDIS_REPLY_STATUS:
      return Reply::Type::Status;
    case REDIS_REPLY_ERROR:
      return Reply::Type::Error;
    case REDIS_REPLY_INTEGER:
      return Reply::Type::Integer;
    case REDIS_REPLY_ARRAY:
      return Reply::Type::Array;
    default:
      return Reply::Type::Nil;
  }
}
std::string_view ReplyRef::str() const noexcept {
  if (!r_ || !(r_->type == REDIS_REPLY_STRING || r_->type == REDIS_REPLY_STATUS || r_->type == REDIS_REPLY_ERROR))
    return {};
  return {r_->str, r_->len};
}
long long ReplyRef::integer() const noexcept { return r_ && r_->type == REDIS_REPLY_INTEGER ? r_->integer : 0; }
size_t ReplyRef::size() const noexcept { return r_ && r_->type == REDIS_REPLY_ARRAY ? r_->elements : 0; }
ReplyRef ReplyRef::operator[](size_t i) const noexcept { return ReplyRef(i < size() ? r_->element[i] : nullptr); }

void Client::replies(const std::function<void(ReplyRef)>& each) {
  bool readonly = false;
  while (pending_ > 0) {
    void* raw = nullptr;
    if (redisGetReply(ctx_, &raw) != REDIS_OK) {
      std::string why = ctx_->errstr[0] ? ctx_->errstr : "connection lost";
      std::string at = where();
      disconnect();
      throw Error("redis " + at + ": " + why);
    }
    --pending_;
    std::unique_ptr<void, void (*)(void*)> hold(raw, freeReplyObject);
    ReplyRef r(static_cast<redisReply*>(raw));
    if (r.is_error() && r.str().starts_with("READONLY")) readonly = true;
    if (readonly) continue;
    try {
      each(r);
    } catch (...) {
      disconnect();  // the replies still pending would be read as the next command's
      throw;
    }
  }
  if (readonly) {
    // A master demoted to replica under us (a failover we were not told
    // of): nothing more goes there; the next connect() asks the sentinels.
    ++stats_.readonly_replies;
    std::string at = where();
    disconnect();
    throw Error("redis " + at + ": READONLY (no longer the master); finding the master again");
  }
}

std::vector<Reply> Client::replies() {
  std::vector<Reply> out;
  out.reserve(pending_);
  replies([&out](ReplyRef r) { out.push_back(convert(r.raw())); });
  return out;
}

Reply Client::command(const std::vector<std::string>& args) {
  append(args);
  auto r = replies();
  if (r.front().is_error()) throw Error("redis " + where() + ": " + args.front() + ": " + r.front().str);
  return r.front();
}

}  // namespace turn::redis
