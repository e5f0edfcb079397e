#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Control-plane throughput, side by side in one run: turn-control and
# coturn (Debian's turnserver) on loopback, the same client
# (build/bench/load/alloc_rate: Allocate + CreatePermission + ChannelBind +
# Refresh(0) per cycle, fresh UDP socket per cycle), the same settings
# (one realm, one user, loopback peers allowed, no TLS, no rate limits).
#
#   scripts/bench-alloc.sh [SECONDS=10] [THREADS=4]
# Prints one line per server and the ratio. Bounded by SECONDS per server.
# TURN_CONTROL=path runs another turn-control binary (an older build, for a
# before/after of a control-plane change) against the same client.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_RUN=${1:-10}
THREADS=${2:-4}
B=build
TURN_CONTROL=${TURN_CONTROL:-$B/controlplane/turn-control}
[ -x "$TURN_CONTROL" ] || { echo "bench-alloc: no turn-control at '$TURN_CONTROL' (build first, or set TURN_CONTROL)" >&2; exit 1; }
TMP=$(mktemp -d /tmp/dpturn-bench-alloc.XXXXXX)
. scripts/lib/procs.sh  # track_pid, stop_procs
cleanup() { stop_procs; rm -rf "$TMP"; }
trap cleanup EXIT

PORT_DP=35478 PORT_CT=35479
cat >"$TMP/dpturn.conf" <<CONF
listening-ip=127.0.0.1
relay-ip=127.0.0.1
listening-port=$PORT_DP
min-port=40000
max-port=60000
realm=bench.test
user=bench:bench-password
allow-loopback-peers
request-rate-limit=0
unauth-rate-limit=0
no-tls
CONF
"$TURN_CONTROL" -c "$TMP/dpturn.conf" >"$TMP/dpturn.log" 2>&1 & track_pid $!
turnserver -n --listening-ip=127.0.0.1 --listening-port=$PORT_CT --relay-ip=127.0.0.1 \
  --min-port=40000 --max-port=60000 --lt-cred-mech --user=bench:bench-password --realm=bench.test \
  --allow-loopback-peers --no-tls --no-dtls --no-cli --log-file=stdout --simple-log >"$TMP/coturn.log" 2>&1 & track_pid $!
sleep 1

run() { "$B/bench/load/alloc_rate" --server "127.0.0.1:$1" -u bench -p bench-password --threads "$THREADS" --seconds "$SECONDS_RUN"; }
dp=$(run $PORT_DP); echo "dpturn: $dp"
ct=$(run $PORT_CT); echo "coturn: $ct"
rate() { sed -n 's/.* rate=\([0-9.]*\).*/\1/p' <<<"$1"; }
python3 -c "import sys; d,c=float(sys.argv[1]),float(sys.argv[2]); print(f'ratio dpturn/coturn (completed cycles/s): {d/c:.2f}')" "$(rate "$dp")" "$(rate "$ct")"
