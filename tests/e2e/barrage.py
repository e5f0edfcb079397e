#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Bad-input barrage for the e2e tests (issue 7): every class of malformed or
hostile packet at every listener of a TURN server and at a relay port.
Run inside the test's client (or peer) namespace; traffic goes only to the
addresses given. Prints one JSON object: packets tried per class, and the
answers that classes expecting one got.

  barrage.py client SERVER_IP RELAY_IP:PORT ROUNDS [--tls-port 5349] [--alt-port 443]
      from the client side: UDP/TCP 3478, TCP alt port, TLS, and raw IP
      (fragments, wrong IP/UDP checksums) with scapy
  barrage.py peer RELAY_IP:PORT ROUNDS
      from the peer side: garbage and raw-IP classes at the relay port
  barrage.py l2 IFACE DST_MAC SERVER_IP RELAY_IP:PORT ROUNDS
      Ethernet frames on the server's own link (a router forwards no
      packet with a wrong IPv4 header checksum): wrong IP checksums, IP
      lengths that lie, truncated frames, at the TURN port and relay port

Classes (client side): truncated_header, lying_length, attribute_overrun,
huge_zero_length, unknown_required (expects 420), bad_integrity (expects
401), stale_nonce (expects 438), replayed_txid (each answered alike),
channel_data_unbound, send_unpermitted, random_bytes, tcp_garbage,
tls_garbage, ip_fragments, bad_ip_checksum, bad_udp_checksum.
"""
import json
import os
import random
import socket
import ssl
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import turnpy  # noqa: E402
from turnpy import Msg  # noqa: E402

COOKIE = turnpy.COOKIE
rng = random.Random(7)
tried = {}
answers = {}


def count(cls, n=1):
    tried[cls] = tried.get(cls, 0) + n


def answered(cls, code):
    answers.setdefault(cls, {})
    answers[cls][str(code)] = answers[cls].get(str(code), 0) + 1


def binding(extra=b""):
    return Msg(turnpy.BINDING).bytes() + extra


def udp(target, data):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.sendto(data, target)
    s.close()


def udp_ask(target, data, timeout=0.5):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    s.sendto(data, target)
    try:
        d = s.recv(4096)
    except socket.timeout:
        d = b""
    s.close()
    return d


def code_of(d):
    if len(d) < 20:
        return -1
    t = d[0] << 8 | d[1]
    if ((t >> 4) & 1) | ((t >> 7) & 2) == 2:
        return 0
    a = turnpy.parse_attrs(d).get(turnpy.A_ERROR)
    return (a[2] & 7) * 100 + a[3] if a else -2


def malformed_stun():
    """(class, bytes) pairs of malformed STUN messages."""
    out = []
    good = Msg(turnpy.ALLOCATE).add(turnpy.A_TRANSPORT, bytes([17, 0, 0, 0])).add(turnpy.A_USERNAME, b"alice").bytes()
    for n in range(1, 20):
        out.append(("truncated_header", good[:n]))
    for delta in (-8, -4, 4, 8, 1, 2, 3, 1000):
        m = bytearray(good)
        struct.pack_into("!H", m, 2, max(0, len(good) - 20 + delta) & 0xFFFF)
        out.append(("lying_length", bytes(m)))
    body = struct.pack("!HH", turnpy.A_USERNAME, 200) + b"x" * 8
    out.append(("attribute_overrun", struct.pack("!HHI", 0x0001, len(body), COOKIE) + os.urandom(12) + body))
    body = struct.pack("!HH", turnpy.A_PEER, 0xFFFF) + b"\0" * 4
    out.append(("attribute_overrun", struct.pack("!HHI", 0x0001, len(body), COOKIE) + os.urandom(12) + body))
    out.append(("huge_zero_length", struct.pack("!HHI", 0x0003, 0xFFFC, COOKIE) + os.urandom(12) + b"\0" * 8))
    z = Msg(turnpy.CREATE_PERMISSION).add(turnpy.A_PEER, b"").add(turnpy.A_LIFETIME, b"").bytes()
    out.append(("huge_zero_length", z))
    out.append(("huge_zero_length", struct.pack("!HHI", 0x0001, 0, COOKIE) + b"\0" * 12 + b"\0" * 64))
    return out


def client_barrage(server, relay, rounds, tls_port, alt_port):
    target = (server, 3478)
    user = turnpy.Client(target, "alice", "wonderland-42", timeout=1.0)
    code, _ = user.request(turnpy.ALLOCATE, lambda m: m.add(turnpy.A_TRANSPORT, bytes([17, 0, 0, 0])))
    allocated = code == 0
    for _ in range(rounds):
        for cls, data in malformed_stun():
            udp(target, data)
            count(cls)
        # 420: unknown comprehension-required attribute (RFC 8489 §6.3.1.1).
        answered("unknown_required", code_of(udp_ask(target, Msg(turnpy.BINDING).add(0x7FFF, b"x").bytes())))
        count("unknown_required")
        # 401: integrity that does not verify (a valid nonce, the wrong key).
        m = Msg(turnpy.ALLOCATE).add(turnpy.A_TRANSPORT, bytes([17, 0, 0, 0]))
        m.add(turnpy.A_USERNAME, b"alice").add(turnpy.A_REALM, user.realm).add(turnpy.A_NONCE, user.nonce)
        m.add(turnpy.A_MI, os.urandom(20))
        answered("bad_integrity", code_of(user_ask(user, m.bytes())))
        count("bad_integrity")
        # 438: a forged nonce.
        m = Msg(turnpy.ALLOCATE).add(turnpy.A_TRANSPORT, bytes([17, 0, 0, 0]))
        m.add(turnpy.A_USERNAME, b"alice").add(turnpy.A_REALM, user.realm).add(turnpy.A_NONCE, b"obMatJos2" + os.urandom(8).hex().encode())
        m.integrity(user.key())
        answered("stale_nonce", code_of(user_ask(user, m.bytes())))
        count("stale_nonce")
        # The same transaction id three times: answered each time, alike.
        txid = os.urandom(12)
        codes = set()
        for _ in range(3):
            codes.add(udp_ask(target, Msg(turnpy.BINDING, txid=txid).bytes())[8:20] == txid)
            count("replayed_txid")
        answered("replayed_txid", "all_answered" if codes == {True} else "missing")
        # ChannelData on channels never bound, with and without an allocation.
        for ch in (0x4000, 0x4ABC, 0x7FFE):
            d = struct.pack("!HH", ch, 8) + os.urandom(8)
            udp(target, d)
            if allocated:
                user.sock.send(d)
            count("channel_data_unbound", 2 if allocated else 1)
        # Send indications to peers without a permission (incl. SSRF targets).
        for ip in ("10.77.2.2", "127.0.0.1", "169.254.169.254", server):
            ind = Msg(turnpy.SEND, turnpy.IND).xor_addr(turnpy.A_PEER, ip, 3480).add(turnpy.A_DATA, b"no permission")
            (user.sock.send if allocated else (lambda d: udp(target, d)))(ind.bytes())
            count("send_unpermitted")
        for _ in range(10):
            udp(target, os.urandom(rng.randrange(1, 600)))
            count("random_bytes")
        tcp_barrage(server, 3478, "tcp_garbage")
        if alt_port:
            tcp_barrage(server, alt_port, "tcp_garbage")
        if tls_port:
            tls_barrage(server, tls_port)
    raw_barrage(server, 3478, relay)
    if allocated:
        user.request(turnpy.REFRESH, lambda m: m.add(turnpy.A_LIFETIME, struct.pack("!I", 0)))


def user_ask(user, data):
    user.sock.send(data)
    try:
        while True:
            d = user.sock.recv(4096)
            if d[8:20] == data[8:20]:
                return d
    except socket.timeout:
        return b""


def tcp_barrage(server, port, cls):
    frames = [os.urandom(64), b"\x00\x01\xff\xfc" + os.urandom(16), struct.pack("!HH", 0x4000, 0xFFFF) + b"x" * 10,
              b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"] + [d for _, d in malformed_stun()[:6]]
    for f in frames:
        try:
            s = socket.create_connection((server, port), timeout=1)
            s.sendall(f)
            s.close()
        except OSError:
            pass
        count(cls)


def tls_barrage(server, port):
    # Garbage instead of a ClientHello, then malformed STUN inside TLS.
    for f in (os.urandom(100), b"\x16\x03\x01\xff\xff" + os.urandom(50)):
        try:
            s = socket.create_connection((server, port), timeout=1)
            s.sendall(f)
            s.close()
        except OSError:
            pass
        count("tls_garbage")
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((server, port), timeout=2) as raw, ctx.wrap_socket(raw) as s:
            for _, d in malformed_stun()[:10]:
                s.sendall(d)
                count("tls_garbage")
    except OSError:
        count("tls_garbage")


def raw_barrage(server, port, relay):
    from scapy.all import IP, UDP, Raw, fragment, send, conf  # noqa: E402
    conf.verb = 0
    targets = [(server, port)]
    if relay:
        rip, rport = relay.rsplit(":", 1)
        targets.append((rip, int(rport)))
    for ip, p in targets:
        big = IP(dst=ip, id=rng.randrange(65536)) / UDP(sport=40000, dport=p) / Raw(binding() + b"\0" * 1400)
        frags = fragment(big, fragsize=400)
        send(frags)
        count("ip_fragments", len(frags))
        send(IP(dst=ip, flags="MF", frag=0) / UDP(sport=40001, dport=p) / Raw(b"\x40\x00\x00\x08" + b"A" * 8))
        send(IP(dst=ip, frag=100) / Raw(b"orphan fragment"))
        count("ip_fragments", 2)
        for payload in (binding(), struct.pack("!HH", 0x4000, 4) + b"abcd"):
            send(IP(dst=ip, chksum=0x1234) / UDP(sport=40002, dport=p) / Raw(payload))
            count("bad_ip_checksum")
            send(IP(dst=ip) / UDP(sport=40003, dport=p, chksum=0x4321) / Raw(payload))
            count("bad_udp_checksum")


def peer_barrage(relay, rounds):
    rip, rport = relay.rsplit(":", 1)
    target = (rip, int(rport))
    for _ in range(rounds):
        for _ in range(10):
            udp(target, os.urandom(rng.randrange(0, 1400)))
            count("relay_random_bytes")
        for _, d in malformed_stun():
            udp(target, d)
            count("relay_malformed_stun")
    raw_barrage(rip, int(rport), None)


def l2_barrage(iface, mac, server, relay, rounds):
    from scapy.all import Ether, IP, UDP, Raw, sendp, conf  # noqa: E402
    conf.verb = 0
    rip, rport = relay.rsplit(":", 1)
    frames = []
    for ip, port in ((server, 3478), (rip, int(rport))):
        for payload in (binding(), struct.pack("!HH", 0x4000, 4) + b"abcd"):
            base = Ether(dst=mac) / IP(src="10.77.1.2", dst=ip) / UDP(sport=40010, dport=port) / Raw(payload)
            frames.append(("bad_ip_checksum", Ether(dst=mac) / IP(src="10.77.1.2", dst=ip, chksum=0xBEEF)
                           / UDP(sport=40010, dport=port) / Raw(payload)))
            raw = bytearray(bytes(base))
            struct.pack_into("!H", raw, 16, 1400)  # IPv4 total length beyond the frame
            struct.pack_into("!H", raw, 24, 0)
            frames.append(("lying_ip_length", Ether(bytes(raw))))
            frames.append(("truncated_frame", Ether(bytes(base)[:30])))
            frames.append(("bad_udp_checksum", Ether(dst=mac) / IP(src="10.77.1.2", dst=ip)
                           / UDP(sport=40010, dport=port, chksum=0x1111) / Raw(payload)))
    for _ in range(rounds):
        for cls, f in frames:
            sendp(f, iface=iface)
            count(cls)


def main():
    args = sys.argv[1:]
    t0 = time.time()
    if args[0] == "client":
        tls_port = alt_port = 0
        if "--tls-port" in args:
            tls_port = int(args[args.index("--tls-port") + 1])
        if "--alt-port" in args:
            alt_port = int(args[args.index("--alt-port") + 1])
        client_barrage(args[1], args[2] if args[2] != "-" else None, int(args[3]), tls_port, alt_port)
    elif args[0] == "l2":
        l2_barrage(args[1], args[2], args[3], args[4], int(args[5]))
    else:
        peer_barrage(args[1], int(args[2]))
    print(json.dumps({"tried": tried, "answers": answers, "total": sum(tried.values()),
                      "seconds": round(time.time() - t0, 1)}, sort_keys=True))


if __name__ == "__main__":
    main()
