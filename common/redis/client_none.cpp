// SPDX-License-Identifier: Apache-2.0
// redis::Client in a build without hiredis (-Dhiredis=disabled): the same
// interface, and every attempt to reach Redis throws Error saying so.
// turn-control refuses the keys that need Redis before it gets here
// (validate_config: state-redis, redis-userdb); this is the backstop, so
// that the code over the client (the state store, the admin API's fleet
// views) builds unchanged and cannot reach Redis by another way.
#include "common/redis/client.h"

namespace turn::redis {

namespace {

[[noreturn]] void no_hiredis(const Endpoint& ep) {
  throw Error(ep.describe() + ": this build has no hiredis (built with -Dhiredis=disabled): no Redis");
}

}  // namespace

bool available() noexcept { return false; }

Client::Client(Endpoint ep) : ep_(std::move(ep)) {}
Client::~Client() = default;

void Client::connect() { no_hiredis(ep_); }
void Client::disconnect() noexcept { pending_ = 0; }
Reply Client::command(const std::vector<std::string>&) { no_hiredis(ep_); }
void Client::append(const std::vector<std::string>&) { no_hiredis(ep_); }
void Client::append_view(std::initializer_list<std::string_view>) { no_hiredis(ep_); }
std::vector<Reply> Client::replies() { no_hiredis(ep_); }
void Client::replies(const std::function<void(ReplyRef)>&) { no_hiredis(ep_); }
bool Client::master_switched() { return false; }
std::string Client::where() const { return ""; }

// Never made here (no replies), but the type is part of the interface.
Reply::Type ReplyRef::type() const noexcept { return Reply::Type::Nil; }
std::string_view ReplyRef::str() const noexcept { return {}; }
long long ReplyRef::integer() const noexcept { return 0; }
size_t ReplyRef::size() const noexcept { return 0; }
ReplyRef ReplyRef::operator[](size_t) const noexcept { return ReplyRef(nullptr); }

}  // namespace turn::redis
