// SPDX-License-Identifier: Apache-2.0
// RingDrops (dataplane/stats/ring_drops.h) against a real af_packet ring on
// loopback: a ring of two frames that nobody empties drops the rest, and
// the drops are found through this process's sockets, as turn-dataplane
// finds the af_packet PMD's. Needs CAP_NET_RAW; skips without it.
#include "dataplane/stats/ring_drops.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

namespace turn::dp {
namespace {

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { close_now(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  void close_now() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

// An AF_PACKET socket on `ifindex` with a TPACKET_V2 rx ring of two frames.
int tiny_ring(int ifindex) {
  int fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
  if (fd < 0) return -1;
  int v = TPACKET_V2;
  tpacket_req req{};
  req.tp_block_size = 4096;
  req.tp_block_nr = 1;
  req.tp_frame_size = 2048;
  req.tp_frame_nr = 2;
  sockaddr_ll sll{};
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_ALL);
  sll.sll_ifindex = ifindex;
  if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &v, sizeof v) != 0 ||
      setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof req) != 0 ||
      bind(fd, reinterpret_cast<sockaddr*>(&sll), sizeof sll) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

void send_loopback_datagrams(int n) {
  Fd u(socket(AF_INET, SOCK_DGRAM, 0));
  ASSERT_GE(u.get(), 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(9);  // discard: nothing listens, the frames are what counts
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const char payload[] = "ring drops test";
  for (int i = 0; i < n; ++i) sendto(u.get(), payload, sizeof payload, 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
}

TEST(RingDrops, CountsWhatAFullAfPacketRingCouldNotTake) {
  const int lo = static_cast<int>(if_nametoindex("lo"));
  ASSERT_GT(lo, 0);
  Fd ring(tiny_ring(lo));
  if (ring.get() < 0) GTEST_SKIP() << "no AF_PACKET ring here (needs CAP_NET_RAW): " << std::strerror(errno);

  RingDrops drops(lo);
  ASSERT_EQ(drops.sockets(), 1u);

  // 20 datagrams on loopback: at least 20 frames reach the ring, 2 fit.
  send_loopback_datagrams(20);
  RingDrops::Figures f{};
  for (int i = 0; i < 200 && f.drops < 18; ++i) {  // delivery is in softirq: allow up to 2 s
    f = drops.read();
    if (f.drops < 18) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_GE(f.drops, 18u);
  EXPECT_GE(f.packets, f.drops + 2);  // the kernel's tp_packets counts the drops too

  // The kernel resets its figures on each read; ours accumulate.
  send_loopback_datagrams(5);
  RingDrops::Figures g{};
  for (int i = 0; i < 200 && g.drops < f.drops + 5; ++i) {
    g = drops.read();
    if (g.drops < f.drops + 5) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_GE(g.drops, f.drops + 5);

  // A closed socket (a stopped port) is skipped; the total stays.
  ring.close_now();
  EXPECT_EQ(drops.read().drops, g.drops);
}

TEST(RingDrops, OtherInterfacesAndOtherPortsHaveNone) {
  const int lo = static_cast<int>(if_nametoindex("lo"));
  Fd ring(tiny_ring(lo));
  if (ring.get() < 0) GTEST_SKIP() << "no AF_PACKET ring here (needs CAP_NET_RAW): " << std::strerror(errno);
  RingDrops elsewhere(lo + 100000);  // no such interface
  EXPECT_EQ(elsewhere.sockets(), 0u);
  RingDrops not_a_kernel_port(0);  // net_pcap, net_ring, net_null: no if_index
  EXPECT_EQ(not_a_kernel_port.sockets(), 0u);
  send_loopback_datagrams(5);
  EXPECT_EQ(elsewhere.read().drops, 0u);
  EXPECT_EQ(not_a_kernel_port.read().drops, 0u);
}

}  // namespace
}  // namespace turn::dp
