#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The turn-dataplane topology of dataplane_e2e.sh as functions, for the
# fault and bad-input tests (sourced after lib.sh):
#
#   client ns (10.77.1.2) --+                       +-- server ns: eth0 owned by
#                           |-- router ns ----------|   turn-dataplane (net_af_packet),
#   peer ns   (10.77.2.2) --+   (10.77.{0,1,2}.1)   |   TAP dpt0 = 10.77.0.2 with
#                                                   +   turn-control + redis behind it
NS_R="dpt-r-$E2E_ID"
DP_PREFIX="dpflt$E2E_ID"
TOKEN=e2e-token-0123456789abcdef
SRV=10.77.0.2

dp_topology_up() {
  for ns in "$NS_R" "$NS_S" "$NS_C" "$NS_P"; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
  ip link add r0 netns "$NS_R" type veth peer name eth0 netns "$NS_S"
  ip link add r1 netns "$NS_R" type veth peer name eth0 netns "$NS_C"
  ip link add r2 netns "$NS_R" type veth peer name eth0 netns "$NS_P"
  ip -n "$NS_R" addr add 10.77.0.1/24 dev r0
  ip -n "$NS_R" addr add 10.77.1.1/24 dev r1
  ip -n "$NS_R" addr add 10.77.2.1/24 dev r2
  ip netns exec "$NS_R" sysctl -qw net.ipv4.ip_forward=1
  for i in r0 r1 r2; do ip -n "$NS_R" link set "$i" up; ip netns exec "$NS_R" ethtool -K "$i" tx off >/dev/null; done
  for pair in "$NS_C:10.77.1" "$NS_P:10.77.2"; do
    local ns=${pair%%:*} net=${pair##*:}
    ip -n "$ns" addr add "$net.2/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" route add default via "$net.1"
    ip netns exec "$ns" ethtool -K eth0 tx off >/dev/null
  done
  ip -n "$NS_S" link set eth0 up
  ip netns exec "$NS_S" ethtool -K eth0 tx off >/dev/null
  ip netns exec "$NS_S" sysctl -qw net.ipv4.conf.all.rp_filter=1 net.ipv4.conf.eth0.rp_filter=1
  ip -n "$NS_S" link set eth0 arp off
}

dp_cleanup_router() { ip netns del "$NS_R" 2>/dev/null || true; }

dp_write_configs() {  # extra turn-control lines on stdin are appended
  cat >"$E2E_TMP/dp.conf" <<CONF
ip=$SRV/24
gateway=10.77.0.1
listening-port=3478
min-port=49152
max-port=65535
legacy-channel-range
tap=dpt0
state-redis="ip=127.0.0.1 port=6379"
instance-id=dp-e2e
allocations=4096
channels=16384
CONF
  cat >"$E2E_TMP/tc.conf" <<CONF
listening-ip=$SRV
relay-ip=$SRV
realm=dp.e2e
user=alice:wonderland-42
legacy-channel-range
state-redis="ip=127.0.0.1 port=6379"
instance-id=dpe2e
relay-threads=1
admin-ip=127.0.0.1
admin-port=8080
admin-token=$TOKEN
CONF
}

# Starts turn-dataplane and brings its TAP up with the server's address.
# Prints nothing; returns non-zero if the TAP does not appear.
dp_start() {
  start dataplane "$NS_S" "$BUILD/dataplane/turn-dataplane" -l 0-1 --in-memory --no-pci \
    --vdev=net_af_packet0,iface=eth0 --file-prefix="$DP_PREFIX" -- -c "$E2E_TMP/dp.conf"
  for _ in $(seq 1 100); do ip -n "$NS_S" link show dpt0 >/dev/null 2>&1 && break; sleep 0.1; done
  ip -n "$NS_S" addr add $SRV/24 dev dpt0 2>/dev/null || return 1
  ip -n "$NS_S" route replace default via 10.77.0.1 || return 1
  ip netns exec "$NS_S" ethtool -K dpt0 tx off >/dev/null
}

tc_start() {
  start turn-control "$NS_S" "$BUILD/controlplane/turn-control" -c "$E2E_TMP/tc.conf"
  wait_port "$NS_S" udp "$SRV:3478" 10
}

dp_stats() { ip netns exec "$NS_S" "$ROOT/scripts/dp-telemetry.py" --file-prefix "$DP_PREFIX"; }
dp_stat() {  # json key
  python3 -c "import json,sys; print(json.load(sys.stdin)['/dpturn/stats'].get(sys.argv[1], 0))" "$1" <<<"$2"
}
ctl() { ip netns exec "$NS_S" "$BUILD/controlplane/turnctl" --url http://127.0.0.1:8080 --token $TOKEN "$@"; }
rcli() { ip netns exec "$NS_S" redis-cli -p 6379 "$@"; }

# uclient NAME ARGS... : bounded coturn client run through the relay; prints
# sent/received/lost; true when nothing was lost.
uclient_run() {
  local name=$1; shift
  local out="$E2E_TMP/uclient-$name.log"
  timeout 120 ip netns exec "$NS_C" turnutils_uclient -e 10.77.2.2 -r 3480 -u alice -w wonderland-42 "$@" $SRV \
    >"$out" 2>&1
  uclient_result "$name"
}
uclient_result() {
  local out="$E2E_TMP/uclient-$1.log" sent recv lost
  sent=$(sed -n 's/.*tot_send_msgs=\([0-9]*\), tot_recv.*/\1/p' "$out" | tail -1)
  recv=$(sed -n 's/.*tot_recv_msgs=\([0-9]*\).*/\1/p' "$out" | tail -1)
  lost=$(sed -n 's/.*Total lost packets \([0-9]*\).*/\1/p' "$out" | tail -1)
  echo "uclient $1: sent=${sent:-?} received=${recv:-?} lost=${lost:-?}"
  [ -n "$sent" ] && [ "$sent" -gt 0 ] && [ "$sent" = "$recv" ] && [ "$lost" = 0 ]
}
