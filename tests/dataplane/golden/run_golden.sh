#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Golden-pcap test of turn-dataplane (suite dpdk):
#
#   1. a private redis-server on a free loopback port, in its own temp dir,
#      loaded through redis-cli with the records of docs/state.md (gen.py
#      writes the commands: allocations A, B, C, E live, D expired; live and
#      expired permissions and channels);
#   2. turn-dataplane on two net_pcap vdevs: port 0 replays in.pcap once and
#      writes what it transmits to out.pcap; port 1 (exception-port=1) writes
#      what it punts to punt.pcap. It takes its Redis snapshot before the
#      workers start, so the state is in place before the first frame;
#   3. after ~3 s, SIGTERM: it must exit 0 (and then flushes the pcaps and
#      writes stats-file);
#   4. out.pcap and punt.pcap must equal gen.py's expected pcaps frame for
#      frame, byte for byte (pcap record timestamps aside); the stats file's
#      path/drop/punt counters and the dp_* traffic counters it added to
#      Redis must be what gen.py expects.
#
# Memory: --no-huge works here with net_pcap and rte_hash (EAL malloc'd
# memory, -m 512), so the test needs no hugepages. EAL refuses --no-huge
# together with --in-memory ("--legacy-mem is not compatible with
# --in-memory"; --no-huge implies legacy memory), so --no-shconf keeps the
# run from creating shared config files instead; the runtime directory
# /var/run/dpdk/<prefix> it may still create is removed at the end. Set
# GOLDEN_EAL_MEM="--in-memory" to run on hugepages (scripts/setup.sh reserves them).
#
#   tests/dataplane/golden/run_golden.sh BUILD_DIR
# Exit: 0 pass, 1 fail, 77 skipped (no scapy / redis-server).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../../../scripts/lib/procs.sh"  # redis_start, stop_procs
BUILD=$(cd "${1:?usage: $0 BUILD_DIR}" && pwd)
BIN="$BUILD/dataplane/turn-dataplane"
RUN_SECONDS=${GOLDEN_RUN_SECONDS:-3}
EAL_MEM=${GOLDEN_EAL_MEM:---no-huge -m 512 --no-shconf}

skip() { echo "SKIP: $*"; exit 77; }
[ -x "$BIN" ] || { echo "FAIL: $BIN not built"; exit 1; }
command -v redis-server >/dev/null || skip "redis-server not installed"
command -v redis-cli >/dev/null || skip "redis-cli not installed"
# scapy may live with the system python only (python3 on PATH can be a pyenv shim).
PY=""
for p in python3 /usr/bin/python3; do
  if command -v "$p" >/dev/null && "$p" -c 'import scapy.all' 2>/dev/null; then PY=$p; break; fi
done
[ -n "$PY" ] || skip "python3 with scapy (python3-scapy) not found"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/dp-golden.XXXXXX")
PREFIX="dpgolden$$"
DP_PID=""
FAILS=0
cleanup() {
  if [ -n "$DP_PID" ] && kill -0 "$DP_PID" 2>/dev/null; then kill -KILL "$DP_PID" 2>/dev/null; wait "$DP_PID" 2>/dev/null; fi
  stop_procs  # redis-server
  rm -rf "/var/run/dpdk/$PREFIX" 2>/dev/null
  if [ "${GOLDEN_KEEP:-0}" = 1 ]; then echo "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }
t0=$(date +%s.%N)

# ---- 1. redis -----------------------------------------------------------------
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
started=0
for _ in 1 2 3; do  # a free port may be taken between the probe and the start
  RPORT=$(free_port)
  if redis_start "" "$RPORT" "$TMP"; then started=1; break; fi
  stop_procs
done
[ "$started" = 1 ] || { echo "FAIL: redis-server did not start"; cat "$TMP/redis.log"; exit 1; }
R() { redis-cli -p "$RPORT" "$@"; }

# ---- frames and state -----------------------------------------------------------
NOW=$(date +%s)
"$PY" "$HERE/gen.py" --out "$TMP" --now "$NOW" --redis-port "$RPORT" --stats-file "$TMP/stats.txt" \
  || { echo "FAIL: gen.py"; exit 1; }
if ! R <"$TMP/state.redis" >"$TMP/redis-load.log" 2>&1 || grep -q '^ERR' "$TMP/redis-load.log"; then
  echo "FAIL: loading the state into redis"; cat "$TMP/redis-load.log"; exit 1
fi
echo "redis on 127.0.0.1:$RPORT: $(R zcard dpturn:allocs:golden) allocation record(s) in dpturn:allocs:golden, $(R zcard dpturn:allocs:other) of another instance"

# ---- 2. turn-dataplane ------------------------------------------------------------
# shellcheck disable=SC2086  # EAL_MEM is a word list
"$BIN" -l 0-1 $EAL_MEM --no-pci --file-prefix="$PREFIX" \
  --vdev="net_pcap0,rx_pcap=$TMP/in.pcap,tx_pcap=$TMP/out.pcap" \
  --vdev="net_pcap1,rx_pcap=$TMP/empty.pcap,tx_pcap=$TMP/punt.pcap" \
  -- -c "$TMP/dp.conf" >"$TMP/dp.log" 2>&1 &
DP_PID=$!
started=0
for _ in $(seq 1 150); do
  grep -q 'exception path port 1' "$TMP/dp.log" && { started=1; break; }
  kill -0 "$DP_PID" 2>/dev/null || break
  sleep 0.1
done
if [ "$started" != 1 ]; then
  echo "FAIL: turn-dataplane did not start"; cat "$TMP/dp.log"; exit 1
fi
grep -qE 'sync: snapshot of instance golden from [^ ]+: 4 allocation\(s\)' "$TMP/dp.log" \
  || fail "snapshot loaded golden's 4 live allocations, not the other instance's (dp.log: $(grep snapshot "$TMP/dp.log"))"
grep -q 'port 0 net_pcap0 (02:70:63:61:70:00)' "$TMP/dp.log" \
  || fail "port 0's MAC is gen.py's PORT_MAC 02:70:63:61:70:00 ($(grep -o 'port 0 [^ ]* ([^)]*)' "$TMP/dp.log"))"

# ---- 3. stop ------------------------------------------------------------------------
sleep "$RUN_SECONDS"
kill -TERM "$DP_PID"
for _ in $(seq 1 100); do kill -0 "$DP_PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$DP_PID" 2>/dev/null; then
  fail "turn-dataplane still running 10 s after SIGTERM"
  kill -KILL "$DP_PID"
fi
wait "$DP_PID"; rc=$?
DP_PID=""
[ "$rc" = 0 ] || fail "turn-dataplane exits 0 on SIGTERM (exit $rc)"
echo "---- turn-dataplane log"; cat "$TMP/dp.log"; echo "----"

# ---- 4. compare -----------------------------------------------------------------------
"$PY" "$HERE/pcapdiff.py" "transmitted (out.pcap)" "$TMP/out.pcap" "$TMP/expected_out.pcap" || fail "transmitted frames"
"$PY" "$HERE/pcapdiff.py" "punted (punt.pcap)" "$TMP/punt.pcap" "$TMP/expected_punt.pcap" || fail "punted frames"

if [ -f "$TMP/stats.txt" ]; then
  while IFS='=' read -r key want; do
    got=$(sed -n "s/^$key=//p" "$TMP/stats.txt")
    [ "$got" = "$want" ] || fail "counter $key = ${got:-missing}, expected $want"
  done <"$TMP/expected_stats.txt"
  # Every drop counter not named in the expectations must be zero.
  while IFS='=' read -r key got; do
    case $key in drop_*) grep -q "^$key=" "$TMP/expected_stats.txt" || [ "$got" = 0 ] || fail "counter $key = $got, expected 0";; esac
  done <"$TMP/stats.txt"
else
  fail "stats file $TMP/stats.txt written on exit"
fi

# The sync thread adds the fast path's per-allocation counters to Redis every second.
while read -r key field want; do
  got=$(R hget "$key" "$field")
  [ "$got" = "$want" ] || fail "redis $key $field = ${got:-missing}, expected $want"
done <"$TMP/expected_traffic.txt"
[ "$(R exists 'dpturn:alloc:golden/192.0.2.10:49400:traffic')" = 0 ] \
  || fail "no traffic counted for C (nothing of it was fast-pathed)"
# Its status (state::DataplaneStatus) under its instance: its own 4 only.
[ "$(R hget dpturn:dataplane:golden allocations)" = 4 ] \
  || fail "dpturn:dataplane:golden allocations = $(R hget dpturn:dataplane:golden allocations), expected 4"

t1=$(date +%s.%N)
secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
if [ "$FAILS" = 0 ]; then
  echo "PASS: golden pcaps and counters match (${secs} s)"
  exit 0
fi
echo "FAILED: $FAILS check(s) (${secs} s); GOLDEN_KEEP=1 keeps the files"
exit 1
