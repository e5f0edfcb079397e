// SPDX-License-Identifier: Apache-2.0
// A coturn production config must start (issue 16): cipher-list honoured
// within the safe set, pkey-pwd, ec-curve-name, and coturn's prometheus
// keys serving the same /metrics without a token. Real Runtime on loopback;
// a certificate made here by the openssl command; a TLS client here.
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>

#include "controlplane/net/tls.h"
#include "tests/controlplane/turn_fixture.h"

namespace turn::cptest {
namespace {

class CoturnCompat : public TurnServerFixture {
 protected:
  void TearDown() override {
    TurnServerFixture::TearDown();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  // A self-signed ECDSA P-256 certificate; the key encrypted when `pass` is given.
  void make_cert(const std::string& pass = "") {
    dir_ = std::filesystem::temp_directory_path() / ("dpturn-compat-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
    cert_ = (dir_ / "cert.pem").string();
    key_ = (dir_ / "key.pem").string();
    std::string cmd =
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -days 1 -subj /CN=dpturn-test " +
        std::string(pass.empty() ? "-nodes " : "-passout pass:" + pass + " ") + "-keyout " + key_ + " -out " + cert_ +
        " >/dev/null 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << "openssl (scripts/setup.sh installs it) made no certificate";
  }

  std::vector<std::string> tls_lines() {
    tls_port_ = free_port();
    return {"no-tls=no", "tls-listening-port=" + std::to_string(tls_port_), "cert=" + cert_, "pkey=" + key_};
  }

  // Over TLS to `port`: a Binding request; the answer's class, or nullopt
  // when the handshake or the exchange failed.
  std::optional<stun::Class> tls_binding(uint16_t port) {
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(0x7f000001);
    timeval tv{3, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::optional<stun::Class> cls;
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
      SSL* ssl = SSL_new(ctx);
      SSL_set_fd(ssl, fd);
      if (SSL_connect(ssl) == 1) {
        TurnClient builder(Proto::Udp, server());
        Signing none;
        none.integrity = Integrity::None;
        auto req = builder.build(stun::Method::Binding, {}, none);
        uint8_t buf[512];
        if (SSL_write(ssl, req.data(), static_cast<int>(req.size())) > 0) {
          int n = SSL_read(ssl, buf, sizeof buf);
          if (n >= 20) cls = stun::class_of(load_be16(buf));
        }
      }
      SSL_free(ssl);
    }
    ERR_clear_error();
    close(fd);
    SSL_CTX_free(ctx);
    return cls;
  }

  // A TLS handshake with the server's TLS port: TLS 1.2 with only `ciphers`
  // offered, or TLS 1.3 when `ciphers` is empty. The cipher agreed, or "".
  std::string handshake(const std::string& ciphers) {
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    if (ciphers.empty()) {
      SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    } else {
      SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
      SSL_CTX_set_cipher_list(ctx, ciphers.c_str());
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(tls_port_);
    a.sin_addr.s_addr = htonl(0x7f000001);
    std::string agreed;
    timeval tv{3, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
      SSL* ssl = SSL_new(ctx);
      SSL_set_fd(ssl, fd);
      if (SSL_connect(ssl) == 1) agreed = SSL_get_cipher_name(ssl);
      SSL_free(ssl);
    }
    ERR_clear_error();
    close(fd);
    SSL_CTX_free(ctx);
    return agreed;
  }

  std::filesystem::path dir_;
  std::string cert_, key_;
  uint16_t tls_port_ = 0;
};

// ---- cipher-list -----------------------------------------------------------------

TEST(CipherList, KeepsOnlyEcdheAeadInTheOperatorsOrder) {
  auto c = cp::choose_ciphers(
      "ECDHE-RSA-AES256-GCM-SHA384:AES128-SHA:ECDHE-ECDSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384");
  EXPECT_EQ(c.kept, (std::vector<std::string>{"ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-ECDSA-AES128-GCM-SHA256"}));
  EXPECT_EQ(c.dropped, (std::vector<std::string>{"AES128-SHA", "DHE-RSA-AES256-GCM-SHA384"}));
  EXPECT_EQ(c.openssl_list, "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256");
  // coturn's default: OpenSSL's DEFAULT, of which the six safe suites stay.
  auto d = cp::choose_ciphers("DEFAULT");
  EXPECT_EQ(d.kept.size(), 6u);
  EXPECT_FALSE(d.dropped.empty());
}

TEST(CipherList, RefusedOnlyWhenNothingSafeIsLeftNamingWhatWasDropped) {
  try {
    (void)cp::choose_ciphers("AES128-SHA:DHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-SHA");
    ADD_FAILURE() << "accepted";
  } catch (const std::invalid_argument& e) {
    std::string m = e.what();
    for (const char* n : {"AES128-SHA", "DHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-AES128-SHA"})
      EXPECT_NE(m.find(n), std::string::npos) << m;
  }
  EXPECT_THROW((void)cp::choose_ciphers("NO-SUCH-CIPHER"), std::invalid_argument);
  EXPECT_THROW((void)cp::choose_ciphers("eNULL"), std::invalid_argument);  // NULL ciphers: nothing safe
}

TEST_F(CoturnCompat, CipherListIsHonouredWithinTheSafeSet) {
  make_cert();
  auto lines = tls_lines();
  lines.push_back("cipher-list=\"ECDHE-ECDSA-AES256-GCM-SHA384:AES128-SHA\"");
  restart(lines);
  ASSERT_EQ(cfg_->notes.size(), 1u);
  EXPECT_NE(cfg_->notes[0].find("dropped (not ECDHE with AEAD) AES128-SHA"), std::string::npos) << cfg_->notes[0];
  EXPECT_EQ(handshake("ECDHE-ECDSA-AES256-GCM-SHA384"), "ECDHE-ECDSA-AES256-GCM-SHA384");
  EXPECT_EQ(handshake("ECDHE-ECDSA-AES128-GCM-SHA256"), "") << "safe, but not in the operator's list";
  EXPECT_EQ(handshake("AES128-SHA"), "") << "named by the operator, but not ECDHE with AEAD";
  EXPECT_NE(handshake(""), "") << "TLS 1.3 stays on";
}

TEST_F(CoturnCompat, WithoutCipherListEverySafeSuiteIsOffered) {
  make_cert();
  restart(tls_lines());
  EXPECT_TRUE(cfg_->notes.empty());
  for (const char* c :
       {"ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305"})
    EXPECT_EQ(handshake(c), c);
  EXPECT_EQ(handshake("ECDHE-ECDSA-AES128-SHA"), "");
}

TEST_F(CoturnCompat, EcCurveNameLimitsTheGroups) {
  make_cert();
  auto lines = tls_lines();
  lines.push_back("ec-curve-name=prime256v1");
  restart(lines);
  EXPECT_EQ(handshake("ECDHE-ECDSA-AES128-GCM-SHA256"), "ECDHE-ECDSA-AES128-GCM-SHA256");
}

// ---- TLS on the plain TCP ports ---------------------------------------------------

TEST_F(CoturnCompat, TlsIsDetectedOnThePlainTcpPorts) {
  make_cert();
  auto lines = tls_lines();
  uint16_t alt = free_port();
  lines.push_back("alt-listening-port=" + std::to_string(alt));
  restart(lines);
  // A ClientHello on 3478 and on the alternative port (443 in production).
  EXPECT_EQ(tls_binding(port_), stun::Class::SuccessResponse);
  EXPECT_EQ(tls_binding(alt), stun::Class::SuccessResponse);
  EXPECT_EQ(tls_binding(tls_port_), stun::Class::SuccessResponse);
  // Plain STUN over TCP on the same port still works, and TLS allocations
  // made there are TLS (their records say so).
  auto c = client(Proto::Tcp);
  EXPECT_TRUE(c->transact(c->build(stun::Method::Binding, {},
                                   [] {
                                     Signing s;
                                     s.integrity = Integrity::None;
                                     return s;
                                   }()))
                  .success());
}

TEST_F(CoturnCompat, WithoutACertificateATlsHelloOnTcpIsClosed) {
  // No TLS configured: a ClientHello is not STUN framing (no magic cookie);
  // the connection is closed at once, the server keeps serving.
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(tls_binding(port_));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2)) << "held open, not closed";
  auto c = client(Proto::Tcp);
  Signing none;
  none.integrity = Integrity::None;
  EXPECT_TRUE(c->transact(c->build(stun::Method::Binding, {}, none)).success());
}

// ---- pkey-pwd --------------------------------------------------------------------------

TEST_F(CoturnCompat, PkeyPwdLoadsAnEncryptedKeyAndNothingPromptsWithoutIt) {
  make_cert("sesame-1234");
  auto lines = tls_lines();
  // Without the passphrase the start fails with a reason (it never waits
  // for one on a terminal).
  EXPECT_THROW(restart(lines), std::exception);
  lines.push_back("pkey-pwd=sesame-1234");
  restart(lines);
  EXPECT_EQ(handshake("ECDHE-ECDSA-AES128-GCM-SHA256"), "ECDHE-ECDSA-AES128-GCM-SHA256");
}

// ---- prometheus ----------------------------------------------------------------------

TEST_F(CoturnCompat, PrometheusServesTheSameMetricsWithoutAToken) {
  uint16_t port = free_port();
  restart({"prometheus", "prometheus-port=" + std::to_string(port)});
  auto c = allocated(nullptr);
  ASSERT_TRUE(allocations_become(1));
  httplib::Client http("127.0.0.1", port);
  http.set_connection_timeout(2);
  auto r = http.Get("/metrics");
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->body.find("dpturn_allocations 1\n"), std::string::npos) << r->body.substr(0, 400);
  EXPECT_NE(r->body.find("dpturn_drops_total{reason=\"reflection_limited\""), std::string::npos);
  EXPECT_EQ(r->body.find(kAlice), std::string::npos) << "no usernames without a token";
  auto health = http.Get("/");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  auto api = http.Get("/api/v1/status");
  ASSERT_TRUE(api);
  EXPECT_EQ(api->status, 404) << "only the metrics on this port";
  // Bound to the admin address (127.0.0.1), not to every address.
  if (auto other = non_loopback_ipv4()) {
    httplib::Client outside(other->to_string(), port);
    outside.set_connection_timeout(1);
    EXPECT_FALSE(outside.Get("/metrics")) << "reachable on " << other->to_string();
  }
}

TEST_F(CoturnCompat, PrometheusAddressAndPath) {
  uint16_t port = free_port();
  restart({"prometheus", "prometheus-port=" + std::to_string(port), "prometheus-address=127.0.0.2",
           "prometheus-path=/turn-metrics"});
  httplib::Client on_admin_ip("127.0.0.1", port);
  on_admin_ip.set_connection_timeout(1);
  EXPECT_FALSE(on_admin_ip.Get("/turn-metrics"));
  httplib::Client http("127.0.0.2", port);
  http.set_connection_timeout(2);
  auto r = http.Get("/turn-metrics");
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->body.find("dpturn_allocations"), std::string::npos);
  auto old = http.Get("/metrics");
  ASSERT_TRUE(old);
  EXPECT_EQ(old->status, 404);
}

}  // namespace
}  // namespace turn::cptest
