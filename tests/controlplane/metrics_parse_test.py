#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""turn-control's /metrics through a real Prometheus text-format parser
(Debian's python3-prometheus-client, text_string_to_metric_families).

A real turn-control (loopback only) with a state Redis; traffic from
turnctl probe (a good and a wrong password), a registered TURN server that
is probed, and a data plane's published counters written into Redis under
an instance name that needs escaping in a label value (quote, backslash,
newline). Fails when the exposition does not parse, when a family lacks
# HELP / # TYPE or appears twice (samples not together), when an expected
family is missing, or when a value is not what happened.

    /usr/bin/python3 tests/controlplane/metrics_parse_test.py BUILD_DIR
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "py"))
import dpturn_harness as h  # noqa: E402

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    h.missing_tool_exit("python3-prometheus-client (for /usr/bin/python3)")

FAILS = []


def check(what, ok, detail=""):
    print(("PASS: " if ok else "FAIL: ") + what + ("" if ok or not detail else f"\n      {detail}"))
    if not ok:
        FAILS.append(what)


def parse(text):
    """Families by name; raises on malformed text or a repeated family."""
    fams = {}
    for f in text_string_to_metric_families(text):
        if f.name in fams:
            raise ValueError(f"family {f.name} appears twice (its samples are not together)")
        fams[f.name] = f
    return fams


def value(fams, family, sample, **labels):
    for s in fams[family].samples if family in fams else []:
        if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    return None


def main():
    build = sys.argv[1]
    # The parser must refuse what a broken exposition would look like, or
    # this test could not fail.
    for bad in ['dpturn_x{dataplane="a"b"} 1\n', 'dpturn_x{dataplane="a} 1\n', 'dpturn_x{a="b"} one\n']:
        try:
            parse(bad)
            check(f"the parser refuses {bad.strip()!r}", False)
        except ValueError:
            pass
    try:
        parse("# TYPE a counter\na_total 1\n# TYPE b gauge\nb 1\na_total 2\n")
        check("a split family is refused", False)
    except ValueError:
        pass

    env = h.Harness(build, "metrics")
    try:
        env.start_redis()
        env.start_turn_control()
        h.log(f"turn-control on 127.0.0.1:{env.turn_port}, admin {env.admin_port}, redis {env.redis_port}")
        server = f"turn:127.0.0.1:{env.turn_port}"
        ok = env.turnctl("probe", server, "-u", h.USER, "-p", h.PASS)
        check("probe with the right password succeeds", ok.returncode == 0, ok.stdout + ok.stderr)
        bad = env.turnctl("probe", server, "-u", h.USER, "-p", "wrong-password")
        check("probe with a wrong password fails with 401", bad.returncode == 1 and "401" in bad.stdout, bad.stdout)
        st, _, body = env.admin("POST", "/api/v1/turn-servers",
                                {"serverAddress": f"127.0.0.1:{env.turn_port}", "clientAddress": "192.0.2.1:3478",
                                 "username": h.USER, "password": h.PASS, "type": "tcp"})
        check("a TURN server is registered", st == 201, body)
        sid = json.loads(body).get("id", "")
        st, _, body = env.admin("GET", f"/api/v1/turn-servers/{sid}/status")
        check("and probed reachable", st == 200 and json.loads(body).get("reachable") is True, body)

        # A data plane's counters, as turn-dataplane publishes them
        # (docs/state.md), under a name that needs escaping.
        dp = 'dp "quoted" \\back\nline'
        counters = {"rx_packets": 1000, "tx_packets": 990, "path_channel_data_to_peer": 400,
                    "path_send_indication_to_peer": 100, "path_hairpin": 5,
                    "path_peer_to_client_channel_data": 300, "path_peer_to_client_data_indication": 50,
                    "drop_no_permission": 7, "drop_bad_checksum": 2, "punt_not_turn": 11,
                    "worker0_rx_packets": 600, "worker0_busy_polls": 60, "worker0_idle_polls": 940,
                    "worker1_rx_packets": 400, "worker1_busy_polls": 40, "worker1_idle_polls": 960,
                    "packets_to_peer": 505, "packets_to_client": 355,
                    "bytes_to_peer": 81000, "bytes_to_client": 62000, "allocations": 3, "sync_lag_ms": 12,
                    "workers": 2, "updated": int(time.time())}
        args = ["HSET", b"dpturn:dataplane:" + dp.encode()]
        for k, v in counters.items():
            args += [k, v]
        env.redis(*args)
        # The fleet index names the instances whose status turn-control reads.
        env.redis("ZADD", "dpturn:instances", int(time.time()), dp.encode())

        # The server answers Refresh(0) before it drops the allocation from
        # its registry: wait (bounded) for the count to settle.
        for _ in range(40):
            if json.loads(env.admin("GET", "/api/v1/health")[2]).get("allocations") == 0:
                break
            time.sleep(0.05)
        st, headers, text = env.admin("GET", "/metrics")
        check("/metrics answers 200 text/plain; version=0.0.4",
              st == 200 and headers.get("Content-Type", "").startswith("text/plain; version=0.0.4"), str(st))
        with open(os.path.join(env.tmp, "metrics.txt"), "w") as f:
            f.write(text)
        try:
            fams = parse(text)
            check(f"/metrics parses ({len(fams)} families)", True)
        except Exception as e:  # noqa: BLE001 -- any parser error is the failure we look for
            env.failed = True
            check("/metrics parses", False, f"{type(e).__name__}: {e}")
            return

        untyped = [n for n, f in fams.items() if f.type == "unknown" or not f.documentation]
        check("every family has # HELP and # TYPE", not untyped, str(untyped))
        # The parser names counter families without _total.
        expected = {
            "dpturn_build_info": "gauge", "dpturn_listener_up": "gauge",
            "dpturn_allocations": "gauge", "dpturn_permissions": "gauge", "dpturn_channels": "gauge",
            "dpturn_requests": "counter", "dpturn_auth_failures": "counter", "dpturn_stale_nonces": "counter",
            "dpturn_quota_refusals": "counter", "dpturn_forbidden_peers": "counter",
            "dpturn_relayed_packets": "counter", "dpturn_relayed_bytes": "counter", "dpturn_drops": "counter",
            "dpturn_thread_requests": "counter", "dpturn_thread_relayed_packets": "counter",
            "dpturn_dataplanes": "gauge", "dpturn_dataplane_up": "gauge", "dpturn_dataplane_punts": "counter",
            "dpturn_dataplane_polls": "counter", "dpturn_dataplane_worker_rx_packets": "counter",
            "dpturn_dataplane_allocations": "gauge", "dpturn_dataplane_sync_lag_ms": "gauge",
            "dpturn_state_redis_up": "gauge", "dpturn_state_queue_depth": "gauge",
            "dpturn_state_sync_lag_seconds": "gauge", "dpturn_state_events": "counter",
            "dpturn_state_degraded": "gauge", "dpturn_state_queue_limit": "gauge",
            "dpturn_state_queue_overflows": "counter", "dpturn_state_resyncs": "counter",
            "dpturn_state_disconnects": "counter", "dpturn_state_master_changes": "counter",
            "dpturn_dataplane_snapshots": "counter", "dpturn_dataplane_bad_events": "counter",
            "dpturn_turn_servers": "gauge", "dpturn_turn_server_up": "gauge", "dpturn_turn_server_rtt_seconds": "gauge",
        }
        missing = [n for n in expected if n not in fams]
        check("every expected family is there", not missing, f"missing: {missing}")
        wrong_type = [n for n, t in expected.items() if n in fams and fams[n].type != t]
        check("families have the right type", not wrong_type, str(wrong_type))

        def eq(what, got, want):
            check(f"{what} = {want}", got == want, f"got {got}")

        eq("allocations (the probes released theirs)", value(fams, "dpturn_allocations", "dpturn_allocations"), 0)
        eq("successful allocates (2 probes)", value(fams, "dpturn_requests", "dpturn_requests_total",
                                                   method="allocate", result="success"), 2.0)
        eq("successful refreshes (their Refresh(0))", value(fams, "dpturn_requests", "dpturn_requests_total",
                                                             method="refresh", result="success"), 2.0)
        eq("auth failures (the wrong password)", value(fams, "dpturn_auth_failures", "dpturn_auth_failures_total"), 1.0)
        eq("listener up (udp)", value(fams, "dpturn_listener_up", "dpturn_listener_up", transport="udp",
                                      port=str(env.turn_port)), 1.0)
        eq("registered server up", value(fams, "dpturn_turn_server_up", "dpturn_turn_server_up", id=sid), 1.0)
        rtt = value(fams, "dpturn_turn_server_rtt_seconds", "dpturn_turn_server_rtt_seconds", id=sid)
        check("registered server round trip in seconds (0 < rtt < 1)", rtt is not None and 0 < rtt < 1, str(rtt))
        eq("state redis up", value(fams, "dpturn_state_redis_up", "dpturn_state_redis_up"), 1.0)
        eq("not degraded", value(fams, "dpturn_state_degraded", "dpturn_state_degraded"), 0.0)
        lag = value(fams, "dpturn_state_sync_lag_seconds", "dpturn_state_sync_lag_seconds")
        check("state sync lag is a small number of seconds", lag is not None and 0 <= lag < 5, str(lag))
        # The data plane: its escaped name comes back exactly.
        eq("fast-path packets to peer (channel + send + hairpin)",
           value(fams, "dpturn_relayed_packets", "dpturn_relayed_packets_total", direction="to_peer", path="fast",
                 dataplane=dp), 505.0)
        eq("fast-path packets to client", value(fams, "dpturn_relayed_packets", "dpturn_relayed_packets_total",
                                                direction="to_client", path="fast", dataplane=dp), 355.0)
        eq("fast-path bytes to peer", value(fams, "dpturn_relayed_bytes", "dpturn_relayed_bytes_total",
                                            direction="to_peer", path="fast", dataplane=dp), 81000.0)
        eq("fast-path drops by reason", value(fams, "dpturn_drops", "dpturn_drops_total", reason="no_permission",
                                              path="fast", dataplane=dp), 7.0)
        eq("slow-path drop reasons are all listed",
           len([s for s in fams["dpturn_drops"].samples if s.labels.get("path") == "slow"]) >= 10, True)
        eq("per-worker load (worker 1 busy polls)", value(fams, "dpturn_dataplane_polls", "dpturn_dataplane_polls_total",
                                                          worker="1", result="busy", dataplane=dp), 40.0)
        eq("per-worker rx packets (worker 0)", value(fams, "dpturn_dataplane_worker_rx_packets",
                                                     "dpturn_dataplane_worker_rx_packets_total", worker="0",
                                                     dataplane=dp), 600.0)
        eq("data plane sync lag", value(fams, "dpturn_dataplane_sync_lag_ms", "dpturn_dataplane_sync_lag_ms",
                                        dataplane=dp), 12.0)
        eq("data plane up", value(fams, "dpturn_dataplane_up", "dpturn_dataplane_up", dataplane=dp), 1.0)
        eq("punts by reason", value(fams, "dpturn_dataplane_punts", "dpturn_dataplane_punts_total", reason="not_turn",
                                    dataplane=dp), 11.0)
    except Exception as e:  # noqa: BLE001
        check("test ran", False, f"{type(e).__name__}: {e}")
    finally:
        if FAILS:
            env.failed = True
        env.close()


if __name__ == "__main__":
    main()
    print(f"metrics: {len(FAILS)} failed")
    sys.exit(1 if FAILS else 0)
