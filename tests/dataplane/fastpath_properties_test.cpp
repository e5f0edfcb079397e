// SPDX-License-Identifier: Apache-2.0
// Properties over many generated and mutated frames, no allocation, and
// whole bursts decided as the worker runs them (tests/dataplane/fastpath_fixture.h).
#include "tests/dataplane/fastpath_fixture.h"

namespace turn::dp::fastpath_test {
namespace {

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

}  // namespace
}  // namespace turn::dp::fastpath_test
