// SPDX-License-Identifier: Apache-2.0
// turn-control end to end, protocol side: a real Runtime on loopback, real
// UDP/TCP sockets, every answer checked for its class, ERROR-CODE and key
// attributes. Binding, authentication (RFC 8489 §9.2), Allocate (RFC 8656
// §7.2), Refresh (§7.3-7.4), quotas, CreatePermission (§9) and peer policy,
// ChannelBind (§11), and a malformed-input flood.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ctime>
#include <random>

#include "common/stun/attributes.h"
#include "controlplane/auth/credentials.h"
#include "tests/controlplane/turn_fixture.h"

namespace turn::cptest {
namespace {

using stun::Attr;
using stun::Class;
using stun::Method;

class TurnProtocol : public TurnServerFixture {};

const IpAddress kLoopback = IpAddress::v4(0x7f000001);

SocketAddress addr(const char* text) { return SocketAddress::parse(text).value(); }

Signing unsigned_request() {
  Signing s;
  s.integrity = Integrity::None;
  return s;
}

void requested_udp(stun::MessageBuilder& b) { b.add_requested_transport(stun::kTransportUdp); }

// ---- Binding ---------------------------------------------------------------------

TEST_F(TurnProtocol, BindingOverUdpReflectsTheClientAddress) {
  auto c = client();
  Reply r = c->transact(c->build(Method::Binding, {}, unsigned_request()));
  ASSERT_TRUE(r.received());
  EXPECT_EQ(r.method(), Method::Binding);
  EXPECT_EQ(r.cls(), Class::SuccessResponse);
  EXPECT_EQ(r.xor_address(Attr::XorMappedAddress), c->local());
  EXPECT_FALSE(r.has(Attr::MessageIntegrity));
  EXPECT_FALSE(r.has(Attr::Fingerprint));
}

TEST_F(TurnProtocol, BindingWithFingerprintIsAnsweredWithOne) {
  auto c = client();
  Signing s = unsigned_request();
  s.fingerprint = true;
  Reply r = c->transact(c->build(Method::Binding, {}, s));
  ASSERT_TRUE(r.received());
  EXPECT_TRUE(r.parses());  // parse() verifies the FINGERPRINT value
  EXPECT_TRUE(r.has(Attr::Fingerprint));
  EXPECT_EQ(r.xor_address(Attr::XorMappedAddress), c->local());
}

TEST_F(TurnProtocol, BindingOverTcpWithTwoRequestsInOneWrite) {
  auto c = client(Proto::Tcp);
  auto r1 = c->build(Method::Binding, {}, unsigned_request());
  auto r2 = c->build(Method::Binding, {}, unsigned_request());
  std::vector<uint8_t> both = r1;
  both.insert(both.end(), r2.begin(), r2.end());
  c->send_raw(Bytes{both.data(), both.size()});
  std::vector<Reply> replies;
  for (int i = 0; i < 2; ++i) {
    auto f = c->next_frame(kReplyTimeoutMs);
    ASSERT_TRUE(f) << "reply " << i;
    replies.push_back(Reply{*f});
  }
  EXPECT_EQ(replies[0].transaction_id(), std::vector<uint8_t>(r1.begin() + 8, r1.begin() + 20));
  EXPECT_EQ(replies[1].transaction_id(), std::vector<uint8_t>(r2.begin() + 8, r2.begin() + 20));
  for (const auto& r : replies) {
    EXPECT_EQ(r.cls(), Class::SuccessResponse);
    EXPECT_EQ(r.xor_address(Attr::XorMappedAddress), c->local());
  }
}

TEST_F(TurnProtocol, UnknownMethodIs400) {
  auto c = client();
  // 0x00D: no method of RFC 8489/8656/6062 (Connect, 0x00A, is RFC 6062's now).
  std::vector<uint8_t> req = c->build(static_cast<Method>(0x00D), {}, unsigned_request());
  Reply r = c->transact(req);
  ASSERT_TRUE(r.received());
  EXPECT_EQ(r.cls(), Class::ErrorResponse);
  EXPECT_EQ(r.error(), 400);
}

// ---- authentication ---------------------------------------------------------------

TEST_F(TurnProtocol, AllocateChallengeThenSuccess) {
  auto c = client();
  Reply ch = c->challenge();
  ASSERT_TRUE(ch.received());
  EXPECT_EQ(ch.method(), Method::Allocate);
  EXPECT_EQ(ch.cls(), Class::ErrorResponse);
  EXPECT_EQ(ch.error(), 401);
  EXPECT_EQ(ch.text(Attr::Realm), kRealm);
  ASSERT_TRUE(ch.text(Attr::Nonce));
  // RFC 8489 §9.2: the nonce cookie with the "password algorithms" feature,
  // and the algorithms on offer, SHA-256 preferred.
  EXPECT_TRUE(ch.text(Attr::Nonce)->starts_with("obMatJos2")) << *ch.text(Attr::Nonce);
  EXPECT_EQ(ch.password_algorithms(), (std::vector<uint16_t>{2, 1}));
  EXPECT_FALSE(ch.has(Attr::MessageIntegrity));
  EXPECT_FALSE(ch.has(Attr::Software));  // small answers to unauthenticated requests

  Reply r = c->transact(c->build(Method::Allocate, requested_udp));
  ASSERT_TRUE(r.received());
  ASSERT_EQ(r.cls(), Class::SuccessResponse) << "error " << r.error();
  auto relay = r.xor_address(Attr::XorRelayedAddress);
  ASSERT_TRUE(relay);
  EXPECT_EQ(relay->ip, kLoopback);
  EXPECT_GE(relay->port, min_port_);
  EXPECT_LE(relay->port, max_port_);
  EXPECT_EQ(r.u32(Attr::Lifetime), 600u);
  EXPECT_EQ(r.xor_address(Attr::XorMappedAddress), c->local());
  EXPECT_TRUE(r.integrity_ok(c->key()));
  auto wrong = crypto::long_term_key(stun::PasswordAlgorithm::Md5, kAlice, kRealm, "not-the-password");
  EXPECT_FALSE(r.integrity_ok(wrong));
  EXPECT_TRUE(allocations_become(1)) << live_allocations();
}

TEST_F(TurnProtocol, WrongPasswordIs401WithoutIntegrity) {
  auto c = client(Proto::Udp, kAlice, "wrong-password");
  Reply r = c->allocate();
  ASSERT_TRUE(r.received());
  EXPECT_EQ(r.cls(), Class::ErrorResponse);
  EXPECT_EQ(r.error(), 401);
  EXPECT_EQ(r.text(Attr::Realm), kRealm);
  EXPECT_TRUE(r.has(Attr::Nonce));
  EXPECT_FALSE(r.has(Attr::MessageIntegrity));
  EXPECT_FALSE(r.has(Attr::MessageIntegritySha256));
  EXPECT_TRUE(allocations_become(0)) << live_allocations();
}

TEST_F(TurnProtocol, UnknownUserIs401) {
  auto c = client(Proto::Udp, "mallory", "whatever");
  Reply r = c->allocate();
  ASSERT_TRUE(r.received());
  EXPECT_EQ(r.error(), 401);
  EXPECT_EQ(r.text(Attr::Realm), kRealm);
  EXPECT_TRUE(r.has(Attr::Nonce));
  EXPECT_FALSE(r.has(Attr::MessageIntegrity));
}

TEST_F(TurnProtocol, KeyConfiguredUserAuthenticates) {
  // user=carol:0x<MD5(carol:realm:password)> is the same key as the password.
  restart({carol_line()});
  auto c = client(Proto::Udp, kCarol, kCarolPass);
  Reply r = c->allocate();
  ASSERT_TRUE(r.success()) << r.error();
  EXPECT_TRUE(r.integrity_ok(c->key()));
  EXPECT_TRUE(r.has(Attr::Software));
}

TEST_F(TurnProtocol, ForgedNonceIs438WithAFreshNonce) {
  auto c = client();
  ASSERT_EQ(c->challenge().error(), 401);
  std::string good = c->nonce();
  ASSERT_GT(good.size(), 24u);
  std::string forged = good;
  size_t i = good.size() - 5;  // in the HMAC tag
  forged[i] = forged[i] == 'a' ? 'b' : 'a';
  for (const std::string& bad : {forged, std::string("made-up-nonce")}) {
    Signing s;
    s.nonce_override = bad;
    Reply r = c->transact(c->build(Method::Allocate, requested_udp, s));
    ASSERT_TRUE(r.received());
    EXPECT_EQ(r.cls(), Class::ErrorResponse);
    EXPECT_EQ(r.error(), 438) << bad;
    EXPECT_EQ(r.text(Attr::Realm), kRealm);
    ASSERT_TRUE(r.text(Attr::Nonce));
    EXPECT_NE(*r.text(Attr::Nonce), bad);
    EXPECT_FALSE(r.has(Attr::MessageIntegrity));
  }
  EXPECT_TRUE(allocations_become(0)) << live_allocations();
}

TEST_F(TurnProtocol, NonceWorksFromAnotherPortOfTheSameAddress) {
  // Nonces are bound to the client IP (auth_test checks other IPs), not to
  // the port: a client that re-binds its socket keeps its nonce.
  auto c = client();
  ASSERT_EQ(c->challenge().error(), 401);
  auto c2 = client();
  c2->set_nonce(c->nonce());
  Reply r = c2->transact(c2->build(Method::Allocate, requested_udp));
  EXPECT_TRUE(r.success()) << r.error();
}

TEST_F(TurnProtocol, MissingUsernameRealmOrNonceWithIntegrityIs400) {
  auto c = client();
  ASSERT_EQ(c->challenge().error(), 401);
  for (int which = 0; which < 3; ++which) {
    Signing s;
    s.username = which != 0;
    s.realm = which != 1;
    s.nonce = which != 2;
    Reply r = c->transact(c->build(Method::Allocate, requested_udp, s));
    ASSERT_TRUE(r.received()) << which;
    EXPECT_EQ(r.cls(), Class::ErrorResponse) << which;
    EXPECT_EQ(r.error(), 400) << which;
  }
  EXPECT_TRUE(allocations_become(0)) << live_allocations();
}

TEST_F(TurnProtocol, OtherRealmIsRefused) {
  auto c = client();
  ASSERT_EQ(c->challenge().error(), 401);
  Signing s;
  s.realm_override = "other.realm";
  Reply r = c->transact(c->build(Method::Allocate, requested_udp, s));
  ASSERT_TRUE(r.received());
  EXPECT_EQ(r.cls(), Class::ErrorResponse);
  EXPECT_TRUE(r.error() == 401 || r.error() == 438) << r.error();
  EXPECT_EQ(r.text(Attr::Realm), kRealm);
}

TEST_F(TurnProtocol, TamperedRequestFailsIntegrity) {
  auto c = client();
  ASSERT_EQ(c->challenge().error(), 401);
  auto req = c->build(Method::Allocate, [](stun::MessageBuilder& b) {
    b.add_requested_transport(stun::kTransportUdp);
    b.add_u32(Attr::Lifetime, 600);
  });
  // LIFETIME's value is the 4 bytes after REQUESTED-TRANSPORT (8) and its header (4).
  req[20 + 8 + 4 + 3] ^= 0x01;
  Reply r = c->transact(req);
  ASSERT_TRUE(r.received());
  EXPECT_EQ(r.error(), 401);
  EXPECT_TRUE(allocations_become(0)) << live_allocations();
}

TEST_F(TurnProtocol, StaleNonceIs438WithANewNonce) {
  restart({"nonce-lifetime=1"});
  auto c = client();
  ASSERT_EQ(c->challenge().error(), 401);
  std::string old = c->nonce();
  sleep_ms(2100);
  Reply r = c->transact(c->build(Method::Allocate, requested_udp));
  ASSERT_TRUE(r.received());
  EXPECT_EQ(r.cls(), Class::ErrorResponse);
  EXPECT_EQ(r.error(), 438);
  EXPECT_EQ(r.text(Attr::Realm), kRealm);
  ASSERT_TRUE(r.text(Attr::Nonce));
  EXPECT_NE(*r.text(Attr::Nonce), old);
  EXPECT_FALSE(r.has(Attr::MessageIntegrity));
  // The fresh nonce works (a 1 s nonce may lapse on a second boundary: retry).
  Reply ok;
  for (int i = 0; i < 3 && !ok.success(); ++i) ok = c->transact(c->build(Method::Allocate, requested_udp));
  EXPECT_TRUE(ok.success()) << ok.error();
}

std::string rest_password(const std::string& secret, const std::string& username) {
  const Bytes parts[] = {as_bytes(username)};
  return cp::base64_encode(crypto::hmac_sha1(as_bytes(secret), parts));
}

TEST_F(TurnProtocol, RestCredentials) {
  restart({"use-auth-secret", "static-auth-secret=north-wind"});
  const auto now = static_cast<uint64_t>(std::time(nullptr));
  {
    std::string user = std::to_string(now + 3600) + ":webrtc-user";
    auto c = client(Proto::Udp, user.c_str(), rest_password("north-wind", user).c_str());
    Reply r = c->allocate();
    EXPECT_TRUE(r.success()) << r.error();
    EXPECT_TRUE(r.integrity_ok(c->key()));
  }
  {
    std::string user = std::to_string(now - 10) + ":webrtc-user";
    auto c = client(Proto::Udp, user.c_str(), rest_password("north-wind", user).c_str());
    Reply r = c->allocate();
    ASSERT_TRUE(r.received());
    EXPECT_EQ(r.error(), 401);
    EXPECT_FALSE(r.has(Attr::MessageIntegrity));
  }
  {
    std::string user = std::to_string(now + 3600) + ":webrtc-user";
    auto c = client(Proto::Udp, user.c_str(), rest_password("wrong-secret", user).c_str());
    EXPECT_EQ(c->allocate().error(), 401);
  }
  EXPECT_TRUE(allocations_become(1)) << live_allocations();
}

TEST_F(TurnProtocol, MessageIntegritySha256) {
  auto c = client();
  Signing s;
  s.integrity = Integrity::Sha256;
  Reply r = c->allocate({}, s);
  ASSERT_TRUE(r.success()) << r.error();
  EXPECT_TRUE(r.has(Attr::MessageIntegritySha256));
  EXPECT_FALSE(r.has(Attr::MessageIntegrity));
  EXPECT_TRUE(r.integrity_sha256_ok(c->key()));
  // Later answers on the allocation use the same kind of integrity.
  Reply rf = c->refresh(600, s);
  ASSERT_TRUE(rf.success()) << rf.error();
  EXPECT_TRUE(rf.integrity_sha256_ok(c->key()));
}

TEST_F(TurnProtocol, PasswordAlgorithmSha256) {
  auto c = client();
  Signing s;
  s.algorithm = stun::PasswordAlgorithm::Sha256;
  Reply r = c->allocate({}, s);
  ASSERT_TRUE(r.success()) << r.error();
  auto key256 = c->key(stun::PasswordAlgorithm::Sha256);
  EXPECT_EQ(key256.size, 32);
  EXPECT_TRUE(r.integrity_ok(key256));
  EXPECT_FALSE(r.integrity_ok(c->key()));

  // SHA-256 key with MESSAGE-INTEGRITY-SHA256 too.
  auto c2 = client(Proto::Udp, kBob, kBobPass);
  s.integrity = Integrity::Sha256;
  Reply r2 = c2->allocate({}, s);
  ASSERT_TRUE(r2.success()) << r2.error();
  EXPECT_TRUE(r2.integrity_sha256_ok(c2->key(stun::PasswordAlgorithm::Sha256)));
}

TEST_F(TurnProtocol, PasswordAlgorithmMd5Explicitly) {
  // An RFC 8489 client that settles for MD5 sends both attributes too.
  auto c = client();
  Signing s;
  s.send_algorithm = true;
  Reply r = c->allocate({}, s);
  ASSERT_TRUE(r.success()) << r.error();
  EXPECT_TRUE(r.integrity_ok(c->key()));
}

TEST_F(TurnProtocol, PasswordAlgorithmsBidDownIs400) {
  auto c = client();
  ASSERT_EQ(c->challenge().error(), 401);
  auto expect_400 = [&](const char* what, Signing s) {
    s.algorithm = stun::PasswordAlgorithm::Sha256;
    Reply r = c->transact(c->build(Method::Allocate, requested_udp, s));
    EXPECT_EQ(r.error(), 400) << what;
  };
  Signing without_list;
  without_list.omit_algorithms = true;
  expect_400("PASSWORD-ALGORITHM without PASSWORD-ALGORITHMS", without_list);
  Signing md5_only;
  md5_only.algorithms_override = std::vector{stun::PasswordAlgorithm::Md5, stun::PasswordAlgorithm::Sha256};
  expect_400("PASSWORD-ALGORITHMS not as offered (reordered)", md5_only);
  Signing shorter;
  shorter.algorithms_override = std::vector{stun::PasswordAlgorithm::Sha256};
  expect_400("PASSWORD-ALGORITHMS not as offered (shortened)", shorter);
  // PASSWORD-ALGORITHMS alone.
  Reply r = c->transact(c->build(Method::Allocate, [](stun::MessageBuilder& b) {
    requested_udp(b);
    const stun::PasswordAlgorithm offered[] = {stun::PasswordAlgorithm::Sha256, stun::PasswordAlgorithm::Md5};
    b.add_password_algorithms(offered);
  }));
  EXPECT_EQ(r.error(), 400);
  // An algorithm that was not offered.
  Reply r7 = c->transact(c->build(Method::Allocate, [](stun::MessageBuilder& b) {
    requested_udp(b);
    const stun::PasswordAlgorithm offered[] = {stun::PasswordAlgorithm::Sha256, stun::PasswordAlgorithm::Md5};
    b.add_password_algorithms(offered);
    const uint8_t alg[] = {0x00, 0x07, 0x00, 0x00};
    b.add(Attr::PasswordAlgorithm, Bytes{alg, 4});
  }));
  EXPECT_EQ(r7.error(), 400);
  EXPECT_TRUE(allocations_become(0)) << live_allocations();
}

TEST_F(TurnProtocol, KeyConfiguredUsersLimitTheOfferToMd5) {
  // carol is configured by MD5 key only: no SHA-256 key can be derived, so
  // the server offers MD5 alone and refuses SHA-256.
  restart({carol_line()});
  auto c = client(Proto::Udp, kCarol, kCarolPass);
  Reply ch = c->challenge();
  EXPECT_EQ(ch.password_algorithms(), std::vector<uint16_t>{1});
  Signing s;
  s.algorithm = stun::PasswordAlgorithm::Sha256;
  EXPECT_EQ(c->transact(c->build(Method::Allocate, requested_udp, s)).error(), 400);
  Signing md5;
  md5.send_algorithm = true;
  Reply r = c->transact(c->build(Method::Allocate, requested_udp, md5));
  EXPECT_TRUE(r.success()) << r.error();
}

// ---- Allocate ---------------------------------------------------------------------

TEST_F(TurnProtocol, SecondAllocateOnTheSameFiveTupleIs437) {
  auto c = client();
  ASSERT_TRUE(c->allocate().success());
  Reply r = c->allocate();
  ASSERT_TRUE(r.received());
  EXPECT_EQ(r.cls(), Class::ErrorResponse);
  EXPECT_EQ(r.error(), 437);
  // An authenticated request's error answer is signed (RFC 8489 §9.2.4).
  EXPECT_TRUE(r.integrity_ok(c->key()));
  EXPECT_TRUE(allocations_become(1)) << live_allocations();
}

TEST_F(TurnProtocol, RetransmittedAllocateGetsTheSameAnswer) {
  auto c = client();
  ASSERT_EQ(c->challenge().error(), 401);
  auto req = c->build(Method::Allocate, requested_udp);
  Reply first = c->transact(req);
  ASSERT_TRUE(first.success()) << first.error();
  Reply again = c->transact(req);
  ASSERT_TRUE(again.received());
  EXPECT_EQ(again.raw, first.raw);
  EXPECT_TRUE(allocations_become(1)) << live_allocations();
}

TEST_F(TurnProtocol, AllocateRequestRefusals) {
  auto c = client();
  auto expect_error = [&](const char* what, int code, const Attrs& attrs) {
    Reply r = c->request(Method::Allocate, attrs);
    EXPECT_TRUE(r.received()) << what;
    if (!r.received()) return r;
    EXPECT_EQ(r.method(), Method::Allocate) << what;
    EXPECT_EQ(r.cls(), Class::ErrorResponse) << what;
    EXPECT_EQ(r.error(), code) << what;
    return r;
  };
  expect_error("no REQUESTED-TRANSPORT", 400, {});
  // RFC 6062 §5.1: TCP relays need a TCP/TLS control connection (400 over UDP).
  expect_error("REQUESTED-TRANSPORT TCP over UDP", 400,
               [](stun::MessageBuilder& b) { b.add_requested_transport(stun::kTransportTcp); });
  expect_error("REQUESTED-TRANSPORT SCTP", 442, [](stun::MessageBuilder& b) { b.add_requested_transport(132); });
  expect_error("short REQUESTED-TRANSPORT", 400, [](stun::MessageBuilder& b) {
    const uint8_t v[] = {17};
    b.add(Attr::RequestedTransport, Bytes{v, 1});
  });
  expect_error("IPv6 relay wanted", 440, [](stun::MessageBuilder& b) {
    requested_udp(b);
    b.add_address_family(Attr::RequestedAddressFamily, Family::V6);
  });
  expect_error("EVEN-PORT with RESERVATION-TOKEN", 400, [](stun::MessageBuilder& b) {
    requested_udp(b);
    b.add_even_port(false);
    b.add_reservation_token(0x0102030405060708ull);
  });
  expect_error("unknown RESERVATION-TOKEN", 508, [](stun::MessageBuilder& b) {
    requested_udp(b);
    b.add_reservation_token(0x0102030405060708ull);
  });
  {
    Reply r = expect_error("unknown comprehension-required attribute", 420, [](stun::MessageBuilder& b) {
      requested_udp(b);
      const uint8_t v[] = {1, 2, 3, 4};
      b.add(uint16_t{0x7FF0}, Bytes{v, 4});
    });
    EXPECT_EQ(r.unknown_attributes(), std::vector<uint16_t>{0x7FF0});
  }
  EXPECT_TRUE(allocations_become(0)) << live_allocations();
  // None of the refusals left anything behind: the same 5-tuple allocates,
  // and an unknown comprehension-optional attribute is ignored.
  Reply ok = c->allocate([](stun::MessageBuilder& b) {
    const uint8_t v[] = {9, 9, 9, 9};
    b.add(uint16_t{0xC0DE}, Bytes{v, 4});
  });
  EXPECT_TRUE(ok.success()) << ok.error();
}

TEST_F(TurnProtocol, RequestedAddressFamilyIpv4IsGranted) {
  auto c = client();
  Reply r =
      c->allocate([](stun::MessageBuilder& b) { b.add_address_family(Attr::RequestedAddressFamily, Family::V4); });
  ASSERT_TRUE(r.success()) << r.error();
  EXPECT_TRUE(r.xor_address(Attr::XorRelayedAddress)->ip.is_v4());
}

TEST_F(TurnProtocol, DontFragmentIsSupported) {
  auto c = client();
  Reply r = c->allocate([](stun::MessageBuilder& b) { b.add_flag(Attr::DontFragment); });
  EXPECT_TRUE(r.success()) << r.error();
}

TEST_F(TurnProtocol, AdditionalAddressFamily) {
  {
    // IPv6 as well: the IPv4 relay is granted and ADDRESS-ERROR-CODE says
    // why there is no IPv6 one (RFC 8656 §7.2).
    auto c = client();
    Reply r =
        c->allocate([](stun::MessageBuilder& b) { b.add_address_family(Attr::AdditionalAddressFamily, Family::V6); });
    ASSERT_TRUE(r.success()) << r.error();
    EXPECT_TRUE(r.xor_address(Attr::XorRelayedAddress)->ip.is_v4());
    EXPECT_TRUE(r.has(Attr::AddressErrorCode));
  }
  auto c = client();
  // ADDITIONAL-ADDRESS-FAMILY may only ask for IPv6 ...
  EXPECT_EQ(c->allocate([](stun::MessageBuilder& b) {
               b.add_address_family(Attr::AdditionalAddressFamily, Family::V4);
             }).error(),
            400);
  // ... and does not go with REQUESTED-ADDRESS-FAMILY.
  EXPECT_EQ(c->allocate([](stun::MessageBuilder& b) {
               b.add_address_family(Attr::RequestedAddressFamily, Family::V4);
               b.add_address_family(Attr::AdditionalAddressFamily, Family::V6);
             }).error(),
            400);
}

TEST_F(TurnProtocol, EvenPort) {
  for (int i = 0; i < 3; ++i) {
    auto c = client();
    Reply r = c->allocate([](stun::MessageBuilder& b) { b.add_even_port(false); });
    ASSERT_TRUE(r.success()) << r.error();
    auto relay = r.xor_address(Attr::XorRelayedAddress);
    ASSERT_TRUE(relay);
    EXPECT_EQ(relay->port % 2, 0) << relay->port;
    EXPECT_FALSE(r.has(Attr::ReservationToken));
  }
}

TEST_F(TurnProtocol, EvenPortWithReservation) {
  auto c1 = client();
  Reply r1 = c1->allocate([](stun::MessageBuilder& b) { b.add_even_port(true); });
  ASSERT_TRUE(r1.success()) << r1.error();
  auto relay1 = r1.xor_address(Attr::XorRelayedAddress);
  ASSERT_TRUE(relay1);
  EXPECT_EQ(relay1->port % 2, 0);
  auto token = r1.reservation_token();
  ASSERT_TRUE(token);

  auto c2 = client(Proto::Udp, kBob, kBobPass);
  Reply r2 = c2->allocate([t = *token](stun::MessageBuilder& b) { b.add_reservation_token(t); });
  ASSERT_TRUE(r2.success()) << r2.error();
  auto relay2 = r2.xor_address(Attr::XorRelayedAddress);
  ASSERT_TRUE(relay2);
  EXPECT_EQ(relay2->ip, relay1->ip);
  EXPECT_EQ(relay2->port, relay1->port + 1);
  EXPECT_FALSE(r2.has(Attr::ReservationToken));

  // A token is good once.
  auto c3 = client();
  Reply r3 = c3->allocate([t = *token](stun::MessageBuilder& b) { b.add_reservation_token(t); });
  EXPECT_EQ(r3.error(), 508);
}

TEST_F(TurnProtocol, AllocateLifetimes) {
  struct Case {
    std::optional<uint32_t> requested;
    uint32_t granted;
  };
  for (Case k : {Case{7200, 3600}, Case{10, 600}, Case{1200, 1200}, Case{std::nullopt, 600}}) {
    auto c = client();
    Reply r = c->allocate([k](stun::MessageBuilder& b) {
      if (k.requested) b.add_u32(Attr::Lifetime, *k.requested);
    });
    ASSERT_TRUE(r.success()) << r.error();
    EXPECT_EQ(r.u32(Attr::Lifetime), k.granted) << (k.requested ? *k.requested : 0);
  }
}

// ---- Refresh ----------------------------------------------------------------------

TEST_F(TurnProtocol, RefreshLifetimes) {
  auto c = client();
  ASSERT_TRUE(c->allocate().success());
  Reply r = c->refresh(std::nullopt);
  ASSERT_TRUE(r.success()) << r.error();
  EXPECT_EQ(r.u32(Attr::Lifetime), 600u);
  EXPECT_TRUE(r.integrity_ok(c->key()));
  EXPECT_EQ(c->refresh(7200).u32(Attr::Lifetime), 3600u);
  EXPECT_EQ(c->refresh(10).u32(Attr::Lifetime), 600u);
}

TEST_F(TurnProtocol, RefreshWithLifetimeZeroDeletes) {
  SocketAddress relay;
  auto c = allocated(&relay);
  ASSERT_TRUE(allocations_become(1)) << live_allocations();
  Reply r = c->refresh(0);
  ASSERT_TRUE(r.success()) << r.error();
  EXPECT_EQ(r.u32(Attr::Lifetime), 0u);
  EXPECT_TRUE(allocations_become(0)) << live_allocations();
  Reply again = c->refresh(600);
  ASSERT_TRUE(again.received());
  EXPECT_EQ(again.cls(), Class::ErrorResponse);
  EXPECT_EQ(again.error(), 437);
  // The 5-tuple is free again.
  EXPECT_TRUE(c->allocate().success());
}

TEST_F(TurnProtocol, RefreshWithoutAllocationIs437) {
  auto c = client();
  EXPECT_EQ(c->refresh(600).error(), 437);
}

TEST_F(TurnProtocol, RefreshByAnotherUserIs441) {
  auto c = client();
  ASSERT_TRUE(c->allocate().success());
  c->set_credentials(kBob, kBobPass, kRealm);
  Reply r = c->refresh(600);
  ASSERT_TRUE(r.received());
  EXPECT_EQ(r.cls(), Class::ErrorResponse);
  EXPECT_EQ(r.error(), 441);
  EXPECT_EQ(c->refresh(0).error(), 441);  // cannot delete it either
  EXPECT_TRUE(allocations_become(1)) << live_allocations();
  c->set_credentials(kAlice, kAlicePass, kRealm);
  EXPECT_TRUE(c->refresh(600).success());
}

TEST_F(TurnProtocol, RefreshWithTheWrongAddressFamilyIs443) {
  auto c = client();
  ASSERT_TRUE(c->allocate().success());
  Reply r = c->request(Method::Refresh,
                       [](stun::MessageBuilder& b) { b.add_address_family(Attr::RequestedAddressFamily, Family::V6); });
  EXPECT_EQ(r.error(), 443);
}

// ---- quotas -------------------------------------------------------------------------

TEST_F(TurnProtocol, UserQuota) {
  restart({"user-quota=1"});
  auto a1 = client();
  ASSERT_TRUE(a1->allocate().success());
  auto a2 = client();
  Reply r = a2->allocate();
  ASSERT_TRUE(r.received());
  EXPECT_EQ(r.cls(), Class::ErrorResponse);
  EXPECT_EQ(r.error(), 486);
  // Another user is not affected.
  auto b1 = client(Proto::Udp, kBob, kBobPass);
  EXPECT_TRUE(b1->allocate().success());
  // Releasing alice's allocation gives her quota back.
  ASSERT_TRUE(a1->refresh(0).success());
  EXPECT_TRUE(a2->allocate().success());
}

TEST_F(TurnProtocol, TotalQuota) {
  restart({"total-quota=1"});
  auto a = client();
  ASSERT_TRUE(a->allocate().success());
  auto b = client(Proto::Udp, kBob, kBobPass);
  Reply r = b->allocate();
  EXPECT_EQ(r.error(), 486);
  ASSERT_TRUE(a->refresh(0).success());
  EXPECT_TRUE(b->allocate().success());
}

TEST_F(TurnProtocol, RelayPortRangeExhaustedIs508) {
  std::vector<std::unique_ptr<TurnClient>> clients;
  int granted = 0, refused = 0;
  for (int i = 0; i < kRelayPorts + 2; ++i) {
    auto c = client();
    Reply r = c->allocate();
    ASSERT_TRUE(r.received());
    if (r.success()) {
      ++granted;
      auto relay = r.xor_address(Attr::XorRelayedAddress);
      EXPECT_GE(relay->port, min_port_);
      EXPECT_LE(relay->port, max_port_);
    } else {
      EXPECT_EQ(r.error(), 508);
      ++refused;
    }
    clients.push_back(std::move(c));
  }
  EXPECT_LE(granted, kRelayPorts);
  EXPECT_GE(refused, 2);
}

// ---- CreatePermission ---------------------------------------------------------------

TEST_F(TurnProtocol, CreatePermissionNeedsAnAllocation) {
  auto c = client();
  EXPECT_EQ(c->create_permission(addr("198.51.100.7:5000")).error(), 437);
}

TEST_F(TurnProtocol, CreatePermissionWithoutPeerIs400) {
  auto c = allocated(nullptr);
  Reply r = c->request(Method::CreatePermission, {});
  ASSERT_TRUE(r.received());
  EXPECT_EQ(r.cls(), Class::ErrorResponse);
  EXPECT_EQ(r.error(), 400);
}

TEST_F(TurnProtocol, CreatePermissionPeerPolicy) {
  auto c = allocated(nullptr);
  for (const char* bad : {"169.254.169.254:80", "224.0.0.1:5000", "0.0.0.0:5000", "255.255.255.255:5000",
                          "239.1.2.3:5000", "0.1.2.3:5000"}) {
    Reply r = c->create_permission(addr(bad));
    ASSERT_TRUE(r.received()) << bad;
    EXPECT_EQ(r.cls(), Class::ErrorResponse) << bad;
    EXPECT_EQ(r.error(), 403) << bad;
  }
  Reply ok = c->create_permission(addr("198.51.100.7:5000"));
  EXPECT_TRUE(ok.success()) << ok.error();
  EXPECT_TRUE(ok.integrity_ok(c->key()));
  EXPECT_TRUE(c->create_permission(addr("127.0.0.1:5000")).success());  // allow-loopback-peers
  // An IPv6 peer on an IPv4 relay: 443.
  EXPECT_EQ(c->create_permission(addr("[2001:db8::1]:5000")).error(), 443);
}

TEST_F(TurnProtocol, DeniedAndAllowedPeerRanges) {
  restart({"denied-peer-ip=198.51.100.0-198.51.100.255", "allowed-peer-ip=198.51.100.7",
           "allowed-peer-ip=169.254.169.253"});
  auto c = allocated(nullptr);
  EXPECT_EQ(c->create_permission(addr("198.51.100.8:5000")).error(), 403);
  EXPECT_EQ(c->create_permission(addr("198.51.100.255:5000")).error(), 403);
  EXPECT_TRUE(c->create_permission(addr("198.51.100.7:5000")).success());     // allowed wins
  EXPECT_TRUE(c->create_permission(addr("203.0.113.9:5000")).success());      // outside the range
  EXPECT_TRUE(c->create_permission(addr("169.254.169.253:5000")).success());  // operator opted in
  EXPECT_EQ(c->create_permission(addr("169.254.169.254:80")).error(), 403);
}

TEST_F(TurnProtocol, LoopbackPeersRefusedByDefault) {
  restart({"no-loopback-peers"});
  auto c = allocated(nullptr);
  EXPECT_EQ(c->create_permission(addr("127.0.0.1:5000")).error(), 403);
  EXPECT_EQ(c->create_permission(addr("127.9.9.9:5000")).error(), 403);
  EXPECT_EQ(c->channel_bind(0x4000, addr("127.0.0.1:5000")).error(), 403);
}

TEST_F(TurnProtocol, OneForbiddenPeerRefusesTheWholeRequest) {
  SocketAddress relay;
  auto c = allocated(&relay);
  UdpPeer peer;
  Reply r = c->request(Method::CreatePermission, [&](stun::MessageBuilder& b) {
    b.add_xor_address(Attr::XorPeerAddress, peer.address());
    b.add_xor_address(Attr::XorPeerAddress, addr("169.254.169.254:80"));
  });
  EXPECT_EQ(r.error(), 403);
  // The acceptable peer got no permission either.
  peer.send_to(relay, as_bytes(std::string("should not arrive")));
  EXPECT_FALSE(c->next_frame(300));
}

// The server's own addresses are refused as peers (SSRF), but its relay
// addresses are not: two clients of the same server relaying to each other
// is the usual WebRTC case (DESIGN.md "relay -> relay of the same server").
TEST_F(TurnProtocol, OwnListeningAddressRefusedOwnRelayAddressAllowed) {
  auto own = non_loopback_ipv4();
  if (!own) GTEST_SKIP() << "no non-loopback IPv4 address on this machine";
  std::string own_text = own->to_string();
  SocketAddress own_peer{*own, 5000};
  restart({"listening-ip=" + own_text});  // listens there, does not relay there
  {
    auto c = allocated(nullptr);
    EXPECT_EQ(c->create_permission(own_peer).error(), 403);
  }
  restart({"listening-ip=" + own_text, "relay-ip=" + own_text});  // listens and relays there
  {
    auto c = allocated(nullptr);
    Reply r = c->create_permission(own_peer);
    EXPECT_TRUE(r.success()) << "CreatePermission to our own relay address " << own_text << ": " << r.error();
  }
}

// ---- ChannelBind ------------------------------------------------------------------------

TEST_F(TurnProtocol, ChannelBindNeedsAnAllocation) {
  auto c = client();
  EXPECT_EQ(c->channel_bind(0x4000, addr("198.51.100.7:5000")).error(), 437);
}

TEST_F(TurnProtocol, ChannelNumberRange) {
  auto c = allocated(nullptr);
  EXPECT_EQ(c->channel_bind(0x3FFF, addr("198.51.100.1:5000")).error(), 400);
  EXPECT_EQ(c->channel_bind(0x5000, addr("198.51.100.2:5000")).error(), 400);
  EXPECT_EQ(c->channel_bind(0x7FFE, addr("198.51.100.3:5000")).error(), 400);
  EXPECT_EQ(c->channel_bind(0xFFFF, addr("198.51.100.4:5000")).error(), 400);
  Reply lo = c->channel_bind(0x4000, addr("198.51.100.5:5000"));
  EXPECT_TRUE(lo.success()) << lo.error();
  EXPECT_TRUE(lo.integrity_ok(c->key()));
  EXPECT_TRUE(c->channel_bind(0x4FFF, addr("198.51.100.6:5000")).success());
}

TEST_F(TurnProtocol, LegacyChannelRange) {
  restart({"legacy-channel-range"});
  auto c = allocated(nullptr);
  EXPECT_TRUE(c->channel_bind(0x5000, addr("198.51.100.2:5000")).success());
  EXPECT_TRUE(c->channel_bind(0x7FFE, addr("198.51.100.3:5000")).success());
  // RFC 5766 §11 and coturn: the range ends at 0x7FFF (0x7FFE before).
  EXPECT_TRUE(c->channel_bind(0x7FFF, addr("198.51.100.4:5000")).success());
  EXPECT_EQ(c->channel_bind(0x8000, addr("198.51.100.6:5000")).error(), 400);
  EXPECT_EQ(c->channel_bind(0x3FFF, addr("198.51.100.5:5000")).error(), 400);
}

TEST_F(TurnProtocol, ChannelBindMissingAttributesIs400) {
  auto c = allocated(nullptr);
  EXPECT_EQ(c->request(Method::ChannelBind, [](stun::MessageBuilder& b) { b.add_channel_number(0x4000); }).error(),
            400);
  EXPECT_EQ(c->request(Method::ChannelBind,
                       [](stun::MessageBuilder& b) { b.add_xor_address(Attr::XorPeerAddress, addr("198.51.100.1:1")); })
                .error(),
            400);
  EXPECT_EQ(c->request(Method::ChannelBind, {}).error(), 400);
}

TEST_F(TurnProtocol, ChannelBindingRules) {
  auto c = allocated(nullptr);
  const SocketAddress p = addr("198.51.100.10:4000");
  const SocketAddress q = addr("198.51.100.11:4000");
  ASSERT_TRUE(c->channel_bind(0x4001, p).success());
  // Another channel for the same peer.
  EXPECT_EQ(c->channel_bind(0x4002, p).error(), 400);
  // The same channel for another peer (another port of the same IP too).
  EXPECT_EQ(c->channel_bind(0x4001, q).error(), 400);
  EXPECT_EQ(c->channel_bind(0x4001, addr("198.51.100.10:4001")).error(), 400);
  // Rebinding the same pair refreshes it.
  Reply again = c->channel_bind(0x4001, p);
  EXPECT_TRUE(again.success()) << again.error();
  // Other pairs are independent.
  EXPECT_TRUE(c->channel_bind(0x4002, q).success());
  EXPECT_EQ(c->channel_bind(0x4003, addr("169.254.169.254:80")).error(), 403);
}

TEST_F(TurnProtocol, ChannelBindIpv6PeerOnIpv4RelayIs443) {
  auto c = allocated(nullptr);
  EXPECT_EQ(c->channel_bind(0x4000, addr("[2001:db8::1]:5000")).error(), 443);
}

TEST_F(TurnProtocol, ChannelBindByAnotherUserIs441) {
  auto c = allocated(nullptr);
  c->set_credentials(kBob, kBobPass, kRealm);
  EXPECT_EQ(c->channel_bind(0x4000, addr("198.51.100.1:5000")).error(), 441);
  EXPECT_EQ(c->create_permission(addr("198.51.100.1:5000")).error(), 441);
}

// ---- rate limits -----------------------------------------------------------------------

TEST_F(TurnProtocol, RequestAndChallengeRateLimits) {
  restart({"request-rate-limit=10", "unauth-rate-limit=3"});
  auto count_answers = [](TurnClient& c) {
    int n = 0;
    while (c.next_frame(300)) ++n;
    return n;
  };
  auto c = client();
  for (int i = 0; i < 30; ++i) {
    auto req = c->build(Method::Binding, {}, unsigned_request());
    c->send_raw(Bytes{req.data(), req.size()});
  }
  int answered = count_answers(*c);
  EXPECT_GE(answered, 10);
  EXPECT_LE(answered, 12);
  EXPECT_GT(drops(cp::CpDrop::RateLimited), 0u);

  sleep_ms(1100);  // the buckets refill
  auto c2 = client();
  for (int i = 0; i < 9; ++i) {
    auto req = c2->build(Method::Allocate, requested_udp, unsigned_request());
    c2->send_raw(Bytes{req.data(), req.size()});
  }
  int challenges = count_answers(*c2);
  EXPECT_GE(challenges, 3);
  EXPECT_LE(challenges, 4);
  EXPECT_GT(drops(cp::CpDrop::UnauthRateLimited), 0u);
}

// ---- malformed input ------------------------------------------------------------------

TEST_F(TurnProtocol, MalformedFloodDoesNotHurt) {
  SocketAddress relay;
  auto victim = allocated(&relay);  // an allocation that must survive
  auto flood = client();
  std::mt19937 rng(12345);
  auto byte = [&] { return static_cast<uint8_t>(rng()); };
  const auto valid = flood->build(Method::Allocate, requested_udp);
  for (int i = 0; i < 1000; ++i) {
    std::vector<uint8_t> d;
    switch (i % 5) {
      case 0: {  // random bytes, random length
        d.resize(rng() % 600);
        for (auto& b : d) b = byte();
        break;
      }
      case 1:  // a valid request cut short
        d.assign(valid.begin(), valid.begin() + static_cast<long>(rng() % valid.size()));
        break;
      case 2: {  // a valid request with a few bytes changed
        d = valid;
        for (int k = 0; k < 1 + static_cast<int>(rng() % 4); ++k) d[rng() % d.size()] = byte();
        break;
      }
      case 3: {  // ChannelData (also reserved/legacy ranges) whose length lies
        d = {static_cast<uint8_t>(0x40 + rng() % 0x40), byte(), 0xFF, 0xFF};
        d.resize(4 + rng() % 40, 0xAB);
        break;
      }
      default: {  // a STUN header whose length lies, or an attribute that overruns
        d = {0x00, 0x01, 0xFF, 0xFC, 0x21, 0x12, 0xA4, 0x42};
        for (int k = 0; k < 12; ++k) d.push_back(byte());
        if (rng() % 2) {
          d[2] = 0x00;
          d[3] = 0x08;
          d.insert(d.end(), {0x00, 0x06, 0xFF, 0xFF, 'a', 'b', 'c', 'd'});
        }
        break;
      }
    }
    // The victim's 5-tuple gets garbage too.
    (i % 2 ? flood.get() : victim.get())->send_raw(Bytes{d.data(), d.size()});
  }
  // Still serving: Binding on a fresh socket, and the old allocation lives.
  auto c = client();
  Reply r = c->transact(c->build(Method::Binding, {}, unsigned_request()));
  ASSERT_TRUE(r.received());
  EXPECT_EQ(r.cls(), Class::SuccessResponse);
  EXPECT_EQ(r.xor_address(Attr::XorMappedAddress), c->local());
  Reply rf = victim->refresh(600);
  EXPECT_TRUE(rf.success()) << rf.error();
  EXPECT_GT(drops(cp::CpDrop::MalformedStun), 0u);
  EXPECT_GT(drops(cp::CpDrop::MalformedChannelData) + drops(cp::CpDrop::ReservedChannel), 0u);
  EXPECT_GT(drops(cp::CpDrop::NotTurn), 0u);
}

TEST_F(TurnProtocol, TcpGarbageClosesOnlyThatConnection) {
  SocketAddress relay;
  auto victim = allocated(&relay, Proto::Tcp);
  {
    auto bad = client(Proto::Tcp);
    const uint8_t junk[] = {0xFF, 0xEE, 0xDD, 0xCC, 0xBB, 0xAA, 0x99, 0x88};
    bad->send_raw(Bytes{junk, sizeof junk});
    EXPECT_FALSE(bad->next_frame(kReplyTimeoutMs));  // the server closed it
  }
  {
    // A frame that announces more than it sends, then hangs up.
    auto cut = client(Proto::Tcp);
    const uint8_t head[] = {0x00, 0x03, 0x01, 0x00, 0x21, 0x12, 0xA4, 0x42, 1,  2, 3,
                            4,    5,    6,    7,    8,    9,    10,   11,   12, 0, 6};
    cut->send_raw(Bytes{head, sizeof head});
  }
  auto c = client(Proto::Tcp);
  Reply r = c->transact(c->build(Method::Binding, {}, unsigned_request()));
  ASSERT_TRUE(r.received());
  EXPECT_EQ(r.xor_address(Attr::XorMappedAddress), c->local());
  EXPECT_TRUE(victim->refresh(600).success());
}

TEST_F(TurnProtocol, TcpCloseReleasesTheAllocation) {
  restart({"user-quota=1"});
  {
    auto c = client(Proto::Tcp);
    ASSERT_TRUE(c->allocate().success());
    EXPECT_TRUE(allocations_become(1)) << live_allocations();
  }
  EXPECT_TRUE(allocations_become(0, 2000)) << live_allocations();
  // The quota went with it.
  auto again = client(Proto::Tcp);
  EXPECT_TRUE(again->allocate().success());
}

// A TCP client that resets its connection right after sending Allocate: the
// allocation, if the server made one, goes with the connection (RFC 8656
// §3.1). Many times, to hit the moment where the reset arrives while the
// server is between reading the request and writing the response; with one
// relay port left free, each Allocate searches the port range, which widens
// that moment. After each connection a Binding round trip makes sure the
// server is done with it; a leaked allocation is then in the registry (the
// next connection to close would hide it: its StreamConnection may reuse
// the freed one's address, which the leaked allocation still points to).
TEST_F(TurnProtocol, TcpResetDuringAllocateLeavesNoAllocation) {
  std::vector<std::unique_ptr<TurnClient>> holders;
  for (int i = 0; i < kRelayPorts - 1; ++i) holders.push_back(allocated(nullptr));
  const size_t base = kRelayPorts - 1;
  ASSERT_TRUE(allocations_become(base));
  auto u = client();
  ASSERT_EQ(u->challenge().error(), 401);  // nonces are bound to the IP only
  const auto binding = u->build(Method::Binding, {}, unsigned_request());
  for (int i = 0; i < 1500; ++i) {
    auto t = client(Proto::Tcp);
    t->set_nonce(u->nonce());
    auto req = t->build(Method::Allocate, requested_udp);
    t->send_raw(Bytes{req.data(), req.size()});
    auto until = std::chrono::steady_clock::now() + std::chrono::nanoseconds((i % 300) * 300);
    while (std::chrono::steady_clock::now() < until) {
    }
    t->abort_connection();
    ASSERT_TRUE(u->transact(binding).success());
    if (live_allocations() != base) {  // legitimately there until the reset is read
      ASSERT_TRUE(allocations_become(base, 100))
          << live_allocations() - base << " allocation(s) outlived their TCP connection (attempt " << i << ")";
    }
  }
}

// The same moment for a Refresh on a TCP allocation: the failed write of the
// Refresh response closes the connection, which deletes the allocation,
// and the Refresh must not touch it afterwards (under ASan this is where a
// heap-use-after-free shows).
TEST_F(TurnProtocol, TcpResetDuringRefresh) {
  auto u = client();
  ASSERT_EQ(u->challenge().error(), 401);
  const auto binding = u->build(Method::Binding, {}, unsigned_request());
  for (int i = 0; i < 1500; ++i) {
    auto t = client(Proto::Tcp);
    t->set_nonce(u->nonce());
    auto both = t->build(Method::Allocate, requested_udp);
    auto refresh =
        t->build(Method::Refresh, [i](stun::MessageBuilder& b) { b.add_u32(Attr::Lifetime, i % 2 ? 0 : 600); });
    both.insert(both.end(), refresh.begin(), refresh.end());
    t->send_raw(Bytes{both.data(), both.size()});
    auto until = std::chrono::steady_clock::now() + std::chrono::nanoseconds((i % 300) * 150);
    while (std::chrono::steady_clock::now() < until) {
    }
    t->abort_connection();
    ASSERT_TRUE(u->transact(binding).success()) << "attempt " << i;
  }
  EXPECT_TRUE(allocations_become(0, 500)) << live_allocations();
}

}  // namespace
}  // namespace turn::cptest
