#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Nightly fuzzing: every libFuzzer target (scripts/fuzz.sh builds them with
# clang + ASan + UBSan in build-fuzz/) for NIGHTLY_SECONDS each, with inputs
# up to 70000 bytes (a STUN message over TCP reaches 65552). The corpus is
# kept between nights in NIGHTLY_DIR/corpus/<target>/ (seeded from
# tests/fuzz/corpus/ the first night); reproducers of any finding are copied
# to NIGHTLY_DIR/crashes/<date>/<target>/ and the run exits non-zero. A
# summary line per target (executions, coverage, corpus growth) is appended
# to NIGHTLY_DIR/history.log.
#
#   scripts/fuzz-nightly.sh                        # 30 min per target
#   NIGHTLY_SECONDS=7200 NIGHTLY_DIR=/srv/fuzz scripts/fuzz-nightly.sh
#   FUZZ_TARGETS=fastpath_fuzz scripts/fuzz-nightly.sh
#
# A finding reproduces with: build-fuzz/tests/fuzz/<target> <reproducer>
# Add the reproducer to tests/fuzz/corpus/<target>/ with the fix, so the
# unit suite replays it from then on.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=${NIGHTLY_DIR:-/var/tmp/dpturn-fuzz}
seconds=${NIGHTLY_SECONDS:-1800}
stamp=$(date +%Y%m%d-%H%M%S)
build=${FUZZ_BUILD_DIR:-$root/build-fuzz}
mkdir -p "$dir/corpus"

rc=0
out=$(FUZZ_SECONDS=$seconds FUZZ_MAX_LEN=${FUZZ_MAX_LEN:-70000} FUZZ_CORPUS_ROOT=$dir/corpus \
      FUZZ_BUILD_DIR=$build "$root/scripts/fuzz.sh" 2>&1) || rc=$?
printf '%s\n' "$out"
printf '%s\n' "$out" | sed -n '/^== summary/,$p' | tail -n +2 | sed "s/^/$stamp /" >>"$dir/history.log"
if [[ -d $build/fuzz-findings ]] && [[ -n $(ls -A "$build/fuzz-findings") ]]; then
  mkdir -p "$dir/crashes/$stamp"
  cp -r "$build/fuzz-findings/"* "$dir/crashes/$stamp/"
  echo "fuzz-nightly: findings saved in $dir/crashes/$stamp"
fi
exit "$rc"
