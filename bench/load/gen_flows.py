#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Writes the input of the data-plane load benchmark: a pcap with one frame
# per allocation (so a replay loops over every flow), and the matching state
# in Redis protocol (docs/state.md): each allocation has a permission for an
# off-link peer 10.99.0.1 and (except in mode peer-di) channel 0x4000 bound
# to 10.99.0.1:5000.
#
#   gen_flows.py N PAYLOAD OUT.pcap OUT.redis [MODE] [QUEUES]
#
# MODE (which fast path every frame takes):
#   cd       client ChannelData -> peer (RFC 8656 §12.6)      [default]
#   send     client Send indication -> peer (§10.2)
#   peer-cd  peer UDP -> client as ChannelData (§12.6, channel bound)
#   peer-di  peer UDP -> client as Data indication (§10.3, no channel)
#   cd6      cd over IPv6 (RFC 6156): clients fd00:1::/64, server and relay
#            fd00:78::2, peer fd00:99::1 off-link via fd00:78::1. The pcap
#            starts with one ICMPv6 frame from that gateway (punted, and
#            what teaches the data plane its MAC: IPv6 has no static
#            neighbour key), replayed once per N frames
# QUEUES > 1: flow i goes to OUT.pcap.(i % QUEUES) instead (one net_pcap rx
# queue per worker). Relay addresses: 10.78.0.2 (ports 49152..65535) for the
# first 16384 allocations, then 10.78.0.3, 10.78.0.4, ... (10.78.1.x past 253); their list is
# written to OUT.pcap.relays (the data plane needs them as relay-ip for the
# peer modes: at most 4, so peer modes take at most 65536 allocations).
import struct
import sys
import time

n, size, pcap_path, redis_path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
mode = sys.argv[5] if len(sys.argv) > 5 else "cd"
queues = int(sys.argv[6]) if len(sys.argv) > 6 else 1
MODES = ("cd", "send", "peer-cd", "peer-di", "cd6")
if mode not in MODES:
    sys.exit(f"gen_flows.py: mode '{mode}' is not one of {', '.join(MODES)}")
if n < 1 or n > (1 << 22) or size < 1 or size > 1400 or queues < 1 or queues > 64:
    sys.exit(f"gen_flows.py: N={n} (1..4194304), PAYLOAD={size} (1..1400), QUEUES={queues} (1..64)")
if mode.startswith("peer") and n > 4 * 16384:
    sys.exit(f"gen_flows.py: mode {mode} takes at most 65536 allocations (4 relay IPs x 16384 ports), got {n}")
SERVER_MAC = bytes.fromhex("027063617000")   # net_pcap's port MAC
GW_MAC = bytes.fromhex("020000000001")
SERVER = bytes([10, 78, 0, 2])
PEER = bytes([10, 99, 0, 1])
PEER_PORT = 5000
MAGIC = 0x2112A442
exp = int(time.time()) + 3600


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def frame(src_ip, sport, dst_ip, dport, payload):
    udp_len = 8 + len(payload)
    pseudo = src_ip + dst_ip + struct.pack("!BBH", 0, 17, udp_len)
    udp = struct.pack("!HHHH", sport, dport, udp_len, 0) + payload
    c = csum(pseudo + udp) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", c) + udp[8:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, 0, 0x4000, 64, 17, 0, src_ip, dst_ip)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return SERVER_MAC + GW_MAC + b"\x08\x00" + ip + udp


SERVER6 = bytes.fromhex("fd000078000000000000000000000002")
GW6 = bytes.fromhex("fd000078000000000000000000000001")


def frame6(src_ip, sport, dst_ip, dport, payload):
    udp_len = 8 + len(payload)
    pseudo = src_ip + dst_ip + struct.pack("!IxxxB", udp_len, 17)
    udp = struct.pack("!HHHH", sport, dport, udp_len, 0) + payload
    c = csum(pseudo + udp) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", c) + udp[8:]
    ip6 = struct.pack("!IHBB", 6 << 28, udp_len, 17, 64) + src_ip + dst_ip
    return SERVER_MAC + GW_MAC + b"\x86\xdd" + ip6 + udp


def gateway_icmp6():
    """An ICMPv6 echo reply from the gateway to the server: not UDP, so punted; its source teaches the MAC."""
    body = struct.pack("!BBHHH", 129, 0, 0, 1, 1) + b"dpturn-bench"
    pseudo = GW6 + SERVER6 + struct.pack("!IxxxB", len(body), 58)
    body = body[:2] + struct.pack("!H", csum(pseudo + body)) + body[4:]
    ip6 = struct.pack("!IHBB", 6 << 28, len(body), 58, 255) + GW6 + SERVER6
    return SERVER_MAC + GW_MAC + b"\x86\xdd" + ip6 + body


def send_indication(i, data):
    txn = struct.pack("!III", 0x62656E63, i, 0)
    xport = PEER_PORT ^ (MAGIC >> 16)
    xip = bytes(a ^ b for a, b in zip(PEER, struct.pack("!I", MAGIC)))
    pad = (-len(data)) % 4
    attrs = struct.pack("!HHBBH", 0x0012, 8, 0, 1, xport) + xip + struct.pack("!HH", 0x0013, len(data)) + data + b"\0" * pad
    return struct.pack("!HHI", 0x0016, len(attrs), MAGIC) + txn + attrs


def cmd(*a):
    out = [f"*{len(a)}"]
    for x in a:
        x = str(x)
        out += [f"${len(x.encode())}", x]
    return "\r\n".join(out) + "\r\n"


def relay_ip(i):
    k = 2 + (i >> 14)
    return f"10.78.{k >> 8}.{k & 255}"


data = bytes(i & 0xFF for i in range(size))
cd = struct.pack("!HH", 0x4000, size) + data
paths = [pcap_path] if queues == 1 else [f"{pcap_path}.{q}" for q in range(queues)]
pcaps = [open(p, "wb") for p in paths]
for p in pcaps:
    p.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
relays = set()
if mode == "cd6":
    g = gateway_icmp6()
    for p in pcaps:
        p.write(struct.pack("<IIII", 0, 0, len(g), len(g)) + g)
with open(redis_path, "w") as r:
    for i in range(n):
        if mode == "cd6":
            cip6 = bytes.fromhex("fd00000100000000") + struct.pack("!Q", i + 1)  # fd00:1::<i+1>
            rport = 49152 + i % 16384
            rhex = f"fd00:78::{2 + (i >> 14):x}"
            relays.add(rhex)
            f = frame6(cip6, 10000, SERVER6, 3478, cd)
            pcaps[i % queues].write(struct.pack("<IIII", 0, 0, len(f), len(f)) + f)
            client = f"[fd00:1::{i + 1:x}]:10000"
            aid = f"bench/[{rhex}]:{rport}"
            r.write(cmd("HSET", f"dpturn:alloc:{aid}", "id", aid, "instance", "bench", "transport", "udp",
                        "client", client, "server", "[fd00:78::2]:3478", "relay", f"[{rhex}]:{rport}", "username",
                        "u", "realm", "r", "expires", exp, "perm:fd00:99::1", exp,
                        "chan:16384", f"[fd00:99::1]:{PEER_PORT} {exp}"))
            r.write(cmd("ZADD", "dpturn:allocs:bench", exp, aid))
            continue
        cip = bytes([10, 1 + (i >> 16), (i >> 8) & 255, i & 255])
        cport = 10000
        rip, rport = relay_ip(i), 49152 + i % 16384
        relays.add(rip)
        if mode == "cd":
            f = frame(cip, cport, SERVER, 3478, cd)
        elif mode == "send":
            f = frame(cip, cport, SERVER, 3478, send_indication(i, data))
        else:
            f = frame(PEER, PEER_PORT, bytes(int(x) for x in rip.split(".")), rport, data)
        pcaps[i % queues].write(struct.pack("<IIII", 0, 0, len(f), len(f)) + f)
        client = f"{'.'.join(map(str, cip))}:{cport}"
        aid = f"bench/{rip}:{rport}"
        # docs/state.md: the record, its permission and channel in one hash.
        chan = [] if mode == "peer-di" else ["chan:16384", f"10.99.0.1:{PEER_PORT} {exp}"]
        r.write(cmd("HSET", f"dpturn:alloc:{aid}", "id", aid, "instance", "bench", "transport", "udp",
                    "client", client, "server", "10.78.0.2:3478", "relay", f"{rip}:{rport}", "username", "u",
                    "realm", "r", "expires", exp, "perm:10.99.0.1", exp, *chan))
        r.write(cmd("ZADD", "dpturn:allocs:bench", exp, aid))
for p in pcaps:
    p.close()
with open(pcap_path + ".relays", "w") as f:
    f.write("\n".join(sorted(relays)) + "\n")
