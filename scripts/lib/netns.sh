#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Network namespaces and veths that a script creates itself, and removes
# again: sourced by scripts/ and tests/ (tests/e2e/lib.sh). Traffic stays
# inside them or on loopback.
#
#   . scripts/lib/netns.sh
#   netns_add NS...                        # each with lo up
#   routed_topology_up NS_R NS_S NS_C NS_P # the data plane's test bed
#   routed_side_up NS NET                  # a client or peer side behind a router
#   netns_del NS...                        # in the EXIT trap

netns_add() {
  local ns
  for ns in "$@"; do
    ip netns add "$ns" || return 1
    ip -n "$ns" link set lo up
  done
}

netns_del() {
  local ns
  for ns in "$@"; do [ -z "$ns" ] || ip netns del "$ns" 2>/dev/null || true; done  # gone already: fine (and no errexit in a trap)
  return 0
}

# veth_tx_csum_off NS DEV: no transmit checksum offload, so that a DPDK
# port on the far side sees complete UDP checksums (not the partial sum a
# veth hands on).
veth_tx_csum_off() { ip netns exec "$1" ethtool -K "$2" tx off >/dev/null; }

# routed_side_up NS NET: NS's eth0 (a veth to the router) at NET.2/24, its
# default route via the router at NET.1.
routed_side_up() {
  ip -n "$1" addr add "$2.2/24" dev eth0
  ip -n "$1" link set eth0 up
  ip -n "$1" route add default via "$2.1"
  veth_tx_csum_off "$1" eth0
}

# routed_topology_up NS_R NS_S NS_C NS_P: a router NS_R with the server
# (10.77.0.0/24, r0), client (10.77.1.0/24, r1) and peer (10.77.2.0/24,
# r2) sides; the client and the peer at .2 with the router (.1) as their
# default route; the server's eth0 is up without an address (coturn or
# turn-dataplane takes it). No transmit checksum offload anywhere.
routed_topology_up() {
  local r=$1 s=$2 c=$3 p=$4
  netns_add "$r" "$s" "$c" "$p" || return 1
  ip link add r0 netns "$r" type veth peer name eth0 netns "$s"
  ip link add r1 netns "$r" type veth peer name eth0 netns "$c"
  ip link add r2 netns "$r" type veth peer name eth0 netns "$p"
  ip -n "$r" addr add 10.77.0.1/24 dev r0
  ip -n "$r" addr add 10.77.1.1/24 dev r1
  ip -n "$r" addr add 10.77.2.1/24 dev r2
  ip netns exec "$r" sysctl -qw net.ipv4.ip_forward=1
  local i
  for i in r0 r1 r2; do
    ip -n "$r" link set "$i" up
    veth_tx_csum_off "$r" "$i"
  done
  routed_side_up "$c" 10.77.1
  routed_side_up "$p" 10.77.2
  ip -n "$s" link set eth0 up
  veth_tx_csum_off "$s" eth0
}
