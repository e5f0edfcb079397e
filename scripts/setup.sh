#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Idempotent set-up for a Debian 12 machine: apt packages, hugepages, build.
# Safe to run again and again; it only does what is missing.
#
#   scripts/setup.sh            # packages + hugepages + build/ (debugoptimized)
#   SKIP_BUILD=1 scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[setup] %s\n' "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# Build and test dependencies, all from Debian 12 (bookworm).
PACKAGES=(
  g++ clang libclang-rt-14-dev meson ninja-build pkg-config
  libdpdk-dev dpdk dpdk-dev libssl-dev openssl libhiredis-dev libgtest-dev libbenchmark-dev
  libcpp-httplib-dev nlohmann-json3-dev
  redis-server redis-tools redis-sentinel keepalived coturn iproute2 ethtool procps psmisc python3 python3-scapy curl
  python3-matplotlib time
  # tests/e2e/fleet_sentinel_e2e.sh: cuts a replication link (nft)
  nftables
  # scripts/check-format.sh (the format_check test)
  clang-format
  # scripts/bench.sh: profiles of the data-plane target points
  linux-perf
  # tests/browser (headless Chromium, driven over its DevTools pipe) and
  # deploy/systemd (systemd-analyze verify)
  chromium systemd python3-websocket python3-prometheus-client
)

missing=()
for p in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -qq
  as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian starts redis-server, redis-sentinel, keepalived and coturn as
  # services on install; dpturn's scripts and tests start their own
  # instances, so leave the system ones stopped.
  for svc in redis-server redis-sentinel keepalived coturn; do
    if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then
      as_root systemctl stop "$svc" || true
    fi
  done
else
  log "packages: all present"
fi

# Hugepages for DPDK (2 MiB pages). The relay and the benchmarks use them;
# every script that starts DPDK falls back to --no-huge when too few are
# free (scripts/lib/dpdk.sh), so the tests pass with these 512 and with none.
# A container may refuse: say so, go on.
HUGEPAGES=${DPTURN_HUGEPAGES:-512}
hp=/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
if [ -w "$hp" ] || [ "$(id -u)" -ne 0 ]; then
  have=$(cat "$hp" 2>/dev/null || echo 0)
  if [ "$have" -lt "$HUGEPAGES" ]; then
    if echo "$HUGEPAGES" | as_root tee "$hp" >/dev/null 2>&1; then
      log "hugepages: $(cat "$hp") x 2 MiB"
    else
      log "hugepages: could not reserve $HUGEPAGES (have $have); DPDK will run with --no-huge"
    fi
  else
    log "hugepages: $have x 2 MiB"
  fi
fi
if ! mountpoint -q /dev/hugepages 2>/dev/null; then
  as_root mkdir -p /dev/hugepages
  as_root mount -t hugetlbfs nodev /dev/hugepages 2>/dev/null || log "hugetlbfs: not mounted (ok for --no-huge)"
fi

[ "${SKIP_BUILD:-0}" = 1 ] && exit 0

# One build directory at the repository root; binaries at stable paths:
#   build/controlplane/turn-control, build/controlplane/turnctl,
#   build/dataplane/turn-dataplane
# ninja regenerates the configuration itself when a meson.build changes.
[ -f build/build.ninja ] || meson setup build >/dev/null
log "building build/ ($(nproc) jobs)"
ninja -C build
