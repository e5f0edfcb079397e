// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: the RFC 6062 state machine of turn-control (TCP
// allocations, Connect, ConnectionAttempt, ConnectionBind across threads,
// relaying, closes in any order), driven through real loopback sockets
// against an in-process Runtime (2 relay threads, so binds move between
// threads). Each input is a script of operations; the Runtime lives for
// the whole run, every input starts from nothing and ends with everything
// closed.
//
// Input: records [op][arg], then for ops that send, [len][len bytes]:
//   op % 10: 0 control connection + TCP Allocate     5 data connection sends
//            1 CreatePermission 127.0.0.1             6 peer socket sends
//            2 Connect to a peer listener            7 close a data connection
//            3 a peer connects to a relayed address   8 close a peer socket
//            4 ConnectionBind (a known or made-up id) 9 Refresh 0 / close control
//   arg selects which control / peer / connection (modulo what exists) and,
//   for op 4, a made-up id (arg & 0x80) or another user's credentials (0x40).
//
// Invariants (abort on violation):
//   - on every bound pair, what one end receives is exactly a prefix of
//     what the other end sent (bytes neither lost in the middle, reordered
//     nor corrupted), in both directions;
//   - a ConnectionBind with a made-up id or another user's credentials
//     never succeeds;
//   - after the script everything is closed: no allocation and no peer
//     connection id is left (bounded wait).
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/stun/attributes.h"
#include "controlplane/config/config.h"
#include "common/log/log.h"
#include "controlplane/server/runtime.h"
#include "controlplane/server/shared_state.h"
#include "tests/controlplane/turn_client.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using namespace turn;
using namespace turn::cp;
using turn::cptest::Proto;
using turn::cptest::Reply;
using turn::cptest::TurnClient;

constexpr const char* kRealm = "fuzz.realm";

struct Server {
  Config cfg;
  std::unique_ptr<Runtime> rt;
  uint16_t port = 0;
  Server() {
    port = cptest::free_port();
    uint16_t relays = cptest::free_port_range(64);
    std::vector<std::string> lines = {"listening-ip=127.0.0.1",
                                      "relay-ip=127.0.0.1",
                                      "listening-port=" + std::to_string(port),
                                      "min-port=" + std::to_string(relays),
                                      "max-port=" + std::to_string(relays + 63),
                                      std::string("realm=") + kRealm,
                                      "user=alice:alice-pass",
                                      "user=bob:bob-pass",
                                      "allow-loopback-peers",
                                      "admin-port=0",
                                      "relay-threads=2",
                                      "no-tls",
                                      "request-rate-limit=0",
                                      "unauth-rate-limit=0",
                                      "reflection-burst=0"};
    int n = 0;
    for (const auto& l : lines) apply_config_line(l, "fuzz:" + std::to_string(++n), cfg);
    validate_config(cfg);
    rt = std::make_unique<Runtime>(cfg);
    rt->start();
  }
  [[nodiscard]] SocketAddress address() const { return SocketAddress{IpAddress::v4(0x7f000001), port}; }
};

Server& server() {
  static Server s;  // started once; stopped at exit
  return s;
}

int tcp_listener(SocketAddress* at) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(0x7f000001);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  listen(fd, 8);
  socklen_t l = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &l);
  *at = SocketAddress{IpAddress::v4(0x7f000001), ntohs(a.sin_port)};
  return fd;
}

SocketAddress local_of(int fd) {
  sockaddr_in a{};
  socklen_t l = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &l);
  return SocketAddress{IpAddress::v4(reinterpret_cast<const uint8_t*>(&a.sin_addr)), ntohs(a.sin_port)};
}

// One end of a relayed TCP connection: its socket and the bytes it sent
// and received.
struct End {
  int fd = -1;
  std::vector<uint8_t> sent, received;
  bool closed = false;
};

// A peer connection as the script knows it: its id (0 until known), the
// peer's socket, the client's data connection once bound.
struct Pair {
  uint32_t id = 0;
  End peer;
  std::unique_ptr<TurnClient> data;  // its fd carries raw bytes once bound
  End client;
  SocketAddress peer_addr;  // the peer socket's address (ConnectionAttempt names it)
};

struct Control {
  std::unique_ptr<TurnClient> c;
  SocketAddress relay;
};

void drain(End& e) {
  if (e.fd < 0 || e.closed) return;
  uint8_t buf[65536];
  for (;;) {
    ssize_t n = recv(e.fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) {
      e.received.insert(e.received.end(), buf, buf + n);
      continue;
    }
    if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) e.closed = true;
    return;
  }
}

bool is_prefix(const std::vector<uint8_t>& p, const std::vector<uint8_t>& of) {
  return p.size() <= of.size() && std::equal(p.begin(), p.end(), of.begin());
}

void send_all(End& e, const uint8_t* p, size_t n) {
  if (e.fd < 0 || e.closed) return;
  ssize_t w = send(e.fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
  if (w > 0) e.sent.insert(e.sent.end(), p, p + w);
}

void settle() { std::this_thread::sleep_for(std::chrono::milliseconds(3)); }

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***);

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  log_open("/dev/null", false);  // quiet: the fuzzer prints its own progress
  (void)server();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Server& srv = server();
  std::vector<Control> controls;
  std::vector<std::unique_ptr<Pair>> pairs;
  std::vector<std::pair<int, SocketAddress>> listeners;  // peer listeners
  size_t pos = 0;
  int ops = 0;
  auto client_for = [&](const char* user, const char* pass) {
    auto c = std::make_unique<TurnClient>(Proto::Tcp, srv.address());
    c->set_credentials(user, pass, kRealm);
    return c;
  };
  auto find_pair_by_peer = [&](const SocketAddress& a) -> Pair* {
    for (auto& p : pairs)
      if (p->peer_addr == a) return p.get();
    return nullptr;
  };
  // Reads ConnectionAttempt indications on every control connection.
  auto poll_controls = [&] {
    for (auto& ctl : controls) {
      if (!ctl.c) continue;
      while (auto f = ctl.c->next_frame(0)) {
        Reply r{*f};
        if (!r.parses() || r.method() != stun::Method::ConnectionAttempt) continue;
        auto peer = r.xor_address(stun::Attr::XorPeerAddress);
        auto id = r.u32(stun::Attr::ConnectionId);
        if (peer && id)
          if (Pair* p = find_pair_by_peer(*peer)) p->id = *id;
      }
    }
  };
  try {
    while (pos + 2 <= size && ops++ < 24) {
      uint8_t op = data[pos] % 10, arg = data[pos + 1];
      pos += 2;
      std::vector<uint8_t> payload;
      if (op == 5 || op == 6) {
        size_t len = pos < size ? std::min<size_t>(data[pos], size - pos - 1) : 0;
        if (pos < size) ++pos;
        payload.assign(data + pos, data + pos + len);
        pos += len;
      }
      switch (op) {
        case 0: {
          if (controls.size() >= 3) break;
          Control ctl{client_for("alice", "alice-pass"), {}};
          Reply r = ctl.c->request(stun::Method::Allocate,
                                   [](stun::MessageBuilder& b) { b.add_requested_transport(stun::kTransportTcp); });
          if (r.success()) ctl.relay = r.xor_address(stun::Attr::XorRelayedAddress).value_or(SocketAddress{});
          controls.push_back(std::move(ctl));
          break;
        }
        case 1:
          if (!controls.empty() && controls[arg % controls.size()].c)
            (void)controls[arg % controls.size()].c->create_permission(SocketAddress{IpAddress::v4(0x7f000001), 1});
          break;
        case 2: {
          if (controls.empty() || !controls[arg % controls.size()].c) break;
          if (listeners.size() < 2) {
            SocketAddress at;
            int l = tcp_listener(&at);
            listeners.push_back({l, at});
          }
          auto& [lfd, at] = listeners[arg % listeners.size()];
          Reply r = controls[arg % controls.size()].c->request(
              stun::Method::Connect,
              [&at = at](stun::MessageBuilder& b) { b.add_xor_address(stun::Attr::XorPeerAddress, at); });
          if (!r.success()) break;
          auto p = std::make_unique<Pair>();
          p->id = r.u32(stun::Attr::ConnectionId).value_or(0);
          pollfd pf{lfd, POLLIN, 0};
          int ready;
          do ready = poll(&pf, 1, 500);  // libFuzzer's SIGALRM timer interrupts it (no SA_RESTART)
          while (ready < 0 && errno == EINTR);
          if (ready > 0) p->peer.fd = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
          pairs.push_back(std::move(p));
          break;
        }
        case 3: {
          if (controls.empty()) break;
          const auto& relay = controls[arg % controls.size()].relay;
          if (relay.port == 0) break;
          auto p = std::make_unique<Pair>();
          p->peer.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
          sockaddr_in a{};
          a.sin_family = AF_INET;
          a.sin_port = htons(relay.port);
          a.sin_addr.s_addr = htonl(0x7f000001);
          if (connect(p->peer.fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
            close(p->peer.fd);
            break;
          }
          p->peer_addr = local_of(p->peer.fd);
          pairs.push_back(std::move(p));
          settle();
          poll_controls();
          break;
        }
        case 4: {
          bool made_up = arg & 0x80, other_user = arg & 0x40;
          Pair* p = pairs.empty() ? nullptr : pairs[arg % pairs.size()].get();
          uint32_t id = made_up ? 0x5eed0000u + arg : (p ? p->id : 0);
          if (id == 0) break;
          auto d = other_user ? client_for("bob", "bob-pass") : client_for("alice", "alice-pass");
          Reply r = d->request(stun::Method::ConnectionBind,
                               [id](stun::MessageBuilder& b) { b.add_u32(stun::Attr::ConnectionId, id); });
          if (made_up || other_user) {
            TURN_FUZZ_CHECK(!r.success());  // nobody binds what is not theirs
            break;
          }
          if (!r.success() || !p || p->data) break;
          p->client.fd = d->fd();
          p->client.received = d->take_buffered();
          p->data = std::move(d);
          break;
        }
        case 5:
          if (!pairs.empty() && pairs[arg % pairs.size()]->data)
            send_all(pairs[arg % pairs.size()]->client, payload.data(), payload.size());
          break;
        case 6:
          if (!pairs.empty()) send_all(pairs[arg % pairs.size()]->peer, payload.data(), payload.size());
          break;
        case 7:
          if (!pairs.empty() && pairs[arg % pairs.size()]->data) {
            auto& p = *pairs[arg % pairs.size()];
            drain(p.client);
            p.client.closed = true;
            p.data.reset();  // closes the socket
            p.client.fd = -1;
          }
          break;
        case 8:
          if (!pairs.empty() && pairs[arg % pairs.size()]->peer.fd >= 0) {
            auto& p = *pairs[arg % pairs.size()];
            drain(p.peer);
            close(p.peer.fd);
            p.peer.fd = -1;
            p.peer.closed = true;
          }
          break;
        case 9:
          if (!controls.empty()) {
            auto& ctl = controls[arg % controls.size()];
            if (ctl.c && (arg & 1)) (void)ctl.c->refresh(0);
            ctl.c.reset();
          }
          break;
      }
      settle();
      for (auto& p : pairs) {
        drain(p->peer);
        drain(p->client);
        // What arrived is exactly what was sent, so far (TCP: in order).
        if (p->data) {
          TURN_FUZZ_CHECK(is_prefix(p->peer.received, p->client.sent));
          TURN_FUZZ_CHECK(is_prefix(p->client.received, p->peer.sent));
        }
      }
    }
  } catch (const std::exception&) {
    // The test client gave up on an operation (a timeout or a closed
    // connection): not an invariant; teardown below still runs.
  }
  if (std::getenv("TURN_FUZZ_VERBOSE")) {  // what an input reached, for corpus work
    size_t bound = 0, relayed = 0;
    for (const auto& p : pairs) {
      bound += p->data != nullptr || p->client.fd >= 0 || !p->client.received.empty();
      relayed += p->peer.received.size() + p->client.received.size();
    }
    std::fprintf(stderr, "tcp_alloc_fuzz: %zu control(s), %zu pair(s), %zu bound, %zu bytes relayed\n", controls.size(),
                 pairs.size(), bound, relayed);
  }
  // Teardown: everything closes, nothing stays behind.
  for (auto& p : pairs) {
    if (p->peer.fd >= 0) close(p->peer.fd);
    p->data.reset();
  }
  for (auto& [l, at] : listeners) close(l);
  controls.clear();
  auto& shared = srv.rt->shared();
  bool clean = false;
  for (int i = 0; i < 300 && !clean; ++i) {
    clean = shared.registry.size() == 0 && shared.connection_ids.size() == 0;
    if (!clean) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  TURN_FUZZ_CHECK(shared.registry.size() == 0);
  TURN_FUZZ_CHECK(shared.connection_ids.size() == 0);
  return 0;
}
