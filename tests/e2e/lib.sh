#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Shared helpers for end-to-end tests: network namespaces that the test
# creates itself (client, server, peer), processes started by PID and
# stopped by PID, assertions, and cleanup that runs on any exit.
#
# Traffic stays inside these namespaces (10.77.x.y / fd77::/16 on veth pairs
# created here) or on loopback. Nothing is sent anywhere else.

set -uo pipefail

E2E_ID="${E2E_ID:-$$}"
E2E_ID=$((E2E_ID % 100000))
NS_S="dpt-s-$E2E_ID"   # server
NS_C="dpt-c-$E2E_ID"   # client side
NS_P="dpt-p-$E2E_ID"   # peer side
E2E_TMP=$(mktemp -d /tmp/dpturn-e2e.XXXXXX)
E2E_PIDS=()
E2E_DPDK_PREFIXES=()   # DPDK --file-prefix values to remove from /var/run/dpdk at the end
E2E_FAILS=0
E2E_PASSES=0

# Addresses (RFC 1918 inside our own namespaces only).
S_CLIENT_IP=10.77.1.1   # server, client-facing
C_IP=10.77.1.2
S_PEER_IP=10.77.2.1     # server, peer-facing (relay address)
P_IP=10.77.2.2

log() { printf '[e2e %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
pass() { E2E_PASSES=$((E2E_PASSES + 1)); printf 'PASS: %s\n' "$*"; }
fail() { E2E_FAILS=$((E2E_FAILS + 1)); printf 'FAIL: %s\n' "$*"; }
check() {  # description, command...
  local what=$1; shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}

need_root() {
  if [ "$(id -u)" -ne 0 ] || ! ip netns add "dpt-probe-$E2E_ID" 2>/dev/null; then
    echo "SKIP: needs root and network namespaces"
    exit 77
  fi
  ip netns del "dpt-probe-$E2E_ID"
}

netns_up() {
  for ns in "$NS_S" "$NS_C" "$NS_P"; do
    ip netns add "$ns"
    ip -n "$ns" link set lo up
  done
  ip link add "c$E2E_ID" netns "$NS_C" type veth peer name "sc$E2E_ID" netns "$NS_S"
  ip link add "p$E2E_ID" netns "$NS_P" type veth peer name "sp$E2E_ID" netns "$NS_S"
  ip -n "$NS_C" addr add "$C_IP/24" dev "c$E2E_ID"
  ip -n "$NS_S" addr add "$S_CLIENT_IP/24" dev "sc$E2E_ID"
  ip -n "$NS_P" addr add "$P_IP/24" dev "p$E2E_ID"
  ip -n "$NS_S" addr add "$S_PEER_IP/24" dev "sp$E2E_ID"
  ip -n "$NS_C" link set "c$E2E_ID" up
  ip -n "$NS_S" link set "sc$E2E_ID" up
  ip -n "$NS_P" link set "p$E2E_ID" up
  ip -n "$NS_S" link set "sp$E2E_ID" up
  # The client side reaches the relay addresses through the server (routed
  # edge), for client-to-client tests.
  ip -n "$NS_C" route add 10.77.2.0/24 via "$S_CLIENT_IP"
  ip -n "$NS_P" route add 10.77.1.0/24 via "$S_PEER_IP"
  ip netns exec "$NS_S" sysctl -qw net.ipv4.ip_forward=1
}

# start NAME NS command... : runs in the background, records the PID.
start() {
  local name=$1 ns=$2; shift 2
  ip netns exec "$ns" "$@" >"$E2E_TMP/$name.log" 2>&1 &
  local pid=$!
  E2E_PIDS+=("$pid")
  eval "PID_${name//-/_}=$pid"
}

stop_pid() {  # pid [signal]
  local pid=$1 sig=${2:-TERM}
  kill -"$sig" "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}

wait_port() {  # ns proto(tcp|udp) ip:port timeout_s
  local ns=$1 proto=$2 addr=$3 t=${4:-10}
  local flag=-tln; [ "$proto" = udp ] && flag=-uln
  for _ in $(seq 1 $((t * 10))); do
    ip netns exec "$ns" ss $flag 2>/dev/null | grep -qF " $addr " && return 0
    sleep 0.1
  done
  return 1
}

start_redis() {  # ns port
  start redis "$1" redis-server --port "$2" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$E2E_TMP"
  wait_port "$1" tcp "127.0.0.1:$2" 10
}

# turn-dataplane on the server namespace's eth0 (net_af_packet) with Redis
# beside it; its TAP dpt0 carries 10.77.0.2/24, default route via 10.77.0.1
# (the router namespace). The shape of tests/e2e/dataplane_e2e.sh.
#   dataplane_up BUILD FILE_PREFIX INSTANCE_ID  -> PID_dataplane, $E2E_TMP/dp.conf
dataplane_up() {
  local build=$1 prefix=$2 instance=$3
  E2E_DPDK_PREFIXES+=("$prefix")
  # The data plane's port: no IP, and the kernel must not answer on it (the
  # TAP carries the address): strict reverse-path filter, no ARP.
  ip -n "$NS_S" link set eth0 up
  ip netns exec "$NS_S" ethtool -K eth0 tx off >/dev/null
  ip netns exec "$NS_S" sysctl -qw net.ipv4.conf.all.rp_filter=1 net.ipv4.conf.eth0.rp_filter=1
  ip -n "$NS_S" link set eth0 arp off
  start_redis "$NS_S" 6379 || { fail "redis starts"; return 1; }
  cat >"$E2E_TMP/dp.conf" <<CONF
ip=10.77.0.2/24
gateway=10.77.0.1
listening-port=3478
min-port=49152
max-port=65535
legacy-channel-range
tap=dpt0
state-redis="ip=127.0.0.1 port=6379"
instance-id=$instance
allocations=4096
channels=16384
CONF
  start dataplane "$NS_S" "$build/dataplane/turn-dataplane" -l 0-1 --in-memory --no-pci \
    --vdev=net_af_packet0,iface=eth0 --file-prefix="$prefix" -- -c "$E2E_TMP/dp.conf"
  for _ in $(seq 1 100); do ip -n "$NS_S" link show dpt0 >/dev/null 2>&1 && break; sleep 0.1; done
  ip -n "$NS_S" addr add 10.77.0.2/24 dev dpt0 && ip -n "$NS_S" route add default via 10.77.0.1 \
    || { fail "TAP dpt0 created by turn-dataplane"; return 1; }
  ip netns exec "$NS_S" ethtool -K dpt0 tx off >/dev/null
}

make_cert() {  # dir -> cert.pem key.pem (self-signed, test only)
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=dpturn-e2e" -keyout "$1/key.pem" -out "$1/cert.pem" >/dev/null 2>&1
}

cleanup() {
  for pid in "${E2E_PIDS[@]:-}"; do [ -n "$pid" ] && stop_pid "$pid"; done
  for ns in "$NS_S" "$NS_C" "$NS_P"; do ip netns del "$ns" 2>/dev/null || true; done
  for p in "${E2E_DPDK_PREFIXES[@]:-}"; do [ -n "$p" ] && rm -rf "/var/run/dpdk/$p"; done
  if [ "${E2E_KEEP:-0}" = 1 ] || [ "$E2E_FAILS" -gt 0 ]; then
    log "logs kept in $E2E_TMP"
    for f in "$E2E_TMP"/*.log; do echo "----- $f (tail)"; tail -n 15 "$f"; done
  else
    rm -rf "$E2E_TMP"
  fi
}

finish() {
  echo "e2e: $E2E_PASSES passed, $E2E_FAILS failed"
  [ "$E2E_FAILS" -eq 0 ]
}
