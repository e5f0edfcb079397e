#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Markdown tables (as in bench/RESULTS.md) and the targets, computed
# from a scripts/bench.sh results directory.
#
#   bench/summarize.py RESULTS_DIR > summary.md
import csv
import os
import sys


def rows(path):
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        lines = f.read().splitlines()
    start = next((i for i, l in enumerate(lines) if l.startswith("name,")), 0)
    return list(csv.DictReader(lines[start:]))


def num(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return float("nan")


def table(header, body):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if i else "---" for i in range(len(header))) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in body]
    return "\n".join(out)


NAMES = {"cd": "ChannelData -> peer", "send": "Send indication -> peer", "peer-cd": "peer -> client ChannelData",
         "peer-di": "peer -> client Data indication", "cd6": "ChannelData -> peer, IPv6"}


def dp_section(d, name, title):
    r = rows(os.path.join(d, name + ".csv"))
    if not r:
        return None
    body = []
    for a in r:
        body.append([NAMES.get(a["mode"], a["mode"]), a["allocations"], a["payload"], a["frame_bytes"], a["workers"],
                     a["testpmd_io_mpps"], a.get("testpmd_5tswap_mpps", ""), a["dpturn_mpps"], a["testpmd_io_gbps"],
                     a["dpturn_gbps"], a["ratio_io"], a.get("ratio_5tswap", ""),
                     a.get("per_worker_mpps", "").replace(";", " / "), a["punted"], a["heap_MiB"], a["eal_mem"]])
    return f"### {title}\n\n" + table(
        ["path", "allocations", "payload B", "frame B", "workers", "testpmd io Mpps", "5tswap Mpps",
         "turn-dataplane Mpps", "io Gbit/s", "dpturn Gbit/s", "/ io", "/ 5tswap", "per worker Mpps", "punted",
         "heap MiB", "EAL memory"],
        body) + f"\n\n![{name}]({name}.png)\n"


def main():
    d = sys.argv[1]
    out = []
    for name, title in (("dp_paths", "Fast paths (same vdev, lcores and run as testpmd)"),
                        ("dp_payload", "Rate vs payload size"), ("dp_allocs", "Rate vs active allocations"),
                        ("dp_workers", "Rate vs worker lcores")):
        s = dp_section(d, name, title)
        if s:
            out.append(s)
    tb = rows(os.path.join(d, "dp_table_bench.csv"))
    if tb:
        body = [[a["name"], f"{1e9 / num(a['items_per_second']):.1f}", f"{num(a['items_per_second']) / 1e6:.2f}",
                 f"{num(a.get('table_MiB')):.1f}"] for a in tb if a.get("error_occurred") != "true"
                and not a["name"].endswith(("_mean", "_stddev", "_cv"))]
        out.append("### Tables (dp_table_bench)\n\n" + table(["benchmark / allocations", "ns per lookup or frame (CPU)",
                                                              "M items/s", "table MiB"], body) +
                   "\n\n![dp_table_bench](dp_table_bench.png)\n")
    pb = rows(os.path.join(d, "dp_pipeline_bench.csv"))
    if pb:
        body = [[a["name"], f"{num(a['cpu_time']):.1f}", f"{num(a['items_per_second']) / 1e6:.1f}"] for a in pb
                if not a["name"].endswith(("_mean", "_stddev", "_cv"))]
        out.append("### Per-packet functions (dp_pipeline_bench)\n\n" +
                   table(["benchmark / payload", "ns per frame (CPU)", "M frames/s"], body) + "\n")
    vs = rows(os.path.join(d, "vs_coturn.csv"))
    if vs:
        body = [[a["server"], a["clients"], a["interval_ms"], a["messages_per_client"], a["wire_pps_mean"],
                 a["sent"], a["received"], a["loss_pct"], a["avg_rtt_ms"], a["relayed_packets"], a["server_cpu_s"],
                 a["cpu_s_per_mpkt"], a["cpu_s_per_mpkt_whole_core"], a.get("cpu_ratio_coturn_over_dpturn", ""),
                 f"{a.get('worker_user_s', '')}/{a.get('worker_sys_s', '')}" if a["server"] == "dpturn" else
                 f"{a.get('server_user_s', '')}/{a.get('server_sys_s', '')}",
                 a.get("pinned_nvcsw", ""), a.get("cpu1_other_s", ""), a.get("dataplane_drops", ""),
                 f"{a.get('rcvbuf_errors_client', '')}/{a.get('rcvbuf_errors_peer', '')}/{a.get('rcvbuf_errors_server', '')}",
                 a["uclient_cpu_s"]] for a in vs]
        pin = sorted({a.get("pinning") or "not recorded" for a in vs})
        out.append("### dpturn vs coturn (turnutils_uclient)\n\n" + f"CPU placement: {', '.join(pin)}\n\n" + table(
            ["server", "-m", "-z", "-n", "offered pkt/s (wire)", "sent", "received", "loss %", "avg RTT ms",
             "relayed", "server CPU s", "CPU s / Mpkt", "CPU s / Mpkt whole-core", "coturn / dpturn",
             "user/sys s (dpturn: worker)", "invol. switches", "CPU 1 other s", "dp drops",
             "UDP rcvbuf drops c/p/s", "uclient CPU s"], body) + "\n\n![vs_coturn](vs_coturn.png)\n")
        # Targets: loss onset and CPU per packet.
        lines = []
        for server in ("coturn", "dpturn"):
            # A step where uclient sent nothing (timed out setting up) measures no load.
            s = sorted((a for a in vs if a["server"] == server and num(a["sent"]) > 0),
                       key=lambda a: num(a["wire_pps_mean"]))
            onset = next((a for a in s if num(a["loss_pct"]) > 0), None)
            lines.append(f"- {server}: loss starts at " + (f"{onset['wire_pps_mean']} client packets/s "
                                                             f"(-m {onset['clients']}: {onset['loss_pct']}%)" if onset
                                                             else "no step (no loss at any step)"))
        pairs = []
        for a in vs:
            if a["server"] != "coturn":
                continue
            b = next((x for x in vs if x["server"] == "dpturn" and x["clients"] == a["clients"] and
                      x["interval_ms"] == a["interval_ms"] and x["messages_per_client"] == a["messages_per_client"]),
                     None)
            if b and num(b["cpu_s_per_mpkt"]) > 0:
                pairs.append(f"-m {a['clients']}: {num(a['cpu_s_per_mpkt']) / num(b['cpu_s_per_mpkt']):.1f}x "
                             f"(busy cycles), {num(a['cpu_s_per_mpkt']) / num(b['cpu_s_per_mpkt_whole_core']):.2f}x "
                             f"(whole core)")
        if pairs:
            lines.append("- relayed packets per server CPU second, dpturn / coturn: " + "; ".join(pairs))
        out.append("\n".join(lines) + "\n")
    ov = rows(os.path.join(d, "overload.csv"))
    if ov:
        body = [[a["server"], a["rate_asked"], a["offered_pps"], a["delivered_pps"], a["loss_pct"],
                 f"{100.0 * max(0.0, num(a['offered']) - num(a['arrived'])) / num(a['offered']):.2f}"
                 if num(a["offered"]) > 0 else "", a["cpu_share"], a["cpu_user_s"], a["cpu_sys_s"],
                 a["cpu_softirq_s"], a.get("worker_busy_share", ""), a["pkts_per_cpu_s"], a.get("dp_ring_drops", ""),
                 a.get("dp_drops", ""), f"{a['backlog_drops_in']}/{a['backlog_drops_out']}"] for a in ov]
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "load"))
        import contextlib
        import io
        import overload_step
        head = io.StringIO()
        with contextlib.redirect_stdout(head):
            overload_step.summary(os.path.join(d, "overload.csv"))
        out.append("### dpturn vs coturn under overload (scripts/bench-overload.sh)\n\n" + table(
            ["server", "asked pps", "offered pps", "delivered pps", "loss %", "of it before the server %",
             "server CPU (share of its core)", "core user s", "core sys s", "core softirq s", "worker busy share",
             "relayed per server CPU-s", "af_packet ring drops", "dp drops", "backlog drops in/out"], body) +
            "\n\n" + "\n".join("- " + line for line in head.getvalue().splitlines()) + "\n\n![overload](overload.png)\n")
    al = rows(os.path.join(d, "alloc.csv"))
    if al:
        body = [[a["server"], a["cycles_per_s"], a["completed"], a["failed"]] for a in al]
        r = {a["server"]: num(a["cycles_per_s"]) for a in al}
        out.append("### Control plane: allocation cycles/s\n\n" + table(["server", "cycles/s", "completed", "failed"],
                                                                         body) +
                   (f"\n\nratio dpturn / coturn: {r['dpturn'] / r['coturn']:.2f}\n" if r.get("coturn") else "\n"))
    print("\n".join(out))


if __name__ == "__main__":
    main()
