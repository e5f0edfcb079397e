#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the libFuzzer targets (tests/fuzz/) with clang, ASan and UBSan in
# build-fuzz/ and runs each for FUZZ_SECONDS seconds on a copy of its
# checked-in seed corpus (the repository is never modified). Prints the
# executions per target; exits non-zero if any target finds a crash, a leak,
# a sanitizer report or a broken invariant. Reproducers are kept under
# build-fuzz/fuzz-findings/<target>/.
#
# Targets: stun_message_fuzz (codec), channel_data_fuzz (ChannelData
# framing), turn_request_fuzz (turn-control's request handlers),
# fastpath_fuzz (the data plane's classifier), tcp_alloc_fuzz (RFC 6062
# TCP allocations over loopback) and dtls_fuzz (DTLS record handling).
# Targets run FUZZ_JOBS at a time; scripts/test.sh runs each for 30 s
# (1.5 min in all on 2 cores); scripts/fuzz-nightly.sh runs them longer
# and keeps the corpus.
#
#   FUZZ_SECONDS=30   seconds per target (default 30)
#   FUZZ_BUILD_DIR    build directory (default <repo>/build-fuzz)
#   FUZZ_TARGETS      space-separated subset (default: all)
#   FUZZ_JOBS         targets run at once (default: nproc)
#   FUZZ_MAX_LEN      largest input in bytes (default 4096; a STUN message
#                     over TCP can reach 65552, try 70000 now and then)
#   FUZZ_CORPUS_ROOT  keep the corpus in FUZZ_CORPUS_ROOT/<target>/ (seeded
#                     from the checked-in corpus the first time, grown by
#                     every run) instead of a temporary copy
#   FUZZ_BUILD_ONLY=1 configure and build the targets, run nothing
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${FUZZ_BUILD_DIR:-$root/build-fuzz}
seconds=${FUZZ_SECONDS:-30}
targets=${FUZZ_TARGETS:-"tcp_alloc_fuzz stun_message_fuzz dtls_fuzz channel_data_fuzz turn_request_fuzz fastpath_fuzz"}
jobs=${FUZZ_JOBS:-$(nproc)}
max_len=${FUZZ_MAX_LEN:-4096}

for v in seconds max_len jobs; do
  if ! [[ ${!v} =~ ^[0-9]+$ ]] || ((${!v} < 1)); then
    echo "fuzz.sh: FUZZ_SECONDS, FUZZ_MAX_LEN and FUZZ_JOBS must be positive integers (FUZZ_${v^^}=${!v})" >&2
    exit 2
  fi
done
for tool in meson ninja clang++; do
  command -v "$tool" >/dev/null || { echo "fuzz.sh: $tool not found" >&2; exit 2; }
done

# hiredis: the targets that link turn-control's library get it as shipped
# (no Redis is used; -Dhiredis=disabled would build them too, over client_none.cpp).
options=(-Dfuzzing=true -Db_sanitize=address,undefined -Db_lundef=false
         -Dtests=disabled -Dbench=disabled -Ddpdk=disabled -Dhiredis=enabled)

# Configure, or reconfigure an existing directory (idempotent).
if [[ -f $build/build.ninja ]]; then
  if ! grep -q 'clang' "$build/compile_commands.json" 2>/dev/null; then
    echo "fuzz.sh: $build was configured with another compiler; remove it or set FUZZ_BUILD_DIR" >&2
    exit 2
  fi
  meson setup --reconfigure "$build" "${options[@]}" >/dev/null
else
  CXX=clang++ CC=clang meson setup "$build" "${options[@]}" >/dev/null
fi

# Build only the fuzz targets.
ninja_targets=()
for t in $targets; do ninja_targets+=("tests/fuzz/$t"); done
ninja -C "$build" "${ninja_targets[@]}"
[[ ${FUZZ_BUILD_ONLY:-0} == 1 ]] && exit 0

work=$(mktemp -d "${TMPDIR:-/tmp}/dpturn-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT

# UBSan only prints by default: make every report a finding. libFuzzer
# already treats ASan reports and leaks as crashes.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:print_stacktrace=1}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}

rm -rf "$build/fuzz-findings"  # findings of an earlier run

# One target for $seconds: its result line goes to $work/<target>.line, its
# exit status to $work/<target>.rc (1: it failed or found something).
run_target() {
  local t=$1 corpus=$work/$1/corpus artifacts=$work/$1/artifacts log=$work/$1.log
  [[ -n ${FUZZ_CORPUS_ROOT:-} ]] && corpus=$FUZZ_CORPUS_ROOT/$t
  mkdir -p "$corpus" "$artifacts"
  cp -n "$root/tests/fuzz/corpus/$t/"* "$corpus/"
  local seeds rc=0 bad=0
  seeds=$(find "$corpus" -type f | wc -l)
  local args=(-max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$artifacts/"
              -max_len="$max_len" -timeout=10 -rss_limit_mb=2048)
  if [[ $t == stun_message_fuzz || $t == turn_request_fuzz ]]; then args+=(-dict="$root/tests/fuzz/stun.dict"); fi

  echo "== $t: ${seconds}s from $seeds seeds"
  "$build/tests/fuzz/$t" "${args[@]}" "$corpus" >"$log" 2>&1 || rc=$?

  local execs rate cov corpus_after findings line
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)
  corpus_after=$(find "$corpus" -type f | wc -l)
  findings=$(find "$artifacts" -type f | wc -l)
  line="$t: ${execs:-?} executions (${rate:-?}/s), ${cov:-cov: ?}, corpus $seeds -> $corpus_after"
  if ((rc != 0 || findings > 0)); then
    bad=1
    local keep=$build/fuzz-findings/$t
    mkdir -p "$keep"
    cp "$artifacts/"* "$keep/" 2>/dev/null || true
    cp "$log" "$keep/fuzz.log"
    line+=", FAILED (exit $rc, $findings reproducer(s) in $keep)"
  fi
  echo "$line" >"$work/$t.line"
  echo "$bad" >"$work/$t.rc"
}

# Targets run $jobs at a time (each is one thread and gets a core), in
# waves, so that tcp_alloc_fuzz and dtls_fuzz (both bind loopback ports
# picked at start) are never in one wave in the default order.
read -r -a queue <<<"$targets"
failed=0
summary=()
for ((i = 0; i < ${#queue[@]}; i += jobs)); do
  wave=("${queue[@]:i:jobs}")
  pids=()
  for t in "${wave[@]}"; do run_target "$t" & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p" || failed=1; done
  for t in "${wave[@]}"; do
    if [[ ! -s $work/$t.line ]]; then
      line="$t: FAILED (the run wrote no result)"
      failed=1
    else
      line=$(<"$work/$t.line")
      [[ $(<"$work/$t.rc") == 0 ]] || { failed=1; tail -n 40 "$work/$t.log"; }
    fi
    echo "$line"
    summary+=("$line")
  done
done

echo
echo "== summary"
printf '%s\n' "${summary[@]}"
exit "$failed"
