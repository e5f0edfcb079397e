// SPDX-License-Identifier: Apache-2.0
// Google Benchmark: the data plane's per-packet functions without EAL
// (dataplane/pipeline/*): header parse, checksum work, header rewrite, and
// process_frame() on a prepared frame for each fast path, over a one-entry
// table fake (so the figure is the pipeline's own cost; the rte_hash lookups
// are measured by dp_table_bench). process_frame rewrites the frame in
// place, so every iteration first copies the template frame into a buffer:
// BM_FrameCopy is that copy alone, to subtract.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "bench/micro/dp_frames.h"
#include "dataplane/pipeline/burst.h"

namespace turn::dp {
namespace {

using namespace benchfr;

const uint32_t kServer = ip4(10, 78, 0, 2);
const uint32_t kClient = ip4(10, 1, 0, 7);
const uint32_t kPeer = ip4(10, 99, 0, 1);
constexpr uint16_t kTurnPort = 3478, kClientPort = 40000, kRelayPort = 50000, kPeerPort = 5000;
constexpr uint16_t kChannel = 0x4000;
constexpr Tsc kNow = 1000, kLive = 1'000'000'000;

// WorkerTables' interface over one allocation, one permission and
// (optionally) one channel: a key compare per lookup, like a hash hit
// without the hashing. (Not the tests' FakeTables, tests/dataplane/
// fake_tables.h: its std::unordered_map hashing would be counted as the
// pipeline's own cost.)
class OneFlow {
 public:
  explicit OneFlow(bool with_channel) : with_channel_(with_channel) {
    a_.client = ClientKey{kClient, kServer, np(kClientPort), np(kTurnPort)};
    a_.relay_ip = kServer;
    a_.relay_port = np(kRelayPort);
    a_.index = 0;
    a_.expires.store(kLive);
    perm_.alloc = 0;
    perm_.expires.store(kLive);
    ch_.alloc = 0;
    ch_.peer_ip = kPeer;
    ch_.peer_port = np(kPeerPort);
    ch_.channel = np(kChannel);
    ch_.expires.store(kLive);
    // The copies Tables' writer keeps in a channel entry (entries.h).
    ch_.alloc_expires.store(kLive);
    ch_.perm_expires.store(kLive);
    ch_.relay_ip = a_.relay_ip;
    ch_.relay_port = a_.relay_port;
    ch_.client_ip = a_.client.client_ip;  // the client's 5-tuple, as Tables' writer copies it
    ch_.server_ip = a_.client.server_ip;
    ch_.client_port = a_.client.client_port;
    ch_.server_port = a_.client.server_port;
    ch_.perm.store(1);  // linked: the fast path reads only the copy of its expiry
  }
  const AllocEntry* client(const ClientKey& k) const noexcept { return k == a_.client ? &a_ : nullptr; }
  const ChannelEntry* channel(const ChannelKey& k) const noexcept {
    return with_channel_ && k == ChannelKey::of(a_.client, ch_.channel) ? &ch_ : nullptr;
  }
  const ChannelEntry* peer(const PeerKey& k) const noexcept {
    return with_channel_ && k == PeerKey{a_.relay_ip, ch_.peer_ip, a_.relay_port, ch_.peer_port} ? &ch_ : nullptr;
  }
  const PermissionEntry* permission(const PermissionKey& k) const noexcept {
    return k == PermissionKey{a_.relay_ip, kPeer, a_.relay_port} ? &perm_ : nullptr;
  }
  const AllocEntry& alloc(uint32_t) const noexcept { return a_; }
  bool next_hop(uint32_t, Hop& h) noexcept {
    h = Hop{kGwMac, 0};
    return true;
  }
  uint64_t next_transaction_id() noexcept { return ++txn_; }
  // IPv6: no flows (these benchmarks send IPv4 only).
  const AllocEntry* client(const ClientKey6&) const noexcept { return nullptr; }
  const ChannelEntry* channel(const ChannelKey6&) const noexcept { return nullptr; }
  const ChannelEntry* peer(const PeerKey6&) const noexcept { return nullptr; }
  const PermissionEntry* permission(const PermissionKey6&) const noexcept { return nullptr; }
  const AllocEntry6& alloc6(uint32_t) const noexcept { return a6_; }
  const Ip6& channel_peer6(uint32_t) const noexcept { return a6_.relay_ip; }
  bool next_hop(const Ip6&, Hop&) noexcept { return false; }

 private:
  AllocEntry6 a6_{};
  bool with_channel_;
  AllocEntry a_;
  PermissionEntry perm_;
  ChannelEntry ch_;
  uint64_t txn_ = 0;
};

enum class Kind { ChannelDataToPeer, SendToPeer, PeerToClientChannelData, PeerToClientDataIndication };

std::vector<uint8_t> input(Kind k, size_t payload) {
  switch (k) {
    case Kind::ChannelDataToPeer:
      return udp_frame(kClient, kClientPort, kServer, kTurnPort, channel_data(kChannel, payload));
    case Kind::SendToPeer:
      return udp_frame(kClient, kClientPort, kServer, kTurnPort, send_indication(kPeer, np(kPeerPort), payload));
    case Kind::PeerToClientChannelData:
    case Kind::PeerToClientDataIndication:
      return udp_frame(kPeer, kPeerPort, kServer, kRelayPort, plain(payload));
  }
  return {};
}

void BM_ParseUdp4(benchmark::State& st) {
  auto f = input(Kind::ChannelDataToPeer, static_cast<size_t>(st.range(0)));
  Udp4View v{};
  for (auto _ : st) {
    benchmark::DoNotOptimize(f.data());
    benchmark::DoNotOptimize(parse_udp4(f.data(), f.size(), v));
    benchmark::DoNotOptimize(v);
  }
  st.SetItemsProcessed(static_cast<int64_t>(st.iterations()));
}

// The incremental UDP checksum update of one ChannelData -> peer rewrite
// (RFC 1624): old pseudo/UDP header and CD header out, new header in.
void BM_ChecksumIncremental(benchmark::State& st) {
  auto f = input(Kind::ChannelDataToPeer, static_cast<size_t>(st.range(0)));
  Udp4View u{};
  (void)parse_udp4(f.data(), f.size(), u);
  for (auto _ : st) {
    benchmark::DoNotOptimize(f.data());
    uint32_t removed = detail::header_sum<detail::V4>(u.src_ip, u.dst_ip, u.src_port, u.dst_port,
                                                      static_cast<uint16_t>(kUdpHeader + u.payload_len));
    removed += sum16(f.data() + kL2L3L4, 4);
    uint32_t added = detail::header_sum<detail::V4>(kServer, kPeer, np(kRelayPort), np(kPeerPort),
                                                    static_cast<uint16_t>(kUdpHeader + u.payload_len - 4));
    benchmark::DoNotOptimize(checksum_update(u.udp_checksum, removed, added));
  }
  st.SetItemsProcessed(static_cast<int64_t>(st.iterations()));
}

// What a full recomputation would cost instead (reads the whole payload).
void BM_ChecksumFull(benchmark::State& st) {
  auto f = input(Kind::ChannelDataToPeer, static_cast<size_t>(st.range(0)));
  for (auto _ : st) {
    benchmark::DoNotOptimize(f.data());
    benchmark::DoNotOptimize(checksum(f.data() + kEthHeader + kIpv4Header, f.size() - kEthHeader - kIpv4Header));
  }
  st.SetItemsProcessed(static_cast<int64_t>(st.iterations()));
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations() * (f.size() - kEthHeader - kIpv4Header)));
}

// Ethernet + IPv4 (with its header checksum) + UDP header write.
void BM_WriteHeaders(benchmark::State& st) {
  FrameBuf b;
  for (auto _ : st) {
    write_udp4_headers(b.buf, kGwMac, kPortMac, kServer, kPeer, np(kRelayPort), np(kPeerPort), 200, 64, 0x1234);
    benchmark::DoNotOptimize(b.buf);
    benchmark::ClobberMemory();
  }
  st.SetItemsProcessed(static_cast<int64_t>(st.iterations()));
}

void BM_FrameCopy(benchmark::State& st) {
  auto f = input(Kind::ChannelDataToPeer, static_cast<size_t>(st.range(0)));
  FrameBuf b;
  for (auto _ : st) {
    std::memcpy(b.buf + FrameBuf::kHeadroom, f.data(), f.size());
    benchmark::DoNotOptimize(b.buf);
    benchmark::ClobberMemory();
  }
  st.SetItemsProcessed(static_cast<int64_t>(st.iterations()));
}

template <Kind K>
void BM_ProcessFrame(benchmark::State& st) {
  auto tmpl = input(K, static_cast<size_t>(st.range(0)));
  OneFlow t(K != Kind::PeerToClientDataIndication);
  PortContext pc = port_context(kServer, kTurnPort);
  FrameBuf b;
  const Path want = K == Kind::ChannelDataToPeer         ? Path::ChannelDataToPeer
                    : K == Kind::SendToPeer              ? Path::SendIndicationToPeer
                    : K == Kind::PeerToClientChannelData ? Path::PeerToClientChannelData
                                                         : Path::PeerToClientDataIndication;
  {  // the frame must take the path this benchmark is named after
    std::memcpy(b.buf + FrameBuf::kHeadroom, tmpl.data(), tmpl.size());
    Frame f{b.buf, FrameBuf::kHeadroom, static_cast<uint16_t>(tmpl.size()), sizeof b.buf};
    Verdict v = process_frame(f, t, pc, kNow);
    if (v.kind != Verdict::Tx || v.path != want) {
      st.SkipWithError("prepared frame did not take the expected fast path");
      return;
    }
  }
  for (auto _ : st) {
    std::memcpy(b.buf + FrameBuf::kHeadroom, tmpl.data(), tmpl.size());
    Frame f{b.buf, FrameBuf::kHeadroom, static_cast<uint16_t>(tmpl.size()), sizeof b.buf};
    Verdict v = process_frame(f, t, pc, kNow);
    benchmark::DoNotOptimize(v);
    benchmark::ClobberMemory();
  }
  st.SetItemsProcessed(static_cast<int64_t>(st.iterations()));
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations() * tmpl.size()));
}

BENCHMARK(BM_ParseUdp4)->Arg(200);
BENCHMARK(BM_ChecksumIncremental)->Arg(200);
BENCHMARK(BM_ChecksumFull)->Arg(200)->Arg(1200);
BENCHMARK(BM_WriteHeaders);
BENCHMARK(BM_FrameCopy)->Arg(200)->Arg(1200);
BENCHMARK(BM_ProcessFrame<Kind::ChannelDataToPeer>)->Name("BM_ProcessFrame/ChannelDataToPeer")->Arg(200)->Arg(1200);
BENCHMARK(BM_ProcessFrame<Kind::SendToPeer>)->Name("BM_ProcessFrame/SendIndicationToPeer")->Arg(200)->Arg(1200);
BENCHMARK(BM_ProcessFrame<Kind::PeerToClientChannelData>)
    ->Name("BM_ProcessFrame/PeerToClientChannelData")
    ->Arg(200)
    ->Arg(1200);
BENCHMARK(BM_ProcessFrame<Kind::PeerToClientDataIndication>)
    ->Name("BM_ProcessFrame/PeerToClientDataIndication")
    ->Arg(200)
    ->Arg(1200);

}  // namespace
}  // namespace turn::dp

BENCHMARK_MAIN();
