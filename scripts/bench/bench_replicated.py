#!/usr/bin/env python3
"""The replicated cluster measured as a user would, same run (driven by
scripts/bench/bench-replicated.sh, which starts everything):

1. throughput, p50/p99 and CPU per request of every process serving it
   (proxy + nodes), through memcached's proxy over 2 zones, through
   nutcracker over zone 1's nodes, and direct to one node; rounds
   alternate the three, medians reported with ratios to direct;
2. write and read amplification: node-side sets and gets per client
   request, counted on the nodes for exactly N requests;
3. hot keys: a get-only Zipf 1.2 load through the proxy, the busiest
   node's share of all node gets, before and after the hot keys from the
   nodes' `stats hotkeys` are given to the proxy (proxy-hot-keys.py +
   SIGHUP);
4. replication lag from the proxy's own counters.

    bench_replicated.py CONFIG.json     (written by bench-replicated.sh)
"""
import json
import os
import socket
import statistics
import subprocess
import sys
import time

C = json.load(open(sys.argv[1]))
BENCH = C["bench"]
OUT = C["out"]


def stats(port, command="stats", end=b"END\r\n"):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(command.encode() + b"\r\n")
        data = b""
        while not data.endswith(end):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return {l.split()[1]: l.split()[2] for l in data.decode("latin-1").splitlines()
            if l.startswith("STAT ") and len(l.split()) >= 3}


def node_counts(what):
    return [int(stats(n["port"]).get(what, 0)) for n in C["nodes"]]


def run(name, port, pids, extra, tag):
    path = f"{OUT}/{name}-{tag}.json"
    cmd = [BENCH, "run", "-s", f"127.0.0.1:{port}", "--json", path,
           "--server-pid", ",".join(str(p) for p in pids)] + extra
    subprocess.run(cmd, check=True, stdout=open(f"{OUT}/{name}-{tag}.txt", "w"))
    return json.load(open(path))


def throughput():
    secs = str(C["secs"])
    load = ["--protocol", "text", "-c", "50", "--pipeline", "1", "--ratio", "9:1",
            "--keys", "100000", "--value-size", "64", "--duration", secs, "--warmup", "1"]
    nodes = [n["pid"] for n in C["nodes"]]
    zone1 = [n for n in C["nodes"] if n["zone"] == "z1"]
    targets = [
        ("direct", zone1[0]["port"], [zone1[0]["pid"]]),
        ("nutcracker", C["nutcracker"]["port"], [C["nutcracker"]["pid"]] + [n["pid"] for n in zone1]),
        ("proxy", C["proxy"]["port"], [C["proxy"]["pid"]] + nodes),
    ]
    rows = {name: [] for name, _, _ in targets}
    for r in range(C["rounds"]):
        for name, port, pids in targets:
            s = run(name, port, pids, load + (["--prefill"] if r == 0 else []), f"round{r}")
            rows[name].append(s)
            print(f"round {r} {name}: {s['ops_per_sec']:.0f} ops/s p50 {s['p50_us']}us "
                  f"p99 {s['p99_us']}us cpu {s['server_cpu_us_per_request']:.2f}us/req "
                  f"errors {s['errors']}", flush=True)
    med = {name: {k: statistics.median(r[k] for r in rs)
                  for k in ("ops_per_sec", "p50_us", "p99_us", "server_cpu_us_per_request")}
           for name, rs in rows.items()}
    base = med["direct"]
    print("\nmedians (CPU = every serving process: proxy + nodes)")
    print("| path | ops/s | p50 µs | p99 µs | CPU µs/req | vs direct: ops/s, CPU/req |")
    print("|---|---|---|---|---|---|")
    for name, m in med.items():
        print(f"| {name} | {m['ops_per_sec']:.0f} | {m['p50_us']:.0f} | {m['p99_us']:.0f} | "
              f"{m['server_cpu_us_per_request']:.2f} | {m['ops_per_sec'] / base['ops_per_sec']:.2f}x, "
              f"{m['server_cpu_us_per_request'] / base['server_cpu_us_per_request']:.2f}x |")
    return med


def amplification(port, n=1000):
    """Node-side sets per client set and gets per client get, for n each."""
    sets0, gets0 = node_counts("cmd_set"), node_counts("cmd_get")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        f = s.makefile("rb")
        for i in range(n):
            s.sendall(b"set amp:%d 0 0 2\r\nhi\r\n" % i)
            assert f.readline() == b"STORED\r\n"
        for i in range(n):
            s.sendall(b"get amp:%d\r\n" % i)
            assert f.readline().startswith(b"VALUE")
            f.readline(), f.readline()
    sets = sum(node_counts("cmd_set")) - sum(sets0)
    gets = sum(node_counts("cmd_get")) - sum(gets0)
    return sets / n, gets / n


def busiest_share(tag):
    """A get-only Zipf 1.2 load through the proxy; the busiest node's share
    of all node gets and the load's hit ratio."""
    before = node_counts("cmd_get")
    s = run("hotkeys", C["proxy"]["port"], [C["proxy"]["pid"]],
            ["--protocol", "text", "-c", "50", "--ratio", "1:0", "--keys", "100000",
             "--key-pattern", "zipf:1.2", "--duration", str(C["secs"]), "--warmup", "1"], tag)
    got = [a - b for a, b in zip(node_counts("cmd_get"), before)]
    share = max(got) / max(sum(got), 1)
    hit = s["hits"] / max(s["hits"] + s["misses"], 1)
    print(f"hot keys {tag}: busiest node {share:.1%} of node gets "
          f"(per node {got}), {s['ops_per_sec']:.0f} ops/s, hit ratio {hit:.3f}", flush=True)
    return share


def hot_keys():
    for n in C["nodes"]:
        stats(n["port"], "stats reset", b"RESET\r\n")
    without = busiest_share("without")
    tool = subprocess.run(
        [sys.executable, "scripts/tools/proxy-hot-keys.py",
         "--nodes", ",".join(f"127.0.0.1:{n['port']}" for n in C["nodes"]),
         "--out", C["hot_keys_file"], "--top", "10", "--min-share", "0.005",
         "--proxy-pid", str(C["proxy"]["pid"])], check=True, capture_output=True, text=True)
    chosen = tool.stdout.split()[0::3]
    print(f"proxy-hot-keys.py chose {len(chosen)} keys: {' '.join(chosen)}")
    time.sleep(2)  # the proxy reloads its routes on SIGHUP
    with_ = busiest_share("with")
    return without, with_, chosen


def lag():
    s = stats(C["proxy"]["port"], "stats proxy")
    writes = int(s.get("user_cmdmap_replicated_writes", 0))
    total = int(s.get("user_cmdmap_replication_lag_us", 0))
    over = [int(s.get(f"user_cmdmap_replication_lag_over_{t}", 0)) for t in ("1ms", "10ms", "100ms")]
    print(f"replication lag (proxy counters): {writes} writes, mean {total / max(writes, 1):.0f} us, "
          f"over 1 ms {over[0]}, over 10 ms {over[1]}, over 100 ms {over[2]}")
    return writes


def main():
    throughput()
    for name, port in (("direct", [n for n in C["nodes"] if n["zone"] == "z1"][0]["port"]),
                       ("nutcracker", C["nutcracker"]["port"]), ("proxy", C["proxy"]["port"])):
        w, r = amplification(port)
        print(f"amplification {name}: {w:.2f} node sets per set, {r:.2f} node gets per get")
    without, with_, chosen = hot_keys()
    writes = lag()
    ok = chosen and with_ < without and writes > 0
    print("OK" if ok else "UNEXPECTED: hot keys did not spread, or no write was counted")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
