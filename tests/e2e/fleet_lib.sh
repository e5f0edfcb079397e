#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The fleet's pieces for end-to-end tests, sourced after lib.sh:
#
#   store_up NS IP      a highly available state store from Debian's
#                       packages: Redis master :6379 and replica :6380 on IP,
#                       three Redis Sentinels :26379-26381 (quorum 2,
#                       down-after-milliseconds 1000), in namespace NS;
#                       returns once the sentinels agree and know the replica
#   STORE_SENTINEL      the state-redis value both binaries use for it
#   store_master        the master's port, as the sentinels see it now
#   scli ARGS...        redis-cli on the current master
#   held_open NAME      a held TURN session (tests/e2e/turnpy.py): one
#                       allocation with a permission and channel 0x4000 to
#                       the sink, driven with `held NAME COMMAND`
#   tc_ids / store_ids  allocation ids in turn-control's admin API / the store
#
# Everything stays inside the test's own namespaces.

STORE_NS=""
STORE_IP=""
STORE_SENTINEL=""
STORE_MASTER_NAME=dpturn

store_up() {  # ns ip
  STORE_NS=$1 STORE_IP=$2
  STORE_SENTINEL="sentinel=$STORE_IP:26379,$STORE_IP:26380,$STORE_IP:26381 master=$STORE_MASTER_NAME"
  mkdir -p "$E2E_TMP/redis-m" "$E2E_TMP/redis-r"
  start redis-m "$STORE_NS" redis-server --port 6379 --bind "$STORE_IP" --save '' --appendonly no \
    --dir "$E2E_TMP/redis-m" --protected-mode no
  wait_port "$STORE_NS" tcp "$STORE_IP:6379" 10 || { fail "store: redis master starts"; return 1; }
  start redis-r "$STORE_NS" redis-server --port 6380 --bind "$STORE_IP" --save '' --appendonly no \
    --dir "$E2E_TMP/redis-r" --protected-mode no --replicaof "$STORE_IP" 6379
  for i in 0 1 2; do
    mkdir -p "$E2E_TMP/sentinel$i"
    cat >"$E2E_TMP/sentinel$i/sentinel.conf" <<CONF
port $((26379 + i))
bind $STORE_IP
protected-mode no
dir $E2E_TMP/sentinel$i
sentinel monitor $STORE_MASTER_NAME $STORE_IP 6379 2
sentinel down-after-milliseconds $STORE_MASTER_NAME 1000
sentinel failover-timeout $STORE_MASTER_NAME 3000
sentinel parallel-syncs $STORE_MASTER_NAME 1
CONF
    start "sentinel$i" "$STORE_NS" redis-server "$E2E_TMP/sentinel$i/sentinel.conf" --sentinel
  done
  # Ready when every sentinel knows both others and the replica in sync.
  local ok=0
  for _ in $(seq 1 150); do
    ok=1
    for p in 26379 26380 26381; do
      local sen rep
      sen=$(ip netns exec "$STORE_NS" redis-cli -h "$STORE_IP" -p $p sentinel sentinels $STORE_MASTER_NAME 2>/dev/null | grep -c '^name$')
      rep=$(ip netns exec "$STORE_NS" redis-cli -h "$STORE_IP" -p $p sentinel replicas $STORE_MASTER_NAME 2>/dev/null \
        | tr '\n' ' ' | grep -c 'flags slave .*master-link-status ok')
      [ "$sen" = 2 ] && [ "$rep" = 1 ] || ok=0
    done
    [ $ok = 1 ] && break
    sleep 0.2
  done
  [ $ok = 1 ] || { fail "store: the three sentinels agree and see the replica (30 s)"; return 1; }
  log "store up: master $STORE_IP:6379, replica :6380, sentinels :26379-26381"
}

# repl_cut NS MASTER_PORT: from now on writes reach the master and never
# its replica, as asynchronous replication loses the last writes before a
# failover: the master gets a password its replica does not know (clients
# already connected, turn-control's among them, stay authenticated) and the
# replication link is killed; the replica cannot come back. The master is
# meant to die next.
repl_cut() {
  local ns=$1 mport=$2
  ip netns exec "$ns" redis-cli -p "$mport" config set requirepass "cut-$E2E_ID" | grep -qx OK || return 1
  ip netns exec "$ns" redis-cli -p "$mport" -a "cut-$E2E_ID" --no-auth-warning client kill type replica | grep -qx '[1-9]'
}

store_master() {
  ip netns exec "$STORE_NS" redis-cli -h "$STORE_IP" -p 26379 sentinel get-master-addr-by-name $STORE_MASTER_NAME 2>/dev/null | tail -1
}
scli() { ip netns exec "$STORE_NS" redis-cli -h "$STORE_IP" -p "$(store_master)" "$@"; }

# ---- held sessions (tests/e2e/turnpy.py) ------------------------------------------
# held_open NAME [NS] [SERVER] [PEER]: opens a session; `held NAME CMD` sends
# one command (refresh, perm, bind, "cdata N", "send N", quit) and prints
# its answer code ("dead" once the session process is gone).
held_open() {
  local name=$1 ns=${2:-$NS_C} server=${3:-$SRV:3478} peer=${4:-10.77.2.2:3490}
  mkfifo "$E2E_TMP/held-$name.in"
  ip netns exec "$ns" "$PY" "$ROOT/tests/e2e/turnpy.py" session "$server" alice wonderland-42 "$peer" \
    <"$E2E_TMP/held-$name.in" >"$E2E_TMP/held-$name.out" 2>&1 &
  E2E_PIDS+=($!)
  eval "HELD_PID_${name}=$!"
  local fd
  exec {fd}>"$E2E_TMP/held-$name.in"
  eval "HELD_FD_${name}=$fd"
  for _ in $(seq 1 50); do grep -q "^ready" "$E2E_TMP/held-$name.out" && return 0; sleep 0.1; done
  return 1
}
held_relay() { head -1 "$E2E_TMP/held-$1.out" | awk '{print $2}'; }  # its relayed address
held() {
  local name=$1 pid fd n
  eval "pid=\$HELD_PID_${name} fd=\$HELD_FD_${name}"
  n=$(wc -l <"$E2E_TMP/held-$name.out")
  kill -0 "$pid" 2>/dev/null || { echo dead; return; }
  ( trap '' PIPE; echo "$2" >&"$fd" ) 2>/dev/null || { echo dead; return; }
  for _ in $(seq 1 60); do [ "$(wc -l <"$E2E_TMP/held-$name.out")" -gt "$n" ] && break; sleep 0.1; done
  tail -1 "$E2E_TMP/held-$name.out" | awk '{print $2}'
}
sink_count() { [ -f "$E2E_TMP/sink.txt" ] && wc -l <"$E2E_TMP/sink.txt" || echo 0; }

# ---- state views -------------------------------------------------------------------------
tc_ids() {  # [ns] [admin url]: turn-control's allocation ids, sorted
  ip netns exec "${1:-$NS_S}" "$PY" -c "
import json, sys, urllib.request
r = urllib.request.Request(sys.argv[1] + '/api/v1/allocations', headers={'Authorization': 'Bearer $TOKEN'})
print('\n'.join(sorted(a['id'] for a in json.load(urllib.request.urlopen(r, timeout=5))['allocations'])))" \
    "${2:-http://127.0.0.1:8080}"
}
store_ids() { scli zrange "dpturn:allocs:${1:-$E2E_INSTANCE}" 0 -1 | sort; }  # [instance]
store_hashes() {  # [instance]: ids whose record hash exists
  local inst=${1:-$E2E_INSTANCE}
  scli --scan --pattern "dpturn:alloc:$inst/*" | grep -v ':traffic$' | sed 's/^dpturn:alloc://' | sort
}
# The data plane's allocation count (telemetry) [ns prefix].
dp_allocations() { dp_stats | "$PY" -c "import json,sys; print(json.load(sys.stdin)['/dpturn/stats']['allocations'])"; }
