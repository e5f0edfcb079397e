# SPDX-License-Identifier: Apache-2.0
"""Test harness for tests written in Python: a redis-server and a
turn-control on 127.0.0.1 (free ports picked here, nothing else reached),
each started by PID and stopped by PID, in a private temporary directory.

Used by tests/controlplane/metrics_parse_test.py and
tests/browser/status_page_test.py. Run with /usr/bin/python3 (Debian's,
which has the python3-* modules the tests import).
"""
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

TOKEN = "py-test-token-0123456789abcdef"
REALM = "py.dpturn.test"
USER, PASS = "alice", "wonderland-42"


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _bindable(kind, port):
    s = socket.socket(socket.AF_INET, kind)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_port():
    """A port free for UDP and TCP on 127.0.0.1 now."""
    for _ in range(200):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        if _bindable(socket.SOCK_STREAM, port):
            return port
    raise RuntimeError("no free port")


def free_port_range(count):
    """`count` consecutive UDP ports, below the ephemeral range."""
    for _ in range(500):
        base = random.randrange(10000, 32000 - count) & ~1
        if all(_bindable(socket.SOCK_DGRAM, p) for p in range(base, base + count)):
            return base
    raise RuntimeError("no free port range")


def wait_tcp(port, timeout_s):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


class Harness:
    def __init__(self, build_dir, name):
        self.build = os.path.abspath(build_dir)
        self.tmp = tempfile.mkdtemp(prefix=f"dpturn-{name}-")
        self.procs = {}  # name -> Popen
        self.failed = False
        self.turn_port = self.admin_port = self.redis_port = None

    # -- processes ---------------------------------------------------------------
    def spawn(self, name, argv, **kw):
        out = open(os.path.join(self.tmp, name + ".log"), "wb")
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, **kw)
        p.own_group = bool(kw.get("start_new_session"))
        self.procs[name] = p
        return p

    def stop(self, name, sig=signal.SIGTERM):
        p = self.procs.pop(name, None)
        if p is None:
            return
        group = getattr(p, "own_group", False)  # started with start_new_session: its children too
        if p.poll() is None:
            (os.killpg(p.pid, sig) if group else p.send_signal(sig))
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                (os.killpg(p.pid, signal.SIGKILL) if group else p.kill())
                p.wait()
        if group:
            try:
                os.killpg(p.pid, signal.SIGKILL)  # helpers left behind by the leader
            except ProcessLookupError:
                pass

    def close(self):
        for name in list(self.procs):
            self.stop(name)
        if self.failed or os.environ.get("DPTURN_KEEP"):
            log(f"logs kept in {self.tmp}")
            for f in sorted(os.listdir(self.tmp)):
                if f.endswith(".log"):
                    with open(os.path.join(self.tmp, f), errors="replace") as fh:
                        tail = fh.readlines()[-20:]
                    print(f"----- {f} (tail)\n" + "".join(tail))
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def start_redis(self):
        self.redis_port = free_port()
        self.spawn("redis", ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", self.tmp, "--loglevel", "warning"])
        if not wait_tcp(self.redis_port, 10):
            raise RuntimeError("redis-server did not start")

    def start_turn_control(self, extra=()):
        self.turn_port = free_port()
        self.admin_port = free_port()
        relay = free_port_range(16)
        lines = [
            "listening-ip=127.0.0.1", "relay-ip=127.0.0.1", f"listening-port={self.turn_port}",
            f"min-port={relay}", f"max-port={relay + 15}", f"realm={REALM}", f"user={USER}:{PASS}",
            "user=bob:builder-1234", "allow-loopback-peers", "no-tls", "relay-threads=2",
            "admin-ip=127.0.0.1", f"admin-port={self.admin_port}", f"admin-token={TOKEN}",
            f"instance-id=py-{os.getpid()}",
        ]
        if self.redis_port:
            lines.append(f'state-redis="ip=127.0.0.1 port={self.redis_port}"')
        lines += list(extra)
        conf = os.path.join(self.tmp, "turn.conf")
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.spawn("turn-control", [os.path.join(self.build, "controlplane", "turn-control"), "-c", conf])
        if not wait_tcp(self.admin_port, 10):
            raise RuntimeError("turn-control's admin API did not come up")

    # -- clients -----------------------------------------------------------------
    def admin(self, method, path, body=None, token=TOKEN):
        req = urllib.request.Request(f"http://127.0.0.1:{self.admin_port}{path}", method=method,
                                     data=None if body is None else json.dumps(body).encode())
        if token:
            req.add_header("Authorization", "Bearer " + token)
        if body is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.headers, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read().decode()

    def turnctl(self, *args, timeout=30):
        argv = [os.path.join(self.build, "controlplane", "turnctl"), "--url", f"http://127.0.0.1:{self.admin_port}",
                "--token", TOKEN, *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)

    def turnctl_background(self, name, *args):
        argv = [os.path.join(self.build, "controlplane", "turnctl"), *args]
        return self.spawn(name, argv)

    def redis(self, *args):
        """One command over RESP (binary-safe: any byte in keys and values)."""
        parts = [a if isinstance(a, bytes) else str(a).encode() for a in args]
        msg = b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)
        with socket.create_connection(("127.0.0.1", self.redis_port), timeout=5) as s:
            s.sendall(msg)
            reply = s.recv(65536)
        if reply.startswith(b"-"):
            raise RuntimeError(f"redis: {reply!r}")
        return reply


def missing_tool_exit(what):
    """Missing tools: a failure in CI (scripts/setup.sh installs them), a skip elsewhere."""
    if os.environ.get("CI"):
        print(f"FAIL: {what} missing (scripts/setup.sh installs it)")
        sys.exit(1)
    print(f"SKIP: {what} missing (scripts/setup.sh installs it)")
    sys.exit(77)


class Checks:
    """PASS:/FAIL: lines; call it as check(what, ok, detail)."""

    def __init__(self):
        self.fails = []

    def __call__(self, what, ok, detail=""):
        print(("PASS: " if ok else "FAIL: ") + what + ("" if ok or not detail else f"\n      {detail}"), flush=True)
        if not ok:
            self.fails.append(what)
        return ok


def run_checks(name, build_dir, body):
    """Runs body(env, check) with a fresh Harness, closes it (keeping the logs
    when a check failed), prints the count and exits 1 on any failure (an
    exception in body counts as one)."""
    check = Checks()
    env = Harness(build_dir, name)
    try:
        body(env, check)
    except Exception as e:  # noqa: BLE001 -- reported as a failed check
        check("test ran", False, f"{type(e).__name__}: {e}")
    finally:
        env.failed = env.failed or bool(check.fails)
        env.close()
    print(f"{name}: {len(check.fails)} failed")
    sys.exit(1 if check.fails else 0)
