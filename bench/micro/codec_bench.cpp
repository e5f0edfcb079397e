// SPDX-License-Identifier: Apache-2.0
// Micro-benchmarks of the codec hot units (STYLE G18): parse of a browser's
// Allocate request, its MESSAGE-INTEGRITY check, building an Allocate success
// response, parse of a ChannelData frame, and CRC-32. Each reports items and
// bytes per second and allocations per iteration: C++ operator new (counted
// by the replacement below) plus OpenSSL's own allocations (counted through
// CRYPTO_set_mem_functions), see alloc_counter.h. The parsers must show 0.
#include <benchmark/benchmark.h>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "bench/micro/alloc_counter.h"
#include "common/crypto/integrity.h"
#include "common/stun/builder.h"
#include "common/stun/fingerprint.h"
#include "common/stun/message.h"
#include "common/turn/channel_data.h"

namespace {

using namespace turn;
using namespace turn::stun;

// Reports allocations per iteration over the timed loop.
class AllocCounter {
 public:
  explicit AllocCounter(benchmark::State& state)
      : state_(state), new0_(bench::new_calls()), ossl0_(bench::openssl_calls()) {}
  ~AllocCounter() {
    auto n = static_cast<double>(bench::new_calls() - new0_);
    auto o = static_cast<double>(bench::openssl_calls() - ossl0_);
    state_.counters["allocs"] = benchmark::Counter(n + o, benchmark::Counter::kAvgIterations);
    state_.counters["ossl_allocs"] = benchmark::Counter(o, benchmark::Counter::kAvgIterations);
  }
  AllocCounter(const AllocCounter&) = delete;
  AllocCounter& operator=(const AllocCounter&) = delete;

 private:
  benchmark::State& state_;
  uint64_t new0_, ossl0_;
};

constexpr uint8_t kTxid[12] = {0x5e, 0x1f, 0x2a, 0x33, 0x01, 0x9c, 0x77, 0x42, 0xa0, 0x0b, 0x6d, 0x18};
constexpr std::string_view kUsername = "1700003600:alice";  // TURN REST style
constexpr std::string_view kRealm = "example.org";
constexpr std::string_view kPassword = "dGhpcyBpcyBub3QgYSBzZWNyZXQ=";
constexpr std::string_view kNonce = "0000018bd4a2f3c1a2e94f0c6b1d7e3a";

crypto::Key md5_key(std::string_view password = kPassword) {
  return crypto::long_term_key(PasswordAlgorithm::Md5, kUsername, kRealm, password);
}

// An authenticated Allocate as browsers (libwebrtc) send it: REQUESTED-
// TRANSPORT, LIFETIME, USERNAME, REALM, NONCE, MESSAGE-INTEGRITY, FINGERPRINT.
std::vector<uint8_t> allocate_request(std::string_view password = kPassword) {
  std::vector<uint8_t> buf(512);
  MessageBuilder b(MutableBytes{buf}, Method::Allocate, Class::Request, Bytes{kTxid});
  b.add_requested_transport(kTransportUdp)
      .add_u32(Attr::Lifetime, 600)
      .add_text(Attr::Username, kUsername)
      .add_text(Attr::Realm, kRealm)
      .add_text(Attr::Nonce, kNonce);
  crypto::add_integrity(b, md5_key(password).view());
  b.add_fingerprint();
  Bytes m = b.finish();
  if (m.empty()) std::abort();
  return {m.begin(), m.end()};
}

void BM_ParseAllocateRequest(benchmark::State& state) {
  const auto msg = allocate_request();
  MessageView view;
  {
    AllocCounter allocs(state);
    for (auto _ : state) {
      const uint8_t* p = msg.data();
      benchmark::DoNotOptimize(p);
      ParseError e = parse(Bytes{p, msg.size()}, view);
      benchmark::DoNotOptimize(e);
      benchmark::DoNotOptimize(view);
    }
  }
  if (parse(Bytes{msg}, view) != ParseError::Ok) state.SkipWithError("parse failed");
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(msg.size()));
  state.counters["msg_bytes"] = static_cast<double>(msg.size());
}
BENCHMARK(BM_ParseAllocateRequest);

void BM_CheckIntegrityMd5(benchmark::State& state) {
  const auto msg = allocate_request();
  const crypto::Key key = md5_key();
  MessageView view;
  if (parse(Bytes{msg}, view) != ParseError::Ok) {
    state.SkipWithError("parse failed");
    return;
  }
  bool ok = false;
  {
    AllocCounter allocs(state);
    for (auto _ : state) {
      ok = crypto::check_integrity(view, key.view());
      benchmark::DoNotOptimize(ok);
    }
  }
  if (!ok) state.SkipWithError("integrity did not verify");
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(msg.size()));
}
BENCHMARK(BM_CheckIntegrityMd5);

// The same check with the key changing on every call (two requests under
// two passwords, alternately): the per-thread HMAC context is keyed again
// each time instead of re-armed with the key it holds (common/crypto).
void BM_CheckIntegrityMd5NewKey(benchmark::State& state) {
  const std::vector<uint8_t> msgs[2] = {allocate_request(), allocate_request("another password")};
  const crypto::Key keys[2] = {md5_key(), md5_key("another password")};
  MessageView views[2];
  for (int i = 0; i < 2; ++i)
    if (parse(Bytes{msgs[i]}, views[i]) != ParseError::Ok) {
      state.SkipWithError("parse failed");
      return;
    }
  bool ok = true;
  size_t i = 0;
  {
    AllocCounter allocs(state);
    for (auto _ : state) {
      bool good = crypto::check_integrity(views[i], keys[i].view());
      benchmark::DoNotOptimize(good);
      ok = ok && good;
      i ^= 1;
    }
  }
  if (!ok) state.SkipWithError("integrity did not verify");
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(msgs[0].size()));
}
BENCHMARK(BM_CheckIntegrityMd5NewKey);

// Allocate success response: XOR-RELAYED-ADDRESS, XOR-MAPPED-ADDRESS,
// LIFETIME, SOFTWARE, then (when `sign`) MESSAGE-INTEGRITY, and FINGERPRINT.
void build_allocate_success(benchmark::State& state, bool sign) {
  const SocketAddress relayed = *SocketAddress::parse("203.0.113.10:49152");
  const SocketAddress mapped = *SocketAddress::parse("198.51.100.7:61000");
  const crypto::Key key = md5_key();
  uint8_t buf[256];
  size_t size = 0;
  {
    AllocCounter allocs(state);
    for (auto _ : state) {
      MessageBuilder b(MutableBytes{buf}, Method::Allocate, Class::SuccessResponse, Bytes{kTxid});
      b.add_xor_address(Attr::XorRelayedAddress, relayed)
          .add_xor_address(Attr::XorMappedAddress, mapped)
          .add_u32(Attr::Lifetime, 600)
          .add_text(Attr::Software, "dpturn");
      if (sign) crypto::add_integrity(b, key.view());
      b.add_fingerprint();
      Bytes out = b.finish();
      size = out.size();
      benchmark::DoNotOptimize(out);
      benchmark::ClobberMemory();
    }
  }
  if (size == 0) state.SkipWithError("build overflowed");
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(size));
  state.counters["msg_bytes"] = static_cast<double>(size);
}

void BM_BuildAllocateSuccess(benchmark::State& state) { build_allocate_success(state, true); }
BENCHMARK(BM_BuildAllocateSuccess);

// The same without MESSAGE-INTEGRITY: the builder's own cost.
void BM_BuildAllocateSuccessNoIntegrity(benchmark::State& state) { build_allocate_success(state, false); }
BENCHMARK(BM_BuildAllocateSuccessNoIntegrity);

void BM_ParseChannelData(benchmark::State& state) {
  // A 200-byte frame: 4-byte header + 196 bytes of media.
  std::vector<uint8_t> frame(200);
  write_channel_data_header(frame.data(), 0x4001, static_cast<uint16_t>(frame.size() - 4));
  for (size_t i = 4; i < frame.size(); ++i) frame[i] = static_cast<uint8_t>(i);
  ChannelDataView view;
  ChannelDataError e = ChannelDataError::TooShort;
  {
    AllocCounter allocs(state);
    for (auto _ : state) {
      const uint8_t* p = frame.data();
      benchmark::DoNotOptimize(p);  // re-read the frame every iteration
      e = parse_channel_data(Bytes{p, frame.size()}, view);
      benchmark::DoNotOptimize(e);
      benchmark::DoNotOptimize(view);
    }
  }
  if (e != ChannelDataError::Ok) state.SkipWithError("parse failed");
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(frame.size()));
}
BENCHMARK(BM_ParseChannelData);

void BM_Crc32(benchmark::State& state) {
  std::vector<uint8_t> data(static_cast<size_t>(state.range(0)));
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 31);
  {
    AllocCounter allocs(state);
    for (auto _ : state) {
      const uint8_t* p = data.data();
      benchmark::DoNotOptimize(p);
      uint32_t c = crc32(Bytes{p, data.size()});
      benchmark::DoNotOptimize(c);
    }
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_Crc32)->Arg(200)->Arg(1200);

}  // namespace

int main(int argc, char** argv) {
  // Must come before OpenSSL allocates anything.
  if (!turn::bench::install_openssl_counter()) std::fprintf(stderr, "warning: OpenSSL allocations are not counted\n");
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
