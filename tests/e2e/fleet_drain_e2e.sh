#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Drain, redirect and a rolling upgrade of two relay hosts (docs/fleet.md),
# in network namespaces this test creates (tests/e2e/fleet_lib.sh: hosts a
# and b, each turn-dataplane in front of turn-control, on one bridge; the
# Sentinel-backed store on a management network).
#
#   1. A relay-only call between two headless Chromiums is up on host a.
#      `turnctl drain --until-empty` on a: a new Chromium relay-only call
#      set up against a lands on b (Chromium follows 300 Try Alternate to
#      the ALTERNATE-SERVER that a's membership view names); the call
#      already on a keeps relaying until it hangs up; then drain returns.
#   2. Bad input: drain of an unknown instance, drain of the last serving
#      instance; each a clear error. Then coturn's alternate-server on a:
#      a Chromium call against a lands on b, as it does with coturn.
#   3. A rolling upgrade with coturn turnutils_uclient flows on both hosts
#      throughout: drain a and restart its turn-control, then b's; no new
#      call is refused (coturn's client follows the redirect too), no
#      established flow loses a packet.
#
#   tests/e2e/fleet_drain_e2e.sh BUILD_DIR
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"  # sets BUILD ($1), ROOT, the EXIT trap
. "$HERE/fleet_lib.sh"  # skips (77) without root or turn-dataplane
need_tools redis-server chromium

fleet_two_hosts_up
start peer "$NS_P" turnutils_peer -L 10.77.2.2 -p 3480
wait_port "$NS_P" udp 10.77.2.2:3480 10 || fail "turnutils_peer listens"
hstat() { hdp_stats "$1" | "$PY" -c "import json,sys; print(json.load(sys.stdin)['/dpturn/stats'].get(sys.argv[1], 0))" "$2"; }
browsers() { browsers_call "$@"; }

# ---- 1. drain a with a call on it -------------------------------------------------
browsers held "$SRV_A" "$SRV_A" --ready-file "$E2E_TMP/held.ready" --hold-file "$E2E_TMP/held.hold" &
held=$!
track_pid $held
check "a relay-only Chromium call is up on host a" browsers_ready "$E2E_TMP/held.ready"
sleep 1.2  # a's membership view has b serving
hctl a drain --until-empty --timeout 90 >"$E2E_TMP/drain-a.log" 2>&1 &
drain=$!
hapi() { ip netns exec "$(fleet_ns "$1")" curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:8080$2"; }
for _ in $(seq 1 50); do hapi a /api/v1/drain | grep -q '"draining": true' && break; sleep 0.1; done
check "host a says it drains" grep -q '"draining": true' <<<"$(hapi a /api/v1/drain)"
check "a's /metrics: dpturn_draining 1" grep -qx "dpturn_draining 1" <<<"$(hctl a metrics)"
sleep 1.2
check "the fleet view says a is draining" grep -q "; a draining" <<<"$(hctl b usage --fleet)"
check "a new Chromium relay-only call set up against a lands on b (300 followed)" browsers redirected "$SRV_A" "$SRV_B"
grep -E "ok: .*selected pair|NOT OK" "$E2E_TMP/browsers-redirected.log" | head -2
check "a counted the redirects" grep -qE '^dpturn_redirects_total\{reason="drain"\} [1-9]' <<<"$(hctl a metrics)"
hp0=$(hstat a hairpin)
sleep 6
hp1=$(hstat a hairpin)
check "the call already on a keeps relaying during the drain (fast path hairpin $hp0 -> $hp1)" test "$hp1" -gt "$hp0"
check "drain --until-empty waits while the call is up" kill -0 $drain
touch "$E2E_TMP/held.hold"
wait $held; rc=$?
check "that call ended cleanly when it hung up (driver exit $rc)" test $rc = 0
wait $drain; rc=$?
cat "$E2E_TMP/drain-a.log"
check "turnctl drain --until-empty returned 0 after the last allocation ended" test $rc = 0
check "... and said so" grep -q "instance a: empty after" "$E2E_TMP/drain-a.log"

# ---- 2. bad input -----------------------------------------------------------------
out=$(hctl a drain nope 2>&1); rc=$?
echo "$out"
check "drain of an unknown instance: exit 1, names it and the live ones" \
  bash -c '[ "$1" = 1 ] && grep -q "no live instance .nope. in the fleet (live: " <<<"$2"' _ "$rc" "$out"
out=$(hctl b drain 2>&1); rc=$?
echo "$out"
check "drain of the last serving instance (a drains): refused, says why" \
  bash -c '[ "$1" = 1 ] && grep -q "last serving instance" <<<"$2"' _ "$rc" "$out"
out=$(hctl a drain b 2>&1); rc=$?
check "... also when asked through another instance" bash -c '[ "$1" = 1 ] && grep -q "last serving instance" <<<"$2"' _ "$rc" "$out"
check "undrain a" hctl a undrain

# ---- 2b. coturn's alternate-server: every new Allocate redirected -----------------
restart_tc() {  # host [extra line]: turn-control of the host again, with the line appended or not
  local host=$1 pid ns srv
  eval "pid=\$PID_turn_control_$host"
  ns=$(fleet_ns "$host"); srv=$SRV_A; [ "$host" = b ] && srv=$SRV_B
  stop_pid "$pid" TERM
  sed -i '/^alternate-server=/d' "$E2E_TMP/tc-$host.conf"
  [ -n "${2:-}" ] && echo "$2" >>"$E2E_TMP/tc-$host.conf"
  start "turn-control-$host" "$ns" "$BUILD/controlplane/turn-control" -c "$E2E_TMP/tc-$host.conf"
  wait_port "$ns" udp "$srv:3478" 10
}
check "a restarts with alternate-server=$SRV_B:3478 (coturn's key)" restart_tc a "alternate-server=$SRV_B:3478"
check "a Chromium relay-only call against a lands on b, as with coturn's alternate-server" \
  browsers alternate "$SRV_A" "$SRV_B"
check "a counted the redirects as alternate-server's" \
  grep -qE '^dpturn_redirects_total\{reason="alternate"\} [1-9]' <<<"$(hctl a metrics)"
check "a restarts without it" restart_tc a

# ---- 3. a rolling upgrade under load -----------------------------------------------------
uc_run() {  # name server: a steady uclient flow (bounded)
  ip netns exec "$NS_C" timeout 90 turnutils_uclient -e 10.77.2.2 -r 3480 -n 2500 -m 1 -l 170 -z 10 -c \
    -u alice -w wonderland-42 "$2" >"$E2E_TMP/uclient-$1.log" 2>&1
}
new_call() {  # name server: a short new call; true when every packet came back
  timeout 60 ip netns exec "$NS_C" turnutils_uclient -e 10.77.2.2 -r 3480 -n 20 -m 1 -l 170 -z 10 -c \
    -u alice -w wonderland-42 "$2" >"$E2E_TMP/uclient-$1.log" 2>&1
  uclient_result "$1" >/dev/null
}
sleep 1.2
uc_run roll-a "$SRV_A" & ua=$!
uc_run roll-b "$SRV_B" & ub=$!
sleep 2
refused=0 calls=0
for host in a b; do
  other=b; [ $host = b ] && other=a
  srv=$SRV_A; [ $host = b ] && srv=$SRV_B
  check "drain $host" hctl $host drain
  calls=$((calls + 1)); new_call "new-to-$host-draining" "$srv" || refused=$((refused + 1))
  eval "pid=\$PID_turn_control_$host"
  stop_pid "$pid" TERM
  start "turn-control-$host" "$(fleet_ns $host)" "$BUILD/controlplane/turn-control" -c "$E2E_TMP/tc-$host.conf"
  wait_port "$(fleet_ns $host)" udp "$srv:3478" 10 || fail "turn-control $host restarts"
  # It listens before it has read its allocations back: wait for the line (bounded).
  for _ in $(seq 1 50); do grep -qE "restore: [0-9]+ allocation" "$E2E_TMP/turn-control-$host.log" && break; sleep 0.1; done
  check "turn-control $host restored its allocations" grep -qE "restore: [1-9][0-9]* allocation\(s\) restored" \
    "$E2E_TMP/turn-control-$host.log"
  sleep 1.5
  calls=$((calls + 1)); new_call "new-to-$host-restarted" "$srv" || refused=$((refused + 1))
  calls=$((calls + 1)); new_call "new-to-$other" "$( [ $other = a ] && echo $SRV_A || echo $SRV_B )" || refused=$((refused + 1))
done
check "no new call refused or lossy during the rolling upgrade ($refused of $calls)" test "$refused" = 0
wait $ua; wait $ub
check "the established flow on a lost nothing across the upgrade" uclient_result roll-a
check "the established flow on b lost nothing across the upgrade" uclient_result roll-b
finish
