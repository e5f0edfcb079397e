#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# testpmd-style load benchmark of the data plane, as a ratio measured side
# by side in one run on the same vdev, cores and input:
#   - dpdk-testpmd, io forwarding (the ceiling: rx burst -> tx burst);
#   - turn-dataplane, client ChannelData -> peer (lookup, rewrite,
#     incremental checksum) for N allocations.
# Input: net_pcap replaying (infinite_rx) one 200-byte-payload ChannelData
# frame per allocation; output: net_pcap without a tx file (frames dropped
# after tx). One worker lcore each. Bounded: SECONDS per program. The
# exception port is a net_null with no-rx=1: without it net_null "receives"
# an endless stream that the worker would forward kernel -> wire, halving
# the measured rate (it did, in the first figures of bench/RESULTS.md).
#
#   scripts/bench-dataplane.sh [ALLOCATIONS=10000] [PAYLOAD=200] [SECONDS=8]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000}
SIZE=${2:-200}
SECS=${3:-8}
TMP=$(mktemp -d /tmp/dpturn-bench-dp.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null; done; sleep 0.3; rm -rf "$TMP"; }
trap cleanup EXIT
RPORT=36392

python3 bench/load/gen_flows.py "$N" "$SIZE" "$TMP/flows.pcap" "$TMP/state.redis"
redis-server --port $RPORT --bind 127.0.0.1 --save '' --appendonly no --dir "$TMP" >"$TMP/redis.log" 2>&1 & PIDS+=($!)
for _ in $(seq 1 50); do redis-cli -p $RPORT ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-cli -p $RPORT --pipe <"$TMP/state.redis" >/dev/null

MEM=(--in-memory)
[ "$(cat /sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages 2>/dev/null || echo 0)" -lt 300 ] && MEM=(--no-huge -m 1024 --no-shconf)
VDEV="--vdev=net_pcap0,rx_pcap=$TMP/flows.pcap,infinite_rx=1"

# 1. testpmd io forwarding: the ceiling.
timeout -s INT $((SECS + 2)) dpdk-testpmd -l 0-1 --no-pci "${MEM[@]}" --file-prefix=bench-testpmd "$VDEV" -- \
  --forward-mode=io --port-topology=loop --auto-start --stats-period=1 --nb-cores=1 >"$TMP/testpmd.log" 2>&1 || true
testpmd_pps=$(grep -o 'Rx-pps: *[0-9]*' "$TMP/testpmd.log" | awk '{print $2}' | tail -n +3 | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
# 1b. testpmd 5tswap (swaps MACs, IPs and ports: reads and writes L2-L4 like
# the fast path does, without lookups): a second, header-touching reference.
timeout -s INT $((SECS + 2)) dpdk-testpmd -l 0-1 --no-pci "${MEM[@]}" --file-prefix=bench-testpmd "$VDEV" -- \
  --forward-mode=5tswap --port-topology=loop --auto-start --stats-period=1 --nb-cores=1 >"$TMP/testpmd5.log" 2>&1 || true
swap_pps=$(grep -o 'Rx-pps: *[0-9]*' "$TMP/testpmd5.log" | awk '{print $2}' | tail -n +3 | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')

# 2. turn-dataplane on the same vdev and cores.
cat >"$TMP/dp.conf" <<CONF
ip=10.78.0.2/24
gateway=10.78.0.1
neighbor=10.78.0.1,02:00:00:00:00:01
state-redis="ip=127.0.0.1 port=$RPORT"
exception-port=1
allocations=$((N + N / 4 + 64))
channels=$((N + N / 4 + 64))
min-port=49152
max-port=65535
instance-id=bench
mbufs=$((N + 32768))
CONF
build/dataplane/turn-dataplane -l 0-1 --no-pci "${MEM[@]}" --file-prefix=bench-dp "$VDEV" --vdev=net_null0,no-rx=1 -- \
  -c "$TMP/dp.conf" >"$TMP/dp.log" 2>&1 & DP=$!; PIDS+=($DP)
for _ in $(seq 1 100); do grep -q 'worker(s)' "$TMP/dp.log" && break; sleep 0.1; done
sleep 2  # warm-up
rx() { scripts/dp-telemetry.py --file-prefix bench-dp | python3 -c "import json,sys; d=json.load(sys.stdin)['/dpturn/stats']; print(d['rx_packets'], d['channel_data_to_peer'], d['punted'])"; }
read -r rx0 fwd0 p0 <<<"$(rx)"; t0=$(date +%s.%N)
sleep "$SECS"
read -r rx1 fwd1 p1 <<<"$(rx)"; t1=$(date +%s.%N)
kill -INT $DP; wait $DP || true
python3 - "$testpmd_pps" "$swap_pps" "$rx0" "$rx1" "$fwd0" "$fwd1" "$p0" "$p1" "$t0" "$t1" "$N" "$SIZE" <<'PY'
import sys
tp, sw, rx0, rx1, f0, f1, p0, p1, t0, t1, n, size = sys.argv[1:]
tp = float(tp or 0); sw = float(sw or 0); dt = float(t1) - float(t0)
pps = (int(rx1) - int(rx0)) / dt
fwd = (int(f1) - int(f0)) / dt
print(f"allocations={n} payload={size}B")
print(f"testpmd io fwd: {tp/1e6:.3f} Mpps")
print(f"testpmd 5tswap: {sw/1e6:.3f} Mpps")
print(f"turn-dataplane: {pps/1e6:.3f} Mpps received, {fwd/1e6:.3f} Mpps ChannelData->peer, punted {int(p1)-int(p0)}")
print(f"ratio turn-dataplane / testpmd io: {fwd/tp:.2f}" if tp else "testpmd figure missing")
print(f"ratio turn-dataplane / testpmd 5tswap: {fwd/sw:.2f}" if sw else "testpmd 5tswap figure missing")
PY
