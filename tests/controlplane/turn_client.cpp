// SPDX-License-Identifier: Apache-2.0
// The tests' TURN client over the product session, a UDP peer, free ports
// (see turn_client.h).
#include "tests/controlplane/turn_client.h"

#include <ifaddrs.h>
#include <net/if.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <random>
#include <stdexcept>

#include "common/turn/channel_data.h"
#include "controlplane/net/socket.h"

namespace turn::cptest {

namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void fail(const std::string& what) { throw std::runtime_error(what + ": " + std::strerror(errno)); }

bool bindable(int type, uint16_t port) {
  int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_storage ss;
  socklen_t len = cp::to_sockaddr(SocketAddress{IpAddress::v4(0x7f000001), port}, ss);
  bool ok = bind(fd, reinterpret_cast<sockaddr*>(&ss), len) == 0;
  close(fd);
  return ok;
}

std::mt19937& rng() {
  static std::mt19937 r{std::random_device{}()};
  return r;
}

cp::TurnSession::Options test_options(Proto proto, const SocketAddress& server) {
  cp::TurnSession::Options o;
  o.server = server;
  o.transport = proto;
  o.timeout = std::chrono::milliseconds(kReplyTimeoutMs);
  o.retransmit = false;
  return o;
}

}  // namespace

// ---- TurnClient -------------------------------------------------------------

TurnClient::TurnClient(Proto proto, const SocketAddress& server) : TurnSession(test_options(proto, server)) {
  if (!connect()) throw std::runtime_error(error());
}

void TurnClient::check(bool ok) const {
  if (!ok && failure() == Failure::Io) throw std::runtime_error(error());
}

Reply TurnClient::checked(Reply r) const {
  check(r.received());
  return r;
}

std::vector<uint8_t> TurnClient::build(stun::Method m, const Attrs& attrs, const Signing& s, Bytes txid) const {
  auto out = TurnSession::build(m, attrs, s, txid);
  if (out.empty()) throw std::runtime_error("request does not fit the build buffer");
  return out;
}

void TurnClient::send_raw(Bytes data) { check(TurnSession::send_raw(data)); }

Reply TurnClient::transact(Bytes request) { return checked(TurnSession::transact(request)); }

Reply TurnClient::request(stun::Method m, const Attrs& attrs, const Signing& s) {
  return checked(TurnSession::request(m, attrs, s));
}

Reply TurnClient::allocate(const Attrs& extra, const Signing& s) { return checked(TurnSession::allocate(extra, s)); }

Reply TurnClient::refresh(std::optional<uint32_t> lifetime, const Signing& s) {
  return checked(TurnSession::refresh(lifetime, s));
}

Reply TurnClient::create_permission(const SocketAddress& peer, const Signing& s) {
  return checked(TurnSession::create_permission(peer, s));
}

Reply TurnClient::channel_bind(uint16_t channel, const SocketAddress& peer, const Signing& s) {
  return checked(TurnSession::channel_bind(channel, peer, s));
}

void TurnClient::send_indication(const SocketAddress& peer, Bytes data, const Attrs& extra) {
  check(TurnSession::send_indication(peer, data, extra));
}

void TurnClient::send_channel_data(uint16_t channel, Bytes data) {
  check(TurnSession::send_channel_data(channel, data));
}

std::optional<std::vector<uint8_t>> TurnClient::next_frame(int timeout_ms) {
  auto f = TurnSession::next_frame(std::chrono::milliseconds(timeout_ms));
  check(f.has_value());
  return f;
}

Reply TurnClient::challenge() {
  Signing none;
  none.integrity = Integrity::None;
  return transact(build(
      stun::Method::Allocate, [](stun::MessageBuilder& b) { b.add_requested_transport(stun::kTransportUdp); }, none));
}

// ---- UdpPeer ----------------------------------------------------------------

UdpPeer::UdpPeer(const IpAddress& ip) {
  sockaddr_storage ss;
  socklen_t len = cp::to_sockaddr(SocketAddress{ip, 0}, ss);
  fd_ = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) fail("socket (peer)");
  if (bind(fd_, reinterpret_cast<sockaddr*>(&ss), len) != 0) fail("bind (peer)");
}

UdpPeer::~UdpPeer() {
  if (fd_ >= 0) close(fd_);
}

SocketAddress UdpPeer::address() const { return cp::local_address(fd_); }

void UdpPeer::send_to(const SocketAddress& to, Bytes data) {
  sockaddr_storage ss;
  socklen_t len = cp::to_sockaddr(to, ss);
  if (sendto(fd_, data.data(), data.size(), 0, reinterpret_cast<sockaddr*>(&ss), len) < 0) fail("sendto (peer)");
}

std::optional<UdpPeer::Datagram> UdpPeer::receive(int timeout_ms) {
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    pollfd p{fd_, POLLIN, 0};
    auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
    int r = poll(&p, 1, static_cast<int>(std::max<long long>(0, left)));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return std::nullopt;
    std::vector<uint8_t> buf(70000);
    sockaddr_storage ss{};
    socklen_t sl = sizeof ss;
    ssize_t n = recvfrom(fd_, buf.data(), buf.size(), MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&ss), &sl);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR || errno == ECONNREFUSED) continue;
      fail("recvfrom (peer)");
    }
    buf.resize(static_cast<size_t>(n));
    return Datagram{cp::from_sockaddr(ss), std::move(buf)};
  }
}

// ---- helpers ----------------------------------------------------------------

std::optional<ChannelFrame> parse_channel_frame(Bytes frame) {
  if (frame.size() < kChannelDataHeaderSize || (frame[0] & 0xC0) != 0x40) return std::nullopt;
  ChannelFrame f;
  f.channel = load_be16(frame.data());
  f.length = load_be16(frame.data() + 2);
  if (f.length > frame.size() - kChannelDataHeaderSize) return std::nullopt;
  f.data.assign(frame.begin() + kChannelDataHeaderSize, frame.begin() + kChannelDataHeaderSize + f.length);
  return f;
}

uint16_t free_port() {
  for (int attempt = 0; attempt < 200; ++attempt) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) fail("socket");
    sockaddr_storage ss;
    socklen_t len = cp::to_sockaddr(SocketAddress{IpAddress::v4(0x7f000001), 0}, ss);
    if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) fail("bind");
    uint16_t port = cp::local_address(fd).port;
    close(fd);
    if (bindable(SOCK_STREAM, port)) return port;
  }
  throw std::runtime_error("no free port for UDP and TCP");
}

uint16_t free_port_range(uint16_t count) {
  // Below the usual ephemeral range (32768-60999), so the test's own client
  // sockets do not land in the relay range.
  std::uniform_int_distribution<int> base_dist(10000, 32000 - count - 2);
  for (int attempt = 0; attempt < 500; ++attempt) {
    uint16_t base = static_cast<uint16_t>(base_dist(rng()) & ~1);
    bool all = true;
    for (uint16_t p = base; p < base + count && all; ++p) all = bindable(SOCK_DGRAM, p);
    if (all) return base;
  }
  throw std::runtime_error("no free port range");
}

std::optional<IpAddress> non_loopback_ipv4() {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return std::nullopt;
  std::optional<IpAddress> out;
  for (ifaddrs* i = list; i && !out; i = i->ifa_next) {
    if (!i->ifa_addr || !(i->ifa_flags & IFF_UP) || (i->ifa_flags & IFF_LOOPBACK)) continue;
    if (i->ifa_addr->sa_family != AF_INET) continue;
    auto a = IpAddress::v4(reinterpret_cast<const uint8_t*>(&reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr));
    if ((a.v4_host_order() >> 24) != 127 && (a.v4_host_order() & 0xFFFF0000u) != 0xA9FE0000u) out = a;
  }
  freeifaddrs(list);
  return out;
}

std::vector<uint8_t> to_vec(std::string_view s) { return {s.begin(), s.end()}; }

Bytes as_bytes(const std::string& s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }

}  // namespace turn::cptest
