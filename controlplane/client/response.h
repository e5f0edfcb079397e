// SPDX-License-Identifier: Apache-2.0
// A STUN message as received (a response, or an indication that came while
// a transaction was waiting): the bytes, and accessors that parse them on
// each call (a MessageView points into its buffer, so none is stored).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/crypto/integrity.h"
#include "common/net/address.h"
#include "common/stun/constants.h"
#include "common/stun/message.h"

namespace turn::cp {

struct Response {
  std::vector<uint8_t> raw;  // empty: nothing came back (TurnSession::error() says why)

  [[nodiscard]] bool received() const noexcept { return !raw.empty(); }
  [[nodiscard]] stun::ParseError parse_error() const;
  [[nodiscard]] bool parses() const { return parse_error() == stun::ParseError::Ok; }
  // Class and method of the header; throw std::logic_error when !received().
  [[nodiscard]] stun::Class cls() const;
  [[nodiscard]] stun::Method method() const;
  [[nodiscard]] bool success() const { return received() && cls() == stun::Class::SuccessResponse; }
  // The ERROR-CODE number: 0 when there is none, -1 when it is malformed.
  [[nodiscard]] int error() const;
  [[nodiscard]] std::string error_reason() const;
  // RFC 8489 §9.2.5: a 401 or 438 with REALM and NONCE asks for the request
  // again, signed with them.
  [[nodiscard]] bool challenge() const;
  [[nodiscard]] bool has(stun::Attr a) const;
  [[nodiscard]] std::optional<SocketAddress> xor_address(stun::Attr a) const;
  [[nodiscard]] std::optional<SocketAddress> address(stun::Attr a) const;  // MAPPED-ADDRESS encoding
  [[nodiscard]] std::optional<uint32_t> u32(stun::Attr a) const;
  [[nodiscard]] std::optional<std::string> text(stun::Attr a) const;
  [[nodiscard]] std::optional<std::vector<uint8_t>> value(stun::Attr a) const;  // the attribute's bytes
  [[nodiscard]] std::vector<uint16_t> unknown_attributes() const;
  [[nodiscard]] std::optional<uint64_t> reservation_token() const;
  // PASSWORD-ALGORITHMS: the algorithm numbers in order (empty if absent).
  [[nodiscard]] std::vector<uint16_t> password_algorithms() const;
  [[nodiscard]] std::optional<std::vector<uint8_t>> data() const { return value(stun::Attr::Data); }
  [[nodiscard]] bool integrity_ok(const crypto::Key& key) const;
  [[nodiscard]] bool integrity_sha256_ok(const crypto::Key& key) const;
  [[nodiscard]] std::vector<uint8_t> transaction_id() const;
};

}  // namespace turn::cp
