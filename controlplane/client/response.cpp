// SPDX-License-Identifier: Apache-2.0
// Response accessors (see response.h).
#include "controlplane/client/response.h"

#include <algorithm>
#include <array>
#include <stdexcept>

#include "common/stun/attributes.h"
#include "common/util/bytes.h"

namespace turn::cp {

namespace {

bool parse_into(const std::vector<uint8_t>& raw, stun::MessageView& v) {
  return !raw.empty() && stun::parse(Bytes{raw.data(), raw.size()}, v) == stun::ParseError::Ok;
}

uint16_t header_type(const std::vector<uint8_t>& raw) {
  if (raw.size() < 2) throw std::logic_error("no response");
  return load_be16(raw.data());
}

// The value of attribute `a` read by `read` (a codec reader returning a
// Result), or nullopt when the message does not parse, lacks `a` or `a` is
// malformed.
template <typename Read>
auto read_attr(const std::vector<uint8_t>& raw, stun::Attr a, Read read)
    -> std::optional<std::decay_t<decltype(*read(Bytes{}, stun::MessageView{}))>> {
  stun::MessageView v;
  if (!parse_into(raw, v)) return std::nullopt;
  const auto* ref = v.find(a);
  if (!ref) return std::nullopt;
  auto r = read(v.value(*ref), v);
  if (!r) return std::nullopt;
  return *r;
}

}  // namespace

stun::ParseError Response::parse_error() const {
  stun::MessageView v;
  return stun::parse(Bytes{raw.data(), raw.size()}, v);
}

stun::Class Response::cls() const { return stun::class_of(header_type(raw)); }

stun::Method Response::method() const { return stun::method_of(header_type(raw)); }

int Response::error() const {
  if (!has(stun::Attr::ErrorCode)) return 0;
  auto e = read_attr(raw, stun::Attr::ErrorCode, [](Bytes b, const stun::MessageView&) {
    auto r = stun::read_error_code(b);
    return r ? std::optional<int>(r->code) : std::nullopt;
  });
  return e.value_or(-1);
}

std::string Response::error_reason() const {
  return read_attr(raw, stun::Attr::ErrorCode,
                   [](Bytes b, const stun::MessageView&) {
                     auto r = stun::read_error_code(b);
                     return r ? std::optional<std::string>(r->reason) : std::nullopt;
                   })
      .value_or("");
}

bool Response::challenge() const {
  int code = error();
  return (code == 401 || code == 438) && has(stun::Attr::Realm) && has(stun::Attr::Nonce);
}

bool Response::has(stun::Attr a) const {
  stun::MessageView v;
  return parse_into(raw, v) && v.has(a);
}

std::optional<SocketAddress> Response::xor_address(stun::Attr a) const {
  return read_attr(raw, a, [](Bytes b, const stun::MessageView& v) { return stun::read_xor_address(b, v.xor_mask()); });
}

std::optional<SocketAddress> Response::address(stun::Attr a) const {
  return read_attr(raw, a, [](Bytes b, const stun::MessageView&) { return stun::read_address(b); });
}

std::optional<uint32_t> Response::u32(stun::Attr a) const {
  return read_attr(raw, a, [](Bytes b, const stun::MessageView&) { return stun::read_u32(b); });
}

std::optional<std::string> Response::text(stun::Attr a) const {
  return read_attr(raw, a, [](Bytes b, const stun::MessageView&) {
    return std::optional<std::string>(std::string(reinterpret_cast<const char*>(b.data()), b.size()));
  });
}

std::optional<std::vector<uint8_t>> Response::value(stun::Attr a) const {
  return read_attr(raw, a, [](Bytes b, const stun::MessageView&) {
    return std::optional<std::vector<uint8_t>>(std::vector<uint8_t>(b.begin(), b.end()));
  });
}

std::vector<uint16_t> Response::unknown_attributes() const {
  return read_attr(raw, stun::Attr::UnknownAttributes,
                   [](Bytes b, const stun::MessageView&) -> std::optional<std::vector<uint16_t>> {
                     uint16_t types[32];
                     auto n = stun::read_unknown_attributes(b, types);
                     if (!n) return std::nullopt;
                     return std::vector<uint16_t>(types, types + std::min<size_t>(*n, 32));
                   })
      .value_or(std::vector<uint16_t>{});
}

std::optional<uint64_t> Response::reservation_token() const {
  return read_attr(raw, stun::Attr::ReservationToken,
                   [](Bytes b, const stun::MessageView&) { return stun::read_reservation_token(b); });
}

std::vector<uint16_t> Response::password_algorithms() const {
  return read_attr(raw, stun::Attr::PasswordAlgorithms,
                   [](Bytes b, const stun::MessageView&) -> std::optional<std::vector<uint16_t>> {
                     std::array<stun::PasswordAlgorithmValue, 8> algs{};
                     auto n = stun::read_password_algorithms(b, algs);
                     if (!n) return std::nullopt;
                     std::vector<uint16_t> out;
                     for (size_t i = 0; i < std::min<size_t>(*n, algs.size()); ++i) out.push_back(algs[i].algorithm);
                     return out;
                   })
      .value_or(std::vector<uint16_t>{});
}

bool Response::integrity_ok(const crypto::Key& key) const {
  stun::MessageView v;
  return parse_into(raw, v) && crypto::check_integrity(v, key.view());
}

bool Response::integrity_sha256_ok(const crypto::Key& key) const {
  stun::MessageView v;
  return parse_into(raw, v) && crypto::check_integrity_sha256(v, key.view());
}

std::vector<uint8_t> Response::transaction_id() const {
  if (raw.size() < stun::kHeaderSize) return {};
  return {raw.begin() + 8, raw.begin() + 20};
}

}  // namespace turn::cp
