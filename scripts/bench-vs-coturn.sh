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
# on the client's link: wire_pps). Per step and server: messages sent and
# received, loss, uclient's average round trip, server CPU seconds per
# million relayed packets. Relayed packets = 2 x messages received back
# (client->peer and peer->client for each echo that completed), the same
# formula for both servers.
#
# CPU placement, the same for both servers (recorded per step: pinning,
# placement, and the table in the log): the server's packet-moving
# thread(s) alone on SERVER_CPU (default 1): coturn's whole process
# (--relay-threads=COTURN_RELAY_THREADS, default 1), turn-dataplane's worker
# lcore. Everything else on OTHER_CPU (default 0): turnutils_uclient,
# turnutils_peer, redis-server, turn-control, turn-dataplane's main/service
# lcore, sync thread and EAL threads, this script's samplers.
#
# Server CPU (bench/load/vs_step.py has the details):
#   coturn: run time of the whole process (every thread).
#   dpturn: worker busy cycles / tsc_hz (TSC time of the loop iterations
#           that moved packets, /dpturn/workers) + turn-dataplane's other
#           threads + turn-control + redis-server. Whole-core: the same
#           with the worker's run time (idle polling included).
# Run time = the scheduler's exact on-CPU time per thread
# (/proc/PID/task/TID/schedstat); utime/stime are sampled at the tick and
# miss work that the client's timers keep in step with it.
# Busy cycles are CPU time only while the worker is not switched out: per
# step the worker's involuntary context switches (pinned_nvcsw) and the time
# CPU 1 spent on anything but the pinned thread(s) (cpu1_other_s) say so.
# worker_user_s / worker_sys_s: the worker thread's tick-sampled user and
# system time (system: the af_packet PMD's sendto() per tx burst, in which
# the kernel forwards the frame through the veth and router namespace).
# --perf DIR profiles the pinned thread(s) during each step (perf record -e
# cpu-clock -g) and writes the user / kernel split, which the tick samples
# get wrong.
#
#   scripts/bench-vs-coturn.sh [--quick] [--steps "M:Z:N ..."] [--csv FILE] [--only dpturn|coturn]
#                              [--no-pin] [--perf DIR]
#   env: SERVER_CPU=1 OTHER_CPU=0 SERVER_NICE=-20 OTHER_NICE=-10 COTURN_RELAY_THREADS=1 BUILD=build
#
# SERVER_NICE: the pinned server thread(s) run at this nice value (both
# servers alike), so that another job that lands on SERVER_CPU on a shared
# host gets ~1% of it instead of half; OTHER_NICE: the same for everything
# else of the test on OTHER_CPU (client, peer, turn-control, ...), so that
# the offered load depends less on other jobs; "" leaves them at 0.
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
PIN=1
PERF_DIR=""
SERVER_CPU=${SERVER_CPU:-1}
OTHER_CPU=${OTHER_CPU:-0}
COTURN_RELAY_THREADS=${COTURN_RELAY_THREADS:-1}
SERVER_NICE=${SERVER_NICE--20}
OTHER_NICE=${OTHER_NICE--10}
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) STEPS="10:2:300 100:1:200"; shift ;;
    --steps) STEPS=$2; shift 2 ;;
    --csv) CSV=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --size) SIZE=$2; shift 2 ;;
    --no-pin) PIN=0; shift ;;
    --perf) PERF_DIR=$2; shift 2 ;;
    *) echo "bench-vs-coturn: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
if [ $PIN = 1 ] && ! taskset -c "$SERVER_CPU,$OTHER_CPU" true 2>/dev/null; then
  echo "bench-vs-coturn: cannot pin to CPUs $SERVER_CPU and $OTHER_CPU here (nproc $(nproc)): running unpinned" >&2
  PIN=0
fi
if [ $PIN = 1 ]; then
  [ "$SERVER_CPU" != "$OTHER_CPU" ] || { echo "bench-vs-coturn: SERVER_CPU and OTHER_CPU must differ" >&2; exit 2; }
  PIN_OTHER="${OTHER_NICE:+nice -n $OTHER_NICE }taskset -c $OTHER_CPU"
  DP_CORES=(--lcores "0@$OTHER_CPU,1@$SERVER_CPU")
  PINNING="server:$SERVER_CPU${SERVER_NICE:+ nice $SERVER_NICE} rest:$OTHER_CPU${OTHER_NICE:+ nice $OTHER_NICE}"
else
  PIN_OTHER=""
  DP_CORES=(-l 0-1)
  PINNING="none"
  SERVER_CPU="" OTHER_CPU="" SERVER_NICE="" OTHER_NICE=""
fi
# Everything of the test but the servers runs in this script's session.
if [ -n "$OTHER_NICE" ] && [ -w /proc/$$/autogroup ]; then echo "$OTHER_NICE" >/proc/$$/autogroup 2>/dev/null || true; fi
if [ -n "$PERF_DIR" ]; then
  command -v perf >/dev/null || { echo "bench-vs-coturn: --perf needs perf (linux-perf)" >&2; exit 1; }
  mkdir -p "$PERF_DIR"; PERF_DIR=$(cd "$PERF_DIR" && pwd)
fi
if [ "$(id -u)" -ne 0 ]; then echo "bench-vs-coturn: needs root (network namespaces)" >&2; exit 77; fi
for t in turnutils_uclient turnutils_peer turnserver redis-server ethtool; do
  command -v $t >/dev/null || { echo "bench-vs-coturn: $t missing (scripts/setup.sh installs it)" >&2; exit 1; }
done

. "$ROOT/scripts/lib/bench_servers.sh"  # bench_bed, start, start_coturn, start_dpturn, dp_snap, worker_tids
bench_bed vs
cleanup() { stop_procs; topo_down; dpdk_prefix_clean "$PREFIX"; if [ -n "${KEEP:-}" ]; then echo "logs in $TMP"; else rm -rf "$TMP"; fi; }
trap cleanup EXIT

# UDP receive-buffer drops (kernel sockets) per namespace: client, peer, server.
rcvbuf_errs() {
  local out=""
  for ns in "$NS_C" "$NS_P" "$NS_S"; do
    out+="$(ip netns exec "$ns" awk '/^Udp:/ {n++; if (n == 1) {for (i = 1; i <= NF; i++) h[i] = $i} else {for (i = 1; i <= NF; i++) if (h[i] == "RcvbufErrors") print $i}}' /proc/net/snmp) "
  done
  echo "$out"
}
dp_tel() { ip netns exec "$NS_S" "$ROOT/scripts/dp-telemetry.py" --file-prefix "$PREFIX" "$@" 2>/dev/null; }

PROCCPU="$PY $ROOT/bench/load/proc_cpu.py"
ROWS="$TMP/rows.csv"
[ -n "$CSV" ] && { [ -s "$CSV" ] || echo "$("$PY" -c 'import sys; sys.path.insert(0, sys.argv[1]); import vs_step; print(",".join(vs_step.HEADER))' "$ROOT/bench/load")" >"$CSV"; }

tracked() {  # the NAME=PID list whose CPU and placement are measured
  if [ "$1" = coturn ]; then echo "coturn=$PID_coturn peer=$PID_peer"
  else echo "dataplane=$PID_dataplane turn-control=$PID_turn_control redis=$PID_redis peer=$PID_peer"; fi
}
run_steps() {  # server-name
  local server=$1 first=1
  for step in $STEPS; do
    IFS=: read -r m z n <<<"$step"
    local tag="$server-$m-$z-$n"
    local load; load=$(cut -d' ' -f1 /proc/loadavg)
    local tel0="{}" tel1="{}"
    [ "$server" = dpturn ] && tel0=$(dp_snap)
    # The offered load as it reaches the wire: packets from the client into
    # the router (r1 rx), sampled every 100 ms (uclient's own "transmit
    # time" has a fixed multi-second tail and 1 s resolution).
    $PIN_OTHER ip netns exec "$NS_R" $PY -c '
import sys, time
f = "/sys/class/net/r1/statistics/rx_packets"
with open(sys.argv[1], "w") as o:
    while True:
        o.write(f"{time.time()} {open(f).read().strip()}\n"); o.flush(); time.sleep(0.1)
' "$TMP/wire-$tag" & local sampler=$!
    local e0; e0=$(rcvbuf_errs)
    # The /proc snapshots right around uclient (the telemetry queries, slow
    # on a loaded host, outside them).
    # shellcheck disable=SC2046
    $PROCCPU snap $(tracked "$server") >"$TMP/snap0-$tag"
    local t0; t0=$(date +%s.%N)
    $PIN_OTHER /usr/bin/time -f "%U %S" -o "$TMP/time-$tag" timeout 90 ip netns exec "$NS_C" turnutils_uclient -e 10.77.2.2 -r 3480 \
      -n "$n" -m "$m" -l "$SIZE" -z "$z" -c -u bench -w bench-password 10.77.0.2 >"$TMP/uclient-$tag.log" 2>&1 &
    local uc=$! perfpid=""
    if [ -n "$PERF_DIR" ]; then
      local target
      if [ "$server" = coturn ]; then target=(-p "$PID_coturn"); else target=(-t "$(worker_tids | paste -sd,)"); fi
      $PIN_OTHER perf record -q -e cpu-clock -g "${target[@]}" -o "$TMP/perf-$tag.data" >/dev/null 2>&1 & perfpid=$!
    fi
    if [ $first = 1 ]; then
      # Where every thread runs, uclient's included, once the load runs.
      sleep 2
      local ucl="" p
      for p in $($PROCCPU descendants "$uc"); do ucl+=" uclient-tree-$p=$p"; done
      # shellcheck disable=SC2046
      { echo "placement during $tag ($PINNING):"; $PROCCPU placement $(tracked "$server") $ucl; } | tee -a "$TMP/placement.txt"
      first=0
    fi
    wait "$uc" || true
    local t1; t1=$(date +%s.%N)
    # shellcheck disable=SC2046
    $PROCCPU snap $(tracked "$server") >"$TMP/snap1-$tag"
    if [ -n "$perfpid" ]; then kill -INT "$perfpid" 2>/dev/null || true; wait "$perfpid" 2>/dev/null || true; fi
    kill $sampler 2>/dev/null || true; wait $sampler 2>/dev/null || true
    local e1; e1=$(rcvbuf_errs)
    [ "$server" = dpturn ] && tel1=$(dp_snap)
    $PY "$ROOT/bench/load/vs_step.py" step server="$server" m="$m" z="$z" n="$n" log="$TMP/uclient-$tag.log" \
      time="$TMP/time-$tag" wire="$TMP/wire-$tag" snap0="$TMP/snap0-$tag" snap1="$TMP/snap1-$tag" \
      tel0="$tel0" tel1="$tel1" t0="$t0" t1="$t1" e0="$e0" e1="$e1" csv="$CSV" rows="$ROWS" load="$load" \
      pinning="$PINNING" server_cpu="$SERVER_CPU" other_cpu="$OTHER_CPU" server_nice="$SERVER_NICE"
    if [ -n "$perfpid" ]; then perf_report "$tag"; fi
  done
}

# The perf profile of the server's pinned thread(s) during one step: the
# user / kernel split, and the kernel time under each system call (tx
# sendto() of the af_packet PMD, coturn's sendmsg/recvmsg, the TAP's read).
perf_report() {  # tag
  local d="$TMP/perf-$1.data" o="$PERF_DIR/perf-$1.txt"
  [ -s "$d" ] || { echo "perf: no samples for $1" >&2; return 0; }
  perf report -i "$d" --stdio --no-children --sort dso 2>/dev/null >"$TMP/perf-dso-$1.txt" || true
  {
    echo "# perf record -e cpu-clock -g on the pinned server thread(s) during step $1"
    $PY - "$TMP/perf-dso-$1.txt" "$ROWS" <<'PY'
import csv, re, sys
text = open(sys.argv[1]).read()
ns = re.search(r"Event count \(approx\.\): (\d+)", text)
total = int(ns.group(1)) / 1e9 if ns else float("nan")  # cpu-clock counts nanoseconds
kern = sum(float(p) for p, dso in re.findall(r"^\s+([0-9.]+)%\s+(\S+)", text, re.M) if dso == "[kernel.kallsyms]")
row = list(csv.DictReader(open(sys.argv[2])))[-1]
print(f"## sampled {total:.3f} s of the thread(s); kernel {kern:.2f}% = {kern * total / 100:.3f} s, "
      f"user {100 - kern:.2f}% = {(100 - kern) * total / 100:.3f} s")
if row["server"] == "dpturn":
    print(f"## worker busy cycles this step {row['worker_busy_s']} s: outside the kernel "
          f"{float(row['worker_busy_s']) - kern * total / 100:.3f} s (the kernel part is all in busy iterations "
          f"if the system calls below are the tx sendto()); relayed {row['relayed_packets']}")
else:
    print(f"## coturn CPU this step {row['server_cpu_s']} s; relayed {row['relayed_packets']}")
PY
    echo "## user / kernel split (samples by dso, self time)"
    grep -E '^ +[0-9]' "$TMP/perf-dso-$1.txt" | head -10 || true
    echo "## kernel entry points (time including callees)"
    perf report -i "$d" --stdio --children --sort sym -g none 2>/dev/null \
      | grep -E '\[k\] (__x64_sys_|do_syscall_64|handle_softirqs|__do_softirq|net_rx_action|asm_sysvec|asm_common_interrupt|veth_xmit|__dev_queue_xmit|ip_forward|udp_queue_rcv_one_skb|tpacket_rcv|packet_sendmsg|udp_sendmsg)' | head -30 || true
    echo "## top symbols (self)"
    perf report -i "$d" --stdio --no-children --sort dso,sym -g none 2>/dev/null | grep -E '^ +[0-9]' | head -25 || true
  } >"$o"
  rm -f "$d"
  echo "perf profile: $o"; sed -n '2,3p' "$o"
}

for server in coturn dpturn; do
  [ -n "$ONLY" ] && [ "$ONLY" != "$server" ] && continue
  if [ "$server" = dpturn ] && [ ! -x "$BUILD/dataplane/turn-dataplane" ]; then
    echo "bench-vs-coturn: $BUILD/dataplane/turn-dataplane not built: skipping dpturn" >&2; continue
  fi
  routed_topology_up "$NS_R" "$NS_S" "$NS_C" "$NS_P"
  start peer "$NS_P" "$OTHER_CPU" "$OTHER_NICE" turnutils_peer -L 10.77.2.2 -p 3480
  wait_udp "$NS_P" 10.77.2.2:3480
  "start_$server"
  sleep 1
  # shellcheck disable=SC2046
  { echo "placement after start ($PINNING):"; $PROCCPU placement $(tracked "$server"); } | tee -a "$TMP/placement.txt"
  run_steps "$server"
  if [ "$server" = dpturn ]; then dp_tel /dpturn/stats >"$TMP/dp-final-stats.json" || true; fi
  stop_procs
  topo_down
done
echo
echo "pinning: $PINNING; coturn relay threads: $COTURN_RELAY_THREADS"
[ -s "$ROWS" ] && $PY "$ROOT/bench/load/vs_step.py" summary "$ROWS"
