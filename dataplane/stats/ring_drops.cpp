// SPDX-License-Identifier: Apache-2.0
#include "dataplane/stats/ring_drops.h"

#include <dirent.h>
#include <linux/if_packet.h>
#include <sys/socket.h>

#include <cstdlib>

namespace turn::dp {

namespace {
// The interface an AF_PACKET socket is bound to; -1 if fd is not one.
int bound_ifindex(int fd) {
  int domain = 0;
  socklen_t len = sizeof domain;
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0 || domain != AF_PACKET) return -1;
  sockaddr_ll sll{};
  len = sizeof sll;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&sll), &len) != 0 || sll.sll_family != AF_PACKET) return -1;
  return sll.sll_ifindex;
}
}  // namespace

RingDrops::RingDrops(int ifindex) : ifindex_(ifindex) {
  if (ifindex <= 0) return;
  DIR* d = opendir("/proc/self/fd");
  if (!d) return;
  const int own = dirfd(d);
  while (const dirent* e = readdir(d)) {
    char* end = nullptr;
    const long fd = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0' || fd == own) continue;
    if (bound_ifindex(static_cast<int>(fd)) == ifindex) {
      fds_.push_back(static_cast<int>(fd));
    }
  }
  closedir(d);
}

// A port that was stopped closed its sockets, and the numbers may name
// something else by now.
bool RingDrops::still_ours(int fd) const { return bound_ifindex(fd) == ifindex_; }

RingDrops::Figures RingDrops::read() {
  std::lock_guard lock(mu_);
  for (int fd : fds_) {
    if (!still_ours(fd)) continue;
    tpacket_stats st{};  // TPACKET_V2 rings: the short form (tpacket_stats_v3 adds a freeze count)
    socklen_t len = sizeof st;
    if (getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &st, &len) != 0) continue;
    total_.drops += st.tp_drops;
    total_.packets += st.tp_packets;
  }
  return total_;
}

}  // namespace turn::dp
