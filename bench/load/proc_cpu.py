#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# CPU accounting from /proc for scripts/bench-vs-coturn.sh: per-process and
# per-thread user/system time, context switches, the CPU each thread last ran
# on and the CPUs it may run on, plus the per-CPU lines of /proc/stat.
#
#   proc_cpu.py snap NAME=PID ...        one JSON snapshot on stdout
#   proc_cpu.py placement NAME=PID ...   a table: every thread, its CPU
#                                        (psr) and its allowed CPUs
#   proc_cpu.py descendants PID          PID and every process below it
#
# Times are in seconds: utime/stime in clock ticks / SC_CLK_TCK (sampled at
# the tick), run = /proc/<pid>/task/<tid>/schedstat's first field (the
# scheduler's exact on-CPU time, user + kernel + softirq work done in the
# thread's context). /proc/<pid>/stat of the process counts the time of
# threads that already exited; the per-thread entries do not.
import json
import os
import sys
import time

TCK = os.sysconf("SC_CLK_TCK")


def stat_fields(path):
    """Fields of a /proc stat file after the comm, 0-based from 'state'."""
    s = open(path).read()
    return s[s.rindex(")") + 2:].split()


def status(path):
    out = {}
    for line in open(path):
        k, _, v = line.partition(":")
        out[k] = v.strip()
    return out


def thread(pid, tid):
    base = f"/proc/{pid}/task/{tid}"
    f = stat_fields(base + "/stat")
    st = status(base + "/status")
    return {"comm": open(base + "/comm").read().strip(),
            "utime": int(f[11]) / TCK, "stime": int(f[12]) / TCK,
            "psr": int(f[36]),  # field 39 of stat: the CPU it last ran on
            "nice": int(f[16]),
            # The scheduler's exact run time (sum_exec_runtime, ns): utime and
            # stime are sampled at the tick (250 Hz here) and miss work that
            # keeps in step with the tick, as timer-driven packet bursts do.
            "run": int(open(base + "/schedstat").read().split()[0]) / 1e9,
            "allowed": st.get("Cpus_allowed_list", ""),
            "nvcsw": int(st.get("nonvoluntary_ctxt_switches", 0)),
            "vcsw": int(st.get("voluntary_ctxt_switches", 0))}


def proc(pid):
    f = stat_fields(f"/proc/{pid}/stat")
    threads = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            threads[tid] = thread(pid, tid)
        except (OSError, ValueError):
            pass  # exited meanwhile
    try:
        group = open(f"/proc/{pid}/autogroup").read().strip()  # "/autogroup-N nice K" (sched autogroup)
    except OSError:
        group = ""
    return {"pid": int(pid), "comm": open(f"/proc/{pid}/comm").read().strip(), "autogroup": group,
            "run": sum(t["run"] for t in threads.values()),
            "utime": int(f[11]) / TCK, "stime": int(f[12]) / TCK, "threads": threads}


def cpu_lines():
    """/proc/stat per-CPU times in seconds: user nice system idle iowait irq softirq steal."""
    out = {}
    for line in open("/proc/stat"):
        p = line.split()
        if p[0].startswith("cpu") and p[0] != "cpu":
            out[p[0][3:]] = [int(x) / TCK for x in p[1:9]]
    return out


def parse(args):
    procs = {}
    for a in args:
        name, _, pid = a.partition("=")
        if pid:
            procs[name] = pid
    return procs


def snap(args):
    d = {"t": time.time(), "cpus": cpu_lines(), "procs": {}}
    for name, pid in parse(args).items():
        try:
            d["procs"][name] = proc(pid)
        except OSError:
            d["procs"][name] = None
    print(json.dumps(d))


def placement(args):
    print(f"{'process':14} {'pid':>7} {'tid':>7} {'thread':16} {'psr':>3} {'allowed':8} {'nice':>4} {'run s':>8} {'user s':>8} {'sys s':>8} "
          f"{'nvcsw':>7}")
    for name, pid in parse(args).items():
        try:
            p = proc(pid)
        except OSError:
            print(f"{name:14} {pid:>7} (gone)")
            continue
        if p["autogroup"]:
            print(f"{name:14} {pid:>7} {'':>7} ({p['autogroup']})")
        for tid, t in sorted(p["threads"].items(), key=lambda kv: int(kv[0])):
            print(f"{name:14} {pid:>7} {tid:>7} {t['comm']:16} {t['psr']:>3} {t['allowed']:8} {t['nice']:>4} {t['run']:8.2f} {t['utime']:8.2f} "
                  f"{t['stime']:8.2f} {t['nvcsw']:>7}")


def descendants(pid):
    children = {}
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                children.setdefault(stat_fields(f"/proc/{p}/stat")[1], []).append(p)
            except OSError:
                pass
    out, todo = [], [str(pid)]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    print(" ".join(out))


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in ("snap", "placement", "descendants"):
        sys.exit("usage: proc_cpu.py snap|placement NAME=PID ... | descendants PID")
    {"snap": snap, "placement": placement, "descendants": lambda a: descendants(a[0])}[sys.argv[1]](sys.argv[2:])
