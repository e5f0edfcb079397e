#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The packet path's rules, checked by grep (STYLE G5): no allocation, locks,
# exceptions, logging or syscalls in the code the workers run:
#   - every file of the packet path, whole: dataplane/pipeline/*.h,
#     dataplane/worker.cpp (the worker loop and burst, nothing else),
#     dataplane/worker.h, dataplane/tx_drain.h, dataplane/idle_sleep.h, dataplane/net_types.h,
#     dataplane/table/entries.h, dataplane/stats/counters.h;
#   - the readers of the tables the workers share: every "// ---- readers"
#     section of dataplane/table/tables.h, table/flow_index.h and
#     table/routes.h (up to the next "// ---- " section or the class's end)
#     and struct WorkerTables.
# One line is allowed, once, in worker.cpp: the idle-sleep-us sleep, which
# the worker takes only after its loop has found no frame for a while and
# holds none (dataplane/idle_sleep.h); any other sleep or delay is found.
# Set-up code (which may throw and allocate) lives in other sections or in
# .cpp files. worker.cpp is also built with -fno-exceptions (dataplane/
# meson.build): the compiler refuses a throw it inlines.
#
#   scripts/check-hotpath.sh [ROOT]   (ROOT: a source tree, default this one)
# Exit 1 naming each violation; tests/dataplane/hotpath_planted_test.sh
# plants violations in a copy and expects them found.
set -uo pipefail
ROOT=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$ROOT" || exit 2
banned='(\bnew\b|\bdelete\b|malloc|calloc|realloc|\bfree\(|std::string\b|std::vector|std::map|std::unordered_map|std::function|std::mutex|lock_guard|unique_lock|\bthrow\b|\btry\b|printf|std::cout|std::cerr|syslog|\bsleep|usleep|_sleep\(|nanosleep|rte_delay_|\bsend\(|\brecv\(|\bwrite\(|\bread\()'
status=0
idle_line='^[0-9]+:\s+rte_delay_us_sleep\(c\.idle_sleep_us\);  // idle-sleep-us: no frame in hand$'
report() {  # what, numbered lines
  local out lines=$2
  if [ "$1" = dataplane/worker.cpp ] && [ "$(grep -cE "$idle_line" <<<"$lines")" = 1 ]; then
    lines=$(grep -vE "$idle_line" <<<"$lines")
  fi
  # Comments are not code: a line's "// ..." is not searched.
  if out=$(sed -E 's#//.*$##' <<<"$lines" | grep -E "^[0-9]+:.*$banned"); then
    echo "$1: banned on the packet path:"; echo "$out"; status=1
  fi
}
whole=(dataplane/pipeline/*.h dataplane/worker.cpp dataplane/worker.h dataplane/tx_drain.h dataplane/idle_sleep.h dataplane/net_types.h dataplane/table/entries.h dataplane/stats/counters.h)
for f in "${whole[@]}"; do
  [ -f "$f" ] || { echo "$f: missing"; status=1; continue; }
  report "$f" "$(grep -n '' "$f")"
done
# The readers' sections of the shared tables.
readers() {  # file: its "// ---- readers" sections and struct WorkerTables, numbered
  awk '/\/\/ ---- readers/ { on = 1; next }
       on && (/\/\/ ---- / || /^};/) { on = 0 }
       /^struct WorkerTables/ { wt = 1 }
       on || wt { printf "%d:%s\n", NR, $0 }
       wt && /^};/ { wt = 0 }' "$1"
}
for f in dataplane/table/tables.h dataplane/table/flow_index.h dataplane/table/routes.h; do
  [ -f "$f" ] || { echo "$f: missing"; status=1; continue; }
  body=$(readers "$f")
  [ -n "$body" ] || { echo "$f: no '// ---- readers' section found"; status=1; continue; }
  report "$f (readers)" "$body"
done
[ $status -eq 0 ] && echo "hot path clean: ${whole[*]}, the readers of table/tables.h, table/flow_index.h and table/routes.h"
exit $status
