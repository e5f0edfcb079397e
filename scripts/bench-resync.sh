#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# How long a (re)started or resyncing turn-dataplane takes to load its own
# host's share from a store that holds the whole fleet's: writes FLEET
# allocations (each with one permission and one channel, in the
# common/state schema: one hash each) for FLEET/OWN instances into a private redis-server
# on loopback, OWN of them for instance "bench"; starts turn-dataplane on
# net_null ports as instance "bench" and reads the snapshot time it logs,
# then makes it resync (the store restarted: a second snapshot) and reads
# that too.
#
#   scripts/bench-resync.sh [OWN=100000] [FLEET=OWN]
#   e.g. scripts/bench-resync.sh 100000 1000000   # docs/fleet.md, bench/RESULTS.md
set -euo pipefail
cd "$(dirname "$0")/.."
OWN=${1:-100000}
FLEET=${2:-$OWN}
[ "$FLEET" -ge "$OWN" ] || { echo "bench-resync.sh: FLEET ($FLEET) must be >= OWN ($OWN)" >&2; exit 2; }
TMP=$(mktemp -d /tmp/dpturn-bench-resync.XXXXXX)
PORT=36391
. scripts/lib/dpdk.sh   # eal_mem, dpdk_prefix_clean
. scripts/lib/procs.sh  # track_pid, stop_procs, redis_start
cleanup() { stop_procs; rm -rf "$TMP"; dpdk_prefix_clean dpturn-resync; }
trap cleanup EXIT

redis_start "" $PORT "$TMP" || { echo "bench-resync: redis-server did not start" >&2; exit 1; }

# Instance k holds allocations k*OWN .. (k+1)*OWN-1; instance 0 is "bench".
python3 - "$OWN" "$FLEET" <<'PY' | redis-cli -p $PORT --pipe >/dev/null
import sys, time
own, fleet = int(sys.argv[1]), int(sys.argv[2]); exp = int(time.time()) + 3600
def cmd(*a):
    out = [f"*{len(a)}"]
    for x in a:
        x = str(x); out += [f"${len(x.encode())}", x]
    return "\r\n".join(out) + "\r\n"
w = sys.stdout.write
for i in range(fleet):
    inst = "bench" if i < own else f"fleet-{i // own}"
    c = f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}:{10000 + i % 50000}"
    relay = f"10.{200 + (i >> 20)}.{(i >> 14) & 63}.1:{49152 + i % 16384}"
    aid = f"{inst}/{relay}"
    w(cmd("HSET", f"dpturn:alloc:{aid}", "id", aid, "instance", inst, "transport", "udp", "client", c,
          "server", "10.78.0.2:3478", "relay", relay, "username", "u", "realm", "r", "expires", exp,
          "perm:10.99.0.1", exp, "chan:16384", f"10.99.0.1:5000 {exp}"))
    w(cmd("ZADD", f"dpturn:allocs:{inst}", exp, aid))
PY
echo "store: $(redis-cli -p $PORT dbsize) keys; instance bench: $(redis-cli -p $PORT zcard dpturn:allocs:bench) allocations of $FLEET in the fleet; $(redis-cli -p $PORT info memory | sed -n 's/^used_memory_human:\(.*\)\r$/\1/p') used"

cat >"$TMP/dp.conf" <<CONF
ip=10.78.0.2/24
state-redis="ip=127.0.0.1 port=$PORT"
instance-id=bench
allocations=$((OWN + OWN / 8 + 16))
channels=$((OWN + OWN / 8 + 16))
exception-port=1
min-port=49152
max-port=65535
CONF
eal_mem 800
MEM=("${EAL_MEM[@]}")
build/dataplane/turn-dataplane -l 0-1 --no-pci "${MEM[@]}" --file-prefix=dpturn-resync \
  --vdev=net_null0 --vdev=net_null1 -- -c "$TMP/dp.conf" >"$TMP/dp.log" 2>&1 & track_pid $!
snapshots() { grep -c 'snapshot of instance' "$TMP/dp.log" || true; }
for _ in $(seq 1 600); do [ "$(snapshots)" -ge 1 ] && break; sleep 0.1; done
[ "$(snapshots)" -ge 1 ] || { echo "no snapshot line:"; tail -5 "$TMP/dp.log"; exit 1; }
# A resync: every client connection dropped (as a store failover does).
redis-cli -p $PORT client kill type normal >/dev/null
for _ in $(seq 1 600); do [ "$(snapshots)" -ge 2 ] && break; sleep 0.1; done
grep -o 'snapshot of instance.*' "$TMP/dp.log"
