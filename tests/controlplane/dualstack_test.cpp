// SPDX-License-Identifier: Apache-2.0
// Dual-stack allocations (RFC 8656 §7.2, ADDITIONAL-ADDRESS-FAMILY): one
// Allocate gets an IPv4 and an IPv6 relayed address; permissions, channels
// and data work on both; both are refreshed and released together. Real
// Runtime on loopback with relay-ip 127.0.0.1 and ::1.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/stun/attributes.h"
#include "tests/controlplane/turn_fixture.h"

namespace turn::cptest {
namespace {

using stun::Attr;
using stun::Method;

class DualStack : public TurnServerFixture {
 protected:
  void SetUp() override { restart({"relay-ip=::1"}); }
};

const IpAddress kV6 = *IpAddress::parse("::1");

void additional_v6(stun::MessageBuilder& b) { b.add_address_family(Attr::AdditionalAddressFamily, Family::V6); }

// Every XOR-RELAYED-ADDRESS of an answer, in order.
std::vector<SocketAddress> relays_of(const Reply& r) {
  std::vector<SocketAddress> out;
  stun::MessageView v;
  if (stun::parse(Bytes{r.raw.data(), r.raw.size()}, v) != stun::ParseError::Ok) return out;
  for (const auto& a : v.attributes())
    if (a.type == static_cast<uint16_t>(Attr::XorRelayedAddress))
      if (auto x = stun::read_xor_address(v.value(a), v.xor_mask())) out.push_back(*x);
  return out;
}

TEST_F(DualStack, OneAllocateGetsBothFamilies) {
  auto c = client();
  Reply r = c->allocate(additional_v6);
  ASSERT_TRUE(r.success()) << r.error();
  auto relays = relays_of(r);
  ASSERT_EQ(relays.size(), 2u);
  EXPECT_TRUE(relays[0].ip.is_v4()) << "IPv4 first";
  EXPECT_EQ(relays[1].ip, kV6);
  EXPECT_FALSE(r.has(Attr::AddressErrorCode));
  ASSERT_TRUE(allocations_become(1));
  auto info = runtime().shared().registry.snapshot().front();
  EXPECT_EQ(info->relay, relays[0]);
  EXPECT_EQ(info->relay6, relays[1]);
}

TEST_F(DualStack, PermissionsChannelsAndDataOnBothHalves) {
  auto c = client();
  Reply r = c->allocate(additional_v6);
  ASSERT_TRUE(r.success()) << r.error();
  auto relays = relays_of(r);
  ASSERT_EQ(relays.size(), 2u);
  UdpPeer p4, p6(kV6);
  // One CreatePermission for peers of both families.
  Reply perm = c->request(Method::CreatePermission, [&](stun::MessageBuilder& b) {
    b.add_xor_address(Attr::XorPeerAddress, p4.address());
    b.add_xor_address(Attr::XorPeerAddress, p6.address());
  });
  ASSERT_TRUE(perm.success()) << perm.error();
  // Send indications leave from the relayed address of the peer's family.
  c->send_indication(p4.address(), as_bytes(std::string("to v4")));
  c->send_indication(p6.address(), as_bytes(std::string("to v6")));
  auto g4 = p4.receive(kReplyTimeoutMs);
  auto g6 = p6.receive(kReplyTimeoutMs);
  ASSERT_TRUE(g4 && g6);
  EXPECT_EQ(g4->from, relays[0]);
  EXPECT_EQ(g6->from, relays[1]);
  // Peers of both families reach the client.
  p6.send_to(relays[1], as_bytes(std::string("from v6")));
  auto f = c->next_frame(kReplyTimeoutMs);
  ASSERT_TRUE(f);
  EXPECT_EQ(Reply{*f}.xor_address(Attr::XorPeerAddress), p6.address());
  EXPECT_EQ(Reply{*f}.data(), to_vec("from v6"));
  // A channel to the IPv6 peer, both ways.
  ASSERT_TRUE(c->channel_bind(0x4001, p6.address()).success());
  c->send_channel_data(0x4001, as_bytes(std::string("cd v6")));
  auto g = p6.receive(kReplyTimeoutMs);
  ASSERT_TRUE(g);
  EXPECT_EQ(g->data, to_vec("cd v6"));
  EXPECT_EQ(g->from, relays[1]);
  p6.send_to(relays[1], as_bytes(std::string("back")));
  auto cd = c->next_frame(kReplyTimeoutMs);
  ASSERT_TRUE(cd);
  auto frame = parse_channel_frame(Bytes{cd->data(), cd->size()});
  ASSERT_TRUE(frame);
  EXPECT_EQ(frame->channel, 0x4001);
  // Both halves' state goes to the state records (the data plane relays
  // both): the shared summary lists the permissions of both families and
  // the IPv6 peer's channel (RFC 8656 §9, §12: per peer, on the relayed
  // address of the peer's family).
  auto info = runtime().shared().registry.snapshot().front();
  std::lock_guard lock(info->mutex);
  ASSERT_EQ(info->permissions.size(), 2u);
  EXPECT_NE(info->permissions[0].peer.is_v4(), info->permissions[1].peer.is_v4());
  ASSERT_EQ(info->channels.size(), 1u);
  EXPECT_EQ(info->channels[0].number, 0x4001);
  EXPECT_EQ(info->channels[0].peer, p6.address());
}

TEST_F(DualStack, RefreshedAndReleasedTogether) {
  auto c = client();
  Reply r = c->allocate(additional_v6);
  ASSERT_TRUE(r.success());
  auto relays = relays_of(r);
  ASSERT_EQ(relays.size(), 2u);
  // Refresh, with or without naming either family.
  EXPECT_TRUE(c->refresh(1200).success());
  EXPECT_TRUE(c->request(Method::Refresh, [](stun::MessageBuilder& b) {
                 b.add_u32(Attr::Lifetime, 900);
                 b.add_address_family(Attr::RequestedAddressFamily, Family::V6);
               }).success());
  UdpPeer p6(kV6);
  ASSERT_TRUE(c->create_permission(p6.address()).success());
  ASSERT_TRUE(c->refresh(0).success());
  ASSERT_TRUE(allocations_become(0));
  // Both relayed addresses are gone: the IPv6 one takes nothing any more.
  p6.send_to(relays[1], as_bytes(std::string("late")));
  EXPECT_FALSE(c->next_frame(300));
}

TEST_F(DualStack, WithoutAnIpv6RelayTheAnswerSaysWhy) {
  restart({});
  auto c = client();
  Reply r = c->allocate(additional_v6);
  ASSERT_TRUE(r.success());
  EXPECT_EQ(relays_of(r).size(), 1u);
  stun::MessageView v;
  ASSERT_EQ(stun::parse(Bytes{r.raw.data(), r.raw.size()}, v), stun::ParseError::Ok);
  const auto* err = v.find(Attr::AddressErrorCode);
  ASSERT_NE(err, nullptr);
  auto e = stun::read_address_error_code(v.value(*err));
  ASSERT_TRUE(e);
  EXPECT_EQ(e->family, Family::V6);
  EXPECT_EQ(e->code, 440);
  // And an IPv6 peer on that IPv4-only allocation: 443.
  EXPECT_EQ(c->create_permission(SocketAddress{kV6, 9}).error(), 443);
}

}  // namespace
}  // namespace turn::cptest
