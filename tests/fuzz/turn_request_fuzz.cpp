// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: turn-control's request handling (TurnServer:
// demultiplexing, authentication, Allocate / Refresh / CreatePermission /
// ChannelBind, Send indications, ChannelData, the sweep) driven with
// arbitrary datagrams from fuzzed client addresses, without listeners. What
// the server would send to clients goes to a sink (TurnServer's test seam).
//
// Input: a sequence of records  [op][len hi][len lo][len bytes]
//   op & 0x03  which client: 0-2 fixed addresses (IPv4, IPv4 another port,
//              IPv6), 3 = the next 6 input bytes are an IPv4 address + port
//   op & 0x04  "sign": if the bytes parse as a STUN request, rebuild it as
//              alice with the realm, a valid nonce for that client and
//              MESSAGE-INTEGRITY (fingerprint too if op & 0x08), so the
//              fuzzer reaches the method handlers past authentication
//   op & 0x10  run the sweep (expiry) after this record
//
// Invariants (abort on violation):
//   - every answer goes to the client whose datagram is being handled (the
//     server never reflects to a third address) and is a STUN message that
//     parses, is a response with the request's method and transaction id;
//   - a success response to a signed request verifies under alice's key;
//   - a record that is not a STUN request draws no answer;
//   - live allocations never exceed the configured quota.
//
// Peers: with CAP_SYS_ADMIN the target first moves into a network namespace
// of its own (unshare) and allows loopback peers, so that relayed data
// really leaves a relay socket but reaches nothing outside this process;
// without it every peer is denied by policy (nothing is sent anywhere).
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "common/crypto/integrity.h"
#include "common/stun/attributes.h"
#include "common/stun/builder.h"
#include "common/stun/message.h"
#include "controlplane/config/config.h"
#include "common/log/log.h"
#include "controlplane/net/event_loop.h"
#include "controlplane/server/shared_state.h"
#include "controlplane/server/stats.h"
#include "controlplane/server/turn_server.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using namespace turn;
using namespace turn::cp;

constexpr const char* kRealm = "fuzz.realm";
constexpr const char* kUser = "alice";
constexpr const char* kPass = "alice-fuzz-secret";
constexpr uint32_t kTotalQuota = 6;

bool own_netns() {
  if (unshare(CLONE_NEWNET) != 0) return false;
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) return false;
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  bool up = ioctl(fd, SIOCGIFFLAGS, &ifr) == 0;
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
  up = up && ioctl(fd, SIOCSIFFLAGS, &ifr) == 0;
  close(fd);
  return up;
}

struct World {
  Config cfg;
  std::unique_ptr<SharedState> shared;
  crypto::Key key;
  bool loopback_peers = false;

  World() {
    loopback_peers = own_netns();
    std::vector<std::string> lines = {
        "listening-ip=127.0.0.1",
        "relay-ip=127.0.0.1",
        "min-port=61000",
        "max-port=61015",
        std::string("realm=") + kRealm,
        std::string("user=") + kUser + ":" + kPass,
        "admin-port=0",
        "relay-threads=1",
        "request-rate-limit=50",
        "unauth-rate-limit=20",
        "total-quota=" + std::to_string(kTotalQuota),
        "user-quota=4",
        "no-tls",
        "denied-peer-ip=0.0.0.0-255.255.255.255",
        "denied-peer-ip=::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    };
    if (loopback_peers) lines.emplace_back("allowed-peer-ip=127.0.0.0/8");
    int n = 0;
    for (const auto& l : lines) apply_config_line(l, "fuzz:" + std::to_string(++n), cfg);
    validate_config(cfg);
    shared = std::make_unique<SharedState>(cfg);
    key = crypto::long_term_key(stun::PasswordAlgorithm::Md5, kUser, kRealm, kPass);
  }
};

World& world() {
  static World* w = new World();  // lives for the process (no destructor order issues)
  return *w;
}

SocketAddress fixed_client(unsigned i) {
  SocketAddress a;
  if (i == 2) {
    std::array<uint8_t, 16> b{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x11};
    a.ip = IpAddress::v6(b.data());
    a.port = 40000;
    return a;
  }
  const uint8_t v4[4] = {10, 9, 8, 7};
  a.ip = IpAddress::v4(v4);
  a.port = static_cast<uint16_t>(40000 + i);
  return a;
}

// Rebuilds a parsed request as alice's, with a valid nonce and integrity.
Bytes sign(const stun::MessageView& m, const SocketAddress& client, bool fingerprint, std::vector<uint8_t>& buf,
           uint64_t now_s) {
  World& w = world();
  buf.assign(4096, 0);
  stun::MessageBuilder b(MutableBytes(buf), m.type(), m.transaction_id());
  for (const auto& a : m.attributes()) {
    switch (static_cast<stun::Attr>(a.type)) {
      case stun::Attr::Username:
      case stun::Attr::Userhash:
      case stun::Attr::Realm:
      case stun::Attr::Nonce:
      case stun::Attr::MessageIntegrity:
      case stun::Attr::MessageIntegritySha256:
      case stun::Attr::Fingerprint:
      case stun::Attr::PasswordAlgorithm:
      case stun::Attr::PasswordAlgorithms:
        continue;
      default:
        b.add(a.type, m.value(a));
    }
  }
  b.add_text(stun::Attr::Username, kUser);
  b.add_text(stun::Attr::Realm, kRealm);
  b.add_text(stun::Attr::Nonce, w.shared->nonces.issue(kRealm, client.ip, now_s));
  crypto::add_integrity(b, w.key.view());
  if (fingerprint) b.add_fingerprint();
  return b.finish();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  World& w = world();
  Stats stats;
  EventLoop loop;
  auto server = std::make_unique<TurnServer>(*w.shared, loop, stats);

  // What the record being handled may draw.
  SocketAddress current{};
  bool expect_answer = false;
  bool signed_request = false;
  stun::Method method{};
  std::array<uint8_t, 12> txid{};
  size_t answers = 0;
  server->set_client_sink([&](const FiveTuple& t, Bytes out) {
    ++answers;
    TURN_FUZZ_CHECK(t.client == current);
    TURN_FUZZ_CHECK(expect_answer);
    stun::MessageView r;
    TURN_FUZZ_CHECK(stun::parse(out, r) == stun::ParseError::Ok);
    TURN_FUZZ_CHECK(r.message_class() == stun::Class::SuccessResponse ||
                    r.message_class() == stun::Class::ErrorResponse);
    TURN_FUZZ_CHECK(r.method() == method);
    TURN_FUZZ_CHECK(std::memcmp(r.transaction_id().data(), txid.data(), 12) == 0);
    if (signed_request && r.message_class() == stun::Class::SuccessResponse && method != stun::Method::Binding)
      TURN_FUZZ_CHECK(crypto::check_integrity(r, w.key.view()));
  });

  std::vector<uint8_t> signed_buf;
  size_t i = 0;
  while (i + 3 <= size) {
    uint8_t op = data[i];
    size_t len = (static_cast<size_t>(data[i + 1]) << 8 | data[i + 2]) & 0x7FF;
    i += 3;
    SocketAddress client = fixed_client(op & 3);
    if ((op & 3) == 3) {
      if (i + 6 > size) break;
      client.ip = IpAddress::v4(data + i);
      client.port = static_cast<uint16_t>(data[i + 4] << 8 | data[i + 5]);
      i += 6;
    }
    len = std::min(len, size - i);
    // An exact-size copy: reads past the datagram are sanitizer reports.
    std::vector<uint8_t> dgram(data + i, data + i + len);
    i += len;

    Bytes msg(dgram);
    stun::MessageView parsed;
    bool is_request =
        stun::parse(msg, parsed) == stun::ParseError::Ok && parsed.message_class() == stun::Class::Request;
    signed_request = false;
    if (is_request && (op & 0x04)) {
      Bytes s = sign(parsed, client, (op & 0x08) != 0, signed_buf, loop.now_s());
      if (!s.empty() && stun::parse(s, parsed) == stun::ParseError::Ok) {
        msg = s;
        signed_request = true;
      }
    }
    current = client;
    expect_answer = is_request;
    if (is_request) {
      method = parsed.method();
      std::memcpy(txid.data(), parsed.transaction_id().data(), 12);
    }
    FiveTuple tuple{Transport::Udp, client, SocketAddress{IpAddress::v4(0x7f000001), 3478}};
    ClientLink link{-1, nullptr};
    server->on_client_message(tuple, link, msg);
    TURN_FUZZ_CHECK(w.shared->registry.size() <= kTotalQuota);
    TURN_FUZZ_CHECK(server->allocation_count() == w.shared->registry.size());
    if (op & 0x10) server->sweep();
  }
  (void)answers;
  server.reset();
  TURN_FUZZ_CHECK(w.shared->registry.size() == 0);
  TURN_FUZZ_CHECK(w.shared->quotas.total() == 0);
  return 0;
}

extern "C" int LLVMFuzzerInitialize(int*, char***);

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  turn::log_open("/dev/null", false);
  (void)world();
  return 0;
}
