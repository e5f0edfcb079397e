#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""`turnctl servers add|list|get|status|delete` against a real turn-control
(loopback only, no Redis): the CLI side of the TURN server registry,
including its exit codes and the reasons it prints.

    /usr/bin/python3 tests/controlplane/turnctl_servers_test.py BUILD_DIR
"""
import json
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "py"))
import dpturn_harness as h  # noqa: E402

FAILS = []


def check(what, ok, detail=""):
    print(("PASS: " if ok else "FAIL: ") + what + ("" if ok or not detail else f"\n      {detail}"), flush=True)
    if not ok:
        FAILS.append(what)


def main():
    env = h.Harness(sys.argv[1], "turnctl-servers")
    try:
        env.start_turn_control()
        server = f"turn:127.0.0.1:{env.turn_port}?transport=tcp"
        r = env.turnctl("servers", "add", server, "turn:198.51.100.9:3478", "-u", h.USER, "-p", h.PASS)
        good = r.stdout.strip()
        check("servers add prints the new id", r.returncode == 0 and re.fullmatch(r"[0-9a-f]{16}", good),
              r.stdout + r.stderr)
        r = env.turnctl("servers", "get", good)
        got = json.loads(r.stdout) if r.returncode == 0 else {}
        check("servers get: type taken from the URI (tcp), no password",
              got.get("type") == "tcp" and got.get("serverAddress") == server and "password" not in got
              and h.PASS not in r.stdout, r.stdout)
        r = env.turnctl("servers", "status", good)
        check("servers status: reachable with a round trip, exit 0",
              r.returncode == 0 and re.match(rf"reachable: {good} round trip [0-9.]+ ms", r.stdout), r.stdout)
        r = env.turnctl("servers", "status", good, "--json")
        st = json.loads(r.stdout) if r.returncode == 0 else {}
        check("servers status --json", st.get("reachable") is True and st.get("roundTripTimeMs", 0) > 0, r.stdout)

        r = env.turnctl("servers", "add", f"127.0.0.1:{env.turn_port}", "203.0.113.1:3478", "-u", h.USER,
                        "-p", "not-the-password")
        bad = r.stdout.strip()
        r = env.turnctl("servers", "status", bad)
        check("servers status: unreachable with the 401 reason, exit 1",
              r.returncode == 1 and r.stdout.startswith(f"unreachable: {bad}: ") and "401" in r.stdout, r.stdout)
        r = env.turnctl("servers", "list")
        check("servers list: both, with their last status",
              r.returncode == 0 and r.stdout.startswith("2 TURN server(s), stored in memory")
              and f"{good}  tcp" in r.stdout and "reachable," in r.stdout and "UNREACHABLE: 401" in r.stdout,
              r.stdout)
        r = env.turnctl("servers", "add", "10.0.0.1", "203.0.113.1:3478", "-u", "a", "-p", "b")
        check("servers add: a bad address is refused with the reason, exit 1",
              r.returncode == 1 and "serverAddress" in r.stderr and "'10.0.0.1'" in r.stderr, r.stderr)
        r = env.turnctl("servers", "add", "turns:10.0.0.1", "203.0.113.1:3478", "-u", "a", "-p", "b", "--type", "udp")
        check("servers add: a type contradicting the URI is refused", r.returncode == 1 and "contradicts" in r.stderr,
              r.stderr)
        r = env.turnctl("servers", "delete", bad)
        check("servers delete", r.returncode == 0 and r.stdout.strip() == f"deleted {bad}", r.stdout + r.stderr)
        r = env.turnctl("servers", "get", bad)
        check("servers get of a deleted id: 404, exit 1", r.returncode == 1 and "404" in r.stderr, r.stderr)
        r = env.turnctl("servers", "list")
        check("servers list: one left", r.stdout.startswith("1 TURN server(s)"), r.stdout)

        # turn-control's own signal handling (main's sigwait; the Runtime's
        # threads block the signals, main blocks them before starting it):
        # SIGHUP reloads (TLS is off here: it says so and keeps serving),
        # SIGTERM stops it cleanly with exit status 0.
        tc = env.procs["turn-control"]
        log_path = os.path.join(env.tmp, "turn-control.log")
        tc.send_signal(signal.SIGHUP)
        for _ in range(50):
            with open(log_path, errors="replace") as f:
                if "SIGHUP: TLS is off" in f.read():
                    break
            time.sleep(0.1)
        r = env.turnctl("health")
        check("SIGHUP: turn-control logs it and keeps serving", tc.poll() is None and r.returncode == 0 and
              "SIGHUP: TLS is off" in open(log_path, errors="replace").read(), r.stdout + r.stderr)
        tc.send_signal(signal.SIGTERM)
        try:
            rc = tc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            rc = None
        log = open(log_path, errors="replace").read()
        check(f"SIGTERM: turn-control exits 0 (exit {rc})", rc == 0, log[-600:])
        check("SIGTERM: it logs the signal and a clean stop", "received Terminated, shutting down" in log and
              log.rstrip().endswith("stopped"), log[-600:])
    except Exception as e:  # noqa: BLE001
        check("test ran", False, f"{type(e).__name__}: {e}")
    finally:
        if FAILS:
            env.failed = True
        env.close()


if __name__ == "__main__":
    main()
    print(f"turnctl servers: {len(FAILS)} failed")
    sys.exit(1 if FAILS else 0)
