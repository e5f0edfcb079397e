// SPDX-License-Identifier: Apache-2.0
// blaster: a paced ChannelData generator on a DPDK port, for the overload
// benchmark (scripts/bench-overload.sh). It sends, for --seconds at --rate
// packets/s, one ChannelData frame (RFC 8656 §12.4) per flow in turn, from
// --src-ip:PORT (each port one flow, read from --flows: the client ports
// whose allocations a real TURN client made, with their channel) to
// --dst-ip:--dst-port, in bursts of 32 as the rate comes due. With --sink, a second port is polled in the same
// loop and what arrives there is counted and dropped: the peer side of a
// server whose relayed traffic leaves on a memif (no kernel on that path).
// The tx port is any DPDK port: net_af_packet on the client's veth, or a
// net_memif straight into the server (then a full ring refuses frames:
// the server's backpressure, counted as refused).
//
//   blaster [EAL options] -- --flows FILE --src-ip IP --dst-ip IP --dst-mac MAC
//           --rate PPS --seconds S [--dst-port 3478] [--size 200] [--sink]
//
// Prints one line of JSON: the rate asked, the seconds it ran, frames the
// port took (offered), frames it refused (its tx ring was full: the
// generator's own limit, not the server's), and with --sink the frames
// that arrived there. Bounded: --seconds at most 120, --rate at most 20M.
// Test namespaces only (the frames go where --dst-ip says).
#include <arpa/inet.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace {

constexpr uint16_t kBurst = 32;
constexpr size_t kHeaders = 14 + 20 + 8;

struct Args {
  std::string flows;
  uint32_t src_ip = 0, dst_ip = 0;  // network order
  uint8_t dst_mac[6] = {};
  uint16_t dst_port = 3478;
  uint32_t size = 200;  // ChannelData application data bytes
  double rate = 0;
  double seconds = 0;
  bool sink = false;
};

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr,
               "blaster: %s\nusage: blaster [EAL] -- --flows FILE --src-ip IP --dst-ip IP --dst-mac MAC "
               "--rate PPS(1..20000000) --seconds S(0.1..120) [--dst-port P] [--size 4..1400] [--sink]\n",
               why.c_str());
  std::exit(2);
}

uint32_t parse_ip(const std::string& k, const std::string& v) {
  in_addr a{};
  if (inet_pton(AF_INET, v.c_str(), &a) != 1) usage(k + " '" + v + "' is not an IPv4 address");
  return a.s_addr;
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 0; i < argc; ++i) {
    std::string k = argv[i];
    if (k == "--sink") {
      a.sink = true;
      continue;
    }
    if (i + 1 >= argc) usage(k + " needs a value");
    std::string v = argv[++i];
    char* end = nullptr;
    if (k == "--flows")
      a.flows = v;
    else if (k == "--src-ip")
      a.src_ip = parse_ip(k, v);
    else if (k == "--dst-ip")
      a.dst_ip = parse_ip(k, v);
    else if (k == "--dst-mac") {
      unsigned b[6];
      if (std::sscanf(v.c_str(), "%x:%x:%x:%x:%x:%x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]) != 6)
        usage("--dst-mac '" + v + "' is not xx:xx:xx:xx:xx:xx");
      for (int j = 0; j < 6; ++j) a.dst_mac[j] = static_cast<uint8_t>(b[j]);
    } else if (k == "--dst-port") {
      unsigned long p = std::strtoul(v.c_str(), &end, 10);
      if (*end || p < 1 || p > 65535) usage("--dst-port '" + v + "' is not a port");
      a.dst_port = static_cast<uint16_t>(p);
    } else if (k == "--size") {
      unsigned long s = std::strtoul(v.c_str(), &end, 10);
      if (*end || s < 4 || s > 1400) usage("--size '" + v + "' is not 4..1400");
      a.size = static_cast<uint32_t>(s);
    } else if (k == "--rate") {
      a.rate = std::strtod(v.c_str(), &end);
      if (*end || !(a.rate >= 1 && a.rate <= 2e7)) usage("--rate '" + v + "' is not 1..20000000");
    } else if (k == "--seconds") {
      a.seconds = std::strtod(v.c_str(), &end);
      if (*end || !(a.seconds >= 0.1 && a.seconds <= 120)) usage("--seconds '" + v + "' is not 0.1..120");
    } else
      usage("unknown option " + k);
  }
  if (a.flows.empty() || !a.src_ip || !a.dst_ip || a.rate == 0 || a.seconds == 0)
    usage("--flows, --src-ip, --dst-ip, --dst-mac, --rate and --seconds are needed");
  return a;
}

uint16_t fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xFFFF) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

uint32_t sum16(const uint8_t* p, size_t n) {
  uint32_t s = 0;
  for (size_t i = 0; i + 1 < n; i += 2) s += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
  if (n & 1) s += static_cast<uint32_t>(p[n - 1] << 8);
  return s;
}

// One frame per flow: Ethernet, IPv4, UDP (checksummed), ChannelData.
std::vector<std::vector<uint8_t>> build_frames(const Args& a, const rte_ether_addr& src_mac) {
  std::ifstream in(a.flows);
  if (!in) usage("cannot read --flows " + a.flows);
  std::vector<std::vector<uint8_t>> frames;
  unsigned long port = 0, channel = 0;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    if (std::sscanf(line.c_str(), "%lu %lx", &port, &channel) != 2 || port < 1 || port > 65535 || channel < 0x4000 ||
        channel > 0x7FFF)
      usage("--flows line '" + line + "' is not 'PORT CHANNEL(hex 4000..7fff)'");
    const uint32_t udp_len = 8 + 4 + a.size;
    const size_t len = 14 + 20 + udp_len;
    uint8_t f[kHeaders + 4 + 1400] = {};
    std::memcpy(f, a.dst_mac, 6);
    std::memcpy(f + 6, src_mac.addr_bytes, 6);
    f[12] = 0x08;
    uint8_t* ip = f + 14;
    ip[0] = 0x45;
    const uint16_t ip_len = static_cast<uint16_t>(20 + udp_len);
    ip[2] = static_cast<uint8_t>(ip_len >> 8);
    ip[3] = static_cast<uint8_t>(ip_len);
    ip[6] = 0x40;  // DF
    ip[8] = 64;
    ip[9] = 17;
    std::memcpy(ip + 12, &a.src_ip, 4);
    std::memcpy(ip + 16, &a.dst_ip, 4);
    const uint16_t ipc = static_cast<uint16_t>(~fold(sum16(ip, 20)));
    ip[10] = static_cast<uint8_t>(ipc >> 8);
    ip[11] = static_cast<uint8_t>(ipc);
    uint8_t* udp = ip + 20;
    udp[0] = static_cast<uint8_t>(port >> 8);
    udp[1] = static_cast<uint8_t>(port);
    udp[2] = static_cast<uint8_t>(a.dst_port >> 8);
    udp[3] = static_cast<uint8_t>(a.dst_port);
    udp[4] = static_cast<uint8_t>(udp_len >> 8);
    udp[5] = static_cast<uint8_t>(udp_len);
    uint8_t* cd = udp + 8;  // RFC 8656 §12.4: channel number, length, application data
    cd[0] = static_cast<uint8_t>(channel >> 8);
    cd[1] = static_cast<uint8_t>(channel);
    cd[2] = static_cast<uint8_t>(a.size >> 8);
    cd[3] = static_cast<uint8_t>(a.size);
    for (uint32_t i = 0; i < a.size; ++i) cd[4 + i] = static_cast<uint8_t>(i);
    uint32_t s = sum16(udp, udp_len) + sum16(ip + 12, 8) + 17 + udp_len;
    uint16_t uc = static_cast<uint16_t>(~fold(s));
    if (uc == 0) uc = 0xFFFF;
    udp[6] = static_cast<uint8_t>(uc >> 8);
    udp[7] = static_cast<uint8_t>(uc);
    frames.emplace_back(f, f + len);
  }
  if (frames.empty()) usage("--flows " + a.flows + " has no flow");
  return frames;
}

void start(uint16_t port, rte_mempool* pool) {
  rte_eth_conf conf{};
  if (rte_eth_dev_configure(port, 1, 1, &conf) != 0 || rte_eth_rx_queue_setup(port, 0, 1024, 0, nullptr, pool) != 0 ||
      rte_eth_tx_queue_setup(port, 0, 1024, 0, nullptr) != 0 || rte_eth_dev_start(port) != 0) {
    std::fprintf(stderr, "blaster: port %u does not start\n", port);
    std::exit(1);
  }
}

uint64_t drain(uint16_t port) {
  rte_mbuf* rx[kBurst];
  uint64_t n = 0;
  for (uint16_t got; (got = rte_eth_rx_burst(port, 0, rx, kBurst)) > 0;) {
    rte_pktmbuf_free_bulk(rx, got);
    n += got;
  }
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  int eal = rte_eal_init(argc, argv);
  if (eal < 0) {
    std::fprintf(stderr, "blaster: rte_eal_init failed\n");
    return 1;
  }
  Args a = parse(argc - eal - 1, argv + eal + 1);
  const uint16_t ports = rte_eth_dev_count_avail();
  if (ports < (a.sink ? 2 : 1))
    usage(std::to_string(ports) + " DPDK port(s): need the tx port (and the sink port with --sink)");
  rte_mempool* pool = rte_pktmbuf_pool_create("blaster", 8191, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, rte_socket_id());
  if (!pool) {
    std::fprintf(stderr, "blaster: no mbuf pool\n");
    return 1;
  }
  start(0, pool);
  if (a.sink) start(1, pool);
  rte_ether_addr mac{};
  rte_eth_macaddr_get(0, &mac);
  const auto frames = build_frames(a, mac);

  const uint64_t hz = rte_get_tsc_hz();
  // A memif (tx or sink) must be connected before the clock starts (at
  // most 10 s each); af_packet's link is up at once.
  for (uint16_t p = 0; p < (a.sink ? 2 : 1); ++p) {
    const uint64_t give_up = rte_rdtsc() + 10 * hz;
    rte_eth_link link{};
    while (rte_eth_link_get_nowait(p, &link), link.link_status != RTE_ETH_LINK_UP && rte_rdtsc() < give_up)
      rte_delay_ms(10);
    if (link.link_status != RTE_ETH_LINK_UP) {
      std::fprintf(stderr, "blaster: the %s port's link did not come up in 10 s\n", p == 0 ? "tx" : "sink");
      return 1;
    }
    drain(p);
  }
  uint64_t sent = 0, refused = 0, sunk = 0;
  size_t next = 0;
  rte_mbuf* tx[kBurst];
  const uint64_t t0 = rte_rdtsc();
  const uint64_t end = t0 + static_cast<uint64_t>(a.seconds * static_cast<double>(hz));
  const double per_cycle = a.rate / static_cast<double>(hz);
  for (uint64_t now = t0; now < end; now = rte_rdtsc()) {
    // Token bucket on the TSC: what the rate allows by now, less what went.
    const uint64_t due = static_cast<uint64_t>(static_cast<double>(now - t0) * per_cycle);
    const uint64_t owed = due > sent + refused ? due - sent - refused : 0;
    // Whole bursts only: the af_packet PMD makes one sendto() per burst,
    // so bursts of one or two (what a fine-grained pacer releases) cost a
    // system call per frame or two. (The top rate here stayed ~250 kpps
    // either way: the kernel's forwarding on this core is the limit.)
    if (owed >= kBurst) {
      const uint16_t n = kBurst;
      if (rte_pktmbuf_alloc_bulk(pool, tx, n) == 0) {
        for (uint16_t i = 0; i < n; ++i) {
          const auto& f = frames[next];
          next = next + 1 == frames.size() ? 0 : next + 1;
          std::memcpy(rte_pktmbuf_mtod(tx[i], uint8_t*), f.data(), f.size());
          tx[i]->data_len = static_cast<uint16_t>(f.size());
          tx[i]->pkt_len = static_cast<uint32_t>(f.size());
        }
        const uint16_t took = rte_eth_tx_burst(0, 0, tx, n);
        if (took < n) rte_pktmbuf_free_bulk(tx + took, n - took);
        sent += took;
        refused += n - took;
      }
    }
    drain(0);  // whatever comes back to the client's port (ARP, ICMP) is not kept
    if (a.sink) sunk += drain(1);
  }
  const double ran = static_cast<double>(rte_rdtsc() - t0) / static_cast<double>(hz);
  if (a.sink) {  // what is still on its way (the server's queues): 200 ms more
    const uint64_t until = rte_rdtsc() + hz / 5;
    while (rte_rdtsc() < until) sunk += drain(1);
  }
  rte_eth_stats st{};
  rte_eth_stats_get(0, &st);
  std::printf(
      "{\"rate\": %.0f, \"seconds\": %.3f, \"flows\": %zu, \"size\": %u, \"offered\": %llu, \"offered_pps\": %.0f, "
      "\"refused\": %llu, \"port_opackets\": %llu, \"port_oerrors\": %llu%s",
      a.rate, ran, frames.size(), a.size, static_cast<unsigned long long>(sent), static_cast<double>(sent) / ran,
      static_cast<unsigned long long>(refused), static_cast<unsigned long long>(st.opackets),
      static_cast<unsigned long long>(st.oerrors), a.sink ? "" : "}\n");
  if (a.sink) std::printf(", \"sink\": %llu}\n", static_cast<unsigned long long>(sunk));
  rte_eth_dev_stop(0);
  if (a.sink) rte_eth_dev_stop(1);
  rte_eal_cleanup();
  return 0;
}
