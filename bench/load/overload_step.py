#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# The arithmetic of scripts/bench-overload.sh: snapshots around one step,
# one CSV row per step, the headline figures of a run.
#
#   overload_step.py snap NS_PEER NS_SERVER [DP_PREFIX]  > snap.json
#   overload_step.py step server=S rate=R blaster=JSON snap0=F snap1=F csv=F server_cpu=N other_cpu=N
#                         [arrived_from=worker]
#   overload_step.py summary CSV                          headline lines (also --quick's output)
#
# Delivered: the frames that reached the peer, counted on the peer's side
# and the same way for every server: the peer namespace's eth0 rx_packets
# (what the router handed to the peer host; a bound socket that is never
# read keeps ICMP away), or with a memif peer side, what blaster's sink
# port received. Offered: what blaster's tx port took (blaster.cpp).
# Arrived: what the server namespace's eth0 received; with
# arrived_from=worker (dpturn-dpdk, whose client side is a memif) the
# frames its workers received.
#
# CPU on the server's core (SERVER_CPU), from /proc/stat (ticks of 10 ms):
# user, system and softirq seconds during the step (cpu_*_s). What counts
# as the server's CPU (server_cpu_s):
#   coturn: everything on its core: its relay thread, its recvmsg and its
#           UDP sends, with the kernel work that runs inside them (the veth,
#           the router namespace's forwarding and the peer's receive). Its
#           socket receive (the kernel's way in) runs on the generator's
#           core, where the frames were sent, and is not counted;
#   dpturn: the worker's busy cycles / tsc_hz: the loop iterations that
#           moved packets, with everything the core did meanwhile (the
#           af_packet PMD's tx sendto() and the same kernel way to the peer
#           inside it). Idle polling is not counted (cpu_busy_s has the
#           whole core). Its af_packet ring fill (tpacket_rcv) runs on the
#           generator's core, not counted.
# kernel_s = system + softirq seconds on the core: for dpturn, the work
# that a NIC would not cost it (the af_packet tx and what follows it).
# xcore_rtt_ns_before/after: bench/load/xcore_rtt's cache-line round trip
# between SERVER_CPU and OTHER_CPU just before and after the step (given as
# xcore_rtt_ns=BEFORE/AFTER; empty where it could not run). On a VM it
# moves between two levels as the hypervisor places the vCPUs (on this
# project's 2-vCPU EPYC guest ~55-90 ns or ~330 ns), and every cost that
# crosses the two CPUs moves with it.
import csv
import json
import math
import os
import subprocess
import sys

HEADER = [
    "server", "rate_asked", "seconds", "flows", "size", "offered", "offered_pps", "refused", "arrived", "delivered",
    "delivered_pps", "loss_pct", "cpu_user_s", "cpu_sys_s", "cpu_softirq_s", "cpu_busy_s", "server_cpu_s",
    "cpu_share", "pkts_per_cpu_s", "kernel_s", "worker_busy_s", "worker_busy_share", "worker_rx", "worker_tx",
    "dp_ring_drops", "dp_drops", "server_rcvbuf_drops", "backlog_drops_in", "backlog_drops_out", "other_cpu_busy_s",
    "xcore_rtt_ns_before", "xcore_rtt_ns_after",
]
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from proc_cpu import cpu_lines  # noqa: E402  /proc/stat per CPU, in seconds


def softnet_drops():
    # /proc/net/softnet_stat: one line per CPU, second column = backlog drops (hex)
    with open("/proc/net/softnet_stat") as f:
        return [int(line.split()[1], 16) for line in f]


def netns_udp_rcvbuf_errors(ns):
    """UDP RcvbufErrors of a namespace (/proc/net/snmp): datagrams a full socket buffer dropped."""
    r = subprocess.run(["ip", "netns", "exec", ns, "cat", "/proc/net/snmp"], capture_output=True, text=True)
    udp = [line.split() for line in r.stdout.splitlines() if line.startswith("Udp:")]
    if len(udp) < 2 or "RcvbufErrors" not in udp[0]:
        return 0
    return int(udp[1][udp[0].index("RcvbufErrors")])


def netns_read(ns, path):
    r = subprocess.run(["ip", "netns", "exec", ns, "cat", path], capture_output=True, text=True)
    return int(r.stdout.strip() or 0)


def dp_snapshot(prefix):
    here = os.path.dirname(os.path.abspath(__file__))
    import importlib.util
    spec = importlib.util.spec_from_file_location("tel", os.path.join(here, "..", "..", "scripts", "dp-telemetry.py"))
    tel = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tel)
    d = {}
    for c in ("/dpturn/stats", "/dpturn/workers", "/dpturn/ports"):
        try:
            d.update(tel.query(prefix, c)[c])
        except Exception as e:  # the telemetry socket can be slow on a loaded host: say so, leave blanks
            d["error"] = f"{c}: {e}"
    return d


def snap(args):
    ns_peer, ns_server = args[0], args[1]
    s = {"cpu": cpu_lines(), "softnet": softnet_drops(),
         "peer_rx": netns_read(ns_peer, "/sys/class/net/eth0/statistics/rx_packets"),
         "server_rx": netns_read(ns_server, "/sys/class/net/eth0/statistics/rx_packets"),
         "server_rcvbuf": netns_udp_rcvbuf_errors(ns_server)}
    if len(args) > 2:
        s["dp"] = dp_snapshot(args[2])
    print(json.dumps(s))


def rnd(x, n=3):
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else round(x, n)


def step(kv):
    with open(kv["snap0"]) as f0, open(kv["snap1"]) as f1:
        a, b = json.load(f0), json.load(f1)
    bl = json.loads(kv["blaster"])
    sc, oc = kv["server_cpu"], kv["other_cpu"]

    def cpu_delta(cpu, idx):  # seconds
        return sum(b["cpu"][cpu][i] - a["cpu"][cpu][i] for i in idx)

    # /proc/stat: user nice system idle iowait irq softirq steal ...
    user, sys_, soft = cpu_delta(sc, [0, 1]), cpu_delta(sc, [2, 5]), cpu_delta(sc, [6])
    busy = user + sys_ + soft
    other_busy = cpu_delta(oc, [0, 1, 2, 5, 6])
    delivered = bl["sink"] if "sink" in bl else b["peer_rx"] - a["peer_rx"]
    offered = bl["offered"]
    secs = bl["seconds"]
    row = dict(server=kv["server"], rate_asked=bl["rate"], seconds=secs, flows=bl["flows"], size=bl["size"],
               offered=offered, offered_pps=round(offered / secs), refused=bl["refused"],
               arrived=b["server_rx"] - a["server_rx"], delivered=delivered,
               server_rcvbuf_drops=b.get("server_rcvbuf", 0) - a.get("server_rcvbuf", 0),
               delivered_pps=round(delivered / secs),
               loss_pct=rnd(100.0 * max(0, offered - delivered) / offered if offered else float("nan"), 3),
               cpu_user_s=rnd(user), cpu_sys_s=rnd(sys_), cpu_softirq_s=rnd(soft), cpu_busy_s=rnd(busy),
               kernel_s=rnd(sys_ + soft), other_cpu_busy_s=rnd(other_busy),
               backlog_drops_in=b["softnet"][int(oc)] - a["softnet"][int(oc)],
               backlog_drops_out=b["softnet"][int(sc)] - a["softnet"][int(sc)])
    rtt = kv.get("xcore_rtt_ns", "/").split("/")
    if len(rtt) != 2:
        sys.exit(f"overload_step.py: xcore_rtt_ns '{kv['xcore_rtt_ns']}' is not BEFORE/AFTER")
    row.update(xcore_rtt_ns_before=rtt[0], xcore_rtt_ns_after=rtt[1])
    if "dp" in b:
        da, db = a.get("dp", {}), b["dp"]
        hz = db.get("tsc_hz") or 0

        def d(key_end, start=""):
            return sum(db[k] - da.get(k, 0) for k in db
                       if k.startswith(start) and k.endswith(key_end) and isinstance(db[k], int))

        wbusy = d("busy_cycles", "worker") / hz if hz else float("nan")
        if kv.get("arrived_from") == "worker":
            row["arrived"] = d("_rx_packets", "worker")
        row.update(worker_busy_s=rnd(wbusy), worker_busy_share=rnd(wbusy / secs, 3), worker_rx=d("_rx_packets", "worker"),
                   worker_tx=d("_tx_packets", "worker"), dp_ring_drops=d("af_packet_rx_drops"),
                   dp_drops=sum(db[k] - da.get(k, 0) for k in db
                                if k.startswith("drop") and isinstance(db[k], int)))
        server_cpu = wbusy
    else:
        server_cpu = busy
    row.update(server_cpu_s=rnd(server_cpu), cpu_share=rnd(server_cpu / secs, 3),
               pkts_per_cpu_s=round(delivered / server_cpu) if server_cpu > 0 else "")
    new = not os.path.exists(kv["csv"]) or os.path.getsize(kv["csv"]) == 0
    with open(kv["csv"], "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=HEADER)
        if new:
            w.writeheader()
        w.writerow(row)
    extra = (f" worker busy {row['worker_busy_share']} ring drops {row['dp_ring_drops']}" if "dp" in b
             else f" socket buffer drops {row['server_rcvbuf_drops']}")
    print(f"{row['server']:>12} asked {bl['rate']:>9.0f} offered {row['offered_pps']:>8} pps delivered "
          f"{row['delivered_pps']:>8} pps loss {row['loss_pct']:>7}% cpu {row['cpu_share']} "
          f"(user {row['cpu_user_s']} sys {row['cpu_sys_s']} softirq {row['cpu_softirq_s']} s) "
          f"pkts/cpu-s {row['pkts_per_cpu_s']}{extra} arrived {row['arrived']} backlog drops in/out "
          f"{row['backlog_drops_in']}/{row['backlog_drops_out']}", flush=True)


def num(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return float("nan")


def summary(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    by = {}
    for r in rows:
        by.setdefault(r["server"], []).append(r)
    for rs in by.values():
        rs.sort(key=lambda r: num(r["offered_pps"]))
    cot = by.get("coturn", [])
    # coturn's loss step: the lowest step from which every step up to the
    # top lost more than 0.1% (where it starts to lose and does not stop).
    # A lower step that lost and was followed by one that did not is a
    # transient (a stall of its thread overflowing its socket buffer), named
    # apart, not taken as the point where its core runs out.
    losing = [num(r["loss_pct"]) > 0.1 for r in cot]
    first = next((i for i in range(len(cot)) if all(losing[i:])), None)
    lose = cot[first] if first is not None else None
    out = []
    if not cot:
        out.append("coturn: not run")
    elif lose is None:
        out.append(f"coturn loss step: none up to {cot[-1]['offered_pps']} pps offered (the top step lost no more "
                   f"than 0.1%)")
    else:
        out.append(f"coturn loss step: {lose['offered_pps']} pps offered, {lose['loss_pct']}% lost, "
                   f"{lose['delivered_pps']} pps delivered at {lose['cpu_share']} of its core")
    blips = [r for r, lost in zip(cot[:first] if first is not None else cot, losing) if lost]
    if blips:
        out.append("coturn lost more than 0.1% below its loss step too, at a step followed by one without loss: "
                   + ", ".join(f"{r['loss_pct']}% at {r['offered_pps']} pps" for r in blips))

    def before(r):  # lost on the way in, before the server's interface
        o, a = num(r["offered"]), num(r.get("arrived"))
        return f"{100.0 * max(0.0, o - a) / o:.2f}%" if o > 0 and not math.isnan(a) else "?"

    def xcore(d, ref):  # the two steps' cross-CPU round trips, where measured
        def one(r):
            b, a = r.get("xcore_rtt_ns_before") or "", r.get("xcore_rtt_ns_after") or ""
            return f"{b}/{a}" if b or a else ""
        x, y = one(d), one(ref)
        return f"; cross-CPU round trip {x} ns, coturn's step {y} ns" if x or y else ""

    def nearest(rs, pps):
        return min(rs, key=lambda r: abs(num(r["offered_pps"]) - pps)) if rs else None

    def twice(rs, base):  # the lowest step that offered 2x base (a paced step may fall short by 2%), or None
        at = [r for r in rs if num(r["offered_pps"]) >= 0.98 * 2 * base]
        return min(at, key=lambda r: num(r["offered_pps"])) if at else None

    for name in ("dpturn", "dpturn-memif", "dpturn-dpdk"):
        rs = by.get(name, [])
        if not rs:
            continue
        if lose is not None:
            base = num(lose["offered_pps"])
            at1, at2 = nearest(rs, base), twice(rs, base)
            if at2 is not None:
                second = f"at 2x: {at2['loss_pct']}% of {at2['offered_pps']} pps"
            else:  # the generator never offered 2x: say so, and what it did offer at its top
                at2 = max(rs, key=lambda r: num(r["offered_pps"]))
                second = (f"2x not reached, at the generator's top ({num(at2['offered_pps']) / base:.1f}x): "
                          f"{at2['loss_pct']}% of {at2['offered_pps']} pps")
            out.append(f"{name} loss at the coturn loss step: {at1['loss_pct']}% of {at1['offered_pps']} pps; "
                       f"{second} ({before(at1)} and {before(at2)} of it before the server)")
        top = max(rs, key=lambda r: num(r["delivered_pps"]))
        refused = num(top.get("refused"))
        # A memif client side refuses what its full ring cannot take (the
        # server's backpressure): say how much, beside what was asked.
        pushed = (f"; {int(refused)} frames refused by the server's full memif ring, of "
                  f"{float(top['rate_asked']) * num(top['seconds']):.0f} asked" if refused > 0 and name == "dpturn-dpdk"
                  else "")
        out.append(f"{name} most delivered: {top['delivered_pps']} pps of {top['offered_pps']} offered "
                   f"({top['loss_pct']}% lost, worker busy {top['worker_busy_share']}{pushed})")
        # Packets per CPU-second at the same offered load: coturn's loss step
        # (coturn's core is full there), or its highest step if it never lost.
        ref = lose if lose is not None else (cot[-1] if cot else None)
        if ref is not None:
            d = nearest(rs, num(ref["offered_pps"]))
            ratio = num(d["pkts_per_cpu_s"]) / num(ref["pkts_per_cpu_s"])
            out.append(f"pkts per server CPU-second, {name} / coturn at {ref['offered_pps']} pps offered: "
                       f"{ratio:.1f}x ({d['pkts_per_cpu_s']} / {ref['pkts_per_cpu_s']}; dpturn: worker busy cycles, kernel "
                       f"{d['kernel_s']} s of its core's time; coturn: its whole core{xcore(d, ref)})")
        # And at the highest load offered to both (the generator's top step):
        # each server at its own best, coturn saturated, dpturn as loaded as
        # the generator could make it.
        if cot:
            tc, td = cot[-1], rs[-1]
            ratio = num(td["pkts_per_cpu_s"]) / num(tc["pkts_per_cpu_s"])
            out.append(f"pkts per server CPU-second, {name} / coturn at the top step ({td['offered_pps']} / "
                       f"{tc['offered_pps']} pps offered): {ratio:.1f}x ({td['pkts_per_cpu_s']} / {tc['pkts_per_cpu_s']}"
                       f"{xcore(td, tc)})")
    print("\n".join(out))


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "snap":
        snap(args)
    elif cmd == "step":
        step(dict(a.split("=", 1) for a in args))
    elif cmd == "summary":
        summary(args[0])
    else:
        sys.exit(f"overload_step.py: unknown command {cmd}")


if __name__ == "__main__":
    main()
