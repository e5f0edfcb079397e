#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Checks that a scripts/bench.sh results directory is well formed: every CSV
# present has its expected columns, at least one row, numbers where numbers
# belong, and the data-plane rows show the fast path actually ran (packets
# forwarded, none punted). No timing thresholds: figures vary by machine.
#
#   bench/check_results.py DIR [REQUIRED_CSV ...]
import csv
import math
import os
import sys

DP_COLS = ["mode", "allocations", "payload", "frame_bytes", "workers", "testpmd_io_mpps", "dpturn_mpps",
           "testpmd_io_gbps", "dpturn_gbps", "ratio_io", "punted", "dropped", "heap_MiB"]
SCHEMAS = {
    "dp_payload.csv": DP_COLS, "dp_allocs.csv": DP_COLS, "dp_workers.csv": DP_COLS, "dp_paths.csv": DP_COLS,
    "vs_coturn.csv": ["server", "clients", "sent", "received", "lost", "loss_pct", "wire_pps_mean", "avg_rtt_ms",
                      "relayed_packets", "server_cpu_s", "cpu_s_per_mpkt", "cpu_s_per_mpkt_whole_core"],
    "alloc.csv": ["server", "cycles_per_s", "completed", "failed"],
    "dp_pipeline_bench.csv": ["name", "iterations", "cpu_time", "items_per_second"],
    "dp_table_bench.csv": ["name", "iterations", "cpu_time", "items_per_second", "entries", "table_MiB"],
}
NUMERIC = {"allocations", "payload", "frame_bytes", "workers", "testpmd_io_mpps", "dpturn_mpps", "testpmd_io_gbps",
           "dpturn_gbps", "ratio_io", "punted", "dropped", "clients", "sent", "received", "lost", "loss_pct",
           "wire_pps_mean", "relayed_packets", "server_cpu_s", "cycles_per_s", "completed", "iterations",
           "cpu_time", "items_per_second", "entries", "table_MiB"}
errors = []


def read(path):
    with open(path, newline="") as f:
        lines = f.read().splitlines()
    start = next((i for i, l in enumerate(lines) if l.startswith("name,")), 0)
    return csv.DictReader(lines[start:]).fieldnames or [], list(csv.DictReader(lines[start:]))


def check(name, path):
    cols, rows = read(path)
    missing = [c for c in SCHEMAS[name] if c not in cols]
    if missing:
        errors.append(f"{name}: missing columns {missing}")
        return
    if not rows:
        errors.append(f"{name}: no rows")
    for i, r in enumerate(rows, 1):
        if r.get("error_occurred") == "true":
            errors.append(f"{name} row {i} ({r.get('name')}): benchmark error: {r.get('error_message')}")
            continue
        for c in SCHEMAS[name]:
            v = r.get(c)
            if c in NUMERIC and v not in ("", None):
                try:
                    x = float(v)
                except ValueError:
                    errors.append(f"{name} row {i}: {c}={v!r} is not a number")
                    continue
                if math.isnan(x) or x < 0:
                    errors.append(f"{name} row {i}: {c}={v!r} is negative or NaN")
            elif c in NUMERIC and c not in ("avg_rtt_ms", "cpu_s_per_mpkt", "cpu_s_per_mpkt_whole_core",
                                             "items_per_second", "table_MiB", "entries"):
                errors.append(f"{name} row {i}: {c} is empty")
        if name == "vs_coturn.csv":
            check_vs_row(i, r)
        if name.startswith("dp_") and "dpturn_mpps" in r:
            if not float(r["dpturn_mpps"] or 0) > 0:
                errors.append(f"{name} row {i}: turn-dataplane forwarded nothing on path {r['mode']}")
            if not float(r["testpmd_io_mpps"] or 0) > 0:
                errors.append(f"{name} row {i}: testpmd io forwarded nothing")
            punted = int(float(r["punted"] or 0))
            # cd6 replays one ICMPv6 neighbour advertisement per pass over
            # its flows (gen_flows.py: the gateway's MAC is learned from it):
            # at most one punt per pass, over at most 60 s of measurement.
            allowed = 0
            if r["mode"] == "cd6":
                allowed = math.ceil(float(r["dpturn_mpps"] or 0) * 1e6 * 60 / max(1.0, float(r["allocations"] or 1)))
            if punted > allowed:
                errors.append(f"{name} row {i}: {r['punted']} frames punted (the input should all take the fast path"
                              + (f"; at most {allowed}, one neighbour advertisement per pass" if allowed else "") + ")")
    return rows


def check_vs_row(i, r):
    """The CPU-placement columns of bench-vs-coturn.sh (older CSVs lack them: not checked there)."""
    for c in ("pinned_nvcsw", "cpu_ratio_coturn_over_dpturn", "cpu1_other_s", "worker_busy_s"):
        v = r.get(c)
        if v not in ("", None):
            try:
                x = float(v)
            except ValueError:
                errors.append(f"vs_coturn.csv row {i}: {c}={v!r} is not a number")
                continue
            if math.isnan(x) or x < 0:
                errors.append(f"vs_coturn.csv row {i}: {c}={v!r} is negative or NaN")
    pinning = r.get("pinning")
    if pinning not in (None, "", "none") and r.get("placement") != "ok":
        errors.append(f"vs_coturn.csv row {i} ({r['server']} -m {r['clients']}): threads not where pinned: "
                      f"{r.get('placement')!r}")


def main():
    if len(sys.argv) < 2 or not os.path.isdir(sys.argv[1]):
        sys.exit("usage: bench/check_results.py DIR [REQUIRED_CSV ...]")
    d, required = sys.argv[1], sys.argv[2:]
    seen = 0
    for name in SCHEMAS:
        p = os.path.join(d, name)
        if os.path.exists(p):
            seen += 1
            check(name, p)
        elif name in required:
            errors.append(f"{name}: missing")
    for name in required:
        if name.endswith(".png"):
            p = os.path.join(d, name)
            if not os.path.exists(p) or open(p, "rb").read(8) != b"\x89PNG\r\n\x1a\n":
                errors.append(f"{name}: missing or not a PNG")
    for e in errors:
        print("FAIL:", e)
    print(f"check_results: {seen} CSVs checked, {len(errors)} problems")
    sys.exit(1 if errors or seen == 0 else 0)


if __name__ == "__main__":
    main()
