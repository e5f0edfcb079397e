#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# turn-control end to end, in network namespaces this test creates:
# coturn's turnutils_uclient (client namespace) relays through turn-control
# (server namespace) to turnutils_peer (peer namespace) in every mode: UDP
# with channels, UDP with Send indications, TCP 3478, TCP 443, TLS 5349,
# REST credentials. Checks zero loss, auth refusals, relay usage in the
# admin API, and the allocation records and events in Redis.
#
#   tests/e2e/turn_control_e2e.sh BUILD_DIR
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"  # sets BUILD ($1), ROOT, the EXIT trap
need_root

TC=$BUILD/controlplane/turn-control
CTL=$BUILD/controlplane/turnctl
TOKEN=e2e-token-0123456789abcdef
USER=alice PASS=wonderland-42 SECRET=rest-shared-secret
REDIS_PORT=6379
MSGS=${E2E_MSGS:-200}

netns_up
start_redis "$NS_S" $REDIS_PORT || { fail "redis starts"; exit 1; }
make_cert "$E2E_TMP"
cat >"$E2E_TMP/turn.conf" <<CONF
listening-ip=$S_CLIENT_IP
relay-ip=$S_PEER_IP
listening-port=3478
alt-listening-port=443
tls-listening-port=5349
cert=$E2E_TMP/cert.pem
pkey=$E2E_TMP/key.pem
min-port=49152
max-port=65535
realm=e2e.dpturn.test
lt-cred-mech
user=$USER:$PASS
use-auth-secret
static-auth-secret=$SECRET
legacy-channel-range
denied-peer-ip=10.77.9.0-10.77.9.255
state-redis="ip=127.0.0.1 port=$REDIS_PORT"
instance-id=e2e
admin-ip=127.0.0.1
admin-port=8080
admin-token=$TOKEN
relay-threads=2
CONF
start turn-control "$NS_S" "$TC" -c "$E2E_TMP/turn.conf"
wait_port "$NS_S" udp "$S_CLIENT_IP:3478" 10 && wait_port "$NS_S" tcp "$S_CLIENT_IP:5349" 10 \
  || { fail "turn-control listens"; exit 1; }
start peer "$NS_P" turnutils_peer -L "$P_IP" -p 3480
wait_port "$NS_P" udp "$P_IP:3480" 10 || { fail "turnutils_peer listens"; exit 1; }


# Status shows every listener up.
status=$(ctl status)
echo "$status"
for l in "udp	$S_CLIENT_IP:3478" "tcp	$S_CLIENT_IP:3478" "udp	$S_CLIENT_IP:443" "tcp	$S_CLIENT_IP:443" "tls	$S_CLIENT_IP:5349"; do
  check "listener ${l/	/ } up" grep -qF "$l	up" <<<"$status"
done

# uclient NAME args... : runs in the client namespace, asserts zero loss.
uclient() {
  local name=$1; shift
  local out="$E2E_TMP/uclient-$name.log"
  timeout 120 ip netns exec "$NS_C" turnutils_uclient -e "$P_IP" -r 3480 -n "$MSGS" -m 4 -l 170 -z 5 "$@" \
    "$S_CLIENT_IP" >"$out" 2>&1
  local sent recv lost
  sent=$(sed -n 's/.*tot_send_msgs=\([0-9]*\).*/\1/p' "$out" | tail -1)
  recv=$(sed -n 's/.*tot_recv_msgs=\([0-9]*\).*/\1/p' "$out" | tail -1)
  lost=$(sed -n 's/.*Total lost packets \([0-9]*\).*/\1/p' "$out" | tail -1)
  echo "uclient $name: sent=${sent:-?} received=${recv:-?} lost=${lost:-?}"
  [ -n "$sent" ] && [ "$sent" -gt 0 ] && [ "$sent" = "$recv" ] && [ "$lost" = 0 ]
}

check "UDP, channels: zero loss"            uclient udp-channels -u $USER -w $PASS
check "UDP, Send indications: zero loss"    uclient udp-send -s -u $USER -w $PASS
check "TCP 3478: zero loss"                 uclient tcp-3478 -t -u $USER -w $PASS
check "TCP 443: zero loss"                  uclient tcp-443 -t -p 443 -u $USER -w $PASS
check "TLS 5349: zero loss"                 uclient tls-5349 -t -S -p 5349 -u $USER -w $PASS
check "REST credentials: zero loss"         uclient rest -u restuser -W $SECRET

# Refusals, through turnctl probe (a client we control exactly).
probe() { ip netns exec "$NS_C" "$CTL" probe "$@"; }
out=$(probe "turn:$S_CLIENT_IP:3478" -u $USER -p wrong-password); echo "$out"
check "wrong password refused (401)" grep -q "401" <<<"$out"
out=$(probe "turn:$S_CLIENT_IP:3478" -u $USER -p $PASS); echo "$out"
check "probe reachable with a round trip" grep -qE "^reachable: .* round trip [0-9.]+ ms" <<<"$out"
expired_user="$(( $(date +%s) - 60 )):restuser"
expired_pass=$(printf '%s' "$expired_user" | openssl dgst -sha1 -hmac "$SECRET" -binary | base64)
out=$(probe "turn:$S_CLIENT_IP:3478" -u "$expired_user" -p "$expired_pass"); echo "$out"
check "expired REST credential refused (401)" grep -q "401" <<<"$out"
fresh_user="$(( $(date +%s) + 600 )):restuser"
fresh_pass=$(printf '%s' "$fresh_user" | openssl dgst -sha1 -hmac "$SECRET" -binary | base64)
out=$(probe "turn:$S_CLIENT_IP:3478" -u "$fresh_user" -p "$fresh_pass"); echo "$out"
check "valid REST credential accepted" grep -q "^reachable" <<<"$out"
out=$(probe "turn:$S_CLIENT_IP:5399" -u $USER -p $PASS); echo "$out"
check "closed port reported unreachable" grep -q "^unreachable" <<<"$out"

# turnctl probe works against coturn too (Debian's turnserver, loopback of
# the server namespace).
start coturn "$NS_S" turnserver -n --listening-ip=127.0.0.1 --listening-port=3479 --relay-ip=127.0.0.1 \
  --min-port=41000 --max-port=41999 --lt-cred-mech --user=$USER:$PASS --realm=coturn.test --no-tls --no-dtls \
  --no-cli --log-file=stdout
if wait_port "$NS_S" udp "127.0.0.1:3479" 10; then
  out=$(ip netns exec "$NS_S" "$CTL" probe turn:127.0.0.1:3479 -u $USER -p $PASS); echo "coturn: $out"
  check "probe reports coturn reachable with a round trip" grep -qE "^reachable: .* round trip [0-9.]+ ms" <<<"$out"
  out=$(ip netns exec "$NS_S" "$CTL" probe turn:127.0.0.1:3479 -u $USER -p wrong-password); echo "coturn: $out"
  check "probe reports coturn's 401 for a wrong password" grep -q "401" <<<"$out"
else
  fail "coturn listens for the probe test"
fi
stop_pid "$PID_coturn"

# Relay usage: a held allocation is listed while it lives and gone after.
before=$(ctl usage | head -1 | awk '{print $1}')
probe "turn:$S_CLIENT_IP:3478" -u $USER -p $PASS --hold 3 >"$E2E_TMP/hold.log" 2>&1 &
hold_pid=$!
sleep 1.5
usage=$(ctl usage); echo "$usage"
during=$(head -1 <<<"$usage" | awk '{print $1}')
check "relay usage lists the held allocation ($before -> $during)" test "$during" -eq $((before + 1))
check "relay usage shows client and relay addresses" grep -qE "$USER  udp $C_IP:[0-9]+ -> relay $S_PEER_IP:[0-9]+" <<<"$usage"
id=$(ip netns exec "$NS_S" redis-cli -p $REDIS_PORT zrange dpturn:allocs:e2e 0 -1 | head -1)
check "Redis holds allocation records (dpturn:allocs:e2e, dpturn:alloc:<id>)" \
  test -n "$id" -a "$(ip netns exec "$NS_S" redis-cli -p $REDIS_PORT hget "dpturn:alloc:$id" realm)" = e2e.dpturn.test
wait $hold_pid
after=$(ctl usage | head -1 | awk '{print $1}')
check "released allocation disappears from relay usage ($before -> $after)" test "$after" = "$before"
events=$(ip netns exec "$NS_S" redis-cli -p $REDIS_PORT xrange dpturn:events:e2e - + | grep -cE '^(create|refresh|perm|chan|delete)$')
check "Redis change stream has create/refresh/perm/chan/delete events ($events)" test "$events" -gt 10
for t in create perm chan delete; do
  check "stream has '$t' events" bash -c "ip netns exec $NS_S redis-cli -p $REDIS_PORT xrange dpturn:events:e2e - + | grep -qx $t"
done

# TLS certificate reload without restart (SIGHUP), docs/configuration.md.
make_cert "$E2E_TMP"
kill -HUP "$PID_turn_control"
sleep 0.5
check "SIGHUP reloads the TLS certificate" grep -q "TLS certificate reloaded" "$E2E_TMP/turn-control.log"
check "TLS still relays after the reload" uclient tls-reloaded -t -S -p 5349 -u $USER -w $PASS

# Metrics are served and count what happened.
metrics=$(ctl metrics)
check "metrics count successful allocates" grep -qE '^dpturn_requests_total\{method="allocate",result="success"\} [1-9]' <<<"$metrics"
check "metrics count auth failures" grep -qE '^dpturn_auth_failures_total [1-9]' <<<"$metrics"

# Restart: a turn-control killed with SIGKILL comes back with its UDP
# allocations from Redis, so a client's Refresh still succeeds.
probe "turn:$S_CLIENT_IP:3478" -u $USER -p $PASS --hold 4 >"$E2E_TMP/restart-probe.log" 2>&1 &
held=$!
sleep 1
stop_pid "$PID_turn_control" KILL
start turn-control "$NS_S" "$TC" -c "$E2E_TMP/turn.conf"
wait_port "$NS_S" udp "$S_CLIENT_IP:3478" 10
wait $held
cat "$E2E_TMP/restart-probe.log"
check "allocations restored after SIGKILL + restart" grep -qE "restore: [1-9][0-9]* allocation\(s\) restored" "$E2E_TMP/turn-control.log"
check "the client's Refresh succeeds across the restart" grep -q "^reachable" "$E2E_TMP/restart-probe.log"


# The store unreachable (docs/fleet.md): new Allocates are still granted
# (a store outage costs speed, never calls), their events wait in the
# queue, and once Redis is back (empty: a restart) the instance's records
# are rewritten there.
stop_pid "$PID_redis" KILL
sleep 1
out=$(probe "turn:$S_CLIENT_IP:3478" -u $USER -p $PASS); rc=$?; echo "redis down: $out"
check "Allocate granted while Redis is down" test $rc = 0
# One allocation made during the outage and held across Redis's return.
probe "turn:$S_CLIENT_IP:3478" -u $USER -p $PASS --hold 8 >"$E2E_TMP/outage-hold.log" 2>&1 &
outage_hold=$!
sleep 1
check "turn-control says the state store is degraded" \
  grep -q "DEGRADED: unreachable" <<<"$(ip netns exec "$NS_S" "$BUILD/controlplane/turnctl" --url http://127.0.0.1:8080 --token "$TOKEN" status)"
start_redis "$NS_S" $REDIS_PORT
ok=0
for _ in $(seq 1 40); do
  n=$(ip netns exec "$NS_S" redis-cli -p $REDIS_PORT zcard dpturn:allocs:e2e 2>/dev/null)
  [ "${n:-0}" -ge 1 ] && { ok=1; break; }
  sleep 0.25
done
check "the restarted (empty) Redis gets the allocation made during the outage ($n)" test $ok = 1
wait $outage_hold
check "the allocation made during the outage lived through it" grep -q "^reachable" "$E2E_TMP/outage-hold.log"
out=$(probe "turn:$S_CLIENT_IP:3478" -u $USER -p $PASS); rc=$?; echo "redis back: $out"
check "Allocates granted after Redis returns" test $rc = 0
finish
