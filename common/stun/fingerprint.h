// SPDX-License-Identifier: Apache-2.0
// FINGERPRINT (RFC 8489 §14.7): CRC-32 (ISO HDLC, as in Ethernet/zlib) of
// the message up to the attribute, XOR 0x5354554e. Table-driven,
// slicing-by-4, no allocation.
#pragma once

#include <cstdint>

#include "common/util/bytes.h"

namespace turn::stun {

[[nodiscard]] uint32_t crc32(Bytes data) noexcept;

// The FINGERPRINT value for a message whose bytes before the FINGERPRINT
// attribute are `prefix` (header length field must already include it).
[[nodiscard]] inline uint32_t fingerprint_value(Bytes prefix) noexcept { return crc32(prefix) ^ 0x5354554eu; }

}  // namespace turn::stun
