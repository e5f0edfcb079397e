// SPDX-License-Identifier: Apache-2.0
// Thin helpers over BSD sockets: sockaddr conversion, non-blocking UDP/TCP
// sockets, local interface addresses. Setup-time code: may throw.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <string>
#include <vector>

#include "common/net/address.h"

namespace turn::cp {

// sockaddr_storage <-> SocketAddress. IPv4 goes as AF_INET.
socklen_t to_sockaddr(const SocketAddress& a, sockaddr_storage& out) noexcept;
SocketAddress from_sockaddr(const sockaddr_storage& s) noexcept;

enum class SocketKind { Udp, Tcp };

// A bound, non-blocking socket (SO_REUSEADDR; SO_REUSEPORT when `shared`, so
// each event-loop thread can own one). TCP sockets are listening. Throws
// std::system_error naming the address on failure.
int open_bound_socket(SocketKind kind, const SocketAddress& at, bool shared);
// UDP relay socket on `at` (port 0 = any); -1 with errno set on failure.
int try_open_relay_socket(const SocketAddress& at, bool dont_fragment) noexcept;

// RFC 6062 relayed transport address: a listening TCP socket on `at`, and
// outgoing connections from that same address (both with SO_REUSEADDR and
// SO_REUSEPORT, so they may share the port). -1 with errno on failure; the
// connect is non-blocking (in progress when it returns).
int try_open_tcp_relay_listener(const SocketAddress& at) noexcept;
int tcp_connect_from(const SocketAddress& local, const SocketAddress& peer) noexcept;

SocketAddress local_address(int fd) noexcept;
// DF on everything `fd` sends (IP_PMTUDISC_DO: never fragmented locally;
// a datagram over the path MTU fails with EMSGSIZE), or back to `mode`.
// Returns the mode that was set before (for set_pmtu_mode), -1 on error.
int set_dont_fragment(int fd, bool on) noexcept;
bool set_pmtu_mode(int fd, int mode) noexcept;
void set_nonblocking(int fd);

// Addresses of the machine's up interfaces (IPv4 and global IPv6), for a
// wildcard listening-ip.
std::vector<IpAddress> interface_addresses();

std::string errno_text(int err);

}  // namespace turn::cp
