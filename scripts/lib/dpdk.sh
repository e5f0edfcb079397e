#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# EAL memory options chosen once for every script that starts a DPDK
# process (turn-dataplane, dpdk-testpmd): sourced by scripts/ and tests/.
#
#   . scripts/lib/dpdk.sh
#   eal_mem 512            # sets EAL_MEM (array) and EAL_MEM_WHY (a sentence)
#   turn-dataplane -l 0-1 "${EAL_MEM[@]}" --file-prefix=... ...
#
# Hugepages (--in-memory: no files in /dev/hugepages or /var/run/dpdk) when
# the free 2 MiB pages cover NEED_MB with a margin, else 4 KiB pages from
# ordinary memory (--no-huge -m NEED_MB). DPDK 22.11 refuses --no-huge with
# --in-memory ("--legacy-mem is not compatible with --in-memory": --no-huge
# implies legacy memory), so the fallback uses --no-shconf instead: no
# shared config files, and the caller's unique --file-prefix keeps the
# runtime directory (telemetry socket) apart from other processes.
#
# DPTURN_EAL_MEM="..." overrides the choice (e.g. "--no-huge -m 512 --no-shconf"
# to run without hugepages, or "--in-memory" to insist on them).

eal_mem() {  # NEED_MB
  local need=${1:?eal_mem NEED_MB} free
  if [ -n "${DPTURN_EAL_MEM:-}" ]; then
    read -r -a EAL_MEM <<<"$DPTURN_EAL_MEM"
    EAL_MEM_WHY="EAL memory from DPTURN_EAL_MEM: $DPTURN_EAL_MEM"
    return 0
  fi
  free=$(cat /sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages 2>/dev/null || echo 0)
  # Margin: EAL's own heap and the other DPDK process a test may run beside.
  if [ $((free * 2)) -ge $((need + need / 4 + 64)) ]; then
    EAL_MEM=(--in-memory)
    EAL_MEM_WHY="EAL memory: hugepages ($free x 2 MiB free, $need MiB needed)"
  else
    EAL_MEM=(--no-huge -m "$need" --no-shconf)
    EAL_MEM_WHY="EAL memory: --no-huge -m $need ($free x 2 MiB hugepages free, fewer than $need MiB plus margin)"
  fi
}

# hugepages_for NEED_MB: as root, grows the 2 MiB hugepage pool until its
# free pages cover what eal_mem asks of them for NEED_MB, if the machine's
# available memory keeps 2 GiB beyond; remembers the count it found, which
# hugepages_restore (the caller's EXIT trap) puts back. For benchmarks: a
# 1M-allocation replay holds ~3.4 GB of mbufs, beyond the 512 pages that
# scripts/setup.sh reserves, and DPDK 22.11 with --no-huge could not make
# a pool that size here ("Creation of mbuf pool ... Cannot allocate memory").
hugepages_for() {  # NEED_MB
  local need=${1:?hugepages_for NEED_MB} hp=/sys/kernel/mm/hugepages/hugepages-2048kB free total want avail
  [ "$(id -u)" = 0 ] && [ -w "$hp/nr_hugepages" ] || return 0
  free=$(cat "$hp/free_hugepages") total=$(cat "$hp/nr_hugepages")
  want=$(( (need + need / 4 + 64 + 1) / 2 ))  # eal_mem's test, in pages
  [ "$free" -lt "$want" ] || return 0
  avail=$(awk '/^MemAvailable:/ {print int($2 / 1024)}' /proc/meminfo)
  if [ $(( (want - free) * 2 + 2048 )) -gt "$avail" ]; then
    echo "hugepages_for: $need MiB would leave less than 2 GiB of the $avail MiB available: not reserved" >&2
    return 0
  fi
  HUGEPAGES_RESTORE=${HUGEPAGES_RESTORE:-$total}
  echo $(( total + want - free )) >"$hp/nr_hugepages" 2>/dev/null || true
}
hugepages_restore() {
  [ -z "${HUGEPAGES_RESTORE:-}" ] || echo "$HUGEPAGES_RESTORE" >/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages 2>/dev/null || true
}

# dpdk_prefix_clean PREFIX...: removes the runtime directories
# /var/run/dpdk/PREFIX that no live process holds (the EAL lock on the
# config file is what tells), for cleanup after a process was killed.
dpdk_prefix_clean() {
  local p d
  for p in "$@"; do
    [ -n "$p" ] || continue
    d=/var/run/dpdk/$p
    [ -d "$d" ] || continue
    if command -v fuser >/dev/null && fuser -s "$d"/* 2>/dev/null; then continue; fi
    rm -rf "$d"
  done
}
