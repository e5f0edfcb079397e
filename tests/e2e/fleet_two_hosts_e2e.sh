#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Two relay hosts on one Sentinel-backed store (docs/fleet.md), in network
# namespaces this test creates (tests/e2e/fleet_lib.sh): hosts a and b, each
# turn-dataplane in front of turn-control on one bridge, a client side, a
# peer side, the store on a management network.
#
#   1. Calls through each host (coturn's turnutils_uclient, held sessions):
#      zero loss, on each host's fast path.
#   2. Each host holds its own share: each data plane's table count equals
#      its own host's allocations, not the fleet's.
#   3. Fleet-wide views stay fleet-wide: `turnctl usage --fleet` on either
#      host lists both hosts' calls; either turn-control's /metrics has both
#      data planes.
#   4. Killing host a's processes does not disturb host b: b's flows lose
#      nothing, its tables and calls stay; the fleet view says a is gone.
#
#   tests/e2e/fleet_two_hosts_e2e.sh BUILD_DIR
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"  # sets BUILD ($1), ROOT, the EXIT trap
. "$HERE/fleet_lib.sh"  # skips (77) without root or turn-dataplane
need_tools redis-server

fleet_two_hosts_up
start peer "$NS_P" turnutils_peer -L 10.77.2.2 -p 3480
wait_port "$NS_P" udp 10.77.2.2:3480 10 || fail "turnutils_peer listens"
start sink "$NS_P" "$PY" "$HERE/turnpy.py" sink 10.77.2.2:3490 120 "$E2E_TMP/sink.txt"

uclient_to() {  # name server args...: bounded uclient run from the client side through one host
  local name=$1 server=$2; shift 2
  timeout 120 ip netns exec "$NS_C" turnutils_uclient -e 10.77.2.2 -r 3480 -u alice -w wonderland-42 "$@" "$server" \
    >"$E2E_TMP/uclient-$name.log" 2>&1
  uclient_result "$name"
}
fast_to_peer() { hdp_stats "$1" | "$PY" -c "import json,sys; print(json.load(sys.stdin)['/dpturn/stats'].get('channel_data_to_peer', 0))"; }

# ---- 1. calls through each host ---------------------------------------------------
check "held session a1 through host a" held_open a1 "$NS_C" "$SRV_A:3478"
check "held session a2 through host a" held_open a2 "$NS_C" "$SRV_A:3478"
check "held session b1 through host b" held_open b1 "$NS_C" "$SRV_B:3478"
fa0=$(fast_to_peer a) fb0=$(fast_to_peer b)
uclient_to via-a "$SRV_A" -n 200 -m 2 -l 170 -z 5 -c & pa=$!
uclient_to via-b "$SRV_B" -n 200 -m 2 -l 170 -z 5 -c & pb=$!
wait $pa; ra=$?; wait $pb; rb=$?
check "a call through host a: zero loss" test $ra = 0
check "a call through host b: zero loss" test $rb = 0
fa=$(( $(fast_to_peer a) - fa0 )) fb=$(( $(fast_to_peer b) - fb0 ))
check "host a relayed its call on its fast path ($fa of 400)" test "$fa" -ge 396
check "host b relayed its call on its fast path ($fb of 400)" test "$fb" -ge 396

# ---- 2. each host holds its own share --------------------------------------------
sleep 1.2
ids_a=$(tc_ids "$NS_A") ids_b=$(tc_ids "$NS_B")
na=$(grep -c . <<<"$ids_a") nb=$(grep -c . <<<"$ids_b")
echo "host a: $na allocation(s), data plane $(hdp_allocations a); host b: $nb, data plane $(hdp_allocations b)"
check "host a's data plane holds host a's $na allocations only" test "$(hdp_allocations a)" = "$na"
check "host b's data plane holds host b's $nb allocations only" test "$(hdp_allocations b)" = "$nb"
check "the store holds both hosts' allocations under their instances" \
  test "$(store_ids a)" = "$ids_a" -a "$(store_ids b)" = "$ids_b"

# ---- 3. fleet-wide views ---------------------------------------------------------
for h in a b; do
  usage=$(hctl $h usage --fleet)
  echo "$usage" | head -2
  check "turnctl usage --fleet on host $h lists both hosts' $((na + nb)) calls" \
    grep -q "^$((na + nb)) active allocation(s)" <<<"$usage"
  check "... with each host serving" grep -qE "; a serving $na allocation.*; b serving $nb allocation|; b serving $nb allocation.*; a serving $na allocation" <<<"$usage"
  metrics=$(hctl $h metrics)
  check "host $h's /metrics has both data planes" \
    bash -c 'grep -q "^dpturn_dataplane_allocations{dataplane=\"a\"} $1" <<<"$3" && grep -q "^dpturn_dataplane_allocations{dataplane=\"b\"} $2" <<<"$3"' \
    _ "$na" "$nb" "$metrics"
done

# ---- 4. host a dies; host b does not notice ----------------------------------------
ip netns exec "$NS_C" timeout 60 turnutils_uclient -e 10.77.2.2 -r 3480 -n 600 -m 2 -l 170 -z 10 -c \
  -u alice -w wonderland-42 "$SRV_B" >"$E2E_TMP/uclient-b-during.log" 2>&1 &
pb=$!
sleep 2
stop_pid "$PID_turn_control_a" KILL
stop_pid "$PID_dataplane_a" KILL
log "host a's turn-control and turn-dataplane SIGKILLed"
wait $pb
check "host b's call across host a's death: zero loss" uclient_result b-during
n0=$(sink_count)
held b1 "cdata 20" >/dev/null
for _ in $(seq 1 20); do [ $(( $(sink_count) - n0 )) -ge 20 ] && break; sleep 0.1; done
check "host b's held call relays ($(( $(sink_count) - n0 ))/20)" test $(( $(sink_count) - n0 )) = 20
check "host b's held call refreshes" test "$(held b1 refresh)" = 0
nb=$(tc_ids "$NS_B" | grep -c .)
check "host b's data plane still holds its own ($(hdp_allocations b) = turn-control b's $nb)" test "$(hdp_allocations b)" = "$nb"
for _ in $(seq 1 40); do hctl b usage --fleet | grep -q "; a gone" && break; sleep 0.25; done
usage=$(hctl b usage --fleet); echo "$usage" | head -1
check "the fleet view says host a is gone (its membership expired), its calls listed until they expire" \
  grep -qE "; a gone $na allocation" <<<"$usage"
check "host b's turn-control still running" kill -0 "$PID_turn_control_b"
check "host b's turn-dataplane still running" kill -0 "$PID_dataplane_b"
finish
