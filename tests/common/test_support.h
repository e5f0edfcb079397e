// SPDX-License-Identifier: Apache-2.0
// Helpers shared by the codec unit tests: hex text to bytes, golden files
// from tests/data (TURN_TEST_DATA_DIR, set by tests/common/meson.build), and
// hand-assembled raw STUN messages for malformed-input tests.
#pragma once

#include <cstdint>
#include <fstream>
#include <initializer_list>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "common/stun/constants.h"
#include "common/util/bytes.h"

#ifndef TURN_TEST_DATA_DIR
#error "TURN_TEST_DATA_DIR must name tests/data"
#endif

namespace turn::test {

// Hex pairs with any whitespace between them; '#' starts a comment that runs
// to the end of the line. Throws (and so fails the test) on anything else.
inline std::vector<uint8_t> from_hex(std::string_view text) {
  std::vector<uint8_t> out;
  int hi = -1;
  bool comment = false;
  for (char c : text) {
    if (comment) {
      comment = c != '\n';
      continue;
    }
    if (c == '#') {
      comment = true;
      continue;
    }
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') continue;
    int v;
    if (c >= '0' && c <= '9')
      v = c - '0';
    else if (c >= 'a' && c <= 'f')
      v = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F')
      v = c - 'A' + 10;
    else
      throw std::invalid_argument(std::string("bad hex character: ") + c);
    if (hi < 0) {
      hi = v;
    } else {
      out.push_back(static_cast<uint8_t>(hi << 4 | v));
      hi = -1;
    }
  }
  if (hi >= 0) throw std::invalid_argument("odd number of hex digits");
  return out;
}

// A file under tests/data, e.g. "rfc5769/sample_request.hex".
inline std::vector<uint8_t> load_hex(std::string_view relative) {
  std::string path = std::string(TURN_TEST_DATA_DIR) + "/" + std::string(relative);
  std::ifstream f(path);
  if (!f) throw std::runtime_error("cannot open " + path);
  std::stringstream s;
  s << f.rdbuf();
  return from_hex(s.str());
}

inline Bytes as_bytes(std::string_view s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }

inline std::string_view as_text(Bytes b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

inline std::vector<uint8_t> to_vector(Bytes b) { return {b.begin(), b.end()}; }

// A 12-byte transaction id whose bytes are seed, seed+1, ...
inline std::vector<uint8_t> txid(uint8_t seed = 1) {
  std::vector<uint8_t> t(stun::kTransactionIdSize);
  for (size_t i = 0; i < t.size(); ++i) t[i] = static_cast<uint8_t>(seed + i);
  return t;
}

// One attribute of a hand-assembled message. `length` overrides the header's
// length field (to lie about it); the value is always padded to 4 with zeros
// unless `pad` is false.
struct RawAttr {
  uint16_t type = 0;
  std::vector<uint8_t> value;
  int length = -1;
  bool pad = true;
};

// A STUN message assembled byte by byte, bypassing MessageBuilder, so that it
// can break every rule. The header length is the true body size unless
// `length` is given.
inline std::vector<uint8_t> raw_message(uint16_t type, std::initializer_list<RawAttr> attrs, int length = -1) {
  std::vector<uint8_t> m(stun::kHeaderSize);
  store_be16(m.data(), type);
  store_be32(m.data() + 4, stun::kMagicCookie);
  for (size_t i = 0; i < stun::kTransactionIdSize; ++i) m[8 + i] = static_cast<uint8_t>(0xA0 + i);
  for (const RawAttr& a : attrs) {
    size_t at = m.size();
    m.resize(at + 4);
    store_be16(m.data() + at, a.type);
    store_be16(m.data() + at + 2, static_cast<uint16_t>(a.length >= 0 ? a.length : static_cast<int>(a.value.size())));
    m.insert(m.end(), a.value.begin(), a.value.end());
    if (a.pad) m.resize(at + 4 + pad4(a.value.size()), 0);
  }
  store_be16(m.data() + 2,
             static_cast<uint16_t>(length >= 0 ? length : static_cast<int>(m.size() - stun::kHeaderSize)));
  return m;
}

inline RawAttr raw(stun::Attr type, std::vector<uint8_t> value) {
  return RawAttr{static_cast<uint16_t>(type), std::move(value)};
}
inline RawAttr raw(uint16_t type, std::vector<uint8_t> value) { return RawAttr{type, std::move(value)}; }

}  // namespace turn::test
