#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A real browser through dpturn: headless Chromium (Debian's) in a client
# network namespace opens two RTCPeerConnections with iceTransportPolicy
# "relay" and dpturn as the only ICE server (long-term credentials),
# exchanges data-channel messages each way and checks every one arrived,
# intact, over a relay<->relay candidate pair (tests/browser/cdp_webrtc.py,
# tests/browser/webrtc_relay.html). Both peer connections are in the same
# browser, so every packet goes relay -> relay inside the server (hairpin).
#
#   webrtc_relay_e2e.sh BUILD_DIR control     turn-control alone (UDP 3478, then TCP 443)
#   webrtc_relay_e2e.sh BUILD_DIR dataplane   turn-dataplane (net_af_packet, TAP exception
#                                             path) in front of turn-control; its telemetry
#                                             must show the relayed packets on the fast path;
#                                             then again after a data-plane restart
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
MODE=${2:?usage: $0 BUILD_DIR control|dataplane}
. "$HERE/../e2e/lib.sh"  # sets BUILD ($1), ROOT, the EXIT trap
need_root
CHROMIUM=$(command -v chromium || true)
if [ -z "$CHROMIUM" ] || [ ! -x "$PY" ]; then
  echo "SKIP: needs Debian's chromium and /usr/bin/python3 (scripts/setup.sh installs them)"
  exit 77
fi
TC=$BUILD/controlplane/turn-control
TOKEN=browser-token-0123456789abcdef
MSGS=${BROWSER_MSGS:-200}
USER=webrtc PASS=relay-only-pass-1

# chromium_relay NAME RELAY_IP udp|tcp TURN_URI... : one browser run, bounded.
chromium_relay() {
  local name=$1 relay=$2 proto=$3; shift 3
  local urls=()
  for u in "$@"; do urls+=(--url "$u"); done
  log "chromium ($name): ${*} as $USER, $MSGS messages each way"
  timeout 90 "$PY" "$HERE/cdp_webrtc.py" "${urls[@]}" --user "$USER" --password "$PASS" \
    --relay-ip "$relay" --relay-protocol "$proto" --messages "$MSGS" --timeout 75 --result "$E2E_TMP/result-$name.json" \
    --chromium-log "$E2E_TMP/chromium-$name.log" -- ip netns exec "$NS_C" "$CHROMIUM"
}

write_tc_conf() {  # listen-ip relay-ip extra-lines
  cat >"$E2E_TMP/tc.conf" <<CONF
listening-ip=$1
relay-ip=$2
listening-port=3478
alt-listening-port=443
min-port=49152
max-port=65535
realm=browser.dpturn.test
lt-cred-mech
legacy-channel-range
state-redis="ip=127.0.0.1 port=6379"
instance-id=browser-$MODE
admin-ip=127.0.0.1
admin-port=8080
admin-token=$TOKEN
relay-threads=1
$3
CONF
}

case "$MODE" in
control)
  # client ns 10.77.1.2 -- server ns: turn-control listens on 10.77.1.1,
  # relays on 10.77.2.1 (the Chromium side reaches it through the server).
  netns_up
  start_redis "$NS_S" 6379 || { fail "redis starts"; exit 1; }
  write_tc_conf "$S_CLIENT_IP" "$S_PEER_IP" ""
  start turn-control "$NS_S" "$TC" -c "$E2E_TMP/tc.conf"
  wait_port "$NS_S" udp "$S_CLIENT_IP:3478" 10 && wait_port "$NS_S" tcp "$S_CLIENT_IP:443" 10 \
    || { fail "turn-control listens"; exit 1; }
  # The credential comes from the admin API's local database, as an
  # operator would create it.
  check "credential created through the admin API" ctl user add "$USER" --password "$PASS"
  check "Chromium, UDP 3478: every message relayed, relay<->relay pair" \
    chromium_relay udp "$S_PEER_IP" udp "turn:$S_CLIENT_IP:3478"
  check "Chromium, TCP 443: every message relayed, relay<->relay pair" \
    chromium_relay tcp443 "$S_PEER_IP" tcp "turn:$S_CLIENT_IP:443?transport=tcp"
  # Chromium releases each relay (Refresh with lifetime 0) when a peer
  # connection closes: nothing stays behind in relay usage.
  for _ in $(seq 1 30); do usage=$(ctl usage); grep -q '^0 active allocation' <<<"$usage" && break; sleep 0.1; done
  check "every relay Chromium allocated is released after close ($(head -1 <<<"$usage"))" \
    grep -q '^0 active allocation' <<<"$usage"
  metrics=$(ctl metrics)
  check "turn-control counted the browser's allocations" \
    grep -qE '^dpturn_requests_total\{method="allocate",result="success"\} ([4-9]|[1-9][0-9]+)' <<<"$metrics"
  check "turn-control counted relayed packets" \
    grep -qE '^dpturn_relayed_packets_total\{[^}]*\} [1-9]' <<<"$metrics"
  ;;
dataplane)
  # As tests/e2e/dataplane_e2e.sh: client ns -- router ns -- server ns whose
  # eth0 is owned by turn-dataplane (net_af_packet); TAP dpt0 = 10.77.0.2
  # carries everything it does not fast-path to turn-control.
  dp_topology_up
  start_redis "$NS_S" 6379 || { fail "redis starts"; exit 1; }
  dp_write_conf "browser-$MODE"
  dp_start || { fail "TAP dpt0 created by turn-dataplane"; exit 1; }
  write_tc_conf "$SRV" "$SRV" "user=$USER:$PASS"
  tc_start || { fail "turn-control listens"; exit 1; }

  before=$(dp_stats) || { fail "turn-dataplane telemetry answers"; exit 1; }
  check "Chromium through turn-dataplane, UDP 3478: every message relayed, relay<->relay pair" \
    chromium_relay udp 10.77.0.2 udp "turn:10.77.0.2:3478"
  after=$(dp_stats)
  # Relayed packets through the fast path: the hairpin counter (relay ->
  # relay of the same server, never out the wire) and the paths it feeds.
  read -r hairpin fast punted drops share <<<"$("$PY" - "$before" "$after" <<'PY'
import json, sys
b = json.loads(sys.argv[1])['/dpturn/stats']; a = json.loads(sys.argv[2])['/dpturn/stats']
d = lambda k: a.get(k, 0) - b.get(k, 0)
fast = sum(d(k) for k in ('channel_data_to_peer', 'send_indication_to_peer', 'peer_to_client_channel_data',
                          'peer_to_client_data_indication', 'hairpin'))
drops = sum(d(k) for k in a if k.startswith('drop_') and isinstance(a[k], int))
data_punts = sum(d(k) for k in ('punt_unknown_flow', 'punt_expired', 'punt_no_permission', 'punt_no_neighbour'))
print(d('hairpin'), fast, d('punted'), drops, f"{100.0 * fast / max(1, fast + data_punts):.1f}")
print(' '.join(f"{k}={d(k)}" for k in sorted(a) if k.startswith('punt_') and d(k)), file=sys.stderr)
PY
)"
  echo "turn-dataplane during the browser run: hairpin $hairpin, fast-path packets $fast, punted $punted (all reasons), drops $drops"
  # 2 x 200 messages of 1-1400 bytes (~280 kB) need more than 200 SCTP
  # packets of at most ~1200 bytes, every one relay -> relay.
  check "relay->relay packets took the fast path (hairpin $hairpin >= $MSGS)" test "${hairpin:-0}" -ge "$MSGS"
  # The first packets of a flow (before turn-control has published its
  # permission/channel) go through the kernel; the rest must not.
  check ">= 90% of relayed packets on the fast path ($share%: fast $fast, data punts to the kernel)" \
    /usr/bin/python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) >= 90 else 1)" "${share:-0}"
  check "turn-dataplane still running" kill -0 "$PID_dataplane"

  # A data-plane restart (systemd's Restart=, docs/deployment.md): SIGTERM,
  # start again, the new TAP gets the address back through
  # deploy/systemd/dpturn-tap-up (the unit's ExecStartPost). turn-control,
  # untouched, keeps serving on that address, and the fast path is back.
  stop_pid "$PID_dataplane" TERM
  wait "$PID_dataplane"; rc=$?
  check "turn-dataplane stops cleanly on SIGTERM (exit $rc)" test "$rc" = 0
  eal_mem 256
  start dataplane "$NS_S" "$BUILD/dataplane/turn-dataplane" -l 0-1 "${EAL_MEM[@]}" --no-pci \
    --vdev=net_af_packet0,iface=eth0 --file-prefix="$DP_PREFIX" -- -c "$E2E_TMP/dp.conf"
  check "dpturn-tap-up gives the new TAP its address" \
    ip netns exec "$NS_S" "$ROOT/deploy/systemd/dpturn-tap-up" dpt0=10.77.0.2/24,10.77.0.1
  before=$(dp_stats)
  check "after the data-plane restart: Chromium again, every message relayed" \
    chromium_relay udp-restarted 10.77.0.2 udp "turn:10.77.0.2:3478"
  after=$(dp_stats)
  hairpin=$("$PY" -c 'import json,sys; print(json.loads(sys.argv[2])["/dpturn/stats"]["hairpin"] - json.loads(sys.argv[1])["/dpturn/stats"].get("hairpin", 0))' "$before" "$after")
  check "after the restart the relayed packets take the fast path again (hairpin $hairpin >= $MSGS)" \
    test "${hairpin:-0}" -ge "$MSGS"
  ;;
*) echo "unknown mode $MODE"; exit 2 ;;
esac
check "turn-control still running" kill -0 "$PID_turn_control"
finish
