// SPDX-License-Identifier: Apache-2.0
// The kernel-socket relay path: client -> peer (ChannelData §12.6, Send
// indication §10.2) and peer -> client (§10.3 Data indication, §12.6
// ChannelData). This is turn-control's slow path; turn-dataplane takes the
// same flows on its fast path once it has their state.
#include <time.h>  // before linux/errqueue.h, which uses struct timespec
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/stun/attributes.h"
#include "common/turn/channel_data.h"
#include "controlplane/net/socket.h"
#include "controlplane/net/stream.h"
#include "controlplane/server/relay_socket.h"
#include "controlplane/server/turn_server.h"

namespace turn::cp {

using stun::Attr;

namespace {
// Sends one datagram from the relay socket; false with errno set.
bool send_from_relay(int fd, const SocketAddress& peer, const uint8_t* data, size_t len) {
  sockaddr_storage ss;
  socklen_t sl = to_sockaddr(peer, ss);
  return sendto(fd, data, len, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&ss), sl) >= 0;
}

// The largest UDP payload an IP packet to `ip` can carry: 65,535 minus the
// IPv4 (20) and UDP (8) headers, or minus UDP alone for IPv6, whose payload
// length field does not count its own 40-byte header (RFC 8200 §3).
size_t max_udp_payload(const IpAddress& ip) noexcept { return ip.is_v4() ? 65507 : 65527; }
constexpr size_t kMaxDtlsRecord = 16384;

// Why a send from a relay socket failed, as a drop reason. EMSGSIZE: over
// the path MTU with DF set (DONT-FRAGMENT), or over what UDP carries at all.
CpDrop send_failure_reason(int err) noexcept { return err == EMSGSIZE ? CpDrop::TooBigForPath : CpDrop::SendFailed; }
}  // namespace

Allocation* TurnServer::data_allocation(const FiveTuple& t) {
  Allocation* a = allocations_.find(t);
  if (!a) {
    stats_.drop(CpDrop::NoAllocation);
    return nullptr;
  }
  if (a->tcp) {
    stats_.drop(CpDrop::TcpAllocation);  // RFC 6062: data goes over data connections
    return nullptr;
  }
  return a;
}

void TurnServer::handle_channel_data(const FiveTuple& t, Bytes data) {
  ChannelDataView cd;
  if (parse_channel_data(data, cd, cfg_.legacy_channel_range ? kMaxLegacyChannel : kMaxChannel) !=
      ChannelDataError::Ok) {
    stats_.drop(CpDrop::MalformedChannelData);
    return;
  }
  Allocation* a = data_allocation(t);
  if (!a) return;
  auto now = loop_.now();
  auto it = a->channels.find(cd.channel);
  // §12.6: unbound (or expired) channel -> discard.
  if (it == a->channels.end() || it->second.expires <= now) {
    stats_.drop(CpDrop::UnboundChannel);
    return;
  }
  if (!a->has_permission(it->second.peer.ip, now)) {
    stats_.drop(CpDrop::NoPermission);
    return;
  }
  if (!a->to_peer_bucket.take(cd.data.size(), now)) {
    stats_.drop(CpDrop::BandwidthCap);
    return;
  }
  if (!send_from_relay(a->fd_for(it->second.peer.ip), it->second.peer, cd.data.data(), cd.data.size())) {
    stats_.drop(send_failure_reason(errno));
    return;
  }
  bump(stats_.packets_to_peer);
  bump(stats_.bytes_to_peer, cd.data.size());
  a->info->packets_to_peer.fetch_add(1, std::memory_order_relaxed);
  a->info->bytes_to_peer.fetch_add(cd.data.size(), std::memory_order_relaxed);
}

void TurnServer::handle_send_indication(const FiveTuple& t, const stun::MessageView& m) {
  // RFC 8489 §6.3.2: an indication with an unknown comprehension-required
  // attribute is discarded (there is no 420 for indications).
  std::array<uint16_t, 1> unknown{};
  if (m.unknown_required(unknown) > 0) {
    stats_.drop(CpDrop::UnknownRequiredAttribute);
    return;
  }
  Allocation* a = data_allocation(t);
  if (!a) return;
  const auto* peer_attr = m.find(Attr::XorPeerAddress);
  const auto* data_attr = m.find(Attr::Data);
  if (!peer_attr || !data_attr) {
    stats_.drop(CpDrop::BadIndication);  // §10.2: discard
    return;
  }
  auto peer = stun::read_xor_address(m.value(*peer_attr), m.xor_mask());
  if (!peer) {
    stats_.drop(CpDrop::BadIndication);
    return;
  }
  auto now = loop_.now();
  if (!a->has_permission(peer->ip, now)) {
    stats_.drop(CpDrop::NoPermission);
    return;
  }
  Bytes data = m.value(*data_attr);
  if (!a->to_peer_bucket.take(data.size(), now)) {
    stats_.drop(CpDrop::BandwidthCap);
    return;
  }
  // RFC 8656 §11.2 and §14: with DONT-FRAGMENT the datagram leaves with DF
  // set (never fragmented here; over the path MTU it is dropped). A server
  // that cannot set DF treats the attribute as unknown and comprehension-
  // required, i.e. discards the indication. The allocation's own setting
  // (DONT-FRAGMENT in its Allocate) already covers every datagram.
  int fd = a->fd_for(peer->ip);
  int restore_mode = -1;
  if (m.has(Attr::DontFragment) && !a->dont_fragment) {
    restore_mode = set_dont_fragment(fd, true);
    if (restore_mode < 0) {
      stats_.drop(CpDrop::UnknownRequiredAttribute);
      return;
    }
  }
  bool sent = send_from_relay(fd, *peer, data.data(), data.size());
  int send_errno = errno;
  if (restore_mode >= 0) set_pmtu_mode(fd, restore_mode);
  if (!sent) {
    stats_.drop(send_failure_reason(send_errno));
    return;
  }
  bump(stats_.packets_to_peer);
  bump(stats_.bytes_to_peer, data.size());
  a->info->packets_to_peer.fetch_add(1, std::memory_order_relaxed);
  a->info->bytes_to_peer.fetch_add(data.size(), std::memory_order_relaxed);
}

void TurnServer::on_peer_datagram(Allocation& a, const SocketAddress& peer, uint8_t* data, size_t len) {
  auto now = loop_.now();
  if (a.expires <= now) return;  // expired, not yet swept
  // §10.3: only peers with a permission reach the client.
  if (!a.has_permission(peer.ip, now)) {
    stats_.drop(CpDrop::NoPermission);
    return;
  }
  // DTLS clients are datagram clients: no padding (RFC 8656 §12.5), and a
  // frame must fit one DTLS record (2^14 bytes, RFC 6347 §4.1).
  bool dtls = a.link.stream != nullptr && a.link.stream->datagram();
  bool stream = a.link.stream != nullptr && !dtls;
  auto ch = a.channel_by_peer.find(peer);
  bool as_channel = ch != a.channel_by_peer.end() && a.channels[ch->second].expires > now;
  // The frame must be representable: a Data indication's 16-bit message
  // length counts its attributes (RFC 8489 §5), so an IPv6 peer's datagram
  // of more than 65,504 bytes cannot be carried in one; over UDP the whole
  // frame must also fit one datagram to the client. Such datagrams are
  // dropped and counted, never sent with a wrapped length (a TCP/TLS client
  // would lose its framing).
  size_t addr_len = peer.ip.is_v4() ? 8 : 20;
  size_t indication_header = stun::kHeaderSize + 4 + addr_len + 4;
  size_t frame_len = as_channel ? kChannelDataHeaderSize + (stream ? pad4(len) : len) : indication_header + pad4(len);
  bool representable = as_channel || indication_header - stun::kHeaderSize + pad4(len) <= 0xFFFF;
  if (!representable || (!stream && frame_len > max_udp_payload(a.tuple.client.ip)) ||
      (dtls && frame_len > kMaxDtlsRecord)) {
    stats_.drop(CpDrop::FrameTooLarge);
    return;
  }
  if (!a.to_client_bucket.take(len, now)) {
    stats_.drop(CpDrop::BandwidthCap);
    return;
  }
  uint8_t* start;
  size_t total;
  if (as_channel) {
    // §12.6: ChannelData; over TCP/TLS padded to 4 bytes (§12.5).
    start = data - kChannelDataHeaderSize;
    write_channel_data_header(start, ch->second, static_cast<uint16_t>(len));
    total = kChannelDataHeaderSize + len;
    if (stream) {
      size_t padded = pad4(len);
      std::memset(data + len, 0, padded - len);
      total = kChannelDataHeaderSize + padded;
    }
  } else {
    // §10.3: Data indication with XOR-PEER-ADDRESS and DATA.
    size_t header = indication_header;
    start = data - header;
    store_be16(start, stun::message_type(stun::Method::Data, stun::Class::Indication));
    store_be16(start + 2, static_cast<uint16_t>(header - stun::kHeaderSize + pad4(len)));
    store_be32(start + 4, stun::kMagicCookie);
    // Transaction id: a salt and a counter; unique enough, no RNG per packet.
    std::memcpy(start + 8, txid_salt_.data(), 4);
    uint64_t n = ++indication_counter_;
    std::memcpy(start + 12, &n, 8);
    uint8_t* p = start + stun::kHeaderSize;
    store_be16(p, static_cast<uint16_t>(Attr::XorPeerAddress));
    store_be16(p + 2, static_cast<uint16_t>(addr_len));
    stun::write_xor_address(p + 4, peer, start + 4);
    p += 4 + addr_len;
    store_be16(p, static_cast<uint16_t>(Attr::Data));
    store_be16(p + 2, static_cast<uint16_t>(len));
    std::memset(data + len, 0, pad4(len) - len);
    total = header + pad4(len);
  }
  respond_.send(a.tuple, a.link, Bytes{start, total});
  bump(stats_.packets_to_client);
  bump(stats_.bytes_to_client, len);
  a.info->packets_to_client.fetch_add(1, std::memory_order_relaxed);
  a.info->bytes_to_client.fetch_add(len, std::memory_order_relaxed);
}

void RelaySocket::close_socket() noexcept {
  if (fd_ >= 0) {
    server_.loop().remove(fd_);
    close(fd_);
    fd_ = -1;
  }
}

void RelaySocket::on_io(uint32_t events) {
  AllocationManager::Hold hold(server_.allocations_);  // alloc_ lives through the whole batch
  if (events & EPOLLERR) drain_errors();
  // Read up to a burst per wake-up so one busy allocation cannot starve others.
  constexpr int kBurst = 64;
  uint8_t* base = server_.relay_buf_.data() + TurnServer::kHeadroom;
  for (int i = 0; i < kBurst && fd_ >= 0; ++i) {
    sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    ssize_t n = recvfrom(fd_, base, TurnServer::kMaxDatagram, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&ss), &sl);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      drain_errors();  // an ICMP error reported through recvfrom: its details are queued
      continue;
    }
    server_.on_peer_datagram(alloc_, from_sockaddr(ss), base, static_cast<size_t>(n));
  }
}

void RelaySocket::drain_errors() {
  for (int i = 0; i < 16 && fd_ >= 0; ++i) {
    sockaddr_storage dest{};
    uint8_t control[512];
    uint8_t payload[64];
    iovec iov{payload, sizeof payload};
    msghdr msg{};
    msg.msg_name = &dest;
    msg.msg_namelen = sizeof dest;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    if (recvmsg(fd_, &msg, MSG_ERRQUEUE | MSG_DONTWAIT) < 0) return;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      bool v4 = c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_RECVERR;
      bool v6 = c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_RECVERR;
      if (!v4 && !v6) continue;
      sock_extended_err ee;
      std::memcpy(&ee, CMSG_DATA(c), sizeof ee);
      if (ee.ee_origin != SO_EE_ORIGIN_ICMP && ee.ee_origin != SO_EE_ORIGIN_ICMP6) continue;
      // msg_name: the destination of the datagram the error is about.
      server_.on_peer_icmp(alloc_, from_sockaddr(dest), ee.ee_origin == SO_EE_ORIGIN_ICMP6, ee.ee_type, ee.ee_code,
                           ee.ee_info);
    }
  }
}

void TurnServer::on_peer_icmp(Allocation& a, const SocketAddress& peer, bool v6, uint8_t type, uint8_t code,
                              uint32_t info) {
  auto now = loop_.now();
  if (a.expires <= now) return;
  // RFC 8656 §11.5: only Destination Unreachable and Time Exceeded for
  // ICMPv4 (3, 11), Destination Unreachable, Packet Too Big and Time
  // Exceeded for ICMPv6 (1, 2, 3); and only about a permitted peer.
  bool relevant = v6 ? (type == 1 || type == 2 || type == 3) : (type == 3 || type == 11);
  if (!relevant) return;
  if (!a.has_permission(peer.ip, now)) {
    stats_.drop(CpDrop::NoPermission);
    return;
  }
  // §18.13: Error Data carries the MTU of "fragmentation needed" (ICMPv4
  // 3/4) and "packet too big" (ICMPv6 2); 0 otherwise.
  uint32_t data = (!v6 && type == 3 && code == 4) || (v6 && type == 2) ? info : 0;
  std::array<uint8_t, 12> txid{};
  std::memcpy(txid.data(), txid_salt_.data(), 4);
  uint64_t n = ++indication_counter_;
  std::memcpy(txid.data() + 4, &n, 8);
  stun::MessageBuilder b(respond_.buffer(), stun::Method::Data, stun::Class::Indication,
                         Bytes{txid.data(), txid.size()});
  b.add_xor_address(Attr::XorPeerAddress, peer);
  b.add_icmp(type, code, data);
  if (cfg_.fingerprint) b.add_fingerprint();
  Bytes out = b.finish();
  if (out.empty()) return;
  respond_.send(a.tuple, a.link, out);
  bump(stats_.icmp_to_client);
}

}  // namespace turn::cp
