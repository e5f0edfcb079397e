#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# DTLS client transport (RFC 7350) end to end, in network namespaces this
# test creates: coturn's turnutils_uclient -S over UDP (DTLS on the TLS
# port, 5349) relays to turnutils_peer with channels and with Send
# indications, four clients each:
#
#   control:   turn-control alone (lib.sh netns_up topology);
#   dataplane: turn-dataplane in front (lib.sh dp_stack_up): DTLS clients
#              stay on the kernel path (the data plane punts their records
#              and skips their allocations), relaying still loses nothing.
#
#   tests/e2e/dtls_e2e.sh BUILD_DIR control|dataplane
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
  start_peer peer 10.77.2.2 || exit 1
  SERVER=$SRV PEER=10.77.2.2
else
  netns_up
  start_redis "$NS_S" 6379 || { fail "redis starts"; exit 1; }
  cat >"$E2E_TMP/turn.conf" <<CONF
listening-ip=$S_CLIENT_IP
relay-ip=$S_PEER_IP
tls-listening-port=5349
cert=$E2E_TMP/cert.pem
pkey=$E2E_TMP/key.pem
realm=e2e.dpturn.test
user=alice:wonderland-42
legacy-channel-range
state-redis="ip=127.0.0.1 port=6379"
instance-id=e2e
admin-ip=127.0.0.1
admin-port=8080
admin-token=$TOKEN
relay-threads=2
CONF
  start turn-control "$NS_S" "$BUILD/controlplane/turn-control" -c "$E2E_TMP/turn.conf"
  wait_port "$NS_S" udp "$S_CLIENT_IP:5349" 10 || { fail "turn-control listens on DTLS"; exit 1; }
  start_peer peer "$P_IP" || exit 1
  SERVER=$S_CLIENT_IP PEER=$P_IP
fi
check "turn-control listens for DTLS on the TLS port" grep -q "listening on dtls .*:5349" "$E2E_TMP/turn-control.log"

dtls_run() {  # name args...: uclient -S over UDP, zero loss
  local name=$1; shift
  timeout 120 ip netns exec "$NS_C" turnutils_uclient -S -p 5349 -e "$PEER" -r 3480 -n "$MSGS" -m 4 -l 170 -z 5 \
    -u alice -w wonderland-42 "$@" "$SERVER" >"$E2E_TMP/uclient-$name.log" 2>&1
  uclient_result "$name"
}

[ "$MODE" = dataplane ] && d0=$(dp_stats)
check "DTLS, channels: zero loss" dtls_run channels
check "DTLS, Send indications: zero loss" dtls_run send -s
check "the clients negotiated DTLS 1.2" grep -q "method=DTLSv1.2" "$E2E_TMP/uclient-channels.log"
check "turn-control made DTLS allocations" grep -q "(dtls $([ "$MODE" = dataplane ] && echo 10.77.1.2 || echo "$C_IP")" \
  "$E2E_TMP/turn-control.log"

# During a longer run: the records say dtls, and with turn-dataplane in
# front its tables hold none of them (their clients are DTLS: kernel path).
timeout 120 ip netns exec "$NS_C" turnutils_uclient -S -p 5349 -e "$PEER" -r 3480 -n 300 -m 2 -l 170 -z 10 \
  -u alice -w wonderland-42 "$SERVER" >"$E2E_TMP/uclient-held.log" 2>&1 &
held=$!
sleep 2
transports=$(rcli --scan --pattern 'dpturn:alloc:*' | while read -r k; do rcli hget "$k" transport; done | grep -v '^$' | sort -u | tr '\n' ' ')
echo "during a run: record transports: ${transports:-none}"
check "the allocation records say dtls ($transports)" test "$transports" = "dtls "
if [ "$MODE" = dataplane ]; then
  dp_allocs=$(dp_stat allocations "$(dp_stats)")
  check "the data plane's tables hold none of them ($dp_allocs)" test "$dp_allocs" -eq 0
fi
wait $held
check "that run lost nothing either" uclient_result held
if [ "$MODE" = dataplane ]; then
  d1=$(dp_stats)
  punted=$(( $(dp_stat punt_unknown_flow "$d1") + $(dp_stat punt_control "$d1") + $(dp_stat punt_not_turn "$d1") \
             - $(dp_stat punt_unknown_flow "$d0") - $(dp_stat punt_control "$d0") - $(dp_stat punt_not_turn "$d0") ))
  echo "data plane: punted $punted frames of DTLS clients and their peers to the kernel path"
  check "the data plane handed them to turn-control ($punted frames)" test "$punted" -gt $(( 4 * MSGS ))
fi
finish
