#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Golden frames for turn-dataplane (tests/dataplane/golden/run_golden.sh).

Writes into --out:
  in.pcap            what arrives on the network port (net_pcap0 rx)
  expected_out.pcap  what turn-dataplane must transmit on it, in order
  expected_punt.pcap what it must hand to the exception port, unchanged, in order
  empty.pcap         the exception port's rx (nothing comes from the kernel)
  state.redis        redis-cli commands installing the allocations (docs/state.md)
  dp.conf            the data plane's configuration
  expected_stats.txt the counters the stats file must show (key=value)
  expected_traffic.txt  "KEY FIELD VALUE": the dp_* traffic counters the data
                     plane must have added to Redis (HINCRBY, every second)

The expected frames are built here with scapy and a STUN encoder of this
file's own, independently of dataplane/: checksums are scapy's full
recomputation. Pcap timestamps are not part of the comparison (net_pcap
stamps transmitted frames with its own clock).

Topology (the port: 192.0.2.10/24, gateway 192.0.2.1, relay IPs .10 and .11):

  A  client 198.51.100.10:50000  relay 192.0.2.10:49200  slot 0
     perms 203.0.113.5 (P1), 192.0.2.50 (P2, on link), 192.0.2.11 (relay IP of B, E)
     chan 0x4000 -> P1 203.0.113.5:6000, 0x4001 -> B's relay 192.0.2.11:49300
  B  client 198.51.100.20:50001  relay 192.0.2.11:49300  slot 1
     perm 192.0.2.10 (A's relay IP); chan 0x4002 -> A's relay 192.0.2.10:49200
  C  client 198.51.100.30:50002  relay 192.0.2.10:49400  slot 2
     perm 203.0.113.7 expired, perm 203.0.113.8 live; chan 0x4000 -> 203.0.113.8:8000 expired
     (the snapshot reader, common/state/store.cpp, loads live permissions
     and channels only: C's expired ones never reach the tables; entries
     that expire while held are tests/dataplane/fastpath_*_test.cpp's)
  E  client 198.51.100.50:50004  relay 192.0.2.11:49600  slot 3
     perm 192.0.2.10 (A's relay IP); no channel
  D  client 198.51.100.40:50003  relay 192.0.2.10:49500: expired 5 s ago. Its
     records are still in Redis (keys outlive an allocation by 60 s) with its
     score in dpturn:allocs in the past, so a snapshot must not load it.

Slots: the tables hand out slots 0, 1, 2, ... in snapshot order, and the
snapshot reads dpturn:allocs by score; A, B, C, E get distinct increasing
scores. Data indication transaction ids are therefore computed EXACTLY (not
masked): the one worker's counter (starts at 0, +1 per Data indication, 8
bytes in host order = little-endian on x86-64) followed by the destination
allocation's slot (4 bytes, little-endian); see peer_to_client in
dataplane/pipeline/fastpath.h.
"""

import argparse
import os
import struct
import sys
import zlib

from scapy.all import ARP, IP, UDP, Ether, IPv6, Raw, wrpcap  # noqa: E402

PORT_MAC = "02:70:63:61:70:00"  # net_pcap's first port (DPDK 22.11: 02:70:63:61:70:<index>)
GW_MAC = "02:00:00:00:00:01"
P2_MAC = "02:00:00:00:00:50"
SERVER = "192.0.2.10"
RELAY2 = "192.0.2.11"
GW = "192.0.2.1"
TURN_PORT = 3478

A = dict(id="golden/192.0.2.10:49200", client=("198.51.100.10", 50000), relay=(SERVER, 49200), slot=0)
B = dict(id="golden/192.0.2.11:49300", client=("198.51.100.20", 50001), relay=(RELAY2, 49300), slot=1)
C = dict(id="golden/192.0.2.10:49400", client=("198.51.100.30", 50002), relay=(SERVER, 49400), slot=2)
E = dict(id="golden/192.0.2.11:49600", client=("198.51.100.50", 50004), relay=(RELAY2, 49600), slot=3)
D = dict(id="golden/192.0.2.10:49500", client=("198.51.100.40", 50003), relay=(SERVER, 49500))
OTHER = dict(id="other/192.0.2.99:49700", client=("198.51.100.60", 50005), relay=("192.0.2.99", 49700))
P1 = ("203.0.113.5", 6000)
P2 = ("192.0.2.50", 7000)  # on link: its own neighbour entry
P3 = ("203.0.113.7", 9000)  # C's expired permission
P4 = ("203.0.113.8", 8000)  # C's expired channel

MAGIC = 0x2112A442


def payload(n, seed):
    return bytes((seed * 31 + i * 7 + (i >> 8)) & 0xFF for i in range(n))


# ---- STUN, encoded here ------------------------------------------------------

def attr(t, v):
    return struct.pack("!HH", t, len(v)) + v + b"\0" * (-len(v) % 4)


def xor_peer(ip, port):
    a = bytes(int(x) for x in ip.split("."))
    x = bytes(b ^ m for b, m in zip(a, struct.pack("!I", MAGIC)))
    return struct.pack("!BBH", 0, 1, port ^ (MAGIC >> 16)) + x


def stun(msg_type, txid, attrs, fingerprint=False):
    body = b"".join(attrs)
    if fingerprint:
        hdr = struct.pack("!HHI", msg_type, len(body) + 8, MAGIC) + txid
        crc = zlib.crc32(hdr + body) ^ 0x5354554E
        return hdr + body + attr(0x8028, struct.pack("!I", crc))
    return struct.pack("!HHI", msg_type, len(body), MAGIC) + txid + body


def send_indication(peer, data, extra=True, with_data=True):
    attrs = []
    if extra:
        attrs.append(attr(0x8022, b"golden test client"))  # SOFTWARE (18 bytes, padded)
    attrs.append(attr(0x0012, xor_peer(*peer)))
    if with_data:
        attrs.append(attr(0x0013, data))
    return stun(0x0016, bytes(range(1, 13)), attrs, fingerprint=extra)


def data_indication(peer, data, txn, slot):
    txid = struct.pack("<QI", txn, slot)
    return stun(0x0017, txid, [attr(0x0012, xor_peer(*peer)), attr(0x0013, data)])


def channel_data(ch, data, pad=b""):
    return struct.pack("!HH", ch, len(data)) + data + pad


# ---- frames --------------------------------------------------------------------

def inbound(src, dst, body, src_mac=GW_MAC, checksum=True, **ip):
    """A frame arriving on the port (TTL/ID/TOS differ from what we send)."""
    u = UDP(sport=src[1], dport=dst[1])
    if not checksum:
        u.chksum = 0
    ipf = dict(ttl=57, id=0x1234, tos=0xB8)
    ipf.update(ip)
    return Ether(dst=PORT_MAC, src=src_mac) / IP(src=src[0], dst=dst[0], **ipf) / u / Raw(body)


def outbound(src, dst, body, dst_mac=GW_MAC, checksum=True):
    """What the fast path writes: TTL 64, ID 0, DF, TOS 0, checksums recomputed."""
    u = UDP(sport=src[1], dport=dst[1])
    if not checksum:
        u.chksum = 0
    return Ether(dst=dst_mac, src=PORT_MAC) / IP(src=src[0], dst=dst[0], ttl=64, id=0, flags="DF", tos=0) / u / Raw(body)


def to_client(alloc, body):
    return outbound((SERVER, TURN_PORT), alloc["client"], body)


def from_client(alloc, body, **kw):
    return inbound(alloc["client"], (SERVER, TURN_PORT), body, **kw)


def build():
    """Returns (input frames, expected tx, expected punts, expected counters,
    expected per-allocation traffic {(id, field): value})."""
    frames, tx, punt = [], [], []
    traffic = {}
    stats = {k: 0 for k in (
        "channel_data_to_peer", "send_indication_to_peer", "peer_to_client_channel_data",
        "peer_to_client_data_indication", "hairpin", "punted", "from_kernel",
        "drop_malformed", "drop_bad_channel_data", "drop_bad_send_indication", "drop_too_big",
        "drop_tx_full", "drop_punt_congestion",
        "punt_not_turn", "punt_control", "punt_unknown_flow", "punt_expired", "punt_no_permission",
        "punt_no_neighbour", "punt_ipv6", "punt_arp", "punt_other")}
    txn = [0]

    def forward(frame, expected, path, alloc, direction, nbytes, sender=None):
        """alloc: whose counters; a hairpin counts to_client for the receiving
        allocation and to_peer for the sending one (sender)."""
        frames.append(frame)
        tx.append(expected)
        stats[path] += 1
        counts = [(alloc, direction)] + ([(sender, "peer")] if sender else [])
        for who, dirn in counts:
            for field, n in (("dp_packets_to_" + dirn, 1), ("dp_bytes_to_" + dirn, nbytes)):
                traffic[(who["id"], field)] = traffic.get((who["id"], field), 0) + n

    def punted(frame, reason):
        frames.append(frame)
        punt.append(frame)  # unchanged
        stats["punted"] += 1
        stats["punt_" + reason] += 1

    def dropped(frame, reason):
        frames.append(frame)
        stats["drop_" + reason] += 1

    def next_txn():
        txn[0] += 1
        return txn[0]

    # 1. A -> P1, ChannelData on a bound channel: 33 data bytes + 3 bytes of UDP padding.
    d = payload(33, 1)
    forward(from_client(A, channel_data(0x4000, d, b"\xAA\xBB\xCC")),
            outbound(A["relay"], P1, d), "channel_data_to_peer", A, "peer", 33)
    # 2. P1 -> A's relay, same channel the other way: ChannelData to client A.
    d = payload(40, 2)
    forward(inbound(P1, A["relay"], d), to_client(A, channel_data(0x4000, d)), "peer_to_client_channel_data", A, "client", 40)
    # 3. A's Send indication to P2 (SOFTWARE before, FINGERPRINT after DATA).
    d = payload(25, 3)
    forward(from_client(A, send_indication(P2, d)), outbound(A["relay"], P2, d, dst_mac=P2_MAC),
            "send_indication_to_peer", A, "peer", 25)
    # 4. P2 -> A's relay: permission, no channel: Data indication to client A.
    d = payload(27, 4)
    forward(inbound(P2, A["relay"], d, src_mac=P2_MAC),
            to_client(A, data_indication(P2, d, next_txn(), A["slot"])), "peer_to_client_data_indication", A, "client", 27)
    # 5. Hairpin: A's ChannelData to B's relay; B has a channel to A's relay: ChannelData to client B.
    d = payload(50, 5)
    forward(from_client(A, channel_data(0x4001, d)), to_client(B, channel_data(0x4002, d)), "hairpin", B, "client", 50, sender=A)
    # 6. Hairpin back: B's ChannelData (odd length, padded) to A's relay: ChannelData 0x4001 to client A.
    d = payload(61, 6)
    forward(from_client(B, channel_data(0x4002, d, b"\x01\x02\x03")), to_client(A, channel_data(0x4001, d)),
            "hairpin", A, "client", 61, sender=B)
    # 7. Hairpin: A's Send indication to E's relay; E has a permission, no channel: Data indication to E.
    d = payload(19, 7)
    forward(from_client(A, send_indication(E["relay"], d)),
            to_client(E, data_indication(A["relay"], d, next_txn(), E["slot"])), "hairpin", E, "client", 19, sender=A)
    # 8. The expired allocation D: its ChannelData is not fast-pathed.
    punted(from_client(D, channel_data(0x4000, payload(20, 8))), "unknown_flow")
    # 9. A channel A never bound.
    punted(from_client(A, channel_data(0x4ABC, payload(20, 9))), "unknown_flow")
    # 10. C's channel expired (its permission is live): not loaded.
    punted(from_client(C, channel_data(0x4000, payload(20, 10))), "unknown_flow")
    # 11. P3 -> C's relay: C's permission for P3 expired: not loaded.
    punted(inbound(P3, C["relay"], payload(20, 11)), "unknown_flow")
    # 12. IPv4 total length beyond the frame.
    dropped(inbound(P1, A["relay"], payload(20, 12), len=20 + 8 + 20 + 10), "malformed")
    # 13. Truncated UDP: UDP length beyond the IPv4 payload.
    f = inbound(P1, A["relay"], payload(20, 13))
    f[UDP].len = 8 + 20 + 6
    dropped(f, "malformed")
    # 14. ChannelData whose length field exceeds the datagram.
    dropped(from_client(A, struct.pack("!HH", 0x4000, 100) + payload(20, 14)), "bad_channel_data")
    # 15. Send indication without DATA.
    dropped(from_client(A, send_indication(P2, b"", with_data=False)), "bad_send_indication")
    # 16. An Allocate request from a new client: the control plane's.
    alloc = stun(0x0003, bytes(range(20, 32)), [attr(0x0019, bytes([17, 0, 0, 0]))], fingerprint=True)
    punted(inbound(("198.51.100.60", 50005), (SERVER, TURN_PORT), alloc), "control")
    # 17. ARP request from the gateway.
    punted(Ether(dst="ff:ff:ff:ff:ff:ff", src=GW_MAC) / ARP(op=1, hwsrc=GW_MAC, psrc=GW, pdst=SERVER),
           "arp")
    # 18. A stranger -> A's relay: no permission for it.
    punted(inbound(("203.0.113.99", 1234), A["relay"], payload(20, 18)), "unknown_flow")
    # 19. IPv6 UDP to an address that is not one of our IPv6 relays (this
    # data plane has none configured): the kernel's.
    punted(Ether(dst=PORT_MAC, src=GW_MAC) / IPv6(src="2001:db8::5", dst="2001:db8::10") /
           UDP(sport=6000, dport=49200) / Raw(payload(20, 19)), "not_turn")
    # 20. A -> P1 again without a UDP checksum: none on the way out either.
    d = payload(64, 20)
    forward(from_client(A, channel_data(0x4000, d), checksum=False), outbound(A["relay"], P1, d, checksum=False),
            "channel_data_to_peer", A, "peer", 64)

    stats["rx_packets"] = len(frames)
    stats["tx_packets"] = len(tx)
    stats["allocations"] = 4
    return frames, tx, punt, stats, traffic


def redis_commands(now):
    """redis-cli input: the records of docs/state.md (common/state/records.h)."""
    out = []

    def q(s):
        return '"' + s + '"'

    def alloc(a, expires, instance="golden"):
        rec = dict(id=a["id"], instance=instance, transport="udp",
                   client="%s:%d" % a["client"], server="%s:%d" % (SERVER, TURN_PORT),
                   relay="%s:%d" % a["relay"], username="alice", realm="golden.test", expires=str(expires))
        out.append("HSET " + q("dpturn:alloc:" + a["id"]) + " " +
                   " ".join(k + " " + q(v) for k, v in rec.items()))
        out.append("ZADD dpturn:allocs:%s %d %s" % (instance, expires, q(a["id"])))

    def perm(a, ip, expires):
        out.append("HSET %s %s %d" % (q("dpturn:alloc:" + a["id"]), q("perm:" + ip), expires))

    def chan(a, number, peer, expires):
        out.append("HSET %s %s %s" % (q("dpturn:alloc:" + a["id"]), q("chan:%d" % number),
                                      q("%s:%d %d" % (peer[0], peer[1], expires))))

    live = now + 600
    alloc(A, live)
    alloc(B, live + 1)
    alloc(C, live + 2)
    alloc(E, live + 3)
    alloc(D, now - 5)
    perm(A, P1[0], live)
    perm(A, P2[0], live)
    perm(A, RELAY2, live)
    chan(A, 0x4000, P1, live)
    chan(A, 0x4001, B["relay"], live)
    perm(B, SERVER, live)
    chan(B, 0x4002, A["relay"], live)
    perm(C, P3[0], now - 30)
    perm(C, P4[0], live)
    chan(C, 0x4000, P4, now - 30)
    perm(E, SERVER, live)
    perm(D, P1[0], live)
    chan(D, 0x4000, P1, live)
    # Another host's allocation in the same store: this data plane follows
    # only its own instance ("golden"), so it never loads it.
    alloc(OTHER, live, instance="other")
    chan(OTHER, 0x4000, P1, live)
    # The streams exist (a control plane writes them before any record).
    out.append('XADD dpturn:events:golden * type resync id golden')
    out.append('XADD dpturn:events:other * type resync id other')
    return "\n".join(out) + "\n"


def dp_conf(redis_port, stats_file):
    return "\n".join([
        "ip=%s/24" % SERVER,
        "gateway=%s" % GW,
        "relay-ip=%s" % SERVER,
        "relay-ip=%s" % RELAY2,
        "listening-port=%d" % TURN_PORT,
        "min-port=49152",
        "max-port=65535",
        "exception-port=1",
        "neighbour=%s,%s" % (GW, GW_MAC),
        "neighbour=%s,%s" % (P2[0], P2_MAC),
        'state-redis="ip=127.0.0.1 port=%d"' % redis_port,
        "allocations=1024",
        "channels=4096",
        "mbufs=2047",
        "stats-file=%s" % stats_file,
        "instance-id=golden",
    ]) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--now", type=int, required=True, help="Unix time the expiries are relative to")
    ap.add_argument("--redis-port", type=int, required=True)
    ap.add_argument("--stats-file", required=True)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    frames, tx, punt, stats, traffic = build()
    # Fixed timestamps: the input files are reproducible.
    for i, f in enumerate(frames + tx + punt):
        f.time = 1700000000 + (i % len(frames)) / 1000.0
    wrpcap(os.path.join(a.out, "in.pcap"), frames, linktype=1)
    wrpcap(os.path.join(a.out, "expected_out.pcap"), tx, linktype=1)
    wrpcap(os.path.join(a.out, "expected_punt.pcap"), punt, linktype=1)
    wrpcap(os.path.join(a.out, "empty.pcap"), [], linktype=1)
    with open(os.path.join(a.out, "state.redis"), "w") as fh:
        fh.write(redis_commands(a.now))
    with open(os.path.join(a.out, "dp.conf"), "w") as fh:
        fh.write(dp_conf(a.redis_port, a.stats_file))
    with open(os.path.join(a.out, "expected_stats.txt"), "w") as fh:
        fh.write("".join("%s=%d\n" % kv for kv in sorted(stats.items())))
    with open(os.path.join(a.out, "expected_traffic.txt"), "w") as fh:
        fh.write("".join("dpturn:alloc:%s:traffic %s %d\n" % (k[0], k[1], v) for k, v in sorted(traffic.items())))
    print("gen.py: %d input frames, %d expected tx, %d expected punts" % (len(frames), len(tx), len(punt)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
