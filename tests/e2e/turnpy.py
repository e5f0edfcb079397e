#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""A small TURN client (RFC 8656 over RFC 8489, long-term credentials, MD5
key) for the fault and bad-input e2e tests: it holds one allocation over a
UDP socket across server restarts and reports each step's result code.

  turnpy.py session SERVER:PORT USER PASS PEER_IP:PORT
      Allocate, CreatePermission(PEER), ChannelBind(0x4000, PEER), print
      "ready <relay>", then read commands from stdin, one per line, and print
      "<command> <code>" (0 = success, else the STUN error code, -1 = no
      answer): refresh | perm | bind | send N | cdata N | pace N MS | quit.
      send/cdata N: N Send indications / ChannelData frames to PEER.
      pace N MS: N ChannelData frames, one every MS milliseconds.
  turnpy.py sink IP:PORT SECONDS FILE
      A UDP peer: appends "<unix time> <bytes>" to FILE per datagram, for
      SECONDS (bounded).
  turnpy.py ping SERVER:PORT COUNT INTERVAL
      COUNT Binding transactions, one every INTERVAL s, each as a STUN
      client over UDP makes it (RFC 8489 §6.2.1): sent, and sent again
      after 500 ms and 1.5 s without an answer, given up after 2.5 s:
      prints "answered A/COUNT max_ms M resent R" (M from the first send;
      R: requests sent again, e.g. after a drop in an overloaded ring).
  turnpy.py dual SERVER:PORT USER PASS N PEER:PORT...
      A dual-stack allocation (RFC 8656 §7.2, ADDITIONAL-ADDRESS-FAMILY
      IPv6): prints "relays <ipv4 relay> <ipv6 relay>"; a permission for
      every PEER (IPv4 or IPv6, "[v6]:port"); N Send indications to each,
      the echoes counted as Data indications; then channel 0x4000 + i to
      PEER i, N ChannelData frames to each, the echoes counted as
      ChannelData. Prints "peer P send R/N cdata R/N" per peer; exit 0 when
      every echo came back. SERVER may be IPv4 or IPv6. TURNPY_SINGLE=1:
      the same without ADDITIONAL-ADDRESS-FAMILY (one IPv4 relayed address,
      whatever the client's family).
Environment: TURNPY_LIFETIME (seconds, default 600) for the Allocate.
Test traffic only inside the test's namespaces.
"""
import hashlib
import hmac
import os
import socket
import struct
import sys
import time
import zlib

COOKIE = 0x2112A442
BINDING, ALLOCATE, REFRESH, SEND, CREATE_PERMISSION, CHANNEL_BIND = 1, 3, 4, 6, 8, 9
REQ, IND = 0, 1
A_USERNAME, A_MI, A_ERROR, A_CHANNEL, A_LIFETIME, A_PEER, A_DATA, A_REALM, A_NONCE = (
    0x0006, 0x0008, 0x0009, 0x000C, 0x000D, 0x0012, 0x0013, 0x0014, 0x0015)
A_RELAYED, A_TRANSPORT, A_FINGERPRINT = 0x0016, 0x0019, 0x8028
A_ADDITIONAL_FAMILY = 0x8000  # ADDITIONAL-ADDRESS-FAMILY (RFC 8656 §18.11)


def msg_type(method, cls):
    return ((method & 0x000F) | ((method & 0x0070) << 1) | ((method & 0x0F80) << 2)
            | ((cls & 1) << 4) | ((cls & 2) << 7))


class Msg:
    def __init__(self, method, cls=REQ, txid=None):
        self.type = msg_type(method, cls)
        self.txid = txid or os.urandom(12)
        self.body = b""

    def header(self, length):
        return struct.pack("!HHI", self.type, length, COOKIE) + self.txid

    def add(self, atype, value):
        self.body += struct.pack("!HH", atype, len(value)) + value + b"\0" * ((-len(value)) % 4)
        return self

    def xor_addr(self, atype, ip, port):
        """XOR-*-ADDRESS (RFC 8489 §14.2): IPv4, or IPv6 XORed with cookie and transaction id."""
        v6 = ":" in ip
        raw = socket.inet_pton(socket.AF_INET6 if v6 else socket.AF_INET, ip)
        x = bytes(a ^ b for a, b in zip(raw, struct.pack("!I", COOKIE) + self.txid))
        return self.add(atype, struct.pack("!BBH", 0, 2 if v6 else 1, port ^ (COOKIE >> 16)) + x)

    def integrity(self, key):
        mac = hmac.new(key, self.header(len(self.body) + 24) + self.body, "sha1").digest()
        return self.add(A_MI, mac)

    def fingerprint(self):
        crc = zlib.crc32(self.header(len(self.body) + 8) + self.body) ^ 0x5354554E
        return self.add(A_FINGERPRINT, struct.pack("!I", crc))

    def bytes(self):
        return self.header(len(self.body)) + self.body


def parse_attrs(data):
    attrs = {}
    i = 20
    while i + 4 <= len(data):
        t, n = struct.unpack("!HH", data[i:i + 4])
        attrs.setdefault(t, data[i + 4:i + 4 + n])
        i += 4 + n + ((-n) % 4)
    return attrs


def unxor(v, txid=b"\0" * 12):
    port = struct.unpack("!H", v[2:4])[0] ^ (COOKIE >> 16)
    if v[1] == 2:  # IPv6: XORed with the cookie and the transaction id
        ip = bytes(a ^ b for a, b in zip(v[4:20], struct.pack("!I", COOKIE) + txid))
        return socket.inet_ntop(socket.AF_INET6, ip), port
    ip = bytes(a ^ b for a, b in zip(v[4:8], struct.pack("!I", COOKIE)))
    return socket.inet_ntoa(ip), port


def all_attrs(data, atype):
    """Every value of one attribute type, in order (parse_attrs keeps the first)."""
    out, i = [], 20
    while i + 4 <= len(data):
        t, n = struct.unpack("!HH", data[i:i + 4])
        if t == atype:
            out.append(data[i + 4:i + 4 + n])
        i += 4 + n + ((-n) % 4)
    return out


def split_hostport(text):
    host, port = text.rsplit(":", 1)
    return host.strip("[]"), int(port)


class Client:
    def __init__(self, server, user, password, timeout=1.0):
        self.server = server
        self.user = user.encode()
        self.password = password.encode()
        self.realm = b""
        self.nonce = b""
        self.sock = socket.socket(socket.AF_INET6 if ":" in server[0] else socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(timeout)
        self.sock.connect(server)

    def key(self):
        return hashlib.md5(self.user + b":" + self.realm + b":" + self.password).digest()

    def transact(self, build, tries=3):
        """build(Msg) adds attributes; signs, retries once on 401/438."""
        for attempt in range(2):
            m = Msg(self.method)
            build(m)
            if self.nonce:
                m.add(A_USERNAME, self.user).add(A_REALM, self.realm).add(A_NONCE, self.nonce)
                m.integrity(self.key())
            m.fingerprint()
            raw = m.bytes()
            resp = None
            for _ in range(tries):
                self.sock.send(raw)
                try:
                    while True:
                        d = self.sock.recv(4096)
                        if len(d) >= 20 and d[8:20] == m.txid:
                            resp = d
                            break
                except socket.timeout:
                    continue
                break
            if resp is None:
                return -1, {}
            cls = ((resp[0] << 8 | resp[1]) >> 4 & 1) | ((resp[0] << 8 | resp[1]) >> 7 & 2)
            attrs = parse_attrs(resp)
            self.last = resp
            if cls == 2:
                return 0, attrs
            code = 0
            if A_ERROR in attrs:
                e = attrs[A_ERROR]
                code = (e[2] & 7) * 100 + e[3]
            if code in (401, 438) and attempt == 0 and A_NONCE in attrs:
                self.realm = attrs.get(A_REALM, self.realm)
                self.nonce = attrs[A_NONCE]
                continue
            return code, attrs
        return code, attrs

    def request(self, method, build=lambda m: None):
        self.method = method
        return self.transact(build)


LIFETIME = int(os.environ.get("TURNPY_LIFETIME", "600"))


def allocate_from_new_port(server, user, password, build, tries=3):
    """Allocate from a fresh socket; on 437 Allocation Mismatch (the source
    port is still the 5-tuple of an allocation the server holds, e.g. one a
    killed client left behind) again from another port, as RFC 8656 §7.4
    lets a client do and libwebrtc does. -> (client, code, attrs)"""
    for _ in range(tries):
        c = Client(server, user, password)
        code, attrs = c.request(ALLOCATE, build)
        if code != 437:
            return c, code, attrs
        c.sock.close()
    return c, code, attrs



def sink(argv):
    ip, port = argv[0].rsplit(":", 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((ip, int(port)))
    end = time.time() + float(argv[1])
    with open(argv[2], "a") as f:
        while time.time() < end:
            s.settimeout(max(0.01, end - time.time()))
            try:
                d = s.recv(65535)
            except socket.timeout:
                continue
            f.write("%.3f %d\n" % (time.time(), len(d)))
            f.flush()
    return 0


def ping(argv):
    host, port = argv[0].rsplit(":", 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect((host, int(port)))
    n, ok, worst, resent = int(argv[1]), 0, 0.0, 0
    for _ in range(n):
        m = Msg(BINDING)
        t = time.time()
        # RFC 8489 §6.2.1: RTO 500 ms, doubled after each retransmission;
        # three transmissions here (at 0, 0.5 and 1.5 s), then 1 s more.
        answered = False
        for attempt, wait in enumerate((0.5, 1.0, 1.0)):
            if attempt:
                resent += 1
            s.send(m.bytes())
            deadline = time.time() + wait
            while not answered and time.time() < deadline:
                s.settimeout(max(0.001, deadline - time.time()))
                try:
                    d = s.recv(4096)
                except socket.timeout:
                    break
                if d[8:20] == m.txid:
                    answered = True
                    ok += 1
                    worst = max(worst, time.time() - t)
            if answered:
                break
        time.sleep(float(argv[2]))
    print("answered %d/%d max_ms %.1f resent %d" % (ok, n, worst * 1000, resent), flush=True)
    return 0 if ok == n else 1


def session(argv):
    host, port = argv[0].rsplit(":", 1)
    peer_ip, peer_port = argv[3].rsplit(":", 1)
    peer_port = int(peer_port)
    c, code, attrs = allocate_from_new_port((host, int(port)), argv[1], argv[2],
                                            lambda m: m.add(A_TRANSPORT, bytes([17, 0, 0, 0])).add(A_LIFETIME, struct.pack("!I", LIFETIME)))
    if code != 0:
        print(f"allocate {code}", flush=True)
        return 1
    relay = "%s:%d" % unxor(attrs[A_RELAYED])
    perm = lambda: c.request(CREATE_PERMISSION, lambda m: m.xor_addr(A_PEER, peer_ip, 0))[0]
    bind = lambda: c.request(CHANNEL_BIND, lambda m: m.add(A_CHANNEL, bytes([0x40, 0, 0, 0])).xor_addr(A_PEER, peer_ip, peer_port))[0]
    if perm() != 0 or bind() != 0:
        print("setup failed", flush=True)
        return 1
    print(f"ready {relay}", flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if not cmd:
            continue
        if cmd[0] == "quit":
            break
        if cmd[0] == "refresh":
            code = c.request(REFRESH, lambda m: m.add(A_LIFETIME, struct.pack("!I", 600)))[0]
        elif cmd[0] == "perm":
            code = perm()
        elif cmd[0] == "bind":
            code = bind()
        elif cmd[0] == "send":
            for i in range(int(cmd[1])):
                c.sock.send(Msg(SEND, IND).xor_addr(A_PEER, peer_ip, peer_port).add(A_DATA, b"send %d" % i).bytes())
            code = 0
        elif cmd[0] == "cdata":
            for i in range(int(cmd[1])):
                d = b"cdata %d" % i
                c.sock.send(struct.pack("!HH", 0x4000, len(d)) + d)
            code = 0
        elif cmd[0] == "pace":  # pace N MS: N ChannelData frames, one every MS ms (a steady stream)
            n, every = int(cmd[1]), float(cmd[2]) / 1000.0
            t = time.time()
            errors = 0
            for i in range(n):
                d = b"pace %d" % i
                try:
                    c.sock.send(struct.pack("!HH", 0x4000, len(d)) + d)
                except OSError:  # ICMP unreachable while the server's address moves: go on, as media does
                    errors += 1
                t += every
                time.sleep(max(0.0, t - time.time()))
            code = 0 if errors < n else 1
        else:
            code = -2
        print(f"{cmd[0]} {code}", flush=True)
    c.request(REFRESH, lambda m: m.add(A_LIFETIME, struct.pack("!I", 0)))
    return 0


def dual(argv):
    server = split_hostport(argv[0])
    n = int(argv[3])
    peers = [split_hostport(p) for p in argv[4:]]
    single = os.environ.get("TURNPY_SINGLE") == "1"

    def allocate(m):
        m.add(A_TRANSPORT, bytes([17, 0, 0, 0]))
        if not single:
            m.add(A_ADDITIONAL_FAMILY, bytes([2, 0, 0, 0]))
        m.add(A_LIFETIME, struct.pack("!I", LIFETIME))
    c, code, attrs = allocate_from_new_port(server, argv[1], argv[2], allocate)
    if code != 0:
        print(f"allocate {code}", flush=True)
        return 1
    relays = ["%s:%d" % unxor(v, c.last[8:20]) for v in all_attrs(c.last, A_RELAYED)]
    print("relays " + " ".join(relays), flush=True)
    if len(relays) != (1 if single else 2):
        return 1
    for ip, _ in peers:
        code = c.request(CREATE_PERMISSION, lambda m: m.xor_addr(A_PEER, ip, 0))[0]
        if code != 0:
            print(f"perm {ip} {code}", flush=True)
            return 1
    c.sock.settimeout(0.05)

    def count(counts, d):  # one echo: ChannelData by channel, a Data indication by its peer
        if len(d) >= 4 and 0x40 <= d[0] < 0x80:
            ch = d[0] << 8 | d[1]
            if ch in counts:
                counts[ch] += 1
        elif len(d) >= 20 and (d[0] << 8 | d[1]) == msg_type(0x007, IND):
            pa = parse_attrs(d).get(A_PEER)
            key = unxor(pa, d[8:20]) if pa else None
            if key in counts:
                counts[key] += 1

    def collect(counts, seconds):  # echoes until every count is N or time is up
        end = time.time() + seconds
        while time.time() < end and min(counts.values()) < n:
            try:
                count(counts, c.sock.recv(65535))
            except socket.timeout:
                continue

    def drain(counts):  # what has arrived so far, while sending (the socket buffer holds ~100 echoes)
        # Non-blocking for this: a socket with a timeout waits that long for
        # readiness before every recv, MSG_DONTWAIT or not (50 ms x 400 calls).
        c.sock.settimeout(0)
        try:
            while True:
                try:
                    count(counts, c.sock.recv(65535))
                except (BlockingIOError, socket.timeout):
                    return
        finally:
            c.sock.settimeout(0.05)

    time.sleep(0.5)  # the data plane learns the permissions from the store (ms)
    sent = {p: 0 for p in peers}
    for i in range(n):
        for ip, port in peers:
            c.sock.send(Msg(SEND, IND).xor_addr(A_PEER, ip, port).add(A_DATA, b"send %d" % i).bytes())
        time.sleep(0.002)
        drain(sent)
    collect(sent, 3.0)
    for i, (ip, port) in enumerate(peers):
        ch = bytes([0x40, i, 0, 0])
        code = c.request(CHANNEL_BIND, lambda m: m.add(A_CHANNEL, ch).xor_addr(A_PEER, ip, port))[0]
        if code != 0:
            print(f"bind {ip} {code}", flush=True)
            return 1
    c.sock.settimeout(0.05)
    time.sleep(0.5)
    cdata = {0x4000 + i: 0 for i in range(len(peers))}
    for k in range(n):
        for i in range(len(peers)):
            d = b"cdata %d" % k
            c.sock.send(struct.pack("!HH", 0x4000 + i, len(d)) + d)
        time.sleep(0.002)
        drain(cdata)
    collect(cdata, 3.0)
    ok = True
    for i, p in enumerate(peers):
        print("peer %s send %d/%d cdata %d/%d" % (argv[4 + i], sent[p], n, cdata[0x4000 + i], n), flush=True)
        ok = ok and sent[p] == n and cdata[0x4000 + i] == n
    c.sock.settimeout(1.0)
    c.request(REFRESH, lambda m: m.add(A_LIFETIME, struct.pack("!I", 0)))
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) >= 7 and sys.argv[1] == "dual":
        sys.exit(dual(sys.argv[2:]))
    if len(sys.argv) >= 6 and sys.argv[1] == "session":
        sys.exit(session(sys.argv[2:]))
    if len(sys.argv) >= 5 and sys.argv[1] == "ping":
        sys.exit(ping(sys.argv[2:]))
    if len(sys.argv) >= 5 and sys.argv[1] == "sink":
        sys.exit(sink(sys.argv[2:]))
    print(__doc__)
    sys.exit(2)
