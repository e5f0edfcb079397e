#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Regenerates the checked-in seed corpora under tests/fuzz/corpus/.

Seeds: the RFC 5769 / RFC 8489 vectors from tests/data, plus hand-made TURN
messages (an Allocate as browsers send it, responses, ChannelBind, Send/Data
indications, ChannelData frames, a TCP stream). Deterministic: running it
again rewrites the same bytes. Usage: tests/fuzz/make_corpus.py
"""
import hashlib
import hmac
import pathlib
import struct
import zlib

HERE = pathlib.Path(__file__).resolve().parent
DATA = HERE.parent / "data"
COOKIE = 0x2112A442
TXID = bytes(range(0x61, 0x6D))  # "abcdefghijkl"


def load_hex(rel):
    text = (DATA / rel).read_text()
    return bytes.fromhex("".join(line.split("#")[0] for line in text.splitlines()))


def msg_type(method, cls):
    return ((method & 0x000F) | ((method & 0x0070) << 1) | ((method & 0x0F80) << 2)
            | ((cls & 1) << 4) | ((cls & 2) << 7))


class Msg:
    def __init__(self, method, cls, txid=TXID):
        self.type = msg_type(method, cls)
        self.txid = txid
        self.body = b""

    def header(self, length):
        return struct.pack("!HHI", self.type, length, COOKIE) + self.txid

    def add(self, atype, value):
        pad = (-len(value)) % 4
        self.body += struct.pack("!HH", atype, len(value)) + value + b"\0" * pad
        return self

    def xor_addr(self, atype, ip, port):
        parts = bytes(int(x) for x in ip.split("."))
        mask = struct.pack("!I", COOKIE)
        x = bytes(a ^ b for a, b in zip(parts, mask))
        return self.add(atype, struct.pack("!BBH", 0, 1, port ^ (COOKIE >> 16)) + x)

    def xor_addr6(self, atype, raw16, port):
        mask = struct.pack("!I", COOKIE) + self.txid
        x = bytes(a ^ b for a, b in zip(raw16, mask))
        return self.add(atype, struct.pack("!BBH", 0, 2, port ^ (COOKIE >> 16)) + x)

    def integrity(self, key):
        length = len(self.body) + 24
        mac = hmac.new(key, self.header(length) + self.body, "sha1").digest()
        return self.add(0x0008, mac)

    def integrity_sha256(self, key, size=32):
        length = len(self.body) + 4 + size
        mac = hmac.new(key, self.header(length) + self.body, "sha256").digest()
        return self.add(0x001C, mac[:size])

    def fingerprint(self):
        length = len(self.body) + 8
        crc = zlib.crc32(self.header(length) + self.body) ^ 0x5354554E
        return self.add(0x8028, struct.pack("!I", crc))

    def bytes(self):
        return self.header(len(self.body)) + self.body


def u32(v):
    return struct.pack("!I", v)


MD5_KEY = hashlib.md5(b"alice:example.org:secret").digest()
SHA_KEY = hashlib.sha256(b"alice:example.org:secret").digest()
NONCE = b"0123456789abcdef0123456789abcdef"
ALLOCATE, REFRESH, SEND, DATA_M, CREATE_PERMISSION, CHANNEL_BIND, BINDING = 3, 4, 6, 7, 8, 9, 1
REQ, IND, OK, ERR = 0, 1, 2, 3


def stun_seeds():
    seeds = {
        "rfc5769_sample_request": load_hex("rfc5769/sample_request.hex"),
        "rfc5769_ipv4_response": load_hex("rfc5769/sample_ipv4_response.hex"),
        "rfc5769_ipv6_response": load_hex("rfc5769/sample_ipv6_response.hex"),
        "rfc5769_long_term_request": load_hex("rfc5769/sample_request_long_term.hex"),
        "rfc8489_sha256_userhash_request": load_hex("rfc8489/sample_request_long_term_sha256.hex"),
    }
    # A browser's first Allocate (no credentials), then the authenticated one.
    seeds["allocate_request_unauthenticated"] = (
        Msg(ALLOCATE, REQ).add(0x0019, bytes([17, 0, 0, 0])).bytes())
    seeds["allocate_request"] = (
        Msg(ALLOCATE, REQ).add(0x0019, bytes([17, 0, 0, 0])).add(0x000D, u32(3600))
        .add(0x0006, b"alice").add(0x0014, b"example.org").add(0x0015, NONCE)
        .integrity(MD5_KEY).fingerprint().bytes())
    seeds["allocate_error_401"] = (
        Msg(ALLOCATE, ERR).add(0x0009, bytes([0, 0, 4, 1]) + b"Unauthorized")
        .add(0x0014, b"example.org").add(0x0015, NONCE)
        .add(0x8002, bytes([0, 2, 0, 0, 0, 1, 0, 0])).add(0x8022, b"dpturn")
        .fingerprint().bytes())
    seeds["allocate_success"] = (
        Msg(ALLOCATE, OK).xor_addr(0x0016, "203.0.113.10", 49152)
        .xor_addr(0x0020, "198.51.100.7", 61000).add(0x000D, u32(600))
        .add(0x0022, bytes(range(8))).add(0x8022, b"dpturn")
        .integrity(MD5_KEY).fingerprint().bytes())
    seeds["allocate_request_options"] = (
        Msg(ALLOCATE, REQ).add(0x0019, bytes([17, 0, 0, 0])).add(0x0018, bytes([0x80]))
        .add(0x001A, b"").add(0x0017, bytes([2, 0, 0, 0])).add(0x8000, bytes([2, 0, 0, 0]))
        .add(0x001D, bytes([0, 2, 0, 0])).add(0x001E, hashlib.sha256(b"alice:example.org").digest())
        .add(0x0014, b"example.org").add(0x0015, NONCE)
        .integrity(SHA_KEY).integrity_sha256(SHA_KEY, 16).fingerprint().bytes())
    seeds["allocate_success_address_error"] = (
        Msg(ALLOCATE, OK).xor_addr(0x0016, "203.0.113.10", 49153)
        .add(0x8001, bytes([2, 0, 4, 40]) + b"Address Family not Supported")
        .integrity_sha256(SHA_KEY).bytes())
    seeds["allocate_error_300_alternate"] = (
        Msg(ALLOCATE, ERR).add(0x0009, bytes([0, 0, 3, 0]) + b"Try Alternate")
        .add(0x8023, bytes([0, 1, 0x0d, 0x96, 192, 0, 2, 99])).add(0x8003, b"turn2.example.org")
        .bytes())
    seeds["refresh_request_lifetime_0"] = (
        Msg(REFRESH, REQ).add(0x000D, u32(0)).add(0x0006, b"alice").add(0x0014, b"example.org")
        .add(0x0015, NONCE).integrity(MD5_KEY).bytes())
    seeds["create_permission_request"] = (
        Msg(CREATE_PERMISSION, REQ).xor_addr(0x0012, "198.51.100.20", 0)
        .xor_addr(0x0012, "198.51.100.21", 0).add(0x0006, b"alice")
        .add(0x0014, b"example.org").add(0x0015, NONCE).integrity(MD5_KEY).fingerprint().bytes())
    seeds["channel_bind_request_v6"] = (
        Msg(CHANNEL_BIND, REQ).add(0x000C, bytes([0x40, 0x00, 0, 0]))
        .xor_addr6(0x0012, bytes.fromhex("20010db8000000000000000000000042"), 5004)
        .add(0x0006, b"alice").add(0x0014, b"example.org").add(0x0015, NONCE)
        .integrity(MD5_KEY).fingerprint().bytes())
    seeds["send_indication"] = (
        Msg(SEND, IND).xor_addr(0x0012, "198.51.100.20", 5004)
        .add(0x0013, bytes(range(160))).bytes())
    seeds["data_indication_icmp"] = (
        Msg(DATA_M, IND).xor_addr(0x0012, "198.51.100.20", 5004)
        .add(0x8004, bytes([0, 0, 3, 4, 0, 0, 5, 0xDC])).bytes())
    seeds["binding_error_420"] = (
        Msg(BINDING, ERR).add(0x0009, bytes([0, 0, 4, 20]) + b"Unknown Attribute")
        .add(0x000A, struct.pack("!HHH", 0x0003, 0x7FFF, 0x0031)).fingerprint().bytes())
    seeds["binding_request_unknown_required"] = (
        Msg(BINDING, REQ).add(0x0003, u32(0)).add(0x7FFF, b"x").add(0xC001, b"opt")
        .add(0x0024, u32(0x6E0001FF)).add(0x0025, b"").add(0x802A, bytes(8))
        .fingerprint().bytes())
    # Found by the fuzzer: an IPv6-family address holding ::ffff:a.b.c.d reads
    # back as IPv4 and re-encodes in 8 bytes, not 20.
    mapped = bytes(10) + b"\xff\xff" + bytes([127, 0, 0, 1])
    seeds["regression_ipv6_family_v4_mapped"] = (
        Msg(CHANNEL_BIND, REQ).add(0x000C, bytes([0x40, 0, 0, 0]))
        .add(0x0001, bytes([0, 2, 0x0D, 0x96]) + mapped)
        .xor_addr6(0x0012, mapped, 80).bytes())
    return seeds


def channel_seeds():
    def cd(ch, payload, pad=False):
        frame = struct.pack("!HH", ch, len(payload)) + payload
        return frame + b"\0" * ((-len(payload)) % 4 if pad else 0)

    rtp = bytes([0x80, 0x60, 0x12, 0x34]) + bytes(8) + bytes(range(188))
    stream = (stun_seeds()["allocate_request"] + cd(0x4000, b"hello", pad=True)
              + cd(0x4001, rtp[:40], pad=True) + cd(0x5000, b"r", pad=True))
    return {
        "channel_data_200": cd(0x4000, rtp),
        "channel_data_padded": cd(0x4FFF, b"hello", pad=True),
        "channel_data_empty": cd(0x4123, b""),
        "channel_data_reserved_channel": cd(0x5000, b"data"),
        "tcp_stream_mixed": stream,
        "rtp_packet": rtp,
        "rfc5769_sample_request": load_hex("rfc5769/sample_request.hex"),
        # A STUN-like header whose length is not a multiple of 4 and which
        # carries no magic cookie: not STUN, framing says -1 at once (found
        # by the fuzzer after TLS detection changed stream_frame_length()).
        "stun_header_without_cookie": bytes([0x00, 0x03, 0x00, 0x62]) + b"bcdef0123456788abcdef" + bytes(8),
    }


def request_seeds():
    """turn_request_fuzz: records [op][len16][bytes]; op & 3 = client,
    op & 4 = re-sign as alice, op & 8 = fingerprint, op & 0x10 = sweep."""
    def rec(op, data):
        return bytes([op]) + struct.pack("!H", len(data)) + data

    def bare(method, *attrs, txid=TXID):
        m = Msg(method, REQ, txid)
        for t, v in attrs:
            m.add(t, v)
        return m.bytes()

    transport = (0x0019, bytes([17, 0, 0, 0]))
    alloc = bare(ALLOCATE, transport, (0x000D, u32(600)))
    perm = Msg(CREATE_PERMISSION, REQ, bytes(range(1, 13))).xor_addr(0x0012, "127.0.0.1", 0).bytes()
    bind = (Msg(CHANNEL_BIND, REQ, bytes(range(2, 14))).add(0x000C, bytes([0x40, 0, 0, 0]))
            .xor_addr(0x0012, "127.0.0.1", 5004).bytes())
    bind_meta = (Msg(CHANNEL_BIND, REQ, bytes(range(3, 15))).add(0x000C, bytes([0x40, 1, 0, 0]))
                 .xor_addr(0x0012, "169.254.169.254", 80).bytes())
    send = Msg(SEND, IND).xor_addr(0x0012, "127.0.0.1", 5004).add(0x0013, b"hello peer").bytes()
    cdata = struct.pack("!HH", 0x4000, 5) + b"hello"
    refresh = bare(REFRESH, (0x000D, u32(0)), txid=bytes(range(4, 16)))
    unknown = bare(BINDING, (0x7FFF, b"x"))
    return {
        "binding": rec(0, bare(BINDING)),
        "unauthenticated_allocate": rec(0, alloc),
        "wrong_key_allocate": rec(0, stun_seeds()["allocate_request"]),
        "signed_allocate": rec(4, alloc),
        "relay_session": (rec(4, alloc) + rec(4, perm) + rec(4, bind) + rec(0, send) + rec(0, cdata)
                          + rec(0x0C, bind_meta) + rec(0x14, refresh)),
        "two_clients": rec(4, alloc) + rec(5, alloc) + rec(6, alloc) + rec(5, perm) + rec(0x10, b""),
        "fuzzed_source": rec(7, bytes([10, 1, 2, 3, 0x9c, 0x40]) + alloc),
        "unknown_required": rec(0, unknown),
        "garbage": rec(0, b"\x00\x01\x00\x08" + bytes(20)) + rec(0, b"\xff" * 40),
    }


def fastpath_seeds():
    """fastpath_fuzz: [flags][Ethernet frame]; flags 3 = fix both checksums.
    Addresses as in the target: server/relay 192.0.2.10 (TURN 3478, relay
    port 49200), client A 198.51.100.10:50000, peer 203.0.113.5:6000; the
    dual-stack allocations D4 and D6 (fastpath_fuzz.cpp's fill())."""
    def ip(a):
        return bytes(int(x) for x in a.split("."))

    def frame(src, dst, sport, dport, payload, ttl=64, csum=0xFFFF):
        udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), csum) + payload
        iph = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, ttl, 17, 0, ip(src), ip(dst))
        eth = bytes([2, 0, 0, 0, 0, 0xAA, 2, 0, 0, 0, 0, 1]) + b"\x08\x00"
        return eth + iph + udp

    def frame6(src, dst, sport, dport, payload):  # UDP checksum fixed by flag 2
        udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0xFFFF) + payload
        iph = struct.pack("!IHBB", 0x60000000, len(udp), 17, 64) + src + dst
        eth = bytes([2, 0, 0, 0, 0, 0xAA, 2, 0, 0, 0, 0, 1]) + b"\x86\xdd"
        return eth + iph + udp

    a, srv, peer = "198.51.100.10", "192.0.2.10", "203.0.113.5"
    d4 = "198.51.100.30"
    srv6 = bytes.fromhex("20010db8000100000000000000000010")
    peer6 = bytes.fromhex("20010db8000200000000000000000005")
    d6 = bytes.fromhex("20010db8000c00000000000000000007")
    rtp = bytes([0x80, 0x60, 0x12, 0x34]) + bytes(8) + bytes(range(160))
    cd = struct.pack("!HH", 0x4000, len(rtp)) + rtp
    send = Msg(SEND, IND).xor_addr(0x0012, peer, 6000).add(0x0013, rtp).bytes()
    send6 = Msg(SEND, IND).xor_addr6(0x0012, peer6, 6000).add(0x0013, rtp).bytes()
    arp = bytes([0xff] * 6) + bytes([2, 0, 0, 0, 0, 1]) + b"\x08\x06" + bytes(28)
    return {
        "channel_data_to_peer": b"\x03" + frame(a, srv, 50000, 3478, cd),
        "channel_data_linked": b"\x13" + frame(a, srv, 50000, 3478, cd),
        "channel_data_hairpin": b"\x03" + frame(a, srv, 50000, 3478, struct.pack("!HH", 0x4001, 4) + b"ping"),
        "send_indication_to_peer": b"\x03" + frame(a, srv, 50000, 3478, send),
        "peer_to_client_channel": b"\x03" + frame(peer, srv, 6000, 49200, rtp),
        "peer_to_client_data_indication": b"\x03" + frame(peer, srv, 7000, 49200, rtp),
        "expired_allocation": b"\x07" + frame(peer, srv, 6000, 49200, rtp),
        "allocate_request_punted": b"\x03" + frame(a, srv, 50000, 3478, stun_seeds()["allocate_request"]),
        "bad_ip_checksum": b"\x00" + frame(a, srv, 50000, 3478, cd),
        "arp": b"\x00" + arp,
        # Dual-stack allocations (RFC 8656 §7.2), across IP versions: D4
        # (IPv4 client 198.51.100.30:50030, IPv6 relay [2001:db8:1::10]:49600)
        # and D6 (client [2001:db8:c::7]:50040, IPv4 relay 192.0.2.10:49800).
        "dual_v4_client_channel_data_to_v6_peer": b"\x03" + frame(d4, srv, 50030, 3478, cd),
        "dual_v4_client_send_to_v6_peer": b"\x03" + frame(d4, srv, 50030, 3478, send6),
        "dual_v4_client_no_checksum_to_v6_peer": b"\x01" + frame(d4, srv, 50030, 3478, cd, csum=0),
        "dual_v6_peer_to_v4_client": b"\x03" + frame6(peer6, srv6, 6000, 49600, rtp),
        "dual_v6_peer_to_v4_client_data_indication": b"\x03" + frame6(peer6, srv6, 6001, 49600, rtp),
        "dual_v6_client_channel_data_to_v4_peer": b"\x03" + frame6(d6, srv6, 50040, 3478, cd),
        "dual_v6_client_send_to_v4_peer": b"\x03" + frame6(d6, srv6, 50040, 3478, send),
        "dual_v4_peer_to_v6_client": b"\x01" + frame(peer, srv, 7000, 49800, rtp, csum=0),
        "dual_v6_client_same_family": b"\x03" + frame6(d6, srv6, 50040, 3478, struct.pack("!HH", 0x4002, 4) + b"ping"),
    }


def main():
    for target, seeds in (("stun_message_fuzz", stun_seeds()), ("channel_data_fuzz", channel_seeds()),
                          ("turn_request_fuzz", request_seeds()), ("fastpath_fuzz", fastpath_seeds())):
        out = HERE / "corpus" / target
        out.mkdir(parents=True, exist_ok=True)
        for name, data in sorted(seeds.items()):
            (out / name).write_bytes(data)
        print(f"{target}: {len(seeds)} seeds in {out.relative_to(HERE.parent.parent)}")


if __name__ == "__main__":
    main()
