// SPDX-License-Identifier: Apache-2.0
// hiredis wrapper.
#include "controlplane/sync/redis_client.h"

#include <hiredis/hiredis.h>
#include <sys/time.h>

namespace turn::cp {

namespace {
RedisReply convert(const redisReply* r) {
  RedisReply out;
  if (!r) return out;
  switch (r->type) {
    case REDIS_REPLY_STRING: out.type = RedisReply::Type::String; out.str.assign(r->str, r->len); break;
    case REDIS_REPLY_STATUS: out.type = RedisReply::Type::Status; out.str.assign(r->str, r->len); break;
    case REDIS_REPLY_ERROR: out.type = RedisReply::Type::Error; out.str.assign(r->str, r->len); break;
    case REDIS_REPLY_INTEGER: out.type = RedisReply::Type::Integer; out.integer = r->integer; break;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::Array;
      for (size_t i = 0; i < r->elements; ++i) out.elements.push_back(convert(r->element[i]));
      break;
    default: break;
  }
  return out;
}
}  // namespace

RedisClient::RedisClient(RedisEndpoint ep) : ep_(std::move(ep)) {}
RedisClient::~RedisClient() { disconnect(); }

void RedisClient::disconnect() noexcept {
  if (ctx_) redisFree(ctx_);
  ctx_ = nullptr;
  pending_ = 0;
}

void RedisClient::connect() {
  disconnect();
  timeval tv{ep_.connect_timeout_s, 0};
  redisContext* c = redisConnectWithTimeout(ep_.host.c_str(), ep_.port, tv);
  if (!c || c->err) {
    std::string why = c ? c->errstr : "out of memory";
    if (c) redisFree(c);
    throw RedisError("redis " + where() + ": " + why);
  }
  timeval io{2, 0};
  redisSetTimeout(c, io);
  redisEnableKeepAlive(c);
  ctx_ = c;
  if (!ep_.password.empty()) command({"AUTH", ep_.password});
  if (ep_.db != 0) command({"SELECT", std::to_string(ep_.db)});
}

void RedisClient::append(const std::vector<std::string>& args) {
  if (!ctx_) throw RedisError("redis " + where() + ": not connected");
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  if (redisAppendCommandArgv(ctx_, static_cast<int>(argv.size()), argv.data(), lens.data()) != REDIS_OK) {
    std::string why = ctx_->errstr;
    disconnect();
    throw RedisError("redis " + where() + ": " + why);
  }
  ++pending_;
}

std::vector<RedisReply> RedisClient::replies() {
  std::vector<RedisReply> out;
  out.reserve(pending_);
  while (pending_ > 0) {
    void* raw = nullptr;
    if (redisGetReply(ctx_, &raw) != REDIS_OK) {
      std::string why = ctx_->errstr;
      disconnect();
      throw RedisError("redis " + where() + ": " + why);
    }
    --pending_;
    out.push_back(convert(static_cast<redisReply*>(raw)));
    freeReplyObject(raw);
  }
  return out;
}

RedisReply RedisClient::command(const std::vector<std::string>& args) {
  append(args);
  auto r = replies();
  if (r.front().type == RedisReply::Type::Error)
    throw RedisError("redis " + where() + ": " + args.front() + ": " + r.front().str);
  return r.front();
}

}  // namespace turn::cp
