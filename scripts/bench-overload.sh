#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# dpturn vs coturn under a load that overloads coturn, side by side in one
# run: a paced DPDK generator (bench/load/blaster) offers ChannelData from
# many real allocations, stepping its rate; the peer's side counts what
# each server relayed.
#
#   client ns (10.77.1.2) --+                       +-- server ns: eth0 10.77.0.2
#     blaster on eth0       |-- router ns ----------|   coturn: the kernel owns eth0
#     (net_af_packet,       |   (10.77.{0,1,2}.1)   |   dpturn: turn-dataplane owns eth0
#      qdisc_bypass)        |                       |   (net_af_packet), turn-control
#   peer ns   (10.77.2.2) --+                       +   behind its TAP
#     counts eth0 rx
#
# Servers (--only picks some; default all three, in this order):
#   coturn        turnserver --relay-threads=1, alone on SERVER_CPU
#   dpturn        turn-dataplane's worker alone on SERVER_CPU; relayed
#                 frames leave through the same af_packet port (all-veth:
#                 the kernel's af_packet tx into the veth is on that core)
#   dpturn-memif  the same, but the peer side is a second port, net_memif,
#                 whose other end is blaster's sink: relaying costs the
#                 server no kernel work on the peer side (what a NIC gives)
#   dpturn-dpdk   the client side too is a net_memif (a third port) that
#                 blaster sends into directly: no kernel anywhere on the
#                 relayed path, frames arrive in blaster's bursts of 32 and
#                 the worker's own cost per packet is what is measured
#                 (the allocations are still made over eth0, the same way;
#                 the fast path matches the 5-tuple whatever port it came
#                 in by). A full memif ring refuses frames: the step's
#                 "refused" is the server's backpressure, and offered the
#                 frames it took. Also runs DPDK_STEPS, past the kernel
#                 generator's reach, to find the worker's own limit.
#
# For each server: turn_flows (the same TURN client for all) makes FLOWS
# allocations from the client namespace, each with a permission and
# channel 0x4000 to the peer 10.77.2.2:5000, and holds them; then for each
# rate of STEPS blaster sends one ChannelData frame per flow in turn for
# SECONDS, and bench/load/overload_step.py writes a row (offered,
# delivered, loss, CPU on the server's core; its header says exactly what
# is counted). Where the kernel's work lands: a frame's way through veths
# and namespaces runs on the CPU that sent it, so the way in (router, the
# server's socket receive or its af_packet ring) runs on OTHER_CPU with the
# generator, for both servers, and is counted for neither. The way out of
# a relayed frame runs inside the server's send, on SERVER_CPU, and is
# counted for both: coturn's UDP sendmsg or dpturn's af_packet sendto(),
# the veth, the router's forwarding and the peer's receive (work that other
# hosts would do on a real network; both servers pay it alike).
#
#   scripts/bench-overload.sh [--quick] [--steps "PPS ..."] [--seconds S] [--flows N]
#                             [--size BYTES] [--only LIST] [--out DIR]
#   --out DIR: DIR/overload.csv and its plot DIR/overload.png (bench/plot.py)
#   env: SERVER_CPU=1 OTHER_CPU=0 SERVER_NICE=-20 OTHER_NICE=-10 BUILD=build
#        DPDK_STEPS="1600000 3200000 6400000" (dpturn-dpdk's extra steps)
#
# Bounded: each blaster run stops after SECONDS (at most 120); every
# process it starts is stopped on exit. Needs root (namespaces), coturn,
# and a build with DPDK.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=/usr/bin/python3
BUILD=${BUILD:-build}
STEPS="50000 80000 100000 120000 140000 160000 200000 240000 280000 320000 400000 800000"
SECONDS_PER_STEP=4
FLOWS=1000
SIZE=200
ONLY="coturn,dpturn,dpturn-memif,dpturn-dpdk"
DPDK_STEPS=${DPDK_STEPS-1600000 3200000 6400000}
OUT_DIR=""
SERVER_CPU=${SERVER_CPU:-1}
OTHER_CPU=${OTHER_CPU:-0}
COTURN_RELAY_THREADS=1
SERVER_NICE=${SERVER_NICE--20}
OTHER_NICE=${OTHER_NICE--10}
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) STEPS="80000 120000 160000 240000 320000 400000"; DPDK_STEPS="3200000"; SECONDS_PER_STEP=2; FLOWS=200; shift ;;
    --steps) STEPS=$2; shift 2 ;;
    --seconds) SECONDS_PER_STEP=$2; shift 2 ;;
    --flows) FLOWS=$2; shift 2 ;;
    --size) SIZE=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --out) OUT_DIR=$2; shift 2 ;;
    -h|--help) sed -n '2,57p' "$0"; exit 0 ;;
    *) echo "bench-overload: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
for o in ${ONLY//,/ }; do
  case $o in coturn|dpturn|dpturn-memif|dpturn-dpdk) ;; *) echo "bench-overload: --only: '$o' is not coturn, dpturn, dpturn-memif or dpturn-dpdk" >&2; exit 2 ;; esac
done
if [ "$(id -u)" -ne 0 ]; then echo "bench-overload: needs root (network namespaces)" >&2; exit 77; fi
for t in turnserver redis-server ethtool taskset; do
  command -v $t >/dev/null || { echo "bench-overload: $t missing (scripts/setup.sh installs it)" >&2; exit 1; }
done
for b in bench/load/blaster bench/load/turn_flows bench/load/xcore_rtt dataplane/turn-dataplane controlplane/turn-control; do
  [ -x "$BUILD/$b" ] || { echo "bench-overload: $BUILD/$b is not built (ninja -C $BUILD)" >&2; exit 1; }
done
taskset -c "$SERVER_CPU,$OTHER_CPU" true 2>/dev/null && [ "$SERVER_CPU" != "$OTHER_CPU" ] ||
  { echo "bench-overload: needs two CPUs to pin to (SERVER_CPU=$SERVER_CPU OTHER_CPU=$OTHER_CPU, nproc $(nproc))" >&2; exit 1; }

DP_CORES=(--lcores "0@$OTHER_CPU,1@$SERVER_CPU")
. "$ROOT/scripts/lib/bench_servers.sh"  # bench_bed, start, start_coturn, start_dpturn, dp_snap
bench_bed ov
cleanup() {
  stop_procs; topo_down; dpdk_prefix_clean "$PREFIX" "${PREFIX}g"
  if [ -n "${KEEP:-}" ]; then echo "logs in $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
if [ -n "$OUT_DIR" ]; then mkdir -p "$OUT_DIR"; CSV=$OUT_DIR/overload.csv; else CSV=$TMP/overload.csv; fi
: >"$CSV"
STEP_PY="$PY $ROOT/bench/load/overload_step.py"
# The cache-line round trip between the server's CPU and the generator's,
# taken before and after each step (bench/load/xcore_rtt.cpp: on a VM it
# changes as the hypervisor moves the vCPUs, and with it every cost that
# crosses the two CPUs). Under SCHED_FIFO so that an idle-polling worker
# does not share its CPU with the probe; "" where it cannot run.
xcore_rtt() {
  chrt -f 50 "$ROOT/$BUILD/bench/load/xcore_rtt" "$SERVER_CPU" "$OTHER_CPU" 2>/dev/null || true
}

# turn-dataplane's port 1 in the memif variants: the peer's network is
# routed there through a static next hop (blaster's sink).
MEMIF_PEER_CONF="port=1
ip=10.79.0.1/24
tap=dpt1
route=10.77.2.0/24,10.79.0.2
neighbour=10.79.0.2,02:00:00:00:79:02"

run_server() {  # coturn | dpturn | dpturn-memif | dpturn-dpdk
  local server=$1 sink_vdev=() sink_flag=() dp_prefix=() steps=$STEPS arrived=()
  local tx_vdev=(--vdev=net_af_packet0,iface=eth0,qdisc_bypass=1)
  routed_topology_up "$NS_R" "$NS_S" "$NS_C" "$NS_P"
  # The peer: a bound socket that is never read (no ICMP port unreachable;
  # what reaches the host is counted on its eth0), bounded by 3600 s.
  start peer "$NS_P" "$OTHER_CPU" "" "$PY" -c 'import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.bind(("10.77.2.2", 5000))
time.sleep(3600)'
  wait_udp "$NS_P" 10.77.2.2:5000
  DP_EXTRA_VDEV=() DP_EXTRA_CONF=""
  case $server in
    coturn) start_coturn ;;
    dpturn) start_dpturn ;;
    dpturn-memif)
      # Port 1: net_memif (server role) towards blaster's sink; the peer's
      # network is routed there through a static next hop.
      DP_EXTRA_VDEV=(--vdev="net_memif0,role=server,id=0,socket=$TMP/memif.sock,socket-abstract=no")
      DP_EXTRA_CONF=$MEMIF_PEER_CONF
      start_dpturn
      sink_vdev=(--vdev="net_memif0,role=client,id=0,socket=$TMP/memif.sock,socket-abstract=no")
      sink_flag=(--sink) ;;
    dpturn-dpdk)
      # Port 1 as above; port 2: net_memif that blaster transmits into (its
      # own address and TAP; nothing is routed there).
      DP_EXTRA_VDEV=(--vdev="net_memif0,role=server,id=0,socket=$TMP/memif.sock,socket-abstract=no"
                     --vdev="net_memif1,role=server,id=0,socket=$TMP/memif-in.sock,socket-abstract=no")
      DP_EXTRA_CONF="$MEMIF_PEER_CONF
port=2
ip=10.80.0.1/24
tap=dpt2"
      start_dpturn
      tx_vdev=(--vdev="net_memif1,role=client,id=0,socket=$TMP/memif-in.sock,socket-abstract=no")
      sink_vdev=(--vdev="net_memif0,role=client,id=0,socket=$TMP/memif.sock,socket-abstract=no")
      sink_flag=(--sink)
      arrived=(arrived_from=worker)  # nothing comes in by the server's eth0
      steps="$STEPS $DPDK_STEPS" ;;
  esac
  [ "$server" = coturn ] || dp_prefix=("$PREFIX")
  # The allocations: the same client for every server.
  ip netns exec "$NS_C" taskset -c "$OTHER_CPU" "$ROOT/$BUILD/bench/load/turn_flows" --server 10.77.0.2:3478 \
    -u bench -p bench-password --peer 10.77.2.2:5000 --flows "$FLOWS" --out "$TMP/flows-$server" --hold 3600 \
    >"$TMP/flows-$server.log" 2>&1 &
  local fpid=$!
  track_pid $fpid
  for _ in $(seq 1 600); do [ -s "$TMP/flows-$server" ] && break; kill -0 $fpid 2>/dev/null || break; sleep 0.1; done
  [ -s "$TMP/flows-$server" ] || { echo "bench-overload: $server: no flows:"; cat "$TMP/flows-$server.log"; return 1; } >&2
  cat "$TMP/flows-$server.log"
  local gw_mac; gw_mac=$(ip -n "$NS_R" -br link show r1 | awk '{print $3}')
  eal_mem 128
  local rtt0 rtt1
  for rate in $steps; do
    rtt0=$(xcore_rtt)
    $STEP_PY snap "$NS_P" "$NS_S" "${dp_prefix[@]}" >"$TMP/s0.json"
    local out
    out=$(ip netns exec "$NS_C" ${OTHER_NICE:+nice -n "$OTHER_NICE"} taskset -c "$OTHER_CPU" timeout 150 \
      "$ROOT/$BUILD/bench/load/blaster" -l 0 --no-pci "${EAL_MEM[@]}" --file-prefix="${PREFIX}g" --log-level=lib.*:error \
      "${tx_vdev[@]}" "${sink_vdev[@]}" -- \
      --flows "$TMP/flows-$server" --src-ip 10.77.1.2 --dst-ip 10.77.0.2 --dst-mac "$gw_mac" \
      --rate "$rate" --seconds "$SECONDS_PER_STEP" --size "$SIZE" "${sink_flag[@]}" 2>"$TMP/blaster.err" | tail -1) ||
      { echo "bench-overload: blaster failed at $rate pps:" >&2; cat "$TMP/blaster.err" >&2; return 1; }
    sleep 0.3  # what is still in the veths and the peer's backlog
    $STEP_PY snap "$NS_P" "$NS_S" "${dp_prefix[@]}" >"$TMP/s1.json"
    rtt1=$(xcore_rtt)
    echo "$out" >>"$TMP/blaster-$server.jsonl"
    $STEP_PY step server="$server" rate="$rate" blaster="$out" snap0="$TMP/s0.json" snap1="$TMP/s1.json" \
      csv="$CSV" server_cpu="$SERVER_CPU" other_cpu="$OTHER_CPU" xcore_rtt_ns="$rtt0/$rtt1" "${arrived[@]}"
  done
  stop_procs
  topo_down
}

echo "bench-overload: steps $STEPS pps, $SECONDS_PER_STEP s each, $FLOWS flows, $SIZE-byte ChannelData; server on CPU $SERVER_CPU, the rest on CPU $OTHER_CPU"
for server in coturn dpturn dpturn-memif dpturn-dpdk; do
  [[ ",$ONLY," == *",$server,"* ]] || continue
  run_server "$server"
done
echo
$STEP_PY summary "$CSV"
[ -z "$OUT_DIR" ] || "$PY" "$ROOT/bench/plot.py" "$OUT_DIR" | grep overload || true
