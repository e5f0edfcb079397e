// SPDX-License-Identifier: Apache-2.0
// Two codec attributes used end to end (issue 16): USERHASH (RFC 8489
// §14.4, username anonymity, announced in the nonce cookie) and ICMP (RFC
// 8656 §11.5/§18.13: an ICMP error about a peer reaches the client as a Data
// indication). Real Runtime on loopback.
#include <gtest/gtest.h>

#include <string>

#include "common/stun/attributes.h"
#include "tests/controlplane/turn_fixture.h"

namespace turn::cptest {
namespace {

using stun::Attr;
using stun::Method;

class Features : public TurnServerFixture {};

Signing with_userhash() {
  Signing s;
  s.userhash = true;
  return s;
}

// A port nothing listens on (UDP) right now.
SocketAddress closed_port(const IpAddress& ip) {
  UdpPeer p(ip);
  return p.address();  // closed when p goes
}

TEST_F(Features, NonceAnnouncesUsernameAnonymity) {
  Reply r = client()->challenge();
  ASSERT_EQ(r.error(), 401);
  auto nonce = r.text(Attr::Nonce);
  ASSERT_TRUE(nonce);
  // RFC 8489 §9.2: bits 0 (password algorithms) and 1 (username anonymity).
  EXPECT_TRUE(nonce->starts_with("obMatJos2wAAA")) << *nonce;
}

TEST_F(Features, UserhashAuthenticatesAKnownUser) {
  auto c = client();
  Reply r = c->allocate({}, with_userhash());
  ASSERT_TRUE(r.success()) << r.error();
  EXPECT_TRUE(r.integrity_ok(c->key()));
  // The allocation is alice's: another request of hers by USERHASH works,
  // and so does one by USERNAME (the same user).
  EXPECT_TRUE(c->refresh(600, with_userhash()).success());
  EXPECT_TRUE(c->refresh(600).success());
  bool alices = false;
  for (const auto& info : runtime().shared().registry.snapshot()) alices |= info->username == kAlice;
  EXPECT_TRUE(alices);
  // With SHA-256 integrity too.
  auto c2 = client();
  Signing s = with_userhash();
  s.integrity = Integrity::Sha256;
  EXPECT_TRUE(c2->allocate({}, s).success());
}

TEST_F(Features, UserhashRefusals) {
  // A hash of nobody: 401 (as an unknown user), counted.
  auto c = client(Proto::Udp, "mallory", "whatever");
  EXPECT_EQ(c->allocate({}, with_userhash()).error(), 401);
  uint64_t failures = 0;
  for (const auto* s : runtime().stats()) failures += s->auth_failures.load();
  EXPECT_GE(failures, 1u);
  // The right hash with the wrong password: 401.
  auto w = client(Proto::Udp, kAlice, "wrong");
  EXPECT_EQ(w->allocate({}, with_userhash()).error(), 401);
  // A USERHASH that is not 32 bytes: 400.
  auto b = client();
  ASSERT_EQ(b->challenge().error(), 401);
  Signing none_user;
  none_user.username = false;
  EXPECT_EQ(b->request(
                 Method::Allocate,
                 [](stun::MessageBuilder& m) {
                   m.add_requested_transport(stun::kTransportUdp);
                   uint8_t short_hash[31] = {};
                   m.add(Attr::Userhash, Bytes{short_hash, sizeof short_hash});
                 },
                 none_user)
                .error(),
            400);
  // Neither USERNAME nor USERHASH with integrity: 400 (§9.2.4).
  EXPECT_EQ(
      b->request(
           Method::Allocate, [](stun::MessageBuilder& m) { m.add_requested_transport(stun::kTransportUdp); }, none_user)
          .error(),
      400);
}

TEST_F(Features, UserhashFindsUsersAddedLater) {
  runtime().shared().credentials.add_local("dave", "dave-secret");
  auto c = client(Proto::Udp, "dave", "dave-secret");
  EXPECT_TRUE(c->allocate({}, with_userhash()).success());
  runtime().shared().credentials.remove_local("dave");
  auto c2 = client(Proto::Udp, "dave", "dave-secret");
  EXPECT_EQ(c2->allocate({}, with_userhash()).error(), 401);
}

TEST_F(Features, IcmpPortUnreachableReachesTheClient) {
  SocketAddress relay;
  auto c = allocated(&relay);
  SocketAddress gone = closed_port(IpAddress::v4(0x7f000001));
  ASSERT_TRUE(c->create_permission(gone).success());
  c->send_indication(gone, as_bytes(std::string("anyone there?")));
  auto f = c->next_frame(kReplyTimeoutMs);
  ASSERT_TRUE(f) << "no Data indication with ICMP";
  Reply r{*f};
  ASSERT_TRUE(r.parses());
  EXPECT_EQ(r.method(), Method::Data);
  EXPECT_EQ(r.cls(), stun::Class::Indication);
  EXPECT_EQ(r.xor_address(Attr::XorPeerAddress), gone);
  EXPECT_FALSE(r.has(Attr::Data)) << "§11.5: no DATA attribute";
  stun::MessageView v;
  ASSERT_EQ(stun::parse(Bytes{r.raw.data(), r.raw.size()}, v), stun::ParseError::Ok);
  const auto* icmp = v.find(Attr::Icmp);
  ASSERT_NE(icmp, nullptr);
  auto value = stun::read_icmp(v.value(*icmp));
  ASSERT_TRUE(value);
  EXPECT_EQ(value->type, 3);  // Destination Unreachable
  EXPECT_EQ(value->code, 3);  // Port Unreachable
  EXPECT_EQ(value->data, 0u);
  // The relay keeps working: a real peer's datagram comes through.
  UdpPeer peer;
  ASSERT_TRUE(c->create_permission(peer.address()).success());
  peer.send_to(relay, as_bytes(std::string("hello")));
  auto d = c->next_frame(kReplyTimeoutMs);
  ASSERT_TRUE(d);
  EXPECT_EQ(Reply{*d}.data(), to_vec("hello"));
  uint64_t icmp_count = 0;
  for (const auto* s : runtime().stats()) icmp_count += s->icmp_to_client.load();
  EXPECT_EQ(icmp_count, 1u);
}

TEST_F(Features, Icmpv6PortUnreachableReachesTheClient) {
  restart({"relay-ip=::1"});
  auto c = client();
  ASSERT_TRUE(c->allocate([](stun::MessageBuilder& b) {
                 b.add_address_family(Attr::RequestedAddressFamily, Family::V6);
               }).success());
  SocketAddress gone = closed_port(*IpAddress::parse("::1"));
  ASSERT_TRUE(c->create_permission(gone).success());
  c->send_indication(gone, as_bytes(std::string("v6?")));
  auto f = c->next_frame(kReplyTimeoutMs);
  ASSERT_TRUE(f);
  stun::MessageView v;
  ASSERT_EQ(stun::parse(Bytes{f->data(), f->size()}, v), stun::ParseError::Ok);
  const auto* icmp = v.find(Attr::Icmp);
  ASSERT_NE(icmp, nullptr);
  auto value = stun::read_icmp(v.value(*icmp));
  ASSERT_TRUE(value);
  EXPECT_EQ(value->type, 1);  // ICMPv6 Destination Unreachable
  EXPECT_EQ(value->code, 4);  // Port Unreachable
}

}  // namespace
}  // namespace turn::cptest
