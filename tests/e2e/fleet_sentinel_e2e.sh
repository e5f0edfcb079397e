#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A Sentinel failover of the state store mid-call (docs/fleet.md), in
# network namespaces this test creates: turn-dataplane in front of
# turn-control (tests/e2e/lib.sh), both configured with
#   state-redis="sentinel=...:26379,...:26380,...:26381 master=dpturn"
# on a store of Debian's packages (tests/e2e/fleet_lib.sh): a Redis master,
# one replica and three Sentinels, down-after-milliseconds 1000.
#
#   1. coturn's turnutils_uclient relays steadily, with held sessions
#      (tests/e2e/turnpy.py), when the master is SIGKILLed. One held
#      allocation is made while the replication stream to the replica is
#      dropped (repl_cut), so that its records reach the old master only:
#      asynchronous replication loses them, as it can in production, and
#      the test shows they are repaired.
#   2. 0 packets lost on established flows; a new authenticated Allocate
#      succeeds within the failover time + 2 s (measured, printed); the
#      repaired allocation kept forwarding on the fast path throughout.
#   3. Afterwards turn-control's allocations, the new master's records and
#      the data plane's tables agree; new calls take the fast path; the old
#      master, restarted, is a replica and nothing is written to it.
#   4. A second failover (back to the old master) while turn-control is
#      paused: the data plane resyncs first, from a master that lacks a
#      held allocation's records; it keeps forwarding that allocation on
#      the fast path until turn-control, resumed, rewrites its records.
#
#   tests/e2e/fleet_sentinel_e2e.sh BUILD_DIR
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"  # sets BUILD ($1), ROOT, the EXIT trap
. "$HERE/fleet_lib.sh"  # skips (77) without root or turn-dataplane
need_tools redis-server nft

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
tel() { dp_stat "$1" "$(dp_stats)"; }
rnode() { local p=$1; shift; ip netns exec "$NS_S" redis-cli -p "$p" -a "$STORE_PASSWORD" --no-auth-warning "$@"; }

# ---- the stack on a Sentinel-backed store ---------------------------------------
dp_topology_up
store_up "$NS_S" 127.0.0.1 || exit 1
dp_write_conf
tc_write_conf
sed -i "s|^state-redis=.*|state-redis=\"$STORE_SENTINEL\"|" "$E2E_TMP/dp.conf" "$E2E_TMP/tc.conf"
dp_start || { fail "TAP dpt0 created by turn-dataplane"; exit 1; }
tc_start || { fail "turn-control listens"; exit 1; }
check "turn-control found the master through the sentinels" \
  grep -q "state: connected to master 'dpturn' via sentinel(s) .* (master 127.0.0.1:6379)" "$E2E_TMP/turn-control.log"
check "turn-dataplane found the master through the sentinels" \
  grep -q "snapshot of instance $E2E_INSTANCE from 127.0.0.1:6379" "$E2E_TMP/dataplane.log"
start_peer peer 10.77.2.2 || exit 1
start sink "$NS_P" "$PY" "$HERE/turnpy.py" sink 10.77.2.2:3490 120 "$E2E_TMP/sink.txt"
for h in h1 h2; do check "held session $h allocated" held_open $h; done
sleep 1.2
check "before: the store holds turn-control's allocations" test "$(tc_ids)" = "$(store_ids)"

# ---- 1. a write the replica never gets, then the master dies mid-call -----------------
ip netns exec "$NS_C" timeout 60 turnutils_uclient -e 10.77.2.2 -r 3480 -n 1200 -m 2 -l 170 -z 10 -c \
  -u alice -w wonderland-42 $SRV >"$E2E_TMP/uclient-failover.log" 2>&1 &
uc=$!
sleep 2
check "replication to the replica cut" repl_cut "$NS_S" 6379
check "held session h3 allocated while replication is cut" held_open h3
h3_id="$E2E_INSTANCE/$(held_relay h3)"
for _ in $(seq 1 20); do rnode 6379 exists "dpturn:alloc:$h3_id" | grep -q 1 && break; sleep 0.1; done
sleep 0.3
check "h3's records are on the master, not on the replica" \
  test "$(rnode 6379 exists "dpturn:alloc:$h3_id")$(rnode 6380 exists "dpturn:alloc:$h3_id")" = 10
ids0=$(tc_ids)
n_tc=$(echo "$ids0" | wc -l)
for _ in $(seq 1 30); do [ "$(tel allocations)" = "$n_tc" ] && break; sleep 0.1; done
check "the data plane holds h3 too ($(tel allocations) = turn-control's $n_tc)" test "$(tel allocations)" = "$n_tc"
snaps0=$(tel sync_snapshots) dropped0=$(tel sync_snapshot_dropped)
t0=$(now)
stop_pid "$PID_redis_m" KILL
log "store master SIGKILLed"

# The data plane must never hold fewer allocations than turn-control still
# holds of those it had before the kill. Compared with what is still live, not
# with n_tc: the uclient's own allocations end with its run (Refresh 0), which
# on a slow machine falls inside this loop. The data plane is read first, so a
# release between the two reads can only lower what is required.
t_alloc="" t_switch="" t_tc="" t_dp="" dp_short=0 dp_short_at=""
for _ in $(seq 1 150); do
  n=$(tel allocations)
  if [ -n "$n" ]; then
    live=$(tc_ids | grep -cFx -f <(echo "$ids0"))
    [ $((live - n)) -gt "$dp_short" ] && dp_short=$((live - n)) dp_short_at="$n of $live"
  fi
  [ -z "$t_alloc" ] && ip netns exec "$NS_C" timeout 3 "$BUILD/controlplane/turnctl" probe "turn:$SRV:3478" \
    -u alice -p wonderland-42 >"$E2E_TMP/probe.log" 2>&1 && t_alloc=$(now)
  [ -z "$t_switch" ] && [ "$(store_master)" = 6380 ] && t_switch=$(now)
  if [ -z "$t_tc" ]; then
    master=$(ctl status 2>/dev/null | sed -n 's/.*connected, master \([^ ]*\) .*/\1/p')
    [ "$master" = 127.0.0.1:6380 ] && grep -q "rewrote .* to 127.0.0.1:6380" "$E2E_TMP/turn-control.log" && t_tc=$(now)
  fi
  [ -z "$t_dp" ] && [ "$(tel sync_snapshots)" -gt "$snaps0" ] && t_dp=$(now)
  [ -n "$t_alloc" ] && [ -n "$t_switch" ] && [ -n "$t_tc" ] && [ -n "$t_dp" ] && break
  sleep 0.1
done
repl_mend "$NS_S"
echo "failover timeline (seconds after the master's SIGKILL):"
echo "  sentinels named the new master:                 ${t_switch:+$(since "$t0" "$t_switch")}"
echo "  a new authenticated Allocate answered:          ${t_alloc:+$(since "$t0" "$t_alloc")}"
echo "  turn-control rewrote its records on the master: ${t_tc:+$(since "$t0" "$t_tc")}"
echo "  turn-dataplane resynced from the new master:    ${t_dp:+$(since "$t0" "$t_dp")}"
{
  echo "switch=${t_switch:+$(since "$t0" "$t_switch")}"
  echo "allocate=${t_alloc:+$(since "$t0" "$t_alloc")}"
  echo "control=${t_tc:+$(since "$t0" "$t_tc")}"
  echo "dataplane=${t_dp:+$(since "$t0" "$t_dp")}"
} >"$E2E_TMP/failover-times.txt"
check "the sentinels failed over to the replica" test -n "$t_switch"
check "a new Allocate succeeded within the failover time + 2 s" \
  awk -v a="${t_alloc:-999}" -v s="${t_switch:-0}" -v t="$t0" 'BEGIN { exit !(a != 999 && a - t <= s - t + 2) }'
check "turn-control follows the new master and rewrote its records" test -n "$t_tc"
check "turn-dataplane resynced from the new master" test -n "$t_dp"

# ---- 2. nothing lost --------------------------------------------------------------------
wait $uc
check "established uclient flows lose 0 packets across the failover" uclient_result failover
n0=$(sink_count)
for h in h1 h2 h3; do held $h "cdata 20" >/dev/null; done
for _ in $(seq 1 20); do [ $(( $(sink_count) - n0 )) -ge 60 ] && break; sleep 0.1; done
check "every held allocation relays after the failover ($(( $(sink_count) - n0 ))/60 at the peer)" \
  test $(( $(sink_count) - n0 )) = 60
for h in h1 h2 h3; do check "held $h: Refresh after the failover" test "$(held $h refresh)" = 0; done
check "h3's records were repaired on the new master" test "$(scli exists "dpturn:alloc:$h3_id")" = 1
# Whether the data plane's snapshot of the new master comes before turn-control's
# rewrite is a race (h3 is then missing from it and held unconfirmed; section 4
# makes that order certain). Either way the snapshot must drop nothing: it is of
# another master. Counted, so unlike the sampled check below it cannot miss a
# short dip.
check "the data plane's snapshot of the new master dropped nothing ($(( $(tel sync_snapshot_dropped) - dropped0 )) dropped, $(tel sync_kept_unconfirmed) kept so far)" \
  test "$(tel sync_snapshot_dropped)" = "$dropped0"
check "the data plane never held fewer allocations than turn-control's live ones from before the failover (${dp_short_at:-never short})" \
  test "$dp_short" -eq 0

# ---- 3. everything agrees; new calls take the fast path --------------------------------
sleep 1.2
a=$(tc_ids) b=$(store_ids) c=$(store_hashes)
echo "turn-control [$(echo $a)] store [$(echo $b)] hashes [$(echo $c)] data plane $(tel allocations)"
check "turn-control's allocations == the new master's index == its records" \
  bash -c '[ -n "$1" ] && [ "$1" = "$2" ] && [ "$2" = "$3" ]' _ "$a" "$b" "$c"
check "the data plane's tables hold exactly those ($(tel allocations))" test "$(tel allocations)" = "$(wc -l <<<"$a")"
before=$(dp_stats)
check "a new call after the failover: zero loss" uclient_run after -n 200 -m 2 -l 170 -z 5 -c
after=$(dp_stats)
fast=$(( $(dp_stat channel_data_to_peer "$after") - $(dp_stat channel_data_to_peer "$before") ))
check "... on the fast path ($fast of 400 ChannelData to the peer)" test "$fast" -ge 396

# The old master comes back: the sentinels make it a replica; turn-control
# keeps writing to the new master only.
store_node redis-m 6379
for _ in $(seq 1 100); do rnode 6379 role 2>/dev/null | head -1 | grep -q slave && break; sleep 0.2; done
is_replica() { rnode 6379 role | head -1 | grep -qx slave; }
check "the old master, restarted, is now a replica" is_replica
held h1 refresh >/dev/null
writes_to_new_master() { ctl status | grep -q 'connected, master 127.0.0.1:6380'; }
check "turn-control still writes to the new master" writes_to_new_master

# ---- 4. the data plane resyncs before turn-control repairs -------------------------------
for _ in $(seq 1 100); do
  ip netns exec "$NS_S" redis-cli -p 26379 sentinel replicas $STORE_MASTER_NAME 2>/dev/null | tr '\n' ' ' \
    | grep -q 'flags slave .*master-link-status ok' && break
  sleep 0.2
done
check "replication from 6380 to 6379 cut" repl_cut "$NS_S" 6380
check "held session h4 allocated while replication is cut" held_open h4
h4_id="$E2E_INSTANCE/$(held_relay h4)"
n_tc=$(tc_ids | wc -l)
for _ in $(seq 1 30); do [ "$(tel allocations)" = "$n_tc" ] && break; sleep 0.1; done
snaps0=$(tel sync_snapshots) kept0=$(tel sync_kept_unconfirmed)
kill -STOP "$PID_turn_control"
stop_pid "$PID_redis_r" KILL
log "turn-control paused, master 6380 SIGKILLed"
for _ in $(seq 1 150); do [ "$(tel sync_snapshots)" -gt "$snaps0" ] && break; sleep 0.1; done
check "the data plane resynced from 6379 while turn-control is paused" test "$(tel sync_snapshots)" -gt "$snaps0"
check "6379 lacks h4's records (lost with the master)" test "$(rnode 6379 exists "dpturn:alloc:$h4_id")" = 0
check "the data plane keeps h4 unconfirmed ($(tel sync_unconfirmed) held, tables $(tel allocations) of $n_tc)" \
  test "$(tel sync_unconfirmed)" -ge 1 -a "$(tel allocations)" = "$n_tc"
n0=$(sink_count)
held h4 "cdata 20" >/dev/null
for _ in $(seq 1 20); do [ $(( $(sink_count) - n0 )) -ge 20 ] && break; sleep 0.1; done
check "h4 relays on the fast path meanwhile ($(( $(sink_count) - n0 ))/20, turn-control paused)" \
  test $(( $(sink_count) - n0 )) = 20
kill -CONT "$PID_turn_control"
for _ in $(seq 1 100); do
  [ "$(scli exists "dpturn:alloc:$h4_id")" = 1 ] && [ "$(tel sync_unconfirmed)" = 0 ] && break
  sleep 0.1
done
check "turn-control, resumed, rewrote h4's records on 6379" test "$(scli exists "dpturn:alloc:$h4_id")" = 1
check "its resync settled the data plane's unconfirmed flows (0 left)" test "$(tel sync_unconfirmed)" = 0
check "the data plane still holds all $n_tc allocations" test "$(tel allocations)" = "$n_tc"
check "h4 refreshes after both failovers" test "$(held h4 refresh)" = 0
check "turn-dataplane still running" kill -0 "$PID_dataplane"
check "turn-control still running" kill -0 "$PID_turn_control"
finish
