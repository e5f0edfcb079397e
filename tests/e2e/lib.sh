#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Shared helpers for end-to-end tests: network namespaces that the test
# creates itself (client, server, peer, router), processes started by PID
# and stopped by PID, assertions, the turn-dataplane topology, and cleanup
# that runs on any exit (sourcing this file sets the EXIT trap).
#
# Traffic stays inside these namespaces (10.77.x.y / fd77::/16 on veth pairs
# created here) or on loopback. Nothing is sent anywhere else.
#
# A test script, run as `SCRIPT BUILD_DIR [ARGS...]`, starts:
#   set -uo pipefail
#   HERE=$(cd "$(dirname "$0")" && pwd)
#   . "$HERE/lib.sh"
#   need_root
# Sourcing sets BUILD (the script's first argument, absolute), ROOT (the
# repository) and the EXIT trap. A script with other arguments passes the
# build directory itself: . tests/e2e/lib.sh BUILD_DIR

set -uo pipefail

BUILD=$(cd "${1:?usage: $0 BUILD_DIR [ARGS...]}" && pwd) || exit 2
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
. "$ROOT/scripts/lib/dpdk.sh"   # eal_mem, dpdk_prefix_clean
. "$ROOT/scripts/lib/procs.sh"  # track_pid, bg_in, stop_pid, stop_procs, wait_port, redis_start
. "$ROOT/scripts/lib/netns.sh"  # netns_add, netns_del, routed_topology_up
PY=/usr/bin/python3    # Debian's python (scapy, websocket), not a pyenv one first on PATH
E2E_ID="${E2E_ID:-$$}"
E2E_ID=$((E2E_ID % 100000))
NS_S="dpt-s-$E2E_ID"   # server
NS_C="dpt-c-$E2E_ID"   # client side
NS_P="dpt-p-$E2E_ID"   # peer side
NS_R="dpt-r-$E2E_ID"   # router (dp_topology_up)
E2E_TMP=$(mktemp -d /tmp/dpturn-e2e.XXXXXX)
E2E_DPDK_PREFIXES=()   # DPDK --file-prefix values to remove from /var/run/dpdk at the end
E2E_EXTRA_NS=()        # more namespaces a test made (fleet_lib.sh), deleted at the end
E2E_FAILS=0
E2E_PASSES=0
E2E_FAILED=()

# Addresses (RFC 1918 inside our own namespaces only).
S_CLIENT_IP=10.77.1.1   # server, client-facing
C_IP=10.77.1.2
S_PEER_IP=10.77.2.1     # server, peer-facing (relay address)
P_IP=10.77.2.2

log() { printf '[e2e %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
pass() { E2E_PASSES=$((E2E_PASSES + 1)); printf 'PASS: %s\n' "$*"; }
fail() { E2E_FAILS=$((E2E_FAILS + 1)); E2E_FAILED+=("$*"); printf 'FAIL: %s\n' "$*"; }
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
  netns_add "$NS_S" "$NS_C" "$NS_P"
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

# start NAME NS command... : in the background (log $E2E_TMP/NAME.log),
# PID tracked and in PID_NAME.
start() {
  local name=$1 ns=$2; shift 2
  bg_in "$ns" "$E2E_TMP/$name.log" "$@"
  eval "PID_${name//-/_}=$BG_PID"
}

# tell FD TEXT: a line to a held session's FIFO; 1 when nobody reads it any
# more. A plain write to the FIFO of a dead session would kill the test
# (SIGPIPE) before its remaining checks could fail cleanly.
tell() { ( trap '' PIPE; echo "$2" >&"$1" ) 2>/dev/null; }

start_redis() {  # ns port -> PID_redis
  redis_start "$1" "$2" "$E2E_TMP" || return 1
  PID_redis=$REDIS_PID
}

# start_peer NAME IP: coturn's turnutils_peer (echoes) on IP port 3480 in the
# peer namespace; fails the test step if it does not listen.
start_peer() {
  local addr="$2:3480"
  [[ $2 == *:* ]] && addr="[$2]:3480"
  start "$1" "$NS_P" turnutils_peer -L "$2" -p 3480
  wait_port "$NS_P" udp "$addr" 10 || { fail "turnutils_peer listens on $addr"; return 1; }
}

# ---- turn-dataplane in front of turn-control --------------------------------
#
#   client ns (10.77.1.2) --+                       +-- server ns: eth0 owned by
#                           |-- router ns ----------|   turn-dataplane (net_af_packet),
#   peer ns   (10.77.2.2) --+   (10.77.{0,1,2}.1)   |   TAP dpt0 = 10.77.0.2 with
#                                                   +   turn-control + redis behind it
#
# dp_stack_up brings all of it up; its steps one by one: dp_topology_up,
# start_redis, dp_write_conf, dp_start, tc_write_conf, tc_start.
SRV=10.77.0.2             # the server: turn-dataplane's, its TAP's and turn-control's address
DP_PREFIX="dpe2e$E2E_ID"  # turn-dataplane's DPDK --file-prefix
TOKEN=e2e-token-0123456789abcdef

need_dataplane() {
  [ -x "$BUILD/dataplane/turn-dataplane" ] || { echo "SKIP: turn-dataplane not built"; exit 77; }
}

need_tools() {  # program...: each installed, else SKIP (77); sets CHROMIUM when chromium is one
  local t
  for t in "$@"; do
    command -v "$t" >/dev/null || { echo "SKIP: $t not installed (scripts/setup.sh installs it)"; exit 77; }
  done
  CHROMIUM=$(command -v chromium || true)
}

# The four namespaces and their links; the server's eth0 is up without an
# address (coturn or turn-dataplane takes it).
dp_topology_up() { routed_topology_up "$NS_R" "$NS_S" "$NS_C" "$NS_P"; }

# turn-dataplane and turn-control of one host share an instance-id: the data
# plane loads and follows the allocations its turn-control writes under it.
E2E_INSTANCE=dpe2e

dp_write_conf() {  # [instance-id] -> $E2E_TMP/dp.conf
  cat >"$E2E_TMP/dp.conf" <<CONF
ip=$SRV/24
gateway=10.77.0.1
listening-port=3478
min-port=49152
max-port=65535
legacy-channel-range
tap=dpt0
state-redis="ip=127.0.0.1 port=6379"
instance-id=${1:-$E2E_INSTANCE}
allocations=4096
channels=16384
# The workers share this machine's cores with the whole test bed: idle, they
# sleep (docs/dataplane.md); under load they spin as in production.
idle-sleep-us=100
CONF
}

tc_write_conf() {  # -> $E2E_TMP/tc.conf: turn-control behind the data plane
  cat >"$E2E_TMP/tc.conf" <<CONF
listening-ip=$SRV
relay-ip=$SRV
realm=dp.e2e
user=alice:wonderland-42
legacy-channel-range
state-redis="ip=127.0.0.1 port=6379"
instance-id=$E2E_INSTANCE
relay-threads=1
admin-ip=127.0.0.1
admin-port=8080
admin-token=$TOKEN
CONF
}

# Starts turn-dataplane (again, after a kill) on the server's eth0 and
# brings its TAP up with the server's address. Returns non-zero if the TAP
# does not appear. Sets PID_dataplane.
dp_start() {
  E2E_DPDK_PREFIXES+=("$DP_PREFIX")
  eal_mem 256
  # The data plane's port: no IP, and the kernel must not answer on it (the
  # TAP carries the address): strict reverse-path filter, no ARP.
  ip netns exec "$NS_S" sysctl -qw net.ipv4.conf.all.rp_filter=1 net.ipv4.conf.eth0.rp_filter=1
  ip -n "$NS_S" link set eth0 arp off
  start dataplane "$NS_S" "$BUILD/dataplane/turn-dataplane" -l 0-1 "${EAL_MEM[@]}" --no-pci \
    --vdev=net_af_packet0,iface=eth0 --file-prefix="$DP_PREFIX" -- -c "$E2E_TMP/dp.conf"
  for _ in $(seq 1 100); do ip -n "$NS_S" link show dpt0 >/dev/null 2>&1 && break; sleep 0.1; done
  ip -n "$NS_S" addr add $SRV/24 dev dpt0 2>/dev/null || return 1
  ip -n "$NS_S" route replace default via 10.77.0.1 || return 1
  ip netns exec "$NS_S" ethtool -K dpt0 tx off >/dev/null
}

tc_start() {  # (again) -> PID_turn_control; non-zero if it does not listen
  start turn-control "$NS_S" "$BUILD/controlplane/turn-control" -c "$E2E_TMP/tc.conf"
  wait_port "$NS_S" udp "$SRV:3478" 10
}

# dp_stack_up [TC_LINES]: topology, Redis, turn-dataplane, turn-control (with
# TC_LINES appended to its configuration); fails the test step and returns
# non-zero at the first part that does not come up.
dp_stack_up() {
  dp_topology_up
  start_redis "$NS_S" 6379 || { fail "redis starts"; return 1; }
  dp_write_conf
  tc_write_conf
  if [ -n "${1:-}" ]; then printf '%s\n' "$1" >>"$E2E_TMP/tc.conf"; fi
  dp_start || { fail "TAP dpt0 created by turn-dataplane"; return 1; }
  tc_start || { fail "turn-control listens"; return 1; }
}

dp_stats() { ip netns exec "$NS_S" "$ROOT/scripts/dp-telemetry.py" --file-prefix "$DP_PREFIX" "$@"; }
dp_stat() {  # key json -> the counter (0 if absent)
  python3 -c "import json,sys; print(json.load(sys.stdin)['/dpturn/stats'].get(sys.argv[1], 0))" "$1" <<<"$2"
}
ctl() { ip netns exec "$NS_S" "$BUILD/controlplane/turnctl" --url http://127.0.0.1:8080 --token "$TOKEN" "$@"; }
rcli() { ip netns exec "$NS_S" redis-cli -p 6379 "$@"; }

# uclient_run NAME ARGS... : bounded coturn client run from the client
# namespace through the relay to turnutils_peer; prints sent/received/lost;
# true when nothing was lost.
uclient_run() {
  local name=$1; shift
  local out="$E2E_TMP/uclient-$name.log"
  timeout 120 ip netns exec "$NS_C" turnutils_uclient -e 10.77.2.2 -r 3480 -u alice -w wonderland-42 "$@" $SRV \
    >"$out" 2>&1
  uclient_result "$name"
}
uclient_result() {  # NAME (reads $E2E_TMP/uclient-NAME.log)
  local out="$E2E_TMP/uclient-$1.log" sent recv lost
  sent=$(sed -n 's/.*tot_send_msgs=\([0-9]*\), tot_recv.*/\1/p' "$out" | tail -1)
  # The final summary line ends with tot_recv_msgs; the progress lines go on.
  recv=$(sed -n 's/.*tot_recv_msgs=\([0-9]*\)$/\1/p' "$out" | tail -1)
  [ -z "$recv" ] && recv=$(sed -n 's/.*tot_recv_msgs=\([0-9]*\).*/\1/p' "$out" | tail -1)
  lost=$(sed -n 's/.*Total lost packets \([0-9]*\).*/\1/p' "$out" | tail -1)
  echo "uclient $1: sent=${sent:-?} received=${recv:-?} lost=${lost:-?}"
  [ -n "$sent" ] && [ "$sent" -gt 0 ] && [ "$sent" = "$recv" ] && [ "$lost" = 0 ]
}

make_cert() {  # dir -> cert.pem key.pem (self-signed, test only)
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=dpturn-e2e" -keyout "$1/key.pem" -out "$1/cert.pem" >/dev/null 2>&1
}

cleanup() {
  stop_procs
  netns_del "$NS_S" "$NS_C" "$NS_P" "$NS_R" "${E2E_EXTRA_NS[@]:-}"
  dpdk_prefix_clean "${E2E_DPDK_PREFIXES[@]:-}"
  if [ "${E2E_KEEP:-0}" = 1 ] || [ "$E2E_FAILS" -gt 0 ]; then
    log "logs kept in $E2E_TMP"
    for f in "$E2E_TMP"/*.log; do echo "----- $f (tail)"; tail -n 15 "$f"; done
    # Last, on stderr, which meson prints after stdout: a CI log that keeps
    # only its tail still names the checks that failed.
    local what
    for what in "${E2E_FAILED[@]}"; do printf 'e2e: FAILED: %s\n' "$what" >&2; done
  else
    rm -rf "$E2E_TMP"
  fi
}

finish() {
  echo "e2e: $E2E_PASSES passed, $E2E_FAILS failed"
  [ "$E2E_FAILS" -eq 0 ]
}

trap cleanup EXIT
