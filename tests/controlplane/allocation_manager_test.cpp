// SPDX-License-Identifier: Apache-2.0
// The allocation manager and the request handlers through their seams,
// with no event loop and no sockets: a clock the test moves, relay ports
// the test hands out, an AllocationIo and a StateSink that record what
// they are told, and a Responder whose answers go to a sink. Allocate
// (RFC 8656 §7.2) and restore share one install; these tests hold both to
// it, and to expiry (§7, §9, §12), quotas (§7.2 step 8) and ports (§7.2).
#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/stun/attributes.h"
#include "common/stun/builder.h"
#include "common/stun/message.h"
#include "controlplane/config/config.h"
#include "controlplane/server/allocation_manager.h"
#include "controlplane/server/handlers.h"
#include "controlplane/server/responder.h"
#include "controlplane/server/shared_state.h"
#include "controlplane/server/source_limits.h"
#include "controlplane/server/stats.h"

namespace turn::cptest {
namespace {

using cp::Allocation;
using cp::AllocationInfo;
using cp::FiveTuple;
using namespace std::chrono_literals;

constexpr uint64_t kWallStart = 1'800'000'000;

class TestClock final : public cp::Clock {
 public:
  [[nodiscard]] cp::TimePoint now() const noexcept override { return cp::TimePoint{} + 1h + elapsed_; }
  [[nodiscard]] uint64_t now_s() const noexcept override {
    return kWallStart + static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(elapsed_).count());
  }
  void advance(std::chrono::seconds s) { elapsed_ += s; }

 private:
  std::chrono::seconds elapsed_{0};
};

// Ports the test decides: `free` ones are handed out lowest first (an
// eventfd stands in for the socket); open_at() gives any port not `taken`.
class TestPorts final : public cp::RelayPorts {
 public:
  std::set<uint16_t> free;
  std::set<uint16_t> taken;
  std::vector<SocketAddress> opened_at;

  int open_random(const IpAddress&, uint16_t min, uint16_t max, bool even, bool, bool, uint16_t& port_out) override {
    for (uint16_t p : free)
      if (p >= min && p <= max && (!even || p % 2 == 0)) {
        free.erase(p);
        port_out = p;
        return eventfd(0, EFD_CLOEXEC);
      }
    return -1;
  }
  int open_at(const SocketAddress& at, bool) override {
    opened_at.push_back(at);
    if (taken.count(at.port)) {
      errno = EADDRINUSE;
      return -1;
    }
    free.erase(at.port);
    return eventfd(0, EFD_CLOEXEC);
  }
};

struct TestIo final : public cp::AllocationIo {
  std::vector<std::string> served, released;
  void serve(Allocation& a) override { served.push_back(a.info->id); }
  void release(Allocation& a) override {
    released.push_back(a.info->id);
    close(a.relay_fd);
    if (a.relay_fd6 >= 0) close(a.relay_fd6);
  }
};

struct TestSink final : public cp::StateSink {
  std::vector<std::string> events;
  void allocation_created(const std::shared_ptr<AllocationInfo>& a) override { events.push_back("created " + a->id); }
  void allocation_refreshed(const std::shared_ptr<AllocationInfo>& a) override {
    events.push_back("refreshed " + a->id + " " + std::to_string(a->expires_s.load()));
  }
  void allocation_deleted(const std::shared_ptr<AllocationInfo>& a) override { events.push_back("deleted " + a->id); }
  void permission_installed(const std::shared_ptr<AllocationInfo>&, const IpAddress& peer, uint64_t exp) override {
    events.push_back("permission " + peer.to_string() + " " + std::to_string(exp));
  }
  void channel_bound(const std::shared_ptr<AllocationInfo>&, uint16_t ch, const SocketAddress& peer,
                     uint64_t exp) override {
    events.push_back("channel " + std::to_string(ch) + " " + peer.to_string() + " " + std::to_string(exp));
  }
};

cp::Config make_config(const std::vector<std::string>& extra) {
  cp::Config cfg;
  std::vector<std::string> lines = {"realm=test.realm", "relay-ip=127.0.0.1", "relay-ip=::1",
                                    "min-port=50000",   "max-port=50099",     "instance-id=host-a"};
  lines.insert(lines.end(), extra.begin(), extra.end());
  for (const auto& l : lines) cp::apply_config_line(l, "test", cfg);
  return cfg;
}

FiveTuple udp_client(uint16_t port) {
  return FiveTuple{cp::Transport::Udp, SocketAddress{IpAddress::v4(0x0a000001), port},
                   SocketAddress{IpAddress::v4(0x7f000001), 3478}};
}

SocketAddress peer_at(uint32_t v4, uint16_t port) { return SocketAddress{IpAddress::v4(v4), port}; }

class AllocationManagerTest : public ::testing::Test {
 protected:
  explicit AllocationManagerTest(const std::vector<std::string>& extra = {})
      : cfg_(make_config(extra)), shared_(cfg_), manager_(shared_, clock_, ports_, io_) {
    shared_.sinks.push_back(&sink_);
    for (uint16_t p = 50000; p < 50010; ++p) ports_.free.insert(p);
  }

  cp::RelaySockets sockets_at(uint16_t port) {
    cp::RelaySockets s;
    s.fd = eventfd(0, EFD_CLOEXEC);
    s.relay = SocketAddress{IpAddress::v4(0x7f000001), port};
    return s;
  }

  cp::Config cfg_;
  cp::SharedState shared_;
  TestClock clock_;
  TestPorts ports_;
  TestIo io_;
  TestSink sink_;
  cp::AllocationManager manager_;
};

TEST_F(AllocationManagerTest, CreateInstallsFindableServedRegisteredAndAnnounced) {
  auto t = udp_client(40000);
  Allocation& a = manager_.create(t, {}, "alice", sockets_at(50002), 600);
  EXPECT_EQ(manager_.find(t), &a);
  EXPECT_EQ(manager_.size(), 1u);
  EXPECT_EQ(a.info->id, "host-a/127.0.0.1:50002");
  EXPECT_EQ(a.info->tuple, t);
  EXPECT_EQ(a.info->realm, "test.realm");
  EXPECT_EQ(a.info->created_s, kWallStart);
  EXPECT_EQ(a.info->expires_s.load(), kWallStart + 600);
  EXPECT_EQ(a.expires, clock_.now() + 600s);
  EXPECT_EQ(io_.served, std::vector<std::string>{"host-a/127.0.0.1:50002"});
  EXPECT_EQ(shared_.registry.size(), 1u);
  EXPECT_EQ(sink_.events, std::vector<std::string>{"created host-a/127.0.0.1:50002"});
}

TEST_F(AllocationManagerTest, ExpiredAllocationIsDestroyedWhenLookedUp) {
  auto t = udp_client(40000);
  ASSERT_TRUE(manager_.take_quota("alice"));
  manager_.create(t, {}, "alice", sockets_at(50002), 600);
  clock_.advance(599s);
  EXPECT_NE(manager_.find(t), nullptr);
  clock_.advance(1s);
  EXPECT_EQ(manager_.find(t), nullptr);
  EXPECT_EQ(io_.released, std::vector<std::string>{"host-a/127.0.0.1:50002"});
  EXPECT_EQ(shared_.registry.size(), 0u);
  EXPECT_EQ(sink_.events.back(), "deleted host-a/127.0.0.1:50002");
  EXPECT_EQ(shared_.quotas.total(), 0u);  // the quota came back
}

TEST_F(AllocationManagerTest, SweepExpiresPermissionsThenChannelsThenTheAllocation) {
  auto t = udp_client(40000);
  Allocation& a = manager_.create(t, {}, "alice", sockets_at(50002), 3600);
  manager_.permit(a, IpAddress::v4(0x0a000063));  // 300 s (permission lifetime)
  clock_.advance(200s);
  manager_.bind_channel(a, 0x4000, peer_at(0x0a000064, 7000));  // 600 s, and a permission for 300 s
  manager_.publish(a);
  EXPECT_EQ(sink_.events[1], "permission 10.0.0.99 " + std::to_string(kWallStart + 300));
  EXPECT_EQ(sink_.events[2], "permission 10.0.0.100 " + std::to_string(kWallStart + 500));
  EXPECT_EQ(sink_.events[3], "channel 16384 10.0.0.100:7000 " + std::to_string(kWallStart + 800));
  EXPECT_EQ(a.info->permissions.size(), 2u);

  clock_.advance(101s);  // t = 301: the first permission is over
  manager_.sweep();
  EXPECT_FALSE(a.has_permission(IpAddress::v4(0x0a000063), clock_.now()));
  EXPECT_TRUE(a.has_permission(IpAddress::v4(0x0a000064), clock_.now()));
  ASSERT_EQ(a.info->permissions.size(), 1u);  // published
  EXPECT_EQ(a.info->permissions[0].peer, IpAddress::v4(0x0a000064));
  EXPECT_EQ(manager_.live_permissions(a), 1u);

  clock_.advance(500s);  // t = 801: the channel is over, and its permission
  manager_.sweep();
  EXPECT_TRUE(a.channels.empty());
  EXPECT_TRUE(a.channel_by_peer.empty());
  EXPECT_TRUE(a.info->channels.empty());
  EXPECT_TRUE(a.info->permissions.empty());
  EXPECT_EQ(manager_.size(), 1u);

  clock_.advance(2800s);  // t = 3601
  manager_.sweep();
  EXPECT_EQ(manager_.size(), 0u);
  EXPECT_EQ(io_.released.size(), 1u);
}

TEST_F(AllocationManagerTest, RefreshMovesBothClocksAndTellsTheStore) {
  auto t = udp_client(40000);
  Allocation& a = manager_.create(t, {}, "alice", sockets_at(50002), 600);
  clock_.advance(500s);
  manager_.refresh(a, 600);
  EXPECT_EQ(a.expires, clock_.now() + 600s);
  EXPECT_EQ(sink_.events.back(), "refreshed host-a/127.0.0.1:50002 " + std::to_string(kWallStart + 1100));
  clock_.advance(599s);
  EXPECT_NE(manager_.find(t), nullptr);
}

TEST_F(AllocationManagerTest, RestoreRebindsThePortAndBringsPermissionsAndChannelsBack) {
  auto info = std::make_shared<AllocationInfo>();
  info->id = "host-a/127.0.0.1:50005";
  info->relay = SocketAddress{IpAddress::v4(0x7f000001), 50005};
  info->username = "bob";
  info->realm = "test.realm";
  info->expires_s = kWallStart + 400;
  info->permissions.push_back({IpAddress::v4(0x0a000063), kWallStart + 100});
  info->channels.push_back({0x4001, peer_at(0x0a000064, 7000), kWallStart + 250});
  auto t = udp_client(40001);
  ASSERT_TRUE(manager_.restore(t, {}, info));
  Allocation* a = manager_.find(t);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(ports_.opened_at, std::vector<SocketAddress>{info->relay});
  EXPECT_EQ(a->username, "bob");
  EXPECT_EQ(a->expires, clock_.now() + 400s);
  EXPECT_EQ(a->permissions.at(IpAddress::v4(0x0a000063)), clock_.now() + 100s);
  EXPECT_EQ(a->channels.at(0x4001).expires, clock_.now() + 250s);
  EXPECT_EQ(a->channel_by_peer.at(peer_at(0x0a000064, 7000)), 0x4001);
  EXPECT_EQ(io_.served, std::vector<std::string>{info->id});  // the same install as Allocate's
  EXPECT_EQ(shared_.registry.size(), 1u);
  EXPECT_EQ(shared_.quotas.total(), 1u);
  EXPECT_TRUE(sink_.events.empty());  // the store has it already
}

TEST_F(AllocationManagerTest, RestoreRefusedWhenThePortIsTaken) {
  auto info = std::make_shared<AllocationInfo>();
  info->id = "host-a/127.0.0.1:50005";
  info->relay = SocketAddress{IpAddress::v4(0x7f000001), 50005};
  info->username = "bob";
  ports_.taken.insert(50005);
  EXPECT_FALSE(manager_.restore(udp_client(40001), {}, info));
  EXPECT_EQ(manager_.size(), 0u);
  EXPECT_TRUE(io_.served.empty());
  EXPECT_EQ(shared_.quotas.total(), 0u);
}

TEST_F(AllocationManagerTest, RestoreKeepsTheIpv4HalfWhenTheIpv6PortIsTaken) {
  auto info = std::make_shared<AllocationInfo>();
  info->id = "host-a/127.0.0.1:50005";
  info->relay = SocketAddress{IpAddress::v4(0x7f000001), 50005};
  info->relay6 = SocketAddress{*IpAddress::parse("::1"), 50006};
  info->username = "bob";
  info->expires_s = kWallStart + 400;
  ports_.taken.insert(50006);
  auto t = udp_client(40001);
  ASSERT_TRUE(manager_.restore(t, {}, info));
  Allocation* a = manager_.find(t);
  ASSERT_NE(a, nullptr);
  EXPECT_FALSE(a->dual());
  EXPECT_EQ(info->relay6.port, 0);
}

TEST_F(AllocationManagerTest, ClosingAStreamEndsOnlyItsAllocations) {
  auto* stream = reinterpret_cast<cp::StreamConnection*>(0x1000);  // compared, never used
  FiveTuple tcp = udp_client(40002);
  tcp.transport = cp::Transport::Tcp;
  manager_.create(tcp, cp::ClientLink{-1, stream}, "alice", sockets_at(50003), 600);
  manager_.create(udp_client(40003), {}, "alice", sockets_at(50004), 600);
  manager_.close_stream(stream);
  EXPECT_EQ(manager_.size(), 1u);
  EXPECT_EQ(io_.released, std::vector<std::string>{"host-a/127.0.0.1:50003"});
}

class AllocationManagerQuotaTest : public AllocationManagerTest {
 protected:
  AllocationManagerQuotaTest() : AllocationManagerTest({"user-quota=1", "external-ip=203.0.113.7/127.0.0.1"}) {}
};

TEST_F(AllocationManagerQuotaTest, QuotaPerUserAndTheAdvertisedAddress) {
  EXPECT_TRUE(manager_.take_quota("alice"));
  EXPECT_FALSE(manager_.take_quota("alice"));
  EXPECT_TRUE(manager_.take_quota("bob"));
  manager_.return_quota("alice");
  EXPECT_TRUE(manager_.take_quota("alice"));
  Allocation& a = manager_.create(udp_client(40000), {}, "alice", sockets_at(50002), 600);
  EXPECT_EQ(a.info->relay_advertised.to_string(), "203.0.113.7:50002");
  EXPECT_EQ(a.info->relay.to_string(), "127.0.0.1:50002");
}

// ---- handlers over a request and a responder --------------------------------

class AllocateHandlerTest : public AllocationManagerTest {
 protected:
  AllocateHandlerTest()
      : limits_(cfg_, clock_), respond_(shared_, clock_, stats_, limits_), cx_{cfg_,     shared_, manager_,
                                                                               respond_, stats_,  clock_} {
    respond_.set_sink([this](const FiveTuple&, Bytes b) { answers_.emplace_back(b.begin(), b.end()); });
  }

  // An Allocate from `t` that authentication let through as alice (the
  // handler is called directly; the answer carries no integrity then).
  void allocate(const FiveTuple& t, const std::function<void(stun::MessageBuilder&)>& attrs, uint8_t txid_byte = 1) {
    std::array<uint8_t, 12> txid{};
    txid.fill(txid_byte);
    std::array<uint8_t, 512> buf{};
    stun::MessageBuilder b(buf, stun::Method::Allocate, stun::Class::Request, Bytes{txid.data(), txid.size()});
    attrs(b);
    Bytes bytes = b.finish();
    stun::MessageView msg;
    ASSERT_EQ(stun::parse(bytes, msg), stun::ParseError::Ok);
    cp::Request req{msg, t, {}, "alice", {}, false, false};
    cp::handle_allocate(cx_, req);
  }
  static void udp(stun::MessageBuilder& b) { b.add_requested_transport(stun::kTransportUdp); }

  // The last answer: its ERROR-CODE (0 for a success) and an attribute.
  int last_error() {
    stun::MessageView m;
    EXPECT_EQ(stun::parse(answers_.back(), m), stun::ParseError::Ok);
    const auto* e = m.find(stun::Attr::ErrorCode);
    return e ? stun::read_error_code(m.value(*e))->code : 0;
  }
  std::optional<SocketAddress> last_xor(stun::Attr a) {
    stun::MessageView m;
    EXPECT_EQ(stun::parse(answers_.back(), m), stun::ParseError::Ok);
    const auto* v = m.find(a);
    if (!v) return std::nullopt;
    return *stun::read_xor_address(m.value(*v), m.xor_mask());
  }
  std::optional<uint64_t> last_token() {
    stun::MessageView m;
    EXPECT_EQ(stun::parse(answers_.back(), m), stun::ParseError::Ok);
    const auto* v = m.find(stun::Attr::ReservationToken);
    if (!v) return std::nullopt;
    return *stun::read_reservation_token(m.value(*v));
  }

  cp::Stats stats_;
  cp::SourceLimits limits_;
  cp::Responder respond_;
  cp::HandlerContext cx_;
  std::vector<std::vector<uint8_t>> answers_;
};

TEST_F(AllocateHandlerTest, RelayedAddressComesFromThePortSeamAndARetransmissionGetsTheSameAnswer) {
  auto t = udp_client(40000);
  allocate(t, udp);
  ASSERT_EQ(answers_.size(), 1u);
  EXPECT_EQ(last_error(), 0);
  EXPECT_EQ(last_xor(stun::Attr::XorRelayedAddress)->to_string(), "127.0.0.1:50000");
  EXPECT_EQ(last_xor(stun::Attr::XorMappedAddress), t.client);
  allocate(t, udp);  // the same transaction again (RFC 8656 §7.2 step 2)
  ASSERT_EQ(answers_.size(), 2u);
  EXPECT_EQ(answers_[0], answers_[1]);
  allocate(t, udp, 2);  // another one on the same 5-tuple: 437
  EXPECT_EQ(last_error(), 437);
  EXPECT_EQ(manager_.size(), 1u);
}

TEST_F(AllocateHandlerTest, NoFreePortIs508AndTheQuotaComesBack) {
  ports_.free.clear();
  allocate(udp_client(40000), udp);
  EXPECT_EQ(last_error(), 508);
  EXPECT_EQ(manager_.size(), 0u);
  EXPECT_EQ(shared_.quotas.total(), 0u);
}

TEST_F(AllocateHandlerTest, EvenPortWithRBitReservesTheNextPortUnderAToken) {
  ports_.free = {50001, 50002, 50004, 50005};
  ports_.taken = {50003};  // 50002's successor is busy: 50004 and 50005 are the pair
  allocate(udp_client(40000), [](stun::MessageBuilder& b) {
    b.add_requested_transport(stun::kTransportUdp);
    b.add_even_port(true);
  });
  ASSERT_EQ(last_error(), 0);
  EXPECT_EQ(last_xor(stun::Attr::XorRelayedAddress)->port, 50004);
  auto token = last_token();
  ASSERT_TRUE(token.has_value());
  // A later Allocate with the token gets port+1 (§7.2 step 5), once.
  allocate(udp_client(40001), [&](stun::MessageBuilder& b) {
    b.add_requested_transport(stun::kTransportUdp);
    b.add_reservation_token(*token);
  });
  EXPECT_EQ(last_error(), 0);
  EXPECT_EQ(ports_.opened_at.back().port, 50005);
  allocate(udp_client(40002), [&](stun::MessageBuilder& b) {
    b.add_requested_transport(stun::kTransportUdp);
    b.add_reservation_token(*token);
  });
  EXPECT_EQ(last_error(), 508);  // a token is good for one Allocate
  EXPECT_EQ(manager_.size(), 2u);
}

TEST_F(AllocateHandlerTest, AskingWhatIsNotThereIsAnErrorBeforeAnyPortIsTaken) {
  allocate(udp_client(40000), [](stun::MessageBuilder& b) { b.add_requested_transport(99); });
  EXPECT_EQ(last_error(), 442);
  allocate(udp_client(40000), [](stun::MessageBuilder&) {});
  EXPECT_EQ(last_error(), 400);
  allocate(udp_client(40000), [](stun::MessageBuilder& b) {
    b.add_requested_transport(stun::kTransportUdp);
    b.add_even_port(false);
    b.add_reservation_token(7);
  });
  EXPECT_EQ(last_error(), 400);
  allocate(udp_client(40000), [](stun::MessageBuilder& b) {
    b.add_requested_transport(stun::kTransportUdp);
    b.add_reservation_token(7);  // no such token: 508
  });
  EXPECT_EQ(last_error(), 508);
  EXPECT_EQ(ports_.free.size(), 10u);
  EXPECT_EQ(shared_.quotas.total(), 0u);
}

// A failed write to a TCP/TLS client closes its connection, and the close
// ends its allocations (StreamConnection::send -> on_closed ->
// TurnServer::on_stream_closed), from inside the answer the handler is
// sending. Here the responder's sink does what that write does; a Hold
// (what TurnServer takes on every entry from its loop) keeps the
// allocation until the handler is done with it, and then it goes. Without
// the Hold, handle_refresh writes to a freed allocation (ASan build).
TEST_F(AllocateHandlerTest, AStreamClosedByAnAnswerTakesItsAllocationOnlyWhenTheHoldEnds) {
  auto* stream = reinterpret_cast<cp::StreamConnection*>(0x1000);  // compared, never used
  FiveTuple t = udp_client(40000);
  t.transport = cp::Transport::Tcp;
  manager_.create(t, cp::ClientLink{-1, stream}, "alice", sockets_at(50002), 600);
  respond_.set_sink([this, stream](const FiveTuple&, Bytes b) {
    answers_.emplace_back(b.begin(), b.end());
    manager_.close_stream(stream);  // the write failed: the connection closes
  });
  std::array<uint8_t, 12> txid{};
  std::array<uint8_t, 128> buf{};
  stun::MessageBuilder b(buf, stun::Method::Refresh, stun::Class::Request, Bytes{txid.data(), txid.size()});
  b.add_u32(stun::Attr::Lifetime, 900);
  Bytes bytes = b.finish();
  stun::MessageView msg;
  ASSERT_EQ(stun::parse(bytes, msg), stun::ParseError::Ok);
  cp::Request req{msg, t, cp::ClientLink{-1, stream}, "alice", {}, false, false};
  {
    cp::AllocationManager::Hold hold(manager_);
    cp::handle_refresh(cx_, req);
    ASSERT_EQ(answers_.size(), 1u);
    EXPECT_EQ(last_error(), 0);
    EXPECT_EQ(manager_.size(), 1u);  // still here while held
    EXPECT_EQ(sink_.events.back(), "refreshed host-a/127.0.0.1:50002 " + std::to_string(kWallStart + 900));
    manager_.close_stream(stream);  // closed twice: queued twice, ends once
  }
  EXPECT_EQ(manager_.size(), 0u);
  EXPECT_EQ(io_.released, std::vector<std::string>{"host-a/127.0.0.1:50002"});
  EXPECT_EQ(sink_.events.back(), "deleted host-a/127.0.0.1:50002");
}

// Holds nest: only the outermost one's end lets the closed streams'
// allocations go; without any hold, close_stream ends them at once.
TEST_F(AllocationManagerTest, HoldsNestAndAnUnheldCloseIsImmediate) {
  auto* s1 = reinterpret_cast<cp::StreamConnection*>(0x1000);
  auto* s2 = reinterpret_cast<cp::StreamConnection*>(0x2000);
  FiveTuple t1 = udp_client(40001), t2 = udp_client(40002);
  t1.transport = t2.transport = cp::Transport::Tcp;
  manager_.create(t1, cp::ClientLink{-1, s1}, "alice", sockets_at(50002), 600);
  manager_.create(t2, cp::ClientLink{-1, s2}, "alice", sockets_at(50003), 600);
  {
    cp::AllocationManager::Hold outer(manager_);
    {
      cp::AllocationManager::Hold inner(manager_);
      manager_.close_stream(s1);
    }
    EXPECT_EQ(manager_.size(), 2u);
  }
  EXPECT_EQ(manager_.size(), 1u);
  manager_.close_stream(s2);
  EXPECT_EQ(manager_.size(), 0u);
}

}  // namespace
}  // namespace turn::cptest
