// SPDX-License-Identifier: Apache-2.0
// Allocate (RFC 8656 §7.1-§7.2, RFC 6156 for address families, RFC 6062
// §5.1 for TCP allocations), in the order of §7.2's steps: the 5-tuple,
// what is asked, the quota, the relayed address, the lifetime, the answer.
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "common/log/log.h"
#include "common/stun/attributes.h"
#include "controlplane/net/socket.h"
#include "controlplane/server/handlers.h"

namespace turn::cp {

using stun::Attr;
using stun::ErrorCode;

namespace {

// What an Allocate asks for, read and checked (§7.2 steps 3-7).
struct Ask {
  bool tcp = false;                           // REQUESTED-TRANSPORT TCP (RFC 6062)
  bool dont_fragment = false;                 // DONT-FRAGMENT
  const stun::AttributeRef* token = nullptr;  // RESERVATION-TOKEN
  bool even = false, reserve_next = false;    // EVEN-PORT and its R bit
  bool additional_v6 = false;                 // ADDITIONAL-ADDRESS-FAMILY IPv6
  // The relay address of the asked family (REQUESTED-ADDRESS-FAMILY, IPv4
  // by default), and the IPv6 one for a dual-stack allocation; nullptr
  // when the config has none. With a token the reserved socket decides.
  const IpAddress* relay_ip = nullptr;
  const IpAddress* relay_ip_v6 = nullptr;
  uint32_t lifetime_s = 0;
};

Result<Ask, ErrorCode> read_ask(const HandlerContext& cx, const Request& req) {
  const auto& m = req.msg;
  Ask ask;
  // Step 3: REQUESTED-TRANSPORT, UDP, or TCP (RFC 6062 §5.1).
  const auto* rt = m.find(Attr::RequestedTransport);
  if (!rt) return ErrorCode::BadRequest;
  auto proto = stun::read_requested_transport(m.value(*rt));
  if (!proto) return ErrorCode::BadRequest;
  ask.tcp = *proto == stun::kTransportTcp;
  if ((*proto != stun::kTransportUdp && !ask.tcp) || (ask.tcp && cx.cfg.no_tcp_relay))
    return ErrorCode::UnsupportedTransportProtocol;
  // Step 4: DONT-FRAGMENT is supported (DF on the relay socket).
  ask.dont_fragment = m.has(Attr::DontFragment);
  // Steps 5-7: RESERVATION-TOKEN excludes EVEN-PORT and both address
  // family attributes (RFC 6156 §4.2), which exclude each other.
  ask.token = m.find(Attr::ReservationToken);
  const auto* even_attr = m.find(Attr::EvenPort);
  const auto* family_attr = m.find(Attr::RequestedAddressFamily);
  const auto* additional_attr = m.find(Attr::AdditionalAddressFamily);
  // RFC 6062 §5.1: a TCP allocation needs a TCP or TLS control connection,
  // and takes neither DONT-FRAGMENT, EVEN-PORT nor RESERVATION-TOKEN.
  if (ask.tcp && (!req.link.stream || ask.dont_fragment || ask.token || even_attr)) return ErrorCode::BadRequest;
  if (ask.token && (even_attr || family_attr || additional_attr)) return ErrorCode::BadRequest;
  if (family_attr && additional_attr) return ErrorCode::BadRequest;
  Family family = Family::V4;
  if (family_attr) {
    auto f = stun::read_address_family(m.value(*family_attr));
    if (!f) return ErrorCode::AddressFamilyNotSupported;
    family = *f;
  }
  if (additional_attr) {
    auto f = stun::read_address_family(m.value(*additional_attr));
    // ADDITIONAL-ADDRESS-FAMILY may only ask for IPv6 (§18.11).
    if (!f || *f != Family::V6) return ErrorCode::BadRequest;
    ask.additional_v6 = true;
  }
  if (even_attr) {
    auto e = stun::read_even_port(m.value(*even_attr));
    if (!e) return ErrorCode::BadRequest;
    ask.even = true;
    ask.reserve_next = *e;
  }
  for (const auto& ip : cx.cfg.relay_ips) {
    if (!ask.relay_ip && ip.family() == family) ask.relay_ip = &ip;
    if (!ask.relay_ip_v6 && !ip.is_v4()) ask.relay_ip_v6 = &ip;
  }
  if (!ask.relay_ip && !ask.token) return ErrorCode::AddressFamilyNotSupported;
  // Step 9: the lifetime, max(default, min(requested, max)).
  ask.lifetime_s = cx.cfg.default_allocate_lifetime_s;
  if (const auto* lt = m.find(Attr::Lifetime)) {
    if (auto v = stun::read_u32(m.value(*lt)))
      ask.lifetime_s = std::max(cx.cfg.default_allocate_lifetime_s, std::min(*v, cx.cfg.max_allocate_lifetime_s));
  }
  return ask;
}

// The relayed side of the new allocation.
struct Relayed {
  RelaySockets sockets;
  uint64_t reservation = 0;       // RESERVATION-TOKEN made for port+1 (EVEN-PORT R), 0 for none
  uint16_t additional_error = 0;  // why the asked IPv6 half is missing (440, 508), 0 when it is there
};

// The reserved socket a RESERVATION-TOKEN names: its address, family
// included, is the relayed address (RFC 6156 §4.2: the request carries no
// REQUESTED-ADDRESS-FAMILY then). 508 for an unknown token (§7.2 step 5).
Result<Relayed, ErrorCode> take_reserved(HandlerContext& cx, const Request& req, const Ask& ask) {
  auto token = stun::read_reservation_token(req.msg.value(*ask.token));
  auto reserved = token ? cx.shared.reservations.take(*token) : std::nullopt;
  if (!reserved) return ErrorCode::InsufficientCapacity;
  Relayed r;
  r.sockets.fd = *reserved;
  r.sockets.relay = local_address(*reserved);
  // Step 4: DONT-FRAGMENT applies to the reserved socket as well (it was
  // opened before anyone asked).
  if (ask.dont_fragment && set_dont_fragment(*reserved, true) < 0) {
    close(*reserved);
    return ErrorCode::InsufficientCapacity;
  }
  r.sockets.dont_fragment = ask.dont_fragment;
  return r;
}

// A fresh random port (§7.2: "relayed transport address"), even when
// EVEN-PORT asks, with port+1 held under a RESERVATION-TOKEN for about
// 30 s when its R bit does (§14.6, §14.9); and the IPv6 half of a
// dual-stack allocation. 508 when no port is free.
Result<Relayed, ErrorCode> open_fresh(HandlerContext& cx, const Request& req, const Ask& ask) {
  RelayPorts& ports = cx.allocations.ports();
  const auto& cfg = cx.cfg;
  Relayed r;
  uint16_t port = 0;
  int fd = ports.open_random(*ask.relay_ip, cfg.min_port, cfg.max_port, ask.even, ask.dont_fragment, ask.tcp, port);
  if (fd >= 0 && ask.reserve_next) {
    auto next_of = [&](uint16_t p) {
      return p < cfg.max_port ? ports.open_at(SocketAddress{*ask.relay_ip, static_cast<uint16_t>(p + 1)}, false) : -1;
    };
    int next = next_of(port);
    // Else other even ports whose successor is free too.
    for (int attempt = 0; next < 0 && fd >= 0 && attempt < 32; ++attempt) {
      close(fd);
      fd = ports.open_random(*ask.relay_ip, cfg.min_port, static_cast<uint16_t>(cfg.max_port - 1), true,
                             ask.dont_fragment, false, port);
      if (fd >= 0) next = next_of(port);
    }
    if (next < 0 && fd >= 0) {
      close(fd);
      fd = -1;
    }
    if (fd >= 0) {
      crypto::random_bytes(MutableBytes{reinterpret_cast<uint8_t*>(&r.reservation), sizeof r.reservation});
      cx.shared.reservations.put(r.reservation, next, cx.clock.now_s() + 30);
    }
  }
  if (fd < 0) {
    log_every(LogKey::Capacity, req.tuple.client.ip,
              "no relay port free in " + std::to_string(cfg.min_port) + "-" + std::to_string(cfg.max_port));
    return ErrorCode::InsufficientCapacity;
  }
  r.sockets.fd = fd;
  r.sockets.relay = SocketAddress{*ask.relay_ip, port};
  r.sockets.tcp = ask.tcp;
  r.sockets.dont_fragment = ask.dont_fragment;
  // §7.2: ADDITIONAL-ADDRESS-FAMILY (IPv6) asks for a second, IPv6 relayed
  // address in the same allocation. When there is none to give, the
  // allocation is IPv4 only and ADDRESS-ERROR-CODE says why: 440 without
  // an IPv6 relay address (or for a TCP allocation), 508 without a port.
  if (ask.additional_v6) {
    uint16_t port6 = 0;
    if (!ask.relay_ip_v6 || ask.tcp) {
      r.additional_error = 440;
    } else if (int fd6 = ports.open_random(*ask.relay_ip_v6, cfg.min_port, cfg.max_port, false, ask.dont_fragment,
                                           false, port6);
               fd6 >= 0) {
      r.sockets.fd6 = fd6;
      r.sockets.relay6 = SocketAddress{*ask.relay_ip_v6, port6};
    } else {
      r.additional_error = 508;
    }
  }
  return r;
}

// §7.2 step 2: a 5-tuple that has an allocation. A retransmission of the
// request that made it gets the same answer again; anything else 437.
void answer_existing(HandlerContext& cx, Request& req, const Allocation& existing) {
  if (std::memcmp(existing.allocate_txid.data(), req.msg.transaction_id().data(), 12) == 0 &&
      !existing.allocate_response.empty())
    return cx.respond.send(req.tuple, req.link, existing.allocate_response);
  cx.respond.error(req, ErrorCode::AllocationMismatch);
}

}  // namespace

void handle_allocate(HandlerContext& cx, Request& req) {
  if (const Allocation* existing = cx.allocations.find(req.tuple)) return answer_existing(cx, req, *existing);
  auto ask = read_ask(cx, req);
  if (!ask) return cx.respond.error(req, ask.error());
  // Step 8: quotas. The state store's reachability is no condition: while
  // it is away the allocation relays on the kernel path and the data plane
  // learns it when the store is back (docs/fleet.md).
  if (!cx.allocations.take_quota(req.username)) {
    bump(cx.stats.quota_refusals);
    log_every(LogKey::Quota, req.tuple.client.ip, "allocation quota reached for '" + req.username + "'");
    return cx.respond.error(req, ErrorCode::AllocationQuotaReached);
  }
  auto relayed = ask->token ? take_reserved(cx, req, *ask) : open_fresh(cx, req, *ask);
  if (!relayed) {
    cx.allocations.return_quota(req.username);
    return cx.respond.error(req, relayed.error());
  }
  const RelaySockets& s = relayed->sockets;
  Allocation& a = cx.allocations.create(req.tuple, req.link, req.username, s, ask->lifetime_s);
  const AllocationInfo& info = *a.info;

  // The success response: XOR-RELAYED-ADDRESS (IPv4 first, then IPv6),
  // ADDRESS-ERROR-CODE for a missing IPv6 half, LIFETIME,
  // RESERVATION-TOKEN if one was made, XOR-MAPPED-ADDRESS. Kept for
  // retransmissions.
  auto b = cx.respond.start(req, stun::Class::SuccessResponse);
  b.add_xor_address(Attr::XorRelayedAddress, info.relay_advertised);
  if (s.fd6 >= 0) b.add_xor_address(Attr::XorRelayedAddress, info.relay6_advertised);
  if (uint16_t e = relayed->additional_error; e != 0)
    b.add_address_error_code(Family::V6, e, e == 440 ? "Address Family not Supported" : "Insufficient Capacity");
  b.add_u32(Attr::Lifetime, ask->lifetime_s);
  if (relayed->reservation != 0) b.add_reservation_token(relayed->reservation);
  b.add_xor_address(Attr::XorMappedAddress, req.tuple.client);
  cx.respond.finish(req, b, true);
  std::memcpy(a.allocate_txid.data(), req.msg.transaction_id().data(), 12);
  Bytes sent = cx.respond.last_answer();
  a.allocate_response.assign(sent.begin(), sent.end());

  log_info(std::string(s.tcp ? "TCP " : "") + "allocation " + info.id +
           (s.fd6 >= 0 ? " and " + info.relay6.to_string() : std::string()) + " for '" + req.username + "' (" +
           transport_name(req.tuple.transport) + " " + req.tuple.client.to_string() + "), lifetime " +
           std::to_string(ask->lifetime_s) + " s");
}

}  // namespace turn::cp
