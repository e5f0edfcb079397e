#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The reference story (docs/deployment.md), start to end, in network
# namespaces this script creates and removes:
#
#   outside ns 10.81.1.2 --- ext 10.81.1.1 [ edge ns: turn-control ] int 10.81.2.1 --- inside ns 10.81.2.2
#   (a WebRTC browser)        (deploy/examples/edge-dual-homed.conf,       (a conference bridge,
#                              its addresses moved into these namespaces)   played by a browser)
#
#  1. the operator sets the realm and switches TURN on: UDP/TCP 3478, TCP 443 (and TLS 5349)
#  2. creates a credential in the local database (admin API, turnctl user add)
#  3. status: which addresses and ports the server listens on
#  4. an application registers the server (internal serverAddress, external
#     clientAddress) and asks its status: reachable, roundTripTimeMs
#  5. an outside browser (TCP 443) and an inside bridge (UDP 3478) call each
#     other, relay-only WebRTC: two headless Chromiums, relay to relay
#  6. relay usage lists both, with their addresses
#  7. the call ends, the relays are released: relay usage is empty
#
#   scripts/lab.sh              (root; builds nothing: run scripts/setup.sh first)
#   scripts/lab.sh --dataplane  the same with turn-dataplane owning both
#                               interfaces (net_af_packet; its TAPs carry the
#                               addresses, deploy/systemd/dpturn-tap-up), as
#                               deploy/examples/dataplane-edge.conf; the
#                               outside browser then uses UDP 3478
#   scripts/lab.sh --fleet      the fleet story: two relay hosts on one Sentinel
#                               store, a call through each, drain one, fail
#                               the other over (scripts/lab-fleet.sh)
#   DPTURN_BUILD=DIR scripts/lab.sh
#
# Traffic stays inside the three namespaces. Every step is bounded; the
# whole run takes about 10 s. Everything it created is removed on any exit.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${DPTURN_BUILD:-$ROOT/build}
TC=$BUILD/controlplane/turn-control
CTL=$BUILD/controlplane/turnctl

die() { echo "lab: $*" >&2; exit 1; }
DATAPLANE=0
case "${1:-}" in
  --dataplane) DATAPLANE=1 ;;
  --fleet) exec "$ROOT/scripts/lab-fleet.sh" ;;  # two relay hosts: drain, redirect, failover
  "") ;;
  *) die "usage: $0 [--dataplane | --fleet]" ;;
esac
[ "$(id -u)" = 0 ] || die "run as root (it creates network namespaces)"
[ -x "$TC" ] && [ -x "$CTL" ] || die "no build in $BUILD (scripts/setup.sh builds it)"
DP=$BUILD/dataplane/turn-dataplane
[ "$DATAPLANE" = 0 ] || [ -x "$DP" ] || die "no turn-dataplane in $BUILD (DPDK missing?)"
for p in redis-server chromium curl openssl ip; do
  command -v "$p" >/dev/null || die "$p missing (scripts/setup.sh installs it)"
done
CHROMIUM=$(command -v chromium)
[ -x /usr/bin/python3 ] || die "/usr/bin/python3 missing (Debian's python3)"

ID=$(($$ % 100000))
NS_O=dpl-o-$ID NS_E=dpl-e-$ID NS_I=dpl-i-$ID
EXT=10.81.1.1 OUT=10.81.1.2 INT=10.81.2.1 IN=10.81.2.2
TMP=$(mktemp -d /tmp/dpturn-lab.XXXXXX)
TOKEN=lab-$(openssl rand -hex 16)
FAILED=0
. "$ROOT/scripts/lib/procs.sh"  # bg_in, track_pid, stop_procs, wait_port, redis_start
. "$ROOT/scripts/lib/netns.sh"  # netns_add, netns_del

cleanup() {
  stop_procs
  netns_del "$NS_O" "$NS_E" "$NS_I"
  rm -rf "/var/run/dpdk/dpl$ID"  # the data plane's runtime directory (--file-prefix)
  if [ "$FAILED" != 0 ] || [ "${LAB_KEEP:-0}" = 1 ]; then
    echo "lab: logs kept in $TMP"
  else
    rm -rf "$TMP"
  fi
}
trap cleanup EXIT
trap 'echo "lab: interrupted"; exit 130' INT TERM

STEP=0
step() { STEP=$((STEP + 1)); printf '\n=== %d. %s\n' "$STEP" "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }  # print a command, then run it
expect() {  # description, command...: a check the story depends on
  local what=$1; shift
  if "$@"; then echo "    ok: $what"; else echo "    FAILED: $what"; FAILED=1; fi
}
bg() {  # ns logname command...: background, PID recorded for cleanup (and in BG_PID)
  local ns=$1 name=$2; shift 2
  bg_in "$ns" "$TMP/$name.log" "$@"
}
dp_stats() { ip netns exec "$NS_E" /usr/bin/python3 "$ROOT/scripts/dp-telemetry.py" --file-prefix "dpl$ID"; }
ctl() { ip netns exec "$NS_E" "$CTL" --url http://127.0.0.1:8080 --token "$TOKEN" "$@"; }
api() {  # method path [json] [curl options...]: the admin API as an application calls it
  local method=$1 path=$2 data=${3:-}
  local extra=(); [ -n "$data" ] && extra=(--data "$data")
  ip netns exec "$NS_E" curl -sS --max-time 10 -X "$method" -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' "${extra[@]}" "${@:4}" "http://127.0.0.1:8080$path"
}

step "Network: outside, edge (dual-homed) and inside namespaces"
netns_add "$NS_O" "$NS_E" "$NS_I"
echo "namespaces: $NS_O $NS_E $NS_I"
ip link add ext0 netns "$NS_E" type veth peer name eth0 netns "$NS_O"
ip link add int0 netns "$NS_E" type veth peer name eth0 netns "$NS_I"
ip -n "$NS_O" addr add $OUT/24 dev eth0
ip -n "$NS_I" addr add $IN/24 dev eth0
for l in "$NS_E ext0" "$NS_E int0" "$NS_O eth0" "$NS_I eth0"; do set -- $l; ip -n "$1" link set "$2" up; done
if [ "$DATAPLANE" = 0 ]; then
  ip -n "$NS_E" addr add $EXT/24 dev ext0
  ip -n "$NS_E" addr add $INT/24 dev int0
  echo "outside: $OUT    edge: ext0 $EXT, int0 $INT    inside: $IN"
fi
redis_start "$NS_E" 6379 "$TMP" || die "redis did not start (see $TMP/redis.log)"

if [ "$DATAPLANE" = 1 ]; then
  step "turn-dataplane takes both interfaces (DPDK net_af_packet ports, one TAP each)"
  # The kernel must not answer on ext0/int0 itself: no address, no ARP,
  # strict reverse-path filter; veths: no transmit checksum offload
  # (docs/dataplane.md).
  ip netns exec "$NS_E" sysctl -qw net.ipv4.conf.all.rp_filter=1
  for i in ext0 int0; do
    ip netns exec "$NS_E" sysctl -qw "net.ipv4.conf.$i.rp_filter=1"
    ip -n "$NS_E" link set "$i" arp off
    ip netns exec "$NS_E" ethtool -K "$i" tx off >/dev/null
  done
  ip netns exec "$NS_O" ethtool -K eth0 tx off >/dev/null
  ip netns exec "$NS_I" ethtool -K eth0 tx off >/dev/null
  # deploy/examples/dataplane-edge.conf and .env with their addresses moved
  # here; the outside host stands in for the internet router (gateway), an
  # unused inside address for the internal router.
  move() {
    sed -e "s/203\.0\.113\.10/$EXT/g" -e "s/203\.0\.113\.1\b/$OUT/g" -e "s/10\.10\.0\.10/$INT/g" \
        -e "s/10\.10\.0\.1\b/10.81.2.254/g" -e "s/^allocations=.*/allocations=1024/" -e "s/^channels=.*/channels=4096/" "$@"
  }
  move "$ROOT/deploy/examples/dataplane-edge.conf" >"$TMP/dataplane-edge.conf"
  # Every namespace here shares this machine's cores: the worker sleeps when
  # idle (docs/dataplane.md, idle-sleep-us); a relay host of its own spins.
  echo "idle-sleep-us=100" >>"$TMP/dataplane-edge.conf"
  move "$ROOT/deploy/examples/dataplane-edge.env" >"$TMP/dataplane-edge.env"
  grep -vE '^(#|$)' "$TMP/dataplane-edge.conf" | sed 's/^/    /'
  # The .env's EAL arguments name PCI NICs; here: the veths.
  . "$ROOT/scripts/lib/dpdk.sh"
  eal_mem 256
  bg "$NS_E" dataplane "$DP" -l 0-1 "${EAL_MEM[@]}" --no-pci --vdev=net_af_packet0,iface=ext0 \
    --vdev=net_af_packet1,iface=int0 --file-prefix="dpl$ID" -- -c "$TMP/dataplane-edge.conf"
  DPTURN_TAPS=$(. "$TMP/dataplane-edge.env" && echo "$DPTURN_TAPS")
  show ip netns exec "$NS_E" "$ROOT/deploy/systemd/dpturn-tap-up" $DPTURN_TAPS \
    || die "the TAPs did not come up (see $TMP/dataplane.log)"
  echo "outside: $OUT    edge: ext0 (DPDK port 0) + TAP dpx0 $EXT, int0 (port 1) + TAP dpx1 $INT    inside: $IN"
fi

step "The operator sets the realm and switches TURN on: UDP/TCP 3478, TCP 443, TLS 5349"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=lab.dpturn.test \
  -keyout "$TMP/key.pem" -out "$TMP/cert.pem" >/dev/null 2>&1
# deploy/examples/edge-dual-homed.conf with its addresses moved into the namespaces.
sed -e "s/203\.0\.113\.10/$EXT/g" -e "s/10\.10\.0\.10/$INT/g" -e "s/realm=turn.example.com/realm=lab.dpturn.test/" \
    -e "s|^cert=.*|cert=$TMP/cert.pem|" -e "s|^pkey=.*|pkey=$TMP/key.pem|" \
    -e "s/^admin-token=.*/admin-token=$TOKEN/" -e "s/^server-secret=.*/server-secret=$(openssl rand -hex 16)/" \
    "$ROOT/deploy/examples/edge-dual-homed.conf" >"$TMP/turnserver.conf"
echo "relay-threads=1" >>"$TMP/turnserver.conf"
grep -E '^(listening|alt-listening|tls-listening|relay|realm|lt-cred|allowed-peer|state-redis)' "$TMP/turnserver.conf" \
  | sed 's/^/    /'
show "$TC" -c "$TMP/turnserver.conf" --check-config
bg "$NS_E" turn-control "$TC" -c "$TMP/turnserver.conf"
for l in "udp $EXT:3478" "tcp $EXT:443" "tcp $INT:3478" "tcp $EXT:5349" "tcp 127.0.0.1:8080"; do
  wait_port "$NS_E" $l 10 || die "turn-control does not listen on $l (see $TMP/turn-control.log)"
done
echo "turn-control is up (pid $BG_PID)"

step "Create a credential in the local database"
PASS=$(openssl rand -hex 12)
show ctl user add bridge --password "$PASS" | sed "s/$PASS/<password>/g"
echo '$ curl -X POST /api/v1/users {"name":"browser","password":...}'
api POST /api/v1/users "{\"name\":\"browser\",\"password\":\"$PASS\"}"; echo
show ctl user list

step "Status: the addresses and ports TURN listens on"
status=$(ctl status); echo "$status"
for l in "udp	$EXT:3478" "tcp	$EXT:3478" "udp	$INT:3478" "tcp	$INT:3478" "tcp	$EXT:443" "tcp	$INT:443" "tls	$EXT:5349"; do
  expect "listening: ${l/	/ }" grep -qF "$l	up" <<<"$status"
done

step "An application registers the server and asks its status (reachable, roundTripTimeMs)"
body="{\"serverAddress\":\"$INT:3478\",\"clientAddress\":\"$EXT:3478\",\"username\":\"bridge\",\"password\":\"$PASS\",\"type\":\"udp\"}"
echo "\$ curl -X POST /api/v1/turn-servers ${body/$PASS/<password>}"
reg=$(api POST /api/v1/turn-servers "$body"); echo "$reg" | sed "s/$PASS/<password>/g"
sid=$(/usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin).get("id",""))' <<<"$reg" 2>/dev/null)
if [ -n "$sid" ]; then
  echo "\$ curl /api/v1/turn-servers/$sid/status"
  st=$(api GET "/api/v1/turn-servers/$sid/status"); echo "$st"
  expect "the registered server is reachable with a round trip time" /usr/bin/python3 -c '
import json, sys
s = json.loads(sys.argv[1])
sys.exit(0 if s.get("reachable") is True and isinstance(s.get("roundTripTimeMs"), (int, float)) else 1)' "$st"
  show ctl servers status "$sid"
  show ctl servers list
else
  echo "    FAILED: this build has no TURN server registry (POST /api/v1/turn-servers)"
  FAILED=1
fi

step "An outside browser and an inside bridge call each other through their relays"
# Two headless Chromiums (tests/browser/cdp_webrtc.py), relay-only WebRTC:
# the outside one reaches TCP 443 on the external address (a firewall that
# blocks 3478), the inside one UDP 3478 on the internal address. Media
# (200 data-channel messages each way) goes relay to relay inside the edge.
HOLD=$TMP/hold READY=$TMP/ready
OUT_URL="turn:$EXT:443?transport=tcp" OUT_PROTO=tcp
# With the data plane: UDP, the transport it fast-paths.
[ "$DATAPLANE" = 1 ] && OUT_URL="turn:$EXT:3478" OUT_PROTO=udp
[ "$DATAPLANE" = 1 ] && dp_before=$(dp_stats)
timeout 80 /usr/bin/python3 "$ROOT/tests/browser/cdp_webrtc.py" \
  --url "$OUT_URL" --user browser --password "$PASS" --relay-protocol "$OUT_PROTO" \
  --url-b "turn:$INT:3478" --user-b bridge --password-b "$PASS" --relay-ip "$EXT" --messages 200 \
  --cmd-b "ip netns exec $NS_I $CHROMIUM" --ready-file "$READY" --hold-file "$HOLD" --timeout 70 \
  --chromium-log "$TMP/chromium.log" -- ip netns exec "$NS_O" "$CHROMIUM" >"$TMP/call.log" 2>&1 &
call=$!; track_pid "$call"
for _ in $(seq 1 600); do [ -e "$READY" ] || ! kill -0 "$call" 2>/dev/null && break; sleep 0.1; done
grep -E '^(ok|NOT OK):|candidates:' "$TMP/call.log" | sed 's/^/    /'
expect "the call connected and every message arrived, relay to relay" test -e "$READY"

if [ "$DATAPLANE" = 1 ]; then
  echo "turn-dataplane during the call:"
  counts=$(/usr/bin/python3 - "$dp_before" "$(dp_stats)" <<'PY'
import json, sys
b = json.loads(sys.argv[1])['/dpturn/stats']; a = json.loads(sys.argv[2])['/dpturn/stats']
keys = ('rx_packets', 'tx_packets', 'hairpin', 'punted', 'punt_control', 'punt_no_neighbour', 'punt_unknown_flow')
print(' '.join(f"{k}={a.get(k, 0) - b.get(k, 0)}" for k in keys))
PY
)
  echo "    $counts"
  hp=$(sed -n 's/.*hairpin=\([0-9]*\).*/\1/p' <<<"$counts")
  expect "browser <-> bridge media went relay to relay on the fast path (hairpin $hp >= 200)" test "${hp:-0}" -ge 200
fi

step "Relay usage during the call"
usage=$(ctl usage); echo "$usage"
if [ "$DATAPLANE" = 1 ]; then
  dps=$(ctl status | sed -n '/^data planes/,$p'); echo "$dps"
  expect "turnctl status lists the data plane (edge1) as up" grep -qE "^  edge1	up" <<<"$dps"
fi
expect "relay usage lists the outside browser ($OUT, $OUT_URL)" grep -qE "^  browser  $OUT_PROTO $OUT:[0-9]+ -> relay $EXT:" <<<"$usage"
expect "relay usage lists the inside bridge ($IN, UDP 3478)" grep -qE "^  bridge  udp $IN:[0-9]+ -> relay $EXT:" <<<"$usage"

step "The call ends: the relays are released and relay usage is empty"
touch "$HOLD"
wait "$call"; rc=$?
expect "the browsers closed their peer connections (driver exit $rc)" test "$rc" = 0
for _ in $(seq 1 50); do
  usage=$(ctl usage)
  head -1 <<<"$usage" | grep -q '^0 active' && break
  sleep 0.1
done
echo "$usage"
expect "no active allocation left" grep -q '^0 active allocation' <<<"$usage"
if [ -n "${sid:-}" ]; then
  echo "\$ curl -X DELETE /api/v1/turn-servers/$sid"
  code=$(api DELETE "/api/v1/turn-servers/$sid" "" -o /dev/null -w '%{http_code}')
  echo "$code"
  expect "registration deleted" test "${code:0:1}" = 2
fi

echo
if [ "$FAILED" = 0 ]; then echo "lab: the whole story ran"; else echo "lab: some steps FAILED"; fi
exit "$FAILED"
