#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The packet path's rules, checked by grep (STYLE G5): no allocation, locks,
# exceptions, logging or syscalls in dataplane/pipeline/ and in the worker
# loop (dataplane/worker.cpp, worker_main). Exit 1 naming each violation.
set -uo pipefail
cd "$(dirname "$0")/.."
banned='(\bnew\b|\bdelete\b|malloc|calloc|realloc|\bfree\(|std::string|std::vector|std::map|std::unordered_map|std::function|std::mutex|lock_guard|unique_lock|\bthrow\b|printf|std::cout|std::cerr|syslog|\bsleep|usleep|\bsend\(|\brecv\(|\bwrite\(|\bread\()'
status=0
for f in dataplane/pipeline/*.h; do
  if out=$(grep -nE "$banned" "$f" | grep -vE '^\s*[0-9]+:\s*//'); then
    echo "$f: banned on the packet path:"; echo "$out"; status=1
  fi
done
# worker_main: from its opening line to the service loop.
body=$(awk '/^int worker_main\(/{on=1} /^void service_loop\(/{on=0} on' dataplane/worker.cpp)
[ -n "$body" ] || { echo "dataplane/worker.cpp: worker_main not found"; exit 1; }
if out=$(grep -nE "$banned" <<<"$body" | grep -vE '^\s*[0-9]+:\s*//'); then
  echo "dataplane/worker.cpp worker_main: banned on the packet path:"; echo "$out"; status=1
fi
[ $status -eq 0 ] && echo "hot path clean: dataplane/pipeline/*.h, worker_main"
exit $status
