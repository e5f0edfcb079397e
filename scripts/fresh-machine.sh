#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Brings this machine back to what a fresh one has, as far as dpturn's own
# scripts and tests leave traces: no 2 MiB hugepages reserved (setup.sh then
# reserves its default, as on a new user's first run), no network namespaces
# of ours (dpturn, dpt-*, dpl-*), no DPDK runtime directories that no live
# process holds. scripts/test.sh runs it first under CI=true, so that a green
# CI means a new user's first run is green, whatever earlier runs left.
#
# It ends no process: a namespace some process still runs in is deleted
# (the process keeps running, unreachable), hugepages that a live process
# holds stay reserved, and both are reported.
#
#   scripts/fresh-machine.sh
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/dpdk.sh

log() { printf '[fresh] %s\n' "$*"; }
if [ "$(id -u)" -ne 0 ]; then log "not root: nothing reset"; exit 0; fi

for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
  case $ns in
    dpturn|dpt-*|dpl-*)
      busy=$(ip netns pids "$ns" 2>/dev/null | wc -l)
      note=""; [ "$busy" -gt 0 ] && note=" ($busy process(es) still in it, left running)"
      ip netns del "$ns" 2>/dev/null && log "removed namespace $ns$note" ;;
  esac
done

if [ -d /var/run/dpdk ]; then
  for d in /var/run/dpdk/*; do
    [ -e "$d" ] || continue
    dpdk_prefix_clean "$(basename "$d")"
    [ -e "$d" ] && log "kept $d: a live process holds it" || log "removed $d"
  done
fi

hp=/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
if [ -w "$hp" ]; then
  echo 0 >"$hp" 2>/dev/null || true
  left=$(cat "$hp")
  if [ "$left" = 0 ]; then log "hugepages: 0 reserved (as on a fresh machine)"
  else log "hugepages: $left still reserved (held by running processes)"; fi
fi
exit 0
