#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# turn-dataplane on a dual-homed edge, in network namespaces this test
# creates: two DPDK ports in one process, each with its own exception TAP,
# egress chosen per packet by route.
#
#   client ns 10.77.1.2 --veth-- [port 0: net_af_packet on eth0]  TAP dpt0 = 10.77.1.1 (TURN listener)
#             fd77:1::2                                                      fd77:1::1
#                                  turn-dataplane + turn-control + redis (server ns)
#   peer ns   10.77.2.2 --tap--- [port 1: net_tap dpn<ID>]        TAP dpt1 = 10.77.2.1 (relay address)
#             fd77:2::2                                                      fd77:2::1
#
# Port 1 is a net_tap whose kernel end is moved into the peer namespace:
# net_tap offers IPv4/UDP tx checksum offload, so every packet the fast
# path sends to the peer leaves with checksums the port completes, and the
# peer's kernel (which verifies UDP checksums) drops any that are wrong.
# coturn's turnutils_uclient relays through port 0 -> port 1 -> port 0 with
# zero loss, on the fast path, and the per-port counters show both ports;
# then the same over IPv6 (uclient -x: IPv6 relay, IPv6 peer). Then
# dual-stack allocations (RFC 8656 §7.2, ADDITIONAL-ADDRESS-FAMILY, made by
# tests/e2e/turnpy.py dual) from an IPv4 and from an IPv6 client: both
# relayed addresses relay on the fast path, the half of the other family
# than the client's with the IP version translated (an IPv4 client's data
# leaves to the IPv6 peer as IPv6, the reply comes back over IPv4).
#
#   tests/e2e/dataplane_dualhomed_e2e.sh BUILD_DIR
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"  # sets BUILD ($1), ROOT, the EXIT trap
need_root

MSGS=${E2E_MSGS:-300}
TAPNET="dpn$E2E_ID"

netns_add "$NS_S" "$NS_C" "$NS_P"
ip link add eth0 netns "$NS_S" type veth peer name eth0 netns "$NS_C"
ip -n "$NS_C" addr add 10.77.1.2/24 dev eth0
ip -n "$NS_C" link set eth0 up
ip -n "$NS_C" route add default via 10.77.1.1
ip -n "$NS_C" addr add fd77:1::2/64 dev eth0 nodad
ip -n "$NS_C" route add fd77:2::/64 via fd77:1::1
ip netns exec "$NS_C" ethtool -K eth0 tx off >/dev/null
ip -n "$NS_S" link set eth0 up
ip netns exec "$NS_S" ethtool -K eth0 tx off >/dev/null
ip netns exec "$NS_S" sysctl -qw net.ipv4.conf.all.rp_filter=1 net.ipv4.conf.eth0.rp_filter=1
ip -n "$NS_S" link set eth0 arp off
ip netns exec "$NS_S" sysctl -qw net.ipv6.conf.eth0.disable_ipv6=1  # the TAP speaks IPv6 for it

start_redis "$NS_S" 6379 || { fail "redis starts"; exit 1; }
cat >"$E2E_TMP/dp.conf" <<CONF
# external: clients
port=0
ip=10.77.1.1/24
ip6=fd77:1::1/64
tap=dpt0
# internal: peers (the conference bridge side)
port=1
ip=10.77.2.1/24
ip6=fd77:2::1/64
tap=dpt1
relay-ip=10.77.2.1
relay-ip=fd77:2::1
listening-port=3478
legacy-channel-range
state-redis="ip=127.0.0.1 port=6379"
instance-id=dual
allocations=4096
channels=16384
idle-sleep-us=100
CONF
# Two workers (both on core 1 here: this checks queues, not speed): each
# port has a queue pair per worker, flows spread by the port (af_packet's
# fanout hash; net_tap's flow steering), every worker polls every port.
WORKERS=${DP_WORKERS:-2}
LCORES="0@0"
for w in $(seq 1 "$WORKERS"); do LCORES="$LCORES,$w@$(( $(nproc) > 1 ? 1 : 0 ))"; done
E2E_DPDK_PREFIXES+=("$DP_PREFIX")
eal_mem 256
log "$EAL_MEM_WHY"
start dataplane "$NS_S" "$BUILD/dataplane/turn-dataplane" --lcores="$LCORES" "${EAL_MEM[@]}" --no-pci \
  --vdev="net_af_packet0,iface=eth0,qpairs=$WORKERS" --vdev="net_tap0,iface=$TAPNET" --file-prefix="$DP_PREFIX" -- \
  -c "$E2E_TMP/dp.conf"
for _ in $(seq 1 100); do grep -q 'port(s),' "$E2E_TMP/dataplane.log" 2>/dev/null && break; sleep 0.1; done
grep -q 'port(s),' "$E2E_TMP/dataplane.log" || { fail "turn-dataplane starts"; cat "$E2E_TMP/dataplane.log"; exit 1; }
grep -E 'INFO port [0-9]+ ' "$E2E_TMP/dataplane.log"
# The internal port's kernel end goes to the peer namespace.
ip -n "$NS_S" link set "$TAPNET" netns "$NS_P" || { fail "move $TAPNET to the peer namespace"; exit 1; }
ip -n "$NS_P" addr add 10.77.2.2/24 dev "$TAPNET"
ip -n "$NS_P" addr add fd77:2::2/64 dev "$TAPNET" nodad
ip -n "$NS_P" link set "$TAPNET" up
ip -n "$NS_P" route add fd77:1::/64 via fd77:2::1
ip netns exec "$NS_P" ethtool -K "$TAPNET" tx off >/dev/null 2>&1
for i in 0 1; do
  ip -n "$NS_S" addr add "10.77.$((i + 1)).1/24" dev "dpt$i" || { fail "exception TAP dpt$i created"; exit 1; }
  ip -n "$NS_S" addr add "fd77:$((i + 1))::1/64" dev "dpt$i" nodad
  ip netns exec "$NS_S" ethtool -K "dpt$i" tx off >/dev/null
done
cat >"$E2E_TMP/tc.conf" <<CONF
listening-ip=10.77.1.1
listening-ip=fd77:1::1
relay-ip=10.77.2.1
relay-ip=fd77:2::1
realm=dual.e2e
user=alice:wonderland-42
legacy-channel-range
state-redis="ip=127.0.0.1 port=6379"
instance-id=dual
relay-threads=1
CONF
start turn-control "$NS_S" "$BUILD/controlplane/turn-control" -c "$E2E_TMP/tc.conf"
wait_port "$NS_S" udp "10.77.1.1:3478" 10 || { fail "turn-control listens"; exit 1; }
start_peer peer 10.77.2.2 || exit 1
start_peer peer6 fd77:2::2 || exit 1

json() {  # command key
  python3 -c "import json,sys; d=json.load(sys.stdin); print(d[sys.argv[1]].get(sys.argv[2], 0))" "$1" "$2"
}

ports=$(dp_stats /dpturn/ports)
echo "$ports"
check "port 0 is the af_packet port, checksums in software" \
  test "$(json /dpturn/ports port0_checksum_offload <<<"$ports")" = 0
check "port 1 is the net_tap port, checksums offloaded" \
  test "$(json /dpturn/ports port1_checksum_offload <<<"$ports")" = 1

uclient() {  # name args... -> zero loss (UCLIENT_PEER / UCLIENT_SERVER choose the family)
  local name=$1; shift
  local out="$E2E_TMP/uclient-$name.log"
  timeout 120 ip netns exec "$NS_C" turnutils_uclient -e "${UCLIENT_PEER:-10.77.2.2}" -r 3480 -n "$MSGS" -m 2 -l 170 \
    -z 5 -c -u alice -w wonderland-42 "$@" "${UCLIENT_SERVER:-10.77.1.1}" >"$out" 2>&1
  uclient_result "$name"
}

for mode in channels send channels-ipv6 send-ipv6; do
  b=$(dp_stats /dpturn/stats); bp=$(dp_stats /dpturn/ports)
  args=()
  case $mode in send*) args+=(-s) ;; esac
  case $mode in *ipv6) args+=(-x); export UCLIENT_PEER=fd77:2::2 UCLIENT_SERVER=fd77:1::1 ;; esac
  check "$mode: zero loss across the two ports" uclient "$mode" "${args[@]}"
  a=$(dp_stats /dpturn/stats); ap=$(dp_stats /dpturn/ports)
  read -r to_peer to_client p1tx p0tx unknown <<<"$(python3 - "$b" "$a" "$bp" "$ap" <<'PY'
import json, sys
b, a, bp, ap = (json.loads(x) for x in sys.argv[1:])
s = lambda k: a['/dpturn/stats'].get(k, 0) - b['/dpturn/stats'].get(k, 0)
p = lambda k: ap['/dpturn/ports'].get(k, 0) - bp['/dpturn/ports'].get(k, 0)
print(s('channel_data_to_peer') + s('send_indication_to_peer'),
      s('peer_to_client_channel_data') + s('peer_to_client_data_indication'),
      p('port1_tx_packets'), p('port0_tx_packets'), s('punt_unknown_flow') + s('punt_no_neighbour'))
PY
)"
  echo "$mode: fast path to peer $to_peer (port 1 tx $p1tx), to client $to_client (port 0 tx $p0tx), punted as not yet known $unknown"
  # uclient sends right after its ChannelBind is answered: the first frames
  # can beat the binding to the data plane's tables (a few ms through the
  # store), or the peer's neighbour entry (the first run of each family
  # learns it from the kernel's ARP/ND), and take the kernel path, which is
  # right (punted as unknown_flow or no_neighbour). The fast path must carry
  # the rest: all but those, and at least 90 %.
  check "$mode: client -> peer on the fast path leaves by port 1 ($to_peer of $((2 * MSGS)), $unknown punted before the flow or the peer's neighbour was known)" \
    test "$to_peer" -ge $((2 * MSGS * 90 / 100)) -a $((to_peer + unknown)) -ge $((2 * MSGS * 99 / 100)) -a "$p1tx" -ge "$to_peer"
  check "$mode: peer -> client on the fast path leaves by port 0 ($to_client)" \
    test "$to_client" -ge $((2 * MSGS * 99 / 100)) -a "$p0tx" -ge "$to_client"
done

# ---- dual-stack allocations: both halves on the fast path -------------------------
DS_N=${E2E_DUAL_MSGS:-200}
DS_SINGLE=0  # 1: an Allocate without ADDITIONAL-ADDRESS-FAMILY (turnpy.py's TURNPY_SINGLE)
dual() {  # name server peer... -> zero loss; sets ds_send ds_di ds_cd ds_pcd (fast-path deltas)
  local name=$1 server=$2 rc b a; shift 2
  b=$(dp_stats /dpturn/stats)
  TURNPY_SINGLE=$DS_SINGLE timeout 60 ip netns exec "$NS_C" "$PY" "$HERE/turnpy.py" dual "$server" alice wonderland-42 "$DS_N" "$@" \
    >"$E2E_TMP/dual-$name.log" 2>&1
  rc=$?
  a=$(dp_stats /dpturn/stats)
  sed "s/^/  $name: /" "$E2E_TMP/dual-$name.log"
  read -r ds_send ds_di ds_cd ds_pcd <<<"$(python3 - "$b" "$a" <<'PY'
import json, sys
b, a = (json.loads(x)['/dpturn/stats'] for x in sys.argv[1:])
d = lambda k: a.get(k, 0) - b.get(k, 0)
print(d('send_indication_to_peer'), d('peer_to_client_data_indication'), d('channel_data_to_peer'),
      d('peer_to_client_channel_data'))
PY
)"
  echo "  $name: fast path: Send $ds_send, Data ind. $ds_di, ChannelData to peer $ds_cd, to client $ds_pcd"
  return $rc
}
fast_both_ways() {  # halves: every direction and message kind >= 99% of DS_N * halves on the fast path
  local want=$(( $1 * DS_N * 99 / 100 ))
  [ "$ds_send" -ge "$want" ] && [ "$ds_di" -ge "$want" ] && [ "$ds_cd" -ge "$want" ] && [ "$ds_pcd" -ge "$want" ]
}
for c in "v4:10.77.1.1:3478" "v6:[fd77:1::1]:3478"; do
  cf=${c%%:*} server=${c#*:}
  check "dual-stack, $cf client: one Allocate gets an IPv4 and an IPv6 relayed address; the IPv6 half relays with zero loss" \
    dual "$cf-peer6" "$server" "[fd77:2::2]:3480"
  check "dual-stack, $cf client: XOR-RELAYED-ADDRESS IPv4 then IPv6" \
    grep -qE '^relays 10\.77\.2\.1:[0-9]+ fd77:2::1:[0-9]+$' "$E2E_TMP/dual-$cf-peer6.log"
  check "dual-stack, $cf client: the IPv6 half on the fast path both ways ($ds_send/$ds_di Send/Data ind., $ds_cd/$ds_pcd ChannelData of $DS_N)" \
    fast_both_ways 1
  check "dual-stack, $cf client: the IPv4 half relays with zero loss" dual "$cf-peer4" "$server" "10.77.2.2:3480"
  check "dual-stack, $cf client: the IPv4 half on the fast path both ways ($ds_send/$ds_di, $ds_cd/$ds_pcd of $DS_N)" \
    fast_both_ways 1
  check "dual-stack, $cf client: both halves of one allocation at once, zero loss" \
    dual "$cf-both" "$server" "10.77.2.2:3480" "[fd77:2::2]:3480"
  check "dual-stack, $cf client: both halves on the fast path ($ds_send/$ds_di, $ds_cd/$ds_pcd of $((2 * DS_N)))" \
    fast_both_ways 2
done
# An IPv6 client's plain Allocate gets an IPv4 relayed address (RFC 8656
# §7.2: IPv4 unless asked otherwise): that allocation is all "other half".
DS_SINGLE=1
check "IPv6 client, one IPv4 relayed address: zero loss" dual v6-single "[fd77:1::1]:3478" "10.77.2.2:3480"
check "IPv6 client, one IPv4 relayed address: on the fast path both ways ($ds_send/$ds_di, $ds_cd/$ds_pcd of $DS_N)" \
  fast_both_ways 1
DS_SINGLE=0
workers=$(dp_stats /dpturn/workers)
echo "$workers" | grep -E 'rx_packets|busy_cycles|idle_sleeps'
for w in $(seq 0 $((WORKERS - 1))); do
  check "worker $w relayed its share of the flows" \
    test "$(json /dpturn/workers "worker${w}_rx_packets" <<<"$workers")" -gt 100
  # idle-sleep-us=100 above: between the runs the workers slept, sharing core 1.
  check "worker $w slept while idle ($(json /dpturn/workers "worker${w}_idle_sleeps" <<<"$workers") times)" \
    test "$(json /dpturn/workers "worker${w}_idle_sleeps" <<<"$workers")" -gt 0
done
check "turn-dataplane still running" kill -0 "$PID_dataplane"
stop_pid "$PID_dataplane" TERM
wait "$PID_dataplane"; rc=$?
check "turn-dataplane stops cleanly on SIGTERM (exit $rc)" test "$rc" = 0
finish
