// SPDX-License-Identifier: Apache-2.0
// Allocate (RFC 8656 §7.1-§7.2, RFC 6156 for address families).
#include <unistd.h>

#include <cstring>
#include <random>

#include "common/stun/attributes.h"
#include "common/log/log.h"
#include "controlplane/net/socket.h"
#include "controlplane/server/relay_socket.h"
#include "controlplane/server/tcp_relay.h"
#include "controlplane/server/turn_server.h"

namespace turn::cp {

using stun::Attr;
using stun::ErrorCode;

namespace {

// Opens a relay socket on `ip` in [min, max]: random ports, as RFC 8656
// §7.2 asks (port prediction helps attackers); even ports when asked. A
// TCP relay (RFC 6062) is a listening TCP socket.
int open_relay(const IpAddress& ip, uint16_t min, uint16_t max, bool even, bool dont_fragment, uint16_t& port_out,
               std::mt19937& rng, bool tcp = false) {
  uint32_t span = uint32_t{max} - min + 1;
  for (int attempt = 0; attempt < 128; ++attempt) {
    uint32_t p = min + rng() % span;
    if (even) p &= ~1u;
    if (p < min || p > max) continue;
    SocketAddress at{ip, static_cast<uint16_t>(p)};
    int fd = tcp ? try_open_tcp_relay_listener(at) : try_open_relay_socket(at, dont_fragment);
    if (fd >= 0) {
      port_out = static_cast<uint16_t>(p);
      return fd;
    }
  }
  return -1;
}

std::mt19937& rng() {
  thread_local std::mt19937 r{std::random_device{}()};
  return r;
}

}  // namespace

void TurnServer::handle_allocate(Request& req) {
  const auto& m = req.msg;
  // §7.2 step 2: an existing allocation on this 5-tuple.
  if (Allocation* existing = find(req.tuple)) {
    auto txid = m.transaction_id();
    if (std::memcmp(existing->allocate_txid.data(), txid.data(), 12) == 0 && !existing->allocate_response.empty()) {
      // A retransmission: the same answer again (§7.2 "retransmission").
      send_to_client(req.tuple, req.link, existing->allocate_response);
      return;
    }
    send_error(req, ErrorCode::AllocationMismatch);
    return;
  }
  // §7.2 step 3: REQUESTED-TRANSPORT, UDP, or TCP (RFC 6062).
  const auto* rt = m.find(Attr::RequestedTransport);
  if (!rt) return send_error(req, ErrorCode::BadRequest);
  auto proto = stun::read_requested_transport(m.value(*rt));
  if (!proto) return send_error(req, ErrorCode::BadRequest);
  bool tcp = *proto == stun::kTransportTcp;
  if ((*proto != stun::kTransportUdp && !tcp) || (tcp && cfg_.no_tcp_relay))
    return send_error(req, ErrorCode::UnsupportedTransportProtocol);

  // §7.2 step 4: DONT-FRAGMENT is supported (DF on the relay socket).
  bool dont_fragment = m.has(Attr::DontFragment);

  // §7.2 step 5/6: RESERVATION-TOKEN and EVEN-PORT are mutually exclusive,
  // and RESERVATION-TOKEN excludes REQUESTED-ADDRESS-FAMILY (RFC 6156 §4.2).
  const auto* token_attr = m.find(Attr::ReservationToken);
  const auto* even_attr = m.find(Attr::EvenPort);
  // RFC 6062 §5.1: a TCP allocation needs a TCP or TLS control connection,
  // and takes neither DONT-FRAGMENT, EVEN-PORT nor RESERVATION-TOKEN.
  if (tcp && (!req.link.stream || dont_fragment || token_attr || even_attr))
    return send_error(req, ErrorCode::BadRequest);
  const auto* family_attr = m.find(Attr::RequestedAddressFamily);
  const auto* additional_attr = m.find(Attr::AdditionalAddressFamily);
  if (token_attr && (even_attr || family_attr || additional_attr)) return send_error(req, ErrorCode::BadRequest);
  if (family_attr && additional_attr) return send_error(req, ErrorCode::BadRequest);  // RFC 8656 §7.2 step 6

  Family family = Family::V4;
  if (family_attr) {
    auto f = stun::read_address_family(m.value(*family_attr));
    if (!f) return send_error(req, ErrorCode::AddressFamilyNotSupported);
    family = *f;
  }
  bool want_additional_v6 = false;
  if (additional_attr) {
    auto f = stun::read_address_family(m.value(*additional_attr));
    // ADDITIONAL-ADDRESS-FAMILY may only ask for IPv6 (§18.11).
    if (!f || *f != Family::V6) return send_error(req, ErrorCode::BadRequest);
    want_additional_v6 = true;
  }
  bool even = false, reserve_next = false;
  if (even_attr) {
    auto e = stun::read_even_port(m.value(*even_attr));
    if (!e) return send_error(req, ErrorCode::BadRequest);
    even = true;
    reserve_next = *e;
  }

  // Pick the relay address of the wanted family.
  const IpAddress* relay_ip = nullptr;
  const IpAddress* relay_ip_v6 = nullptr;
  for (const auto& ip : cfg_.relay_ips) {
    if (!relay_ip && ip.family() == family) relay_ip = &ip;
    if (!relay_ip_v6 && !ip.is_v4()) relay_ip_v6 = &ip;
  }
  // With a RESERVATION-TOKEN the reserved socket's family applies instead.
  if (!relay_ip && !token_attr) return send_error(req, ErrorCode::AddressFamilyNotSupported);

  // §7.2 step 8: quotas. The state store's reachability is no condition:
  // while it is away the allocation relays on the kernel path and the data
  // plane learns it when the store is back (docs/fleet.md).
  if (!shared_.quotas.acquire(req.username)) {
    bump(stats_.quota_refusals);
    log_every(LogKey::Quota, req.tuple.client.ip, "allocation quota reached for '" + req.username + "'");
    return send_error(req, ErrorCode::AllocationQuotaReached);
  }

  int fd = -1;
  uint16_t port = 0;
  IpAddress bound_ip = relay_ip ? *relay_ip : IpAddress{};
  if (token_attr) {
    auto token = stun::read_reservation_token(m.value(*token_attr));
    auto reserved = token ? shared_.reservations.take(*token) : std::nullopt;
    if (!reserved) {
      shared_.quotas.release(req.username);
      return send_error(req, ErrorCode::InsufficientCapacity);  // §7.2 step 5: no such token
    }
    fd = *reserved;
    // The reserved socket decides the relayed address, family included: a
    // token from an IPv6 EVEN-PORT reservation gives the IPv6 relay (RFC
    // 6156 §4.2: the request carries no REQUESTED-ADDRESS-FAMILY then).
    SocketAddress bound = local_address(fd);
    bound_ip = bound.ip;
    port = bound.port;
    // §7.2 step 4: DONT-FRAGMENT applies to the reserved socket as well
    // (it was opened before anyone asked).
    if (dont_fragment && set_dont_fragment(fd, true) < 0) {
      close(fd);
      shared_.quotas.release(req.username);
      return send_error(req, ErrorCode::InsufficientCapacity);
    }
  } else {
    fd = open_relay(*relay_ip, cfg_.min_port, cfg_.max_port, even, dont_fragment, port, rng(), tcp);
  }
  uint64_t reservation = 0;
  if (fd >= 0 && reserve_next) {
    // §7.2: R bit -> also reserve port+1 for a later Allocate.
    int next = port < cfg_.max_port
                   ? try_open_relay_socket(SocketAddress{*relay_ip, static_cast<uint16_t>(port + 1)}, false)
                   : -1;
    if (next < 0) {
      // Try other even ports whose successor is free too.
      close(fd);
      fd = -1;
      for (int attempt = 0; attempt < 32 && fd < 0; ++attempt) {
        int a = open_relay(*relay_ip, cfg_.min_port, static_cast<uint16_t>(cfg_.max_port - 1), true, dont_fragment,
                           port, rng());
        if (a < 0) break;
        next = try_open_relay_socket(SocketAddress{*relay_ip, static_cast<uint16_t>(port + 1)}, false);
        if (next >= 0)
          fd = a;
        else
          close(a);
      }
    }
    if (fd >= 0) {
      crypto::random_bytes(MutableBytes{reinterpret_cast<uint8_t*>(&reservation), sizeof reservation});
      shared_.reservations.put(reservation, next, loop_.now_s() + 30);  // §14.9: about 30 s
    }
  }
  if (fd < 0) {
    shared_.quotas.release(req.username);
    log_every(LogKey::Capacity, req.tuple.client.ip,
              "no relay port free in " + std::to_string(cfg_.min_port) + "-" + std::to_string(cfg_.max_port));
    return send_error(req, ErrorCode::InsufficientCapacity);
  }

  // Lifetime (§7.2 step 9): max(default, min(requested, max)).
  uint32_t lifetime = cfg_.default_allocate_lifetime_s;
  if (const auto* lt = m.find(Attr::Lifetime)) {
    if (auto v = stun::read_u32(m.value(*lt)))
      lifetime = std::max(cfg_.default_allocate_lifetime_s, std::min(*v, cfg_.max_allocate_lifetime_s));
  }

  // RFC 8656 §7.2: ADDITIONAL-ADDRESS-FAMILY (IPv6) asks for a second,
  // IPv6 relayed address in the same allocation. When there is none to
  // give, the allocation is IPv4 only and ADDRESS-ERROR-CODE says why: 440
  // without an IPv6 relay address (or for a TCP allocation), 508 without a
  // free port.
  int fd6 = -1;
  uint16_t port6 = 0;
  uint16_t additional_error = 0;
  if (want_additional_v6) {
    if (!relay_ip_v6 || tcp) {
      additional_error = 440;
    } else {
      fd6 = open_relay(*relay_ip_v6, cfg_.min_port, cfg_.max_port, false, dont_fragment, port6, rng());
      if (fd6 < 0) additional_error = 508;
    }
  }

  auto a = std::make_unique<Allocation>();
  a->tuple = req.tuple;
  a->link = req.link;
  a->relay_fd = fd;
  a->relay_fd6 = fd6;
  a->dont_fragment = dont_fragment;
  a->tcp = tcp;
  a->username = req.username;
  a->expires = loop_.now() + std::chrono::seconds(lifetime);
  // max-bps: the config's, or the realm's from the user database.
  a->to_peer_bucket.configure(shared_.limits.max_bps());
  a->to_client_bucket.configure(shared_.limits.max_bps());
  SocketAddress relay{bound_ip, port};
  auto info = std::make_shared<AllocationInfo>();
  info->id = cfg_.instance_id + "/" + relay.to_string();
  info->tuple = req.tuple;
  info->relay = relay;
  info->relay_advertised = advertised(relay);
  info->username = req.username;
  info->realm = cfg_.realm;
  info->created_s = loop_.now_s();
  info->expires_s = loop_.now_s() + lifetime;
  if (fd6 >= 0) {
    info->relay6 = SocketAddress{*relay_ip_v6, port6};
    info->relay6_advertised = advertised(info->relay6);
  }
  a->info = info;

  // Success response (§7.2 last step): XOR-RELAYED-ADDRESS, LIFETIME,
  // XOR-MAPPED-ADDRESS, RESERVATION-TOKEN if one was made.
  auto b = start_response(req, stun::Class::SuccessResponse);
  b.add_xor_address(Attr::XorRelayedAddress, info->relay_advertised);
  if (fd6 >= 0) b.add_xor_address(Attr::XorRelayedAddress, info->relay6_advertised);  // IPv4 first, then IPv6
  if (additional_error != 0)
    b.add_address_error_code(Family::V6, additional_error,
                             additional_error == 440 ? "Address Family not Supported" : "Insufficient Capacity");
  b.add_u32(Attr::Lifetime, lifetime);
  if (reservation != 0) b.add_reservation_token(reservation);
  b.add_xor_address(Attr::XorMappedAddress, req.tuple.client);
  finish_and_send(req, b, true);
  std::memcpy(a->allocate_txid.data(), m.transaction_id().data(), 12);
  Bytes sent{response_buf_.data(), load_be16(response_buf_.data() + 2) + stun::kHeaderSize};
  a->allocate_response.assign(sent.begin(), sent.end());

  install(req.tuple, std::move(a), fd, fd6, tcp);
  for (auto* s : shared_.sinks) s->allocation_created(info);
  log_info(std::string(tcp ? "TCP " : "") + "allocation " + info->id +
           (fd6 >= 0 ? " and " + info->relay6.to_string() : std::string()) + " for '" + req.username + "' (" +
           transport_name(req.tuple.transport) + " " + req.tuple.client.to_string() + "), lifetime " +
           std::to_string(lifetime) + " s");
}

}  // namespace turn::cp
