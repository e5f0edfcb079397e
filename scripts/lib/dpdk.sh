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
