#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""pcapdiff.py NAME ACTUAL EXPECTED: compares the frames of two pcap files
byte for byte, in order (record timestamps are ignored: net_pcap stamps
transmitted frames with its own clock). Exit 0 when equal; otherwise prints
the first mismatch readably (hex dump with the differing bytes marked and,
when scapy is available, both frames decoded) and exits 1.

Reads pcap (micro- and nanosecond magic, either byte order) with struct
only, so that the comparison itself does not depend on scapy.
"""

import struct
import sys


def frames(path):
    with open(path, "rb") as fh:
        data = fh.read()
    if len(data) < 24:
        raise SystemExit("%s: not a pcap file (%d bytes)" % (path, len(data)))
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        e = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = ">"
    else:
        raise SystemExit("%s: bad pcap magic %s" % (path, magic.hex()))
    linktype = struct.unpack(e + "I", data[20:24])[0]
    if linktype != 1:
        raise SystemExit("%s: link type %d, expected 1 (Ethernet)" % (path, linktype))
    out, pos = [], 24
    while pos + 16 <= len(data):
        _, _, incl, orig = struct.unpack(e + "IIII", data[pos:pos + 16])
        pos += 16
        if incl != orig:
            raise SystemExit("%s: record %d truncated in capture (%d of %d bytes)" % (path, len(out), incl, orig))
        out.append(data[pos:pos + incl])
        pos += incl
    if pos != len(data):
        raise SystemExit("%s: %d trailing bytes" % (path, len(data) - pos))
    return out


def dump(b, other):
    lines = []
    for off in range(0, max(len(b), 1), 16):
        row = b[off:off + 16]
        cells = []
        for i, x in enumerate(row):
            j = off + i
            mark = "*" if j >= len(other) or other[j] != x else " "
            cells.append("%02x%s" % (x, mark))
        lines.append("    %04x  %s" % (off, " ".join(cells)))
    return "\n".join(lines)


def decode(b):
    try:
        from scapy.all import Ether  # noqa: PLC0415
        return Ether(b).show(dump=True)
    except Exception:  # noqa: BLE001 (scapy missing or undecodable: the hex dump says it all)
        return "    (scapy not available)"


def main():
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    name, actual_path, expected_path = sys.argv[1:]
    actual, expected = frames(actual_path), frames(expected_path)
    for i, (a, e) in enumerate(zip(actual, expected)):
        if a != e:
            first = next((j for j in range(min(len(a), len(e))) if a[j] != e[j]), min(len(a), len(e)))
            print("%s: frame %d differs (actual %d bytes, expected %d bytes; first difference at byte %d, "
                  "* marks differing bytes)" % (name, i, len(a), len(e), first))
            print("  actual:\n" + dump(a, e))
            print("  expected:\n" + dump(e, a))
            print("  actual decoded:\n" + decode(a))
            print("  expected decoded:\n" + decode(e))
            return 1
    if len(actual) != len(expected):
        print("%s: %d frames, expected %d" % (name, len(actual), len(expected)))
        extra, which = (actual, "actual") if len(actual) > len(expected) else (expected, "expected")
        i = min(len(actual), len(expected))
        print("  first unmatched %s frame (#%d):\n%s\n%s" % (which, i, dump(extra[i], b""), decode(extra[i])))
        return 1
    print("%s: %d frames identical" % (name, len(actual)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
