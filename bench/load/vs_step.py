#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# One step of scripts/bench-vs-coturn.sh: from the uclient log, the wire
# samples, the /proc snapshots (bench/load/proc_cpu.py snap) before and after
# and, for dpturn, the data plane's telemetry before and after, one CSV row
# and one printed line. Also `summary CSV...`: the side-by-side table.
#
#   vs_step.py step key=value ...   (keys: see main())
#   vs_step.py summary ROWS_CSV
#
# Server CPU, the same formula for both servers: seconds of CPU per million
# relayed packets, relayed = 2 x echoes received back by uclient. CPU time is
# the scheduler's exact per-thread run time (/proc/<pid>/task/<tid>/schedstat):
# utime/stime are sampled at the 250 Hz tick, and packet work that the
# client's 1 ms timer keeps in step with the tick escapes the sampling (the
# user/sys columns are those tick samples, for the split only).
#   coturn: run time of every thread of the process.
#   dpturn: the worker's busy cycles / tsc_hz (TSC time of the loop
#           iterations that moved a packet, kernel time of its tx sendto()
#           included) + the run time of turn-dataplane's other threads (main /
#           service lcore, sync thread, EAL threads), turn-control and
#           redis-server. The worker's idle polling is left out; the
#           "whole-core" figure counts it (the worker's run time).
# Busy cycles are wall time: they are CPU time only if the worker was not
# switched out inside a busy iteration, hence the worker's involuntary
# context switches and CPU 1's time spent on anything else are reported
# per step (pinned_nvcsw, cpu1_other_s).
import csv
import json
import math
import os
import re
import sys

WORKER_PREFIXES = ("lcore-worker", "rte-worker", "dpdk-worker")
HEADER = [
    "server", "clients", "interval_ms", "messages_per_client", "offered_msgs_per_s", "sent", "received", "lost",
    "loss_pct", "wire_pps_peak", "wire_pps_mean", "transmit_s", "avg_rtt_ms", "max_rtt_ms", "relayed_packets",
    "server_cpu_s", "cpu_s_per_mpkt", "dataplane_whole_cpu_s", "cpu_s_per_mpkt_whole_core",
    "cpu_ratio_coturn_over_dpturn", "cpu_ratio_whole_core", "server_user_s", "server_sys_s",
    "worker_busy_s", "worker_user_s", "worker_sys_s", "dataplane_other_s", "dataplane_other_threads",
    "turn_control_s", "redis_s",
    "pinned_threads", "pinned_nvcsw", "cpu1_busy_s", "cpu1_other_s", "cpu1_steal_s", "cpu0_busy_s", "pinning",
    "placement", "fastpath_packets", "dataplane_drops", "rcvbuf_errors_client", "rcvbuf_errors_peer",
    "rcvbuf_errors_server", "uclient_cpu_s", "load_1m", "wall_s", "snap_s"]


def wire_rates(path):
    """Peak over 1 s windows and mean while sending (1 s rate above a tenth of the peak)."""
    pts = [tuple(map(float, l.split())) for l in open(path) if len(l.split()) == 2]
    rates = []
    for i in range(len(pts)):
        j = next((k for k in range(i, len(pts)) if pts[k][0] - pts[i][0] >= 1.0), None)
        if j is None:
            break
        rates.append(((pts[j][1] - pts[i][1]) / (pts[j][0] - pts[i][0]), pts[i][0], pts[j][0]))
    peak = max((r[0] for r in rates), default=0.0)
    busy = [r for r in rates if r[0] >= peak / 10] if peak else []
    if not busy:
        return peak, 0.0
    ta, tb = busy[0][1], busy[-1][2]
    pa = next(p for p in pts if p[0] >= ta)[1]
    pb = next(p for p in pts if p[0] >= tb)[1]
    return peak, (pb - pa) / max(1e-6, tb - ta)


def uclient(path, m, n):
    text = open(path, errors="replace").read()

    def last(pat, cast=float, default=None):
        r = re.findall(pat, text)
        return cast(r[-1]) if r else default
    sent = last(r"tot_send_msgs=(\d+), tot_recv_msgs=\d+\s*$", int, None) or last(r"tot_send_msgs=(\d+)", int, 0)
    recv = last(r"tot_recv_msgs=(\d+)\s*$", int, None)
    if recv is None:
        recv = last(r"tot_recv_msgs=(\d+)", int, 0)
    lost = last(r"Total lost packets (\d+)", int, None)
    complete = lost is not None
    if lost is None:  # uclient did not finish (timeout): count what it did not get back
        lost = max(0, m * n - recv)
    return dict(sent=sent, recv=recv, lost=lost, complete=complete,
                tx_s=last(r"Total transmit time is (\d+)", int, None),
                rtt=last(r"Average round trip delay ([0-9.]+) ms", float, None),
                rtt_max=last(r"Average round trip delay [0-9.]+ ms; min = [0-9.]+ ms, max = ([0-9.]+) ms", float,
                             None))


def proc_delta(a, b, name):
    """(user, sys) seconds of process `name` between snapshots a and b."""
    pa, pb = a["procs"].get(name), b["procs"].get(name)
    if not pa or not pb:
        return 0.0, 0.0
    return pb["utime"] - pa["utime"], pb["stime"] - pa["stime"]


def thread_delta(a, b, name, tid):
    """(user, sys, involuntary switches, run) of one thread; a thread born meanwhile counts from 0."""
    ta = (a["procs"].get(name) or {}).get("threads", {}).get(tid)
    tb = (b["procs"].get(name) or {}).get("threads", {}).get(tid)
    if not tb:
        return 0.0, 0.0, 0, 0.0
    ta = ta or {"utime": 0.0, "stime": 0.0, "nvcsw": 0, "run": 0.0}
    return tb["utime"] - ta["utime"], tb["stime"] - ta["stime"], tb["nvcsw"] - ta["nvcsw"], tb["run"] - ta["run"]


def run_delta(a, b, name, skip=()):
    """Exact on-CPU seconds (schedstat) of process `name`'s threads, those in `skip` left out."""
    p = b["procs"].get(name)
    if not p:
        return 0.0
    return sum(thread_delta(a, b, name, tid)[3] for tid in p["threads"] if tid not in skip)


def cpu_busy(a, b, cpu):
    """(busy, steal) seconds of one CPU: user+nice+system+irq+softirq, steal."""
    ca, cb = a["cpus"].get(cpu), b["cpus"].get(cpu)
    if not ca or not cb:
        return float("nan"), float("nan")
    d = [y - x for x, y in zip(ca, cb)]
    return d[0] + d[1] + d[2] + d[5] + d[6], d[7]


def placement_check(snap, pinned, server_cpu, other_cpu, server_nice=""):
    """Violations of: pinned threads may run on server_cpu only (at nice server_nice when given), every other
    tracked thread on other_cpu only."""
    bad = []
    for name, p in snap["procs"].items():
        if not p:
            bad.append(f"{name} gone")
            continue
        for tid, t in p["threads"].items():
            want = server_cpu if (name, tid) in pinned else other_cpu
            if t["allowed"] != want:
                bad.append(f"{name}/{t['comm']} allowed {t['allowed']}")
            if (name, tid) in pinned and server_nice not in ("", None) and t.get("nice") != int(server_nice):
                bad.append(f"{name}/{t['comm']} nice {t.get('nice')}")
        group = p.get("autogroup", "")
        if group and server_nice not in ("", None) and any(n == name for n, _ in pinned) and \
                not group.endswith(f"nice {server_nice}"):
            bad.append(f"{name} {group}")
    return "ok" if not bad else "; ".join(sorted(set(bad)))


def rnd(x, d=3):
    return "" if x is None or x == "" or (isinstance(x, float) and math.isnan(x)) else round(x, d)


def coturn_row(rows_files, m, z, n):
    """The last coturn row of the same step in any of the given CSVs."""
    found = None
    for f in rows_files:
        if f and os.path.exists(f):
            for r in csv.DictReader(open(f, newline="")):
                if r.get("server") == "coturn" and (r["clients"], r["interval_ms"], r["messages_per_client"]) == (
                        str(m), str(z), str(n)):
                    found = r
    return found


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def step(kv):
    server = kv["server"]
    m, z, n = int(kv["m"]), int(kv["z"]), int(kv["n"])
    u = uclient(kv["log"], m, n)
    peak, wire_mean = wire_rates(kv["wire"])
    a, b = json.load(open(kv["snap0"])), json.load(open(kv["snap1"]))
    t0, t1 = float(kv["t0"]), float(kv["t1"])
    pinning = kv.get("pinning", "none")
    server_cpu_id, other_cpu_id = kv.get("server_cpu", ""), kv.get("other_cpu", "")
    relayed = 2 * u["recv"]
    timef = open(kv["time"]).read().split()
    ucpu = sum(map(float, timef[-2:])) if len(timef) >= 2 else float("nan")
    eb = ["", "", ""]
    if kv.get("e0", "").split() and kv.get("e1", "").split():
        eb = [y - x for x, y in zip(map(int, kv["e0"].split()), map(int, kv["e1"].split()))]
    cpu1_busy, cpu1_steal = cpu_busy(a, b, server_cpu_id or "1")
    cpu0_busy, _ = cpu_busy(a, b, other_cpu_id or "0")
    row = dict.fromkeys(HEADER, "")
    note = ""
    if server == "coturn":
        us, sy = proc_delta(a, b, "coturn")
        cpu = run_delta(a, b, "coturn")
        pinned = {("coturn", tid) for tid in b["procs"]["coturn"]["threads"]}
        nv = sum(thread_delta(a, b, "coturn", tid)[2] for _, tid in pinned)
        threads = f"coturn ({len(pinned)} threads)"
        pinned_time = cpu  # every coturn thread is on the server CPU
        whole = ""
        row.update(server_user_s=rnd(us), server_sys_s=rnd(sy))
    else:
        ta, tb = json.loads(kv["tel0"] or "{}"), json.loads(kv["tel1"] or "{}")
        dp = b["procs"]["dataplane"]
        workers = [tid for tid, t in dp["threads"].items() if t["comm"].startswith(WORKER_PREFIXES)]
        pinned = {("dataplane", tid) for tid in workers}
        wu = ws = wrun = 0.0
        nv = 0
        for tid in workers:
            x, y, c, r = thread_delta(a, b, "dataplane", tid)
            wu, ws, nv, wrun = wu + x, ws + y, nv + c, wrun + r
        du, ds = proc_delta(a, b, "dataplane")
        # The other threads one by one: main / service lcore (tid = pid), sync thread, EAL threads.
        parts = {}
        for tid, t in dp["threads"].items():
            if tid in workers:
                continue
            r = thread_delta(a, b, "dataplane", tid)[3]
            label = "main" if int(tid) == dp["pid"] else t["comm"]
            parts[label] = parts.get(label, 0.0) + r
        other = run_delta(a, b, "dataplane", skip=workers)
        cu, cs = proc_delta(a, b, "turn-control")
        ru, rs = proc_delta(a, b, "redis")
        crun, rrun = run_delta(a, b, "turn-control"), run_delta(a, b, "redis")
        hz = tb.get("tsc_hz")
        bc = [k for k in tb if k.endswith("busy_cycles")]
        busy = sum(tb[k] - ta.get(k, 0) for k in bc) / float(hz) if hz and bc else float("nan")
        if not workers or math.isnan(busy):
            note += " (no worker thread or no busy_cycles telemetry: busy-cycle CPU left blank)"
            cpu = float("nan")
        else:
            cpu = busy + other + crun + rrun
        whole = wrun + other + crun + rrun
        threads = "turn-dataplane " + ",".join(dp["threads"][t]["comm"] for t in workers)
        pinned_time = wrun
        keys = ("channel_data_to_peer", "send_indication_to_peer", "peer_to_client_channel_data",
                "peer_to_client_data_indication", "hairpin")
        drops = sum(tb[k] - ta.get(k, 0) for k in tb if k.startswith("drop_") or k in (
            "eth_imissed", "eth_ierrors", "eth_oerrors", "eth_rx_nombuf"))
        row.update(worker_busy_s=rnd(busy), worker_user_s=rnd(wu), worker_sys_s=rnd(ws), dataplane_other_s=rnd(other),
                   dataplane_other_threads=" ".join(f"{k}:{v:.2f}" for k, v in sorted(parts.items())),
                   turn_control_s=rnd(crun), redis_s=rnd(rrun), server_user_s=rnd(du + cu + ru),
                   server_sys_s=rnd(ds + cs + rs), dataplane_whole_cpu_s=rnd(wrun + other),
                   fastpath_packets=sum(tb.get(k, 0) - ta.get(k, 0) for k in keys), dataplane_drops=drops)
        if nv > 0:
            note += f" (worker switched out {nv} times: its busy cycles include that time)"

    def per(c):
        return rnd(c / (relayed / 1e6)) if relayed and c != "" and not math.isnan(c) else ""
    row.update(server=server, clients=m, interval_ms=z, messages_per_client=n, offered_msgs_per_s=round(m * 1000.0 / z),
               sent=u["sent"], received=u["recv"], lost=u["lost"], loss_pct=round(100.0 * u["lost"] / max(1, m * n), 3),
               wire_pps_peak=round(peak), wire_pps_mean=round(wire_mean), transmit_s=rnd(u["tx_s"]),
               avg_rtt_ms=rnd(u["rtt"], 6), max_rtt_ms=rnd(u["rtt_max"], 6), relayed_packets=relayed,
               server_cpu_s=rnd(cpu), cpu_s_per_mpkt=per(cpu),
               cpu_s_per_mpkt_whole_core=per(whole) if server == "dpturn" else "",
               pinned_threads=threads, pinned_nvcsw=nv, cpu1_busy_s=rnd(cpu1_busy),
               cpu1_other_s=rnd(max(0.0, cpu1_busy - pinned_time)) if pinning != "none" else "",
               cpu1_steal_s=rnd(cpu1_steal), cpu0_busy_s=rnd(cpu0_busy), pinning=pinning,
               placement=placement_check(b, pinned, server_cpu_id, other_cpu_id, kv.get("server_nice", "")) if pinning != "none" else "not pinned",
               rcvbuf_errors_client=eb[0], rcvbuf_errors_peer=eb[1], rcvbuf_errors_server=eb[2],
               uclient_cpu_s=rnd(ucpu, 2), load_1m=kv.get("load", ""), wall_s=round(t1 - t0, 2),
               snap_s=round(b["t"] - a["t"], 2))
    if server == "dpturn":
        c = coturn_row([kv.get("csv"), kv.get("rows")], m, z, n)
        if c and num(row["cpu_s_per_mpkt"]) > 0 and num(c["cpu_s_per_mpkt"]) > 0:
            row["cpu_ratio_coturn_over_dpturn"] = round(num(c["cpu_s_per_mpkt"]) / num(row["cpu_s_per_mpkt"]), 2)
        if c and num(row["cpu_s_per_mpkt_whole_core"]) > 0 and num(c["cpu_s_per_mpkt"]) > 0:
            row["cpu_ratio_whole_core"] = round(num(c["cpu_s_per_mpkt"]) / num(row["cpu_s_per_mpkt_whole_core"]), 2)
    print(f"{server:6} m={m:<4} z={z} n={n:<5} wire={wire_mean:>6.0f}/s (peak {peak:.0f}) sent={u['sent']} "
          f"recv={u['recv']} loss={row['loss_pct']}% rtt={u['rtt']} ms cpu={row['server_cpu_s']}s "
          f"per-Mpkt={row['cpu_s_per_mpkt']} whole-core={row['cpu_s_per_mpkt_whole_core'] or '-'} "
          f"coturn/dpturn={row['cpu_ratio_coturn_over_dpturn'] or '-'} nvcsw={nv} cpu1-other={row['cpu1_other_s'] if row['cpu1_other_s'] != '' else '-'}s "
          f"cpu0-busy={row['cpu0_busy_s']}s rcvbuf-drops(c,p,s)={eb} dp-drops={row['dataplane_drops'] if server == 'dpturn' else '-'} "
          f"uclient-cpu={ucpu:.2f}s wall={t1 - t0:.1f}s placement={row['placement']}" + note +
          ("" if u["complete"] else " (uclient timed out)"))
    for f in (kv.get("rows"), kv.get("csv")):
        if f:
            new = not os.path.exists(f) or os.path.getsize(f) == 0
            with open(f, "a", newline="") as o:
                w = csv.DictWriter(o, fieldnames=HEADER)
                if new:
                    w.writeheader()
                w.writerow(row)


def summary(path):
    rows = list(csv.DictReader(open(path, newline="")))
    print("step (-m:-z:-n)  | wire pkt/s coturn / dpturn | loss % coturn / dpturn | RTT ms coturn / dpturn | "
          "CPU s/Mpkt coturn / dpturn (whole core) | coturn/dpturn | dpturn worker user/sys s, nvcsw, CPU1 other s")
    for c in (r for r in rows if r["server"] == "coturn"):
        d = next((r for r in rows if r["server"] == "dpturn" and (r["clients"], r["interval_ms"],
                  r["messages_per_client"]) == (c["clients"], c["interval_ms"], c["messages_per_client"])), None)
        if not d:
            continue
        print(f"{c['clients']}:{c['interval_ms']}:{c['messages_per_client']:<10} | {c['wire_pps_mean']:>6} / "
              f"{d['wire_pps_mean']:<6} | {c['loss_pct']:>6} / {d['loss_pct']:<6} | {c['avg_rtt_ms'][:7]:>7} / "
              f"{d['avg_rtt_ms'][:7]:<7} | {c['cpu_s_per_mpkt']:>6} / {d['cpu_s_per_mpkt']} "
              f"({d['cpu_s_per_mpkt_whole_core']}) | {d['cpu_ratio_coturn_over_dpturn'] or '-'}x "
              f"({d['cpu_ratio_whole_core'] or '-'}x whole core) | {d['worker_user_s']}/{d['worker_sys_s']}, "
              f"{d['pinned_nvcsw']}, {d['cpu1_other_s']} (coturn: nvcsw {c['pinned_nvcsw']}, CPU1 other "
              f"{c['cpu1_other_s']})")


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "step":
        step(dict(a.split("=", 1) for a in sys.argv[2:]))
    elif len(sys.argv) == 3 and sys.argv[1] == "summary":
        summary(sys.argv[2])
    else:
        sys.exit("usage: vs_step.py step key=value ... | summary ROWS_CSV")


if __name__ == "__main__":
    main()
