#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Faults with turn-dataplane in front of turn-control (issue 7), in network
# namespaces this test creates (tests/e2e/lib.sh, dp_stack_up), with real clients
# (coturn's turnutils_uclient / turnutils_peer) and a held session
# (tests/e2e/turnpy.py) that keeps one allocation across every fault:
#
#   1. turn-control SIGKILLed during relaying and restarted: the uclient flow
#      on the fast path loses nothing; the held session's Refresh,
#      CreatePermission and ChannelBind succeed afterwards; Redis holds the
#      same allocations as turn-control (none leaked, none vanished).
#   2. Redis SIGKILLed during relaying and restarted 3 s later: nothing lost;
#      new allocations work again; Redis records == turn-control's list,
#      no duplicates.
#   3. turn-dataplane SIGKILLed and started again: resync time recorded;
#      every live allocation forwards again at once (kernel path until the
#      data plane has learnt its next hops), and on the fast path again
#      once a client's traffic has made the kernel ARP (per-allocation
#      counters in Redis); new allocations relay with zero loss.
#   4. Allocation expiry: an allocation that is not refreshed stops
#      forwarding at its expiry on the fast path (the peer receives nothing
#      after it); turn-control's kernel path drops it too (counted).
#
#   tests/e2e/faults_dataplane_e2e.sh BUILD_DIR
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"  # sets BUILD ($1), ROOT, the EXIT trap
need_root
need_dataplane
T0=$(date +%s)

dp_stack_up || exit 1
start_peer peer 10.77.2.2 || exit 1
start sink "$NS_P" $PY "$HERE/turnpy.py" sink 10.77.2.2:3490 80 "$E2E_TMP/sink.txt"

# The held session: one allocation with a permission and channel 0x4000 to
# the sink, driven through a FIFO (commands) and a log (answers).
mkfifo "$E2E_TMP/session.in"
ip netns exec "$NS_C" $PY "$HERE/turnpy.py" session $SRV:3478 alice wonderland-42 10.77.2.2:3490 \
  <"$E2E_TMP/session.in" >"$E2E_TMP/session.out" 2>&1 &
SESSION_PID=$!
track_pid $SESSION_PID
exec 7>"$E2E_TMP/session.in"
for _ in $(seq 1 50); do grep -q "^ready" "$E2E_TMP/session.out" && break; sleep 0.1; done
check "held session allocated ($(head -1 "$E2E_TMP/session.out"))" grep -q "^ready" "$E2E_TMP/session.out"
session() {  # command -> prints the answer code ("dead" once the session process is gone)
  local n; n=$(wc -l <"$E2E_TMP/session.out")
  kill -0 "$SESSION_PID" 2>/dev/null || { echo dead; return; }
  tell 7 "$1" || { echo dead; return; }
  for _ in $(seq 1 60); do
    [ "$(wc -l <"$E2E_TMP/session.out")" -gt "$n" ] && break; sleep 0.1
  done
  tail -1 "$E2E_TMP/session.out" | awk '{print $2}'
}
sunk() { [ -f "$E2E_TMP/sink.txt" ] && wc -l <"$E2E_TMP/sink.txt" || echo 0; }

# Allocation ids: turn-control's list (admin API) and Redis's.
tc_ids() { ip netns exec "$NS_S" $PY -c "
import json, urllib.request
r = urllib.request.Request('http://127.0.0.1:8080/api/v1/allocations', headers={'Authorization': 'Bearer $TOKEN'})
print('\n'.join(sorted(a['id'] for a in json.load(urllib.request.urlopen(r, timeout=5))['allocations'])))"; }
redis_ids() { rcli zrange "dpturn:allocs:$E2E_INSTANCE" 0 -1 | sort; }
redis_hashes() { rcli --scan --pattern 'dpturn:alloc:*' | grep -vE ':(perm|chan|traffic)$' | sort; }
same_state() {  # label: turn-control == Redis zset == Redis hashes
  local a b c; a=$(tc_ids); b=$(redis_ids); c=$(redis_hashes | sed 's/^dpturn:alloc://')
  echo "$1: turn-control [$(echo $a)] redis [$(echo $b)] hashes [$(echo $c)]"
  [ -n "$a" ] && [ "$a" = "$b" ] && [ "$b" = "$c" ]
}
sleep 1.2
check "before faults: Redis holds exactly turn-control's allocations" same_state before
session_id=$(redis_ids)

# ---- 1. turn-control SIGKILL + restart during relaying -------------------------------
ip netns exec "$NS_C" timeout 90 turnutils_uclient -e 10.77.2.2 -r 3480 -n 700 -m 2 -l 170 -z 10 -c \
  -u alice -w wonderland-42 $SRV >"$E2E_TMP/uclient-tc-kill.log" 2>&1 &
uc=$!
sleep 3
before=$(dp_stats)
stop_pid "$PID_turn_control" KILL
log "turn-control SIGKILLed"
sleep 2
tc_start || fail "turn-control restarts"
wait $uc
after=$(dp_stats)
check "turn-control SIGKILL mid-run: fast-path flow loses nothing" uclient_result tc-kill
fast=$(( $(dp_stat channel_data_to_peer "$after") - $(dp_stat channel_data_to_peer "$before") ))
echo "fast-path ChannelData to peers while turn-control was down/restarting: $fast"
check "the fast path kept forwarding while turn-control was down ($fast)" test "$fast" -gt 100
check "turn-control restored allocations from Redis" grep -qE "restore: [1-9][0-9]* allocation\(s\) restored" \
  "$E2E_TMP/turn-control.log"
check "held session: Refresh succeeds after the restart" test "$(session refresh)" = 0
check "held session: CreatePermission succeeds after the restart" test "$(session perm)" = 0
check "held session: ChannelBind succeeds after the restart" test "$(session bind)" = 0
n0=$(sunk); session "cdata 20" >/dev/null; session "send 20" >/dev/null; sleep 1
check "held session relays after the restart ($(( $(sunk) - n0 ))/40 at the peer)" test $(( $(sunk) - n0 )) = 40
sleep 1.2
check "after turn-control restart: no allocation leaked or vanished" same_state after-tc-restart
check "the held allocation kept its id ($session_id)" grep -qxF "$session_id" <(redis_ids)

# ---- 2. Redis SIGKILL + restart during relaying ---------------------------------------
ip netns exec "$NS_C" timeout 90 turnutils_uclient -e 10.77.2.2 -r 3480 -n 700 -m 2 -l 170 -z 10 -c \
  -u alice -w wonderland-42 $SRV >"$E2E_TMP/uclient-redis.log" 2>&1 &
uc=$!
sleep 2.5
stop_pid "$PID_redis" KILL
log "redis SIGKILLed"
sleep 3
start_redis "$NS_S" 6379 || fail "redis restarts"
wait $uc
check "Redis killed and restarted mid-run: established flow loses nothing" uclient_result redis
for _ in $(seq 1 40); do same_state redis-back >/dev/null && break; sleep 0.25; done
check "after Redis restart: records rewritten, equal to turn-control's, no duplicates" same_state after-redis
check "new allocations relay again after Redis returns (zero loss)" \
  uclient_run after-redis -n 100 -m 2 -l 170 -z 5 -c
check "held session: Refresh after the Redis restart" test "$(session refresh)" = 0

# ---- 3. turn-dataplane SIGKILL + restart -----------------------------------------------
# Three more held sessions, so that "every live allocation" is four.
fds=(7)
outs=("$E2E_TMP/session.out")
for i in 1 2 3; do
  mkfifo "$E2E_TMP/extra$i.in"
  ip netns exec "$NS_C" $PY "$HERE/turnpy.py" session $SRV:3478 alice wonderland-42 10.77.2.2:3490 \
    <"$E2E_TMP/extra$i.in" >"$E2E_TMP/extra$i.out" 2>&1 &
  track_pid $!
  exec {fd}>"$E2E_TMP/extra$i.in"
  fds+=("$fd"); outs+=("$E2E_TMP/extra$i.out")
done
for _ in $(seq 1 100); do [ "$(grep -l '^ready' "$E2E_TMP"/extra*.out 2>/dev/null | wc -l)" = 3 ] && break; sleep 0.1; done
check "three more held allocations" test "$(grep -l '^ready' "$E2E_TMP"/extra*.out | wc -l)" = 3
ids=()
for o in "${outs[@]}"; do ids+=("dpe2e/$(head -1 "$o" | awk '{print $2}')"); done
sleep 1.2
counters() { for id in "${ids[@]}"; do echo "$(rcli hget "dpturn:alloc:$id:traffic" dp_packets_to_peer)"; done; }
c0=($(counters))

stop_pid "$PID_dataplane" KILL
log "turn-dataplane SIGKILLed"
t_start=$(date +%s%N)
dp_start || fail "turn-dataplane restarts with its TAP"
for _ in $(seq 1 100); do grep -q "snapshot of instance" "$E2E_TMP/dataplane.log" && break; sleep 0.1; done
t_synced=$(date +%s%N)
resync=$(grep -oE "snapshot of instance [^ ]+ from [^ ]+ [0-9]+ allocation\(s\) in [0-9]+ ms" "$E2E_TMP/dataplane.log" | tail -1)
echo "turn-dataplane restart: $resync; process start to synced $(( (t_synced - t_start) / 1000000 )) ms"
check "turn-dataplane resynced from Redis after restart ($resync)" test -n "$resync"
sleep 1
relay_all() {  # -> "<at the peer> <on the fast path>" for 25 ChannelData per held allocation
  local before after n0
  before=$(dp_stats); n0=$(sunk)
  for fd in "${fds[@]}"; do tell "$fd" "cdata 25"; done
  sleep 2
  after=$(dp_stats)
  echo "$(( $(sunk) - n0 )) $(( $(dp_stat channel_data_to_peer "$after") - $(dp_stat channel_data_to_peer "$before") ))"
}
read -r got fast <<<"$(relay_all)"
echo "right after resync: $got/100 at the peer, $fast on the fast path; punts: $(dp_stats | $PY -c "import json,sys; d=json.load(sys.stdin)['/dpturn/stats']; print({k: v for k, v in d.items() if k.startswith('punt_') and v})")"
check "all 4 live allocations forward again right after the data plane restart ($got/100 at the peer)" test "$got" = 100
# The restarted data plane asks for its gateway itself (ARP at start,
# dataplane/pipeline/neighbour_probe.h), so the fast path is back at once.
check "... and on the fast path at once: the gateway was probed at start ($fast/100)" test "$fast" -ge 100
check "new allocations relay after the restart (uclient, zero loss)" \
  uclient_run after-dp-restart -n 100 -m 4 -l 170 -z 5 -c
read -r got fast <<<"$(relay_all)"
check "all 4 live allocations on the fast path again ($got/100 at the peer, $fast on the fast path)" \
  test "$got" = 100 -a "$fast" -ge 100
sleep 1.5
c1=($(counters))
for i in 0 1 2 3; do
  check "allocation ${ids[$i]}: fast-path counter in Redis grew (${c0[$i]:-0} -> ${c1[$i]:-0})" \
    test "${c1[$i]:-0}" -ge $(( ${c0[$i]:-0} + 25 ))
done
for fd in "${fds[@]:1}"; do tell "$fd" quit; done

# ---- 4. allocation expiry on the fast path -----------------------------------------------
# turn-control restarted with a 6 s lifetime (restart keeps the allocations).
stop_pid "$PID_turn_control" TERM
sed -i '/allocate-lifetime/d' "$E2E_TMP/tc.conf"
printf 'default-allocate-lifetime=6\nmax-allocate-lifetime=3600\n' >>"$E2E_TMP/tc.conf"
tc_start || fail "turn-control restarts with a short lifetime"
mkfifo "$E2E_TMP/short.in"
TURNPY_LIFETIME=6 ip netns exec "$NS_C" $PY "$HERE/turnpy.py" session $SRV:3478 alice wonderland-42 \
  10.77.2.2:3490 <"$E2E_TMP/short.in" >"$E2E_TMP/short.out" 2>&1 &
track_pid $!
exec 8>"$E2E_TMP/short.in"
for _ in $(seq 1 50); do grep -q "^ready" "$E2E_TMP/short.out" && break; sleep 0.1; done
t_alloc=$(date +%s)
check "short-lived allocation made ($(head -1 "$E2E_TMP/short.out"))" grep -q "^ready" "$E2E_TMP/short.out"
sleep 1.5
n0=$(sunk); tell 8 "cdata 30"; sleep 1
live=$(( $(sunk) - n0 ))
check "before expiry it forwards ($live/30)" test "$live" = 30
sleep $(( t_alloc + 6 + 2 - $(date +%s) ))  # past the expiry (+2 s)
before=$(dp_stats)
tc_drops_before=$(ctl metrics | awk '/^dpturn_drops_total\{reason="no_allocation",path="slow"/{s+=$2} END{print s+0}')
n0=$(sunk); tell 8 "cdata 30"; tell 8 "send 30"; sleep 1.5
after=$(dp_stats)
dead=$(( $(sunk) - n0 ))
check "after expiry nothing reaches the peer ($dead/60)" test "$dead" = 0
exp=$(( $(dp_stat punt_expired "$after") + $(dp_stat punt_unknown_flow "$after") \
        - $(dp_stat punt_expired "$before") - $(dp_stat punt_unknown_flow "$before") ))
check "the data plane counted the expired flow's packets (expired/unknown: $exp)" test "$exp" -ge 60
sleep 1.2
tc_drops_after=$(ctl metrics | awk '/^dpturn_drops_total\{reason="no_allocation",path="slow"/{s+=$2} END{print s+0}')
check "turn-control's kernel path dropped them as no_allocation ($tc_drops_before -> $tc_drops_after)" \
  test "$tc_drops_after" -ge $(( tc_drops_before + 60 ))
check "expired allocation gone from Redis and turn-control" same_state after-expiry

for p in dataplane turn_control redis; do
  v=PID_$p; check "$p still running (no crash)" kill -0 "${!v}"
done
echo "faults_dataplane_e2e: $(( $(date +%s) - T0 )) s"
tell 7 quit; tell 8 quit
finish
