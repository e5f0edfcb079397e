// SPDX-License-Identifier: Apache-2.0
// Socket helpers.
#include "controlplane/net/socket.h"

#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/ip.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

namespace turn::cp {

socklen_t to_sockaddr(const SocketAddress& a, sockaddr_storage& out) noexcept {
  std::memset(&out, 0, sizeof out);
  if (a.ip.is_v4()) {
    auto* s = reinterpret_cast<sockaddr_in*>(&out);
    s->sin_family = AF_INET;
    s->sin_port = htons(a.port);
    std::memcpy(&s->sin_addr, a.ip.v4_bytes(), 4);
    return sizeof(sockaddr_in);
  }
  auto* s = reinterpret_cast<sockaddr_in6*>(&out);
  s->sin6_family = AF_INET6;
  s->sin6_port = htons(a.port);
  std::memcpy(&s->sin6_addr, a.ip.bytes.data(), 16);
  return sizeof(sockaddr_in6);
}

SocketAddress from_sockaddr(const sockaddr_storage& st) noexcept {
  SocketAddress a;
  if (st.ss_family == AF_INET) {
    const auto* s = reinterpret_cast<const sockaddr_in*>(&st);
    a.ip = IpAddress::v4(reinterpret_cast<const uint8_t*>(&s->sin_addr));
    a.port = ntohs(s->sin_port);
  } else if (st.ss_family == AF_INET6) {
    const auto* s = reinterpret_cast<const sockaddr_in6*>(&st);
    a.ip = IpAddress::v6(reinterpret_cast<const uint8_t*>(&s->sin6_addr));
    a.port = ntohs(s->sin6_port);
  }
  return a;
}

std::string errno_text(int err) { return std::strerror(err); }

void set_nonblocking(int fd) {
  int flags = fcntl(fd, F_GETFL, 0);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
    throw std::system_error(errno, std::generic_category(), "fcntl(O_NONBLOCK)");
}

int open_bound_socket(SocketKind kind, const SocketAddress& at, bool shared) {
  sockaddr_storage ss;
  socklen_t len = to_sockaddr(at, ss);
  int fd = socket(ss.ss_family, (kind == SocketKind::Udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "socket() for " + at.to_string());
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (shared) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (ss.ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (kind == SocketKind::Udp) {
    int buf = 4 << 20;  // absorb bursts; the kernel caps this at rmem_max
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
  } else {
    setsockopt(fd, IPPROTO_TCP, 1 /*TCP_NODELAY*/, &one, sizeof one);
  }
  if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) < 0) {
    int err = errno;
    close(fd);
    throw std::system_error(err, std::generic_category(),
                            std::string(kind == SocketKind::Udp ? "UDP" : "TCP") + " bind " + at.to_string());
  }
  if (kind == SocketKind::Tcp && listen(fd, 1024) < 0) {
    int err = errno;
    close(fd);
    throw std::system_error(err, std::generic_category(), "listen " + at.to_string());
  }
  return fd;
}

namespace {
// bind(); on failure the socket is closed and errno is bind()'s.
int bind_or_close(int fd, const sockaddr_storage& ss, socklen_t len) noexcept {
  if (bind(fd, reinterpret_cast<const sockaddr*>(&ss), len) < 0) {
    int err = errno;
    close(fd);
    errno = err;
    return -1;
  }
  return fd;
}
}  // namespace

int try_open_relay_socket(const SocketAddress& at, bool dont_fragment) noexcept {
  sockaddr_storage ss;
  socklen_t len = to_sockaddr(at, ss);
  int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (ss.ss_family == AF_INET6) {
    int one = 1;
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  }
  int buf = 1 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
  // ICMP errors for what we send to peers, on the socket's error queue
  // (RFC 8656 §11.5: relayed to the client as a Data indication with ICMP).
  int on = 1;
  if (ss.ss_family == AF_INET)
    setsockopt(fd, IPPROTO_IP, IP_RECVERR, &on, sizeof on);
  else
    setsockopt(fd, IPPROTO_IPV6, IPV6_RECVERR, &on, sizeof on);
  // RFC 8656 §7.2: DONT-FRAGMENT in the Allocate sets DF on what we relay.
  if (dont_fragment) set_dont_fragment(fd, true);
  return bind_or_close(fd, ss, len);
}

namespace {
int tcp_relay_socket(const SocketAddress& at, sockaddr_storage& ss, socklen_t& len) noexcept {
  len = to_sockaddr(at, ss);
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  setsockopt(fd, IPPROTO_TCP, 1 /*TCP_NODELAY*/, &one, sizeof one);
  if (ss.ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  return bind_or_close(fd, ss, len);
}
}  // namespace

int try_open_tcp_relay_listener(const SocketAddress& at) noexcept {
  sockaddr_storage ss;
  socklen_t len;
  int fd = tcp_relay_socket(at, ss, len);
  if (fd < 0) return -1;
  if (listen(fd, 64) < 0) {
    int err = errno;
    close(fd);
    errno = err;
    return -1;
  }
  return fd;
}

int tcp_connect_from(const SocketAddress& local, const SocketAddress& peer) noexcept {
  sockaddr_storage ls, ps;
  socklen_t ll, pl;
  int fd = tcp_relay_socket(local, ls, ll);
  if (fd < 0) return -1;
  pl = to_sockaddr(peer, ps);
  if (connect(fd, reinterpret_cast<sockaddr*>(&ps), pl) < 0 && errno != EINPROGRESS) {
    int err = errno;
    close(fd);
    errno = err;
    return -1;
  }
  return fd;
}

SocketAddress local_address(int fd) noexcept {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  return from_sockaddr(ss);
}

namespace {
int socket_family(int fd) noexcept {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return -1;
  return ss.ss_family;
}
}  // namespace

int set_dont_fragment(int fd, bool on) noexcept {
  int family = socket_family(fd);
  int level = family == AF_INET ? IPPROTO_IP : IPPROTO_IPV6;
  int name = family == AF_INET ? IP_MTU_DISCOVER : IPV6_MTU_DISCOVER;
  if (family != AF_INET && family != AF_INET6) return -1;
  int before = 0;
  socklen_t len = sizeof before;
  if (getsockopt(fd, level, name, &before, &len) != 0) return -1;
  // IP_PMTUDISC_DO and IPV6_PMTUDISC_DO are both 2; "off" is the kernel's
  // default for UDP (WANT: DF while the datagram fits the known path MTU).
  int mode = on ? IP_PMTUDISC_DO : IP_PMTUDISC_WANT;
  if (mode != before && setsockopt(fd, level, name, &mode, sizeof mode) != 0) return -1;
  return before;
}

bool set_pmtu_mode(int fd, int mode) noexcept {
  int family = socket_family(fd);
  if (family == AF_INET) return setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &mode, sizeof mode) == 0;
  if (family == AF_INET6) return setsockopt(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, &mode, sizeof mode) == 0;
  return false;
}

std::vector<IpAddress> interface_addresses() {
  std::vector<IpAddress> out;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return out;
  for (ifaddrs* i = list; i; i = i->ifa_next) {
    if (!i->ifa_addr || !(i->ifa_flags & IFF_UP)) continue;
    if (i->ifa_addr->sa_family == AF_INET) {
      out.push_back(
          IpAddress::v4(reinterpret_cast<const uint8_t*>(&reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr)));
    } else if (i->ifa_addr->sa_family == AF_INET6) {
      auto* a = &reinterpret_cast<sockaddr_in6*>(i->ifa_addr)->sin6_addr;
      if (IN6_IS_ADDR_LINKLOCAL(a)) continue;  // needs a scope id; not a TURN address
      out.push_back(IpAddress::v6(reinterpret_cast<const uint8_t*>(a)));
    }
  }
  freeifaddrs(list);
  return out;
}

}  // namespace turn::cp
