#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Writes the input of the data-plane load benchmark: a pcap with one
# client -> server ChannelData frame per allocation (so a replay loops over
# every flow), and the matching state in Redis protocol (docs/state.md):
# each allocation has a permission and channel 0x4000 to an off-link peer.
#
#   gen_flows.py N PAYLOAD OUT.pcap OUT.redis
import struct
import sys
import time

n, size, pcap_path, redis_path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
SERVER_MAC = bytes.fromhex("027063617000")   # net_pcap's port MAC
GW_MAC = bytes.fromhex("020000000001")
SERVER = bytes([10, 78, 0, 2])
exp = int(time.time()) + 3600


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def frame(src_ip, sport, payload):
    udp_len = 8 + len(payload)
    pseudo = src_ip + SERVER + struct.pack("!BBH", 0, 17, udp_len)
    udp = struct.pack("!HHHH", sport, 3478, udp_len, 0) + payload
    c = csum(pseudo + udp) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", c) + udp[8:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, 0, 0x4000, 64, 17, 0, src_ip, SERVER)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return SERVER_MAC + GW_MAC + b"\x08\x00" + ip + udp


def cmd(*a):
    out = [f"*{len(a)}"]
    for x in a:
        x = str(x)
        out += [f"${len(x.encode())}", x]
    return "\r\n".join(out) + "\r\n"


data = bytes(i & 0xFF for i in range(size))
cd = struct.pack("!HH", 0x4000, size) + data
with open(pcap_path, "wb") as p, open(redis_path, "w") as r:
    p.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    for i in range(n):
        ip = bytes([10, 1, (i >> 8) & 255, i & 255])
        port = 10000 + (i >> 16)
        f = frame(ip, port, cd)
        p.write(struct.pack("<IIII", 0, 0, len(f), len(f)) + f)
        client = f"10.1.{(i >> 8) & 255}.{i & 255}:{port}"
        relay = f"10.78.0.2:{49152 + i % 16384}" if n <= 16384 else f"10.78.{1 + (i >> 14)}.2:{49152 + i % 16384}"
        aid = f"bench/{relay}"
        r.write(cmd("HSET", f"dpturn:alloc:{aid}", "id", aid, "instance", "bench", "transport", "udp",
                    "client", client, "server", "10.78.0.2:3478", "relay", relay, "username", "u",
                    "realm", "r", "expires", exp))
        r.write(cmd("ZADD", "dpturn:allocs", exp, aid))
        r.write(cmd("HSET", f"dpturn:alloc:{aid}:perm", "10.99.0.1", exp))
        r.write(cmd("HSET", f"dpturn:alloc:{aid}:chan", "16384", f"10.99.0.1:5000 {exp}"))
