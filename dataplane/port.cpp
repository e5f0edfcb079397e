// SPDX-License-Identifier: Apache-2.0
// ethdev configuration.
#include "dataplane/port.h"

#include <rte_dev.h>
#include <rte_errno.h>
#include <rte_ethdev.h>

#include <cstdio>
#include <stdexcept>

namespace turn::dp {

namespace {
constexpr uint16_t kRxDesc = 1024;
constexpr uint16_t kTxDesc = 1024;

[[noreturn]] void fail(uint16_t port, const char* what, int rc) {
  throw std::runtime_error("port " + std::to_string(port) + ": " + what + ": " + rte_strerror(rc < 0 ? -rc : rc));
}
}  // namespace

Mac port_mac(uint16_t port) {
  rte_ether_addr a{};
  rte_eth_macaddr_get(port, &a);
  Mac m;
  for (int i = 0; i < 6; ++i) m.b[i] = a.addr_bytes[i];
  return m;
}

bool start_port(uint16_t port, uint16_t rx_queues, uint16_t tx_queues, rte_mempool* pool, bool want_checksum_offload) {
  if (!rte_eth_dev_is_valid_port(port))
    throw std::runtime_error("port " + std::to_string(port) + ": no such DPDK port (" +
                             std::to_string(rte_eth_dev_count_avail()) +
                             " available); give the device with -a PCI or --vdev, see docs/dataplane.md");
  rte_eth_dev_info info{};
  if (int rc = rte_eth_dev_info_get(port, &info); rc != 0) fail(port, "dev_info_get", rc);
  if (rx_queues > info.max_rx_queues)
    throw std::runtime_error("port " + std::to_string(port) + " (" + info.driver_name +
                             "): " + std::to_string(rx_queues) + " rx queues wanted, device has " +
                             std::to_string(info.max_rx_queues) + "; use fewer worker lcores");
  if (tx_queues > info.max_tx_queues)
    throw std::runtime_error("port " + std::to_string(port) + " (" + info.driver_name +
                             "): " + std::to_string(tx_queues) + " tx queues wanted, device has " +
                             std::to_string(info.max_tx_queues));
  rte_eth_conf conf{};
  if (rx_queues > 1) {
    conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
    conf.rx_adv_conf.rss_conf.rss_hf = (RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP) & info.flow_type_rss_offloads;
  }
  constexpr uint64_t kCsum = RTE_ETH_TX_OFFLOAD_IPV4_CKSUM | RTE_ETH_TX_OFFLOAD_UDP_CKSUM;
  bool offload = want_checksum_offload && (info.tx_offload_capa & kCsum) == kCsum;
  if (offload) conf.txmode.offloads |= kCsum;
  if (int rc = rte_eth_dev_configure(port, rx_queues, tx_queues, &conf); rc != 0) fail(port, "configure", rc);
  uint16_t nrx = kRxDesc, ntx = kTxDesc;
  rte_eth_dev_adjust_nb_rx_tx_desc(port, &nrx, &ntx);
  int socket = rte_eth_dev_socket_id(port);
  for (uint16_t q = 0; q < rx_queues; ++q)
    if (int rc = rte_eth_rx_queue_setup(port, q, nrx, socket, nullptr, pool); rc != 0) fail(port, "rx_queue_setup", rc);
  for (uint16_t q = 0; q < tx_queues; ++q)
    if (int rc = rte_eth_tx_queue_setup(port, q, ntx, socket, nullptr); rc != 0) fail(port, "tx_queue_setup", rc);
  if (int rc = rte_eth_dev_start(port); rc != 0) fail(port, "start", rc);
  rte_eth_promiscuous_enable(port);  // veths and vdevs: accept what the link delivers
  return offload;
}

uint16_t create_tap(const std::string& name, const Mac& mac, uint16_t queues, rte_mempool* pool) {
  char args[128];
  std::snprintf(args, sizeof args, "iface=%s,mac=%02x:%02x:%02x:%02x:%02x:%02x", name.c_str(), mac.b[0], mac.b[1],
                mac.b[2], mac.b[3], mac.b[4], mac.b[5]);
  std::string devname = "net_tap_" + name;
  std::string devargs = devname + "," + args;
  if (int rc = rte_dev_probe(devargs.c_str()); rc != 0)
    throw std::runtime_error("exception path: cannot create " + devargs + ": " + rte_strerror(-rc) +
                             " (is the net_tap driver installed? /dev/net/tun present?)");
  uint16_t id;
  if (rte_eth_dev_get_port_by_name(devname.c_str(), &id) != 0)
    throw std::runtime_error("exception path: " + devname + " created but not found");
  start_port(id, queues, queues, pool);
  return id;
}

void stop_port(uint16_t port) noexcept {
  rte_eth_dev_stop(port);
  rte_eth_dev_close(port);
}

}  // namespace turn::dp
