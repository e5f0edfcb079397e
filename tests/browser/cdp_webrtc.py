#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Drives headless Chromium through the DevTools protocol (over
# --remote-debugging-pipe: no TCP port, nothing to collide with) to run
# tests/browser/webrtc_relay.html with iceTransportPolicy "relay" and one
# TURN server as the only ICE server, N data-channel messages each way.
# Checks every message (count and content) and that the selected candidate
# pairs are relay <-> relay through the expected relay address.
#
# One browser, two peer connections in one page:
#   cdp_webrtc.py --url turn:IP:3478 --user U --password P --relay-ip IP [--relay-protocol udp]
#                 [--messages 200] [--timeout 60] [--result FILE] -- CHROMIUM-COMMAND...
# Two browsers (e.g. in two network namespaces), one peer connection each;
# the driver carries offer and answer (candidates inside, no trickle):
#   cdp_webrtc.py ... --url-b turn:IP2:3478 [--user-b U2 --password-b P2]
#                 --cmd-b "ip netns exec NS2 chromium" [--ready-file F --hold-file G]
#                 -- ip netns exec NS1 chromium
#   With --ready-file, the driver writes it once every check so far passed and
#   keeps both connections (and their relays) open until --hold-file exists
#   (bounded by --timeout), then closes them.
# Exit 0 when all checks pass.
import argparse
import fcntl
import json
import os
import select
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PAGE = "file://" + os.path.join(HERE, "webrtc_relay.html")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-extensions", "--no-default-browser-check",
         "--mute-audio", "--remote-debugging-pipe"]


def _dup_high(fd):
    return fcntl.fcntl(fd, fcntl.F_DUPFD, 10)


class Browser:
    """One Chromium process, one page, DevTools over the pipe pair (fd 3 in, fd 4 out)."""

    def __init__(self, name, cmd, deadline, log):
        self.name, self.deadline = name, deadline
        self.profile = tempfile.mkdtemp(prefix="dpturn-chromium-")
        to_chrome_r, self.to_chrome = os.pipe()
        self.from_chrome, from_chrome_w = os.pipe()
        hi_r, hi_w = _dup_high(to_chrome_r), _dup_high(from_chrome_w)  # above 4: the dup2s cannot clobber them
        os.close(to_chrome_r)
        os.close(from_chrome_w)

        def child_fds():
            os.dup2(hi_r, 3)
            os.dup2(hi_w, 4)

        self.proc = subprocess.Popen(cmd + FLAGS + [f"--user-data-dir={self.profile}", "about:blank"],
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=log, preexec_fn=child_fds,
                                     close_fds=False)
        os.close(hi_r)
        os.close(hi_w)
        self.buf, self.next_id, self.session = b"", 0, None
        target = self.call("Target.createTarget", {"url": PAGE})["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.call("Runtime.enable")
        while self.eval("typeof runRelayTest", await_promise=False) != "function":
            time.sleep(0.05)

    def start(self, method, params=None):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if self.session:
            msg["sessionId"] = self.session
        os.write(self.to_chrome, json.dumps(msg).encode() + b"\0")
        return self.next_id

    def wait(self, msg_id, method="call"):
        while True:
            m = self._read()
            if m.get("id") == msg_id:
                if "error" in m:
                    raise RuntimeError(f"{self.name}: {method}: {m['error']}")
                return m.get("result", {})
            if m.get("method") == "Runtime.consoleAPICalled":
                args = " ".join(str(a.get("value", a.get("description", ""))) for a in m["params"]["args"])
                print(f"  {self.name} console: {args}", flush=True)

    def call(self, method, params=None):
        return self.wait(self.start(method, params), method)

    def eval_start(self, expr, await_promise=True):
        return self.start("Runtime.evaluate", {"expression": expr, "awaitPromise": await_promise,
                                               "returnByValue": True})

    def eval_wait(self, msg_id):
        r = self.wait(msg_id, "Runtime.evaluate")
        if "exceptionDetails" in r:
            d = r["exceptionDetails"]
            raise RuntimeError(f"{self.name}: page threw: {d.get('exception', {}).get('description', d)}")
        return r["result"].get("value")

    def eval(self, expr, await_promise=True):
        return self.eval_wait(self.eval_start(expr, await_promise))

    def _read(self):
        while b"\0" not in self.buf:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{self.name}: no answer from Chromium in time")
            r, _, _ = select.select([self.from_chrome], [], [], left)
            if r:
                chunk = os.read(self.from_chrome, 1 << 20)
                if not chunk:
                    raise RuntimeError(f"{self.name}: Chromium closed the DevTools pipe (exit {self.proc.poll()})")
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
            self.proc.kill()  # the Chromium this driver started, by its PID
            self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


class Checks:
    def __init__(self):
        self.fails = 0

    def __call__(self, what, ok):
        print(f"{'ok' if ok else 'NOT OK'}: {what}", flush=True)
        self.fails += 0 if ok else 1


def check_pair(check, side, p, relay_ip, relay_protocol):
    if not p:
        check(f"{side}: a selected candidate pair", False)
        return
    loc, rem = p.get("local") or {}, p.get("remote") or {}
    desc = (f"{loc.get('type')} {loc.get('address')}:{loc.get('port')} <-> {rem.get('type')} "
            f"{rem.get('address')}:{rem.get('port')}, {p.get('state')}, sent {p.get('bytesSent')} "
            f"received {p.get('bytesReceived')} bytes, rtt {p.get('currentRoundTripTime')}")
    # The transport's selected pair; its state reads "in-progress" while a
    # consent/RTT check on it is outstanding (seen under load), so what
    # counts is that it carried the data both ways and has not failed.
    check(f"{side}: selected pair is relay<->relay via {relay_ip} and carried the data: {desc}",
          loc.get("type") == "relay" and rem.get("type") == "relay"
          and p.get("state") in ("succeeded", "in-progress") and (p.get("bytesSent") or 0) > 0
          and (p.get("bytesReceived") or 0) > 0 and loc.get("address") == relay_ip and rem.get("address") == relay_ip)
    if relay_protocol:
        check(f"{side}: Chromium reaches the TURN server over {loc.get('relayProtocol')} "
              f"(expected {relay_protocol}, {loc.get('url')})", loc.get("relayProtocol") == relay_protocol)
    check(f"{side}: only relay candidates gathered and received {sorted(set(p.get('candidateTypes', [])))}",
          set(p.get("candidateTypes", [])) == {"relay"})


def check_messages(check, result, n, directions):
    check(f"page ran to the end ({result.get('error', 'no error')})", result.get("ok"))
    for d in directions:
        got = result.get("received", {}).get(d, 0)
        check(f"{d}: {got}/{n} messages arrived ({result.get('bytes', {}).get(d, 0)} bytes)", got == n)
    check(f"every message's content intact and in order {result.get('mismatches')}", not result.get("mismatches"))


def one_browser(a, deadline, log, check):
    b = Browser("chromium", a.cmd, deadline, log)
    try:
        left_ms = int((deadline - time.monotonic()) * 1000)
        cfg = {"urls": a.url, "username": a.user, "credential": a.password, "messages": a.messages,
               "connectTimeoutMs": max(1000, left_ms // 2), "transferTimeoutMs": max(1000, left_ms // 3)}
        result = b.eval(f"runRelayTest({json.dumps(cfg)})")
    finally:
        b.close()
    for line in result.get("log", []):
        print(f"  page: {line}")
    print(f"  candidates: a={result.get('candidates', {}).get('a')} b={result.get('candidates', {}).get('b')}")
    check_messages(check, result, a.messages, ("a2b", "b2a"))
    for side, p in (result.get("pairs") or {}).items():
        check_pair(check, side, p, a.relay_ip, a.relay_protocol)
    if len(result.get("pairs") or {}) != 2:
        check("both peer connections reported a selected pair", False)
    return result


def two_browsers(a, deadline, log, check):
    left_ms = int((deadline - time.monotonic()) * 1000)
    timeouts = {"connectTimeoutMs": max(1000, left_ms // 3), "transferTimeoutMs": max(1000, left_ms // 4)}
    cfg_a = {"urls": a.url, "username": a.user, "credential": a.password, **timeouts}
    cfg_b = {"urls": a.url_b, "username": a.user_b or a.user, "credential": a.password_b or a.password, **timeouts}
    A = Browser("A", a.cmd, deadline, log)
    B = None
    try:
        B = Browser("B", shlex.split(a.cmd_b), deadline, log)
        A.eval(f"peerStart({json.dumps(cfg_a)}, 'offer')")
        B.eval(f"peerStart({json.dumps(cfg_b)}, 'answer')")
        offer = A.eval("peerOffer()")
        answer = B.eval(f"peerAnswer({json.dumps(offer)})")
        A.eval(f"peerAccept({json.dumps(answer)})")
        for name, sdp in (("A", offer), ("B", answer)):
            print(f"  {name} candidates: {[l[12:] for l in sdp.splitlines() if l.startswith('a=candidate:')]}")
        ia = A.eval_start(f"peerExchange({a.messages}, 'a2b', 'b2a')")
        ib = B.eval_start(f"peerExchange({a.messages}, 'b2a', 'a2b')")
        ra, rb = A.eval_wait(ia), B.eval_wait(ib)
        for name, r in (("A", ra), ("B", rb)):
            for line in r.get("log", []):
                print(f"  {name} page: {line}")
        check_messages(check, ra, a.messages, ("b2a",))
        check_messages(check, rb, a.messages, ("a2b",))
        check_pair(check, "A", ra["pairs"].get("offer"), a.relay_ip, a.relay_protocol)
        check_pair(check, "B", rb["pairs"].get("answer"), a.relay_ip, None)
        if a.ready_file and check.fails == 0:  # only a call that fully worked is "ready"
            with open(a.ready_file, "w") as f:
                json.dump({"A": ra["pairs"].get("offer"), "B": rb["pairs"].get("answer")}, f)
            while a.hold_file and not os.path.exists(a.hold_file) and time.monotonic() < deadline - 3:
                time.sleep(0.1)
        A.eval("peerClose()")
        B.eval("peerClose()")
        time.sleep(0.5)  # the Refresh(0) that releases each relay leaves before the browsers go
        return {"A": ra, "B": rb}
    finally:
        A.close()
        if B:
            B.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True, action="append", help="TURN URI (repeatable)")
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--relay-ip", required=True, help="relay address the selected pairs must use")
    ap.add_argument("--relay-protocol", choices=("udp", "tcp", "tls"),
                    help="transport between Chromium and the TURN server the local candidate must show")
    ap.add_argument("--url-b", action="append", help="two browsers: browser B's TURN URI (repeatable)")
    ap.add_argument("--user-b")
    ap.add_argument("--password-b")
    ap.add_argument("--cmd-b", help="two browsers: browser B's command, e.g. 'ip netns exec NS chromium'")
    ap.add_argument("--ready-file")
    ap.add_argument("--hold-file")
    ap.add_argument("--messages", type=int, default=200)
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--result", help="write the page's result JSON here")
    ap.add_argument("--chromium-log", default=os.devnull)
    ap.add_argument("cmd", nargs="+", help="Chromium command (after --)")
    a = ap.parse_args()
    # SIGTERM (timeout(1), a test's cleanup): unwind, so the browsers this
    # driver started are closed by the finally blocks.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if bool(a.url_b) != bool(a.cmd_b):
        ap.error("--url-b and --cmd-b go together")

    start = time.monotonic()
    deadline = start + a.timeout
    check = Checks()
    result = None
    with open(a.chromium_log, "ab") as log:
        try:
            result = (two_browsers if a.cmd_b else one_browser)(a, deadline, log, check)
        except Exception as e:  # a failed check, with what happened
            check(f"driving Chromium: {e}", False)
    if result is not None and a.result:
        with open(a.result, "w") as f:
            json.dump(result, f, indent=1)
    print(f"elapsed {time.monotonic() - start:.1f} s")
    return 1 if check.fails or result is None else 0


if __name__ == "__main__":
    sys.exit(main())
