// SPDX-License-Identifier: Apache-2.0
// Redirects (RFC 8489 §10, 300 Try Alternate) and drain, on a real
// turn-control on loopback: coturn's alternate-server keys, the drain of
// the admin API, and the rules that keep a client from being sent to this
// server itself, to an address of another family, or round in a loop.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "controlplane/server/redirect.h"
#include "tests/controlplane/turn_fixture.h"

namespace turn::cptest {
namespace {

using json = nlohmann::json;
using stun::Attr;

SocketAddress sa(const char* t) { return *SocketAddress::parse(t); }

class Redirects : public TurnServerFixture {
 protected:
  // The first, unauthenticated Allocate of a new client.
  Reply first_allocate() {
    auto c = client(Proto::Udp, kAlice, kAlicePass);
    return c->challenge();
  }
};

TEST_F(Redirects, AlternateServerRedirectsEveryNewAllocateRoundRobin) {
  restart({"alternate-server=192.0.2.11:3478", "alternate-server=192.0.2.12", "alternate-server=[2001:db8::13]:3478",
           "tls-alternate-server=192.0.2.14:5349"});
  std::vector<SocketAddress> seen;
  for (int i = 0; i < 4; ++i) {
    Reply r = first_allocate();
    ASSERT_EQ(r.error(), 300) << i;
    auto alt = r.address(Attr::AlternateServer);
    ASSERT_TRUE(alt) << "ALTERNATE-SERVER in the 300";
    seen.push_back(*alt);
    // REALM and NONCE come along: the client authenticates at the
    // alternate without another challenge (a fleet shares server-secret).
    EXPECT_EQ(r.text(Attr::Realm), std::string(kRealm));
    EXPECT_TRUE(r.has(Attr::Nonce));
    EXPECT_FALSE(r.has(Attr::AlternateDomain)) << "only over TLS (§10)";
    EXPECT_FALSE(r.has(Attr::MessageIntegrity));
  }
  // Round robin over the IPv4 ones only (the request came over IPv4:
  // §14.15, the alternate must be of the same family); port 3478 by default.
  EXPECT_EQ(seen, (std::vector<SocketAddress>{sa("192.0.2.11:3478"), sa("192.0.2.12:3478"), sa("192.0.2.11:3478"),
                                              sa("192.0.2.12:3478")}));
  EXPECT_EQ(runtime().shared().redirector.stats().alternate.load(), 4u);
}

TEST_F(Redirects, NeverToItselfNorInAShapeItCannotUse) {
  // This server's own listening address: refused at start, naming it.
  for (const std::string& line : std::vector<std::string>{
           "alternate-server=127.0.0.1:" + std::to_string(port_), "alternate-server=not-an-address",
           "alternate-server=0.0.0.0:3478", "tls-alternate-server=192.0.2.1:0", "alternate-domain=has space"}) {
    try {
      cp::Config c;
      cp::apply_config_line("listening-ip=127.0.0.1", "t:1", c);
      cp::apply_config_line("listening-port=" + std::to_string(port_), "t:2", c);
      cp::apply_config_line(line, "t:3", c);
      cp::validate_config(c);
      ADD_FAILURE() << "accepted: " << line;
    } catch (const cp::ConfigError& e) {
      std::string what = e.what();
      EXPECT_NE(what.find(line.substr(line.find('=') + 1)), std::string::npos) << line << " -> " << what;
    }
  }
}

TEST_F(Redirects, DrainRefusesToLeaveNewCallsNowhereUnlessForced) {
  auto& r = runtime().shared().redirector;
  auto refused = r.drain(false);
  ASSERT_TRUE(refused) << "no other instance and no alternate-server";
  EXPECT_NE(refused->why.find("last serving instance"), std::string::npos) << refused->why;
  EXPECT_FALSE(r.draining());
  // Forced: new calls are turned away (508); calls already here go on.
  SocketAddress relay;
  auto before = allocated(&relay);
  ASSERT_FALSE(r.drain(true));
  EXPECT_TRUE(r.draining());
  EXPECT_EQ(first_allocate().error(), 508);
  EXPECT_EQ(r.stats().no_target.load(), 1u);
  EXPECT_TRUE(before->refresh(600).success()) << "an existing allocation refreshes during the drain";
  EXPECT_TRUE(before->create_permission(sa("127.0.0.1:9")).success());
  r.undrain();
  SocketAddress relay2;
  EXPECT_TRUE(allocated(&relay2)->refresh(0).success()) << "serving again";
}

TEST_F(Redirects, DrainSendsNewCallsToTheLeastLoadedServingMember) {
  auto& r = runtime().shared().redirector;
  auto member = [&](const char* name, state::MemberState st, uint64_t allocs, const char* udp, bool redirects = false) {
    state::MembershipRecord m;
    m.instance = name;
    m.state = st;
    m.allocations = allocs;
    m.redirects = redirects;
    m.listen = {{Transport::Udp, sa(udp)}, {Transport::Tcp, sa(udp)}};
    return m;
  };
  r.set_members({member(runtime().shared().cfg.instance_id.c_str(), state::MemberState::Serving, 0, "127.0.0.1:1"),
                 member("busy", state::MemberState::Serving, 900, "192.0.2.21:3478"),
                 member("idle", state::MemberState::Serving, 10, "192.0.2.22:3478"),
                 member("leaving", state::MemberState::Draining, 0, "192.0.2.23:3478"),
                 member("front", state::MemberState::Serving, 0, "192.0.2.24:3478", true),
                 member("v6only", state::MemberState::Serving, 0, "[2001:db8::25]:3478")});
  ASSERT_FALSE(r.drain(false)) << "other members serve";
  Reply x = first_allocate();
  ASSERT_EQ(x.error(), 300);
  EXPECT_EQ(x.address(Attr::AlternateServer), sa("192.0.2.22:3478"))
      << "the least-loaded serving one, not this one, not a draining or redirecting one, not another family";
  EXPECT_EQ(r.stats().drain.load(), 1u);
  // The targets go away during the drain: served here, counted.
  r.set_members({});
  SocketAddress relay;
  EXPECT_TRUE(allocated(&relay)->refresh(0).success());
  EXPECT_EQ(r.stats().no_target.load(), 2u) << "its challenged and its authenticated Allocate";
  r.undrain();
}

TEST_F(Redirects, TwoServersNamingEachOtherDoNotBounceAClient) {
  // This server redirects to 192.0.2.31, which is a member that redirects
  // everything itself (its own alternate-server names us back): skipped,
  // so the client is served here instead of going round in a loop.
  restart({"alternate-server=192.0.2.31:3478"});
  auto& r = runtime().shared().redirector;
  state::MembershipRecord other;
  other.instance = "other-front";
  other.redirects = true;
  other.listen = {{Transport::Udp, sa("192.0.2.31:3478")}};
  r.set_members({other});
  SocketAddress relay;
  auto c = allocated(&relay);
  EXPECT_TRUE(c->refresh(0).success());
  EXPECT_EQ(r.stats().alternate.load(), 0u);
}

}  // namespace
}  // namespace turn::cptest
