#!/usr/bin/env python3
"""Cache-aside client for scripts/ci/cluster-failover.sh: through the proxy,
get a random key of KEYS; on a miss, set it. Every value is a function of
its key, so a hit with another value is a wrong value. Prints one line per
WINDOW seconds: "<t> <gets> <misses> <errors> <wrong>", t from the start
(the first line, "# start <unix time>", says when that was).
Reconnects when the proxy closes the connection.

    cluster_probe.py PORT KEYS SECONDS [WINDOW]
    cluster_probe.py PORT KEYS fill      stores every key first, then exits
"""
import random
import socket
import sys
import time

port, keys = int(sys.argv[1]), int(sys.argv[2])


def connect():
    s = socket.create_connection(("127.0.0.1", port), timeout=2)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s, s.makefile("rb")


def value(k):
    return b"value-of-%d" % k


if sys.argv[3] == "fill":
    sock, reader = connect()
    for first in range(0, keys, 100):
        batch = b"".join(
            b"set probe:%d 0 0 %d\r\n%s\r\n" % (k, len(value(k)), value(k))
            for k in range(first, min(keys, first + 100))
        )
        sock.sendall(batch)
        for _ in range(first, min(keys, first + 100)):
            if reader.readline() != b"STORED\r\n":
                sys.exit("fill: a set was not stored")
    sys.exit(0)

seconds = float(sys.argv[3])
window = float(sys.argv[4]) if len(sys.argv) > 4 else 0.25
start = time.time()
print("# start %.3f" % start, flush=True)
end = start + seconds
sock, reader = connect()
rng = random.Random(7)
edge = start + window
gets = misses = errors = wrong = 0
while time.time() < end:
    k = rng.randrange(keys)
    try:
        sock.sendall(b"get probe:%d\r\n" % k)
        line = reader.readline()
        if line.startswith(b"VALUE "):
            size = int(line.split()[3])
            data = reader.read(size + 2)[:-2]
            if reader.readline() != b"END\r\n" or data != value(k):
                wrong += 1
        elif line == b"END\r\n":
            misses += 1
            v = value(k)
            sock.sendall(b"set probe:%d 0 0 %d\r\n%s\r\n" % (k, len(v), v))
            reader.readline()
        elif not line:
            raise OSError("closed")
        else:
            errors += 1
        gets += 1
    except OSError:
        # A get that died with its connection is a get that failed: counted
        # in both, so a window holding only this one reads 1/1, not 1/0.
        gets += 1
        errors += 1
        time.sleep(0.05)
        try:
            sock.close()
            sock, reader = connect()
        except OSError:
            pass
    now = time.time()
    if now >= edge:
        print("%.2f %d %d %d %d" % (edge - start - window, gets, misses, errors, wrong), flush=True)
        gets = misses = errors = wrong = 0
        edge += window
