#!/usr/bin/env python3
"""The hostile-client suite (issue 30): what one client, or one ordinary
restart, could do to take the cache down or make it lie. Each case runs
against a live server while its resident memory is sampled; sentinel values
stored first must all be intact at the end, and the server must still run.

    hostile.py SEGCORE_BINARY [--compare MEMCACHED_BINARY] [--json OUT]
               [--only CASE,...] [--as-limit-gb N]

Cases against one running server (both servers with --compare):
  multiget     one 12 KB line `get big big ...` (3,000 x a 1 MB value),
               not read for 2 s, then read whole
  unread_getk  40 connections pipeline 75 KB of binary GetK of the 1 MB
               value each and never read
  half_sets    40 connections declare 1 MB values, send 17 KB and wait;
               a legitimate 100 KB set must go through meanwhile
  evil_key     a binary key holding "\\r\\nSTAT evil 1\\r\\nEND\\r\\n" read hot:
               no text client may see a forged line
  chaos        scripts/ci/soak_chaos.py for a few seconds
segcore only (each starts servers of its own):
  restart      -t 2 save, -t 1 overwrite and save (and a SIGKILL variant),
               -t 2: never an overwritten value
  two_servers  a second server on the same -e path is refused in one line
  flipped      flipped bytes in a saved -e file: no wrong value served
  core_failure a core made to panic ends the process (status 70)
  metrics      -S with --metrics-listen: 401 without credentials, and 20
               slow clients cannot keep 10 real scrapes out
  sasl_rate    password guesses per second on one connection (-S)

For segcore each case checks its bound and the script exits 1 on any
failure; memcached's figures are recorded beside them, not judged. Servers
run under an address-space limit (--as-limit-gb, default 3) so a server
that builds a huge reply dies instead of taking the machine with it.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import struct
import time

from hostile_lib import (AS_USER, BIG, Peak, Server, binary_request, check, connect, failures,
                         others_served, read_binary, recv_until, rss_kb, text_set)
from hostile_segcore import SEGCORE_CASES

HERE = os.path.dirname(os.path.abspath(__file__))

SENTINELS = [(b"sentinel:%d" % i, (b"%d-" % i) * (1 + i % 50)) for i in range(200)]


def store_sentinels(port):
    s = connect(port)
    for key, value in SENTINELS:
        if text_set(s, key, value) != b"STORED\r\n":
            raise RuntimeError("sentinel not stored")
    s.close()


def sentinels_intact(port):
    s = connect(port)
    bad = 0
    for key, value in SENTINELS:
        s.sendall(b"get " + key + b"\r\n")
        reply = recv_until(s, b"END\r\n")
        if reply != b"VALUE %s 0 %d\r\n%s\r\nEND\r\n" % (key, len(value), value):
            bad += 1
    s.close()
    return bad


def case_multiget(server):
    s = connect(server.port)
    text_set(s, b"big", b"b" * BIG)
    s.close()
    before = rss_kb(server.proc.pid)
    greedy = connect(server.port, 30)
    line = b"get" + b" big" * 3000 + b"\r\n"
    with Peak(server.proc.pid) as peak:
        greedy.sendall(line)
        time.sleep(2.0)
        stalled = peak.kb
        served = others_served(server.port)
        received = 0
        try:
            while True:
                chunk = greedy.recv(1 << 20)
                if not chunk:
                    break
                received += len(chunk)
                if chunk.endswith(b"END\r\n"):
                    break
        except OSError:
            pass
    greedy.close()
    expected = 3000 * (len(b"VALUE big 0 1000000\r\n") + BIG + 2) + 5
    return {
        "request_bytes": len(line),
        "rss_before_kb": before,
        "rss_growth_stalled_kb": stalled - before,
        "rss_growth_peak_kb": peak.kb - before,
        "reply_bytes": received,
        "reply_complete": received == expected,
        "others_served_meanwhile": served,
    }


def case_unread_getk(server):
    s = connect(server.port)
    text_set(s, b"big", b"b" * BIG)
    s.close()
    before = rss_kb(server.proc.pid)
    request = binary_request(0x0C, b"big")  # GetK
    pipeline = request * (75_000 // len(request))
    hogs = []
    with Peak(server.proc.pid) as peak:
        for _ in range(40):
            c = connect(server.port)
            c.setblocking(False)
            sent = 0
            deadline = time.time() + 0.5
            while sent < len(pipeline) and time.time() < deadline:
                try:
                    sent += c.send(pipeline[sent:])
                except BlockingIOError:
                    time.sleep(0.01)
                except OSError:
                    break
            hogs.append(c)
        time.sleep(3.0)
        served = others_served(server.port)
    for c in hogs:
        c.close()
    return {
        "rss_before_kb": before,
        "rss_growth_peak_kb": peak.kb - before,
        "others_served_meanwhile": served,
    }


def case_half_sets(server):
    before = rss_kb(server.proc.pid)
    hogs = []
    with Peak(server.proc.pid) as peak:
        for i in range(40):
            c = connect(server.port)
            c.sendall(b"set half%d 0 0 %d\r\n" % (i, BIG) + b"h" * 17_000)
            hogs.append(c)
        time.sleep(1.0)
        s = connect(server.port)
        reply = text_set(s, b"legit", b"v" * 100_000)
        s.sendall(b"get legit\r\n")
        got = recv_until(s, b"END\r\n")
        s.close()
    for c in hogs:
        c.close()
    return {
        "rss_before_kb": before,
        "rss_growth_peak_kb": peak.kb - before,
        "legit_100k_set": reply.decode().strip(),
        "legit_100k_read_back": len(got) == len(b"VALUE legit 0 100000\r\n") + 100_002 + 5,
    }


def case_evil_key(server):
    evil = b"x\r\nSTAT evil 1\r\nEND\r\n"
    b = connect(server.port)
    extras = struct.pack(">II", 0, 0)
    b.sendall(binary_request(0x01, evil, b"v", extras))
    read_binary(b)
    gets = binary_request(0x00, evil) * 500
    for _ in range(20):
        b.sendall(gets)
        for _ in range(500):
            read_binary(b)
    b.close()
    t = connect(server.port)
    t.sendall(b"stats hotkeys\r\n")
    reply = t.recv(1 << 16)
    time.sleep(0.2)
    t.setblocking(False)
    try:
        reply += t.recv(1 << 16)
    except BlockingIOError:
        pass
    t.close()
    return {
        "forged_line_seen": b"STAT evil" in reply,
        "hotkeys_reply": reply[:200].decode("utf-8", "replace"),
    }


def case_chaos(server):
    out = subprocess.run(
        [sys.executable, os.path.join(HERE, "soak_chaos.py"), str(server.port), "8"],
        capture_output=True,
        text=True,
    )
    return {"exit": out.returncode, "summary": out.stdout.strip().splitlines()[:3]}


SHARED_CASES = {
    "multiget": case_multiget,
    "unread_getk": case_unread_getk,
    "half_sets": case_half_sets,
    "evil_key": case_evil_key,
    "chaos": case_chaos,
}

# Bounds segcore must meet (kB of RSS growth; debug builds included).
def judge_shared(name, r):
    if name == "multiget":
        check(r["rss_growth_peak_kb"] < 64 * 1024, "multiget: RSS grew %d kB" % r["rss_growth_peak_kb"])
        check(r["reply_complete"], "multiget: reply incomplete (%d bytes)" % r["reply_bytes"])
        check(r["others_served_meanwhile"], "multiget: others not served")
    elif name == "unread_getk":
        check(r["rss_growth_peak_kb"] < 192 * 1024, "unread_getk: RSS grew %d kB" % r["rss_growth_peak_kb"])
        check(r["others_served_meanwhile"], "unread_getk: others not served")
    elif name == "half_sets":
        check(r["legit_100k_set"] == "STORED", "half_sets: legit set got %s" % r["legit_100k_set"])
        check(r["legit_100k_read_back"], "half_sets: legit value not read back")
        check(r["rss_growth_peak_kb"] < 64 * 1024, "half_sets: RSS grew %d kB" % r["rss_growth_peak_kb"])
    elif name == "evil_key":
        check(not r["forged_line_seen"], "evil_key: a forged STAT line reached a text client")
    elif name == "chaos":
        check(r["exit"] == 0, "chaos: %s" % r["summary"])


def run_shared(argv, as_limit, only, judge):
    results = {}
    server = Server(argv, as_limit)
    store_sentinels(server.port)
    for name, case in SHARED_CASES.items():
        if only and name not in only:
            continue
        if not server.alive():
            results[name] = {"skipped": "server dead"}
            continue
        try:
            results[name] = case(server)
        except OSError as e:
            results[name] = {"error": repr(e)}
        results[name]["server_alive_after"] = server.alive()
        if judge:
            check(server.alive(), "%s: the server died: %s" % (name, server.stderr()))
            if "error" not in results[name]:
                judge_shared(name, results[name])
            else:
                failures.append("%s: %s" % (name, results[name]["error"]))
        print("  %-12s %s" % (name, json.dumps(results[name])), flush=True)
    alive = server.alive()
    bad = sentinels_intact(server.port) if alive else len(SENTINELS)
    results["end"] = {"alive": alive, "sentinels_wrong_or_missing": bad}
    if judge:
        check(alive, "the server is not running at the end")
        check(bad == 0, "%d sentinel values wrong or missing" % bad)
    print("  %-12s %s" % ("end", json.dumps(results["end"])), flush=True)
    server.stop()
    return results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("segcore")
    ap.add_argument("--compare", help="a memcached binary to run the shared cases against too")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--only", help="comma-separated case names")
    ap.add_argument("--as-limit-gb", type=float, default=3.0)
    ap.add_argument("--no-judge", action="store_true", help="record segcore's figures without checking them")
    args = ap.parse_args()
    only = set(args.only.split(",")) if args.only else None
    judge = not args.no_judge
    results = {}
    print("segcore (%s):" % args.segcore, flush=True)
    results["segcore"] = run_shared(
        [args.segcore, *AS_USER, "-p", "{port}", "-l", "127.0.0.1", "-t", "2", "-m", "64", "-c", "4096"], args.as_limit_gb, only, judge
    )
    tmp = tempfile.mkdtemp(prefix="segcore-hostile-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    try:
        for name, case in SEGCORE_CASES.items():
            if only and name not in only:
                continue
            try:
                results["segcore"][name] = case(args.segcore, args.as_limit_gb, tmp)
            except (OSError, RuntimeError) as e:
                results["segcore"][name] = {"error": repr(e)}
                if judge:
                    failures.append("%s: %r" % (name, e))
            print("  %-12s %s" % (name, json.dumps(results["segcore"][name])), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.compare:
        print("memcached (%s):" % args.compare, flush=True)
        results["memcached"] = run_shared(
            [args.compare, "-p", "{port}", "-l", "127.0.0.1", "-U", "0", "-t", "1", "-m", "64", "-c", "4096"]
            + (["-u", "root"] if os.geteuid() == 0 else []),
            args.as_limit_gb,
            only,
            False,
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    for message in failures:
        print("hostile FAILURE: " + message)
    print("hostile suite: %s" % ("FAILED" if failures else "passed"))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
