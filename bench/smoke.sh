#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# meson test (suite bench): the benchmark harness runs end to end at its
# smallest size (scripts/bench.sh --smoke: micro-benchmarks, one data-plane
# point beside testpmd, allocations/s vs coturn, plots) and its results are
# well formed (bench/check_results.py: columns, numbers, the fast path ran,
# PNGs). No timing assertions. SKIP (77) without root or dpdk-testpmd.
#
#   bench/smoke.sh BUILD_DIR
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:?usage: $0 BUILD_DIR}" && pwd)
if [ "$(id -u)" -ne 0 ]; then echo "SKIP: DPDK and the benchmark harness need root here"; exit 77; fi
for t in dpdk-testpmd redis-server; do
  command -v $t >/dev/null || { echo "SKIP: $t missing"; exit 77; }
done
OUT=$(mktemp -d /tmp/dpturn-bench-smoke.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
BUILD=$BUILD "$ROOT/scripts/bench.sh" --smoke --out "$OUT" --only micro,dp || { echo "FAIL: bench.sh --smoke exited $?"; exit 1; }
REQ=(dp_paths.csv dp_pipeline_bench.csv)
[ -x "$BUILD/bench/micro/dp_table_bench" ] && REQ+=(dp_table_bench.csv)
/usr/bin/python3 -c 'import matplotlib' 2>/dev/null && REQ+=(dp_paths.png)
for f in dp.log skipped.txt; do [ -s "$OUT/$f" ] && { echo "--- $f"; tail -n 20 "$OUT/$f"; }; done
/usr/bin/python3 "$ROOT/bench/check_results.py" "$OUT" "${REQ[@]}"
