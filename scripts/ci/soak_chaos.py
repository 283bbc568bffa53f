#!/usr/bin/env python3
"""Hostile and careless clients for scripts/ci/soak.sh, all at once, until a
deadline: connection churn, garbage (text and binary), half requests that
vanish, values larger than the item limit, values sent slowly, and
clients that pipeline without reading. Checks what has a defined answer
(an oversized value gets memcached's refusal) and that the server keeps
accepting; exits non-zero on any surprise.

    soak_chaos.py PORT SECONDS
"""
import os
import random
import socket
import sys
import threading
import time

PORT = int(sys.argv[1])
DEADLINE = time.time() + float(sys.argv[2])
failures = []
counts = {}
lock = threading.Lock()


def count(name):
    with lock:
        counts[name] = counts.get(name, 0) + 1


def fail(message):
    with lock:
        failures.append(message)


def connect(timeout=5.0):
    s = socket.create_connection(("127.0.0.1", PORT), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def abort(s):
    """Close with a reset, as a crashed client would."""
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.close()


def read_line(s):
    data = b""
    while not data.endswith(b"\r\n"):
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def churn():
    n = 0
    while time.time() < DEADLINE:
        n += 1
        s = connect()
        if n % 2:
            s.sendall(b"get soak-churn-%d\r\n" % n)
            reply = read_line(s)
            if not reply.startswith((b"END", b"VALUE")):
                fail("churn: unexpected reply %r" % reply[:80])
        s.close()
        count("churn")


def garbage():
    rng = random.Random(1)
    while time.time() < DEADLINE:
        s = connect()
        blob = os.urandom(rng.randrange(1, 4096))
        if rng.random() < 0.3:
            blob = b"\x80" + blob  # binary framing, random header
        try:
            s.sendall(blob)
            s.settimeout(0.2)
            s.recv(65536)
        except OSError:
            pass  # closing on garbage is a fine answer
        abort(s) if rng.random() < 0.5 else s.close()
        count("garbage")


def half_requests():
    rng = random.Random(2)
    while time.time() < DEADLINE:
        s = connect()
        size = rng.choice([100, 20_000, 300_000, 1_000_000])
        try:
            s.sendall(b"set soak-half 0 0 %d\r\n" % size)
            s.sendall(b"h" * rng.randrange(0, size))
        except OSError:
            pass
        abort(s) if rng.random() < 0.5 else s.close()
        count("half")


def oversized():
    while time.time() < DEADLINE:
        s = connect()
        s.sendall(b"set soak-over 0 0 2000000\r\n" + b"o" * 1000)
        reply = read_line(s)
        if reply != b"SERVER_ERROR object too large for cache\r\n":
            fail("oversized: unexpected reply %r" % reply[:80])
        s.close()
        count("oversized")
        time.sleep(0.01)


def slow_values():
    while time.time() < DEADLINE:
        s = connect()
        try:
            s.sendall(b"set soak-slow 0 0 400000\r\n")
            for _ in range(20):
                s.sendall(b"s" * 10_000)
                time.sleep(0.05)
        except OSError:
            pass
        s.close()
        count("slow")


def no_reader():
    request = b"get soak-churn-1 soak-churn-3 soak-churn-5\r\n" * 200
    while time.time() < DEADLINE:
        s = connect()
        s.setblocking(False)
        sent = 0
        try:
            while sent < 8_000_000:
                sent += s.send(request)
        except BlockingIOError:
            pass  # the server stopped reading: it waits for us
        except OSError:
            pass
        time.sleep(1.0)
        abort(s)
        count("no_reader")


def guarded(worker):
    def run():
        try:
            worker()
        except OSError as e:
            fail("%s: %r" % (worker.__name__, e))
    return run


def main():
    workers = [churn, churn, garbage, half_requests, oversized, slow_values, no_reader]
    threads = [threading.Thread(target=guarded(w), name=w.__name__, daemon=True) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=max(1.0, DEADLINE - time.time() + 30))
        if t.is_alive():
            fail("a chaos client hung: %s" % t.name)
    # Still serving.
    s = connect()
    s.sendall(b"version\r\n")
    if not read_line(s).startswith(b"VERSION "):
        fail("no version reply after the soak")
    s.close()
    print("chaos: " + ", ".join("%s %d" % kv for kv in sorted(counts.items())))
    for message in failures[:20]:
        print("chaos FAILURE: " + message)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    try:
        main()
    except OSError as e:
        print("chaos FAILURE: %r" % e)
        sys.exit(1)
