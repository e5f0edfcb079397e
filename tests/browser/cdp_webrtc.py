#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Drives headless Chromium through the DevTools protocol (over
# --remote-debugging-pipe: no TCP port, nothing to collide with) to run
# tests/browser/webrtc_relay.html: two RTCPeerConnections in one page,
# iceTransportPolicy "relay", one TURN server as the only ICE server,
# N data-channel messages each way. Checks every message (count and
# content) and that both selected candidate pairs are relay <-> relay
# through the expected relay address. Exit 0 when all checks pass.
#
#   cdp_webrtc.py --url turn:IP:3478 --user U --password P --relay-ip IP
#                 [--messages 200] [--timeout 60] [--result FILE]
#                 -- CHROMIUM-COMMAND...   (e.g. ip netns exec NS chromium)
import argparse
import json
import os
import select
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


class Cdp:
    """DevTools protocol over the pipe pair (fd 3: commands in, fd 4: out)."""

    def __init__(self, cmd, deadline, stderr):
        to_chrome_r, self.to_chrome = os.pipe()
        self.from_chrome, from_chrome_w = os.pipe()
        # Keep both child ends above 4 so the dup2s below cannot clobber them.
        hi_r, hi_w = _dup_high(to_chrome_r), _dup_high(from_chrome_w)
        os.close(to_chrome_r)
        os.close(from_chrome_w)

        def child_fds():
            os.dup2(hi_r, 3)
            os.dup2(hi_w, 4)

        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr,
                                     preexec_fn=child_fds, close_fds=False)
        os.close(hi_r)
        os.close(hi_w)
        self.deadline = deadline
        self.buf = b""
        self.next_id = 0
        self.events = []

    def send(self, method, params=None, session=None, timeout=None):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.to_chrome, json.dumps(msg).encode() + b"\0")
        end = min(self.deadline, time.monotonic() + timeout) if timeout else self.deadline
        while True:
            m = self._read(end)
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            self.events.append(m)
            if m.get("method") == "Runtime.consoleAPICalled":
                args = " ".join(str(a.get("value", a.get("description", ""))) for a in m["params"]["args"])
                print(f"  console: {args}", flush=True)

    def _read(self, end):
        while b"\0" not in self.buf:
            left = end - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer from Chromium in time")
            r, _, _ = select.select([self.from_chrome], [], [], left)
            if r:
                chunk = os.read(self.from_chrome, 1 << 20)
                if not chunk:
                    raise RuntimeError(f"Chromium closed the DevTools pipe (exit {self.proc.poll()})")
                self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def close(self):
        try:
            os.write(self.to_chrome, json.dumps({"id": 0, "method": "Browser.close"}).encode() + b"\0")
        except OSError:
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()  # the Chromium we started, by its PID
            self.proc.wait()


def _dup_high(fd):
    import fcntl
    return fcntl.fcntl(fd, fcntl.F_DUPFD, 10)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True, action="append", help="TURN URI (repeatable)")
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--relay-ip", required=True, help="relay address the selected pairs must use")
    ap.add_argument("--relay-protocol", choices=("udp", "tcp", "tls"),
                    help="transport between Chromium and the TURN server the local candidate must show")
    ap.add_argument("--messages", type=int, default=200)
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--result", help="write the page's result JSON here")
    ap.add_argument("--chromium-log", default=os.devnull)
    ap.add_argument("cmd", nargs="+", help="Chromium command (after --)")
    a = ap.parse_args()

    start = time.monotonic()
    deadline = start + a.timeout
    profile = tempfile.mkdtemp(prefix="dpturn-chromium-")
    cmd = a.cmd + ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                   "--disable-background-networking", "--disable-component-update", "--disable-sync",
                   "--disable-extensions", "--no-default-browser-check", "--mute-audio",
                   f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"]
    page = "file://" + os.path.join(HERE, "webrtc_relay.html")
    log = open(a.chromium_log, "ab")
    cdp = Cdp(cmd, deadline, log)
    result = None
    try:
        target = cdp.send("Target.createTarget", {"url": page}, timeout=20)["targetId"]
        session = cdp.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        cdp.send("Runtime.enable", session=session)
        while cdp.send("Runtime.evaluate", {"expression": "typeof runRelayTest", "returnByValue": True},
                       session=session)["result"].get("value") != "function":
            time.sleep(0.05)
        left_ms = int((deadline - time.monotonic()) * 1000)
        cfg = {"urls": a.url, "username": a.user, "credential": a.password, "messages": a.messages,
               "connectTimeoutMs": max(1000, left_ms // 2), "transferTimeoutMs": max(1000, left_ms // 3)}
        r = cdp.send("Runtime.evaluate", {"expression": f"runRelayTest({json.dumps(cfg)})", "awaitPromise": True,
                                          "returnByValue": True}, session=session)
        if "exceptionDetails" in r:
            raise RuntimeError(f"page threw: {r['exceptionDetails']}")
        result = r["result"]["value"]
    except Exception as e:  # reported as a failed check below, with the log
        print(f"FAIL: driving Chromium: {e}")
    finally:
        cdp.close()
        subprocess.run(["rm", "-rf", profile])
    elapsed = time.monotonic() - start
    if result is None:
        return 1
    if a.result:
        with open(a.result, "w") as f:
            json.dump(result, f, indent=1)
    for line in result.get("log", []):
        print(f"  page: {line}")
    print(f"  candidates: a={result.get('candidates', {}).get('a')} b={result.get('candidates', {}).get('b')}")
    fails = 0

    def check(what, ok):
        nonlocal fails
        print(f"{'ok' if ok else 'NOT OK'}: {what}")
        fails += 0 if ok else 1

    check(f"page ran to the end ({result.get('error', 'no error')})", result.get("ok"))
    n = a.messages
    for d in ("a2b", "b2a"):
        got = result.get("received", {}).get(d, 0)
        check(f"{d}: {got}/{n} messages arrived ({result.get('bytes', {}).get(d, 0)} bytes)", got == n)
    check(f"every message's content intact and in order {result.get('mismatches')}", not result.get("mismatches"))
    for side, p in (result.get("pairs") or {}).items():
        if not p:
            check(f"{side}: a selected candidate pair", False)
            continue
        loc, rem = p.get("local") or {}, p.get("remote") or {}
        desc = (f"{loc.get('type')} {loc.get('address')}:{loc.get('port')} <-> {rem.get('type')} "
                f"{rem.get('address')}:{rem.get('port')}, {p.get('state')}, sent {p.get('bytesSent')} "
                f"received {p.get('bytesReceived')} bytes, rtt {p.get('currentRoundTripTime')}")
        check(f"{side}: selected pair is relay<->relay via {a.relay_ip}: {desc}",
              loc.get("type") == "relay" and rem.get("type") == "relay" and p.get("state") == "succeeded"
              and loc.get("address") == a.relay_ip and rem.get("address") == a.relay_ip)
        if a.relay_protocol:
            check(f"{side}: Chromium reaches the TURN server over {loc.get('relayProtocol')} "
                  f"(expected {a.relay_protocol}, {loc.get('url')})", loc.get("relayProtocol") == a.relay_protocol)
        check(f"{side}: only relay candidates gathered and received {sorted(set(p.get('candidateTypes', [])))}",
              set(p.get("candidateTypes", [])) == {"relay"})
    if len(result.get("pairs") or {}) != 2:
        check("both peer connections reported a selected pair", False)
    print(f"elapsed {elapsed:.1f} s")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
