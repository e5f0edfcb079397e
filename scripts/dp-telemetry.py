#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Reads turn-dataplane's counters through DPDK telemetry (the same socket
# protocol as DPDK's dpdk-telemetry.py from Debian's dpdk-dev, without it):
#   scripts/dp-telemetry.py [--file-prefix PREFIX] [COMMAND ...]
# Default command: /dpturn/stats. Prints the JSON reply.
import json
import socket
import sys


def query(prefix, cmd):
    path = f"/var/run/dpdk/{prefix}/dpdk_telemetry.v2"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(3)
    s.connect(path)
    json.loads(s.recv(16384).decode())  # greeting: version, pid, max_output_len
    s.send(cmd.encode())
    reply = s.recv(1 << 20).decode()
    s.close()
    return json.loads(reply)


def main():
    args = sys.argv[1:]
    prefix = "rte"
    if len(args) >= 2 and args[0] == "--file-prefix":
        prefix, args = args[1], args[2:]
    for cmd in args or ["/dpturn/stats"]:
        print(json.dumps(query(prefix, cmd), indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
