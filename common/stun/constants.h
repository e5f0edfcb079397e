// SPDX-License-Identifier: Apache-2.0
// STUN/TURN wire constants: message classes and methods (RFC 8489 §5,
// RFC 8656 §17, RFC 6062 §6.1), attribute types (RFC 8489 §18.3, RFC 8656
// §18, RFC 8445 §16.1, RFC 6062, RFC 7635) and error codes.
#pragma once

#include <cstdint>
#include <string_view>

namespace turn::stun {

inline constexpr uint32_t kMagicCookie = 0x2112A442;  // RFC 8489 §5
inline constexpr size_t kHeaderSize = 20;
inline constexpr size_t kTransactionIdSize = 12;
inline constexpr uint32_t kFingerprintXor = 0x5354554e;  // RFC 8489 §14.7

enum class Class : uint8_t { Request = 0, Indication = 1, SuccessResponse = 2, ErrorResponse = 3 };

enum class Method : uint16_t {
  Binding = 0x001,   // RFC 8489
  Allocate = 0x003,  // RFC 8656 §17
  Refresh = 0x004,
  Send = 0x006,
  Data = 0x007,
  CreatePermission = 0x008,
  ChannelBind = 0x009,
  Connect = 0x00a,  // RFC 6062 §6.1
  ConnectionBind = 0x00b,
  ConnectionAttempt = 0x00c,
};

// The 14-bit message type interleaves method bits M0..M11 with class bits
// C0 (bit 4) and C1 (bit 8), RFC 8489 §5 figure 3.
[[nodiscard]] constexpr uint16_t message_type(Method m, Class c) noexcept {
  auto mv = static_cast<uint16_t>(m);
  auto cv = static_cast<uint16_t>(c);
  return static_cast<uint16_t>((mv & 0x000F) | ((mv & 0x0070) << 1) | ((mv & 0x0F80) << 2) | ((cv & 1) << 4) |
                               ((cv & 2) << 7));
}
[[nodiscard]] constexpr Method method_of(uint16_t type) noexcept {
  return static_cast<Method>((type & 0x000F) | ((type & 0x00E0) >> 1) | ((type & 0x3E00) >> 2));
}
[[nodiscard]] constexpr Class class_of(uint16_t type) noexcept {
  return static_cast<Class>(((type >> 4) & 1) | ((type >> 7) & 2));
}

// Attribute types. 0x0000-0x7FFF are comprehension-required, 0x8000-0xFFFF
// comprehension-optional (RFC 8489 §14).
#define TURN_STUN_ATTRIBUTES(X)                                   \
  X(MappedAddress, 0x0001, "MAPPED-ADDRESS")                      \
  X(Username, 0x0006, "USERNAME")                                 \
  X(MessageIntegrity, 0x0008, "MESSAGE-INTEGRITY")                \
  X(ErrorCode, 0x0009, "ERROR-CODE")                              \
  X(UnknownAttributes, 0x000A, "UNKNOWN-ATTRIBUTES")              \
  X(ChannelNumber, 0x000C, "CHANNEL-NUMBER")                      \
  X(Lifetime, 0x000D, "LIFETIME")                                 \
  X(XorPeerAddress, 0x0012, "XOR-PEER-ADDRESS")                   \
  X(Data, 0x0013, "DATA")                                         \
  X(Realm, 0x0014, "REALM")                                       \
  X(Nonce, 0x0015, "NONCE")                                       \
  X(XorRelayedAddress, 0x0016, "XOR-RELAYED-ADDRESS")             \
  X(RequestedAddressFamily, 0x0017, "REQUESTED-ADDRESS-FAMILY")   \
  X(EvenPort, 0x0018, "EVEN-PORT")                                \
  X(RequestedTransport, 0x0019, "REQUESTED-TRANSPORT")            \
  X(DontFragment, 0x001A, "DONT-FRAGMENT")                        \
  X(AccessToken, 0x001B, "ACCESS-TOKEN")                          \
  X(MessageIntegritySha256, 0x001C, "MESSAGE-INTEGRITY-SHA256")   \
  X(PasswordAlgorithm, 0x001D, "PASSWORD-ALGORITHM")              \
  X(Userhash, 0x001E, "USERHASH")                                 \
  X(XorMappedAddress, 0x0020, "XOR-MAPPED-ADDRESS")               \
  X(ReservationToken, 0x0022, "RESERVATION-TOKEN")                \
  X(Priority, 0x0024, "PRIORITY")                                 \
  X(UseCandidate, 0x0025, "USE-CANDIDATE")                        \
  X(ConnectionId, 0x002A, "CONNECTION-ID")                        \
  X(AdditionalAddressFamily, 0x8000, "ADDITIONAL-ADDRESS-FAMILY") \
  X(AddressErrorCode, 0x8001, "ADDRESS-ERROR-CODE")               \
  X(PasswordAlgorithms, 0x8002, "PASSWORD-ALGORITHMS")            \
  X(AlternateDomain, 0x8003, "ALTERNATE-DOMAIN")                  \
  X(Icmp, 0x8004, "ICMP")                                         \
  X(Software, 0x8022, "SOFTWARE")                                 \
  X(AlternateServer, 0x8023, "ALTERNATE-SERVER")                  \
  X(Fingerprint, 0x8028, "FINGERPRINT")                           \
  X(IceControlled, 0x8029, "ICE-CONTROLLED")                      \
  X(IceControlling, 0x802A, "ICE-CONTROLLING")                    \
  X(ThirdPartyAuthorization, 0x802E, "THIRD-PARTY-AUTHORIZATION") \
  X(Origin, 0x802F, "ORIGIN")

enum class Attr : uint16_t {
#define TURN_X(name, value, text) name = value,
  TURN_STUN_ATTRIBUTES(TURN_X)
#undef TURN_X
};

[[nodiscard]] constexpr bool is_comprehension_required(uint16_t type) noexcept { return type < 0x8000; }

// The attributes this codec knows how to read. A request carrying any other
// comprehension-required attribute is answered 420 (RFC 8489 §7.3.1).
[[nodiscard]] constexpr bool is_known_attribute(uint16_t type) noexcept {
  switch (type) {
#define TURN_X(name, value, text) case value:
    TURN_STUN_ATTRIBUTES(TURN_X)
#undef TURN_X
    return true;
    default:
      return false;
  }
}

[[nodiscard]] constexpr std::string_view attribute_name(uint16_t type) noexcept {
  switch (type) {
#define TURN_X(name, value, text) \
  case value:                     \
    return text;
    TURN_STUN_ATTRIBUTES(TURN_X)
#undef TURN_X
    default:
      return "UNKNOWN";
  }
}

// Error codes used by STUN and TURN (RFC 8489 §14.8, RFC 8656 §18.x, RFC 6156).
#define TURN_STUN_ERRORS(X)                                              \
  X(TryAlternate, 300, "Try Alternate")                                  \
  X(BadRequest, 400, "Bad Request")                                      \
  X(Unauthorized, 401, "Unauthorized")                                   \
  X(Forbidden, 403, "Forbidden")                                         \
  X(UnknownAttribute, 420, "Unknown Attribute")                          \
  X(AllocationMismatch, 437, "Allocation Mismatch")                      \
  X(StaleNonce, 438, "Stale Nonce")                                      \
  X(AddressFamilyNotSupported, 440, "Address Family not Supported")      \
  X(WrongCredentials, 441, "Wrong Credentials")                          \
  X(UnsupportedTransportProtocol, 442, "Unsupported Transport Protocol") \
  X(PeerAddressFamilyMismatch, 443, "Peer Address Family Mismatch")      \
  X(ConnectionAlreadyExists, 446, "Connection Already Exists")           \
  X(ConnectionTimeoutOrFailure, 447, "Connection Timeout or Failure")    \
  X(AllocationQuotaReached, 486, "Allocation Quota Reached")             \
  X(RoleConflict, 487, "Role Conflict")                                  \
  X(ServerError, 500, "Server Error")                                    \
  X(InsufficientCapacity, 508, "Insufficient Capacity")

enum class ErrorCode : uint16_t {
#define TURN_X(name, value, text) name = value,
  TURN_STUN_ERRORS(TURN_X)
#undef TURN_X
};

[[nodiscard]] constexpr std::string_view reason_phrase(ErrorCode code) noexcept {
  switch (code) {
#define TURN_X(name, value, text) \
  case ErrorCode::name:           \
    return text;
    TURN_STUN_ERRORS(TURN_X)
#undef TURN_X
  }
  return "Error";
}

// PASSWORD-ALGORITHM values (RFC 8489 §18.5).
enum class PasswordAlgorithm : uint16_t { Md5 = 0x0001, Sha256 = 0x0002 };

// REQUESTED-TRANSPORT protocol numbers (RFC 8656 §18.7).
inline constexpr uint8_t kTransportUdp = 17;
inline constexpr uint8_t kTransportTcp = 6;

// Address family octets in (XOR-)address attributes (RFC 8489 §14.1).
inline constexpr uint8_t kFamilyIpv4 = 0x01;
inline constexpr uint8_t kFamilyIpv6 = 0x02;

}  // namespace turn::stun
