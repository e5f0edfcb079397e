// SPDX-License-Identifier: Apache-2.0
// Test TURN client over loopback sockets (see turn_client.h).
#include "tests/controlplane/turn_client.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <array>
#include <cstring>
#include <fstream>
#include <random>
#include <stdexcept>

#include "common/stun/attributes.h"
#include "common/turn/channel_data.h"

namespace turn::cptest {

namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void fail(const std::string& what) { throw std::runtime_error(what + ": " + std::strerror(errno)); }

socklen_t to_sa(const SocketAddress& a, sockaddr_storage& ss) {
  std::memset(&ss, 0, sizeof ss);
  if (a.ip.is_v4()) {
    auto* s = reinterpret_cast<sockaddr_in*>(&ss);
    s->sin_family = AF_INET;
    s->sin_port = htons(a.port);
    std::memcpy(&s->sin_addr, a.ip.v4_bytes(), 4);
    return sizeof(sockaddr_in);
  }
  auto* s = reinterpret_cast<sockaddr_in6*>(&ss);
  s->sin6_family = AF_INET6;
  s->sin6_port = htons(a.port);
  std::memcpy(&s->sin6_addr, a.ip.bytes.data(), 16);
  return sizeof(sockaddr_in6);
}

SocketAddress from_sa(const sockaddr_storage& ss) {
  SocketAddress a;
  if (ss.ss_family == AF_INET) {
    const auto* s = reinterpret_cast<const sockaddr_in*>(&ss);
    a.ip = IpAddress::v4(reinterpret_cast<const uint8_t*>(&s->sin_addr));
    a.port = ntohs(s->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    const auto* s = reinterpret_cast<const sockaddr_in6*>(&ss);
    a.ip = IpAddress::v6(reinterpret_cast<const uint8_t*>(&s->sin6_addr));
    a.port = ntohs(s->sin6_port);
  }
  return a;
}

SocketAddress local_of(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) fail("getsockname");
  return from_sa(ss);
}

// Milliseconds left until `deadline` (0 when past).
int left_ms(Clock::time_point deadline) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return ms > 0 ? static_cast<int>(ms) : 0;
}

bool wait_readable(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  int r;
  do {
    r = poll(&p, 1, timeout_ms);
  } while (r < 0 && errno == EINTR);
  return r > 0;
}

bool parse_into(const std::vector<uint8_t>& raw, stun::MessageView& v) {
  return !raw.empty() && stun::parse(Bytes{raw.data(), raw.size()}, v) == stun::ParseError::Ok;
}

bool bindable(int type, uint16_t port) {
  int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_storage ss;
  socklen_t len = to_sa(SocketAddress{IpAddress::v4(0x7f000001), port}, ss);
  bool ok = bind(fd, reinterpret_cast<sockaddr*>(&ss), len) == 0;
  close(fd);
  return ok;
}

std::mt19937& rng() {
  static std::mt19937 r{std::random_device{}()};
  return r;
}

}  // namespace

// ---- Reply -------------------------------------------------------------------

bool Reply::parses() const {
  stun::MessageView v;
  return parse_into(raw, v);
}

stun::Class Reply::cls() const {
  if (raw.size() < 2) throw std::runtime_error("no reply");
  return stun::class_of(load_be16(raw.data()));
}

stun::Method Reply::method() const {
  if (raw.size() < 2) throw std::runtime_error("no reply");
  return stun::method_of(load_be16(raw.data()));
}

int Reply::error() const {
  stun::MessageView v;
  if (!parse_into(raw, v)) return 0;
  const auto* a = v.find(stun::Attr::ErrorCode);
  if (!a) return 0;
  auto e = stun::read_error_code(v.value(*a));
  return e ? e->code : -1;
}

bool Reply::has(stun::Attr a) const {
  stun::MessageView v;
  return parse_into(raw, v) && v.has(a);
}

std::optional<SocketAddress> Reply::xor_address(stun::Attr a) const {
  stun::MessageView v;
  if (!parse_into(raw, v)) return std::nullopt;
  const auto* ref = v.find(a);
  if (!ref) return std::nullopt;
  auto r = stun::read_xor_address(v.value(*ref), v.xor_mask());
  if (!r) return std::nullopt;
  return *r;
}

std::optional<SocketAddress> Reply::address(stun::Attr a) const {
  stun::MessageView v;
  if (!parse_into(raw, v)) return std::nullopt;
  const auto* ref = v.find(a);
  if (!ref) return std::nullopt;
  auto r = stun::read_address(v.value(*ref));
  if (!r) return std::nullopt;
  return *r;
}

std::optional<uint32_t> Reply::u32(stun::Attr a) const {
  stun::MessageView v;
  if (!parse_into(raw, v)) return std::nullopt;
  const auto* ref = v.find(a);
  if (!ref) return std::nullopt;
  auto r = stun::read_u32(v.value(*ref));
  if (!r) return std::nullopt;
  return *r;
}

std::optional<std::string> Reply::text(stun::Attr a) const {
  stun::MessageView v;
  if (!parse_into(raw, v)) return std::nullopt;
  const auto* ref = v.find(a);
  if (!ref) return std::nullopt;
  return std::string(v.text(*ref));
}

std::vector<uint16_t> Reply::unknown_attributes() const {
  stun::MessageView v;
  std::vector<uint16_t> out;
  if (!parse_into(raw, v)) return out;
  const auto* ref = v.find(stun::Attr::UnknownAttributes);
  if (!ref) return out;
  uint16_t types[32];
  auto n = stun::read_unknown_attributes(v.value(*ref), types);
  if (!n) return out;
  out.assign(types, types + std::min<size_t>(*n, 32));
  return out;
}

std::optional<uint64_t> Reply::reservation_token() const {
  stun::MessageView v;
  if (!parse_into(raw, v)) return std::nullopt;
  const auto* ref = v.find(stun::Attr::ReservationToken);
  if (!ref) return std::nullopt;
  auto r = stun::read_reservation_token(v.value(*ref));
  if (!r) return std::nullopt;
  return *r;
}

std::vector<uint16_t> Reply::password_algorithms() const {
  stun::MessageView v;
  std::vector<uint16_t> out;
  if (!parse_into(raw, v)) return out;
  const auto* ref = v.find(stun::Attr::PasswordAlgorithms);
  if (!ref) return out;
  std::array<stun::PasswordAlgorithmValue, 8> algs{};
  auto n = stun::read_password_algorithms(v.value(*ref), algs);
  if (!n) return out;
  for (size_t i = 0; i < std::min<size_t>(*n, algs.size()); ++i) out.push_back(algs[i].algorithm);
  return out;
}

std::optional<std::vector<uint8_t>> Reply::data() const {
  stun::MessageView v;
  if (!parse_into(raw, v)) return std::nullopt;
  const auto* ref = v.find(stun::Attr::Data);
  if (!ref) return std::nullopt;
  auto d = v.value(*ref);
  return std::vector<uint8_t>(d.begin(), d.end());
}

bool Reply::integrity_ok(const crypto::Key& key) const {
  stun::MessageView v;
  return parse_into(raw, v) && crypto::check_integrity(v, key.view());
}

bool Reply::integrity_sha256_ok(const crypto::Key& key) const {
  stun::MessageView v;
  return parse_into(raw, v) && crypto::check_integrity_sha256(v, key.view());
}

std::vector<uint8_t> Reply::transaction_id() const {
  if (raw.size() < stun::kHeaderSize) return {};
  return {raw.begin() + 8, raw.begin() + 20};
}

// ---- TurnClient -------------------------------------------------------------

TurnClient::TurnClient(Proto proto, const SocketAddress& server) : proto_(proto) {
  sockaddr_storage ss;
  socklen_t len = to_sa(server, ss);
  fd_ = socket(ss.ss_family, (proto == Proto::Udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
  if (fd_ < 0) fail("socket");
  if (proto == Proto::Tcp) {
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  // UDP too: a connected socket only hears from the server, and its local
  // address is the 5-tuple's client address.
  if (connect(fd_, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    int e = errno;
    close(fd_);
    errno = e;
    fail("connect to " + server.to_string());
  }
}

TurnClient::~TurnClient() {
  if (fd_ >= 0) close(fd_);
}

SocketAddress TurnClient::local() const { return local_of(fd_); }

void TurnClient::set_credentials(std::string username, std::string password, std::string realm) {
  username_ = std::move(username);
  password_ = std::move(password);
  realm_ = std::move(realm);
}

crypto::Key TurnClient::key(stun::PasswordAlgorithm alg) const {
  return crypto::long_term_key(alg, username_, realm_, password_);
}

std::vector<uint8_t> TurnClient::build(stun::Method m, const Attrs& attrs, const Signing& s,
                                       std::vector<uint8_t> txid) const {
  if (txid.empty()) txid = random_txid();
  std::vector<uint8_t> buf(4096);
  stun::MessageBuilder b(MutableBytes{buf.data(), buf.size()}, m, stun::Class::Request,
                         Bytes{txid.data(), txid.size()});
  if (attrs) attrs(b);
  if (s.integrity != Integrity::None) {
    if (s.username && s.userhash) {
      auto h = crypto::userhash(username_, s.realm_override ? *s.realm_override : realm_);
      b.add(stun::Attr::Userhash, Bytes{h.data(), h.size()});
    } else if (s.username) {
      b.add_text(stun::Attr::Username, username_);
    }
    if (s.realm) b.add_text(stun::Attr::Realm, s.realm_override ? *s.realm_override : realm_);
    if (s.nonce) b.add_text(stun::Attr::Nonce, s.nonce_override ? *s.nonce_override : nonce_);
    if (s.send_algorithm.value_or(s.algorithm != stun::PasswordAlgorithm::Md5)) {
      if (!s.omit_algorithms) {
        if (s.algorithms_override)
          b.add_password_algorithms(*s.algorithms_override);
        else if (!offered_algorithms_.empty())
          b.add(stun::Attr::PasswordAlgorithms, Bytes{offered_algorithms_.data(), offered_algorithms_.size()});
      }
      b.add_password_algorithm(s.algorithm);
    }
    crypto::Key k = key(s.algorithm);
    if (s.integrity == Integrity::Sha1)
      crypto::add_integrity(b, k.view());
    else
      crypto::add_integrity_sha256(b, k.view());
  }
  if (s.fingerprint) b.add_fingerprint();
  Bytes out = b.finish();
  if (out.empty()) throw std::runtime_error("request does not fit the build buffer");
  return {out.begin(), out.end()};
}

void TurnClient::abort_connection() {
  if (fd_ < 0) return;
  linger l{1, 0};
  setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  close(fd_);
  fd_ = -1;
}

void TurnClient::send_raw(Bytes data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::send(fd_, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      // UDP: a previous datagram's ICMP error can surface here; not ours.
      if (proto_ == Proto::Udp && errno == ECONNREFUSED) continue;
      fail("send");
    }
    done += static_cast<size_t>(n);
    if (proto_ == Proto::Udp) break;
  }
}

std::optional<std::vector<uint8_t>> TurnClient::read_frame(int timeout_ms) {
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  if (proto_ == Proto::Udp) {
    for (;;) {
      if (!wait_readable(fd_, left_ms(deadline))) return std::nullopt;
      std::vector<uint8_t> buf(70000);
      ssize_t n = recv(fd_, buf.data(), buf.size(), MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR || errno == ECONNREFUSED) continue;
        fail("recv");
      }
      buf.resize(static_cast<size_t>(n));
      return buf;
    }
  }
  for (;;) {
    long frame = stun::stream_frame_length(Bytes{stream_buf_.data(), stream_buf_.size()});
    if (frame < 0) throw std::runtime_error("TCP stream from the server lost its framing");
    if (frame > 0 && static_cast<size_t>(frame) <= stream_buf_.size()) {
      std::vector<uint8_t> out(stream_buf_.begin(), stream_buf_.begin() + frame);
      stream_buf_.erase(stream_buf_.begin(), stream_buf_.begin() + frame);
      return out;
    }
    if (!wait_readable(fd_, left_ms(deadline))) return std::nullopt;
    uint8_t buf[65536];
    ssize_t n = recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      fail("recv (TCP)");
    }
    if (n == 0) return std::nullopt;  // server closed
    stream_buf_.insert(stream_buf_.end(), buf, buf + n);
  }
}

Reply TurnClient::transact(const std::vector<uint8_t>& request, int timeout_ms) {
  send_raw(Bytes{request.data(), request.size()});
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    auto f = read_frame(left_ms(deadline));
    if (!f) return Reply{};
    const auto& b = *f;
    bool response =
        b.size() >= stun::kHeaderSize && (b[0] & 0xC0) == 0 && std::memcmp(b.data() + 8, request.data() + 8, 12) == 0;
    if (response) {
      stun::Class c = stun::class_of(load_be16(b.data()));
      if (c == stun::Class::SuccessResponse || c == stun::Class::ErrorResponse) {
        Reply r{b};
        int code = r.error();
        if (code == 401 || code == 438) {
          if (auto n = r.text(stun::Attr::Nonce)) nonce_ = *n;
          if (auto rl = r.text(stun::Attr::Realm)) realm_ = *rl;
          stun::MessageView v;
          if (parse_into(r.raw, v))
            if (const auto* pa = v.find(stun::Attr::PasswordAlgorithms)) {
              auto val = v.value(*pa);
              offered_algorithms_.assign(val.begin(), val.end());
            }
        }
        return r;
      }
    }
    pending_.push_back(std::move(*f));
  }
}

Reply TurnClient::request(stun::Method m, const Attrs& attrs, const Signing& s) {
  Reply r = transact(build(m, attrs, s));
  if (s.integrity != Integrity::None && !s.nonce_override && r.received() && (r.error() == 401 || r.error() == 438) &&
      r.has(stun::Attr::Nonce))
    r = transact(build(m, attrs, s));
  return r;
}

Reply TurnClient::challenge() {
  Signing none;
  none.integrity = Integrity::None;
  return transact(build(
      stun::Method::Allocate, [](stun::MessageBuilder& b) { b.add_requested_transport(stun::kTransportUdp); }, none));
}

Reply TurnClient::allocate(const Attrs& extra, const Signing& s) {
  return request(
      stun::Method::Allocate,
      [&extra](stun::MessageBuilder& b) {
        b.add_requested_transport(stun::kTransportUdp);
        if (extra) extra(b);
      },
      s);
}

Reply TurnClient::refresh(std::optional<uint32_t> lifetime, const Signing& s) {
  return request(
      stun::Method::Refresh,
      [lifetime](stun::MessageBuilder& b) {
        if (lifetime) b.add_u32(stun::Attr::Lifetime, *lifetime);
      },
      s);
}

Reply TurnClient::create_permission(const SocketAddress& peer, const Signing& s) {
  return request(
      stun::Method::CreatePermission,
      [peer](stun::MessageBuilder& b) { b.add_xor_address(stun::Attr::XorPeerAddress, peer); }, s);
}

Reply TurnClient::channel_bind(uint16_t channel, const SocketAddress& peer, const Signing& s) {
  return request(
      stun::Method::ChannelBind,
      [channel, peer](stun::MessageBuilder& b) {
        b.add_channel_number(channel);
        b.add_xor_address(stun::Attr::XorPeerAddress, peer);
      },
      s);
}

void TurnClient::send_indication(const SocketAddress& peer, Bytes data, const Attrs& extra) {
  auto txid = random_txid();
  std::vector<uint8_t> buf(data.size() + 512);
  stun::MessageBuilder b(MutableBytes{buf.data(), buf.size()}, stun::Method::Send, stun::Class::Indication,
                         Bytes{txid.data(), txid.size()});
  b.add_xor_address(stun::Attr::XorPeerAddress, peer);
  b.add(stun::Attr::Data, data);
  if (extra) extra(b);
  Bytes out = b.finish();
  if (out.empty()) throw std::runtime_error("Send indication does not fit");
  send_raw(out);
}

void TurnClient::send_channel_data(uint16_t channel, Bytes data) {
  size_t total = kChannelDataHeaderSize + (proto_ == Proto::Tcp ? pad4(data.size()) : data.size());
  std::vector<uint8_t> buf(total, 0);
  write_channel_data_header(buf.data(), channel, static_cast<uint16_t>(data.size()));
  std::memcpy(buf.data() + kChannelDataHeaderSize, data.data(), data.size());
  send_raw(Bytes{buf.data(), buf.size()});
}

std::optional<std::vector<uint8_t>> TurnClient::next_frame(int timeout_ms) {
  if (!pending_.empty()) {
    auto f = std::move(pending_.front());
    pending_.pop_front();
    return f;
  }
  return read_frame(timeout_ms);
}

// ---- UdpPeer ----------------------------------------------------------------

UdpPeer::UdpPeer(const IpAddress& ip) {
  sockaddr_storage ss;
  socklen_t len = to_sa(SocketAddress{ip, 0}, ss);
  fd_ = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) fail("socket (peer)");
  if (bind(fd_, reinterpret_cast<sockaddr*>(&ss), len) != 0) fail("bind (peer)");
}

UdpPeer::~UdpPeer() {
  if (fd_ >= 0) close(fd_);
}

SocketAddress UdpPeer::address() const { return local_of(fd_); }

void UdpPeer::send_to(const SocketAddress& to, Bytes data) {
  sockaddr_storage ss;
  socklen_t len = to_sa(to, ss);
  if (sendto(fd_, data.data(), data.size(), 0, reinterpret_cast<sockaddr*>(&ss), len) < 0) fail("sendto (peer)");
}

std::optional<UdpPeer::Datagram> UdpPeer::receive(int timeout_ms) {
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    if (!wait_readable(fd_, left_ms(deadline))) return std::nullopt;
    std::vector<uint8_t> buf(70000);
    sockaddr_storage ss{};
    socklen_t sl = sizeof ss;
    ssize_t n = recvfrom(fd_, buf.data(), buf.size(), MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&ss), &sl);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR || errno == ECONNREFUSED) continue;
      fail("recvfrom (peer)");
    }
    buf.resize(static_cast<size_t>(n));
    return Datagram{from_sa(ss), std::move(buf)};
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
    socklen_t len = to_sa(SocketAddress{IpAddress::v4(0x7f000001), 0}, ss);
    if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) fail("bind");
    uint16_t port = local_of(fd).port;
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

std::vector<uint8_t> random_txid() {
  std::vector<uint8_t> t(stun::kTransactionIdSize);
  crypto::random_bytes(MutableBytes{t.data(), t.size()});
  return t;
}

std::vector<uint8_t> to_vec(std::string_view s) { return {s.begin(), s.end()}; }

Bytes as_bytes(const std::string& s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }

}  // namespace turn::cptest
