// SPDX-License-Identifier: Apache-2.0
// A small TURN client for the turn-control end-to-end tests: builds requests
// with the codec's MessageBuilder, signs them with the long-term key
// (USERNAME, REALM, NONCE, MESSAGE-INTEGRITY or -SHA256), sends them over a
// real loopback UDP socket or TCP connection and waits (poll(), bounded) for
// the response with the same transaction id. Frames that are not that
// response (Data indications, ChannelData) are kept for next_frame().
//
// Also UdpPeer (a plain UDP socket playing the TURN peer) and helpers to
// find free ports. Test code: failures throw std::runtime_error, which
// GoogleTest reports as a failed test.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/crypto/integrity.h"
#include "common/net/address.h"
#include "common/stun/builder.h"
#include "common/stun/constants.h"
#include "common/stun/message.h"
#include "common/util/bytes.h"

namespace turn::cptest {

inline constexpr int kReplyTimeoutMs = 2000;

// A received STUN message; the accessors parse `raw` on each call (a
// MessageView points into its buffer, so none is stored).
struct Reply {
  std::vector<uint8_t> raw;  // empty: nothing came back in time

  [[nodiscard]] bool received() const noexcept { return !raw.empty(); }
  [[nodiscard]] bool parses() const;
  [[nodiscard]] stun::Class cls() const;
  [[nodiscard]] stun::Method method() const;
  [[nodiscard]] bool success() const { return received() && cls() == stun::Class::SuccessResponse; }
  // The ERROR-CODE number, 0 when there is none.
  [[nodiscard]] int error() const;
  [[nodiscard]] bool has(stun::Attr a) const;
  [[nodiscard]] std::optional<SocketAddress> xor_address(stun::Attr a) const;
  [[nodiscard]] std::optional<SocketAddress> address(stun::Attr a) const;  // MAPPED-ADDRESS encoding
  [[nodiscard]] std::optional<uint32_t> u32(stun::Attr a) const;
  [[nodiscard]] std::optional<std::string> text(stun::Attr a) const;
  [[nodiscard]] std::vector<uint16_t> unknown_attributes() const;
  [[nodiscard]] std::optional<uint64_t> reservation_token() const;
  // PASSWORD-ALGORITHMS: the algorithm numbers in order (empty if absent).
  [[nodiscard]] std::vector<uint16_t> password_algorithms() const;
  [[nodiscard]] std::optional<std::vector<uint8_t>> data() const;  // DATA
  [[nodiscard]] bool integrity_ok(const crypto::Key& key) const;
  [[nodiscard]] bool integrity_sha256_ok(const crypto::Key& key) const;
  [[nodiscard]] std::vector<uint8_t> transaction_id() const;
};

using Attrs = std::function<void(stun::MessageBuilder&)>;

enum class Integrity { None, Sha1, Sha256 };

// How a request is signed. Defaults: the client's credentials, MD5 key,
// MESSAGE-INTEGRITY.
struct Signing {
  Integrity integrity = Integrity::Sha1;
  bool username = true, realm = true, nonce = true;
  std::optional<std::string> nonce_override;
  std::optional<std::string> realm_override;
  // The key's algorithm. When PASSWORD-ALGORITHM is sent (by default only
  // for SHA-256), PASSWORD-ALGORITHMS goes with it: the list the server
  // offered in its last 401/438 (RFC 8489 §9.2.4), unless overridden.
  stun::PasswordAlgorithm algorithm = stun::PasswordAlgorithm::Md5;
  std::optional<bool> send_algorithm;
  std::optional<std::vector<stun::PasswordAlgorithm>> algorithms_override;
  bool omit_algorithms = false;
  bool fingerprint = false;
  // RFC 8489 §14.4: USERHASH (SHA-256 of "username:realm") instead of USERNAME.
  bool userhash = false;
};

enum class Proto { Udp, Tcp };

class TurnClient {
 public:
  TurnClient(Proto proto, const SocketAddress& server);
  ~TurnClient();
  TurnClient(const TurnClient&) = delete;
  TurnClient& operator=(const TurnClient&) = delete;

  [[nodiscard]] SocketAddress local() const;
  [[nodiscard]] Proto proto() const noexcept { return proto_; }
  // RFC 6062 data connections: after ConnectionBind the socket carries raw
  // bytes; these hand out the socket and what was read past the response.
  [[nodiscard]] int fd() const noexcept { return fd_; }
  [[nodiscard]] std::vector<uint8_t> take_buffered() { return std::exchange(stream_buf_, {}); }

  void set_credentials(std::string username, std::string password, std::string realm);
  [[nodiscard]] crypto::Key key(stun::PasswordAlgorithm alg = stun::PasswordAlgorithm::Md5) const;
  [[nodiscard]] const std::string& nonce() const noexcept { return nonce_; }
  void set_nonce(std::string n) { nonce_ = std::move(n); }

  // A request, signed as `s` says (Integrity::None: no auth attributes at
  // all). txid: 12 bytes, random when empty.
  [[nodiscard]] std::vector<uint8_t> build(stun::Method m, const Attrs& attrs, const Signing& s = {},
                                           std::vector<uint8_t> txid = {}) const;

  // TCP: closes the connection with a reset (SO_LINGER 0), as a crashing
  // client or a middlebox would.
  void abort_connection();

  // Sends bytes as they are (TCP: one write).
  void send_raw(Bytes data);
  // Sends `request` and waits for the response with its transaction id;
  // remembers REALM/NONCE from 401/438 answers. Empty Reply on timeout.
  Reply transact(const std::vector<uint8_t>& request, int timeout_ms = kReplyTimeoutMs);
  // build + transact; on 401/438 with a NONCE (a challenge) signs again
  // with the fresh nonce and retries once (what real clients do).
  Reply request(stun::Method m, const Attrs& attrs = {}, const Signing& s = {});
  // An unauthenticated request that collects REALM and NONCE (401).
  Reply challenge();

  // TURN conveniences (signed, with one challenge retry).
  Reply allocate(const Attrs& extra = {}, const Signing& s = {});
  Reply refresh(std::optional<uint32_t> lifetime, const Signing& s = {});
  Reply create_permission(const SocketAddress& peer, const Signing& s = {});
  Reply channel_bind(uint16_t channel, const SocketAddress& peer, const Signing& s = {});
  // `extra` attributes go after DATA (DONT-FRAGMENT, unknown ones, ...).
  void send_indication(const SocketAddress& peer, Bytes data, const Attrs& extra = {});
  // ChannelData; over TCP padded to 4 (RFC 8656 §12.5).
  void send_channel_data(uint16_t channel, Bytes data);

  // The next frame from the server that was not a response we waited for
  // (Data indication, ChannelData, stray responses), or nullopt on timeout.
  std::optional<std::vector<uint8_t>> next_frame(int timeout_ms);

 private:
  // One whole frame (UDP datagram or a cut TCP frame), bypassing pending_.
  std::optional<std::vector<uint8_t>> read_frame(int timeout_ms);

  Proto proto_;
  int fd_ = -1;
  std::string username_, password_, realm_;
  std::string nonce_;
  std::vector<uint8_t> offered_algorithms_;  // PASSWORD-ALGORITHMS value as received
  std::deque<std::vector<uint8_t>> pending_;
  std::vector<uint8_t> stream_buf_;
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

std::vector<uint8_t> random_txid();
std::vector<uint8_t> to_vec(std::string_view s);
Bytes as_bytes(const std::string& s);

}  // namespace turn::cptest
