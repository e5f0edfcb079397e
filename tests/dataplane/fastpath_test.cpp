// SPDX-License-Identifier: Apache-2.0
// dataplane/pipeline/fastpath.h without EAL: process_frame() over a
// std::unordered_map FakeTables (tests/dataplane/fake_tables.h, shared with
// tests/fuzz/fastpath_fuzz.cpp), on Ethernet/IPv4/UDP frames built here with
// a reference checksum (written independently of pipeline/checksum.h).
//
// Every test runs the frame in a buffer with guard bytes on both sides and
// checks them afterwards; punted frames must come back byte-for-byte
// unchanged (the kernel path sees exactly what arrived). A counting global
// operator new proves the fast path never allocates.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <new>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "common/net/address.h"
#include "common/stun/attributes.h"
#include "common/stun/builder.h"
#include "common/stun/constants.h"
#include "common/stun/message.h"
#include "common/turn/channel_data.h"
#include "dataplane/table/routes.h"
#include "dataplane/pipeline/burst.h"
#include "dataplane/pipeline/neighbour_probe.h"
#include "tests/dataplane/fake_tables.h"

// ---- allocation counter ----------------------------------------------------
// Replaces the global allocation functions of this test binary; counts only
// while g_count_allocations is set (gtest itself allocates freely).
namespace {
std::atomic<bool> g_count_allocations{false};
std::atomic<uint64_t> g_allocations{0};
void* counted_alloc(std::size_t n) {
  if (g_count_allocations.load(std::memory_order_relaxed)) g_allocations.fetch_add(1, std::memory_order_relaxed);
  void* p = std::malloc(n == 0 ? 1 : n);
  if (!p) throw std::bad_alloc();
  return p;
}
}  // namespace

void* operator new(std::size_t n) { return counted_alloc(n); }
void* operator new[](std::size_t n) { return counted_alloc(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  if (g_count_allocations.load(std::memory_order_relaxed)) g_allocations.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(n == 0 ? 1 : n);
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  if (g_count_allocations.load(std::memory_order_relaxed)) g_allocations.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(n == 0 ? 1 : n);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }

namespace turn::dp {
namespace {

using namespace fake;  // addresses, FakeTables, Buf, reference checksums

// ---- addresses ---------------------------------------------------------------

SocketAddress sa(uint32_t ip_n, uint16_t port_h) {
  SocketAddress a;
  a.ip = IpAddress::v4(reinterpret_cast<const uint8_t*>(&ip_n));
  a.port = port_h;
  return a;
}

constexpr Mac kRouterMac{{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}};  // where input frames come from
constexpr Mac kClientBHopMac{{0x02, 0x00, 0x00, 0x00, 0xC1, 0x02}};
constexpr Mac kPeer2HopMac{{0x02, 0x00, 0x00, 0x00, 0xEE, 0x02}};
const uint32_t kPeerNoHop = ip4(203, 0, 113, 99);  // permitted, but no neighbour entry

// ---- reference checksums and frame building ---------------------------------

struct Ip4Opts {
  uint8_t tos = 0;
  uint16_t id = 0;
  uint16_t frag = 0x4000;  // DF
  uint8_t ttl = 64;
  bool udp_checksum = true;
};
// What the fast path writes.
const Ip4Opts kOut{};
// What arrives (different on purpose: the fast path must rewrite these).
const Ip4Opts kIn{0xB8, 0xBEEF, 0x0000, 57, true};
const Ip4Opts kInNoCsum{0xB8, 0xBEEF, 0x0000, 57, false};

std::vector<uint8_t> udp_frame(const Mac& dst, const Mac& src, uint32_t sip, uint32_t dip, uint16_t sport_h,
                               uint16_t dport_h, const std::vector<uint8_t>& payload, const Ip4Opts& o = kIn) {
  std::vector<uint8_t> f(42 + payload.size());
  std::memcpy(f.data(), dst.b, 6);
  std::memcpy(f.data() + 6, src.b, 6);
  f[12] = 0x08;
  f[13] = 0x00;
  uint8_t* ip = f.data() + 14;
  ip[0] = 0x45;
  ip[1] = o.tos;
  store_be16(ip + 2, static_cast<uint16_t>(28 + payload.size()));
  store_be16(ip + 4, o.id);
  store_be16(ip + 6, o.frag);
  ip[8] = o.ttl;
  ip[9] = 17;
  std::memcpy(ip + 12, &sip, 4);
  std::memcpy(ip + 16, &dip, 4);
  store_be16(ip + 10, ref_fold_complement(std::vector<uint8_t>(ip, ip + 20)));
  uint8_t* udp = ip + 20;
  store_be16(udp, sport_h);
  store_be16(udp + 2, dport_h);
  store_be16(udp + 4, static_cast<uint16_t>(8 + payload.size()));
  if (!payload.empty()) std::memcpy(udp + 8, payload.data(), payload.size());
  store_be16(udp + 6, o.udp_checksum ? ref_udp_checksum(ip + 12, ip + 16, udp, 8 + payload.size()) : 0);
  return f;
}

// Re-derives both checksums of a frame after a test edited its bytes.
void refresh_checksums(std::vector<uint8_t>& f) {
  uint8_t* ip = f.data() + 14;
  store_be16(ip + 10, 0);
  store_be16(ip + 10, ref_fold_complement(std::vector<uint8_t>(ip, ip + 20)));
  size_t ulen = load_be16(ip + 20 + 4);
  if (load_be16(ip + 20 + 6) != 0) store_be16(ip + 26, ref_udp_checksum(ip + 12, ip + 16, ip + 20, ulen));
}

// Writes a big-endian 16-bit field into a test frame (bounds-checked).
void set16(std::vector<uint8_t>& f, size_t at, uint16_t v) {
  f.at(at) = static_cast<uint8_t>(v >> 8);
  f.at(at + 1) = static_cast<uint8_t>(v);
}

std::vector<uint8_t> pattern(size_t n, uint8_t seed = 1) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed * 31 + i * 7 + (i >> 8));
  return v;
}

std::vector<uint8_t> channel_data(uint16_t channel_h, const std::vector<uint8_t>& data, size_t padding = 0,
                                  uint8_t pad_byte = 0) {
  std::vector<uint8_t> p(4);
  store_be16(p.data(), channel_h);
  store_be16(p.data() + 2, static_cast<uint16_t>(data.size()));
  p.insert(p.end(), data.begin(), data.end());
  p.insert(p.end(), padding, pad_byte);
  return p;
}

// Keeps a payload alive for the test's duration (send_indication takes a pointer).
const std::vector<uint8_t>& static_data(std::vector<uint8_t> v) {
  static std::deque<std::vector<uint8_t>> keep;
  return keep.emplace_back(std::move(v));
}

constexpr std::array<uint8_t, 12> kTxid{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};

enum SendShape : unsigned {
  kSoftwareBefore = 1,   // SOFTWARE (odd length) before XOR-PEER-ADDRESS
  kFingerprint = 2,      // FINGERPRINT last
  kDataFirst = 4,        // DATA before XOR-PEER-ADDRESS
  kUnknownOptional = 8,  // a comprehension-optional attribute between them
};

std::vector<uint8_t> send_indication(const SocketAddress& peer, const std::vector<uint8_t>* data, unsigned shape,
                                     bool with_peer = true) {
  std::vector<uint8_t> buf(4096);
  stun::MessageBuilder b(MutableBytes(buf), stun::Method::Send, stun::Class::Indication, Bytes(kTxid));
  if (shape & kSoftwareBefore) b.add_text(stun::Attr::Software, "dpturn fastpath test!");  // 21 bytes: padded
  if ((shape & kDataFirst) && data) b.add(stun::Attr::Data, Bytes(*data));
  if (with_peer) b.add_xor_address(stun::Attr::XorPeerAddress, peer);
  if (shape & kUnknownOptional) {
    const uint8_t v[5] = {9, 8, 7, 6, 5};
    b.add(uint16_t{0xC0DE}, Bytes(v));
  }
  if (!(shape & kDataFirst) && data) b.add(stun::Attr::Data, Bytes(*data));
  if (shape & kFingerprint) b.add_fingerprint();
  Bytes m = b.finish();
  EXPECT_FALSE(m.empty());
  return {m.begin(), m.end()};
}

std::string hex(const std::vector<uint8_t>& v) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) {
    if (i && i % 16 == 0) s += '\n';
    s += d[v[i] >> 4];
    s += d[v[i] & 15];
    s += ' ';
  }
  return s;
}

// Both checksums of an output frame check out (a full recomputation).
void expect_valid_checksums(const std::vector<uint8_t>& f, bool udp_checksum_expected = true) {
  ASSERT_GE(f.size(), 42u);
  const uint8_t* ip = f.data() + 14;
  EXPECT_EQ(ref_fold_complement(std::vector<uint8_t>(ip, ip + 20)), 0) << "IPv4 header checksum";
  size_t ulen = load_be16(ip + 24);
  ASSERT_EQ(ulen + 34, f.size()) << "UDP length vs frame";
  ASSERT_EQ(load_be16(ip + 2), ulen + 20) << "IPv4 total length";
  uint16_t got = load_be16(ip + 26);
  if (!udp_checksum_expected) {
    EXPECT_EQ(got, 0) << "a datagram without checksum stays without";
    return;
  }
  EXPECT_EQ(got, ref_udp_checksum(ip + 12, ip + 16, ip + 20, ulen)) << "UDP checksum vs full recomputation";
}

// The output frame is exactly `want` (hex dumps of both on failure), and
// both its checksums check out.
void expect_output(const Buf& b, const std::vector<uint8_t>& want, bool udp_checksum_expected = true) {
  EXPECT_EQ(b.out(), want) << "got\n" << hex(b.out()) << "\nwant\n" << hex(want);
  expect_valid_checksums(b.out(), udp_checksum_expected);
}

// ---- fixture -----------------------------------------------------------------

class FastPath : public ::testing::Test {
 protected:
  void SetUp() override {
    a_ = t_.add_alloc(kClientA, kClientAPort, kServer, kRelayAPort);
    t_.add_permission(a_, kPeer1);
    t_.add_permission(a_, kPeer2);
    t_.add_permission(a_, kPeerNoHop);
    t_.add_channel(a_, 0x4000, kPeer1, kPeer1Port);
    t_.add_channel(a_, 0x4001, kPeerNoHop, 1234);
    t_.skip_slots(5);  // B's slot is not A's + 1
    b_ = t_.add_alloc(kClientB, kClientBPort, kRelay2, kRelayBPort);
    t_.add_neighbour(kClientA, kClientHopMac);
    t_.add_neighbour(kClientB, kClientBHopMac);
    t_.add_neighbour(kPeer1, kPeerHopMac);
    t_.add_neighbour(kPeer2, kPeer2HopMac);
  }

  // Runs one frame; checks the guard bytes and the frame's bounds.
  Verdict run(Buf& b, Tsc now = kNow) {
    Verdict v = process_frame(b.f, t_, pc_, now);
    EXPECT_TRUE(b.guards_ok()) << "write outside the buffer";
    EXPECT_TRUE(b.in_bounds());
    return v;
  }
  void expect_punt(std::vector<uint8_t> frame, PuntReason r, Tsc now = kNow) {
    Buf b(std::move(frame));
    Verdict v = run(b, now);
    EXPECT_EQ(v.kind, Verdict::Punt);
    EXPECT_EQ(static_cast<int>(v.punt), static_cast<int>(r)) << kPuntKeys[static_cast<size_t>(v.punt)];
    EXPECT_EQ(b.at_original_place(), b.original()) << "a punted frame goes to the kernel unchanged";
    EXPECT_EQ(b.out(), b.original()) << "... and its offsets too";
  }
  void expect_drop(std::vector<uint8_t> frame, Drop d) {
    Buf b(std::move(frame));
    Verdict v = run(b);
    EXPECT_EQ(v.kind, Verdict::Drop);
    EXPECT_EQ(static_cast<int>(v.drop), static_cast<int>(d)) << kDropKeys[static_cast<size_t>(v.drop)];
  }

  std::vector<uint8_t> from_client_a(const std::vector<uint8_t>& payload, const Ip4Opts& o = kIn) {
    return udp_frame(kPortMac, kRouterMac, kClientA, kServer, kClientAPort, kTurnPort, payload, o);
  }
  std::vector<uint8_t> from_client_b(const std::vector<uint8_t>& payload, const Ip4Opts& o = kIn) {
    return udp_frame(kPortMac, kRouterMac, kClientB, kServer, kClientBPort, kTurnPort, payload, o);
  }
  std::vector<uint8_t> from_peer1(const std::vector<uint8_t>& payload, const Ip4Opts& o = kIn) {
    return udp_frame(kPortMac, kRouterMac, kPeer1, kServer, kPeer1Port, kRelayAPort, payload, o);
  }
  std::vector<uint8_t> from_peer2(const std::vector<uint8_t>& payload, const Ip4Opts& o = kIn) {
    return udp_frame(kPortMac, kRouterMac, kPeer2, kServer, kPeer2Port, kRelayAPort, payload, o);
  }

  // A Data indication behind `headers` bytes of Ethernet/IP/UDP (IPv4 or
  // IPv6): a Data indication whose XOR-PEER-ADDRESS is `peer` and whose
  // DATA is `data`; the parsed message in *parsed if asked.
  static void expect_data_indication_at(const std::vector<uint8_t>& out, size_t headers, const SocketAddress& peer,
                                        const std::vector<uint8_t>& data, stun::MessageView* parsed = nullptr) {
    ASSERT_GT(out.size(), headers);
    Bytes payload(out.data() + headers, out.size() - headers);
    stun::MessageView m;
    ASSERT_EQ(stun::parse(payload, m), stun::ParseError::Ok);
    EXPECT_EQ(m.method(), stun::Method::Data);
    EXPECT_EQ(m.message_class(), stun::Class::Indication);
    const stun::AttributeRef* xp = m.find(stun::Attr::XorPeerAddress);
    ASSERT_NE(xp, nullptr);
    auto addr = stun::read_xor_address(m.value(*xp), m.xor_mask());
    ASSERT_TRUE(addr.ok());
    EXPECT_EQ(addr.value(), peer) << addr.value().to_string() << " vs " << peer.to_string();
    const stun::AttributeRef* d = m.find(stun::Attr::Data);
    ASSERT_NE(d, nullptr);
    Bytes got = m.value(*d);
    EXPECT_EQ(std::vector<uint8_t>(got.begin(), got.end()), data);
    if (parsed) *parsed = m;
  }

  // Checks a Data indication for the given client and returns its DATA.
  void expect_data_indication(const std::vector<uint8_t>& out, const Mac& hop, uint32_t client_ip, uint16_t client_port,
                              const SocketAddress& peer, const std::vector<uint8_t>& data, uint64_t txn,
                              uint32_t alloc_idx, bool checksum = true) {
    ASSERT_GE(out.size(), 42u + 36u);
    EXPECT_EQ(0, std::memcmp(out.data(), hop.b, 6));
    EXPECT_EQ(0, std::memcmp(out.data() + 6, kPortMac.b, 6));
    EXPECT_EQ(0, std::memcmp(out.data() + 26, &kServer, 4));
    EXPECT_EQ(0, std::memcmp(out.data() + 30, &client_ip, 4));
    EXPECT_EQ(load_be16(out.data() + 34), kTurnPort);
    EXPECT_EQ(load_be16(out.data() + 36), client_port);
    expect_valid_checksums(out, checksum);
    Bytes payload(out.data() + 42, out.size() - 42);
    // STUN header, XOR-PEER-ADDRESS of the peer's family (8 or 20 bytes), DATA header.
    EXPECT_EQ(payload.size(), (peer.ip.is_v4() ? 36u : 48u) + pad4(data.size()));
    stun::MessageView m;
    expect_data_indication_at(out, 42, peer, data, &m);
    if (::testing::Test::HasFatalFailure()) return;
    const stun::AttributeRef* d = m.find(stun::Attr::Data);
    for (size_t i = d->offset + d->length; i < payload.size(); ++i) EXPECT_EQ(payload[i], 0) << "padding at " << i;
    EXPECT_EQ(m.attributes().size(), 2u);
    // Transaction id: the worker's counter (8 bytes, host order) then the
    // allocation slot (4 bytes, host order), see peer_to_client.
    uint8_t want[12];
    std::memcpy(want, &txn, 8);
    std::memcpy(want + 8, &alloc_idx, 4);
    EXPECT_EQ(0, std::memcmp(m.transaction_id().data(), want, 12));
  }

  FakeTables t_;
  PortContext pc_ = port_context();
  uint32_t a_ = 0, b_ = 0;
};

// ---- client -> peer, ChannelData ---------------------------------------------

struct CdCase {
  size_t len;
  size_t padding;
  bool checksum;
};

class ChannelDataToPeer : public FastPath, public ::testing::WithParamInterface<CdCase> {};

TEST_P(ChannelDataToPeer, ExactOutputBytes) {
  const CdCase c = GetParam();
  auto data = pattern(c.len, static_cast<uint8_t>(c.len));
  // Padding bytes are not zero on purpose: their sum must come out too.
  Buf b(from_client_a(channel_data(0x4000, data, c.padding, 0xE7), c.checksum ? kIn : kInNoCsum));
  Verdict v = run(b);
  ASSERT_EQ(v.kind, Verdict::Tx);
  EXPECT_EQ(v.path, Path::ChannelDataToPeer);
  EXPECT_TRUE(v.to_peer);
  EXPECT_EQ(v.alloc, a_);
  EXPECT_EQ(v.bytes, c.len);
  Ip4Opts o = kOut;
  o.udp_checksum = c.checksum;
  auto want = udp_frame(kPeerHopMac, kPortMac, kServer, kPeer1, kRelayAPort, kPeer1Port, data, o);
  expect_output(b, want, c.checksum);
}

INSTANTIATE_TEST_SUITE_P(Lengths, ChannelDataToPeer,
                         ::testing::Values(CdCase{0, 0, true}, CdCase{1, 0, true}, CdCase{1, 3, true},
                                           CdCase{2, 0, true}, CdCase{2, 2, true}, CdCase{3, 1, true},
                                           CdCase{4, 0, true}, CdCase{33, 3, true}, CdCase{100, 0, true},
                                           CdCase{101, 0, true}, CdCase{101, 3, true}, CdCase{102, 2, true},
                                           CdCase{1199, 1, true}, CdCase{1200, 0, true}, CdCase{1201, 0, true},
                                           CdCase{1, 0, false}, CdCase{101, 3, false}, CdCase{1200, 0, false},
                                           CdCase{33, 7, true}, CdCase{32, 5, true}));

TEST_F(FastPath, ChannelDataLegacyRangeWhenEnabled) {
  t_.add_channel(a_, 0x6000, kPeer2, kPeer2Port);
  auto data = pattern(50);
  expect_drop(from_client_a(channel_data(0x6000, data)), Drop::BadChannelData);  // RFC 8656 range
  pc_ = port_context(kMaxLegacyChannel);
  Buf b(from_client_a(channel_data(0x6000, data)));
  Verdict v = run(b);
  ASSERT_EQ(v.kind, Verdict::Tx);
  EXPECT_EQ(b.out(), udp_frame(kPeer2HopMac, kPortMac, kServer, kPeer2, kRelayAPort, kPeer2Port, data, kOut));
  // RFC 5766 §11: the legacy range includes 0x7FFF.
  t_.add_channel(a_, 0x7FFF, kPeer2, kPeer2Port);
  Buf last(from_client_a(channel_data(0x7FFF, data)));
  EXPECT_EQ(run(last).kind, Verdict::Tx);
}

// A checksum whose sum comes out as 0 must be sent as 0xFFFF (RFC 768), not 0.
// sum16 sums the body as native 32-bit words: it must equal the plain
// big-endian 16-bit word sum (after folding) for every length, start parity
// and content, all-zero and all-0xFF included.
TEST(Checksum, Sum16MatchesTheByteWiseDefinition) {
  auto reference = [](const uint8_t* p, size_t n, bool odd) {
    uint32_t s = 0;
    size_t i = 0;
    if (odd && n > 0) s += p[i++];
    for (; i + 1 < n; i += 2) s += (uint32_t{p[i]} << 8) | p[i + 1];
    if (i < n) s += uint32_t{p[i]} << 8;
    return fold(s);
  };
  std::mt19937 rng(7);
  std::vector<uint8_t> buf(1600);
  for (int fill = 0; fill < 3; ++fill) {
    for (auto& b : buf) b = fill == 0 ? 0 : fill == 1 ? 0xFF : static_cast<uint8_t>(rng());
    for (size_t n = 0; n <= 200; ++n)
      for (size_t off = 0; off < 4; ++off)
        for (bool odd : {false, true})
          ASSERT_EQ(fold(sum16(buf.data() + off, n, odd)), reference(buf.data() + off, n, odd))
              << "fill " << fill << " n " << n << " off " << off << " odd " << odd;
    ASSERT_EQ(fold(sum16(buf.data(), 1600)), reference(buf.data(), 1600, false));
  }
}

TEST_F(FastPath, ChannelDataChecksumThatFoldsToZeroIsSentAsFFFF) {
  auto data = pattern(20);
  // Tune the last data word so that the relayed datagram's sum is 0xFFFF.
  data[18] = data[19] = 0;
  auto probe = udp_frame(kPeerHopMac, kPortMac, kServer, kPeer1, kRelayAPort, kPeer1Port, data, kOut);
  uint16_t c0 = load_be16(probe.data() + 40);  // ~fold(sum) with the word at 0
  store_be16(data.data() + 18, static_cast<uint16_t>(0xFFFF - static_cast<uint16_t>(~c0)));
  Buf b(from_client_a(channel_data(0x4000, data)));
  ASSERT_EQ(run(b).kind, Verdict::Tx);
  auto out = b.out();
  EXPECT_EQ(load_be16(out.data() + 40), 0xFFFF);
  expect_valid_checksums(out);
}

// ---- client -> peer, Send indication ------------------------------------------

class SendToPeer : public FastPath, public ::testing::WithParamInterface<std::tuple<size_t, unsigned, bool>> {};

TEST_P(SendToPeer, ExactOutputBytes) {
  auto [len, shape, checksum] = GetParam();
  auto data = pattern(len, 3);
  auto msg = send_indication(sa(kPeer2, kPeer2Port), &data, shape);
  Buf b(from_client_a(msg, checksum ? kIn : kInNoCsum));
  Verdict v = run(b);
  ASSERT_EQ(v.kind, Verdict::Tx);
  EXPECT_EQ(v.path, Path::SendIndicationToPeer);
  EXPECT_TRUE(v.to_peer);
  EXPECT_EQ(v.alloc, a_);
  EXPECT_EQ(v.bytes, len);
  Ip4Opts o = kOut;
  o.udp_checksum = checksum;
  auto want = udp_frame(kPeer2HopMac, kPortMac, kServer, kPeer2, kRelayAPort, kPeer2Port, data, o);
  expect_output(b, want, checksum);
}

INSTANTIATE_TEST_SUITE_P(Shapes, SendToPeer,
                         ::testing::Combine(::testing::Values(size_t{0}, size_t{1}, size_t{2}, size_t{3}, size_t{160},
                                                              size_t{161}, size_t{1203}),
                                            ::testing::Values(0u, kSoftwareBefore | kFingerprint,
                                                              kDataFirst | kFingerprint,
                                                              kSoftwareBefore | kUnknownOptional | kFingerprint,
                                                              kSoftwareBefore | kDataFirst | kUnknownOptional),
                                            ::testing::Bool()));

// ---- peer -> client -------------------------------------------------------------

TEST_F(FastPath, PeerToClientChannelData) {
  for (size_t len : {0, 1, 2, 3, 99, 100, 1201}) {
    for (bool checksum : {true, false}) {
      SCOPED_TRACE("len " + std::to_string(len) + (checksum ? " checksum" : " no checksum"));
      auto data = pattern(len, 9);
      Buf b(from_peer1(data, checksum ? kIn : kInNoCsum));
      Verdict v = run(b);
      ASSERT_EQ(v.kind, Verdict::Tx);
      EXPECT_EQ(v.path, Path::PeerToClientChannelData);
      EXPECT_FALSE(v.to_peer);
      EXPECT_EQ(v.alloc, a_);
      EXPECT_EQ(v.bytes, len);
      Ip4Opts o = kOut;
      o.udp_checksum = checksum;
      auto want =
          udp_frame(kClientHopMac, kPortMac, kServer, kClientA, kTurnPort, kClientAPort, channel_data(0x4000, data), o);
      expect_output(b, want, checksum);
    }
  }
}

TEST_F(FastPath, PeerToClientDataIndication) {
  uint64_t txn = 0;
  for (size_t len : {0, 1, 2, 3, 4, 5, 99, 100, 1201}) {
    for (bool checksum : {true, false}) {
      SCOPED_TRACE("len " + std::to_string(len) + (checksum ? " checksum" : " no checksum"));
      auto data = pattern(len, 5);
      Buf b(from_peer2(data, checksum ? kIn : kInNoCsum));
      Verdict v = run(b);
      ASSERT_EQ(v.kind, Verdict::Tx);
      EXPECT_EQ(v.path, Path::PeerToClientDataIndication);
      EXPECT_FALSE(v.to_peer);
      EXPECT_EQ(v.alloc, a_);
      EXPECT_EQ(v.bytes, len);
      expect_data_indication(b.out(), kClientHopMac, kClientA, kClientAPort, sa(kPeer2, kPeer2Port), data, ++txn, a_,
                             checksum);
    }
  }
}

TEST_F(FastPath, PeerToClientExpiredChannelFallsBackToDataIndication) {
  t_.add_channel(a_, 0x4002, kPeer2, kPeer2Port, kNow);  // expires == now: expired
  auto data = pattern(40);
  Buf b(from_peer2(data));
  ASSERT_EQ(run(b).kind, Verdict::Tx);
  expect_data_indication(b.out(), kClientHopMac, kClientA, kClientAPort, sa(kPeer2, kPeer2Port), data, 1, a_);
}

// Ethernet padding after a short datagram (60-byte minimum frames) is not data.
TEST_F(FastPath, EthernetTrailerIsIgnored) {
  auto data = pattern(3);
  auto f = from_peer1(data);
  f.resize(60, 0x77);
  Buf b(f);
  ASSERT_EQ(run(b).kind, Verdict::Tx);
  EXPECT_EQ(b.out(), udp_frame(kClientHopMac, kPortMac, kServer, kClientA, kTurnPort, kClientAPort,
                               channel_data(0x4000, data), kOut));
  auto g = from_client_a(channel_data(0x4000, data));
  g.resize(64, 0x66);
  Buf c(g);
  ASSERT_EQ(run(c).kind, Verdict::Tx);
  EXPECT_EQ(c.out(), udp_frame(kPeerHopMac, kPortMac, kServer, kPeer1, kRelayAPort, kPeer1Port, data, kOut));
}

// ---- relay -> relay (hairpin) -----------------------------------------------------

// A's ChannelData to B's relay address; B has a permission for A's relay IP
// but no channel: a Data indication for client B from A's relay address.
TEST_F(FastPath, HairpinChannelDataToDataIndication) {
  t_.add_channel(a_, 0x4010, kRelay2, kRelayBPort);
  t_.add_permission(a_, kRelay2);
  t_.add_permission(b_, kServer);
  for (size_t len : {1, 2, 77, 1000}) {
    for (bool checksum : {true, false}) {
      SCOPED_TRACE("len " + std::to_string(len));
      auto data = pattern(len, 11);
      Buf b(from_client_a(channel_data(0x4010, data, len & 1 ? 1 : 0, 0xEE), checksum ? kIn : kInNoCsum));
      Verdict v = run(b);
      ASSERT_EQ(v.kind, Verdict::Tx);
      EXPECT_EQ(v.path, Path::Hairpin);
      EXPECT_FALSE(v.to_peer);
      EXPECT_EQ(v.alloc, b_);
      expect_data_indication(b.out(), kClientBHopMac, kClientB, kClientBPort, sa(kServer, kRelayAPort), data, t_.txn,
                             b_, checksum);
    }
  }
}

// ... and with a channel bound on B to A's relay address: ChannelData for B.
TEST_F(FastPath, HairpinSendIndicationToChannelData) {
  t_.add_permission(a_, kRelay2);
  t_.add_permission(b_, kServer);
  t_.add_channel(b_, 0x4567, kServer, kRelayAPort);
  for (size_t len : {0, 1, 2, 333}) {
    SCOPED_TRACE("len " + std::to_string(len));
    auto data = pattern(len, 13);
    Buf b(from_client_a(send_indication(sa(kRelay2, kRelayBPort), &data, kSoftwareBefore | kFingerprint)));
    Verdict v = run(b);
    ASSERT_EQ(v.kind, Verdict::Tx);
    EXPECT_EQ(v.path, Path::Hairpin);
    EXPECT_EQ(v.alloc, b_);
    auto want = udp_frame(kClientBHopMac, kPortMac, kServer, kClientB, kTurnPort, kClientBPort,
                          channel_data(0x4567, data), kOut);
    expect_output(b, want);
  }
}

// The relay -> relay datagram never exists on the wire, but its checksum
// is an intermediate value: one that comes out as 0 means "sum is 0xFFFF",
// not "no checksum", and the client must still get a checksummed datagram.
TEST_F(FastPath, HairpinIntermediateChecksumZero) {
  t_.add_channel(a_, 0x4010, kRelay2, kRelayBPort);
  t_.add_permission(a_, kRelay2);
  t_.add_permission(b_, kServer);
  t_.add_channel(b_, 0x4567, kServer, kRelayAPort);
  auto data = pattern(64, 21);
  data[62] = data[63] = 0;
  // The intermediate datagram: A's relay address -> B's relay address.
  auto mid = udp_frame(kPortMac, kPortMac, kServer, kRelay2, kRelayAPort, kRelayBPort, data, kOut);
  uint16_t c0 = load_be16(mid.data() + 40);
  store_be16(data.data() + 62, static_cast<uint16_t>(0xFFFF - static_cast<uint16_t>(~c0)));
  mid = udp_frame(kPortMac, kPortMac, kServer, kRelay2, kRelayAPort, kRelayBPort, data, kOut);
  ASSERT_EQ(load_be16(mid.data() + 40), 0xFFFF) << "test set-up: the intermediate sum must fold to 0xFFFF";
  Buf b(from_client_a(channel_data(0x4010, data)));
  Verdict v = run(b);
  ASSERT_EQ(v.kind, Verdict::Tx);
  EXPECT_EQ(v.path, Path::Hairpin);
  auto want =
      udp_frame(kClientBHopMac, kPortMac, kServer, kClientB, kTurnPort, kClientBPort, channel_data(0x4567, data), kOut);
  expect_output(b, want);
}

TEST_F(FastPath, HairpinWithoutPermissionOnTheOtherSideIsPunted) {
  t_.add_channel(a_, 0x4010, kRelay2, kRelayBPort);
  t_.add_permission(a_, kRelay2);
  // B has no permission for A's relay IP.
  expect_punt(from_client_a(channel_data(0x4010, pattern(10))), PuntReason::UnknownFlow);
  // A relay IP of ours but a port no allocation holds.
  t_.add_channel(a_, 0x4011, kRelay2, 60000);
  expect_punt(from_client_a(channel_data(0x4011, pattern(10))), PuntReason::UnknownFlow);
  // B expired.
  t_.add_permission(b_, kServer);
  t_.set_alloc_expiry(b_, kNow);
  expect_punt(from_client_a(channel_data(0x4010, pattern(10))), PuntReason::Expired);
}

// ---- punts: unchanged, to the kernel -------------------------------------------------

// A dual-homed host: client C reached turn-control on the internal
// address, which another (kernel) interface owns. Data for C, from a peer
// or hairpinned from A (the case ClientOfAnotherInterfaceIsTheKernelsToAnswer
// leaves out), goes to the kernel unchanged instead of out of
// this port towards the gateway.
TEST_F(FastPath, ClientOnAnotherInterfaceIsPunted) {
  pc_.local4.add(kServer);
  const uint32_t inside_server = ip4(10, 10, 0, 10), inside_client = ip4(10, 10, 0, 50);
  t_.add_neighbour(inside_client, kClientBHopMac);
  uint32_t c = t_.add_alloc(inside_client, 40010, kServer, 49410, kLive, inside_server);
  t_.add_permission(c, kPeer1);
  t_.add_permission(c, kServer);
  expect_punt(udp_frame(kPortMac, kRouterMac, kPeer1, kServer, kPeer1Port, 49410, pattern(8)), PuntReason::NoNeighbour);
  t_.add_channel(a_, 0x4020, kServer, 49410);
  t_.add_permission(a_, kServer);
  expect_punt(from_client_a(channel_data(0x4020, pattern(12))), PuntReason::NoNeighbour);
  // Clients on this port's address still take the fast path.
  Buf b(from_peer1(pattern(8), kIn));
  EXPECT_EQ(run(b).kind, Verdict::Tx);
}

TEST_F(FastPath, PuntUnknownChannel) {
  expect_punt(from_client_a(channel_data(0x4ABC, pattern(10))), PuntReason::UnknownFlow);
  // Bound, but by another client.
  expect_punt(from_client_b(channel_data(0x4000, pattern(10))), PuntReason::UnknownFlow);
}

TEST_F(FastPath, PuntExpired) {
  auto cd = from_client_a(channel_data(0x4000, pattern(10)));
  auto send = from_client_a(send_indication(sa(kPeer2, kPeer2Port), &static_data(pattern(10)), 0));
  // Allocation expired (expires == now, and in the past).
  for (Tsc e : {kNow, kNow - 1}) {
    t_.set_alloc_expiry(a_, e);
    expect_punt(cd, PuntReason::Expired);
    expect_punt(send, PuntReason::Expired);
    expect_punt(from_peer1(pattern(10)), PuntReason::Expired);
    expect_punt(from_peer2(pattern(10)), PuntReason::Expired);
  }
  t_.set_alloc_expiry(a_, kLive);
  // Channel expired (the peer then gets a Data indication; tested above).
  t_.add_channel(a_, 0x4003, kPeer2, kPeer2Port, kNow);
  expect_punt(from_client_a(channel_data(0x4003, pattern(10))), PuntReason::Expired);
  // Same frames at a later time: the entries expire with the clock.
  expect_punt(cd, PuntReason::Expired, kLive);
  expect_punt(from_peer1(pattern(10)), PuntReason::Expired, kLive + 5);
}

TEST_F(FastPath, PuntExpiredPermission) {
  uint32_t c = t_.add_alloc(ip4(198, 51, 100, 30), 40000, kServer, 49400);
  t_.add_neighbour(ip4(198, 51, 100, 30), kClientHopMac);
  t_.add_permission(c, kPeer1, kNow);
  t_.add_channel(c, 0x4000, kPeer1, kPeer1Port);
  auto cd = udp_frame(kPortMac, kRouterMac, ip4(198, 51, 100, 30), kServer, 40000, kTurnPort,
                      channel_data(0x4000, pattern(8)));
  expect_punt(cd, PuntReason::NoPermission);
  auto send = udp_frame(kPortMac, kRouterMac, ip4(198, 51, 100, 30), kServer, 40000, kTurnPort,
                        send_indication(sa(kPeer1, kPeer1Port), &static_data(pattern(8)), 0));
  expect_punt(send, PuntReason::NoPermission);
  auto from_peer = udp_frame(kPortMac, kRouterMac, kPeer1, kServer, kPeer1Port, 49400, pattern(8));
  expect_punt(from_peer, PuntReason::Expired);
}

TEST_F(FastPath, PuntNoPermission) {
  const uint32_t stranger = ip4(203, 0, 113, 77);
  t_.add_neighbour(stranger, kPeer2HopMac);
  // Channel bound but the permission is gone (the sync removed only the permission).
  uint32_t c = t_.add_alloc(ip4(198, 51, 100, 31), 40001, kServer, 49401);
  t_.add_channel(c, 0x4000, stranger, 9);
  expect_punt(udp_frame(kPortMac, kRouterMac, ip4(198, 51, 100, 31), kServer, 40001, kTurnPort,
                        channel_data(0x4000, pattern(8))),
              PuntReason::NoPermission);
  expect_punt(from_client_a(send_indication(sa(stranger, 9), &static_data(pattern(8)), 0)), PuntReason::NoPermission);
  expect_punt(udp_frame(kPortMac, kRouterMac, stranger, kServer, 9, kRelayAPort, pattern(8)), PuntReason::UnknownFlow);
}

TEST_F(FastPath, PuntUnknownNextHop) {
  // Peer without a neighbour entry.
  expect_punt(from_client_a(channel_data(0x4001, pattern(8))), PuntReason::NoNeighbour);
  expect_punt(from_client_a(send_indication(sa(kPeerNoHop, 5), &static_data(pattern(8)), 0)), PuntReason::NoNeighbour);
  // Client without one.
  uint32_t c = t_.add_alloc(ip4(198, 51, 100, 40), 40002, kServer, 49402);
  t_.add_permission(c, kPeer1);
  expect_punt(udp_frame(kPortMac, kRouterMac, kPeer1, kServer, kPeer1Port, 49402, pattern(8)), PuntReason::NoNeighbour);
}

TEST_F(FastPath, PuntStunRequestsAndOtherMethods) {
  std::vector<uint8_t> buf(512);
  stun::MessageBuilder allocate(MutableBytes(buf), stun::Method::Allocate, stun::Class::Request, Bytes(kTxid));
  allocate.add_requested_transport(17).add_fingerprint();
  Bytes m = allocate.finish();
  expect_punt(from_client_a({m.begin(), m.end()}), PuntReason::Control);
  stun::MessageBuilder refresh(MutableBytes(buf), stun::Method::Refresh, stun::Class::Request, Bytes(kTxid));
  refresh.add_u32(stun::Attr::Lifetime, 0);
  m = refresh.finish();
  expect_punt(from_client_a({m.begin(), m.end()}), PuntReason::Control);
  stun::MessageBuilder binding(MutableBytes(buf), stun::Method::Binding, stun::Class::Request, Bytes(kTxid));
  m = binding.finish();
  expect_punt(from_client_b({m.begin(), m.end()}), PuntReason::Control);
  // Not STUN (no magic cookie) and not ChannelData: the kernel decides.
  expect_punt(from_client_a(pattern(30, 0)), PuntReason::NotTurn);  // first byte 0x00
  std::vector<uint8_t> rtp = pattern(30);
  rtp[0] = 0x80;
  expect_punt(from_client_a(rtp), PuntReason::NotTurn);
  expect_punt(from_client_a({}), PuntReason::NotTurn);
  // Channel number 0x3FFF is in the STUN range of the first byte (RFC 7983):
  // not a ChannelData message; without a cookie it is the kernel's to reject.
  expect_punt(from_client_a(channel_data(0x3FFF, pattern(20))), PuntReason::NotTurn);
  // UDP to a port that is neither the TURN port nor a relay port.
  expect_punt(udp_frame(kPortMac, kRouterMac, kPeer1, kServer, kPeer1Port, 22, pattern(8)), PuntReason::NotTurn);
  // Relay port range, but not one of our relay addresses.
  expect_punt(udp_frame(kPortMac, kRouterMac, kPeer1, ip4(192, 0, 2, 99), kPeer1Port, kRelayAPort, pattern(8)),
              PuntReason::NotTurn);
}

// An IPv6 peer in a Send indication on an IPv4 relay: the relay cannot
// reach it (RFC 8656 §10.2 discards); dropped and counted as such.
TEST_F(FastPath, DropIpv6PeerInSendIndicationOnIpv4Relay) {
  SocketAddress v6 = *SocketAddress::parse("[2001:db8::5]:6000");
  auto data = pattern(12);
  expect_drop(from_client_a(send_indication(v6, &data, kSoftwareBefore | kFingerprint)), Drop::FamilyMismatch);
}

TEST_F(FastPath, PuntNonIpv4UdpFrames) {
  // ARP request.
  std::vector<uint8_t> arp(42, 0);
  std::memset(arp.data(), 0xFF, 6);
  std::memcpy(arp.data() + 6, kRouterMac.b, 6);
  store_be16(arp.data() + 12, 0x0806);
  const uint8_t arp_body[] = {0, 1, 8, 0, 6, 4, 0, 1};
  std::memcpy(arp.data() + 14, arp_body, sizeof arp_body);
  std::memcpy(arp.data() + 22, kRouterMac.b, 6);
  expect_punt(arp, PuntReason::Arp);
  // IPv4 with options (IHL 6).
  auto opt = from_client_a(channel_data(0x4000, pattern(8)));
  opt.insert(opt.begin() + 34, {1, 1, 1, 1});
  opt[14] = 0x46;
  store_be16(opt.data() + 16, static_cast<uint16_t>(load_be16(opt.data() + 16) + 4));
  expect_punt(opt, PuntReason::Other);
  // Fragments: first (MF), middle, last (offset only), and DF+MF.
  for (uint16_t frag : {0x2000, 0x2010, 0x0010, 0x6000}) {
    auto f = from_client_a(channel_data(0x4000, pattern(8)));
    store_be16(f.data() + 20, frag);
    refresh_checksums(f);
    expect_punt(f, PuntReason::Other);
  }
  // An IPv6 EtherType over an IPv4 header lies: dropped. VLAN, TCP, ICMP: the kernel's.
  auto v6 = from_client_a(channel_data(0x4000, pattern(8)));
  store_be16(v6.data() + 12, 0x86DD);
  expect_drop(v6, Drop::Malformed);
  auto vlan = from_client_a(channel_data(0x4000, pattern(8)));
  store_be16(vlan.data() + 12, 0x8100);
  expect_punt(vlan, PuntReason::Other);
  for (uint8_t proto : {6, 1}) {
    auto f = from_client_a(channel_data(0x4000, pattern(8)));
    f[23] = proto;
    refresh_checksums(f);
    expect_punt(f, PuntReason::Other);
  }
}

// ---- drops ------------------------------------------------------------------------------

TEST_F(FastPath, DropMalformedFrames) {
  auto good = from_client_a(channel_data(0x4000, pattern(20)));
  // IPv4 total length beyond the frame.
  auto f = good;
  set16(f, 16, static_cast<uint16_t>(((f.at(16) << 8) | f.at(17)) + 1));
  expect_drop(f, Drop::Malformed);
  // Frame cut short (length fields as received).
  expect_drop(std::vector<uint8_t>(good.begin(), good.end() - 5), Drop::Malformed);
  expect_drop(std::vector<uint8_t>(good.begin(), good.begin() + 30), Drop::Malformed);
  expect_drop(std::vector<uint8_t>(good.begin(), good.begin() + 10), Drop::Malformed);
  // UDP length longer than the IP payload.
  f = good;
  store_be16(f.data() + 38, static_cast<uint16_t>(load_be16(f.data() + 38) + 1));
  expect_drop(f, Drop::Malformed);
  // UDP length below its header, IPv4 total below its header / below IP+UDP.
  f = good;
  store_be16(f.data() + 38, 7);
  expect_drop(f, Drop::Malformed);
  f = good;
  store_be16(f.data() + 16, 19);
  expect_drop(f, Drop::Malformed);
  f = good;
  store_be16(f.data() + 16, 27);
  expect_drop(f, Drop::Malformed);
  // Not version 4.
  f = good;
  f[14] = 0x55;
  expect_drop(f, Drop::Malformed);
}

TEST_F(FastPath, DropCorruptedIpv4HeaderChecksum) {
  // A header whose checksum does not verify (a TTL bit flipped in transit)
  // must not be forwarded under a freshly computed checksum.
  auto f = from_client_a(channel_data(0x4000, pattern(20)));
  f[14 + 8] ^= 0x01;
  expect_drop(f, Drop::Malformed);
}

TEST_F(FastPath, DropBadChannelData) {
  // Length field beyond the datagram.
  auto p = channel_data(0x4000, pattern(20));
  store_be16(p.data() + 2, 21);
  expect_drop(from_client_a(p), Drop::BadChannelData);
  // Shorter than its header.
  expect_drop(from_client_a({0x40, 0x00, 0x00}), Drop::BadChannelData);
  // Reserved channel numbers (RFC 8656 §12).
  expect_drop(from_client_a(channel_data(0x5000, pattern(4))), Drop::BadChannelData);
  expect_drop(from_client_a(channel_data(0x7FFF, pattern(4))), Drop::BadChannelData);
}

TEST_F(FastPath, DropBadSendIndication) {
  auto data = pattern(10);
  expect_drop(from_client_a(send_indication(sa(kPeer2, kPeer2Port), nullptr, kSoftwareBefore | kFingerprint)),
              Drop::BadSendIndication);
  expect_drop(from_client_a(send_indication(sa(kPeer2, kPeer2Port), &data, kSoftwareBefore, false)),
              Drop::BadSendIndication);
  // STUN length disagreeing with the datagram.
  auto m = send_indication(sa(kPeer2, kPeer2Port), &data, 0);
  auto longer = m;
  longer.push_back(0);
  expect_drop(from_client_a(longer), Drop::BadSendIndication);
  // An attribute running past the message.
  auto overrun = m;
  store_be16(overrun.data() + 20 + 12 + 2, 200);  // DATA's length (after the 12-byte XOR-PEER-ADDRESS)
  expect_drop(from_client_a(overrun), Drop::BadSendIndication);
  // XOR-PEER-ADDRESS of the wrong size or family.
  auto bad = m;
  bad[20 + 5] = 0x03;
  expect_drop(from_client_a(bad), Drop::BadSendIndication);
  bad = m;
  store_be16(bad.data() + 22, 4);  // length 4: the following bytes become attributes
  expect_drop(from_client_a(bad), Drop::BadSendIndication);
}

// ---- no room: never write outside the buffer ---------------------------------------------

TEST_F(FastPath, NoHeadroomForDataIndicationIsTooBig) {
  auto data = pattern(100);
  for (uint16_t headroom : {0, 1, 20, 35}) {
    Buf b(from_peer2(data), headroom);
    Verdict v = run(b);
    EXPECT_EQ(v.kind, Verdict::Drop) << headroom;
    EXPECT_EQ(v.drop, Drop::TooBig);
  }
  Buf ok(from_peer2(data), 36, 0);  // exactly enough: 36 bytes in front, 100 needs no padding
  EXPECT_EQ(run(ok).kind, Verdict::Tx);
  // Tailroom for the padding: 101 bytes need 3 more at the end.
  auto odd = pattern(101);
  Buf tight(from_peer2(odd), 64, 2);
  Verdict v = run(tight);
  EXPECT_EQ(v.kind, Verdict::Drop);
  EXPECT_EQ(v.drop, Drop::TooBig);
  Buf fits(from_peer2(odd), 36, 3);
  ASSERT_EQ(run(fits).kind, Verdict::Tx);
  expect_data_indication(fits.out(), kClientHopMac, kClientA, kClientAPort, sa(kPeer2, kPeer2Port), odd, t_.txn, a_);
}

TEST_F(FastPath, NoHeadroomForChannelDataToClientIsTooBig) {
  for (uint16_t headroom : {0, 3}) {
    Buf b(from_peer1(pattern(50)), headroom, 0);
    Verdict v = run(b);
    EXPECT_EQ(v.kind, Verdict::Drop);
    EXPECT_EQ(v.drop, Drop::TooBig);
  }
  Buf b(from_peer1(pattern(50)), 4, 0);
  EXPECT_EQ(run(b).kind, Verdict::Tx);
  // Hairpin into a Data indication with no room.
  t_.add_channel(a_, 0x4010, kRelay2, kRelayBPort);
  t_.add_permission(a_, kRelay2);
  t_.add_permission(b_, kServer);
  Buf h(from_client_a(channel_data(0x4010, pattern(50))), 31, 0);  // 4 come free from the ChannelData header
  Verdict v = run(h);
  EXPECT_EQ(v.kind, Verdict::Drop);
  EXPECT_EQ(v.drop, Drop::TooBig);
}

// ---- properties over many generated frames -------------------------------------------------

// Valid frames of every forwarding kind, random lengths and checksum use: the
// output always carries the payload and checksums that a full recomputation
// agrees with.
TEST_F(FastPath, RandomValidFramesForwardWithExactChecksums) {
  t_.add_channel(a_, 0x4010, kRelay2, kRelayBPort);
  t_.add_permission(a_, kRelay2);
  t_.add_permission(b_, kServer);
  std::mt19937 rng(20240611);
  for (int i = 0; i < 3000; ++i) {
    size_t len = rng() % 1400;
    bool checksum = rng() % 4 != 0;
    auto data = pattern(len, static_cast<uint8_t>(rng()));
    for (auto& x : data)
      if (rng() % 3 == 0) x = static_cast<uint8_t>(rng());
    const Ip4Opts& o = checksum ? kIn : kInNoCsum;
    std::vector<uint8_t> frame;
    unsigned kind = rng() % 5;
    switch (kind) {
      case 0:
        frame = from_client_a(channel_data(0x4000, data, rng() % 4, static_cast<uint8_t>(rng())), o);
        break;
      case 1:
        frame = from_client_a(send_indication(sa(kPeer2, kPeer2Port), &data, rng() % 16), o);
        break;
      case 2:
        frame = from_peer1(data, o);
        break;
      case 3:
        frame = from_peer2(data, o);
        break;
      default:
        frame = from_client_a(channel_data(0x4010, data, rng() % 4, static_cast<uint8_t>(rng())), o);
        break;
    }
    Buf b(frame, static_cast<uint16_t>(36 + rng() % 100));
    Verdict v = run(b);
    ASSERT_EQ(v.kind, Verdict::Tx) << "iteration " << i << " kind " << kind;
    auto out = b.out();
    expect_valid_checksums(out, checksum);
    if (HasFailure()) FAIL() << "iteration " << i << " kind " << kind << " len " << len;
  }
}

// Mutated frames: whatever the verdict, nothing outside the buffer is
// touched, a Tx frame stays inside it with a valid IPv4 header checksum, and
// a punted frame is unchanged.
TEST_F(FastPath, MutatedFramesNeverEscapeTheBuffer) {
  t_.add_channel(a_, 0x4010, kRelay2, kRelayBPort);
  t_.add_permission(a_, kRelay2);
  t_.add_permission(b_, kServer);
  auto data = pattern(48);
  std::vector<std::vector<uint8_t>> seeds = {
      from_client_a(channel_data(0x4000, data, 2)),
      from_client_a(send_indication(sa(kPeer2, kPeer2Port), &data, kSoftwareBefore | kFingerprint)),
      from_peer1(data),
      from_peer2(data),
      from_client_a(channel_data(0x4010, data)),
  };
  std::mt19937 rng(7);
  for (int i = 0; i < 20000; ++i) {
    auto f = seeds[rng() % seeds.size()];
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      switch (rng() % 4) {
        case 0:
          f[rng() % f.size()] = static_cast<uint8_t>(rng());
          break;
        case 1:
          f.resize(rng() % (f.size() + 1));
          break;
        case 2: {  // a length field near its frame's edges
          size_t at = std::array<size_t, 4>{16, 38, 44, 42 + 2}[rng() % 4];
          if (at + 2 <= f.size()) store_be16(f.data() + at, static_cast<uint16_t>(rng() % 2 ? rng() : rng() % 128));
          break;
        }
        default:
          f.push_back(static_cast<uint8_t>(rng()));
          break;
      }
      if (f.empty()) break;
    }
    Buf b(f, static_cast<uint16_t>(rng() % 80), static_cast<uint16_t>(rng() % 8));
    Verdict v = run(b);
    if (v.kind == Verdict::Tx) {
      auto out = b.out();
      ASSERT_GE(out.size(), 42u);
      EXPECT_EQ(ref_fold_complement(std::vector<uint8_t>(out.data() + 14, out.data() + 34)), 0);
      EXPECT_EQ(load_be16(out.data() + 16) + 14u, out.size());
    } else if (v.kind == Verdict::Punt) {
      EXPECT_EQ(b.at_original_place(), b.original());
    }
    if (HasFailure()) FAIL() << "iteration " << i << "\n" << hex(f);
  }
}

// ---- no allocation ------------------------------------------------------------------------------

TEST_F(FastPath, NeverAllocates) {
  t_.add_channel(a_, 0x4010, kRelay2, kRelayBPort);
  t_.add_permission(a_, kRelay2);
  t_.add_permission(b_, kServer);
  auto data = pattern(101);
  std::vector<uint8_t> stunbuf(512);
  stun::MessageBuilder allocate(MutableBytes(stunbuf), stun::Method::Allocate, stun::Class::Request, Bytes(kTxid));
  allocate.add_requested_transport(17);
  Bytes alloc_req = allocate.finish();
  auto bad_len = from_client_a(channel_data(0x4000, data));
  store_be16(bad_len.data() + 16, 2000);
  std::vector<Buf> bufs;
  bufs.emplace_back(from_client_a(channel_data(0x4000, data, 3)));  // CD -> peer
  bufs.emplace_back(from_client_a(send_indication(sa(kPeer2, kPeer2Port), &data, kSoftwareBefore | kFingerprint)));
  bufs.emplace_back(from_peer1(data));                                     // -> CD
  bufs.emplace_back(from_peer2(data));                                     // -> Data ind.
  bufs.emplace_back(from_client_a(channel_data(0x4010, data)));            // hairpin
  bufs.emplace_back(from_client_a(channel_data(0x4ABC, data)));            // punt
  bufs.emplace_back(from_client_a({alloc_req.begin(), alloc_req.end()}));  // punt
  bufs.emplace_back(bad_len);                                              // drop
  bufs.emplace_back(from_client_a(channel_data(0x5000, data)));            // drop
  bufs.emplace_back(from_peer2(data), 0);                                  // too big
  std::vector<Verdict> verdicts(bufs.size());
  uint64_t before = g_allocations.load();
  g_count_allocations = true;
  for (int i = 0; i < 1000; ++i) {
    for (size_t k = 0; k < bufs.size(); ++k) {
      bufs[k].reset();
      verdicts[k] = process_frame(bufs[k].f, t_, pc_, kNow);
    }
  }
  g_count_allocations = false;
  EXPECT_EQ(g_allocations.load() - before, 0u) << "process_frame allocated";
  // The loop did exercise every kind.
  EXPECT_EQ(verdicts[0].path, Path::ChannelDataToPeer);
  EXPECT_EQ(verdicts[1].path, Path::SendIndicationToPeer);
  EXPECT_EQ(verdicts[2].path, Path::PeerToClientChannelData);
  EXPECT_EQ(verdicts[3].path, Path::PeerToClientDataIndication);
  EXPECT_EQ(verdicts[4].path, Path::Hairpin);
  EXPECT_EQ(verdicts[5].kind, Verdict::Punt);
  EXPECT_EQ(verdicts[6].kind, Verdict::Punt);
  EXPECT_EQ(verdicts[7].drop, Drop::Malformed);
  EXPECT_EQ(verdicts[8].drop, Drop::BadChannelData);
  EXPECT_EQ(verdicts[9].drop, Drop::TooBig);
  // The counter does count (the test would pass vacuously otherwise).
  g_count_allocations = true;
  int* volatile p = new int(1);  // volatile: the compiler may not elide the new/delete pair
  g_count_allocations = false;
  delete p;
  EXPECT_EQ(g_allocations.load() - before, 1u);
}

// ---- whole bursts (dataplane/pipeline/burst.h, as the worker runs them) --------------------------

// A burst is classified whole, its IPv4 keys looked up in bulk, then each
// frame's stage runs with what was found for it: every frame gets the
// verdict and the bytes it gets alone, in order, including a burst longer
// than kMaxBurst (decided in chunks) and frames that need no lookup, miss,
// or hairpin into a second decision.
TEST_F(FastPath, ABurstDecidesEachFrameAsItWouldAlone) {
  t_.add_channel(a_, 0x4010, kRelay2, kRelayBPort);
  t_.add_permission(a_, kRelay2);
  t_.add_permission(b_, kServer);
  auto data = pattern(57);
  std::vector<uint8_t> stunbuf(512);
  stun::MessageBuilder refresh(MutableBytes(stunbuf), stun::Method::Refresh, stun::Class::Request, Bytes(kTxid));
  Bytes refresh_req = refresh.finish();
  auto bad_len = from_client_a(channel_data(0x4000, data));
  store_be16(bad_len.data() + 16, 2000);
  std::vector<uint8_t> arp(42);
  ASSERT_EQ(write_arp_request(arp.data(), kRouterMac, kClientA, kServer), 42u);
  auto kinds = [&] {
    std::vector<Buf> v;
    v.emplace_back(from_client_a(channel_data(0x4000, data, 3)));  // CD -> peer
    v.emplace_back(from_peer1(data));                              // -> CD
    v.emplace_back(from_client_a(send_indication(sa(kPeer2, kPeer2Port), &data, kFingerprint)));
    v.emplace_back(from_peer2(data));                                         // -> Data indication (a txn id)
    v.emplace_back(from_client_a(channel_data(0x4010, data)));                // hairpin
    v.emplace_back(from_client_a(channel_data(0x4ABC, data)));                // unknown channel: punt
    v.emplace_back(from_client_a({refresh_req.begin(), refresh_req.end()}));  // a request: punt
    v.emplace_back(bad_len);                                                  // drop, no lookup
    v.emplace_back(arp);                                                      // punt, no lookup
    v.emplace_back(from_peer2(data), 0);                                      // too big
    return v;
  };
  for (size_t n : {size_t{1}, size_t{10}, size_t{kMaxBurst}, size_t{3} * kMaxBurst + 7}) {
    std::vector<Buf> alone, burst;
    while (alone.size() < n)
      for (auto& b : kinds())
        if (alone.size() < n) alone.push_back(std::move(b));
    while (burst.size() < n)
      for (auto& b : kinds())
        if (burst.size() < n) burst.push_back(std::move(b));
    t_.txn = 100;
    std::vector<Verdict> want(n);
    for (size_t k = 0; k < n; ++k) want[k] = run(alone[k]);
    t_.txn = 100;
    std::vector<Frame> frames(n);
    for (size_t k = 0; k < n; ++k) frames[k] = burst[k].f;
    std::vector<Verdict> got(n);
    decide_burst(frames.data(), got.data(), static_cast<uint16_t>(n), t_, pc_, kNow);
    std::set<int> paths;
    for (size_t k = 0; k < n; ++k) {
      burst[k].f = frames[k];
      EXPECT_TRUE(burst[k].guards_ok() && burst[k].in_bounds()) << "frame " << k << " of " << n;
      EXPECT_EQ(got[k].kind, want[k].kind) << "frame " << k << " of " << n;
      EXPECT_EQ(got[k].path, want[k].path) << "frame " << k << " of " << n;
      EXPECT_EQ(got[k].punt, want[k].punt) << "frame " << k << " of " << n;
      EXPECT_EQ(got[k].drop, want[k].drop) << "frame " << k << " of " << n;
      EXPECT_EQ(got[k].alloc, want[k].alloc) << "frame " << k << " of " << n;
      EXPECT_EQ(burst[k].out(), alone[k].out()) << "frame " << k << " of " << n;
      paths.insert(got[k].kind == Verdict::Tx ? static_cast<int>(got[k].path) : -1 - static_cast<int>(got[k].kind));
    }
    if (n >= 10) {
      EXPECT_EQ(paths.size(), 7u) << "five forwarding paths, punts and drops, in a burst of " << n;
    }
  }
}

// ---- several ports: route-based egress, the egress port's MAC, tx checksum offload

// ChannelData from a client on port 0 to a peer whose next hop is on port 1
// (the internal side of a dual-homed edge): leaves by port 1 with port 1's
// MAC as the source; the reply from the peer leaves by port 0.
TEST_F(FastPath, EgressPortAndSourceMacFollowTheRoute) {
  t_.add_neighbour(kPeer1, kPeerHopMac, 1);
  auto data = pattern(100);
  Buf b(from_client_a(channel_data(0x4000, data)));
  Verdict v = run(b);
  ASSERT_EQ(v.kind, Verdict::Tx);
  EXPECT_EQ(v.port, 1);
  EXPECT_FALSE(v.offload);
  EXPECT_EQ(b.out(), udp_frame(kPeerHopMac, kPort1Mac, kServer, kPeer1, kRelayAPort, kPeer1Port, data, kOut));
  Buf r(from_peer1(data));
  Verdict w = run(r);
  ASSERT_EQ(w.kind, Verdict::Tx);
  EXPECT_EQ(w.port, 0);
  EXPECT_EQ(0, std::memcmp(r.out().data() + 6, kPortMac.b, 6));
}

// What a NIC with IPv4/UDP tx checksum offload does to the frame (DPDK's
// contract: IPv4 checksum field 0, UDP checksum field = pseudo-header sum).
std::vector<uint8_t> complete_offload(std::vector<uint8_t> f) {
  EXPECT_EQ(load_be16(f.data() + 24), 0) << "IPv4 checksum is left to the port";
  uint32_t s = 0;
  for (size_t i = 14; i < 34; i += 2) s += load_be16(f.data() + i);
  while (s >> 16) s = (s & 0xFFFF) + (s >> 16);
  store_be16(f.data() + 24, static_cast<uint16_t>(~s));
  uint32_t u = 0;  // UDP header + payload, the field holding the pseudo-header sum
  for (size_t i = 34; i < f.size(); i += 2) u += (uint32_t{f[i]} << 8) | (i + 1 < f.size() ? f[i + 1] : 0);
  while (u >> 16) u = (u & 0xFFFF) + (u >> 16);
  uint16_t c = static_cast<uint16_t>(~u);
  store_be16(f.data() + 40, c == 0 ? 0xFFFF : c);
  return f;
}

// A client that reached turn-control on an address none of our ports
// carries (the kernel-owned interface of a dual-homed host): its peer data
// goes to the kernel, which answers from that address over that interface.
TEST_F(FastPath, ClientOfAnotherInterfaceIsTheKernelsToAnswer) {
  auto data = pattern(30);
  pc_.local4.add(kServer);
  Buf ours(from_peer1(data));
  EXPECT_EQ(run(ours).kind, Verdict::Tx) << "the client talks to this port's address";
  pc_.local4 = {};
  pc_.local4.add(ip4(192, 0, 2, 99));
  expect_punt(from_peer1(data), PuntReason::NoNeighbour);
}

TEST_F(FastPath, ChecksumOffloadLeavesExactlyWhatTheNicCompletes) {
  for (bool to_port1 : {false, true}) {
    t_.add_neighbour(kPeer1, kPeerHopMac, to_port1 ? 1 : 0);
    for (size_t len : {0u, 1u, 7u, 200u, 1201u}) {
      auto data = pattern(len, static_cast<uint8_t>(len));
      // Software checksums (no offload anywhere) are the reference.
      pc_.csum_offload = 0;
      Buf soft(from_client_a(channel_data(0x4000, data)));
      ASSERT_EQ(run(soft).kind, Verdict::Tx);
      // Offload on port 1 only: only frames leaving by port 1 use it.
      pc_.csum_offload = 0b10;
      Buf hard(from_client_a(channel_data(0x4000, data)));
      Verdict v = run(hard);
      ASSERT_EQ(v.kind, Verdict::Tx);
      EXPECT_EQ(v.offload, to_port1);
      EXPECT_EQ(v.port, to_port1 ? 1 : 0);
      auto got = to_port1 ? complete_offload(hard.out()) : hard.out();
      EXPECT_EQ(got, soft.out()) << "len " << len << " port " << to_port1;
      // Peer -> client (ChannelData and Data indication) through port 1 too.
    }
  }
  pc_.csum_offload = 0b01;
  auto data = pattern(33);
  Buf soft_in(from_peer1(data));
  pc_.csum_offload = 0;
  ASSERT_EQ(run(soft_in).kind, Verdict::Tx);
  pc_.csum_offload = 0b01;
  Buf hard_in(from_peer1(data));
  Verdict v = run(hard_in);
  ASSERT_EQ(v.kind, Verdict::Tx);
  EXPECT_TRUE(v.offload);
  EXPECT_EQ(complete_offload(hard_in.out()), soft_in.out());
}

uint32_t cidr_mask(unsigned bits) { return bits == 0 ? 0 : htonl(~uint32_t{0} << (32 - bits)); }

TEST(RouteTable, LinksThenLongestRouteThenDefault) {
  RouteTable rt;
  // port 0: external 192.0.2.10/24 with the default gateway .1;
  // port 1: internal 10.1.0.10/16; 10.2.0.0/16 and 10.2.5.0/24 behind internal routers.
  rt.set({{ip4(192, 0, 2, 10), cidr_mask(24), ip4(192, 0, 2, 1)}, {ip4(10, 1, 0, 10), cidr_mask(16), 0}},
         {{ip4(10, 2, 0, 0), cidr_mask(16), ip4(10, 1, 0, 1)}, {ip4(10, 2, 5, 0), cidr_mask(24), ip4(10, 1, 0, 2)}});
  uint8_t port = 99;
  uint32_t hop = 0;
  ASSERT_TRUE(rt.route(ip4(192, 0, 2, 77), port, hop));
  EXPECT_EQ(port, 0);
  EXPECT_EQ(hop, ip4(192, 0, 2, 77)) << "on link: the destination itself";
  ASSERT_TRUE(rt.route(ip4(10, 1, 200, 3), port, hop));
  EXPECT_EQ(port, 1);
  EXPECT_EQ(hop, ip4(10, 1, 200, 3));
  ASSERT_TRUE(rt.route(ip4(10, 2, 9, 9), port, hop));
  EXPECT_EQ(port, 1);
  EXPECT_EQ(hop, ip4(10, 1, 0, 1));
  ASSERT_TRUE(rt.route(ip4(10, 2, 5, 9), port, hop));
  EXPECT_EQ(hop, ip4(10, 1, 0, 2)) << "longest prefix wins whatever the config order";
  ASSERT_TRUE(rt.route(ip4(8, 8, 8, 8), port, hop));
  EXPECT_EQ(port, 0);
  EXPECT_EQ(hop, ip4(192, 0, 2, 1)) << "default gateway";
  EXPECT_TRUE(rt.on_link(1, ip4(10, 1, 3, 4)));
  EXPECT_FALSE(rt.on_link(0, ip4(10, 1, 3, 4)));
  EXPECT_FALSE(rt.on_link(7, ip4(10, 1, 3, 4))) << "no such port";

  RouteTable no_default;
  no_default.set({{ip4(10, 1, 0, 10), cidr_mask(16), 0}}, {});
  EXPECT_FALSE(no_default.route(ip4(8, 8, 8, 8), port, hop)) << "nothing routes it: the kernel path decides";

  RouteTable bad;
  EXPECT_THROW(bad.set({{ip4(10, 1, 0, 10), cidr_mask(16), 0}}, {{ip4(10, 2, 0, 0), cidr_mask(16), ip4(10, 9, 0, 1)}}),
               std::invalid_argument);
  EXPECT_THROW(bad.set({}, {}), std::invalid_argument);
}

// ---- IPv6 flows ----------------------------------------------------------------

Ip6 ip6(const char* text) {
  Ip6 a{};
  EXPECT_EQ(inet_pton(AF_INET6, text, a.b), 1) << text;
  return a;
}

std::vector<uint8_t> udp6_frame(const Mac& dst, const Mac& src, const Ip6& sip, const Ip6& dip, uint16_t sport_h,
                                uint16_t dport_h, const std::vector<uint8_t>& payload, uint8_t hop_limit = 64,
                                uint32_t flow = 0) {
  std::vector<uint8_t> f(62 + payload.size());
  std::memcpy(f.data(), dst.b, 6);
  std::memcpy(f.data() + 6, src.b, 6);
  store_be16(f.data() + 12, 0x86DD);
  uint8_t* ip = f.data() + 14;
  store_be32(ip, 0x60000000u | flow);
  store_be16(ip + 4, static_cast<uint16_t>(8 + payload.size()));
  ip[6] = 17;
  ip[7] = hop_limit;
  std::memcpy(ip + 8, sip.b, 16);
  std::memcpy(ip + 24, dip.b, 16);
  uint8_t* udp = ip + 40;
  store_be16(udp, sport_h);
  store_be16(udp + 2, dport_h);
  store_be16(udp + 4, static_cast<uint16_t>(8 + payload.size()));
  if (!payload.empty()) std::memcpy(udp + 8, payload.data(), payload.size());
  store_be16(udp + 6, ref_udp6_checksum(ip + 8, ip + 24, udp, 8 + payload.size()));
  return f;
}

class FastPath6 : public FastPath {
 protected:
  const Ip6 kServer6 = ip6("2001:db8:1::10");
  const Ip6 kClient6 = ip6("2001:db8:c::2");
  const Ip6 kPeer6 = ip6("2001:db8:2::5");
  const Ip6 kRelay6b = ip6("2001:db8:1::11");
  void SetUp() override {
    FastPath::SetUp();
    pc_.relay6.add(kServer6);
    pc_.relay6.add(kRelay6b);
    a6_ = t_.add_alloc6(kClient6, kClientAPort, kServer6, kTurnPort, kServer6, kRelayAPort);
    t_.add_permission6(a6_, kPeer6);
    t_.add_channel6(a6_, 0x4000, kPeer6, kPeer1Port);
    t_.add_neighbour6(kClient6, kClientHopMac, 0);
    t_.add_neighbour6(kPeer6, kPeerHopMac, 1);
  }
  std::vector<uint8_t> from_client6(const std::vector<uint8_t>& payload) {
    return udp6_frame(kPortMac, kRouterMac, kClient6, kServer6, kClientAPort, kTurnPort, payload, 51, 0x12345);
  }
  std::vector<uint8_t> from_peer6(const std::vector<uint8_t>& payload) {
    return udp6_frame(kPort1Mac, kRouterMac, kPeer6, kServer6, kPeer1Port, kRelayAPort, payload, 51);
  }
  uint32_t a6_ = 0;
};

TEST_F(FastPath6, ChannelDataToPeerExactBytes) {
  for (size_t len : {0u, 1u, 3u, 160u, 1201u}) {
    auto data = pattern(len, static_cast<uint8_t>(len));
    for (size_t padding : {0u, 3u}) {
      Buf b(from_client6(channel_data(0x4000, data, padding, 0xE7)));
      Verdict v = run(b);
      ASSERT_EQ(v.kind, Verdict::Tx) << len;
      EXPECT_EQ(v.path, Path::ChannelDataToPeer);
      EXPECT_EQ(v.port, 1) << "the peer's next hop is on port 1";
      EXPECT_EQ(v.alloc, a6_);
      EXPECT_EQ(v.bytes, len);
      EXPECT_FALSE(v.offload) << "IPv6 has no header checksum; the UDP one is updated incrementally";
      auto want = udp6_frame(kPeerHopMac, kPort1Mac, kServer6, kPeer6, kRelayAPort, kPeer1Port, data);
      EXPECT_EQ(b.out(), want) << "len " << len << " padding " << padding << "\ngot\n"
                               << hex(b.out()) << "\nwant\n"
                               << hex(want);
    }
  }
}

TEST_F(FastPath6, SendIndicationToPeerExactBytes) {
  for (unsigned shape : {0u, 1u, 3u, 15u}) {
    for (size_t len : {0u, 5u, 200u}) {
      auto& data = static_data(pattern(len, static_cast<uint8_t>(shape)));
      SocketAddress peer = *SocketAddress::parse("[2001:db8:2::5]:6000");
      Buf b(from_client6(send_indication(peer, &data, shape)));
      Verdict v = run(b);
      ASSERT_EQ(v.kind, Verdict::Tx) << shape << " " << len;
      EXPECT_EQ(v.path, Path::SendIndicationToPeer);
      EXPECT_EQ(b.out(), udp6_frame(kPeerHopMac, kPort1Mac, kServer6, kPeer6, kRelayAPort, kPeer1Port, data));
    }
  }
  // An IPv4 peer on an IPv6 relay cannot be reached (RFC 8656 §10.2): dropped and counted.
  auto& data = static_data(pattern(8));
  expect_drop(from_client6(send_indication(*SocketAddress::parse("203.0.113.5:6000"), &data, 0)), Drop::FamilyMismatch);
  // An IPv6 peer without a permission: the kernel path decides.
  expect_punt(from_client6(send_indication(*SocketAddress::parse("[2001:db8:2::99]:6000"), &data, 0)),
              PuntReason::NoPermission);
}

TEST_F(FastPath6, PeerToClientChannelDataAndDataIndication) {
  auto data = pattern(77);
  Buf b(from_peer6(data));
  Verdict v = run(b);
  ASSERT_EQ(v.kind, Verdict::Tx);
  EXPECT_EQ(v.path, Path::PeerToClientChannelData);
  EXPECT_EQ(v.port, 0);
  EXPECT_EQ(b.out(), udp6_frame(kClientHopMac, kPortMac, kServer6, kClient6, kTurnPort, kClientAPort,
                                channel_data(0x4000, data)));
  // From a permitted peer port without a channel: a Data indication whose
  // XOR-PEER-ADDRESS (IPv6: XORed with cookie and transaction id) decodes.
  Buf d(udp6_frame(kPort1Mac, kRouterMac, kPeer6, kServer6, 6001, kRelayAPort, data, 51));
  Verdict w = run(d);
  ASSERT_EQ(w.kind, Verdict::Tx);
  EXPECT_EQ(w.path, Path::PeerToClientDataIndication);
  auto out = d.out();
  ASSERT_GT(out.size(), 62u);
  EXPECT_EQ(load_be16(out.data() + 12), 0x86DD);
  EXPECT_EQ(load_be16(out.data() + 14 + 40 + 6),
            ref_udp6_checksum(out.data() + 22, out.data() + 38, out.data() + 54, out.size() - 54));
  Bytes payload(out.data() + 62, out.size() - 62);
  stun::MessageView m;
  ASSERT_EQ(stun::parse(payload, m), stun::ParseError::Ok);
  EXPECT_EQ(m.method(), stun::Method::Data);
  const stun::AttributeRef* xp = m.find(stun::Attr::XorPeerAddress);
  ASSERT_NE(xp, nullptr);
  auto addr = stun::read_xor_address(m.value(*xp), m.xor_mask());
  ASSERT_TRUE(addr.ok());
  EXPECT_EQ(addr.value(), *SocketAddress::parse("[2001:db8:2::5]:6001")) << addr.value().to_string();
  const stun::AttributeRef* dd = m.find(stun::Attr::Data);
  ASSERT_NE(dd, nullptr);
  Bytes got = m.value(*dd);
  EXPECT_EQ(std::vector<uint8_t>(got.begin(), got.end()), data);
}

// As ClientOnAnotherInterfaceIsPunted, for an IPv6 client that reached an
// address no port carries.
TEST_F(FastPath6, ClientOnAnotherInterfaceIsPunted) {
  pc_.local6.add(kServer6);
  const Ip6 inside_server = ip6("fd00:10::10"), inside_client = ip6("fd00:10::50");
  uint32_t c = t_.add_alloc6(inside_client, 40010, inside_server, kTurnPort, kServer6, 49410);
  t_.add_neighbour6(inside_client, kClientBHopMac, 0);
  t_.add_permission6(c, kPeer6);
  expect_punt(udp6_frame(kPort1Mac, kRouterMac, kPeer6, kServer6, kPeer1Port, 49410, pattern(8), 51),
              PuntReason::NoNeighbour);
  Buf b(from_peer6(pattern(8)));  // a client of the port's own address: fast path
  EXPECT_EQ(run(b).kind, Verdict::Tx);
}

TEST_F(FastPath6, HairpinBetweenTwoIpv6Allocations) {
  uint32_t b6 = t_.add_alloc6(ip6("2001:db8:c::3"), kClientBPort, kServer6, kTurnPort, kRelay6b, kRelayBPort);
  t_.add_neighbour6(ip6("2001:db8:c::3"), kClientBHopMac, 0);
  t_.add_permission6(b6, kServer6);
  t_.add_permission6(a6_, kRelay6b);
  auto& data = static_data(pattern(50));
  SocketAddress to_b = *SocketAddress::parse("[2001:db8:1::11]:49300");
  Buf b(from_client6(send_indication(to_b, &data, 0)));
  Verdict v = run(b);
  ASSERT_EQ(v.kind, Verdict::Tx);
  EXPECT_EQ(v.path, Path::Hairpin);
  EXPECT_EQ(v.alloc, b6);
  EXPECT_EQ(v.from_alloc, a6_);
  auto out = b.out();
  EXPECT_EQ(load_be16(out.data() + 14 + 40 + 6),
            ref_udp6_checksum(out.data() + 22, out.data() + 38, out.data() + 54, out.size() - 54));
}

TEST_F(FastPath6, WhatTheKernelKeepsAndWhatIsDropped) {
  auto cd = from_client6(channel_data(0x4000, pattern(20)));
  auto zero = cd;
  set16(zero, 14 + 40 + 6, 0);  // UDP checksum 0 is invalid over IPv6
  expect_drop(zero, Drop::Malformed);
  auto lying = cd;
  set16(lying, 14 + 4, 2000);  // payload length beyond the frame
  expect_drop(lying, Drop::Malformed);
  auto ext = cd;
  ext.at(14 + 6) = 0;  // hop-by-hop extension header
  expect_punt(ext, PuntReason::Ipv6);
  auto icmp = cd;
  icmp.at(14 + 6) = 58;  // ICMPv6 (neighbour discovery)
  expect_punt(icmp, PuntReason::Ipv6);
  expect_punt(from_client6(channel_data(0x4001, pattern(20))), PuntReason::UnknownFlow);
  expect_drop(std::vector<uint8_t>(cd.begin(), cd.begin() + 40), Drop::Malformed);
}

TEST_F(FastPath6, MutatedFramesNeverEscapeTheBuffer) {
  std::mt19937 rng(6);
  auto& data = static_data(pattern(40));
  std::vector<std::vector<uint8_t>> seeds = {
      from_client6(channel_data(0x4000, pattern(40))),
      from_client6(send_indication(*SocketAddress::parse("[2001:db8:2::5]:6000"), &data, 3)), from_peer6(pattern(33))};
  for (int round = 0; round < 3000; ++round) {
    auto f = seeds[static_cast<size_t>(round) % seeds.size()];
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) f[14 + rng() % (f.size() - 14)] = static_cast<uint8_t>(rng());
    if (rng() % 4 == 0) f.resize(14 + rng() % (f.size() - 14));
    Buf b(f, 64, 16);
    run(b);
  }
}

// ---- dual-stack allocations: both halves, across families -------------------------
//
// RFC 8656 §7.2 (ADDITIONAL-ADDRESS-FAMILY): one allocation, an IPv4 and an
// IPv6 relayed address; a permission or channel for a peer belongs to the
// relayed address of the peer's family (§9, §12). The half of the other
// family than the client's relays with the IP version translated: IPv4 in,
// IPv6 out and the reverse, headers of another size, checksums that must
// still be exact (a full recomputation by the reference, never by the code
// under test).

class FastPathDual : public FastPath6 {
 protected:
  const uint32_t kClientD4 = ip4(198, 51, 100, 30);  // IPv4 client of the dual allocation d4_
  const Ip6 kClientD6 = ip6("2001:db8:c::7");        // IPv6 client of the dual allocation d6_
  const Ip6 kPeer6b = ip6("2001:db8:2::6");          // an IPv6 peer without a permission
  static constexpr uint16_t kClientD4Port = 50030, kClientD6Port = 50040;
  static constexpr uint16_t kD4Relay4 = 49500, kD4Relay6 = 49600, kD6Relay6 = 49700, kD6Relay4 = 49800;
  void SetUp() override {
    FastPath6::SetUp();
    // d4_: IPv4 client; IPv4 relay kServer:49500, IPv6 relay [kServer6]:49600.
    d4_ = t_.add_dual4(kClientD4, kClientD4Port, kServer, kD4Relay4, kServer6, kD4Relay6);
    t_.add_permission(d4_, kPeer1);
    t_.add_permission6(d4_, kPeer6);
    t_.add_channel6(d4_, 0x4000, kPeer6, kPeer1Port);  // across: IPv6 peer, IPv4 client
    t_.add_channel(d4_, 0x4001, kPeer1, kPeer1Port);   // the same-family half
    t_.add_neighbour(kClientD4, kClientHopMac, 0);
    // d6_: IPv6 client; IPv6 relay [kServer6]:49700, IPv4 relay kServer:49800.
    d6_ = t_.add_dual6(kClientD6, kClientD6Port, kServer6, kTurnPort, kServer6, kD6Relay6, kServer, kD6Relay4);
    t_.add_permission(d6_, kPeer2);
    t_.add_permission6(d6_, kPeer6);
    t_.add_channel(d6_, 0x4000, kPeer2, kPeer2Port);   // across: IPv4 peer, IPv6 client
    t_.add_channel6(d6_, 0x4002, kPeer6, kPeer1Port);  // the same-family half
    t_.add_neighbour6(kClientD6, kClientBHopMac, 0);
  }
  std::vector<uint8_t> from_d4(const std::vector<uint8_t>& payload, const Ip4Opts& o = kIn) {
    return udp_frame(kPortMac, kRouterMac, kClientD4, kServer, kClientD4Port, kTurnPort, payload, o);
  }
  std::vector<uint8_t> from_d6(const std::vector<uint8_t>& payload) {
    return udp6_frame(kPortMac, kRouterMac, kClientD6, kServer6, kClientD6Port, kTurnPort, payload, 51, 0x54321);
  }
  // The IPv6 peer to d4_'s IPv6 relay, and the IPv4 peer to d6_'s IPv4 relay.
  std::vector<uint8_t> peer6_to_d4(const std::vector<uint8_t>& payload, uint16_t from_port = kPeer1Port) {
    return udp6_frame(kPort1Mac, kRouterMac, kPeer6, kServer6, from_port, kD4Relay6, payload, 51);
  }
  std::vector<uint8_t> peer4_to_d6(const std::vector<uint8_t>& payload, const Ip4Opts& o = kIn,
                                   uint16_t from_port = kPeer2Port) {
    return udp_frame(kPortMac, kRouterMac, kPeer2, kServer, from_port, kD6Relay4, payload, o);
  }
  // An IPv6 frame's UDP checksum against a full recomputation.
  static void expect_udp6_checksum(const std::vector<uint8_t>& out) {
    ASSERT_GT(out.size(), 62u);
    ASSERT_EQ(load_be16(out.data() + 12), 0x86DD);
    ASSERT_EQ(load_be16(out.data() + 14 + 4) + 54u, out.size()) << "IPv6 payload length vs frame";
    EXPECT_EQ(load_be16(out.data() + 54 + 6),
              ref_udp6_checksum(out.data() + 22, out.data() + 38, out.data() + 54, out.size() - 54));
  }
  SocketAddress peer6_addr(uint16_t port) const {
    SocketAddress a;
    a.ip = IpAddress::v6(kPeer6.b);
    a.port = port;
    return a;
  }
  uint32_t d4_ = 0, d6_ = 0;
};

// IPv4 client -> IPv6 peer: ChannelData on the channel bound to the IPv6
// peer leaves as IPv6/UDP from the IPv6 relayed address, 20 bytes more of
// header, with an exact UDP checksum, also when the IPv4 datagram had none
// (RFC 8200 §8.1: mandatory over IPv6).
TEST_F(FastPathDual, Ipv4ClientChannelDataToIpv6Peer) {
  for (size_t len : {0u, 1u, 3u, 160u, 1201u}) {
    auto data = pattern(len, static_cast<uint8_t>(len + 3));
    for (size_t padding : {0u, 3u}) {
      for (bool checksum : {true, false}) {
        SCOPED_TRACE("len " + std::to_string(len) + " padding " + std::to_string(padding) +
                     (checksum ? " checksum" : " no checksum"));
        Buf b(from_d4(channel_data(0x4000, data, padding, 0xE7), checksum ? kIn : kInNoCsum));
        Verdict v = run(b);
        ASSERT_EQ(v.kind, Verdict::Tx);
        EXPECT_EQ(v.path, Path::ChannelDataToPeer);
        EXPECT_TRUE(v.to_peer);
        EXPECT_EQ(v.alloc, d4_);
        EXPECT_EQ(v.bytes, len);
        EXPECT_EQ(v.port, 1) << "the IPv6 peer's next hop is on port 1";
        EXPECT_FALSE(v.offload) << "IPv6 out: software checksum";
        auto want = udp6_frame(kPeerHopMac, kPort1Mac, kServer6, kPeer6, kD4Relay6, kPeer1Port, data);
        EXPECT_EQ(b.out(), want) << "got\n" << hex(b.out()) << "\nwant\n" << hex(want);
      }
    }
  }
}

TEST_F(FastPathDual, Ipv4ClientSendIndicationToIpv6Peer) {
  for (unsigned shape : {0u, 1u, 3u, 15u}) {
    for (size_t len : {0u, 5u, 200u}) {
      for (bool checksum : {true, false}) {
        SCOPED_TRACE("shape " + std::to_string(shape) + " len " + std::to_string(len));
        auto& data = static_data(pattern(len, static_cast<uint8_t>(shape + 40)));
        Buf b(from_d4(send_indication(peer6_addr(kPeer1Port), &data, shape), checksum ? kIn : kInNoCsum));
        Verdict v = run(b);
        ASSERT_EQ(v.kind, Verdict::Tx);
        EXPECT_EQ(v.path, Path::SendIndicationToPeer);
        EXPECT_EQ(v.alloc, d4_);
        EXPECT_EQ(v.bytes, len);
        EXPECT_EQ(b.out(), udp6_frame(kPeerHopMac, kPort1Mac, kServer6, kPeer6, kD4Relay6, kPeer1Port, data));
      }
    }
  }
}

// IPv6 peer -> IPv4 client: ChannelData (channel bound) or a Data
// indication whose XOR-PEER-ADDRESS is the IPv6 peer, over IPv4 from the
// address the client sent to, with IPv4 and UDP checksums exact.
TEST_F(FastPathDual, Ipv6PeerToIpv4Client) {
  for (size_t len : {0u, 1u, 2u, 3u, 99u, 1201u}) {
    SCOPED_TRACE("len " + std::to_string(len));
    auto data = pattern(len, 21);
    Buf b(peer6_to_d4(data));
    Verdict v = run(b);
    ASSERT_EQ(v.kind, Verdict::Tx);
    EXPECT_EQ(v.path, Path::PeerToClientChannelData);
    EXPECT_FALSE(v.to_peer);
    EXPECT_EQ(v.alloc, d4_);
    EXPECT_EQ(v.bytes, len);
    EXPECT_EQ(v.port, 0);
    expect_output(b, udp_frame(kClientHopMac, kPortMac, kServer, kClientD4, kTurnPort, kClientD4Port,
                               channel_data(0x4000, data), kOut));
    // From a permitted peer port without a channel: a Data indication.
    Buf d(peer6_to_d4(data, 6001));
    Verdict w = run(d);
    ASSERT_EQ(w.kind, Verdict::Tx);
    EXPECT_EQ(w.path, Path::PeerToClientDataIndication);
    EXPECT_EQ(w.alloc, d4_);
    expect_data_indication(d.out(), kClientHopMac, kClientD4, kClientD4Port, peer6_addr(6001), data, t_.txn, d4_);
  }
}

// IPv6 client -> IPv4 peer: 20 bytes less of header.
TEST_F(FastPathDual, Ipv6ClientChannelDataAndSendIndicationToIpv4Peer) {
  for (size_t len : {0u, 1u, 3u, 160u, 1201u}) {
    SCOPED_TRACE("len " + std::to_string(len));
    auto data = pattern(len, static_cast<uint8_t>(len + 7));
    for (size_t padding : {0u, 3u}) {
      Buf b(from_d6(channel_data(0x4000, data, padding, 0xE7)));
      Verdict v = run(b);
      ASSERT_EQ(v.kind, Verdict::Tx);
      EXPECT_EQ(v.path, Path::ChannelDataToPeer);
      EXPECT_EQ(v.alloc, d6_);
      EXPECT_EQ(v.bytes, len);
      expect_output(b, udp_frame(kPeer2HopMac, kPortMac, kServer, kPeer2, kD6Relay4, kPeer2Port, data, kOut));
    }
    for (unsigned shape : {0u, 3u, 15u}) {
      auto& sdata = static_data(data);
      Buf b(from_d6(send_indication(sa(kPeer2, kPeer2Port), &sdata, shape)));
      Verdict v = run(b);
      ASSERT_EQ(v.kind, Verdict::Tx) << shape;
      EXPECT_EQ(v.path, Path::SendIndicationToPeer);
      expect_output(b, udp_frame(kPeer2HopMac, kPortMac, kServer, kPeer2, kD6Relay4, kPeer2Port, data, kOut));
    }
  }
}

// IPv4 peer -> IPv6 client, also from a datagram without a UDP checksum
// (IPv6 needs one: computed over the data).
TEST_F(FastPathDual, Ipv4PeerToIpv6Client) {
  for (size_t len : {0u, 1u, 2u, 3u, 99u, 1201u}) {
    for (bool checksum : {true, false}) {
      SCOPED_TRACE("len " + std::to_string(len) + (checksum ? " checksum" : " no checksum"));
      auto data = pattern(len, 23);
      Buf b(peer4_to_d6(data, checksum ? kIn : kInNoCsum));
      Verdict v = run(b);
      ASSERT_EQ(v.kind, Verdict::Tx);
      EXPECT_EQ(v.path, Path::PeerToClientChannelData);
      EXPECT_EQ(v.alloc, d6_);
      EXPECT_EQ(v.bytes, len);
      auto want = udp6_frame(kClientBHopMac, kPortMac, kServer6, kClientD6, kTurnPort, kClientD6Port,
                             channel_data(0x4000, data));
      EXPECT_EQ(b.out(), want) << "got\n" << hex(b.out()) << "\nwant\n" << hex(want);
      Buf d(peer4_to_d6(data, checksum ? kIn : kInNoCsum, 7001));
      Verdict w = run(d);
      ASSERT_EQ(w.kind, Verdict::Tx);
      EXPECT_EQ(w.path, Path::PeerToClientDataIndication);
      auto out = d.out();
      EXPECT_EQ(0, std::memcmp(out.data(), kClientBHopMac.b, 6));
      EXPECT_EQ(0, std::memcmp(out.data() + 22, kServer6.b, 16));
      EXPECT_EQ(0, std::memcmp(out.data() + 38, kClientD6.b, 16));
      expect_udp6_checksum(out);
      expect_data_indication_at(out, 62, sa(kPeer2, 7001), data);
    }
  }
}

// The same-family halves of both dual-stack allocations are the ordinary paths.
TEST_F(FastPathDual, SameFamilyHalvesAsBefore) {
  auto data = pattern(64);
  Buf b(from_d4(channel_data(0x4001, data)));
  ASSERT_EQ(run(b).kind, Verdict::Tx);
  expect_output(b, udp_frame(kPeerHopMac, kPortMac, kServer, kPeer1, kD4Relay4, kPeer1Port, data, kOut));
  Buf r(udp_frame(kPortMac, kRouterMac, kPeer1, kServer, kPeer1Port, kD4Relay4, data));
  ASSERT_EQ(run(r).kind, Verdict::Tx);
  expect_output(r, udp_frame(kClientHopMac, kPortMac, kServer, kClientD4, kTurnPort, kClientD4Port,
                             channel_data(0x4001, data), kOut));
  Buf c(from_d6(channel_data(0x4002, data)));
  ASSERT_EQ(run(c).kind, Verdict::Tx);
  EXPECT_EQ(c.out(), udp6_frame(kPeerHopMac, kPort1Mac, kServer6, kPeer6, kD6Relay6, kPeer1Port, data));
  Buf p(udp6_frame(kPort1Mac, kRouterMac, kPeer6, kServer6, kPeer1Port, kD6Relay6, data, 51));
  ASSERT_EQ(run(p).kind, Verdict::Tx);
  EXPECT_EQ(p.out(), udp6_frame(kClientBHopMac, kPortMac, kServer6, kClientD6, kTurnPort, kClientD6Port,
                                channel_data(0x4002, data)));
}

// Relay -> relay across families: d4_'s IPv4 client sends to d6_'s IPv6
// relayed address; d6_ (IPv6 client) has a permission for d4_'s IPv6
// relayed address and gets a Data indication, never on the wire. Also from
// a datagram without a UDP checksum.
TEST_F(FastPathDual, HairpinAcrossFamilies) {
  t_.add_permission6(d6_, kServer6);
  SocketAddress to_d6;
  to_d6.ip = IpAddress::v6(kServer6.b);
  to_d6.port = kD6Relay6;
  SocketAddress from_d4_relay = to_d6;
  from_d4_relay.port = kD4Relay6;
  t_.add_permission6(d4_, kServer6);
  for (bool checksum : {true, false}) {
    auto& data = static_data(pattern(50));
    Buf b(from_d4(send_indication(to_d6, &data, 0), checksum ? kIn : kInNoCsum));
    Verdict v = run(b);
    ASSERT_EQ(v.kind, Verdict::Tx);
    EXPECT_EQ(v.path, Path::Hairpin);
    EXPECT_EQ(v.alloc, d6_);
    EXPECT_EQ(v.from_alloc, d4_);
    auto out = b.out();
    EXPECT_EQ(0, std::memcmp(out.data() + 38, kClientD6.b, 16));
    expect_udp6_checksum(out);
    expect_data_indication_at(out, 62, from_d4_relay, data);
  }
}

// What stays on the kernel path or is dropped, each under its reason; a
// punted frame is unchanged although the stage had moved its start for the
// other family's headers.
TEST_F(FastPathDual, PuntsAndDropsAcrossFamilies) {
  auto data = pattern(40);
  auto& sdata = static_data(data);
  SocketAddress peer6b;
  peer6b.ip = IpAddress::v6(kPeer6b.b);
  peer6b.port = 6000;
  // No permission for that IPv6 peer on the IPv6 half: the kernel path decides.
  expect_punt(from_d4(send_indication(peer6b, &sdata, 0)), PuntReason::NoPermission);
  // Its datagrams to the IPv6 relayed address: no permission, unknown flow.
  expect_punt(udp6_frame(kPort1Mac, kRouterMac, kPeer6b, kServer6, 6000, kD4Relay6, data, 51), PuntReason::UnknownFlow);
  // An IPv4 peer of d4_ without a permission (same family, as before).
  expect_punt(from_d4(send_indication(sa(kPeer2, kPeer2Port), &sdata, 0)), PuntReason::NoPermission);
  // Expired permission on the other half.
  t_.add_permission6(d4_, kPeer6b, kNow);
  expect_punt(from_d4(send_indication(peer6b, &sdata, 0)), PuntReason::NoPermission);
  // The IPv6 peer's next hop unknown (after the frame's start was moved
  // for the IPv6 headers): punted as received.
  const Ip6 kPeer6NoHop = ip6("2001:db8:2::99");
  t_.add_permission6(d4_, kPeer6NoHop);
  t_.add_channel6(d4_, 0x4005, kPeer6NoHop, 6000);
  expect_punt(from_d4(channel_data(0x4005, data)), PuntReason::NoNeighbour);
  // The IPv4 client's next hop unknown, for an IPv6 peer's reply.
  uint32_t lonely = t_.add_dual4(ip4(198, 51, 100, 77), 50077, kServer, 49555, kServer6, 49666);
  t_.add_permission6(lonely, kPeer6);
  expect_punt(udp6_frame(kPort1Mac, kRouterMac, kPeer6, kServer6, kPeer1Port, 49666, data, 51),
              PuntReason::NoNeighbour);
  // Expired channel across families: the kernel path.
  t_.add_channel6(d4_, 0x4006, kPeer6, 6002, kNow);
  expect_punt(from_d4(channel_data(0x4006, data)), PuntReason::Expired);
  // An allocation without a relayed address of the peer's family: the
  // Send indication is dropped and counted (family_mismatch).
  expect_drop(from_client_a(send_indication(peer6_addr(kPeer1Port), &sdata, 0)), Drop::FamilyMismatch);
  expect_drop(from_client6(send_indication(sa(kPeer1, kPeer1Port), &sdata, 0)), Drop::FamilyMismatch);
  // An IPv6-family XOR-PEER-ADDRESS of the wrong length: malformed, not translated.
  auto bad = send_indication(peer6_addr(kPeer1Port), &sdata, 0);
  ASSERT_EQ(load_be16(bad.data() + 20), static_cast<uint16_t>(stun::Attr::XorPeerAddress));
  store_be16(bad.data() + 22, 8);
  expect_drop(from_d4(bad), Drop::BadSendIndication);
  // No headroom for the 20 more bytes of the IPv6 header: too big, counted.
  Buf small(from_d4(channel_data(0x4000, data)), 8);
  EXPECT_EQ(run(small).drop, Drop::TooBig);
  Buf small_di(peer4_to_d6(data, kIn, 7001), 40);  // the Data indication's 36 + 20 bytes
  Verdict v = run(small_di);
  EXPECT_EQ(v.kind, Verdict::Drop);
  EXPECT_EQ(v.drop, Drop::TooBig);
}

// Checksum offload on the IPv4 egress port: the IPv6 -> IPv4 translation
// leaves exactly what the NIC completes into the software result.
TEST_F(FastPathDual, ChecksumOffloadOnTheIpv4Side) {
  auto data = pattern(201);
  pc_.csum_offload = 0;
  Buf soft(from_d6(channel_data(0x4000, data)));
  ASSERT_EQ(run(soft).kind, Verdict::Tx);
  pc_.csum_offload = 0b01;
  Buf hard(from_d6(channel_data(0x4000, data)));
  Verdict v = run(hard);
  ASSERT_EQ(v.kind, Verdict::Tx);
  EXPECT_TRUE(v.offload);
  EXPECT_EQ(complete_offload(hard.out()), soft.out());
}

TEST_F(FastPathDual, NeverAllocates) {
  auto data = pattern(77);
  auto& sdata = static_data(data);
  std::vector<Buf> bufs;
  bufs.emplace_back(from_d4(channel_data(0x4000, data)));
  bufs.emplace_back(from_d4(send_indication(peer6_addr(kPeer1Port), &sdata, 3)));
  bufs.emplace_back(peer6_to_d4(data));
  bufs.emplace_back(peer6_to_d4(data, 6001));
  bufs.emplace_back(from_d6(channel_data(0x4000, data)));
  bufs.emplace_back(peer4_to_d6(data, kInNoCsum, 7001));
  std::vector<Verdict> verdicts(bufs.size());
  uint64_t before = g_allocations.load();
  g_count_allocations = true;
  for (int i = 0; i < 500; ++i)
    for (size_t k = 0; k < bufs.size(); ++k) {
      bufs[k].reset();
      verdicts[k] = process_frame(bufs[k].f, t_, pc_, kNow);
    }
  g_count_allocations = false;
  EXPECT_EQ(g_allocations.load() - before, 0u);
  for (size_t k = 0; k < verdicts.size(); ++k)
    EXPECT_EQ(verdicts[k].kind, Verdict::Tx) << k << " " << kPuntKeys[static_cast<size_t>(verdicts[k].punt)];
}

TEST_F(FastPathDual, MutatedFramesNeverEscapeTheBuffer) {
  std::mt19937 rng(46);
  auto& data = static_data(pattern(40));
  std::vector<std::vector<uint8_t>> seeds = {from_d4(channel_data(0x4000, pattern(40))),
                                             from_d4(send_indication(peer6_addr(kPeer1Port), &data, 3)),
                                             peer6_to_d4(pattern(33)),
                                             from_d6(channel_data(0x4000, pattern(40))),
                                             from_d6(send_indication(sa(kPeer2, kPeer2Port), &data, 1)),
                                             peer4_to_d6(pattern(33), kInNoCsum, 7001)};
  for (int round = 0; round < 6000; ++round) {
    auto f = seeds[static_cast<size_t>(round) % seeds.size()];
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) f[14 + rng() % (f.size() - 14)] = static_cast<uint8_t>(rng());
    if (rng() % 4 == 0) f.resize(14 + rng() % (f.size() - 14));
    Buf b(f, static_cast<uint16_t>(rng() % 2 ? 64 : 24), 16);
    run(b);
  }
}

// ---- neighbour probes (the service lcore asks for its gateways itself) ---------

TEST(NeighbourProbe, ArpRequestForTheGateway) {
  uint8_t f[64];
  std::memset(f, 0xEE, sizeof f);
  ASSERT_EQ(write_arp_request(f, kPortMac, ip4(192, 0, 2, 10), ip4(192, 0, 2, 1)), 42u);
  const uint8_t want[42] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0,  0, 0xAA, 0x08, 0x06,  // Ethernet
                            0,    1,    0x08, 0,    6,    4,    0,    1,                              // request
                            0x02, 0,    0,    0,    0,    0xAA, 192,  0, 2, 10,                       // sender
                            0,    0,    0,    0,    0,    0,    192,  0, 2, 1};                       // target
  EXPECT_EQ(0, std::memcmp(f, want, 42));
  EXPECT_EQ(f[42], 0xEE) << "nothing written past the frame";
}

TEST(NeighbourProbe, NeighbourSolicitationToTheSolicitedNodeAddress) {
  uint8_t f[100];
  std::memset(f, 0xEE, sizeof f);
  Ip6 src{}, dst{};
  inet_pton(AF_INET6, "2001:db8:1::10", src.b);
  inet_pton(AF_INET6, "2001:db8:1::1:2:3", dst.b);
  ASSERT_EQ(write_neighbour_solicitation(f, kPortMac, src, dst), 86u);
  EXPECT_EQ(f[86], 0xEE);
  const uint8_t want_mac[6] = {0x33, 0x33, 0xff, dst.b[13], dst.b[14], dst.b[15]};  // RFC 2464 §7
  EXPECT_EQ(0, std::memcmp(f, want_mac, 6));
  EXPECT_EQ(load_be16(f + 12), 0x86DD);
  const uint8_t* ip = f + 14;
  EXPECT_EQ(ip[6], 58);
  EXPECT_EQ(ip[7], 255) << "RFC 4861 §7.1.1: hop limit 255";
  Ip6 solicited{};
  inet_pton(AF_INET6, "ff02::1:ff00:0", solicited.b);
  for (int i = 13; i < 16; ++i) solicited.b[i] = dst.b[i];
  EXPECT_EQ(0, std::memcmp(ip + 24, solicited.b, 16));
  const uint8_t* ns = ip + 40;
  EXPECT_EQ(ns[0], 135);
  EXPECT_EQ(0, std::memcmp(ns + 8, dst.b, 16));
  EXPECT_EQ(ns[24], 1);
  EXPECT_EQ(0, std::memcmp(ns + 26, kPortMac.b, 6));
  // ICMPv6 checksum over the pseudo header: the whole sum folds to 0xFFFF.
  std::vector<uint8_t> b(ip + 8, ip + 40);
  b.insert(b.end(), {0, 0, 0, 32, 0, 0, 0, 58});
  b.insert(b.end(), ns, ns + 32);
  EXPECT_EQ(ref_fold_complement(b), 0) << "checksum verifies";
}

}  // namespace
}  // namespace turn::dp
