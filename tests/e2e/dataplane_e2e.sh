#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# turn-dataplane end to end, in network namespaces this test creates:
#
#   client ns (10.77.1.2) --+                       +-- server ns: eth0 owned by
#                           |-- router ns ----------|   turn-dataplane (net_af_packet),
#   peer ns   (10.77.2.2) --+   (10.77.{0,1,2}.1)   |   TAP dpt0 = 10.77.0.2 with
#                                                   +   turn-control + redis behind it
#
# coturn's turnutils_uclient (channels and Send-indication modes) relays
# through dpturn to turnutils_peer: zero loss, and the data plane's counters
# show that at least 99% of the relayed packets took the fast path. Then
# Redis is killed mid-run: established flows keep forwarding.
#
#   tests/e2e/dataplane_e2e.sh BUILD_DIR
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"  # sets BUILD ($1), ROOT, the EXIT trap
need_root

MSGS=${E2E_MSGS:-300}

dp_stack_up || exit 1
start_peer peer 10.77.2.2 || exit 1

uclient() {  # name args... -> zero loss
  local name=$1; shift
  uclient_run "$name" -n "$MSGS" -m 2 -l 170 -z 5 -c "$@"
}

# Fast-path share: relayed packets on the fast path / all relayed packets
# (fast path + turn-control's kernel path, read from turn-control's own
# counters would need the admin API; the data plane's punt counters for
# data flows are the complement here).
fast_share() {  # before after -> percent of data packets fast-pathed
  python3 - "$1" "$2" <<'PY'
import json, sys
b = json.loads(sys.argv[1])['/dpturn/stats']; a = json.loads(sys.argv[2])['/dpturn/stats']
d = lambda k: a.get(k, 0) - b.get(k, 0)
fast = sum(d(k) for k in ('channel_data_to_peer', 'send_indication_to_peer', 'peer_to_client_channel_data',
                          'peer_to_client_data_indication', 'hairpin'))
slow = sum(d(k) for k in ('punt_unknown_flow', 'punt_expired', 'punt_no_permission', 'punt_no_neighbour'))
print(f"{fast} {slow} {100.0 * fast / max(1, fast + slow):.2f}")
PY
}

before=$(dp_stats)
check "channels: zero loss through turn-dataplane" uclient channels
after=$(dp_stats)
read -r fast slow share <<<"$(fast_share "$before" "$after")"
echo "channels: fast path $fast, kernel path $slow, share $share%"
check "channels: >= 99% of relayed packets on the fast path ($share%)" python3 -c "import sys; sys.exit(0 if $share >= 99 and $fast >= 4 * $MSGS * 0.99 else 1)"
# A loss in front of the worker is visible: the af_packet PMD's rx ring
# figures (tp_packets, tp_drops) are in the port's telemetry.
ports=$(dp_stats /dpturn/ports)
read -r offered ring_drops <<<"$(python3 -c "import json,sys; d=json.load(sys.stdin)['/dpturn/ports']; print(d.get('port0_af_packet_rx_offered', -1), d.get('port0_af_packet_rx_drops', -1))" <<<"$ports")"
check "telemetry has the af_packet rx ring's figures (offered $offered, dropped $ring_drops)" \
  test "$offered" -ge "$fast" -a "$ring_drops" -ge 0

# turn-control sees the data plane: status lists it, /metrics counts the fast path.
sleep 1.5  # the data plane publishes its counters every second
status=$(ctl status); echo "$status" | tail -3
check "turnctl status lists the data plane as up" grep -qE "^  $E2E_INSTANCE	up	1 worker" <<<"$status"
metrics=$(ctl metrics)
check "/metrics counts fast-path packets from the data plane" \
  grep -qE '^dpturn_relayed_packets_total\{direction="to_peer",path="fast",dataplane="'"$E2E_INSTANCE"'"\} [1-9]' <<<"$metrics"
check "/metrics counts fast-path bytes from the data plane" \
  grep -qE '^dpturn_relayed_bytes_total\{direction="to_peer",path="fast",dataplane="'"$E2E_INSTANCE"'"\} [1-9]' <<<"$metrics"
check "/metrics has the data plane's per-worker load" grep -qE '^dpturn_dataplane_polls_total\{worker="0",result="busy",dataplane="'"$E2E_INSTANCE"'"\} [1-9]' <<<"$metrics"

before=$(dp_stats)
check "Send indications: zero loss through turn-dataplane" uclient send -s
after=$(dp_stats)
read -r fast slow share <<<"$(fast_share "$before" "$after")"
echo "send: fast path $fast, kernel path $slow, share $share%"
check "Send indications: >= 99% on the fast path ($share%)" python3 -c "import sys; sys.exit(0 if $share >= 99 and $fast >= 4 * $MSGS * 0.99 else 1)"

# Redis killed in the middle of relaying: established flows keep forwarding.
timeout 60 ip netns exec "$NS_C" turnutils_uclient -e 10.77.2.2 -r 3480 -n 600 -m 1 -l 170 -z 10 -c \
  -u alice -w wonderland-42 $SRV >"$E2E_TMP/uclient-redis-down.log" 2>&1 &
uc=$!
sleep 2
# Relay usage (turnctl usage, /api/v1/allocations) counts the fast path: this
# live flow's allocation carries the data plane's per-allocation dp_*
# counters, pushed to Redis every second.
fastpath_usage() {
  ctl usage --json | python3 -c '
import json, sys
d = [a[k] for a in json.load(sys.stdin)["allocations"] for k in ("to_peer", "to_client")]
print(sum(x["fastpath_packets"] for x in d), sum(x["fastpath_bytes"] for x in d))'
}
for _ in $(seq 1 30); do read -r fp_pkts fp_bytes <<<"$(fastpath_usage)"; [ "${fp_pkts:-0}" -gt 0 ] && break; sleep 0.1; done
usage=$(ctl usage); echo "$usage" | grep -E '^[0-9]|fast path [1-9]'
check "turnctl usage counts the live flow's fast-path traffic ($fp_pkts pkt, $fp_bytes B)" \
  test "${fp_pkts:-0}" -gt 0 -a "${fp_bytes:-0}" -ge $((${fp_pkts:-0} * 170))
check "turnctl usage shows the fast-path share of that allocation" \
  grep -qE '^  alice  udp 10\.77\.1\.2:[0-9]+ -> relay .* to peer [1-9][0-9]* pkt/[1-9][0-9]* B \(fast path [1-9]' <<<"$usage"
stop_pid "$PID_redis" KILL
sleep 2
wait $uc
lost=$(sed -n 's/.*Total lost packets \([0-9]*\).*/\1/p' "$E2E_TMP/uclient-redis-down.log" | tail -1)
recv=$(sed -n 's/.*tot_recv_msgs=\([0-9]*\)$/\1/p' "$E2E_TMP/uclient-redis-down.log" | tail -1)
echo "redis killed mid-run: received=${recv:-?} lost=${lost:-?}"
check "Redis killed mid-run: established flow loses nothing" test "${lost:-x}" = 0 -a "${recv:-0}" = 600
s=$(dp_stats)
check "data plane reports the state store as disconnected" test "$(dp_stat sync_connected "$s")" = 0
check "no malformed drops or tx drops" test "$(dp_stat drop_tx_full "$s")" = 0

check "turn-dataplane still running (no crash)" kill -0 "$PID_dataplane"
# Graceful stop: SIGTERM ends turn-dataplane with exit status 0.
stop_pid "$PID_dataplane" TERM
wait "$PID_dataplane"; rc=$?
check "turn-dataplane stops cleanly on SIGTERM (exit $rc)" test "$rc" = 0
finish
