#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# RFC 6062 TCP allocations end to end, in network namespaces this test
# creates, with coturn's turnutils_uclient -T (client-to-client over TCP
# relays: Allocate with REQUESTED-TRANSPORT TCP, CreatePermission, Connect,
# ConnectionAttempt, ConnectionBind, data connections) and -T -S (the same
# over TLS control and data connections):
#
#   control:   turn-control alone (tests/e2e/lib.sh netns_up topology);
#   dataplane: turn-dataplane in front (lib.sh dp_stack_up): TCP is never
#              on the fast path; the data plane hands it to turn-control
#              (punted) and skips these allocations' records.
#
# Zero loss in every run; turn-control counts the relayed bytes on its
# kernel path; the Redis records say tcp/tls.
#
#   tests/e2e/tcp_relay_e2e.sh BUILD_DIR control|dataplane
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"  # sets BUILD ($1), ROOT, the EXIT trap
need_root
MODE=${2:-control}
MSGS=${E2E_MSGS:-200}

make_cert "$E2E_TMP"
if [ "$MODE" = dataplane ]; then
  need_dataplane
  dp_stack_up "$(printf 'cert=%s\npkey=%s\ntls-listening-port=5349' "$E2E_TMP/cert.pem" "$E2E_TMP/key.pem")" || exit 1
  wait_port "$NS_S" tcp "$SRV:5349" 10 || { fail "turn-control listens on TLS"; exit 1; }
  SERVER=$SRV
  TC_LOG=$E2E_TMP/turn-control.log
else
  netns_up
  start_redis "$NS_S" 6379 || { fail "redis starts"; exit 1; }
  cat >"$E2E_TMP/turn.conf" <<CONF
listening-ip=$S_CLIENT_IP
relay-ip=$S_PEER_IP
listening-port=3478
tls-listening-port=5349
cert=$E2E_TMP/cert.pem
pkey=$E2E_TMP/key.pem
realm=e2e.dpturn.test
user=alice:wonderland-42
state-redis="ip=127.0.0.1 port=6379"
instance-id=e2e
admin-ip=127.0.0.1
admin-port=8080
admin-token=$TOKEN
relay-threads=2
CONF
  start turn-control "$NS_S" "$BUILD/controlplane/turn-control" -c "$E2E_TMP/turn.conf"
  wait_port "$NS_S" tcp "$S_CLIENT_IP:3478" 10 && wait_port "$NS_S" tcp "$S_CLIENT_IP:5349" 10 \
    || { fail "turn-control listens"; exit 1; }
  SERVER=$S_CLIENT_IP
  TC_LOG=$E2E_TMP/turn-control.log
fi

# Message size. turnutils_uclient's TCP data reader cannot put together a
# message split over two TCP segments (it retries recv() 128 times without
# waiting, then loses its place in the stream and counts the rest as lost).
# When the client's Nagle algorithm packs 500-byte messages into 1,448-byte
# segments (measured behind turn-dataplane, and now and then without it on
# a busy machine: the relay reads 1448 then 52), it loses messages that
# were all relayed. So each message is one full segment (MSS 1448 on these
# 1500-MTU links), which Nagle sends at once. Relaying is byte-exact either
# way (tcp_alloc_test checks 3 MiB each way byte for byte).
MSG_LEN=1448

slow_bytes() {  # turn-control's kernel-path bytes to peers, from /metrics
  ctl metrics | sed -nE 's/^dpturn_relayed_bytes_total\{direction="to_peer",path="slow"\} ([0-9]+)$/\1/p'
}
tcp_run() {  # name args...: uclient -T from the client namespace, zero loss
  local name=$1; shift
  timeout 120 ip netns exec "$NS_C" turnutils_uclient -T -n "$MSGS" -m 4 -l "$MSG_LEN" -z 5 -u alice -w wonderland-42 \
    "$@" "$SERVER" >"$E2E_TMP/uclient-$name.log" 2>&1
  uclient_result "$name"
}

[ "$MODE" = dataplane ] && d0=$(dp_stats)
b0=$(slow_bytes)
check "TCP relays over TCP control connections: zero loss" tcp_run tcp -p 3478
b1=$(slow_bytes)
check "turn-control relayed them on its kernel path (${b0:-0} -> ${b1:-0} bytes)" \
  test "${b1:-0}" -ge $(( ${b0:-0} + 4 * MSGS * MSG_LEN ))
check "TCP relays over TLS control connections: zero loss" tcp_run tls -S -p 5349
check "turn-control made TCP allocations" grep -q "TCP allocation" "$TC_LOG"
check "no error in turn-control's log" bash -c "! grep -q ' ERROR ' '$TC_LOG'"

# During a longer run: turn-control holds the TCP allocations, their Redis
# records name TCP clients (which a data plane leaves to the kernel path),
# and with turn-dataplane in front its tables hold none of them.
[ "$MODE" = dataplane ] && d1=$(dp_stats)
timeout 120 ip netns exec "$NS_C" turnutils_uclient -T -n 300 -m 2 -l "$MSG_LEN" -z 10 -u alice -w wonderland-42 \
  -p 3478 "$SERVER" >"$E2E_TMP/uclient-held.log" 2>&1 &
held=$!
sleep 2
live=$(ctl usage | head -1 | awk '{print $1}')
transports=$(rcli --scan --pattern 'dpturn:alloc:*' | while read -r k; do rcli hget "$k" transport; done | grep -v '^$' | sort -u | tr '\n' ' ')
echo "during a run: turn-control holds ${live:-?} allocation(s); record transports: ${transports:-none}"
check "TCP allocations live in turn-control (${live:-0})" test "${live:-0}" -gt 0
check "their records say tcp ($transports)" test "$transports" = "tcp "
if [ "$MODE" = dataplane ]; then
  dp_allocs=$(dp_stat allocations "$(dp_stats)")
  check "the data plane's tables hold none of them ($dp_allocs)" test "$dp_allocs" -eq 0
fi
wait $held
check "that run lost nothing either" uclient_result held
left=1
for _ in $(seq 1 30); do
  left=$(rcli zcard dpturn:allocs)
  [ "$left" = 0 ] && break
  sleep 0.1
done
check "every TCP allocation released and gone from Redis ($left left)" test "$left" = 0

if [ "$MODE" = dataplane ]; then
  d2=$(dp_stats)
  punted=$(( $(dp_stat punt_other "$d2") - $(dp_stat punt_other "$d0") ))
  fast=$(( $(dp_stat channel_data_to_peer "$d2") + $(dp_stat send_indication_to_peer "$d2") \
           - $(dp_stat channel_data_to_peer "$d0") - $(dp_stat send_indication_to_peer "$d0") ))
  echo "data plane: punted $punted frames to the kernel path, fast-pathed $fast"
  check "the data plane handed the TCP traffic to turn-control ($punted frames)" test "$punted" -gt $(( 4 * MSGS ))
  check "nothing of it took the UDP fast path" test "$fast" -eq 0
fi
finish
