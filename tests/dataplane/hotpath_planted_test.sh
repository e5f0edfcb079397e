#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# scripts/check-hotpath.sh finds what it is there to find: in a copy of the
# packet-path files, one violation at a time is planted (a printf in the
# worker's burst and in the burst's decisions (pipeline/burst.h), a throw
# in a table reader, a std::vector in a route reader, an allocation in a
# pipeline stage, a lock in the worker header);
# the check must fail naming that file, and pass again on the clean copy.
# A violation in a set-up section (outside the readers) is not its business.
#
#   tests/dataplane/hotpath_planted_test.sh SOURCE_ROOT
set -uo pipefail
SRC=${1:?source root}
CHECK=$SRC/scripts/check-hotpath.sh
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fails=0
copy() {
  rm -rf "$TMP/tree"
  mkdir -p "$TMP/tree"
  (cd "$SRC" && cp --parents dataplane/pipeline/*.h dataplane/worker.cpp dataplane/worker.h dataplane/tx_drain.h dataplane/idle_sleep.h dataplane/net_types.h \
    dataplane/table/entries.h dataplane/table/tables.h dataplane/table/flow_index.h dataplane/table/routes.h \
    dataplane/stats/counters.h "$TMP/tree/")
}
# plant FILE AFTER_REGEX LINE: insert LINE after the first line matching AFTER_REGEX
plant() {
  local f=$TMP/tree/$1
  grep -qE "$2" "$f" || { echo "FAIL: no line matching '$2' in $1 to plant after"; fails=$((fails + 1)); return 1; }
  awk -v re="$2" -v add="$3" '{ print } !done && $0 ~ re { print add; done = 1 }' "$f" >"$f.new" && mv "$f.new" "$f"
}
expect() {  # rc-wanted file-named description
  local out rc
  out=$(bash "$CHECK" "$TMP/tree" 2>&1); rc=$?
  if [ "$rc" = "$1" ] && { [ -z "$2" ] || grep -qF "$2" <<<"$out"; }; then
    echo "PASS: $3"
  else
    echo "FAIL: $3 (exit $rc, wanted $1${2:+ naming $2})"; echo "$out" | sed 's/^/    /'; fails=$((fails + 1))
  fi
}

copy
expect 0 "" "the clean copy passes"

copy; plant dataplane/worker.cpp '^inline void forward_burst\(' '  std::printf("burst\\n");'
expect 1 "dataplane/worker.cpp" "a printf planted in forward_burst is found"

copy; plant dataplane/pipeline/burst.h '^TURN_DP_STAGE void decide_chunk\(' '  std::printf("decide\\n");'
expect 1 "dataplane/pipeline/burst.h" "a printf planted in the burst's decisions is found"

copy; plant dataplane/worker.cpp '^int worker_main\(' '  usleep(10);'
expect 1 "dataplane/worker.cpp" "a sleep planted in worker_main is found"

# The one allowed line (the idle-sleep-us sleep) allows no other sleep or delay.
copy; plant dataplane/worker.cpp '^int worker_main\(' '  rte_delay_us_sleep(100);'
expect 1 "dataplane/worker.cpp" "an rte_delay_us_sleep planted beside the idle one is found"
copy; plant dataplane/worker.cpp 'forward_burst\(c, wt, k, p, rx, n, now, tx\);' '    rte_delay_us_sleep(c.idle_sleep_us);  // idle-sleep-us: no frame in hand'
expect 1 "dataplane/worker.cpp" "a second copy of the allowed idle line, in the burst, is found"
copy; plant dataplane/pipeline/burst.h '^TURN_DP_STAGE void decide_chunk\(' '  rte_delay_us_block(1);'
expect 1 "dataplane/pipeline/burst.h" "a busy delay planted in the burst's decisions is found"

copy; plant dataplane/table/tables.h '// ---- readers' '  void bad() const { throw 1; }'
expect 1 "dataplane/table/tables.h (readers)" "a throw planted among the table readers is found"

copy; plant dataplane/table/tables.h '^struct WorkerTables' '  std::vector<int> scratch;'
expect 1 "dataplane/table/tables.h (readers)" "a std::vector planted in WorkerTables is found"

copy; plant dataplane/table/routes.h '// ---- readers' '  std::vector<int> cache;'
expect 1 "dataplane/table/routes.h (readers)" "a std::vector planted among the route readers is found"

copy; plant dataplane/table/flow_index.h "// ---- readers' helpers" '  static void bad() { std::printf("scan\\n"); }'
expect 1 "dataplane/table/flow_index.h (readers)" "a printf planted among the index's reader helpers is found"

copy; plant dataplane/table/flow_index.h '// ---- the writer' '  std::vector<int> writer_scratch;'
expect 0 "" "the index's writer section may allocate"

copy; plant dataplane/pipeline/fastpath.h '^#define TURN_DP_STAGE' 'inline int* leak() { return new int(1); }'
expect 1 "dataplane/pipeline/fastpath.h" "an allocation planted in the pipeline is found"

copy; plant dataplane/worker.h '^struct alignas\(64\) WorkerContext' '  std::mutex m;'
expect 1 "dataplane/worker.h" "a mutex planted in the worker's context is found"

copy; plant dataplane/table/tables.h '// ---- allocation writer' '  std::vector<int> writer_scratch;'
expect 0 "" "the writer's sections may allocate (not the packet path)"

copy; rm "$TMP/tree/dataplane/worker.cpp"
expect 1 "dataplane/worker.cpp: missing" "a packet-path file that went missing is an error, not a pass"

echo "hotpath_planted: $fails failed"
[ "$fails" = 0 ]
