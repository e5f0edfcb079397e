#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The whole benchmark suite: runs every part, writes CSVs and PNG plots to
# one results directory, plus machine.txt (CPU, kernel, DPDK, compiler,
# coturn, commit) and commands.txt (every command it ran).
#
#   scripts/bench.sh [--quick | --smoke] [--out DIR] [--only PART[,PART...]]
#
#   (default)  the full suite, tens of minutes: micro-benchmarks (tables up
#              to 4M allocations), data-plane curves (payload, allocations up
#              to 1M, 1 to nproc workers, the four fast paths and IPv6
#              ChannelData) side by side with testpmd, dpturn vs coturn under
#              overload (scripts/bench-overload.sh) and with
#              turnutils_uclient, allocations/s vs coturn
#   --quick    a few minutes: the same parts at the points the headline
#              ratios need
#   --smoke    seconds: every data-plane part once at the smallest size, for
#              the meson test (suite bench) that checks the CSVs are well formed
#   --out DIR  results directory (default bench/results/YYYY-MM-DD-HHMM[-quick])
#   --only     micro,dp,overload,vs,alloc (default: all)
#   env VS_STEPS="M:Z:N ..."  the vs part's uclient steps (bench-vs-coturn.sh --steps)
#
# Ends with the headline ratios, one line each (bench/headline.py): the
# coturn loss step, dpturn's loss at it and at twice it, relayed packets
# per server CPU-second (dpturn / coturn, all-veth and memif peer side),
# 1M / 1k allocations, 2 / 1 workers, IPv6 / IPv4 ChannelData.
#
# Parts that cannot run here (no root for namespaces, no dpdk-testpmd, no
# coturn) are skipped with a line saying why in skipped.txt. Results
# directories are not committed, except the ones bench/RESULTS.md cites.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=/usr/bin/python3
BUILD=${BUILD:-build}
MODE=full
OUT=""
ONLY="micro,dp,overload,vs,alloc"
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) MODE=quick; shift ;;
    --smoke) MODE=smoke; shift ;;
    --out) OUT=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    *) echo "bench.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[ -n "$OUT" ] || OUT="bench/results/$(date -u +%Y-%m-%d-%H%M)$([ $MODE = full ] || echo "-$MODE")"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
: >"$OUT/commands.txt"
: >"$OUT/skipped.txt"
want() { [[ ",$ONLY," == *",$1,"* ]]; }
say() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
run() {  # logs the command, then runs it
  echo "$*" >>"$OUT/commands.txt"
  "$@"
}
skip() { say "skipped: $*"; echo "$*" >>"$OUT/skipped.txt"; }

for b in controlplane/turn-control dataplane/turn-dataplane bench/micro/dp_pipeline_bench; do
  [ -x "$BUILD/$b" ] || { echo "bench.sh: $BUILD/$b is not built (meson setup build && ninja -C build)" >&2; exit 1; }
done

# ---- machine -------------------------------------------------------------
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "mode: $MODE"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (+ uncommitted changes)')"
  echo "kernel: $(uname -r)"
  echo "dpdk: $(dpkg-query -W -f='${Version}' libdpdk-dev 2>/dev/null || pkg-config --modversion libdpdk 2>/dev/null || echo unknown)"
  echo "coturn: $(dpkg-query -W -f='${Version}' coturn 2>/dev/null || echo unknown)"
  echo "compiler: $(c++ --version | head -1)"
  echo "buildtype: $(meson introspect --buildoptions "$BUILD" 2>/dev/null | $PY -c 'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"]=="buildtype"))' 2>/dev/null || echo unknown)"
  echo "hugepages (2 MiB): $(cat /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages 2>/dev/null) total, $(cat /sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages 2>/dev/null) free at start"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "other poll-mode processes at start: $(ps -eo pid,args | grep -E '[t]estpmd|[t]urn-dataplane' | cut -c1-100 | paste -sd';' || true)"
  echo
  lscpu
} >"$OUT/machine.txt"
say "results in $OUT"

# ---- micro-benchmarks ------------------------------------------------------
if want micro; then
  case $MODE in
    full) MT=1; SIZES=1000,100000,1000000,4000000; REPS=(--benchmark_repetitions=3 --benchmark_report_aggregates_only=true) ;;
    quick) MT=0.1; SIZES=1000,1000000; REPS=() ;;  # the headline's 1M / 1k fast-path ratio
    smoke) MT=0.01; SIZES=1000; REPS=() ;;
  esac
  say "micro: pipeline"
  run "$BUILD/bench/micro/dp_pipeline_bench" --benchmark_min_time="$MT" "${REPS[@]}" \
    --benchmark_out="$OUT/dp_pipeline_bench.csv" --benchmark_out_format=csv >"$OUT/dp_pipeline_bench.txt" 2>&1
  if [ -x "$BUILD/bench/micro/dp_table_bench" ] && [ "$(id -u)" = 0 ]; then
    say "micro: tables at $SIZES allocations"
    run "$BUILD/bench/micro/dp_table_bench" --sizes="$SIZES" --benchmark_min_time="$MT" "${REPS[@]}" \
      --benchmark_out="$OUT/dp_table_bench.csv" --benchmark_out_format=csv >"$OUT/dp_table_bench.txt" 2>&1
  else
    skip "dp_table_bench: not built or not root (EAL needs root here)"
  fi
  if [ $MODE = full ] && [ -x "$BUILD/bench/micro/codec_bench" ]; then
    say "micro: codec"
    run "$BUILD/bench/micro/codec_bench" "${REPS[@]}" --benchmark_out="$OUT/codec_bench.csv" \
      --benchmark_out_format=csv >"$OUT/codec_bench.txt" 2>&1
  fi
fi

# ---- data plane vs testpmd -------------------------------------------------
dp_point() {  # csv mode allocations payload workers seconds swap
  say "dp: $2 allocations=$3 payload=$4 workers=$5"
  echo "MODE=$2 WORKERS=$5 SWAP=$7 CSV=$1 scripts/bench-dataplane.sh $3 $4 $6" >>"$OUT/commands.txt"
  if ! MODE=$2 WORKERS=$5 SWAP=$7 CSV=$1 BUILD=$BUILD scripts/bench-dataplane.sh "$3" "$4" "$6" >>"$OUT/dp.log" 2>&1; then
    say "dp point failed (see dp.log)"; echo "dp point $2 $3 $4 $5: failed" >>"$OUT/skipped.txt"
  fi
}
if want dp; then
  if ! command -v dpdk-testpmd >/dev/null || ! command -v redis-server >/dev/null; then
    skip "dp: dpdk-testpmd or redis-server missing (scripts/setup.sh)"
  elif [ "$(id -u)" != 0 ]; then
    skip "dp: DPDK needs root here"
  else
    MAXW=$(nproc)  # as many workers as CPUs: the main lcore shares CPU 0 (bench-dataplane.sh)
    case $MODE in
      full)
        for p in 64 200 500 1000 1200 1400; do dp_point "$OUT/dp_payload.csv" cd 10000 "$p" 1 8 1; done
        for n in 1000 10000 100000 1000000; do dp_point "$OUT/dp_allocs.csv" cd "$n" 200 1 8 1; done
        for w in $(seq 1 "$MAXW"); do dp_point "$OUT/dp_workers.csv" cd 10000 200 "$w" 8 1; done
        for m in cd send peer-cd peer-di cd6; do dp_point "$OUT/dp_paths.csv" "$m" 10000 200 1 8 1; done
        # Profiles of the two target points (perf -e cpu-clock; FILE.txt kept, FILE.data removed: large).
        if command -v perf >/dev/null; then
          for n in 10000 1000000; do
            say "dp: profile, cd allocations=$n"
            echo "PERF=$OUT/perf-cd-$n SWAP=0 CSV=$OUT/dp_profiled.csv scripts/bench-dataplane.sh $n 200 8" >>"$OUT/commands.txt"
            PERF="$OUT/perf-cd-$n" SWAP=0 CSV="$OUT/dp_profiled.csv" BUILD=$BUILD scripts/bench-dataplane.sh "$n" 200 8 >>"$OUT/dp.log" 2>&1 \
              || say "profile point failed (see dp.log)"
            rm -f "$OUT/perf-cd-$n.data"
          done
        else
          skip "dp profiles: perf missing (apt-get install linux-perf)"
        fi ;;
      quick)
        dp_point "$OUT/dp_paths.csv" cd 10000 200 1 2 0
        dp_point "$OUT/dp_paths.csv" cd6 10000 200 1 2 0
        dp_point "$OUT/dp_allocs.csv" cd 1000 200 1 2 0
        dp_point "$OUT/dp_allocs.csv" cd 1000000 200 1 2 0
        dp_point "$OUT/dp_workers.csv" cd 10000 200 1 2 0
        [ "$MAXW" -lt 2 ] || dp_point "$OUT/dp_workers.csv" cd 10000 200 2 2 0 ;;
      smoke)
        dp_point "$OUT/dp_paths.csv" cd 1000 200 1 1 0 ;;
    esac
  fi
fi

# ---- dpturn vs coturn under overload ---------------------------------------
if want overload; then
  if [ "$(id -u)" != 0 ]; then skip "overload: needs root (network namespaces)"
  elif ! command -v turnserver >/dev/null; then skip "overload: coturn missing"
  elif [ ! -x "$BUILD/bench/load/blaster" ]; then skip "overload: $BUILD/bench/load/blaster not built (needs DPDK)"
  elif [ "$(nproc)" -lt 2 ]; then skip "overload: needs 2 CPUs (the server alone on one)"
  elif [ $MODE = smoke ]; then skip "overload: not in --smoke"
  else
    say "overload ($MODE)"
    OV_ARGS=()
    [ $MODE = quick ] && OV_ARGS=(--quick)
    run scripts/bench-overload.sh "${OV_ARGS[@]}" --out "$OUT" >"$OUT/overload.log" 2>&1 \
      || say "overload failed (see overload.log)"
  fi
fi

# ---- dpturn vs coturn with turnutils_uclient ------------------------------
if want vs; then
  if [ "$(id -u)" != 0 ]; then skip "vs: needs root (network namespaces)"
  elif ! command -v turnserver >/dev/null || ! command -v turnutils_uclient >/dev/null; then skip "vs: coturn missing"
  elif [ $MODE = smoke ]; then skip "vs: not in --smoke (uclient runs take tens of seconds)"
  else
    say "vs coturn ($MODE)"
    STEPS_ARG=()
    [ $MODE = quick ] && STEPS_ARG=(--steps "50:1:400")
    [ -n "${VS_STEPS:-}" ] && STEPS_ARG=(--steps "$VS_STEPS")
    run scripts/bench-vs-coturn.sh "${STEPS_ARG[@]}" --csv "$OUT/vs_coturn.csv" >"$OUT/vs_coturn.log" 2>&1 \
      || say "vs coturn failed (see vs_coturn.log)"
  fi
fi

# ---- control plane: allocations/s vs coturn -------------------------------
if want alloc; then
  if ! command -v turnserver >/dev/null || [ ! -x "$BUILD/bench/load/alloc_rate" ]; then
    skip "alloc: coturn or $BUILD/bench/load/alloc_rate missing"
  else
    case $MODE in full) S=10 ;; quick) S=2 ;; smoke) S=1 ;; esac
    say "alloc: ${S}s per server"
    run scripts/bench-alloc.sh "$S" 4 >"$OUT/alloc.log" 2>&1 || say "alloc failed (see alloc.log)"
    $PY - "$OUT/alloc.log" "$OUT/alloc.csv" <<'PY'
import csv, re, sys
text = open(sys.argv[1]).read()
rows = []
for server in ("dpturn", "coturn"):
    m = re.search(rf"^{server}: (.*)$", text, re.M)
    if not m:
        continue
    kv = dict(re.findall(r"(\w+)=([0-9.]+)", m.group(1)))
    rows.append({"server": server, "cycles_per_s": kv.get("rate", ""), "completed": kv.get("cycles", ""),
                 "failed": kv.get("failures", ""), "seconds": kv.get("seconds", "")})
if rows:
    with open(sys.argv[2], "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
PY
  fi
fi

# ---- plots ---------------------------------------------------------------
if $PY -c 'import matplotlib' 2>/dev/null; then
  run $PY bench/plot.py "$OUT" >"$OUT/plots.txt" 2>&1 || say "plotting failed (see plots.txt)"
else
  skip "plots: python3-matplotlib missing (scripts/setup.sh installs it)"
fi
say "done: $(ls "$OUT" | tr '\n' ' ')"
echo "== headline ratios (bench/headline.py $OUT)"
$PY bench/headline.py "$OUT" | tee "$OUT/headline.txt"
