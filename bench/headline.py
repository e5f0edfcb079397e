#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# The headline ratios of a scripts/bench.sh results directory, one line
# each (what `scripts/bench.sh --quick` ends with), from its CSVs:
#   - overload (overload.csv, scripts/bench-overload.sh): the step where
#     coturn starts to lose, dpturn's loss there and at twice that load, and
#     relayed packets per server CPU-second, dpturn / coturn, for the
#     all-veth, the memif peer side and memif on both sides (dpturn-dpdk);
#   - 1M / 1k allocations (dp_allocs.csv): turn-dataplane's rate with 1M
#     active allocations over its rate with 1k, same vdev, same run; and
#     the fast path's alone (dp_table_bench.csv, DecideBurst32: the
#     worker's decide_burst over the real tables, no vdev);
#   - 2 / 1 workers (dp_workers.csv);
#   - IPv6 / IPv4 ChannelData (dp_paths.csv, modes cd6 and cd).
# A figure whose CSV or rows are missing says so instead.
#
#   bench/headline.py RESULTS_DIR
import csv
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "load"))
import overload_step  # noqa: E402


def rows(path):
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def num(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return float("nan")


def ratio_line(label, rs, key, a, b, what):
    pa = next((r for r in rs if r[key] == a), None)
    pb = next((r for r in rs if r[key] == b), None)
    if not pa or not pb:
        return f"{label}: not measured (no {key}={a} and {key}={b} rows)"
    ra, rb = num(pa["dpturn_mpps"]), num(pb["dpturn_mpps"])
    return f"{label}: {ra / rb:.2f} ({ra:.2f} / {rb:.2f} Mpps {what})"


def gbench_items(path, name):
    """items_per_second of a Google Benchmark CSV row: NAME itself, or its
    _median aggregate (runs with --benchmark_repetitions)."""
    if not os.path.exists(path):
        return None
    with open(path, newline="") as f:
        lines = f.read().splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("name,")), None)
    if start is None:
        return None
    for r in csv.DictReader(lines[start:]):
        if r["name"] in (name, name + "_median") and not r.get("error_occurred"):
            return num(r["items_per_second"])
    return None


def burst_line(path):
    big = gbench_items(path, "DecideBurst32/ChannelDataToPeer/1000000")
    small = gbench_items(path, "DecideBurst32/ChannelDataToPeer/1000")
    if not big or not small:
        return "1M / 1k allocations, fast path alone: not measured (no DecideBurst32 rows in dp_table_bench.csv)"
    return (f"1M / 1k allocations, fast path alone: {big / small:.2f} ({1e9 / big:.0f} / {1e9 / small:.0f} ns a frame, "
            "dp_table_bench DecideBurst32: decide_burst over the real tables, no vdev)")


def main():
    if len(sys.argv) != 2 or not os.path.isdir(sys.argv[1]):
        raise SystemExit("usage: bench/headline.py RESULTS_DIR")
    d = sys.argv[1]
    ov = os.path.join(d, "overload.csv")
    if rows(ov):
        overload_step.summary(ov)
    else:
        print("overload: not measured (no overload.csv)")
    print(ratio_line("1M / 1k allocations", rows(os.path.join(d, "dp_allocs.csv")), "allocations", "1000000", "1000",
                     "turn-dataplane, 1 worker, ChannelData"))
    print(burst_line(os.path.join(d, "dp_table_bench.csv")))
    print(ratio_line("2 / 1 workers", rows(os.path.join(d, "dp_workers.csv")), "workers", "2", "1",
                     "turn-dataplane, 10k allocations"))
    print(ratio_line("IPv6 / IPv4 ChannelData", rows(os.path.join(d, "dp_paths.csv")), "mode", "cd6", "cd",
                     "turn-dataplane, 1 worker"))


if __name__ == "__main__":
    main()
