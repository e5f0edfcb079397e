#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# The overload benchmark's arithmetic (bench/load/overload_step.py) on
# made-up snapshots and rows: what a step row says, which step is coturn's
# loss step, what dpturn's loss and the CPU ratio are read from; and
# turn_flows' refusals of bad arguments. No timing, no network.
#
#   overload_step_test.py [TURN_FLOWS_BINARY]
import contextlib
import csv
import io
import json
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import overload_step  # noqa: E402

TURN_FLOWS = sys.argv.pop(1) if len(sys.argv) > 1 else None
def cpu(user, system, softirq):
    # proc_cpu.cpu_lines(): user nice system idle iowait irq softirq steal, in seconds
    return [user, 0, system, 0, 0, 0, softirq, 0]


class StepRow(unittest.TestCase):
    def run_step(self, server, blaster, a, b, **extra):
        with tempfile.TemporaryDirectory() as d:
            s0, s1, out = (os.path.join(d, n) for n in ("s0.json", "s1.json", "rows.csv"))
            for path, snap in ((s0, a), (s1, b)):
                with open(path, "w") as f:
                    json.dump(snap, f)
            with contextlib.redirect_stdout(io.StringIO()):
                overload_step.step({"server": server, "rate": "1", "blaster": json.dumps(blaster), "snap0": s0,
                                    "snap1": s1, "csv": out, "server_cpu": "1", "other_cpu": "0", **extra})
            with open(out, newline="") as f:
                return list(csv.DictReader(f))[0]

    def test_coturn_counts_its_whole_core_and_the_peer_side(self):
        a = {"cpu": {"0": cpu(0, 0, 0), "1": cpu(1, 1, 1)}, "softnet": [0, 0], "peer_rx": 1000, "server_rx": 5}
        b = {"cpu": {"0": cpu(2, 0, 0), "1": cpu(2, 2.5, 1.5)}, "softnet": [5, 1], "peer_rx": 1000 + 90000,
             "server_rx": 5 + 99995}
        bl = {"rate": 50000, "seconds": 2.0, "flows": 10, "size": 200, "offered": 100000, "refused": 0}
        r = self.run_step("coturn", bl, a, b)
        self.assertEqual(r["delivered"], "90000")
        self.assertEqual(r["offered_pps"], "50000")
        self.assertEqual(float(r["loss_pct"]), 10.0)
        self.assertEqual(float(r["server_cpu_s"]), 3.0)  # user 1 + system 1.5 + softirq 0.5
        self.assertEqual(float(r["kernel_s"]), 2.0)
        self.assertEqual(r["pkts_per_cpu_s"], "30000")
        self.assertEqual(r["arrived"], "99995")
        self.assertEqual(r["backlog_drops_in"], "5")  # CPU 0: the generator's, the way in
        self.assertEqual(r["backlog_drops_out"], "1")  # CPU 1: the server's

    def test_dpturn_counts_busy_cycles_and_the_memif_sink(self):
        a = {"cpu": {"0": cpu(0, 0, 0), "1": cpu(0, 0, 0)}, "softnet": [0, 0], "peer_rx": 0, "server_rx": 0,
             "dp": {"tsc_hz": 1000, "worker0_busy_cycles": 0, "worker0_rx_packets": 0, "port0_rx_packets": 7,
                    "port0_af_packet_rx_drops": 1, "drop_tx_full": 0}}
        b = {"cpu": {"0": cpu(0, 0, 0), "1": cpu(1.8, 0.2, 0)}, "softnet": [0, 0], "peer_rx": 3, "server_rx": 100000,
             "dp": {"tsc_hz": 1000, "worker0_busy_cycles": 500, "worker0_rx_packets": 100000,
                    "port0_rx_packets": 100007, "port0_af_packet_rx_drops": 4, "drop_tx_full": 2}}
        bl = {"rate": 50000, "seconds": 2.0, "flows": 10, "size": 200, "offered": 100000, "refused": 0,
              "sink": 99998}
        r = self.run_step("dpturn-memif", bl, a, b)
        self.assertEqual(r["delivered"], "99998")  # the sink, not the peer namespace's counter
        self.assertEqual(float(r["worker_busy_s"]), 0.5)
        self.assertEqual(float(r["server_cpu_s"]), 0.5)  # busy cycles, not the polling core
        self.assertEqual(float(r["cpu_busy_s"]), 2.0)
        self.assertEqual(r["worker_rx"], "100000")  # workers only, not the port's counter
        self.assertEqual(r["dp_ring_drops"], "3")
        self.assertEqual(r["dp_drops"], "2")
        self.assertEqual(r["pkts_per_cpu_s"], "199996")
        self.assertEqual(r["arrived"], "100000")  # the server namespace's eth0

    def test_the_cross_cpu_round_trips_are_kept_and_a_malformed_pair_is_refused(self):
        a = {"cpu": {"0": cpu(0, 0, 0), "1": cpu(0, 0, 0)}, "softnet": [0, 0], "peer_rx": 0, "server_rx": 0}
        b = {"cpu": {"0": cpu(0, 0, 0), "1": cpu(1, 0, 0)}, "softnet": [0, 0], "peer_rx": 10, "server_rx": 10}
        bl = {"rate": 5, "seconds": 2.0, "flows": 1, "size": 200, "offered": 10, "refused": 0}
        r = self.run_step("coturn", bl, a, b, xcore_rtt_ns="55.3/330.9")
        self.assertEqual((r["xcore_rtt_ns_before"], r["xcore_rtt_ns_after"]), ("55.3", "330.9"))
        r = self.run_step("coturn", bl, a, b, xcore_rtt_ns="/")  # the probe could not run
        self.assertEqual((r["xcore_rtt_ns_before"], r["xcore_rtt_ns_after"]), ("", ""))
        with self.assertRaises(SystemExit) as e, contextlib.redirect_stdout(io.StringIO()):
            self.run_step("coturn", bl, a, b, xcore_rtt_ns="55.3")
        self.assertIn("xcore_rtt_ns '55.3' is not BEFORE/AFTER", str(e.exception.code))

    def test_a_memif_client_side_counts_arrivals_at_the_workers(self):
        a = {"cpu": {"0": cpu(0, 0, 0), "1": cpu(0, 0, 0)}, "softnet": [0, 0], "peer_rx": 0, "server_rx": 40,
             "dp": {"tsc_hz": 1000, "worker0_busy_cycles": 0, "worker0_rx_packets": 10}}
        b = {"cpu": {"0": cpu(0, 0, 0), "1": cpu(2, 0, 0)}, "softnet": [0, 0], "peer_rx": 0, "server_rx": 42,
             "dp": {"tsc_hz": 1000, "worker0_busy_cycles": 100, "worker0_rx_packets": 10 + 5000}}
        bl = {"rate": 3000, "seconds": 2.0, "flows": 10, "size": 200, "offered": 5000, "refused": 1000,
              "sink": 5000}
        r = self.run_step("dpturn-dpdk", bl, a, b, arrived_from="worker")
        self.assertEqual(r["arrived"], "5000")  # not eth0's 2 (ARP, control)
        self.assertEqual(r["refused"], "1000")
        self.assertEqual(float(r["loss_pct"]), 0.0)
        self.assertEqual(r["pkts_per_cpu_s"], "50000")


def write_rows(rows):
    f = tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False, newline="")
    w = csv.DictWriter(f, fieldnames=overload_step.HEADER)
    w.writeheader()
    for r in rows:
        w.writerow({k: r.get(k, "") for k in overload_step.HEADER})
    f.close()
    return f.name


def row(server, offered, delivered, cpu_s):
    return {"server": server, "offered_pps": offered, "delivered_pps": delivered, "offered": offered,
            "arrived": offered,
            "loss_pct": round(100.0 * (offered - delivered) / offered, 3), "cpu_share": cpu_s / 4,
            "pkts_per_cpu_s": round(delivered * 4 / cpu_s), "kernel_s": 1, "worker_busy_share": 0.5}


class Summary(unittest.TestCase):
    def summary(self, rows):
        out = io.StringIO()
        path = write_rows(rows)
        try:
            with contextlib.redirect_stdout(out):
                overload_step.summary(path)
        finally:
            os.unlink(path)
        return out.getvalue()

    def test_loss_step_and_dpturn_at_1x_and_2x(self):
        text = self.summary([
            row("coturn", 50000, 50000, 1.0), row("coturn", 100000, 99950, 2.0),  # 0.05%: not a loss step
            row("coturn", 200000, 150000, 4.0), row("coturn", 400000, 148000, 4.0),
            row("dpturn", 50000, 50000, 0.2), row("dpturn", 200000, 200000, 0.8),
            row("dpturn", 400000, 399000, 1.6)])
        self.assertIn("coturn loss step: 200000 pps offered, 25.0% lost", text)
        self.assertIn("dpturn loss at the coturn loss step: 0.0% of 200000 pps; at 2x: 0.25% of 400000 pps "
                      "(0.00% and 0.00% of it before the server)", text)
        # per CPU-second at 200000 offered: dpturn 200000*4/0.8, coturn 150000*4/4
        self.assertIn("dpturn / coturn at 200000 pps offered: 6.7x", text)
        # top steps: dpturn 399000*4/1.6, coturn 148000*4/4
        self.assertIn("dpturn / coturn at the top step (400000 / 400000 pps offered): 6.7x", text)

    def test_the_memif_only_variant_is_summed_up_with_what_its_ring_refused(self):
        d = row("dpturn-dpdk", 100000, 100000, 0.1)
        top = dict(row("dpturn-dpdk", 2000000, 2000000, 3.2), refused=400000, rate_asked=3000000, seconds=4)
        text = self.summary([row("coturn", 50000, 50000, 1.0), row("coturn", 100000, 90000, 4.0), d, top])
        self.assertIn("dpturn-dpdk loss at the coturn loss step: 0.0% of 100000 pps", text)
        self.assertIn("pkts per server CPU-second, dpturn-dpdk / coturn at 100000 pps offered: 44.4x", text)
        self.assertIn("dpturn-dpdk most delivered: 2000000 pps of 2000000 offered (0.0% lost, worker busy 0.5; "
                      "400000 frames refused by the server's full memif ring, of 12000000 asked)", text)

    def test_the_cross_cpu_round_trips_of_the_compared_steps_are_named(self):
        c = dict(row("coturn", 100000, 90000, 4.0), xcore_rtt_ns_before="56.1", xcore_rtt_ns_after="57.0")
        d = dict(row("dpturn-dpdk", 100000, 100000, 0.1), xcore_rtt_ns_before="331.2", xcore_rtt_ns_after="")
        text = self.summary([c, d])
        self.assertIn("44.4x (4000000 / 90000; dpturn: worker busy cycles, kernel 1 s of its core's time; coturn: its "
                      "whole core; cross-CPU round trip 331.2/ ns, coturn's step 56.1/57.0 ns)", text)
        text = self.summary([row("coturn", 100000, 90000, 4.0), row("dpturn", 100000, 100000, 0.1)])
        self.assertNotIn("cross-CPU", text)  # not measured: not mentioned

    def test_a_loss_followed_by_a_step_without_is_a_transient_not_the_loss_step(self):
        text = self.summary([
            row("coturn", 50000, 48000, 1.0), row("coturn", 80000, 80000, 2.0),  # 4% at 50k, then none
            row("coturn", 100000, 98000, 3.0), row("coturn", 200000, 150000, 4.0),
            row("dpturn", 50000, 50000, 0.2), row("dpturn", 100000, 100000, 0.4), row("dpturn", 200000, 200000, 0.8)])
        self.assertIn("coturn loss step: 100000 pps offered, 2.0% lost", text)
        self.assertIn("coturn lost more than 0.1% below its loss step too, at a step followed by one without loss: "
                      "4.0% at 50000 pps", text)
        self.assertIn("dpturn loss at the coturn loss step: 0.0% of 100000 pps; at 2x: 0.0% of 200000 pps", text)

    def test_2x_is_the_lowest_step_that_offered_it_not_the_nearest_below(self):
        text = self.summary([
            row("coturn", 100000, 100000, 2.0), row("coturn", 160000, 140000, 4.0),
            row("dpturn", 160000, 160000, 0.5), row("dpturn", 300000, 300000, 0.9),
            row("dpturn", 318000, 317000, 1.0), row("dpturn", 400000, 390000, 1.2)])
        # 300000 is nearer to 320000 than 400000 but is not 2x; 318000 is (a paced step's 0.6% shortfall)
        self.assertIn("dpturn loss at the coturn loss step: 0.0% of 160000 pps; at 2x: 0.314% of 318000 pps", text)

    def test_a_generator_short_of_2x_says_how_far_it_got(self):
        text = self.summary([
            row("coturn", 100000, 100000, 2.0), row("coturn", 160000, 140000, 4.0),
            row("dpturn", 160000, 160000, 0.5), row("dpturn", 270000, 270000, 0.9)])
        self.assertIn("dpturn loss at the coturn loss step: 0.0% of 160000 pps; 2x not reached, at the generator's "
                      "top (1.7x): 0.0% of 270000 pps", text)
        self.assertNotIn("at 2x", text)

    def test_a_top_step_without_loss_means_no_loss_step(self):
        text = self.summary([row("coturn", 50000, 40000, 1.0), row("coturn", 100000, 100000, 2.0),
                             row("dpturn", 50000, 50000, 0.1)])
        self.assertIn("coturn loss step: none up to 100000 pps offered", text)
        self.assertIn("at a step followed by one without loss: 20.0% at 50000 pps", text)
        self.assertNotIn("at 2x", text)

    def test_no_loss_step_says_so(self):
        text = self.summary([row("coturn", 50000, 50000, 1.0), row("dpturn", 50000, 50000, 0.1)])
        self.assertIn("coturn loss step: none up to 50000 pps offered", text)
        self.assertNotIn("at 2x", text)


sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import headline  # noqa: E402

GBENCH_CSV = """2026-12-03T15:55:18+00:00
Running build/bench/micro/dp_table_bench
eal: --no-huge -m 4096
name,iterations,real_time,cpu_time,time_unit,bytes_per_second,items_per_second,label,error_occurred,error_message,"entries","table_MiB"
"DecideBurst32/ChannelDataToPeer/1000_mean",3,1800,1800,ns,,1.8e+07,,,,1000,3.8
"DecideBurst32/ChannelDataToPeer/1000_median",3,1800,1800,ns,,2e+07,,,,1000,3.8
"DecideBurst32/ChannelDataToPeer/1000000_median",3,4000,4000,ns,,8e+06,,,,1e+06,800
"""


class HeadlineFastPathRatio(unittest.TestCase):
    """bench/headline.py's 1M / 1k line from dp_table_bench's CSV."""

    def line(self, text):
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "dp_table_bench.csv")
            with open(p, "w") as f:
                f.write(text)
            return headline.burst_line(p)

    def test_reads_the_median_rows_of_a_repeated_run(self):
        self.assertEqual(self.line(GBENCH_CSV),
                         "1M / 1k allocations, fast path alone: 0.40 (125 / 50 ns a frame, dp_table_bench "
                         "DecideBurst32: decide_burst over the real tables, no vdev)")

    def test_reads_plain_rows_of_a_single_run(self):
        text = GBENCH_CSV.replace("_median", "").replace("1000_mean", "1000_x")
        self.assertIn("fast path alone: 0.40 (125 / 50 ns", self.line(text))

    def test_a_missing_size_or_an_errored_row_is_not_measured(self):
        self.assertIn("not measured", self.line(GBENCH_CSV.replace("1000000_median", "4000000_median")))
        errored = GBENCH_CSV.replace("1e+06,800", "1e+06,800").replace(
            "8e+06,,,,1e+06", "8e+06,,true,table full,1e+06")
        self.assertIn("not measured", self.line(errored))
        self.assertIn("not measured", self.line("no benchmark here\n"))


@unittest.skipUnless(TURN_FLOWS, "no turn_flows binary given")
class TurnFlowsArguments(unittest.TestCase):
    def refuses(self, args, says):
        r = subprocess.run([TURN_FLOWS] + args, capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(says, r.stderr)

    def test_bad_values_are_named(self):
        base = ["--server", "127.0.0.1:3478", "-u", "u", "-p", "p", "--peer", "127.0.0.1:9", "--out", "/dev/null"]
        self.refuses(base + ["--flows", "0"], "--flows '0' is not 1..20000")
        self.refuses(base + ["--flows", "20001"], "--flows '20001' is not 1..20000")
        self.refuses(base + ["--flows", "5", "--hold", "9999"], "--hold '9999' is not 0..3600")
        self.refuses(["--server", "nowhere", "-u", "u", "--peer", "127.0.0.1:9", "--flows", "1", "--out", "x"],
                     "--server 'nowhere' is not IP:PORT")
        self.refuses(base + ["--flows"], "--flows needs a value")


if __name__ == "__main__":
    unittest.main()
