#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The whole state store down for 10 s (docs/fleet.md "a store outage costs
# speed, never calls"), turn-dataplane in front of turn-control in network
# namespaces this test creates (tests/e2e/lib.sh), Redis hung (SIGSTOP: every
# command times out, the harder case than a refused connection):
#
#   1. turn-control says it is degraded and queues the calls' events.
#   2. A new coturn turnutils_uclient call and a new relay-only call
#      between two headless Chromiums (tests/browser/cdp_webrtc.py) both
#      connect and relay, on the kernel path (the data plane punts them).
#   3. The store returns: the queue is written, the data plane learns the
#      new flows, and the same calls' packets move to the fast path (the
#      uclient call's ChannelData, the browsers' consent checks as hairpin),
#      with zero loss across the switch.
#   4. Nothing is left inconsistent: turn-control, the store and the data
#      plane's tables agree; the state gauges are back to normal.
#
#   tests/e2e/fleet_outage_e2e.sh BUILD_DIR
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"  # sets BUILD ($1), ROOT, the EXIT trap
. "$HERE/fleet_lib.sh"  # skips (77) without root or turn-dataplane
need_tools redis-server chromium
STORE_NS=$NS_S STORE_IP=127.0.0.1
scli() { ip netns exec "$NS_S" redis-cli -p 6379 "$@"; }
tel() { dp_stat "$1" "$(dp_stats)"; }
metric() { ctl metrics | sed -n "s/^$1 //p"; }

dp_stack_up || exit 1
start_peer peer 10.77.2.2 || exit 1

# ---- 1. the store hangs -------------------------------------------------------------
kill -STOP "$PID_redis"
t0=$(date +%s)
log "redis SIGSTOPped"
for _ in $(seq 1 60); do ctl status | grep -q DEGRADED && break; sleep 0.1; done
degraded() { ctl status | grep -q 'DEGRADED: unreachable'; }
check "turn-control says the state store is degraded" degraded
check "/metrics: dpturn_state_degraded 1" test "$(metric dpturn_state_degraded)" = 1
# The admin's own store reads do not wait on the hung store (each would
# wait out a 2 s timeout): a scrape answers at once.
took=$( { TIMEFORMAT=%R; time ctl metrics >/dev/null 2>&1; } 2>&1 )
check "/metrics answers at once while the store hangs (${took} s)" awk -v t="$took" 'BEGIN { exit !(t < 1.5) }'

# ---- 2. new calls connect on the kernel path --------------------------------------
before=$(dp_stats)
browsers_call outage "$SRV" "$SRV" --ready-file "$E2E_TMP/browsers.ready" --hold-file "$E2E_TMP/browsers.hold" &
browsers=$!
track_pid $browsers
for _ in $(seq 1 400); do [ -f "$E2E_TMP/browsers.ready" ] && break; kill -0 $browsers 2>/dev/null || break; sleep 0.1; done
check "a relay-only Chromium call connects and relays every message while the store is down" test -f "$E2E_TMP/browsers.ready"
# The uclient call once the browsers' is up (their start takes 5-40 s on a
# loaded machine): its 20 s cover the rest of the outage and the 8 s after.
t_uc=$(date +%s)
ip netns exec "$NS_C" timeout 60 turnutils_uclient -e 10.77.2.2 -r 3480 -n 2000 -m 1 -l 170 -z 10 -c \
  -u alice -w wonderland-42 $SRV >"$E2E_TMP/uclient-outage.log" 2>&1 &
uc=$!
# The outage lasts 10 s, and at least 5 s of the uclient call.
while [ $(( $(date +%s) - t0 )) -lt 10 ] || [ $(( $(date +%s) - t_uc )) -lt 5 ]; do sleep 0.2; done
during=$(dp_stats)
punted=$(( $(dp_stat punted "$during") - $(dp_stat punted "$before") ))
fast=$(( $(dp_stat channel_data_to_peer "$during") - $(dp_stat channel_data_to_peer "$before") + $(dp_stat hairpin "$during") - $(dp_stat hairpin "$before") ))
echo "during the outage: $punted frames punted to turn-control, $fast on the fast path; $(metric dpturn_state_queue_depth) event(s) queued"
check "the calls relayed on the kernel path meanwhile ($punted punted, $fast fast)" test "$punted" -gt 50 -a "$fast" = 0
check "their events wait in the queue ($(metric dpturn_state_queue_depth))" test "$(metric dpturn_state_queue_depth)" -gt 0
n_tc=$(tc_ids | grep -c .)

# ---- 3. the store returns: the same calls move to the fast path -----------------
kill -CONT "$PID_redis"
log "redis SIGCONTinued after $(( $(date +%s) - t0 )) s"
for _ in $(seq 1 100); do [ "$(tel allocations)" = "$n_tc" ] && [ "$(metric dpturn_state_degraded)" = 0 ] && break; sleep 0.1; done
check "the data plane learnt the $n_tc allocations made meanwhile" test "$(tel allocations)" = "$n_tc"
back=$(dp_stats)
sleep 8
later=$(dp_stats)
cd_fast=$(( $(dp_stat channel_data_to_peer "$later") - $(dp_stat channel_data_to_peer "$back") ))
hp_fast=$(( $(dp_stat hairpin "$later") - $(dp_stat hairpin "$back") ))
punted=$(( $(dp_stat punted "$later") - $(dp_stat punted "$back") ))
echo "8 s after the store returned: uclient ChannelData on the fast path $cd_fast, browsers' hairpin $hp_fast, punted $punted"
check "the uclient call's packets moved to the fast path ($cd_fast fast, $punted punted)" \
  test "$cd_fast" -ge 100 -a "$punted" -lt $(( cd_fast / 5 ))
check "the browsers' call's packets moved to the fast path (hairpin $hp_fast)" test "$hp_fast" -gt 0
touch "$E2E_TMP/browsers.hold"
wait $browsers; rc=$?
check "the browsers' call ended cleanly (driver exit $rc)" test "$rc" = 0
wait $uc
check "the uclient call lost nothing across the outage and the switch" uclient_result outage

# ---- 4. nothing inconsistent ------------------------------------------------------
sleep 1.2
a=$(tc_ids) b=$(store_ids) c=$(store_hashes)
echo "turn-control [$(echo $a)] store [$(echo $b)] hashes [$(echo $c)] data plane $(tel allocations)"
check "turn-control's allocations == the store's index == its records" \
  bash -c '[ "$1" = "$2" ] && [ "$2" = "$3" ]' _ "$a" "$b" "$c"
check "the data plane's tables hold exactly those" test "$(tel allocations)" = "$(grep -c . <<<"$a")"
check "the state gauges are back to normal (queue $(metric dpturn_state_queue_depth), degraded $(metric dpturn_state_degraded))" \
  test "$(metric dpturn_state_queue_depth)" = 0 -a "$(metric dpturn_state_degraded)" = 0
check "the queue was written, no resync needed (the same Redis: replays $(ctl status | grep -o '[0-9]* resync(s)'))" \
  grep -q "writing the [1-9][0-9]* queued event(s)" "$E2E_TMP/turn-control.log"
check "turn-dataplane still running" kill -0 "$PID_dataplane"
check "turn-control still running" kill -0 "$PID_turn_control"
finish
