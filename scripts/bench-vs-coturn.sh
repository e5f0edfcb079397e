#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# dpturn vs coturn, side by side on the same machine, topology and client.
#
#   client ns (10.77.1.2) --+                       +-- server ns: eth0 10.77.0.2
#                           |-- router ns ----------|   coturn: the kernel owns eth0
#   peer ns   (10.77.2.2) --+   (10.77.{0,1,2}.1)   |   dpturn: turn-dataplane owns eth0
#                                                   +   (net_af_packet), turn-control
#                                                       behind its TAP (as in
#                                                       tests/e2e/dataplane_e2e.sh)
#
# The same load for each server: turnutils_uclient (channels, 200-byte
# messages) to turnutils_peer (which echoes), at increasing offered loads
# (-m clients, one message every -z ms each, -n messages each; uclient does
# not reach the nominal m x 1000/z, so the load actually offered is measured
# on the client's link: wire_pps). Per step and
# server: messages sent and received, loss, uclient's average round trip,
# server CPU seconds (utime+stime from /proc) per million relayed packets.
# Relayed packets = 2 x messages received back (client->peer and peer->
# client for each echo that completed), the same formula for both servers.
# dpturn's CPU: turn-control's /proc time plus turn-dataplane's, the latter
# two ways: (a) busy cycles of the workers (telemetry worker<i>_busy_cycles /
# tsc_hz, when the data plane reports them) plus the main lcore's and sync
# thread's /proc time; (b) the whole-process /proc time, which counts every
# poll-mode worker as 100% busy (the honest whole-core figure).
#
#   scripts/bench-vs-coturn.sh [--quick] [--steps "M:Z:N ..."] [--csv FILE] [--only dpturn|coturn]
#
# Each uclient run is bounded (timeout 90 s). Needs root (namespaces).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=/usr/bin/python3
BUILD=${BUILD:-build}
STEPS="10:1:2000 25:1:2000 50:1:2000 100:1:1500 200:1:1000 400:1:500"
CSV=""
ONLY=""
SIZE=200
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) STEPS="10:2:300 100:1:200"; shift ;;
    --steps) STEPS=$2; shift 2 ;;
    --csv) CSV=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --size) SIZE=$2; shift 2 ;;
    *) echo "bench-vs-coturn: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
if [ "$(id -u)" -ne 0 ]; then echo "bench-vs-coturn: needs root (network namespaces)" >&2; exit 77; fi
for t in turnutils_uclient turnutils_peer turnserver redis-server ethtool; do
  command -v $t >/dev/null || { echo "bench-vs-coturn: $t missing (scripts/setup.sh installs it)" >&2; exit 1; }
done

ID=$(( $$ % 100000 ))
NS_R="dpt-r-$ID" NS_S="dpt-s-$ID" NS_C="dpt-c-$ID" NS_P="dpt-p-$ID"
TMP=$(mktemp -d /tmp/dpturn-bench-vs.XXXXXX)
PIDS=()
PREFIX="dptbv$ID"
stop_all() {
  for p in "${PIDS[@]:-}"; do
    [ -n "$p" ] || continue
    kill -TERM "$p" 2>/dev/null || continue
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
  PIDS=()
}
topo_down() { for ns in "$NS_R" "$NS_S" "$NS_C" "$NS_P"; do ip netns del "$ns" 2>/dev/null || true; done; }
cleanup() { stop_all; topo_down; if [ -n "${KEEP:-}" ]; then echo "logs in $TMP"; else rm -rf "$TMP"; fi; }
trap cleanup EXIT

topo_up() {
  for ns in "$NS_R" "$NS_S" "$NS_C" "$NS_P"; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
  ip link add r0 netns "$NS_R" type veth peer name eth0 netns "$NS_S"
  ip link add r1 netns "$NS_R" type veth peer name eth0 netns "$NS_C"
  ip link add r2 netns "$NS_R" type veth peer name eth0 netns "$NS_P"
  ip -n "$NS_R" addr add 10.77.0.1/24 dev r0
  ip -n "$NS_R" addr add 10.77.1.1/24 dev r1
  ip -n "$NS_R" addr add 10.77.2.1/24 dev r2
  ip netns exec "$NS_R" sysctl -qw net.ipv4.ip_forward=1
  for i in r0 r1 r2; do ip -n "$NS_R" link set "$i" up; ip netns exec "$NS_R" ethtool -K "$i" tx off >/dev/null; done
  for pair in "$NS_C:10.77.1" "$NS_P:10.77.2"; do
    local ns=${pair%%:*} net=${pair##*:}
    ip -n "$ns" addr add "$net.2/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" route add default via "$net.1"
    ip netns exec "$ns" ethtool -K eth0 tx off >/dev/null
  done
  ip -n "$NS_S" link set eth0 up
  ip netns exec "$NS_S" ethtool -K eth0 tx off >/dev/null
}

start() {  # name ns cmd...
  local name=$1 ns=$2; shift 2
  ip netns exec "$ns" "$@" >"$TMP/$name.log" 2>&1 &
  PIDS+=($!)
  eval "PID_${name//-/_}=$!"
}
wait_udp() {  # ns ip:port
  for _ in $(seq 1 100); do ip netns exec "$1" ss -uln 2>/dev/null | grep -q " $2 " && return 0; sleep 0.1; done
  echo "bench-vs-coturn: nothing listens on $2" >&2; return 1
}
cpu_s() {  # pid -> utime+stime in seconds
  $PY - "$1" <<'PY'
import os, sys
f = open(f"/proc/{sys.argv[1]}/stat").read()
rest = f[f.rindex(")") + 2:].split()
print((int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK"))
PY
}
# /proc time of the threads of pid whose comm starts with one of the given
# prefixes (EAL names worker lcores "rte-worker-N" in DPDK 22.11,
# "dpdk-worker<N>" in 23.11 and later).
threads_cpu_s() {  # pid comm-prefix[,prefix...] -> summed seconds
  $PY - "$1" "$2" <<'PY'
import os, sys
pid, prefix = sys.argv[1], tuple(sys.argv[2].split(","))
tot = 0
for t in os.listdir(f"/proc/{pid}/task"):
    try:
        comm = open(f"/proc/{pid}/task/{t}/comm").read().strip()
        if comm.startswith(prefix):
            f = open(f"/proc/{pid}/task/{t}/stat").read()
            rest = f[f.rindex(")") + 2:].split()
            tot += int(rest[11]) + int(rest[12])
    except OSError:
        pass
print(tot / os.sysconf("SC_CLK_TCK"))
PY
}
# /dpturn/stats, /dpturn/workers and /ethdev/stats,0 merged into one JSON object.
dp_snap() {
  ip netns exec "$NS_S" $PY - "$ROOT/scripts/dp-telemetry.py" "$PREFIX" <<'PY' 2>/dev/null || echo '{}'
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("tel", sys.argv[1])
tel = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tel)
d = {}
for c in ("/dpturn/stats", "/dpturn/workers"):
    d.update(tel.query(sys.argv[2], c)[c])
# DPDK's own port counters: imissed = frames the PMD could not take in.
d.update({"eth_" + k: v for k, v in tel.query(sys.argv[2], "/ethdev/stats,0")["/ethdev/stats"].items()
          if isinstance(v, int)})
print(json.dumps(d))
PY
}
# UDP receive-buffer drops (kernel sockets) per namespace: client, peer, server.
rcvbuf_errs() {
  local out=""
  for ns in "$NS_C" "$NS_P" "$NS_S"; do
    out+="$(ip netns exec "$ns" awk '/^Udp:/ {n++; if (n == 1) {for (i = 1; i <= NF; i++) h[i] = $i} else {for (i = 1; i <= NF; i++) if (h[i] == "RcvbufErrors") print $i}}' /proc/net/snmp) "
  done
  echo "$out"
}
dp_tel() { ip netns exec "$NS_S" "$ROOT/scripts/dp-telemetry.py" --file-prefix "$PREFIX" "$@" 2>/dev/null; }

start_coturn() {
  ip -n "$NS_S" addr add 10.77.0.2/24 dev eth0
  ip -n "$NS_S" route add default via 10.77.0.1
  start coturn "$NS_S" turnserver -n --listening-ip=10.77.0.2 --listening-port=3478 --relay-ip=10.77.0.2 \
    --min-port=49152 --max-port=65535 --lt-cred-mech --user=bench:bench-password --realm=bench.test \
    --no-tls --no-dtls --no-cli --log-file=stdout --simple-log --no-stdout-log
  wait_udp "$NS_S" 10.77.0.2:3478
  SERVER_PIDS="$PID_coturn"
}

start_dpturn() {
  ip netns exec "$NS_S" sysctl -qw net.ipv4.conf.all.rp_filter=1 net.ipv4.conf.eth0.rp_filter=1
  ip -n "$NS_S" link set eth0 arp off
  start redis "$NS_S" redis-server --port 6379 --bind 127.0.0.1 --save '' --appendonly no --dir "$TMP"
  for _ in $(seq 1 50); do ip netns exec "$NS_S" redis-cli -p 6379 ping >/dev/null 2>&1 && break; sleep 0.1; done
  cat >"$TMP/dp.conf" <<CONF
ip=10.77.0.2/24
gateway=10.77.0.1
listening-port=3478
min-port=49152
max-port=65535
legacy-channel-range
tap=dpt0
state-redis="ip=127.0.0.1 port=6379"
instance-id=bench-vs
allocations=4096
channels=16384
CONF
  start dataplane "$NS_S" "$ROOT/$BUILD/dataplane/turn-dataplane" -l 0-1 --in-memory --no-pci \
    --vdev=net_af_packet0,iface=eth0 --file-prefix="$PREFIX" -- -c "$TMP/dp.conf"
  for _ in $(seq 1 100); do ip -n "$NS_S" link show dpt0 >/dev/null 2>&1 && break; sleep 0.1; done
  ip -n "$NS_S" addr add 10.77.0.2/24 dev dpt0
  ip -n "$NS_S" route add default via 10.77.0.1
  ip netns exec "$NS_S" ethtool -K dpt0 tx off >/dev/null
  cat >"$TMP/tc.conf" <<CONF
listening-ip=10.77.0.2
relay-ip=10.77.0.2
min-port=49152
max-port=65535
realm=bench.test
user=bench:bench-password
legacy-channel-range
state-redis="ip=127.0.0.1 port=6379"
instance-id=bench-vs
request-rate-limit=0
unauth-rate-limit=0
no-tls
CONF
  start turn-control "$NS_S" "$ROOT/$BUILD/controlplane/turn-control" -c "$TMP/tc.conf"
  wait_udp "$NS_S" 10.77.0.2:3478
  SERVER_PIDS="$PID_turn_control $PID_dataplane"
}

HEADER="server,clients,interval_ms,messages_per_client,offered_msgs_per_s,sent,received,lost,loss_pct,wire_pps_peak,wire_pps_mean,transmit_s,avg_rtt_ms,max_rtt_ms,relayed_packets,server_cpu_s,cpu_s_per_mpkt,dataplane_whole_cpu_s,cpu_s_per_mpkt_whole_core,dataplane_busy_s,dataplane_worker_busy_s,dataplane_worker_proc_s,fastpath_packets,dataplane_drops,rcvbuf_errors_client,rcvbuf_errors_peer,rcvbuf_errors_server,uclient_cpu_s,wall_s"
[ -n "$CSV" ] && { [ -s "$CSV" ] || echo "$HEADER" >"$CSV"; }

run_steps() {  # server-name
  local server=$1
  for step in $STEPS; do
    IFS=: read -r m z n <<<"$step"
    local tag="$server-$m-$z-$n"
    # CPU and counters before.
    local c0 d0 w0="" t0 tel0="{}"
    if [ "$server" = coturn ]; then c0=$(cpu_s "$PID_coturn"); d0=0
    else
      c0=$(cpu_s "$PID_turn_control"); d0=$(cpu_s "$PID_dataplane")
      w0=$(threads_cpu_s "$PID_dataplane" rte-worker,dpdk-worker,lcore-worker); tel0=$(dp_snap)
    fi
    # The offered load as it reaches the wire: packets from the client into
    # the router (r1 rx), sampled every 100 ms (uclient's own "transmit
    # time" has a fixed multi-second tail and 1 s resolution).
    ip netns exec "$NS_R" $PY -c '
import sys, time
f = "/sys/class/net/r1/statistics/rx_packets"
with open(sys.argv[1], "w") as o:
    while True:
        o.write(f"{time.time()} {open(f).read().strip()}\n"); o.flush(); time.sleep(0.1)
' "$TMP/wire-$tag" & local sampler=$!
    local e0; e0=$(rcvbuf_errs)
    t0=$(date +%s.%N)
    /usr/bin/time -f "%U %S" -o "$TMP/time-$tag" timeout 90 ip netns exec "$NS_C" turnutils_uclient -e 10.77.2.2 -r 3480 \
      -n "$n" -m "$m" -l "$SIZE" -z "$z" -c -u bench -w bench-password 10.77.0.2 >"$TMP/uclient-$tag.log" 2>&1 || true
    local t1; t1=$(date +%s.%N)
    kill $sampler 2>/dev/null || true; wait $sampler 2>/dev/null || true
    local e1; e1=$(rcvbuf_errs)
    local c1 d1 w1="" tel1="{}"
    if [ "$server" = coturn ]; then c1=$(cpu_s "$PID_coturn"); d1=0
    else
      c1=$(cpu_s "$PID_turn_control"); d1=$(cpu_s "$PID_dataplane")
      w1=$(threads_cpu_s "$PID_dataplane" rte-worker,dpdk-worker,lcore-worker); tel1=$(dp_snap)
    fi
    $PY - "$server" "$m" "$z" "$n" "$TMP/uclient-$tag.log" "$TMP/time-$tag" "$c0" "$c1" "$d0" "$d1" "${w0:-0}" "${w1:-0}" \
      "$tel0" "$tel1" "$t0" "$t1" "$CSV" "$TMP/wire-$tag" "$e0" "$e1" <<'PY'
import json, re, sys
(server, m, z, n, log, timef, c0, c1, d0, d1, w0, w1, tel0, tel1, t0, t1, csvf, wiref, e0, e1) = sys.argv[1:]
# Where loss happens: UDP sockets that overflowed, per namespace.
eb = [b - a for a, b in zip(map(int, e0.split()), map(int, e1.split()))] if e0.split() and e1.split() else ["", "", ""]
# Wire rate: the peak over 1 s windows, and the mean while sending (the
# span where the 1 s rate is above a tenth of the peak).
pts = [tuple(map(float, l.split())) for l in open(wiref) if len(l.split()) == 2]
rates = []
for i in range(len(pts)):
    j = next((k for k in range(i, len(pts)) if pts[k][0] - pts[i][0] >= 1.0), None)
    if j is None:
        break
    rates.append(((pts[j][1] - pts[i][1]) / (pts[j][0] - pts[i][0]), pts[i][0], pts[j][0]))
peak = max((r[0] for r in rates), default=0.0)
busy = [r for r in rates if r[0] >= peak / 10] if peak else []
if busy:
    ta, tb = busy[0][1], busy[-1][2]
    pa = next(p for p in pts if p[0] >= ta)[1]; pb = next(p for p in pts if p[0] >= tb)[1]
    wire_mean = (pb - pa) / max(1e-6, tb - ta)
else:
    wire_mean = 0.0
m, z, n = int(m), int(z), int(n)
text = open(log, errors="replace").read()
def last(pat, cast=float, default=None):
    r = re.findall(pat, text)
    return cast(r[-1]) if r else default
sent = last(r"tot_send_msgs=(\d+), tot_recv_msgs=\d+\s*$", int, None) or last(r"tot_send_msgs=(\d+)", int, 0)
recv = last(r"tot_recv_msgs=(\d+)\s*$", int, None)
if recv is None:
    recv = last(r"tot_recv_msgs=(\d+)", int, 0)
lost = last(r"Total lost packets (\d+)", int, None)
tx_s = last(r"Total transmit time is (\d+)", int, None)
rtt = last(r"Average round trip delay ([0-9.]+) ms", float, None)
rtt_max = last(r"Average round trip delay [0-9.]+ ms; min = [0-9.]+ ms, max = ([0-9.]+) ms", float, None)
complete = lost is not None
if lost is None:  # uclient did not finish (timeout): count what it did not get back
    lost = max(0, m * n - recv)
offered = m * 1000.0 / z
loss_pct = 100.0 * lost / max(1, m * n)
relayed = 2 * recv
ucpu = sum(map(float, open(timef).read().split()[-2:])) if open(timef).read().strip() else float("nan")
server_cpu = float(c1) - float(c0)
whole = float(d1) - float(d0)
t0, t1 = float(t0), float(t1)
fast = busy = dp_drops = ""
if server == "dpturn":
    a, b = json.loads(tel0), json.loads(tel1)
    dp_drops = sum(b[k] - a.get(k, 0) for k in b if k.startswith("drop_") or k in ("eth_imissed", "eth_ierrors",
                                                                                     "eth_oerrors", "eth_rx_nombuf"))
    keys = ("channel_data_to_peer", "send_indication_to_peer", "peer_to_client_channel_data",
            "peer_to_client_data_indication", "hairpin")
    fast = sum(b.get(k, 0) - a.get(k, 0) for k in keys)
    hz = b.get("tsc_hz") or next((v for k, v in b.items() if k.endswith("tsc_hz")), None)
    bc = [k for k in b if k.endswith("busy_cycles")]
    if hz and bc and float(w1) - float(w0) > 0:
        # Workers: busy cycles only; the rest of the process (main lcore,
        # sync thread, telemetry): its own /proc time.
        busy = sum(b[k] - a.get(k, 0) for k in bc) / float(hz)
        busy = busy + max(0.0, whole - (float(w1) - float(w0)))
    elif hz and bc:
        print("bench-vs-coturn: no worker threads found by name: busy-cycle CPU left blank", file=sys.stderr)
cpu = server_cpu + (busy if busy != "" else 0.0)
per = lambda c: round(c / (relayed / 1e6), 3) if relayed else ""
row = dict(server=server, clients=m, interval_ms=z, messages_per_client=n, offered_msgs_per_s=round(offered),
           sent=sent, received=recv, lost=lost, loss_pct=round(loss_pct, 3),
           wire_pps_peak=round(peak), wire_pps_mean=round(wire_mean), transmit_s=tx_s if tx_s is not None else "",
           avg_rtt_ms=rtt if rtt is not None else "", max_rtt_ms=rtt_max if rtt_max is not None else "",
           relayed_packets=relayed, server_cpu_s=round(cpu, 3),
           cpu_s_per_mpkt=per(cpu) if (server == "coturn" or busy != "") else "",
           dataplane_whole_cpu_s=round(whole, 3) if server == "dpturn" else "",
           cpu_s_per_mpkt_whole_core=per(server_cpu + whole) if server == "dpturn" else "",
           dataplane_busy_s=round(busy, 3) if busy != "" else "",
           dataplane_worker_busy_s=round(sum(b[k] - a.get(k, 0) for k in bc) / float(hz), 3) if busy != "" else "",
           dataplane_worker_proc_s=round(float(w1) - float(w0), 3) if server == "dpturn" else "", fastpath_packets=fast, dataplane_drops=dp_drops,
           rcvbuf_errors_client=eb[0], rcvbuf_errors_peer=eb[1], rcvbuf_errors_server=eb[2],
           uclient_cpu_s=round(ucpu, 2), wall_s=round(t1 - t0, 2))
print(f"{server:6} m={m:<4} z={z} n={n:<5} nominal={offered:>7.0f}/s wire={wire_mean:>6.0f}/s (peak {peak:.0f}) sent={sent} recv={recv} loss={loss_pct:.2f}% "
      f"rtt={rtt} ms cpu={cpu:.2f}s whole-core={row['cpu_s_per_mpkt_whole_core']} s/Mpkt "
      f"per-Mpkt={row['cpu_s_per_mpkt']} rcvbuf-drops(client,peer,server)={eb} dp-drops={dp_drops} uclient-cpu={ucpu:.2f}s wall={t1 - t0:.1f}s" + ("" if complete else " (uclient timed out)"))
if csvf:
    import csv
    with open(csvf, "a", newline="") as f:
        csv.DictWriter(f, fieldnames=list(row)).writerow(row)
PY
  done
}

for server in coturn dpturn; do
  [ -n "$ONLY" ] && [ "$ONLY" != "$server" ] && continue
  if [ "$server" = dpturn ] && [ ! -x "$BUILD/dataplane/turn-dataplane" ]; then
    echo "bench-vs-coturn: $BUILD/dataplane/turn-dataplane not built: skipping dpturn" >&2; continue
  fi
  topo_up
  start peer "$NS_P" turnutils_peer -L 10.77.2.2 -p 3480
  wait_udp "$NS_P" 10.77.2.2:3480
  "start_$server"
  sleep 1
  run_steps "$server"
  if [ "$server" = dpturn ]; then dp_tel /dpturn/stats >"$TMP/dp-final-stats.json" || true; fi
  stop_all
  topo_down
done
