#!/usr/bin/env python3
"""Fills a memcached-compatible server fast: COUNT items with 24-byte keys
and 64-byte values, pipelined with noreply, then waits for the server to
have taken them all (a `version` round trip). For scripts/bench/bench-restart.sh.

    bench_restart_fill.py PORT COUNT
"""
import socket
import sys

port, count = int(sys.argv[1]), int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port))
value = b"v" * 64
batch = 20000
for first in range(0, count, batch):
    s.sendall(b"".join(
        b"set restart-key:%015d 0 0 64 noreply\r\n%s\r\n" % (i, value)
        for i in range(first, min(count, first + batch))
    ))
s.sendall(b"version\r\n")
data = b""
while not data.endswith(b"\r\n"):
    data += s.recv(4096)
