// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: turn-control's DTLS record handling (RFC 7350 on the
// TLS port's UDP side): the stateless cookie stage (DTLSv1_listen) and the
// per-client sessions, against an in-process Runtime on loopback with a
// certificate made at start.
//
// Input: records [op][len hi][len lo][len bytes]
//   op & 1 == 0: the bytes as one datagram from a fresh source socket (no
//                session): the pre-cookie surface;
//   op & 1 == 1: the bytes as one datagram from a client that completed a
//                real DTLS handshake (its session's own socket): records
//                that do not decrypt, replays, alerts, junk.
//   op & 2: then check that the real client's session still answers a
//           Binding request (unless the input closed it with an alert).
//
// Invariants (abort on violation):
//   - a source without a session (fresh sources send from 127.0.0.2, real
//     clients from 127.0.0.1) is never answered with more bytes than it
//     sent (no amplification before the cookie, RFC 6347 §4.2.1), and gets
//     at most one datagram per datagram;
//   - no session is created for it (the real client's Binding still works,
//     the server keeps running, nothing crashes).
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "controlplane/config/config.h"
#include "common/log/log.h"
#include "controlplane/server/runtime.h"
#include "tests/controlplane/turn_client.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using namespace turn;
using namespace turn::cp;

struct Server {
  Config cfg;
  std::unique_ptr<Runtime> rt;
  uint16_t tls_port = 0;
  std::filesystem::path dir;
  Server() {
    dir = std::filesystem::temp_directory_path() / ("dpturn-dtls-fuzz-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir);
    std::string cmd =
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
        "-subj /CN=dpturn-fuzz -keyout " +
        (dir / "key.pem").string() + " -out " + (dir / "cert.pem").string() + " >/dev/null 2>&1";
    if (std::system(cmd.c_str()) != 0) {
      std::fprintf(stderr, "dtls_fuzz: the openssl command made no certificate\n");
      std::abort();
    }
    tls_port = cptest::free_port();
    std::vector<std::string> lines = {"listening-ip=127.0.0.1",
                                      "relay-ip=127.0.0.1",
                                      "listening-port=" + std::to_string(cptest::free_port()),
                                      "tls-listening-port=" + std::to_string(tls_port),
                                      "realm=fuzz.realm",
                                      "user=alice:alice-pass",
                                      "admin-port=0",
                                      "relay-threads=1",
                                      "cert=" + (dir / "cert.pem").string(),
                                      "pkey=" + (dir / "key.pem").string()};
    int n = 0;
    for (const auto& l : lines) apply_config_line(l, "fuzz:" + std::to_string(++n), cfg);
    validate_config(cfg);
    rt = std::make_unique<Runtime>(cfg);
    rt->start();
  }
  ~Server() {
    rt.reset();
    std::filesystem::remove_all(dir);
  }
};

Server& server() {
  static Server s;
  return s;
}

// from_ip: the source address. Fresh sources use 127.0.0.2, real clients
// 127.0.0.1: a fresh source can then never be a port that a session's
// socket still talks to (its answers would look like ours).
int udp_to(uint16_t port, uint32_t from_ip = 0x7f000001) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in l{};
  l.sin_family = AF_INET;
  l.sin_addr.s_addr = htonl(from_ip);
  bind(fd, reinterpret_cast<sockaddr*>(&l), sizeof l);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(0x7f000001);
  connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  return fd;
}

// libFuzzer's -timeout runs an interval timer whose SIGALRM handler has no
// SA_RESTART: a blocking recv() under OpenSSL then fails with EINTR, which
// the datagram BIO reports as "want read", and a healthy handshake or
// Binding looked like a dead server (CI, 2026-12-02: "invariant failed:
// again.up && again.binding()", SSL_connect -1, SSL_ERROR_WANT_READ,
// errno EINTR, 3 ms into the handshake). An interrupted call is made
// again; a real timeout (SO_RCVTIMEO: EAGAIN) still fails.
template <class Op>
int ssl_call(SSL* ssl, Op op) {
  for (int tries = 0;; ++tries) {
    errno = 0;
    int r = op();
    if (r > 0) return r;
    int e = SSL_get_error(ssl, r);
    if (errno != EINTR || (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) || tries == 100) return r;
  }
}

// The same for poll().
int poll_once(pollfd* p, int timeout_ms) {
  int r;
  do r = poll(p, 1, timeout_ms);
  while (r < 0 && errno == EINTR);
  return r;
}

// A real DTLS client with a session (its own connected UDP socket).
struct Client {
  SSL_CTX* ctx = nullptr;
  SSL* ssl = nullptr;
  int fd = -1;
  bool up = false;
  explicit Client(uint16_t port) {
    ctx = SSL_CTX_new(DTLS_client_method());
    fd = udp_to(port);
    timeval tv{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ssl = SSL_new(ctx);
    BIO* bio = BIO_new_dgram(fd, BIO_NOCLOSE);
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len);
    BIO_ctrl(bio, BIO_CTRL_DGRAM_SET_CONNECTED, 0, &peer);
    SSL_set_bio(ssl, bio, bio);
    up = ssl_call(ssl, [this] { return SSL_connect(ssl); }) == 1;
    ERR_clear_error();
  }
  ~Client() {
    SSL_shutdown(ssl);  // close_notify: the server ends the session (no pile-up over a long run)
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);
  }
  // A Binding request over the session; true if answered.
  bool binding() {
    cp::Signing none;
    none.integrity = cp::Integrity::None;
    auto req = cp::build_request(stun::Method::Binding, {}, {}, none);
    if (ssl_call(ssl, [&] { return SSL_write(ssl, req.data(), static_cast<int>(req.size())); }) <= 0) return false;
    uint8_t buf[2048];
    for (int i = 0; i < 4; ++i) {
      int n = ssl_call(ssl, [&] { return SSL_read(ssl, buf, sizeof buf); });
      ERR_clear_error();
      if (n <= 0) return false;
      if (n >= 20 && std::memcmp(buf + 8, req.data() + 8, 12) == 0) return true;
    }
    return false;
  }
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***);

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  log_open("/dev/null", false);
  (void)server();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Server& srv = server();
  Client real(srv.tls_port);
  TURN_FUZZ_CHECK(real.up);
  bool session_may_be_gone = false;
  size_t pos = 0;
  for (int records = 0; pos + 3 <= size && records < 16; ++records) {
    uint8_t op = data[pos];
    size_t len = std::min<size_t>(static_cast<size_t>(data[pos + 1]) << 8 | data[pos + 2], size - pos - 3);
    const uint8_t* bytes = data + pos + 3;
    pos += 3 + len;
    if ((op & 1) == 0) {
      int fd = udp_to(srv.tls_port, 0x7f000002);
      if (send(fd, bytes, len, 0) >= 0) {
        size_t answered = 0, datagrams = 0;
        uint8_t buf[4096];
        pollfd p{fd, POLLIN, 0};
        while (poll_once(&p, datagrams == 0 ? 20 : 2) > 0) {
          ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
          if (n <= 0) break;  // (ICMP errors do not happen: the port listens)
          answered += static_cast<size_t>(n);
          ++datagrams;
        }
        TURN_FUZZ_CHECK(answered <= len);  // no amplification before the cookie
        TURN_FUZZ_CHECK(datagrams <= 1);
      }
      close(fd);
    } else {
      // Into the real session's socket: the server's per-client socket gets it.
      (void)send(real.fd, bytes, len, 0);
      // An alert or a record that is not for this epoch may end the session.
      session_may_be_gone = true;
    }
    if ((op & 2) && !session_may_be_gone) TURN_FUZZ_CHECK(real.binding());
  }
  // A fresh client still gets a session: nothing above broke the listener.
  Client again(srv.tls_port);
  TURN_FUZZ_CHECK(again.up && again.binding());
  return 0;
}
