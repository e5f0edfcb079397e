#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Sustained state events per second with INSTANCES turn-control instances
# writing to one store (docs/fleet.md capacity plan): a private
# redis-server on loopback, INSTANCES turn-control processes (instance-id
# fleet-N, each its own port range), and build/bench/load/alloc_rate driving
# each (Allocate + CreatePermission + ChannelBind + Refresh(0) per cycle:
# 5 state events: create, perm, chan + its perm, delete). Reads every
# instance's dpturn_state_events_total before and after, redis-server's CPU
# time, and the replication stream to a replica (master_repl_offset).
#
#   scripts/bench-fleet-events.sh [INSTANCES=4] [SECONDS=10] [THREADS=2]
# Bounded by SECONDS. Loopback only. On a 2-vCPU machine the generators,
# the instances and Redis share two CPUs: the figure is what this machine
# sustains end to end, and the script says what the store itself used.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-4}
SECS=${2:-10}
THREADS=${3:-2}
B=${BUILD:-build}
TMP=$(mktemp -d /tmp/dpturn-bench-fleet.XXXXXX)
. scripts/lib/procs.sh  # track_pid, stop_procs, redis_start
cleanup() { stop_procs; rm -rf "$TMP"; }
trap cleanup EXIT
[ -x "$B/bench/load/alloc_rate" ] || { echo "bench-fleet-events.sh: $B/bench/load/alloc_rate is not built" >&2; exit 1; }

RPORT=36400
redis_start "" $RPORT "$TMP" || { echo "bench-fleet-events: redis-server did not start" >&2; exit 1; }
RPID=$REDIS_PID
mkdir -p "$TMP/replica"
redis-server --port $((RPORT + 1)) --bind 127.0.0.1 --save '' --appendonly no --dir "$TMP/replica" \
  --replicaof 127.0.0.1 $RPORT >"$TMP/replica.log" 2>&1 & track_pid $!
for _ in $(seq 1 50); do redis-cli -p $((RPORT + 1)) info replication 2>/dev/null | grep -q 'master_link_status:up' && break; sleep 0.1; done
repl_offset() { redis-cli -p $RPORT info replication | sed -n 's/^master_repl_offset:\([0-9]*\).*/\1/p'; }
TOKEN=bench-fleet-token-0123456789
for i in $(seq 1 "$N"); do
  cat >"$TMP/tc$i.conf" <<CONF
listening-ip=127.0.0.1
relay-ip=127.0.0.1
listening-port=$((36410 + i))
min-port=$((40000 + (i - 1) * 5000))
max-port=$((40000 + i * 5000 - 1))
realm=bench.test
user=bench:bench-password
allow-loopback-peers
request-rate-limit=0
unauth-rate-limit=0
no-tls
state-redis="ip=127.0.0.1 port=$RPORT"
instance-id=fleet-$i
relay-threads=1
admin-ip=127.0.0.1
admin-port=$((36420 + i))
admin-token=$TOKEN
CONF
  "$B/controlplane/turn-control" -c "$TMP/tc$i.conf" >"$TMP/tc$i.log" 2>&1 & track_pid $!
done
sleep 1.5
events() {  # total dpturn_state_events_total over the instances
  local t=0 v
  for i in $(seq 1 "$N"); do
    v=$(curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$((36420 + i))/metrics" | sed -n 's/^dpturn_state_events_total //p')
    t=$((t + ${v:-0}))
  done
  echo $t
}
redis_cpu() { awk '{print $14 + $15}' /proc/$RPID/stat; }  # utime + stime, clock ticks
e0=$(events) c0=$(redis_cpu) o0=$(repl_offset) t0=$(date +%s.%N)
for i in $(seq 1 "$N"); do
  "$B/bench/load/alloc_rate" --server "127.0.0.1:$((36410 + i))" -u bench -p bench-password --threads "$THREADS" \
    --seconds "$SECS" >"$TMP/gen$i.log" 2>&1 &
  GENS+=($!)
done
for g in "${GENS[@]}"; do wait "$g"; done
sleep 1.5  # the writers' last batches
e1=$(events) c1=$(redis_cpu) o1=$(repl_offset) t1=$(date +%s.%N)
hz=$(getconf CLK_TCK)
awk -v e="$((e1 - e0))" -v t0="$t0" -v t1="$t1" -v c="$((c1 - c0))" -v hz="$hz" -v n="$N" -v s="$SECS" -v o="$((o1 - o0))" 'BEGIN {
  secs = t1 - t0
  printf "instances %d, %d s of load: %d state events written, %.0f events/s (over %.1f s incl. the tail); redis-server CPU %.2f s = %.0f%% of one core, %.1f us per event; replication %.0f bytes per event (%.1f MB/s)\n", n, s, e, e / secs, secs, c / hz, 100 * c / hz / secs, e ? 1e6 * c / hz / e : 0, e ? o / e : 0, o / secs / 1e6 }'
for i in $(seq 1 "$N"); do echo "  fleet-$i: $(tail -1 "$TMP/gen$i.log")"; done
echo "  store: $(redis-cli -p $RPORT info memory | sed -n 's/^used_memory_human:\(.*\)\r$/\1/p') used, $(redis-cli -p $RPORT dbsize) keys"
