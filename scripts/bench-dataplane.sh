#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# One point of the data-plane load benchmark, measured side by side in one
# run on the same vdev, lcores and input:
#   - dpdk-testpmd, io forwarding (the ceiling: rx burst -> tx burst);
#   - dpdk-testpmd, 5tswap (swaps MACs, IPs and ports: touches L2-L4 like
#     the fast path, without lookups) unless SWAP=0;
#   - turn-dataplane on the fast path MODE for N allocations.
# Input: net_pcap replaying (infinite_rx) one frame per allocation
# (bench/load/gen_flows.py), one rx_pcap (= rx queue) per worker; output:
# net_pcap without a tx file (frames dropped after tx). Bounded: SECONDS
# of measurement per program. The exception port is a net_null with
# no-rx=1: without it net_null "receives" an endless stream that the worker
# forwards kernel -> wire, halving the measured rate (it did, in the first
# figures of session 2, since replaced in bench/RESULTS.md).
#
#   scripts/bench-dataplane.sh [ALLOCATIONS=10000] [PAYLOAD=200] [SECONDS=8]
#
# Environment:
#   MODE=cd|send|peer-cd|peer-di|cd6  the fast path (gen_flows.py); default cd;
#                 cd6 = ChannelData over IPv6
#   WORKERS=1     worker lcores (lcores 0..WORKERS; lcore 0 is the main /
#                 service lcore); one rx queue each. With as many workers
#                 as CPUs (2 on a 2-CPU machine), the main lcore shares
#                 CPU 0 with worker 1 (--lcores 0@0,1@0,2@1, for testpmd
#                 and turn-dataplane alike): the main lcore sleeps, so each
#                 worker still has a CPU of its own most of the time
#   SWAP=1        also run testpmd 5tswap
#   CSV=FILE      append one row (header first if FILE is new)
#   KEEP=DIR      keep logs, pcaps and configs in DIR
#   EAL_MEM="..." override the memory EAL options (default: --in-memory on
#                 hugepages when enough are free, else --no-huge -m MiB)
#   PERF=FILE     also profile the turn-dataplane process during the
#                 measurement (perf record -e cpu-clock: FILE.data, and the
#                 top symbols in FILE.txt)
#
# Gbit/s = Mpps x input frame bytes (Ethernet header to payload, no FCS or
# preamble) x 8, in total and per worker (per_worker_mpps; busy_fraction =
# the share of the worker loop's TSC time spent on iterations that moved
# packets). heap_MiB = DPDK heap in use by turn-dataplane (telemetry
# /eal/heap_info: tables + mbufs + rings).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000}
SIZE=${2:-200}
SECS=${3:-8}
MODE=${MODE:-cd}
WORKERS=${WORKERS:-1}
SWAP=${SWAP:-1}
PY=/usr/bin/python3
BUILD=${BUILD:-build}
[ -x "$BUILD/dataplane/turn-dataplane" ] || { echo "bench-dataplane: $BUILD/dataplane/turn-dataplane not built" >&2; exit 1; }
command -v dpdk-testpmd >/dev/null || { echo "bench-dataplane: dpdk-testpmd missing (apt-get install dpdk)" >&2; exit 1; }
case $MODE in
  cd|cd6) COUNTER=channel_data_to_peer ;;
  send) COUNTER=send_indication_to_peer ;;
  peer-cd) COUNTER=peer_to_client_channel_data ;;
  peer-di) COUNTER=peer_to_client_data_indication ;;
  *) echo "bench-dataplane: MODE=$MODE is not cd, send, peer-cd, peer-di or cd6" >&2; exit 2 ;;
esac
NCPU=$(nproc)
if [ "$WORKERS" -lt 1 ] || [ "$WORKERS" -gt "$NCPU" ]; then
  echo "bench-dataplane: WORKERS=$WORKERS: this machine has $NCPU CPUs (up to $NCPU workers)" >&2
  exit 2
fi
if [ "$WORKERS" -lt "$NCPU" ]; then
  LCORES=(-l "0-$WORKERS")
else  # the main lcore on CPU 0 with worker 1, worker i on CPU i-1
  map="0@0"
  for w in $(seq 1 "$WORKERS"); do map+=",$w@$((w - 1))"; done
  LCORES=(--lcores "$map")
fi
if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP"; TMP=$(cd "$KEEP" && pwd); else TMP=$(mktemp -d /tmp/dpturn-bench-dp.XXXXXX); fi
ID=$$
. scripts/lib/dpdk.sh   # eal_mem, dpdk_prefix_clean
. scripts/lib/procs.sh  # track_pid, stop_procs, redis_start
cleanup() {
  stop_procs
  [ -n "${KEEP:-}" ] || rm -rf "$TMP"
  dpdk_prefix_clean "bench-dp$ID" "bench-tp$ID"  # --no-huge runs leave their runtime directories
  hugepages_restore
}
trap cleanup EXIT
# A free Redis port (other benchmarks and tests run beside us).
RPORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

$PY bench/load/gen_flows.py "$N" "$SIZE" "$TMP/flows.pcap" "$TMP/state.redis" "$MODE" "$WORKERS"
case $MODE in  # input frame bytes: Ethernet + IPv4 + UDP + TURN framing + payload
  cd) FRAME=$((42 + 4 + SIZE)) ;;
  cd6) FRAME=$((62 + 4 + SIZE)) ;;
  send) FRAME=$((42 + 36 + SIZE + (4 - SIZE % 4) % 4)) ;;
  *) FRAME=$((42 + SIZE)) ;;
esac
redis_start "" "$RPORT" "$TMP" || { echo "bench-dataplane: redis-server did not start" >&2; exit 1; }
redis-cli -p "$RPORT" --pipe <"$TMP/state.redis" >"$TMP/redis-pipe.log"
rm -f "$TMP/state.redis"

# Memory: every replayed frame sits in an mbuf (~2.3 KiB) for the whole run,
# plus the tables (~0.4 KiB per allocation, see dp_table_bench).
MBUFS=$((N + 32768))
NEED_MB=$(( (N + 65536) * 23 / 10000 + N * 4 / 10000 + 512 ))
[ -n "${EAL_MEM:-}" ] && DPTURN_EAL_MEM=$EAL_MEM  # the older name of the override
[ -n "${DPTURN_EAL_MEM:-}" ] || hugepages_for "$NEED_MB"  # given back on exit
eal_mem "$NEED_MB"
MEM=("${EAL_MEM[@]}")
echo "$EAL_MEM_WHY"
VDEV="net_pcap0"
if [ "$WORKERS" = 1 ]; then VDEV+=",rx_pcap=$TMP/flows.pcap"; else
  for q in $(seq 0 $((WORKERS - 1))); do VDEV+=",rx_pcap=$TMP/flows.pcap.$q"; done
fi
VDEV+=",infinite_rx=1"

# testpmd: runs until SIGINT; measured from its per-second Rx-pps lines once
# forwarding has started (the median, the first line being warm-up).
testpmd() {  # forward-mode log
  dpdk-testpmd "${LCORES[@]}" --no-pci "${MEM[@]}" --file-prefix="bench-tp$ID" "--vdev=$VDEV" -- \
    --forward-mode="$1" --port-topology=loop --auto-start --stats-period=1 --nb-cores="$WORKERS" \
    --rxq="$WORKERS" --txq="$WORKERS" --total-num-mbufs=$((N + 65536)) >"$2" 2>&1 &
  local pid=$!
  track_pid $pid
  for _ in $(seq 1 $((600 + N / 1000))); do grep -q 'Rx-pps' "$2" && break; kill -0 $pid 2>/dev/null || break; sleep 0.1; done
  sleep $((SECS + 1))
  kill -INT $pid 2>/dev/null || true
  wait $pid || true
  grep -o 'Rx-pps: *[0-9]*' "$2" | awk '{print $2}' | tail -n +2 | sort -n | awk '{a[NR]=$1} END {print (NR ? a[int((NR+1)/2)] : "")}'
  grep -q 'Rx-pps' "$2" || { echo "bench-dataplane: testpmd $1 printed no rates:" >&2; tail -5 "$2" >&2; }
}
io_pps=$(testpmd io "$TMP/testpmd-io.log")
swap_pps=""
[ "$SWAP" = 1 ] && swap_pps=$(testpmd 5tswap "$TMP/testpmd-5tswap.log")

# turn-dataplane on the same vdev and lcores.
{
  echo "ip=10.78.0.2/24"
  echo "gateway=10.78.0.1"
  echo "neighbour=10.78.0.1,02:00:00:00:00:01"
  echo "state-redis=\"ip=127.0.0.1 port=$RPORT\""
  echo "exception-port=1"
  T=$((N + N / 4 + 64))
  [ "$MODE" != cd6 ] || T=$((4 * T))  # the IPv6 tables are a quarter of these (docs/dataplane.md)
  echo "allocations=$T"
  echo "channels=$T"
  echo "min-port=49152"
  echo "max-port=65535"
  echo "instance-id=bench"
  echo "mbufs=$MBUFS"
  case $MODE in
    peer-*|cd6) while read -r r; do echo "relay-ip=$r"; done <"$TMP/flows.pcap.relays" ;;
  esac
  [ "$MODE" != cd6 ] || printf 'ip6=fd00:78::2/64\ngateway6=fd00:78::1\n'  # the MAC: gen_flows.py's first frame
} >"$TMP/dp.conf"
"$BUILD/dataplane/turn-dataplane" "${LCORES[@]}" --no-pci "${MEM[@]}" --file-prefix="bench-dp$ID" "--vdev=$VDEV" \
  --vdev=net_null0,no-rx=1 -- -c "$TMP/dp.conf" >"$TMP/dp.log" 2>&1 & DP=$!; track_pid $DP
tel() { scripts/dp-telemetry.py --file-prefix "bench-dp$ID" "$@" 2>/dev/null; }
loaded=0
for _ in $(seq 1 $((300 + N / 200))); do
  kill -0 $DP 2>/dev/null || { echo "bench-dataplane: turn-dataplane exited:" >&2; tail -5 "$TMP/dp.log" >&2; exit 1; }
  a=$(tel | $PY -c "import json,sys; print(json.load(sys.stdin)['/dpturn/stats']['allocations'])" 2>/dev/null || echo 0)
  [ "$a" -ge "$N" ] && { loaded=1; break; }
  sleep 0.2
done
[ $loaded = 1 ] || { echo "bench-dataplane: turn-dataplane did not load $N allocations (got ${a:-0})" >&2; tail -5 "$TMP/dp.log" >&2; exit 1; }
sleep 2  # warm-up
s0=$(tel /dpturn/stats /dpturn/workers); t0=$(date +%s.%N)  # one connection: the same instant
if [ -n "${PERF:-}" ]; then
  perf record -q -e cpu-clock -p "$DP" -o "$PERF.data" -- sleep "$SECS" >/dev/null 2>&1 || echo "bench-dataplane: perf record failed" >&2
else
  sleep "$SECS"
fi
s1=$(tel /dpturn/stats /dpturn/workers); t1=$(date +%s.%N)
heap=$(tel /eal/heap_info,0 || echo '{}')
kill -INT $DP; wait $DP || true
if [ -n "${PERF:-}" ] && [ -s "$PERF.data" ]; then
  {
    echo "# samples per thread (worker lcores are rte-worker-N; the rest run on the main lcore's CPU)"
    perf report -i "$PERF.data" --stdio --no-children --sort comm 2>/dev/null | grep -v "^#" | grep -v "^$" | head -8
    echo "# top symbols, whole process"
    perf report -i "$PERF.data" --stdio --no-children --sort dso,symbol 2>/dev/null | grep -v "^#" | grep -v "^$" | sed "s/ *- *- *$//" | head -40
    for w in $(perf report -i "$PERF.data" --stdio --no-children --sort comm 2>/dev/null | grep -o "rte-worker-[0-9]*" | sort -u); do
      echo "# by library, $w"
      perf report -i "$PERF.data" --stdio --no-children --comms "$w" --sort dso 2>/dev/null | grep -v "^#" | grep -v "^$" | head -8
      echo "# top symbols, $w"
      perf report -i "$PERF.data" --stdio --no-children --comms "$w" --sort dso,symbol 2>/dev/null | grep -v "^#" | grep -v "^$" | sed "s/ *- *- *$//" | head -25
    done
  } >"$PERF.txt" || true
fi

$PY - "$io_pps" "$swap_pps" "$s0" "$s1" "$t0" "$t1" "$heap" <<PY
import csv, json, os, sys
io, sw, s0, s1, t0, t1, heap = sys.argv[1:]
def replies(text):  # the telemetry replies, one JSON object each, merged
    out, dec, i = {}, json.JSONDecoder(), 0
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        obj, i = dec.raw_decode(text, i)
        out.update(obj)
    return out
s0, s1 = replies(s0), replies(s1)
w0, w1 = s0.get("/dpturn/workers", {}), s1.get("/dpturn/workers", {})
io = float(io) if io else 0.0
sw = float(sw) if sw else 0.0
s0 = s0["/dpturn/stats"]; s1 = s1["/dpturn/stats"]
dt = float(t1) - float(t0)
d = lambda k: s1.get(k, 0) - s0.get(k, 0)
fwd = d("$COUNTER") / dt
rx = d("rx_packets") / dt
punted = sum(d(k) for k in s1 if k.startswith("punt_"))
drops = sum(d(k) for k in s1 if k.startswith("drop_"))
try:
    h = json.loads(heap)["/eal/heap_info"]
    heap_mib = int(h.get("Alloc_size", 0)) / 2**20
except Exception:
    heap_mib = float("nan")
# Per worker: packets sent and the share of its loop iterations' TSC time
# that moved packets (busy / total cycles).
wd = lambda k: w1.get(k, 0) - w0.get(k, 0)
per_worker = [wd(f"worker{i}_tx_packets") / dt / 1e6 for i in range($WORKERS)]
busy = [wd(f"worker{i}_busy_cycles") / wd(f"worker{i}_total_cycles") if wd(f"worker{i}_total_cycles") else 0.0
        for i in range($WORKERS)]
frame = $FRAME
gbps = lambda pps: pps * frame * 8 / 1e9
row = {
    "mode": "$MODE", "allocations": $N, "payload": $SIZE, "frame_bytes": frame, "workers": $WORKERS,
    "testpmd_io_mpps": round(io / 1e6, 3), "testpmd_5tswap_mpps": round(sw / 1e6, 3) if sw else "",
    "dpturn_mpps": round(fwd / 1e6, 3), "dpturn_rx_mpps": round(rx / 1e6, 3),
    "testpmd_io_gbps": round(gbps(io), 3), "dpturn_gbps": round(gbps(fwd), 3),
    "ratio_io": round(fwd / io, 3) if io else "", "ratio_5tswap": round(fwd / sw, 3) if sw else "",
    "per_worker_mpps": ";".join(f"{x:.3f}" for x in per_worker),
    "busy_fraction": ";".join(f"{x:.2f}" for x in busy),
    "punted": punted, "dropped": drops, "heap_MiB": round(heap_mib, 1), "eal_mem": " ".join("${MEM[*]}".split()),
}
print(f"mode=$MODE allocations=$N payload=${SIZE}B frame={frame}B workers=$WORKERS")
print(f"testpmd io fwd: {io/1e6:.3f} Mpps ({gbps(io):.2f} Gbit/s)")
if sw: print(f"testpmd 5tswap: {sw/1e6:.3f} Mpps")
# Which counters, by name, where any frame was punted or dropped.
why = ", ".join(f"{k} {d(k)}" for k in sorted(s1) if k.startswith(("punt_", "drop_")) and d(k))
print(f"turn-dataplane: {rx/1e6:.3f} Mpps received, {fwd/1e6:.3f} Mpps $COUNTER ({gbps(fwd):.2f} Gbit/s), punted {punted}, dropped {drops}"
      + (f" ({why})" if why else ""))
print("per worker: " + ", ".join(f"worker{i} {x:.3f} Mpps, {gbps(x * 1e6):.2f} Gbit/s (busy {b:.0%})" for i, (x, b) in enumerate(zip(per_worker, busy))))
print(f"ratio turn-dataplane / testpmd io: {fwd/io:.2f}" if io else "testpmd io figure missing")
if sw: print(f"ratio turn-dataplane / testpmd 5tswap: {fwd/sw:.2f}")
print(f"DPDK heap in use (turn-dataplane): {heap_mib:.1f} MiB")
out = os.environ.get("CSV")
if out:
    new = not os.path.exists(out) or os.path.getsize(out) == 0
    with open(out, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(row))
        if new: w.writeheader()
        w.writerow(row)
PY
