#!/usr/bin/env python3
"""Feeds segcore's hot keys to memcached's proxy: asks every node for
`stats hotkeys N`, keeps the keys whose estimated requests are at least
--min-share of all the nodes' gets, writes them one per line to the
proxy's `hot_keys_file` (deploy/proxy/segcore-routes.lua reads it) and, with
--proxy-pid, sends the proxy SIGHUP so it rereads its configuration. Reads
of those keys then start at a random zone instead of the proxy's own, so a
hot key's load is spread over every copy. Run it from cron, or after a
traffic shift; it prints the keys it chose.

    scripts/tools/proxy-hot-keys.py --nodes HOST:PORT,... --out FILE
        [--top 10] [--min-share 0.01] [--proxy-pid PID]
"""
import argparse
import os
import signal
import socket
import sys
import urllib.parse


def ask(node, command):
    """The STAT lines of one stats command, as (name, rest) pairs."""
    host, port = node.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=2) as s:
        s.sendall(command.encode() + b"\r\n")
        data = b""
        while not (data.endswith(b"END\r\n") or data.endswith(b"ERROR\r\n")):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    rows = []
    for line in data.decode("latin-1").splitlines():
        if line.startswith("STAT "):
            _, name, rest = line.split(" ", 2)
            rows.append((name, rest))
    return rows


def hot_keys(nodes, top, min_share):
    """(key, estimated requests, share of every node's gets), hottest first."""
    gets = 0
    found = {}
    for node in nodes:
        stats = dict(ask(node, "stats"))
        gets += int(stats.get("cmd_get", "0"))
        for _, rest in ask(node, f"stats hotkeys {top}"):
            escaped, count, _core = rest.split(" ")
            # stats hotkeys shows bytes a text key cannot hold as %XX.
            key = urllib.parse.unquote_to_bytes(escaped).decode("latin-1")
            found[key] = found.get(key, 0) + int(count)
    chosen = [(k, c, c / max(gets, 1)) for k, c in found.items() if c >= min_share * gets]
    chosen.sort(key=lambda row: -row[1])
    return chosen[:top]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nodes", required=True, help="comma-separated host:port of every node")
    p.add_argument("--out", required=True, help="the proxy's hot_keys_file")
    p.add_argument("--top", type=int, default=10, help="most keys to choose")
    p.add_argument("--min-share", type=float, default=0.01,
                   help="least share of all gets a key must have")
    p.add_argument("--proxy-pid", type=int, help="send this proxy SIGHUP afterwards")
    a = p.parse_args()
    chosen = hot_keys(a.nodes.split(","), a.top, a.min_share)
    tmp = a.out + ".tmp"
    with open(tmp, "w", encoding="latin-1") as f:
        for key, _, _ in chosen:
            f.write(key + "\n")
    os.replace(tmp, a.out)
    for key, count, share in chosen:
        print(f"{key} {count} {share:.3f}")
    if a.proxy_pid:
        os.kill(a.proxy_pid, signal.SIGHUP)
    return 0


if __name__ == "__main__":
    sys.exit(main())
