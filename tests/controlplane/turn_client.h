// SPDX-License-Identifier: Apache-2.0
// The turn-control end-to-end tests' TURN client: the product's TurnSession
// (controlplane/client/session.h: sockets, signing, transactions,
// challenges, and its raw-bytes layer for malformed requests) made to fit
// GoogleTest: connected on construction, each request sent once (a test
// counts what the server saw, so no retransmission), and failures other
// than "no answer" thrown as std::runtime_error, which GoogleTest reports
// as a failed test.
//
// Also UdpPeer (a plain UDP socket playing the TURN peer) and helpers to
// find free ports.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/net/address.h"
#include "common/net/transport.h"
#include "common/stun/constants.h"
#include "common/util/bytes.h"
#include "controlplane/client/session.h"

namespace turn::cptest {

inline constexpr int kReplyTimeoutMs = 2000;

using Reply = cp::Response;
using Attrs = cp::Attrs;
using Integrity = cp::Integrity;
using Signing = cp::Signing;
using Proto = Transport;  // Udp or Tcp
using cp::random_txid;

class TurnClient : public cp::TurnSession {
 public:
  TurnClient(Proto proto, const SocketAddress& server);

  [[nodiscard]] Proto proto() const noexcept { return options().transport; }

  // The session's calls, throwing on a failure other than no answer (an
  // empty Reply or nullopt then).
  [[nodiscard]] std::vector<uint8_t> build(stun::Method m, const Attrs& attrs, const Signing& s = {},
                                           Bytes txid = {}) const;
  void send_raw(Bytes data);
  Reply transact(Bytes request);
  Reply request(stun::Method m, const Attrs& attrs = {}, const Signing& s = {});
  Reply allocate(const Attrs& extra = {}, const Signing& s = {});
  Reply refresh(std::optional<uint32_t> lifetime, const Signing& s = {});
  Reply create_permission(const SocketAddress& peer, const Signing& s = {});
  Reply channel_bind(uint16_t channel, const SocketAddress& peer, const Signing& s = {});
  void send_indication(const SocketAddress& peer, Bytes data, const Attrs& extra = {});
  void send_channel_data(uint16_t channel, Bytes data);
  std::optional<std::vector<uint8_t>> next_frame(int timeout_ms);

  // An unauthenticated Allocate that collects REALM and NONCE (401).
  Reply challenge();

 private:
  Reply checked(Reply r) const;
  void check(bool ok) const;
};

// A UDP socket on 127.0.0.1 playing a TURN peer.
class UdpPeer {
 public:
  explicit UdpPeer(const IpAddress& ip = IpAddress::v4(0x7f000001));
  ~UdpPeer();
  UdpPeer(const UdpPeer&) = delete;
  UdpPeer& operator=(const UdpPeer&) = delete;

  [[nodiscard]] SocketAddress address() const;
  void send_to(const SocketAddress& to, Bytes data);
  struct Datagram {
    SocketAddress from;
    std::vector<uint8_t> data;
  };
  std::optional<Datagram> receive(int timeout_ms);

 private:
  int fd_ = -1;
};

// Unparsed access to a ChannelData frame / a Data indication.
struct ChannelFrame {
  uint16_t channel = 0;
  uint16_t length = 0;
  std::vector<uint8_t> data;
};
std::optional<ChannelFrame> parse_channel_frame(Bytes frame);

// A port free for UDP and TCP on 127.0.0.1 right now.
uint16_t free_port();
// `count` consecutive UDP ports on 127.0.0.1 that are free now, starting at
// an even port, outside the ephemeral range where possible.
uint16_t free_port_range(uint16_t count);

// An IPv4 address of an up, non-loopback interface of this machine.
std::optional<IpAddress> non_loopback_ipv4();

std::vector<uint8_t> to_vec(std::string_view s);
Bytes as_bytes(const std::string& s);

}  // namespace turn::cptest
