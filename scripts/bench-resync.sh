#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# How long a (re)started turn-dataplane takes to load its tables from Redis:
# writes N allocations (each with one permission and one channel, in the
# docs/state.md schema) into a private redis-server on loopback, starts
# turn-dataplane on net_null ports, and reads the snapshot time it logs.
#
#   scripts/bench-resync.sh [N=100000]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
TMP=$(mktemp -d /tmp/dpturn-bench-resync.XXXXXX)
PORT=36391
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null; done; sleep 0.5; rm -rf "$TMP"; }
trap cleanup EXIT

redis-server --port $PORT --bind 127.0.0.1 --save '' --appendonly no --dir "$TMP" >"$TMP/redis.log" 2>&1 & PIDS+=($!)
for _ in $(seq 1 50); do redis-cli -p $PORT ping >/dev/null 2>&1 && break; sleep 0.1; done

python3 - "$N" >"$TMP/load.txt" <<'PY'
import sys, time
n = int(sys.argv[1]); exp = int(time.time()) + 3600
def cmd(*a):
    out = [f"*{len(a)}"]
    for x in a:
        x = str(x); out += [f"${len(x.encode())}", x]
    return "\r\n".join(out) + "\r\n"
w = sys.stdout.write
for i in range(n):
    c = f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}:{10000 + i % 50000}"
    relay = f"10.200.{(i >> 14) & 255}.1:{49152 + i % 16384}"
    aid = f"bench/{relay}"
    w(cmd("HSET", f"dpturn:alloc:{aid}", "id", aid, "instance", "bench", "transport", "udp", "client", c,
          "server", "10.78.0.2:3478", "relay", relay, "username", "u", "realm", "r", "expires", exp))
    w(cmd("ZADD", "dpturn:allocs", exp, aid))
    w(cmd("HSET", f"dpturn:alloc:{aid}:perm", "10.99.0.1", exp))
    w(cmd("HSET", f"dpturn:alloc:{aid}:chan", "16384", f"10.99.0.1:5000 {exp}"))
PY
redis-cli -p $PORT --pipe <"$TMP/load.txt" >/dev/null
echo "loaded $(redis-cli -p $PORT zcard dpturn:allocs) allocations into redis"

cat >"$TMP/dp.conf" <<CONF
ip=10.78.0.2/24
state-redis="ip=127.0.0.1 port=$PORT"
allocations=$((N + N / 8 + 16))
channels=$((N + N / 8 + 16))
exception-port=1
min-port=49152
max-port=65535
CONF
. scripts/lib/dpdk.sh
eal_mem 800
MEM=("${EAL_MEM[@]}")
build/dataplane/turn-dataplane -l 0-1 --no-pci "${MEM[@]}" --file-prefix=dpturn-resync \
  --vdev=net_null0 --vdev=net_null1 -- -c "$TMP/dp.conf" >"$TMP/dp.log" 2>&1 & PIDS+=($!)
for _ in $(seq 1 600); do grep -q 'snapshot:' "$TMP/dp.log" && break; sleep 0.1; done
grep -o 'snapshot: .*' "$TMP/dp.log" || { echo "no snapshot line:"; tail -5 "$TMP/dp.log"; exit 1; }
