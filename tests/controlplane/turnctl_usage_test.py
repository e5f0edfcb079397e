#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""`turnctl usage` against a real turn-control with a state Redis: relay
usage counts the data planes' fast path as well as turn-control's kernel
path. An allocation is held (turnctl probe --hold); a data plane's
per-allocation counters are written into Redis exactly as turn-dataplane's
StateSync::push_counters writes them (HINCRBY of dp_* in
dpturn:alloc:<id>:traffic, dataplane/table/sync.cpp); `turnctl usage` must
show them in the allocation's totals, as its fast-path share and in the
per-user section, and say when Redis is away that the fast path is not
counted. (tests/e2e/dataplane_e2e.sh checks the same with a real
turn-dataplane relaying.)

    /usr/bin/python3 tests/controlplane/turnctl_usage_test.py BUILD_DIR
"""
import json
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "py"))
import dpturn_harness as h  # noqa: E402


def body(env, check):
    env.start_redis()
    env.start_turn_control()
    env.turnctl_background("hold", "probe", f"turn:127.0.0.1:{env.turn_port}", "-u", h.USER, "-p", h.PASS,
                           "--hold", "8")
    usage = {}
    for _ in range(100):
        r = env.turnctl("usage", "--json")
        usage = json.loads(r.stdout) if r.returncode == 0 else {}
        if usage.get("count") == 1:
            break
        time.sleep(0.05)
    check("usage --json lists the held allocation", usage.get("count") == 1, json.dumps(usage))
    if usage.get("count") != 1:
        return
    alloc = usage["allocations"][0]
    check("fast-path counters are read from Redis", usage.get("fastpath_counters") == "redis", json.dumps(usage))
    check("nothing relayed yet", alloc["to_peer"]["packets"] == 0 and alloc["to_client"]["bytes"] == 0,
          json.dumps(alloc))

    # Two pushes of the data plane's counters (they add up).
    key = "dpturn:alloc:" + alloc["id"] + ":traffic"
    for pushed in ((10, 1250, 4, 400), (2, 250, 1, 100)):
        for field, n in zip(("dp_packets_to_peer", "dp_bytes_to_peer", "dp_packets_to_client",
                             "dp_bytes_to_client"), pushed):
            env.redis("HINCRBY", key, field, n)

    r = env.turnctl("usage")
    out = r.stdout
    print(out, end="")
    check("usage says the fast path is counted", r.returncode == 0 and out.startswith(
        "1 active allocation(s); packets and bytes relayed: turn-control's kernel path + "
        "the data planes' fast path (from Redis)"), out + r.stderr)
    want = ("to peer 12 pkt/1500 B (fast path 12 pkt/1500 B), "
            "to client 5 pkt/500 B (fast path 5 pkt/500 B)")
    check("the allocation's line has the fast path's packets and bytes",
          re.search(rf"^  {h.USER}  udp 127\.0\.0\.1:\d+ -> relay 127\.0\.0\.1:\d+  lifetime \S+  "
                    + re.escape(want) + "$", out, re.M) is not None, out)
    check("the per-user section sums them",
          re.search(rf"^per user:\n  {h.USER}: 1 allocation\(s\), " + re.escape(want) + "$", out, re.M)
          is not None, out)
    j = json.loads(env.turnctl("usage", "--json").stdout)
    tp = j["allocations"][0]["to_peer"]
    check("the API splits kernel and fast path",
          (tp["packets"], tp["bytes"], tp["kernel_packets"], tp["kernel_bytes"], tp["fastpath_packets"],
           tp["fastpath_bytes"]) == (12, 1500, 0, 0, 12, 1500), json.dumps(tp))

    # Redis away: the kernel path's figures, and a warning that the fast
    # path is not in them.
    env.stop("redis", signal.SIGKILL)
    r = env.turnctl("usage")
    check("with Redis away usage says the fast path is not counted",
          r.returncode == 0 and "fast path NOT COUNTED (Redis unreachable: " in r.stdout.splitlines()[0],
          r.stdout + r.stderr)
    check("and shows the kernel path's figures alone",
          "to peer 0 pkt/0 B (fast path 0 pkt/0 B)" in r.stdout, r.stdout)


if __name__ == "__main__":
    h.run_checks("turnctl usage", sys.argv[1], body)
