#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Draws the PNG plots of a scripts/bench.sh results directory from its CSVs
# (needs python3-matplotlib: /usr/bin/python3, not a pyenv python).
#
#   bench/plot.py RESULTS_DIR
# Reads what is there (dp_payload.csv, dp_allocs.csv, dp_workers.csv,
# dp_paths.csv, vs_coturn.csv, overload.csv, dp_table_bench.csv); writes <name>.png next
# to each. Missing CSVs are skipped; a malformed one is an error.
import csv
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def rows(path):
    with open(path, newline="") as f:
        lines = f.read().splitlines()
    # Google Benchmark's --benchmark_out CSV starts with context lines.
    start = next((i for i, l in enumerate(lines) if l.startswith("name,")), 0)
    r = list(csv.DictReader(lines[start:]))
    if not r:
        raise SystemExit(f"plot.py: {path}: no rows")
    return r


def num(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return float("nan")


def dp_curve(d, name, xkey, xlabel, logx=False):
    path = os.path.join(d, name + ".csv")
    if not os.path.exists(path):
        return None
    r = rows(path)
    x = [num(a[xkey]) for a in r]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    ax.plot(x, [num(a["testpmd_io_mpps"]) for a in r], "o-", label="testpmd io")
    if any(a.get("testpmd_5tswap_mpps") for a in r):
        ax.plot(x, [num(a["testpmd_5tswap_mpps"]) for a in r], "s--", label="testpmd 5tswap")
    ax.plot(x, [num(a["dpturn_mpps"]) for a in r], "^-", label="turn-dataplane")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("Mpps")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend()
    ax2.plot(x, [num(a["ratio_io"]) for a in r], "^-", color="C2", label="turn-dataplane / testpmd io")
    ax2.axhline(0.8, color="red", ls=":", label="target 0.8")
    ax2.set_xlabel(xlabel)
    ax2.set_ylabel("ratio")
    ax2.set_ylim(0, 1.05)
    ax2.grid(alpha=0.3)
    ax2.legend()
    if logx:
        ax.set_xscale("log")
        ax2.set_xscale("log")
    a0 = r[0]
    fig.suptitle(f"{name}: mode {a0['mode']}, payload {a0['payload']} B, allocations {a0['allocations']}, "
                 f"workers {a0['workers']} (first point)", fontsize=9)
    fig.tight_layout()
    out = os.path.join(d, name + ".png")
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def dp_paths(d):
    path = os.path.join(d, "dp_paths.csv")
    if not os.path.exists(path):
        return None
    r = rows(path)
    labels = [a["mode"] for a in r]
    fig, ax = plt.subplots(figsize=(8, 4))
    xs = range(len(r))
    w = 0.38
    ax.bar([i - w / 2 for i in xs], [num(a["testpmd_io_mpps"]) for a in r], w, label="testpmd io")
    ax.bar([i + w / 2 for i in xs], [num(a["dpturn_mpps"]) for a in r], w, label="turn-dataplane")
    for i, a in enumerate(r):
        ax.text(i + w / 2, num(a["dpturn_mpps"]), f"{num(a['ratio_io']):.2f}", ha="center", va="bottom", fontsize=8)
    names = {"cd": "ChannelData->peer", "send": "Send ind.->peer", "peer-cd": "peer->ChannelData",
             "peer-di": "peer->Data ind.", "cd6": "ChannelData->peer v6"}
    ax.set_xticks(list(xs), [names.get(x, x) for x in labels])
    ax.set_ylabel("Mpps")
    ax.set_title(f"fast paths, {r[0]['allocations']} allocations, {r[0]['payload']} B payload (labels: / testpmd io)",
                 fontsize=9)
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    out = os.path.join(d, "dp_paths.png")
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def vs_coturn(d):
    path = os.path.join(d, "vs_coturn.csv")
    if not os.path.exists(path):
        return None
    r = rows(path)
    fig, axs = plt.subplots(1, 3, figsize=(14, 4))
    for server, mk in (("coturn", "o-"), ("dpturn", "^-")):
        # Steps where uclient sent nothing (it timed out) carry no figure.
        s = sorted((a for a in r if a["server"] == server and num(a["sent"]) > 0), key=lambda a: num(a["wire_pps_mean"]))
        if not s:
            continue
        x = [num(a["wire_pps_mean"]) for a in s]
        axs[0].plot(x, [num(a["loss_pct"]) for a in s], mk, label=server)
        axs[1].plot(x, [num(a["avg_rtt_ms"]) for a in s], mk, label=server)
        axs[2].plot(x, [num(a["cpu_s_per_mpkt"]) for a in s], mk, label=f"{server}")
        if server == "dpturn":
            axs[2].plot(x, [num(a["cpu_s_per_mpkt_whole_core"]) for a in s], "v:",
                        label="dpturn, whole-core (poll-mode worker counted 100%)")
    axs[0].set_ylabel("loss %")
    axs[1].set_ylabel("average RTT (ms, uclient)")
    axs[2].set_ylabel("server CPU s per million relayed packets")
    axs[2].set_yscale("log")
    for ax in axs:
        ax.set_xlabel("offered load: client packets/s on the wire (mean while sending)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("dpturn vs coturn, same namespaces topology and client", fontsize=10)
    fig.tight_layout()
    out = os.path.join(d, "vs_coturn.png")
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def overload(d):
    """Delivered against offered for each server (scripts/bench-overload.sh), the loss shaded."""
    path = os.path.join(d, "overload.csv")
    if not os.path.exists(path):
        return None
    r = rows(path)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    top = max(num(a["offered_pps"]) for a in r) / 1000
    low = min(num(a["offered_pps"]) for a in r) / 1000
    ax.plot([low, top], [low, top], color="grey", ls=":", lw=1, label="delivered = offered")
    styles = {"coturn": ("o-", "C3"), "dpturn": ("^-", "C0"), "dpturn-memif": ("s-", "C2"),
              "dpturn-dpdk": ("D-", "C1")}
    for server, (mk, col) in styles.items():
        s = sorted((a for a in r if a["server"] == server), key=lambda a: num(a["offered_pps"]))
        if not s:
            continue
        x = [num(a["offered_pps"]) / 1000 for a in s]
        y = [num(a["delivered_pps"]) / 1000 for a in s]
        label = {"dpturn": "dpturn (peer side: af_packet into a veth)",
                 "dpturn-memif": "dpturn (peer side: memif, no kernel)",
                 "dpturn-dpdk": "dpturn (both sides memif: no kernel on the path)"}.get(server, server)
        ax.plot(x, y, mk, color=col, label=label)
        ax.fill_between(x, y, x, color=col, alpha=0.15)  # the loss: offered minus delivered
        ax2.plot(x, [num(a["pkts_per_cpu_s"]) / 1000 for a in s], mk, color=col, label=label)
    ax.set_xlabel("offered (kpps, ChannelData from the client side)")
    ax.set_ylabel("delivered to the peer (kpps); shaded: lost")
    # Log scales: the kernel-bound steps (tens to hundreds of kpps) and the
    # memif-only variant's (up to millions) in one figure.
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    ax2.set_xlabel("offered (kpps)")
    ax2.set_xscale("log")
    ax2.set_ylabel("relayed packets per server CPU-second (thousands)")
    ax2.set_yscale("log")
    ax2.grid(alpha=0.3, which="both")
    ax2.legend(fontsize=8)
    a0 = r[0]
    fig.suptitle(f"dpturn vs coturn under overload: {a0['flows']} allocations, {a0['size']} B ChannelData, "
                 f"each server alone on one core", fontsize=10)
    fig.tight_layout()
    out = os.path.join(d, "overload.png")
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def table_bench(d):
    path = os.path.join(d, "dp_table_bench.csv")
    if not os.path.exists(path):
        return None
    r = rows(path)
    series = {}
    for a in r:
        name = a["name"]
        if "/" not in name or a.get("error_occurred") == "true":
            continue
        if name.endswith(("_mean", "_stddev", "_cv")):
            continue
        base, n = name.removesuffix("_median").rsplit("/", 1)
        if not n.isdigit():
            continue
        series.setdefault(base, []).append((int(n), 1e9 / num(a["items_per_second"])))
    if not series:
        return None
    fig, ax = plt.subplots(figsize=(8, 4))
    for base, pts in sorted(series.items()):
        pts.sort()
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=base)
    ax.set_xscale("log")
    ax.set_xlabel("allocations (each with a permission and a channel)")
    ax.set_ylabel("ns per lookup or frame (CPU)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("rte_hash tables (dp_table_bench)", fontsize=10)
    fig.tight_layout()
    out = os.path.join(d, "dp_table_bench.png")
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main():
    if len(sys.argv) != 2 or not os.path.isdir(sys.argv[1]):
        raise SystemExit("usage: bench/plot.py RESULTS_DIR")
    d = sys.argv[1]
    made = [dp_curve(d, "dp_payload", "payload", "UDP payload bytes"),
            dp_curve(d, "dp_allocs", "allocations", "active allocations", logx=True),
            dp_curve(d, "dp_workers", "workers", "worker lcores"),
            dp_paths(d), vs_coturn(d), overload(d), table_bench(d)]
    for m in made:
        if m:
            print(m)


if __name__ == "__main__":
    main()
