#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The fleet's pieces for end-to-end tests, sourced after lib.sh:
#
#   store_up NS IP      a highly available state store from Debian's
#                       packages: Redis master :6379 and replica :6380 on IP
#                       (password STORE_PASSWORD), three Redis Sentinels
#                       :26379-26381 (quorum 2, down-after-milliseconds
#                       1000), in namespace NS;
#                       returns once the sentinels agree and know the replica
#   STORE_SENTINEL      the state-redis value both binaries use for it
#   store_master        the master's port, as the sentinels see it now
#   scli ARGS...        redis-cli on the current master
#   held_open NAME      a held TURN session (tests/e2e/turnpy.py): one
#                       allocation with a permission and channel 0x4000 to
#                       the sink, driven with `held NAME COMMAND`
#   tc_ids / store_ids  allocation ids in turn-control's admin API / the store
#
# Everything stays inside the test's own namespaces. Sourcing this file
# checks that the test can run at all (root, namespaces, turn-dataplane),
# else the test is skipped (77).
need_root
need_dataplane

STORE_NS=""
STORE_IP=""
STORE_SENTINEL=""
STORE_MASTER_NAME=dpturn
STORE_PASSWORD=store-pw-0123456789

# store_node NAME PORT [--replicaof IP PORT]: one Redis of the store (again).
store_node() {
  local name=$1 port=$2; shift 2
  mkdir -p "$E2E_TMP/$name"
  start "$name" "$STORE_NS" redis-server --port "$port" --bind "$STORE_IP" --save '' --appendonly no \
    --dir "$E2E_TMP/$name" --protected-mode no --requirepass "$STORE_PASSWORD" --masterauth "$STORE_PASSWORD" "$@"
}

store_up() {  # ns ip
  STORE_NS=$1 STORE_IP=$2
  STORE_SENTINEL="sentinel=$STORE_IP:26379,$STORE_IP:26380,$STORE_IP:26381 master=$STORE_MASTER_NAME password=$STORE_PASSWORD"
  store_node redis-m 6379
  wait_port "$STORE_NS" tcp "$STORE_IP:6379" 10 || { fail "store: redis master starts"; return 1; }
  store_node redis-r 6380 --replicaof "$STORE_IP" 6379
  for i in 0 1 2; do
    mkdir -p "$E2E_TMP/sentinel$i"
    cat >"$E2E_TMP/sentinel$i/sentinel.conf" <<CONF
port $((26379 + i))
bind $STORE_IP
protected-mode no
dir $E2E_TMP/sentinel$i
sentinel monitor $STORE_MASTER_NAME $STORE_IP 6379 2
sentinel auth-pass $STORE_MASTER_NAME $STORE_PASSWORD
sentinel down-after-milliseconds $STORE_MASTER_NAME 1000
sentinel failover-timeout $STORE_MASTER_NAME 3000
sentinel parallel-syncs $STORE_MASTER_NAME 1
CONF
    start "sentinel$i" "$STORE_NS" redis-server "$E2E_TMP/sentinel$i/sentinel.conf" --sentinel
  done
  # Ready when every sentinel knows both others and the replica in sync.
  local ok=0
  for _ in $(seq 1 150); do
    ok=1
    for p in 26379 26380 26381; do
      local sen rep
      sen=$(ip netns exec "$STORE_NS" redis-cli -h "$STORE_IP" -p $p sentinel sentinels $STORE_MASTER_NAME 2>/dev/null | grep -c '^name$')
      rep=$(ip netns exec "$STORE_NS" redis-cli -h "$STORE_IP" -p $p sentinel replicas $STORE_MASTER_NAME 2>/dev/null \
        | tr '\n' ' ' | grep -c 'flags slave .*master-link-status ok')
      [ "$sen" = 2 ] && [ "$rep" = 1 ] || ok=0
    done
    [ $ok = 1 ] && break
    sleep 0.2
  done
  [ $ok = 1 ] || { fail "store: the three sentinels agree and see the replica (30 s)"; return 1; }
  log "store up: master $STORE_IP:6379, replica :6380, sentinels :26379-26381"
}

# repl_cut NS MASTER_PORT: from now on writes reach the master and never
# its replica, as asynchronous replication loses the last writes before a
# failover. The master's replication stream to the replica is dropped in
# the store's namespace (nftables); to both ends and to the sentinels the
# link still looks up (the replica would time out only after repl-timeout,
# 60 s), so the sentinels still promote this replica when the master dies
# next. (Cut by a wrong masterauth, as it was, the link was down: a replica
# whose link has been down for more than 10 x down-after-milliseconds when
# the master dies is never promoted (Redis's sentinelSelectSlave), and on a
# slow machine the test's own steps between the cut and the kill took that
# long.) repl_mend NS removes the cut.
repl_cut() {
  local ns=$1 mport=$2 port
  port=$(ip netns exec "$ns" redis-cli -h "$STORE_IP" -p "$mport" -a "$STORE_PASSWORD" --no-auth-warning \
    client list type replica | sed -n 's/.* addr=[^ ]*:\([0-9][0-9]*\) .*/\1/p' | head -1)
  [ -n "$port" ] || { echo "repl_cut: no replica connected to :$mport"; return 1; }
  repl_mend "$ns"
  ip netns exec "$ns" nft -f - <<NFT
table inet dpturn_repl_cut {
  chain out {
    type filter hook output priority 0;
    tcp sport $mport tcp dport $port drop
  }
}
NFT
}
repl_mend() { ip netns exec "$1" nft delete table inet dpturn_repl_cut 2>/dev/null || true; }

store_master() {
  ip netns exec "$STORE_NS" redis-cli -h "$STORE_IP" -p 26379 sentinel get-master-addr-by-name $STORE_MASTER_NAME 2>/dev/null | tail -1
}
scli() { ip netns exec "$STORE_NS" redis-cli -h "$STORE_IP" -p "$(store_master)" -a "$STORE_PASSWORD" --no-auth-warning "$@"; }

# ---- held sessions (tests/e2e/turnpy.py) ------------------------------------------
# held_open NAME [NS] [SERVER] [PEER]: opens a session; `held NAME CMD` sends
# one command (refresh, perm, bind, "cdata N", "send N", quit) and prints
# its answer code ("dead" once the session process is gone).
held_open() {
  local name=$1 ns=${2:-$NS_C} server=${3:-$SRV:3478} peer=${4:-10.77.2.2:3490}
  mkfifo "$E2E_TMP/held-$name.in"
  ip netns exec "$ns" "$PY" "$ROOT/tests/e2e/turnpy.py" session "$server" alice wonderland-42 "$peer" \
    <"$E2E_TMP/held-$name.in" >"$E2E_TMP/held-$name.out" 2>&1 &
  track_pid $!
  eval "HELD_PID_${name}=$!"
  local fd
  exec {fd}>"$E2E_TMP/held-$name.in"
  eval "HELD_FD_${name}=$fd"
  for _ in $(seq 1 50); do grep -q "^ready" "$E2E_TMP/held-$name.out" && return 0; sleep 0.1; done
  return 1
}
held_relay() { head -1 "$E2E_TMP/held-$1.out" | awk '{print $2}'; }  # its relayed address
held() {
  local name=$1 pid fd n
  eval "pid=\$HELD_PID_${name} fd=\$HELD_FD_${name}"
  n=$(wc -l <"$E2E_TMP/held-$name.out")
  kill -0 "$pid" 2>/dev/null || { echo dead; return; }
  tell "$fd" "$2" || { echo dead; return; }
  for _ in $(seq 1 60); do [ "$(wc -l <"$E2E_TMP/held-$name.out")" -gt "$n" ] && break; sleep 0.1; done
  tail -1 "$E2E_TMP/held-$name.out" | awk '{print $2}'
}
sink_count() { [ -f "$E2E_TMP/sink.txt" ] && wc -l <"$E2E_TMP/sink.txt" || echo 0; }

# ---- state views -------------------------------------------------------------------------
tc_ids() {  # [ns] [admin url]: turn-control's allocation ids, sorted
  ip netns exec "${1:-$NS_S}" "$PY" -c "
import json, sys, urllib.request
r = urllib.request.Request(sys.argv[1] + '/api/v1/allocations', headers={'Authorization': 'Bearer $TOKEN'})
print('\n'.join(sorted(a['id'] for a in json.load(urllib.request.urlopen(r, timeout=5))['allocations'])))" \
    "${2:-http://127.0.0.1:8080}"
}
store_ids() { scli zrange "dpturn:allocs:${1:-$E2E_INSTANCE}" 0 -1 | sort; }  # [instance]
store_hashes() {  # [instance]: ids whose record hash exists
  local inst=${1:-$E2E_INSTANCE}
  scli --scan --pattern "dpturn:alloc:$inst/*" | grep -v ':traffic$' | sed 's/^dpturn:alloc://' | sort
}
# The data plane's allocation count (telemetry) [ns prefix].
dp_allocations() { dp_stats | "$PY" -c "import json,sys; print(json.load(sys.stdin)['/dpturn/stats']['allocations'])"; }

# ---- two relay hosts on one bridge, a store on a management network --------------
#
#   client ns C (10.77.1.2) --+                        +-- host a (NS_A): eth0 owned by turn-dataplane,
#                             |-- router ns R: br0 ----|   TAP dpt0 10.77.0.2; mgmt m0 10.77.8.11
#   peer ns P   (10.77.2.2) --+   10.77.0.1/24         +-- host b (NS_B): eth0 owned by turn-dataplane,
#                                                          TAP dpt0 10.77.0.3; mgmt m0 10.77.8.12
#   store ns ST: bridge mgmt 10.77.8.1/24 (Redis + Sentinels), linked to m0 of each host
#
# Hosts reach the store over the management network, not through their data
# planes. fleet_host_up NAME IP starts a host's turn-dataplane and
# turn-control (instance-id NAME) on the Sentinel-backed store.
NS_A="dpt-a-$E2E_ID" NS_B="dpt-b-$E2E_ID" NS_ST="dpt-st-$E2E_ID"
SRV_A=10.77.0.2 SRV_B=10.77.0.3 MGMT=10.77.8.1

fleet_topology_up() {
  E2E_EXTRA_NS+=("$NS_A" "$NS_B" "$NS_ST")
  netns_add "$NS_R" "$NS_A" "$NS_B" "$NS_C" "$NS_P" "$NS_ST"
  ip -n "$NS_R" link add br0 type bridge
  ip link add ra netns "$NS_R" type veth peer name eth0 netns "$NS_A"
  ip link add rb netns "$NS_R" type veth peer name eth0 netns "$NS_B"
  ip link add r1 netns "$NS_R" type veth peer name eth0 netns "$NS_C"
  ip link add r2 netns "$NS_R" type veth peer name eth0 netns "$NS_P"
  for i in ra rb; do ip -n "$NS_R" link set "$i" master br0; ip -n "$NS_R" link set "$i" up; done
  ip -n "$NS_R" addr add 10.77.0.1/24 dev br0
  ip -n "$NS_R" addr add 10.77.1.1/24 dev r1
  ip -n "$NS_R" addr add 10.77.2.1/24 dev r2
  ip -n "$NS_R" link set br0 up
  ip netns exec "$NS_R" sysctl -qw net.ipv4.ip_forward=1
  for i in ra rb r1 r2 br0; do ip -n "$NS_R" link set "$i" up; ip netns exec "$NS_R" ethtool -K "$i" tx off >/dev/null 2>&1; done
  routed_side_up "$NS_C" 10.77.1
  routed_side_up "$NS_P" 10.77.2
  # The management network.
  ip -n "$NS_ST" link add mgmt type bridge
  ip -n "$NS_ST" addr add "$MGMT/24" dev mgmt
  ip -n "$NS_ST" link set mgmt up
  local n=11
  for ns in "$NS_A" "$NS_B"; do
    ip link add "m$n" netns "$NS_ST" type veth peer name m0 netns "$ns"
    ip -n "$NS_ST" link set "m$n" master mgmt
    ip -n "$NS_ST" link set "m$n" up
    ip -n "$ns" addr add "10.77.8.$n/24" dev m0
    ip -n "$ns" link set m0 up
    ip -n "$ns" link set eth0 up
    ip netns exec "$ns" ethtool -K eth0 tx off >/dev/null
    n=$((n + 1))
  done
}

# fleet_host_up NAME IP [EXTRA_TC_LINES] [EXTRA_DP_LINES] [SERVICE_IP]:
# turn-dataplane + turn-control of one host. IP is the host's own (its data
# plane's port and TAP); SERVICE_IP (default IP) is where its turn-control
# listens and relays: a floating address in the failover test.
fleet_two_hosts_up() {  # the fleet topology, the Sentinel store and hosts a and b; exits on failure
  fleet_topology_up
  store_up "$NS_ST" "$MGMT" || exit 1
  fleet_host_up a "$SRV_A" || exit 1
  fleet_host_up b "$SRV_B" || exit 1
}

fleet_host_up() {
  local name=$1 ip=$2 svc=${5:-$2} ns prefix
  ns=$(fleet_ns "$name")
  prefix="dpf$E2E_ID$name"
  E2E_DPDK_PREFIXES+=("$prefix")
  cat >"$E2E_TMP/dp-$name.conf" <<CONF
ip=$ip/24
gateway=10.77.0.1
listening-port=3478
min-port=49152
max-port=65535
legacy-channel-range
tap=dpt0
state-redis="$STORE_SENTINEL"
instance-id=$name
allocations=4096
channels=16384
idle-sleep-us=100
${4:-}
CONF
  cat >"$E2E_TMP/tc-$name.conf" <<CONF
listening-ip=$svc
relay-ip=$svc
realm=dp.e2e
user=alice:wonderland-42
legacy-channel-range
state-redis="$STORE_SENTINEL"
instance-id=$name
server-secret=fleet-nonce-secret-0123456789
relay-threads=1
admin-ip=127.0.0.1
admin-port=8080
admin-token=$TOKEN
${3:-}
CONF
  ip netns exec "$ns" sysctl -qw net.ipv4.conf.all.rp_filter=1 net.ipv4.conf.eth0.rp_filter=1
  ip -n "$ns" link set eth0 arp off
  eal_mem 256
  start "dataplane-$name" "$ns" "$BUILD/dataplane/turn-dataplane" -l 0-1 "${EAL_MEM[@]}" --no-pci \
    --vdev=net_af_packet0,iface=eth0 --file-prefix="$prefix" -- -c "$E2E_TMP/dp-$name.conf"
  for _ in $(seq 1 100); do ip -n "$ns" link show dpt0 >/dev/null 2>&1 && break; sleep 0.1; done
  ip -n "$ns" addr add "$ip/24" dev dpt0 2>/dev/null || { fail "host $name: TAP dpt0 up"; return 1; }
  ip -n "$ns" route replace default via 10.77.0.1 || return 1
  ip netns exec "$ns" ethtool -K dpt0 tx off >/dev/null
  start "turn-control-$name" "$ns" "$BUILD/controlplane/turn-control" -c "$E2E_TMP/tc-$name.conf"
  wait_port "$ns" udp "$svc:3478" 10 || { fail "host $name: turn-control listens"; return 1; }
}

# keepalived_conf NAME OWN_IP PEER_IP: keepalived's configuration for host
# NAME, the shipped deploy/keepalived/keepalived.conf (relay-a's), its
# documentation addresses swapped for this topology's: VRRP over the TAP
# dpt0, unicast to the other host, one instance per host's floating address
# (VIP_a 10.77.0.12, VIP_b 10.77.0.13), the host's own with priority 150,
# the other's 100; dpturn-notify adopts the other's instance on takeover.
VIP_A=10.77.0.12 VIP_B=10.77.0.13
keepalived_conf() {
  local name=$1 own=$2 peer=$3 conf prio
  conf=$E2E_TMP/keepalived-$name.conf
  cat >"$E2E_TMP/notify-$name.env" <<ENV
DPTURN_INSTANCE=$name
DPTURN_ADMIN_URL=http://127.0.0.1:8080
DPTURN_ADMIN_TOKEN=$TOKEN
TURNCTL=$BUILD/controlplane/turnctl
DPTURN_NOTIFY_LOG=$E2E_TMP/notify-$name.log
DPTURN_RELEASE_DIR=$E2E_TMP/run-$name
DPTURN_RELEASE_S=${DPTURN_RELEASE_S:-10}
ENV
  mkdir -p "$E2E_TMP/run-$name"
  prio='s/priority 150/priority 1x0/; s/priority 100/priority 150/; s/priority 1x0/priority 100/'
  [ "$name" = a ] && prio=""
  sed -e "s/203\.0\.113\.10/$own/g; s/203\.0\.113\.11/$peer/g" \
    -e "s/203\.0\.113\.12/$VIP_A/g; s/203\.0\.113\.13/$VIP_B/g" \
    -e "s|/usr/lib/dpturn/dpturn-notify|$ROOT/deploy/keepalived/dpturn-notify|; s|/etc/dpturn/notify.env|$E2E_TMP/notify-$name.env|" \
    -e "s|/run/dpturn-release-relay-\([ab]\)|$E2E_TMP/run-$name/dpturn-release-\1|" \
    -e "s/master relay-\([ab]\) /master \1 /; s/router_id relay-a/router_id dpturn-$name/" -e "$prio" \
    "$ROOT/deploy/keepalived/keepalived.conf" >"$conf"
}
keepalived_start() {  # NAME: keepalived_conf's configuration
  start "keepalived-$1" "$(fleet_ns "$1")" keepalived -n -l -D -P -f "$E2E_TMP/keepalived-$1.conf" \
    -p "$E2E_TMP/keepalived-$1.pid" -r "$E2E_TMP/vrrp-$1.pid"
}
# keepalived_clean NAME: host NAME's keepalived read its configuration
# without a warning (one it ignores, e.g. a VRRPv2 fallback that rounds
# advert_int 0.5 up to 1 s, doubles the failover time).
keepalived_clean() {
  local log=$E2E_TMP/keepalived-$1.log
  for _ in $(seq 1 50); do grep -q "Entering BACKUP STATE\|Entering MASTER STATE" "$log" 2>/dev/null && break; sleep 0.1; done
  ! grep -iE "warning|rounding|unknown keyword" "$log"
}
# host_die NAME: every process of host NAME SIGKILLed at once, as a power
# cut would: keepalived's VRRP child too (killing only its parent makes the
# child send a priority-0 advert and hand the address over at once, which a
# dead host never does), turn-control and turn-dataplane.
# The VRRP child is stopped first: killed before its parent, it would be
# respawned by it (an orphan that outlives the test); killed after, it
# would get its parent-death signal first and hand the address over.
host_die() {
  local name=$1 pids=() p vrrp
  vrrp=$(cat "$E2E_TMP/vrrp-$name.pid" 2>/dev/null)
  [ -n "$vrrp" ] && kill -STOP "$vrrp" 2>/dev/null
  for p in "PID_keepalived_$name" "PID_turn_control_$name" "PID_dataplane_$name"; do
    [ -n "${!p:-}" ] && pids+=("${!p}")
  done
  [ -n "$vrrp" ] && pids+=("$vrrp")
  kill -KILL "${pids[@]}" 2>/dev/null
  for p in "${pids[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  done
}
fleet_ns() { case $1 in a) echo "$NS_A" ;; b) echo "$NS_B" ;; *) echo "dpt-$1-$E2E_ID" ;; esac; }
hctl() {  # host turnctl args...
  ip netns exec "$(fleet_ns "$1")" "$BUILD/controlplane/turnctl" --url http://127.0.0.1:8080 --token "$TOKEN" "${@:2}"
}
hdp_stats() { ip netns exec "$(fleet_ns "$1")" "$ROOT/scripts/dp-telemetry.py" --file-prefix "dpf$E2E_ID$1"; }
hdp_allocations() { hdp_stats "$1" | "$PY" -c "import json,sys; print(json.load(sys.stdin)['/dpturn/stats']['allocations'])"; }

# fleet_vip_up: the store and both relay hosts, each instance serving on
# its floating address (VIP_A, VIP_B; every data plane lists both as
# floating-ip), keepalived on both; returns once each host holds its own.
fleet_vip_up() {
  fleet_topology_up
  store_up "$NS_ST" "$MGMT" || return 1
  local ns
  for ns in "$NS_A" "$NS_B"; do ip netns exec "$ns" sysctl -qw net.ipv4.ip_nonlocal_bind=1; done
  local float="floating-ip=$VIP_A
floating-ip=$VIP_B"
  fleet_host_up a "$SRV_A" "" "$float" "$VIP_A" || return 1
  fleet_host_up b "$SRV_B" "" "$float" "$VIP_B" || return 1
  keepalived_conf a "$SRV_A" "$SRV_B"
  keepalived_conf b "$SRV_B" "$SRV_A"
  # Both at once: with nopreempt on every instance, a keepalived that runs
  # alone for 1.8 s takes every address (docs/fleet.md "Host failover"), and
  # the two differ by 0.1 s only in when they claim the other's.
  keepalived_start a
  keepalived_start b
  keepalived_clean a || { fail "host a: keepalived took its configuration without a warning"; return 1; }
  keepalived_clean b || { fail "host b: keepalived took its configuration without a warning"; return 1; }
  # If one claimed both addresses (the other started 0.1 s late), its
  # dpturn-notify gives the other's back within ~7 s (adoption refused,
  # the owner is alive: docs/fleet.md).
  for _ in $(seq 1 200); do holds a "$VIP_A" && holds b "$VIP_B" && return 0; sleep 0.1; done
  return 1
}
holds() { ip -n "$(fleet_ns "$1")" -4 addr show dev dpt0 | grep -q "inet $2/"; }  # host address

# browsers_call NAME SERVER RELAY_IP [cdp_webrtc.py args...]: a relay-only
# call between two headless Chromiums in the client namespace
# (tests/browser/cdp_webrtc.py) through TURN server SERVER:3478, whose
# selected pairs must use RELAY_IP; its output in $E2E_TMP/browsers-NAME.log.
# With --ready-file/--hold-file it holds the call: run it in the background.
browsers_call() {
  local name=$1 server=$2 relay=$3 chromium
  shift 3
  chromium=$(command -v chromium)
  timeout 200 "$PY" "$ROOT/tests/browser/cdp_webrtc.py" --url "turn:$server:3478" --user alice --password wonderland-42 \
    --relay-ip "$relay" --relay-protocol udp --url-b "turn:$server:3478" --cmd-b "ip netns exec $NS_C $chromium" \
    --messages 30 --timeout 180 --chromium-log "$E2E_TMP/chromium-$name.log" "$@" \
    -- ip netns exec "$NS_C" "$chromium" >"$E2E_TMP/browsers-$name.log" 2>&1
}
browsers_ready() { for _ in $(seq 1 600); do [ -f "$1" ] && return 0; sleep 0.1; done; return 1; }  # ready-file
