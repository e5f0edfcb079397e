// SPDX-License-Identifier: Apache-2.0
// What the fast-path tests share (tests/dataplane/fastpath_*_test.cpp, one
// file per stage): process_frame() over a std::unordered_map FakeTables
// (tests/dataplane/fake_tables.h, shared with tests/fuzz/fastpath_fuzz.cpp),
// on Ethernet/IPv4/IPv6/UDP frames built here with a reference checksum
// (written independently of pipeline/checksum.h).
//
// Every test runs the frame in a buffer with guard bytes on both sides and
// checks them afterwards; punted frames must come back byte-for-byte
// unchanged (the kernel path sees exactly what arrived). A counting global
// operator new (alloc_counter.cpp) proves the fast path never allocates.
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
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

// The counting operator new of this test binary (alloc_counter.cpp):
// counts only while g_count_allocations is set (gtest allocates freely).
extern std::atomic<bool> g_count_allocations;
extern std::atomic<uint64_t> g_allocations;

namespace turn::dp::fastpath_test {

using namespace fake;  // addresses, FakeTables, Buf, reference checksums

// ---- addresses ---------------------------------------------------------------

inline SocketAddress sa(uint32_t ip_n, uint16_t port_h) {
  SocketAddress a;
  a.ip = IpAddress::v4(reinterpret_cast<const uint8_t*>(&ip_n));
  a.port = port_h;
  return a;
}

inline constexpr Mac kRouterMac{{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}};  // where input frames come from
inline constexpr Mac kClientBHopMac{{0x02, 0x00, 0x00, 0x00, 0xC1, 0x02}};
inline constexpr Mac kPeer2HopMac{{0x02, 0x00, 0x00, 0x00, 0xEE, 0x02}};
inline const uint32_t kPeerNoHop = ip4(203, 0, 113, 99);  // permitted, but no neighbour entry

// ---- reference checksums and frame building ---------------------------------

struct Ip4Opts {
  uint8_t tos = 0;
  uint16_t id = 0;
  uint16_t frag = 0x4000;  // DF
  uint8_t ttl = 64;
  bool udp_checksum = true;
};
// What the fast path writes.
inline const Ip4Opts kOut{};
// What arrives (different on purpose: the fast path must rewrite these).
inline const Ip4Opts kIn{0xB8, 0xBEEF, 0x0000, 57, true};
inline const Ip4Opts kInNoCsum{0xB8, 0xBEEF, 0x0000, 57, false};

inline std::vector<uint8_t> udp_frame(const Mac& dst, const Mac& src, uint32_t sip, uint32_t dip, uint16_t sport_h,
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
inline void refresh_checksums(std::vector<uint8_t>& f) {
  uint8_t* ip = f.data() + 14;
  store_be16(ip + 10, 0);
  store_be16(ip + 10, ref_fold_complement(std::vector<uint8_t>(ip, ip + 20)));
  size_t ulen = load_be16(ip + 20 + 4);
  if (load_be16(ip + 20 + 6) != 0) store_be16(ip + 26, ref_udp_checksum(ip + 12, ip + 16, ip + 20, ulen));
}

// Writes a big-endian 16-bit field into a test frame (bounds-checked).
inline void set16(std::vector<uint8_t>& f, size_t at, uint16_t v) {
  f.at(at) = static_cast<uint8_t>(v >> 8);
  f.at(at + 1) = static_cast<uint8_t>(v);
}

inline std::vector<uint8_t> pattern(size_t n, uint8_t seed = 1) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed * 31 + i * 7 + (i >> 8));
  return v;
}

inline std::vector<uint8_t> channel_data(uint16_t channel_h, const std::vector<uint8_t>& data, size_t padding = 0,
                                         uint8_t pad_byte = 0) {
  std::vector<uint8_t> p(4);
  store_be16(p.data(), channel_h);
  store_be16(p.data() + 2, static_cast<uint16_t>(data.size()));
  p.insert(p.end(), data.begin(), data.end());
  p.insert(p.end(), padding, pad_byte);
  return p;
}

// Keeps a payload alive for the test's duration (send_indication takes a pointer).
inline const std::vector<uint8_t>& static_data(std::vector<uint8_t> v) {
  static std::deque<std::vector<uint8_t>> keep;
  return keep.emplace_back(std::move(v));
}

inline constexpr std::array<uint8_t, 12> kTxid{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};

enum SendShape : unsigned {
  kSoftwareBefore = 1,   // SOFTWARE (odd length) before XOR-PEER-ADDRESS
  kFingerprint = 2,      // FINGERPRINT last
  kDataFirst = 4,        // DATA before XOR-PEER-ADDRESS
  kUnknownOptional = 8,  // a comprehension-optional attribute between them
};

inline std::vector<uint8_t> send_indication(const SocketAddress& peer, const std::vector<uint8_t>* data, unsigned shape,
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

inline std::string hex(const std::vector<uint8_t>& v) {
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
inline void expect_valid_checksums(const std::vector<uint8_t>& f, bool udp_checksum_expected = true) {
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
inline void expect_output(const Buf& b, const std::vector<uint8_t>& want, bool udp_checksum_expected = true) {
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

  // Runs one frame over `tables` (the fixture's: run); checks the guard
  // bytes and the frame's bounds.
  Verdict run_on(FakeTables& tables, Buf& b, Tsc now = kNow) {
    Verdict v = process_frame(b.f, tables, pc_, now);
    EXPECT_TRUE(b.guards_ok()) << "write outside the buffer";
    EXPECT_TRUE(b.in_bounds());
    return v;
  }
  Verdict run(Buf& b, Tsc now = kNow) { return run_on(t_, b, now); }
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

// ---- several ports: what a NIC's checksum offload completes ------------------

// What a NIC with IPv4/UDP tx checksum offload does to the frame (DPDK's
// contract: IPv4 checksum field 0, UDP checksum field = pseudo-header sum).
inline std::vector<uint8_t> complete_offload(std::vector<uint8_t> f) {
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

// ---- IPv6 frames ------------------------------------------------------------

inline Ip6 ip6(const char* text) {
  Ip6 a{};
  EXPECT_EQ(inet_pton(AF_INET6, text, a.b), 1) << text;
  return a;
}

inline std::vector<uint8_t> udp6_frame(const Mac& dst, const Mac& src, const Ip6& sip, const Ip6& dip, uint16_t sport_h,
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

}  // namespace turn::dp::fastpath_test
