#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Host failover (docs/fleet.md "Host failover"), in network namespaces this
# test creates (tests/e2e/fleet_lib.sh): hosts a and b on one bridge, each
# turn-dataplane in front of turn-control, each instance serving on its own
# floating address (a: 10.77.0.12, b: 10.77.0.13) that keepalived (Debian's,
# VRRP over the data planes' TAPs) holds; the Sentinel-backed store on a
# management network.
#
#   0. a's keepalived stops and starts again while its relay goes on: b
#      takes the address, its adoption is refused (a is alive), it gives
#      the address back and a holds it again.
#   1. Bad input first: adopting an instance that is alive, one whose
#      addresses this host does not hold, an unknown one: each refused
#      with why, nothing taken.
#   2. uclient flows, held sessions and a relay-only call between two
#      headless Chromiums run through host a. All of a's processes are
#      SIGKILLed at once (turn-dataplane, turn-control, keepalived and its
#      VRRP child: no priority-0 advert, b notices the silence).
#   3. b's keepalived takes a's address over (gratuitous ARP through b's
#      data plane); dpturn-notify makes b's turn-control adopt instance a
#      once a's membership record has expired (fencing). The calls go on
#      through b: the gap in received packets is measured (goal <= 3 s),
#      the held sessions refresh and relay, the browsers' call goes on
#      (its consent checks hairpin on b's fast path), b's relay usage
#      lists the adopted calls.
#
#   tests/e2e/fleet_failover_e2e.sh BUILD_DIR
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"  # sets BUILD ($1), ROOT, the EXIT trap
. "$HERE/fleet_lib.sh"  # skips (77) without root or turn-dataplane
need_tools redis-server keepalived chromium

DPTURN_RELEASE_S=6  # how long b gives a's address back (dpturn-notify)
check "keepalived: a holds its address $VIP_A, b its $VIP_B" fleet_vip_up

# ---- 0. a live instance's address comes back to it ------------------------------
# a's keepalived stops (TERM: it hands its address over) while its relay
# goes on, and starts again: b took the address, but b's adoption is refused
# (a is alive), so b gives it back (FAULT through its track file) and a,
# backup for its own address, takes it again; b backs it up again after
# DPTURN_RELEASE_S.
stop_pid "$PID_keepalived_a"
for _ in $(seq 1 50); do holds b "$VIP_A" && break; sleep 0.1; done
check "a's keepalived stopped: b took a's address $VIP_A" holds b "$VIP_A"
keepalived_start a
back_to_a() { holds a "$VIP_A" && ! holds b "$VIP_A"; }
for _ in $(seq 1 150); do back_to_a && break; sleep 0.1; done
check "a live instance gets its address back: a holds $VIP_A again, b does not" back_to_a
check "... b's dpturn-notify gave it back (adoption refused: a is alive)" grep -q "giving instance a's address back" "$E2E_TMP/notify-b.log"
for _ in $(seq 1 150); do grep -q "backing instance a's address up again" "$E2E_TMP/notify-b.log" && break; sleep 0.1; done
check "... and b backs it up again $DPTURN_RELEASE_S s later" grep -q "backing instance a's address up again" "$E2E_TMP/notify-b.log"
sleep 1
check "... a keeps it" back_to_a
start peer "$NS_P" turnutils_peer -L 10.77.2.2 -p 3480
wait_port "$NS_P" udp 10.77.2.2:3480 10 || fail "turnutils_peer listens"
start sink "$NS_P" "$PY" "$HERE/turnpy.py" sink 10.77.2.2:3490 180 "$E2E_TMP/sink.txt"
# A steady stream for measuring the gap: its own session, its own sink.
start sink-gap "$NS_P" "$PY" "$HERE/turnpy.py" sink 10.77.2.2:3491 180 "$E2E_TMP/sink-gap.txt"
hstat() { hdp_stats "$1" | "$PY" -c "import json,sys; print(json.load(sys.stdin)['/dpturn/stats'].get(sys.argv[1], 0))" "$2"; }

# ---- 1. bad input -----------------------------------------------------------------
check "held session a1 through a's address" held_open a1 "$NS_C" "$VIP_A:3478"
sleep 1.2
out=$(hctl b adopt a 2>&1); rc=$?; echo "$out"
check "adopting a live instance: refused (exit $rc), says it is alive" \
  bash -c '[ "$1" = 1 ] && grep -q "is alive" <<<"$2"' _ "$rc" "$out"
# An instance whose records name an address no host here holds.
scli hset "dpturn:alloc:ghost/10.77.0.99:50000" id "ghost/10.77.0.99:50000" instance ghost transport udp \
  client 10.77.1.2:40000 server 10.77.0.99:3478 relay 10.77.0.99:50000 username alice realm dp.e2e \
  expires $(( $(date +%s) + 300 )) >/dev/null
scli zadd dpturn:allocs:ghost $(( $(date +%s) + 300 )) "ghost/10.77.0.99:50000" >/dev/null
out=$(hctl b adopt ghost 2>&1); rc=$?; echo "$out"
check "adopting an instance whose addresses this host does not hold: refused, names the address" \
  bash -c '[ "$1" = 1 ] && grep -q "10.77.0.99 is not on this host" <<<"$2"' _ "$rc" "$out"
check "... and nothing was taken" test "$(scli zcard dpturn:allocs:ghost)" = 1
out=$(hctl b adopt nobody 2>&1); rc=$?; echo "$out"
check "adopting an unknown instance: refused" bash -c '[ "$1" = 1 ] && grep -q "no live allocations" <<<"$2"' _ "$rc" "$out"
out=$(hctl b adopt "bad/name" 2>&1); rc=$?
check "adopting a malformed instance id: refused" test "$rc" = 1

# ---- 2. calls through a ------------------------------------------------------------
check "held session a2 through a's address" held_open a2 "$NS_C" "$VIP_A:3478"
check "held session gap (a steady stream) through a's address" held_open gap "$NS_C" "$VIP_A:3478" 10.77.2.2:3491
browsers_call held "$VIP_A" "$VIP_A" --ready-file "$E2E_TMP/call.ready" --hold-file "$E2E_TMP/call.hold" &
browsers=$!
track_pid $browsers
check "a relay-only Chromium call is up through a" browsers_ready "$E2E_TMP/call.ready"
ip netns exec "$NS_C" timeout 90 turnutils_uclient -e 10.77.2.2 -r 3480 -n 1500 -m 2 -l 170 -z 10 -c \
  -u alice -w wonderland-42 "$VIP_A" >"$E2E_TMP/uclient-failover.log" 2>&1 &
uc=$!
held gap "pace 1500 10" >/dev/null &  # 15 s, one frame every 10 ms
sleep 3
n_a=$(tc_ids "$NS_A" | grep -c .)
echo "host a relays $n_a allocation(s)"

# ---- 3. a dies -----------------------------------------------------------------------
t0=$(date +%s.%N)
host_die a
log "host a's keepalived (with its VRRP child), turn-control and turn-dataplane SIGKILLed at once"
t_vip="" t_adopt=""
for _ in $(seq 1 200); do
  [ -z "$t_vip" ] && holds b "$VIP_A" && t_vip=$(date +%s.%N)
  [ -z "$t_adopt" ] && grep -q "adopt: instance 'a'" "$E2E_TMP/turn-control-b.log" && t_adopt=$(date +%s.%N)
  [ -n "$t_vip" ] && [ -n "$t_adopt" ] && break
  sleep 0.05
done
since() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
echo "failover: b held a's address ${t_vip:+$(since "$t0" "$t_vip") s} after the kill; b adopted instance a ${t_adopt:+$(since "$t0" "$t_adopt") s} after it"
check "b's keepalived took a's address over" test -n "$t_vip"
check "b's turn-control adopted instance a (dpturn-notify)" test -n "$t_adopt"
grep -h "adopt" "$E2E_TMP/turn-control-b.log" "$E2E_TMP/notify-b.log" 2>/dev/null | tail -3
wait $uc
lost=$(sed -n 's/.*Total lost packets \([0-9]*\).*/\1/p' "$E2E_TMP/uclient-failover.log" | tail -1)
recv=$(sed -n 's/.*tot_recv_msgs=\([0-9]*\)$/\1/p' "$E2E_TMP/uclient-failover.log" | tail -1)
echo "uclient across the failover: received ${recv:-?} of 3000, lost ${lost:-?}"
check "the uclient calls continued through b (received ${recv:-0} of 3000)" test "${recv:-0}" -gt 2000
# The gap: the longest silence at the peer in the steady stream (one frame
# each 10 ms, sent before, during and after the failover).
sleep 2
gap=$(awk 'NR > 1 && $1 - prev > max { max = $1 - prev } { prev = $1 } END { printf "%.2f", max }' "$E2E_TMP/sink-gap.txt")
frames=$(wc -l <"$E2E_TMP/sink-gap.txt")
echo "steady stream: $frames of 1500 frames at the peer; the longest gap $gap s (the kill at $(printf %.2f "$t0"))"
echo "gap=$gap vip=$(since "$t0" "${t_vip:-$t0}") adopt=$(since "$t0" "${t_adopt:-$t0}")" >"$E2E_TMP/failover-gap.txt"
check "the stream went on through b after the gap ($frames frames)" test "$frames" -gt 1000
check "the gap in received packets is at most 3 s ($gap s)" awk -v g="$gap" 'BEGIN { exit !(g > 0 && g <= 3.0) }'
n0=$(sink_count)
for h in a1 a2; do check "held $h refreshes through b" test "$(held $h refresh)" = 0; done
for h in a1 a2; do held $h "cdata 20" >/dev/null; done
for _ in $(seq 1 30); do [ $(( $(sink_count) - n0 )) -ge 40 ] && break; sleep 0.1; done
check "held sessions relay through b ($(( $(sink_count) - n0 ))/40)" test $(( $(sink_count) - n0 )) = 40
usage=$(hctl b usage); echo "$usage" | head -3
check "b's relay usage lists the adopted calls (relays on $VIP_A)" grep -q "relay $VIP_A:" <<<"$usage"
moved_to_b() { [ "$(scli zcard dpturn:allocs:a)" = 0 ] && scli zrange dpturn:allocs:b 0 -1 | grep -q "^b/$VIP_A:"; }
check "the store holds them under b, none under a" moved_to_b
for _ in $(seq 1 40); do [ "$(hdp_allocations b)" = "$(tc_ids "$NS_B" | grep -c .)" ] && break; sleep 0.1; done
check "b's data plane holds them ($(hdp_allocations b) = turn-control b's $(tc_ids "$NS_B" | grep -c .))" \
  test "$(hdp_allocations b)" = "$(tc_ids "$NS_B" | grep -c .)"
hp0=$(hstat b hairpin)
sleep 6
hp1=$(hstat b hairpin)
check "the Chromium call goes on through b, on its fast path (hairpin $hp0 -> $hp1)" test "$hp1" -gt "$hp0"
touch "$E2E_TMP/call.hold"
wait $browsers; rc=$?
check "the Chromium call ended cleanly when it hung up (driver exit $rc)" test $rc = 0
check "b's turn-control and turn-dataplane still running" kill -0 "$PID_turn_control_b" "$PID_dataplane_b"
finish
