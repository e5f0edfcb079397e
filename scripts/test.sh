#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The whole test suite: set-up, unit/integration tests in the default build,
# the same tests again under ASan+UBSan, then bounded libFuzzer runs.
# Ends with one summary line: "tests: N passed, M failed".
#
#   scripts/test.sh                 # everything
#   FUZZ_SECONDS=60 scripts/test.sh # longer fuzzing (default 30 s per target)
#   SKIP_ASAN=1 / SKIP_FUZZ=1       # for quick local iterations
#   DPTURN_FRESH=1 scripts/test.sh  # first reset the machine as CI does (scripts/fresh-machine.sh)
set -uo pipefail
cd "$(dirname "$0")/.."

# Each phase says how long it took: CI has a time budget (40 minutes).
phase_start=$SECONDS
phase_done() { echo "=== $1 took $((SECONDS - phase_start)) s"; phase_start=$SECONDS; }

# CI (CI=true) starts from what a fresh machine has: no hugepages, no
# namespaces or DPDK runtime directories left by earlier runs. Then setup
# reserves its default, as it does on a new user's first run.
if [ "${CI:-}" = true ] || [ "${DPTURN_FRESH:-0}" = 1 ]; then scripts/fresh-machine.sh; fi
scripts/setup.sh || { echo "setup failed"; exit 1; }
phase_done "set-up and build"

status=0
dirs=()

# The sanitizer and fuzz builds compile while the default suite runs: its
# end-to-end tests mostly wait on the network, and at nice 19 the compilers
# take only what the tests leave (a busy-polling DPDK worker keeps its core).
# The sanitizer build uses -O1 (ASan's documentation suggests it), which
# compiles faster than -O2, and its test programs -O0 (tests/meson.build:
# they were three quarters of its compile time). The fuzz build starts when
# the sanitizer build is done (it holds $asan_lock until then): the ASan
# suite comes next and needs its build, the fuzz targets run only after it.
# Side by side they shared the leftover CPU and the ASan suite waited ~260 s
# for its build. Each phase's time is printed.
asan_build_pid="" fuzz_build_pid=""
asan_lock=$(mktemp "${TMPDIR:-/tmp}/dpturn-asan-build.XXXXXX")
exec 9>"$asan_lock"
if [ "${SKIP_ASAN:-0}" != 1 ]; then
  flock 9  # held by the build below (it inherits fd 9) until its last compiler exits
  (
    if [ -f build-asan/build.ninja ]; then
      meson setup --reconfigure build-asan >/dev/null
    else
      meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dbench=disabled -Doptimization=1 >/dev/null
    fi && nice -n 19 ninja -C build-asan -j 2
  ) >build-asan.log 2>&1 &
  asan_build_pid=$!
fi
exec 9>&-
if [ "${SKIP_FUZZ:-0}" != 1 ]; then
  (
    flock "$asan_lock" true
    FUZZ_BUILD_ONLY=1 nice -n 19 scripts/fuzz.sh
  ) >build-fuzz.log 2>&1 &
  fuzz_build_pid=$!
fi

run_suite() {  # build dir, extra meson test args...
  local dir=$1; shift
  echo "=== meson test -C $dir $*"
  meson test -C "$dir" --print-errorlogs --num-processes 2 "$@" || status=1
  dirs+=("$dir")
}

run_suite build
phase_done "default suite"

if [ "${SKIP_ASAN:-0}" != 1 ]; then
  echo "=== building build-asan (ASan+UBSan; log: build-asan.log)"
  if wait "$asan_build_pid"; then
    tail -1 build-asan.log
    # The fault and fleet suites (long e2e runs) once, in the default build.
    # Every process runs several times slower under ASan (turn-control
    # --check-config: 0.45 s against 0.07 s on a PVM guest, where
    # coturn_keys's ~110 of them passed 60 s): the tests' timeouts are
    # safety nets sized for the default build, so they stretch here.
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
      run_suite build-asan --no-suite faults --no-suite fleet --timeout-multiplier 4
  else
    tail -40 build-asan.log; echo "build-asan: build failed"; status=1
  fi
  phase_done "ASan build and suite"
fi

fuzz_line=""
if [ "${SKIP_FUZZ:-0}" != 1 ]; then
  echo "=== fuzzing (${FUZZ_SECONDS:-30} s per target; build log: build-fuzz.log)"
  wait "$fuzz_build_pid" || tail -40 build-fuzz.log  # fuzz.sh below says what failed
  if ! FUZZ_SECONDS=${FUZZ_SECONDS:-30} scripts/fuzz.sh; then
    status=1; fuzz_line="fuzz: FAILED"
  else
    fuzz_line="fuzz: no findings"
  fi
  phase_done "fuzzing"
fi
rm -f "$asan_lock"

# Count test results from meson's JSON logs.
read -r passed failed skipped < <(python3 - "${dirs[@]}" <<'PY'
import json, sys
p = f = s = 0
for d in sys.argv[1:]:
    try:
        for line in open(f"{d}/meson-logs/testlog.json", "rb"):
            try:
                r = json.loads(line).get("result")
            except ValueError:  # a damaged log (another meson test wrote it meanwhile): not a pass
                print(f"{d}/meson-logs/testlog.json: an unreadable line counted as a failure", file=sys.stderr)
                f += 1
                continue
            if r in ("OK", "EXPECTEDFAIL"): p += 1
            elif r == "SKIP": s += 1
            else: f += 1
    except FileNotFoundError:
        f += 1
print(p, f, s)
PY
)
[ -n "$fuzz_line" ] && echo "$fuzz_line"
[ "$status" -ne 0 ] && [ "$failed" -eq 0 ] && failed=1
echo "tests: ${passed} passed, ${failed} failed, ${skipped} skipped (${SECONDS} s in all)"
exit $status
