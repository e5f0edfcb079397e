#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The two servers of the side-by-side benchmarks (scripts/bench-vs-coturn.sh,
# scripts/bench-overload.sh), started the same way for both scripts on the
# routed test bed of scripts/lib/netns.sh (server namespace NS_S, eth0 at
# 10.77.0.2, router 10.77.0.1): the packet-moving thread(s) alone on
# SERVER_CPU, everything else on OTHER_CPU.
#
#   . scripts/lib/bench_servers.sh   (sources dpdk.sh, procs.sh, netns.sh)
#   bench_bed TAG                    sets ID, NS_R NS_S NS_C NS_P (dpt-TAG-r-ID ...:
#                                    scripts/fresh-machine.sh knows dpt-* as ours),
#                                    TMP (/tmp/dpturn-bench-TAG.*), PREFIX (DPDK);
#                                    topo_down removes the namespaces
#   needs: ROOT BUILD SERVER_CPU OTHER_CPU SERVER_NICE OTHER_NICE
#          COTURN_RELAY_THREADS DP_CORES (array: turn-dataplane's --lcores)
#   start_coturn | start_dpturn     sets SERVER_PIDS, PID_<name>
#   DP_EXTRA_VDEV (array) / DP_EXTRA_CONF (text): more ports for turn-dataplane
#   DP_AF_PACKET_ARGS: its af_packet port's options (default ",framecnt=4096,qdisc_bypass=1":
#   a ring of 4096 frames, as a NIC rx ring of 4096 descriptors, DPDK's default 512
#   dropped bursts while the worker was 90% idle; its sends skip the kernel's
#   queueing layer, 6-7% less busy time per relayed frame at 100-200 kpps,
#   all-veth, in a by-hand A/B of bench-overload.sh --only dpturn)
#   dp_snap                          /dpturn/stats, /dpturn/workers, /ethdev/stats,0 as one JSON object
#   worker_tids                      turn-dataplane's worker lcore threads

. "$ROOT/scripts/lib/dpdk.sh"   # eal_mem, dpdk_prefix_clean
. "$ROOT/scripts/lib/procs.sh"  # track_pid, stop_procs, wait_port
. "$ROOT/scripts/lib/netns.sh"  # routed_topology_up, netns_del
DP_EXTRA_VDEV=() DP_EXTRA_CONF=""

bench_bed() {  # TAG
  ID=$(( $$ % 100000 ))
  NS_R="dpt-$1-r-$ID" NS_S="dpt-$1-s-$ID" NS_C="dpt-$1-c-$ID" NS_P="dpt-$1-p-$ID"
  TMP=$(mktemp -d "/tmp/dpturn-bench-$1.XXXXXX")
  PREFIX="dptb$1$ID"
}
topo_down() { netns_del "$NS_R" "$NS_S" "$NS_C" "$NS_P"; }

start() {  # name ns cpu-list nice cmd...   (cpu-list / nice "" = not pinned / as is)
  local name=$1 ns=$2 cpus=$3 ni=$4; shift 4
  local pin=()
  # The server in a session of its own: with sched autogroup a session's
  # tasks compete with other sessions as one group, whose nice is set in
  # /proc/PID/autogroup (a thread's nice acts only inside its group).
  [ "$name" != coturn ] && [ "$name" != dataplane ] || pin+=(setsid)
  [ -z "$ni" ] || pin+=(nice -n "$ni")
  [ -z "$cpus" ] || pin+=(taskset -c "$cpus")
  ip netns exec "$ns" "${pin[@]}" "$@" >"$TMP/$name.log" 2>&1 &
  track_pid $!
  eval "PID_${name//-/_}=$!"
}
group_nice() {  # pid nice: the nice of pid's autogroup (sched autogroup), when there is one
  [ -n "$2" ] && [ -w "/proc/$1/autogroup" ] || return 0
  echo "$2" >"/proc/$1/autogroup" 2>/dev/null || echo "bench: cannot set autogroup nice of $1" >&2
}
wait_udp() {  # ns ip:port
  wait_port "$1" udp "$2" 10 || { echo "bench: nothing listens on $2" >&2; return 1; }
}
dp_snap() {
  ip netns exec "$NS_S" "$PY" - "$ROOT/scripts/dp-telemetry.py" "$PREFIX" <<'PY' 2>/dev/null || echo '{}'
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("tel", sys.argv[1])
tel = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tel)
d = {}
for c in ("/dpturn/stats", "/dpturn/workers"):
    d.update(tel.query(sys.argv[2], c)[c])
# DPDK's own port counters: imissed = frames the PMD could not take in.
d.update({"eth_" + k: v for k, v in tel.query(sys.argv[2], "/ethdev/stats,0")["/ethdev/stats"].items()
          if isinstance(v, int)})
print(json.dumps(d))
PY
}
worker_tids() {
  local t
  for t in /proc/"$PID_dataplane"/task/*; do
    case "$(cat "$t/comm" 2>/dev/null)" in lcore-worker*|rte-worker*|dpdk-worker*) echo "${t##*/}" ;; esac
  done
}

start_coturn() {
  ip -n "$NS_S" addr add 10.77.0.2/24 dev eth0
  ip -n "$NS_S" route add default via 10.77.0.1
  start coturn "$NS_S" "$SERVER_CPU" "$SERVER_NICE" turnserver -n --relay-threads="$COTURN_RELAY_THREADS" --listening-ip=10.77.0.2 --listening-port=3478 --relay-ip=10.77.0.2 \
    --min-port=49152 --max-port=65535 --lt-cred-mech --user=bench:bench-password --realm=bench.test \
    --no-tls --no-dtls --no-cli --log-file=stdout --simple-log --no-stdout-log
  wait_udp "$NS_S" 10.77.0.2:3478
  SERVER_PIDS="$PID_coturn"
  group_nice "$PID_coturn" "$SERVER_NICE"
}

start_dpturn() {
  ip netns exec "$NS_S" sysctl -qw net.ipv4.conf.all.rp_filter=1 net.ipv4.conf.eth0.rp_filter=1
  ip -n "$NS_S" link set eth0 arp off
  start redis "$NS_S" "$OTHER_CPU" "$OTHER_NICE" redis-server --port 6379 --bind 127.0.0.1 --save '' --appendonly no --dir "$TMP"
  for _ in $(seq 1 50); do ip netns exec "$NS_S" redis-cli -p 6379 ping >/dev/null 2>&1 && break; sleep 0.1; done
  cat >"$TMP/dp.conf" <<CONF
ip=10.77.0.2/24
gateway=10.77.0.1
listening-port=3478
min-port=49152
max-port=65535
legacy-channel-range
tap=dpt0
state-redis="ip=127.0.0.1 port=6379"
instance-id=bench-vs
allocations=4096
channels=16384
${DP_TX_DRAIN_US:+tx-drain-us=$DP_TX_DRAIN_US}
${DP_EXTRA_CONF:-}
CONF
  # EAL: lcore 0 (main / service lcore) on OTHER_CPU, lcore 1 (the worker)
  # on SERVER_CPU; EAL's control threads (interrupts, telemetry) and the
  # sync thread started from main take OTHER_CPU (the CPUs not given to an
  # lcore, or the main lcore's when none is left).
  eal_mem 256
  start dataplane "$NS_S" "" "$OTHER_NICE" "$ROOT/$BUILD/dataplane/turn-dataplane" "${DP_CORES[@]}" "${EAL_MEM[@]}" --no-pci \
    --vdev="net_af_packet0,iface=eth0${DP_AF_PACKET_ARGS-,framecnt=4096,qdisc_bypass=1}" "${DP_EXTRA_VDEV[@]}" --file-prefix="$PREFIX" -- -c "$TMP/dp.conf"
  for _ in $(seq 1 100); do ip -n "$NS_S" link show dpt0 >/dev/null 2>&1 && break; sleep 0.1; done
  ip -n "$NS_S" addr add 10.77.0.2/24 dev dpt0
  ip -n "$NS_S" route add default via 10.77.0.1
  ip netns exec "$NS_S" ethtool -K dpt0 tx off >/dev/null
  cat >"$TMP/tc.conf" <<CONF
listening-ip=10.77.0.2
relay-ip=10.77.0.2
min-port=49152
max-port=65535
realm=bench.test
user=bench:bench-password
legacy-channel-range
state-redis="ip=127.0.0.1 port=6379"
instance-id=bench-vs
request-rate-limit=0
unauth-rate-limit=0
no-tls
CONF
  start turn-control "$NS_S" "$OTHER_CPU" "$OTHER_NICE" "$ROOT/$BUILD/controlplane/turn-control" -c "$TMP/tc.conf"
  wait_udp "$NS_S" 10.77.0.2:3478
  SERVER_PIDS="$PID_turn_control $PID_dataplane"
  # The worker lcore thread(s) only: the main lcore shares OTHER_CPU with the client.
  if [ -n "$SERVER_NICE" ]; then for t in $(worker_tids); do renice -n "$SERVER_NICE" -p "$t" >/dev/null; done; fi
  group_nice "$PID_dataplane" "$SERVER_NICE"
}
