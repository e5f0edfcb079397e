// SPDX-License-Identifier: Apache-2.0
// Blocking TURN client.
#include "controlplane/client/turn_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <functional>

#include "common/stun/attributes.h"
#include "common/stun/builder.h"
#include "controlplane/net/socket.h"

namespace turn::cp {

using stun::Attr;
using Clock = std::chrono::steady_clock;

TurnClient::TurnClient(Options o) : o_(std::move(o)) {}
TurnClient::~TurnClient() {
  if (fd_ >= 0) close(fd_);
}

bool TurnClient::connect() {
  sockaddr_storage ss;
  socklen_t len = to_sockaddr(o_.server, ss);
  fd_ = socket(ss.ss_family, (o_.tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    error_ = "socket: " + errno_text(errno);
    return false;
  }
  if (o_.tcp) {
    timeval tv{static_cast<time_t>(o_.timeout.count() / 1000), static_cast<suseconds_t>(o_.timeout.count() % 1000 * 1000)};
    setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&ss), len) < 0) {
    error_ = "connect " + o_.server.to_string() + ": " + errno_text(errno);
    return false;
  }
  return true;
}

bool TurnClient::exchange(const std::vector<uint8_t>& request, std::vector<uint8_t>& response) {
  auto start = Clock::now();
  auto deadline = start + o_.timeout;
  auto rto = std::chrono::milliseconds(250);  // RFC 8489 §6.2.1 starts at 500 ms; probes want answers sooner
  auto next_send = start;
  std::array<uint8_t, 4096> buf{};
  size_t have = 0;
  const uint8_t* txid = request.data() + 8;
  for (;;) {
    auto now = Clock::now();
    if (now >= deadline) {
      error_ = "timeout: no answer from " + o_.server.to_string() + " in " + std::to_string(o_.timeout.count()) + " ms";
      return false;
    }
    if (now >= next_send && (!o_.tcp || next_send == start)) {
      if (send(fd_, request.data(), request.size(), MSG_NOSIGNAL) < 0) {
        error_ = "send to " + o_.server.to_string() + ": " + errno_text(errno);
        return false;
      }
      next_send = now + rto;
      rto *= 2;
    }
    auto wait = std::min(deadline, o_.tcp ? deadline : next_send) - Clock::now();
    pollfd p{fd_, POLLIN, 0};
    int r = poll(&p, 1, static_cast<int>(std::max<long long>(1, std::chrono::duration_cast<std::chrono::milliseconds>(wait).count())));
    if (r <= 0) continue;
    ssize_t n = recv(fd_, buf.data() + have, buf.size() - have, 0);
    if (n <= 0) {
      error_ = n == 0 ? "connection closed by " + o_.server.to_string()
                      : "receive from " + o_.server.to_string() + ": " + errno_text(errno);
      return false;
    }
    have = o_.tcp ? have + static_cast<size_t>(n) : static_cast<size_t>(n);
    while (have > 0) {
      long frame = o_.tcp ? stun::stream_frame_length({buf.data(), have}) : static_cast<long>(have);
      if (frame < 0) {
        error_ = "not a STUN/TURN server at " + o_.server.to_string();
        return false;
      }
      if (frame == 0 || static_cast<size_t>(frame) > have) break;
      bool match = frame >= 20 && std::memcmp(buf.data() + 8, txid, 12) == 0;
      if (match) {
        response.assign(buf.data(), buf.data() + frame);
        rtt_ = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start);
        return true;
      }
      std::memmove(buf.data(), buf.data() + frame, have - static_cast<size_t>(frame));
      have -= static_cast<size_t>(frame);
      if (!o_.tcp) have = 0;
    }
  }
}

bool TurnClient::transact(uint16_t method, const std::function<void(void*)>& add_attrs) {
  error_code_ = 0;
  for (int attempt = 0; attempt < 3; ++attempt) {
    std::array<uint8_t, 12> txid{};
    crypto::random_bytes(txid);
    std::array<uint8_t, 1500> out{};
    stun::MessageBuilder b(out, static_cast<stun::Method>(method), stun::Class::Request, txid);
    add_attrs(&b);
    if (!nonce_.empty()) {
      b.add_text(Attr::Username, o_.username);
      b.add_text(Attr::Realm, realm_);
      b.add_text(Attr::Nonce, nonce_);
      crypto::add_integrity(b, key_.view());
    }
    b.add_fingerprint();
    Bytes msg = b.finish();
    std::vector<uint8_t> resp;
    if (!exchange({msg.begin(), msg.end()}, resp)) return false;
    stun::MessageView v;
    if (auto e = stun::parse(resp, v); e != stun::ParseError::Ok) {
      error_ = "bad response: " + std::string(stun::parse_error_name(e));
      return false;
    }
    if (v.message_class() == stun::Class::SuccessResponse) {
      if (!nonce_.empty() && !crypto::check_integrity(v, key_.view())) {
        error_ = "response MESSAGE-INTEGRITY does not verify";
        return false;
      }
      if (const auto* r = v.find(Attr::XorRelayedAddress))
        if (auto a = stun::read_xor_address(v.value(*r), v.xor_mask())) relay_ = *a;
      if (const auto* m = v.find(Attr::XorMappedAddress))
        if (auto a = stun::read_xor_address(v.value(*m), v.xor_mask())) mapped_ = *a;
      if (const auto* l = v.find(Attr::Lifetime))
        if (auto x = stun::read_u32(v.value(*l))) lifetime_ = *x;
      return true;
    }
    int code = 0;
    std::string reason;
    if (const auto* e = v.find(Attr::ErrorCode))
      if (auto ec = stun::read_error_code(v.value(*e))) {
        code = ec->code;
        reason = std::string(ec->reason);
      }
    error_code_ = code;
    error_ = std::to_string(code) + " " + reason;
    bool challenge = code == 401 || code == 438;
    if (!challenge) return false;
    // 401 with credentials already sent: wrong credentials; stop.
    if (code == 401 && !nonce_.empty()) {
      error_ = "401 Unauthorized: wrong username or password";
      return false;
    }
    const auto* realm = v.find(Attr::Realm);
    const auto* nonce = v.find(Attr::Nonce);
    if (!realm || !nonce) {
      error_ += " without REALM/NONCE";
      return false;
    }
    realm_ = std::string(v.text(*realm));
    nonce_ = std::string(v.text(*nonce));
    key_ = crypto::long_term_key(stun::PasswordAlgorithm::Md5, o_.username, realm_, o_.password);
  }
  return false;
}

bool TurnClient::allocate(uint32_t lifetime_s) {
  return transact(static_cast<uint16_t>(stun::Method::Allocate), [&](void* p) {
    auto& b = *static_cast<stun::MessageBuilder*>(p);
    b.add_requested_transport(stun::kTransportUdp);
    b.add_u32(Attr::Lifetime, lifetime_s);
  });
}

bool TurnClient::refresh(uint32_t lifetime_s) {
  return transact(static_cast<uint16_t>(stun::Method::Refresh), [&](void* p) {
    static_cast<stun::MessageBuilder*>(p)->add_u32(Attr::Lifetime, lifetime_s);
  });
}

bool TurnClient::create_permission(const IpAddress& peer) {
  return transact(static_cast<uint16_t>(stun::Method::CreatePermission), [&](void* p) {
    static_cast<stun::MessageBuilder*>(p)->add_xor_address(Attr::XorPeerAddress, SocketAddress{peer, 0});
  });
}

bool TurnClient::channel_bind(uint16_t channel, const SocketAddress& peer) {
  return transact(static_cast<uint16_t>(stun::Method::ChannelBind), [&](void* p) {
    auto& b = *static_cast<stun::MessageBuilder*>(p);
    b.add_channel_number(channel);
    b.add_xor_address(Attr::XorPeerAddress, peer);
  });
}

}  // namespace turn::cp
