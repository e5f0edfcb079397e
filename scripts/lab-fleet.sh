#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The fleet story (docs/fleet.md), start to end, in network namespaces this
# script creates and removes (the helpers of tests/e2e/lib.sh and
# tests/e2e/fleet_lib.sh):
#
#   browsers (client ns) --- router: br0 --+-- relay host a: turn-dataplane + turn-control + keepalived,
#                                          |   serving on its floating address 10.77.0.12
#   peers (peer ns) -----------------------+-- relay host b: the same, on 10.77.0.13
#                            store: Redis master + replica + 3 Sentinels on a management network
#
#  1. the store and the two relay hosts come up; keepalived gives each host its address
#  2. a relay-only call between two headless Chromiums through each host
#  3. the fleet's relay usage, from either host, lists both calls
#  4. host a drains for maintenance: a new call set up against a lands on b
#     (300 Try Alternate); a's call goes on until it hangs up; then a is
#     empty (turnctl drain --until-empty) and serves again (undrain)
#  5. host b dies (every process SIGKILLed): a takes its address over
#     (keepalived) and adopts its calls (turnctl adopt, run by
#     dpturn-notify); b's call goes on through a
#  6. the calls end
#
#   scripts/lab.sh --fleet      (or scripts/lab-fleet.sh; root; builds nothing:
#                                run scripts/setup.sh first)
#   DPTURN_BUILD=DIR scripts/lab.sh --fleet
#
# Traffic stays inside its namespaces; every step is bounded; the run takes
# about a minute and a half. Everything it created is removed on any exit.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${DPTURN_BUILD:-$ROOT/build}
die() { echo "lab: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (it creates network namespaces)"
for b in controlplane/turn-control controlplane/turnctl dataplane/turn-dataplane; do
  [ -x "$BUILD/$b" ] || die "no $b in $BUILD (scripts/setup.sh builds it)"
done
for p in redis-server keepalived chromium; do command -v "$p" >/dev/null || die "$p missing (scripts/setup.sh installs it)"; done
CHROMIUM=$(command -v chromium)
. "$ROOT/tests/e2e/lib.sh" "$BUILD"   # namespaces, start/stop by PID, checks, the EXIT trap that removes it all
. "$ROOT/tests/e2e/fleet_lib.sh"
STEP=0
step() { STEP=$((STEP + 1)); printf '\n=== %d. %s\n' "$STEP" "$*"; }
call() {  # name server relay-ip: a held relay-only call between two Chromiums, in the background
  browsers_call "$1" "$2" "$3" --ready-file "$E2E_TMP/$1.ready" --hold-file "$E2E_TMP/$1.hold" &
  track_pid $!  # stopped by the EXIT trap if the story ends early (the driver closes its browsers)
  eval "CALL_$1=$!"
}
call_up() { browsers_ready "$E2E_TMP/$1.ready"; }
hang_up() { local pid; eval "pid=\$CALL_$1"; touch "$E2E_TMP/$1.hold"; wait "$pid"; }
hairpin() { hdp_stats "$1" | "$PY" -c "import json,sys; print(json.load(sys.stdin)['/dpturn/stats'].get('hairpin', 0))"; }

step "The store (Redis + Sentinel) and two relay hosts, each on its floating address"
check "host a holds $VIP_A, host b $VIP_B (keepalived)" fleet_vip_up
hctl a status | sed -n '1,3p'

step "A relay-only WebRTC call through each host"
call on_a "$VIP_A" "$VIP_A"
call on_b "$VIP_B" "$VIP_B"
check "the call through a is up" call_up on_a
check "the call through b is up" call_up on_b

step "The fleet's relay usage, from either host"
sleep 1.2
hctl a usage --fleet | sed -n '1,2p'
check "both hosts' calls listed" grep -qE "; a serving [1-9].*; b serving [1-9]|; b serving [1-9].*; a serving [1-9]" \
  <<<"$(hctl b usage --fleet)"

step "Host a drains for maintenance: new calls go to b, a's call goes on"
hctl a drain --until-empty --timeout 120 >"$E2E_TMP/drain.log" 2>&1 &
drain=$!
sleep 1.5

check "a new call set up against a lands on b" browsers_call redirected "$VIP_A" "$VIP_B"
h0=$(hairpin a); sleep 5; h1=$(hairpin a)
check "a's own call goes on meanwhile (its fast path: hairpin $h0 -> $h1)" test "$h1" -gt "$h0"
hang_up on_a
wait $drain; rc=$?
cat "$E2E_TMP/drain.log"
check "a is empty once its call hung up (turnctl drain --until-empty: exit $rc)" test "$rc" = 0
check "maintenance done: a serves again" hctl a undrain

step "Host b dies: a takes its address over and adopts its calls"
t0=$(date +%s.%N)
host_die b
echo "b's keepalived (with its VRRP child), turn-control and turn-dataplane SIGKILLed at once"
for _ in $(seq 1 200); do grep -q "adopt: instance 'b'" "$E2E_TMP/turn-control-a.log" && break; sleep 0.05; done
grep -h "adopt: instance 'b'" "$E2E_TMP/turn-control-a.log"
check "a adopted b ($(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s after b died)" \
  grep -q "adopt: instance 'b'" "$E2E_TMP/turn-control-a.log"
h0=$(hairpin a); sleep 6; h1=$(hairpin a)
check "b's call goes on through a (a's fast path: hairpin $h0 -> $h1)" test "$h1" -gt "$h0"
hctl a usage | grep -E "relay $VIP_B:" | head -2
check "a's relay usage lists b's call, on b's address" grep -q "relay $VIP_B:" <<<"$(hctl a usage)"

step "The calls end"
hang_up on_b
check "b's call, adopted by a, ended cleanly" test "$?" = 0
if [ "$E2E_FAILS" = 0 ]; then echo; echo "lab: the fleet story ran"; fi
finish
