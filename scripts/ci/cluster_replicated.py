#!/usr/bin/env python3
"""Fault test of segcore replicated behind memcached's proxy (driven by
scripts/ci/cluster-replicated.sh): 2 zones x 3 shards of segcore, the proxy
(deploy/proxy/segcore-routes.lua) with zone z1 as its local zone,
`segcore-bench --verify` through the proxy the whole time, and a cache-aside
probe (one get at a time, a set on a miss; every value, flag and TTL a
function of its key) counting misses, errors and latency per 250 ms. At set
times:

  3 s   SIGKILL node z1/0            miss+error <= 1% in every window
  6 s   restart it empty; one read pass through the proxy; >= 95% of the
        keys it held are back on it (read from the node), same value,
        flags and TTL (within 1 s)
        zones compared on the nodes: identical
  11 s  SIGSTOP node z1/1 for 3 s    p99 within the backend timeout, no hang
  15.5  zones compared again
  17 s  SIGKILL all of zone z1       miss+error <= 1% from 17.5 s
  21 s  end; segcore-bench found 0 wrong values

Before the faults: replication lag (write through the proxy, poll the far
zone's node until the value shows), a lease stampede (100 clients ask
`mg <key> N30` at once: exactly one wins), hot keys (a key's gets stay in
the near zone until it is named in the proxy's hot_keys_file and the proxy
is sent SIGHUP; then 25-75% of them reach the far zone, counted on the
nodes) and the proxy's replication-lag counters (every replicated write
counted).

    cluster_replicated.py SEGCORE PROXY ROUTES BENCH OUTDIR
"""
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

from hostile_lib import AS_USER, free_port

SEGCORE, PROXY, ROUTES, BENCH, OUT = sys.argv[1:6]
ZONES, SHARDS = ["z1", "z2"], 3
KEYS = 1000
READ_TIMEOUT = 0.4  # the proxy's backend_read_timeout
RETRY_WAIT = 1.0  # the proxy's backend_retry_waittime
WINDOW = 0.25
problems = []


def answers(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"version\r\n")
            return s.recv(100).startswith(b"VERSION ")
    except OSError:
        return False


def wait_ready(port, proc):
    deadline = time.time() + 20
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit("server on %d exited at start" % port)
        if answers(port):
            return
        time.sleep(0.05)
    raise SystemExit("server on %d never answered" % port)


class Node:
    def __init__(self, zone, shard):
        self.name = "%s/%d" % (zone, shard)
        self.port = free_port()
        self.proc = None

    def start(self):
        log = open(os.path.join(OUT, "node-%s.err" % self.name.replace("/", "-")), "ab")
        self.proc = subprocess.Popen(
            [SEGCORE, *AS_USER, "-l", "127.0.0.1", "-p", str(self.port), "-t", "2", "-m", "64"],
            stdout=subprocess.DEVNULL, stderr=log)
        wait_ready(self.port, self.proc)

    def kill(self):
        self.proc.kill()
        self.proc.wait()

    def signal(self, sig):
        self.proc.send_signal(sig)


def value(k):
    return b"value-of-%d" % k


def flags(k):
    return k % 1000


def exptime(k):
    return 3600 if k % 2 else 0


class Conn:
    def __init__(self, port, timeout=5):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.r = self.sock.makefile("rb")

    def close(self):
        self.sock.close()

    def get(self, key):
        """(value, flags) or None; raises OSError, ValueError on errors."""
        self.sock.sendall(b"get %s\r\n" % key)
        line = self.r.readline()
        if line == b"END\r\n":
            return None
        if not line.startswith(b"VALUE "):
            raise ValueError(line)
        parts = line.split()
        data = self.r.read(int(parts[3]) + 2)[:-2]
        if self.r.readline() != b"END\r\n":
            raise ValueError("no END")
        return data, int(parts[2])

    def set(self, key, data, fl, ttl):
        self.sock.sendall(b"set %s %d %d %d\r\n%s\r\n" % (key, fl, ttl, len(data), data))
        return self.r.readline()

    def meta_many(self, keys):
        """key -> (value, flags, ttl) for the keys this server holds."""
        self.sock.sendall(b"".join(b"mg %s v f t k\r\n" % k for k in keys) + b"mn\r\n")
        held = {}
        while True:
            line = self.r.readline()
            if line == b"MN\r\n":
                return held
            if line.startswith(b"VA "):
                parts = line.split()
                data = self.r.read(int(parts[1]) + 2)[:-2]
                tok = {p[:1]: p[1:] for p in parts[2:]}
                held[tok[b"k"]] = (data, int(tok[b"f"]), int(tok[b"t"]))
            elif not line.startswith(b"EN"):
                raise ValueError(line)


def probe_key(k):
    return b"probe:%d" % k


def zone_contents(nodes, keys):
    """key -> (value, flags, ttl) over a zone's nodes (None for a dead zone)."""
    held = {}
    for node in nodes:
        c = Conn(node.port)
        held.update(c.meta_many(keys))
        c.close()
    return held


def compare_zones(label, zones, keys):
    a, b = (zone_contents(zones[z], keys) for z in ZONES)
    differ = [k for k in keys if k in a and k in b and
              (a[k][:2] != b[k][:2] or abs(a[k][2] - b[k][2]) > 1)]
    only = [k for k in keys if (k in a) != (k in b)]
    return {"label": label, "keys": len(keys), "in_both": sum(1 for k in keys if k in a and k in b),
            "different": len(differ), "in_one_zone_only": len(only),
            "examples": [k.decode() for k in (differ + only)[:5]]}


class Probe(threading.Thread):
    """Cache-aside reads through the proxy, one line per window."""

    def __init__(self, port, seconds):
        super().__init__(daemon=True)
        self.port, self.seconds = port, seconds
        self.rows = []  # (t, gets, misses, errors, wrong, [latencies])
        self.start_at = None
        self.wrong_examples = []

    def run(self):
        rng = random.Random(7)
        conn = Conn(self.port, timeout=3)
        self.start_at = time.time()
        edge = self.start_at + WINDOW
        gets = misses = errors = wrong = 0
        lat = []
        while time.time() < self.start_at + self.seconds:
            k = rng.randrange(KEYS)
            t0 = time.time()
            try:
                hit = conn.get(probe_key(k))
                if hit is None:
                    misses += 1
                    conn.set(probe_key(k), value(k), flags(k), exptime(k))
                elif hit != (value(k), flags(k)):
                    wrong += 1
                    if len(self.wrong_examples) < 5:
                        self.wrong_examples.append((round(t0 - self.start_at, 2), k, hit))
            except (OSError, ValueError):
                errors += 1
                try:
                    conn.close()
                    conn = Conn(self.port, timeout=3)
                except OSError:
                    time.sleep(0.05)
            gets += 1
            lat.append(time.time() - t0)
            now = time.time()
            if now >= edge:
                self.rows.append((edge - self.start_at - WINDOW, gets, misses, errors, wrong, lat))
                gets = misses = errors = wrong = 0
                lat = []
                edge += WINDOW

    def windows(self, t0, t1):
        return [r for r in self.rows if t0 <= r[0] < t1]


def healthy_writes(port, zones, label, writers=4, keys=300, rounds=3):
    """Keys written while both zones are up, by concurrent writers that
    overwrite each other's values; once they are done, every zone must
    hold the same last value for each."""
    tag = random.randrange(1 << 30)
    names = [b"healthy:%d:%d" % (tag, i) for i in range(keys)]

    def writer(w):
        c = Conn(port)
        for r in range(rounds):
            for i, key in enumerate(names):
                c.set(key, b"w%d-r%d-%d" % (w, r, i), w, 0)
        c.close()

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return compare_zones("keys written while both zones were up, " + label, zones, names)


def read_pass(port):
    c = Conn(port)
    began = time.time()
    for k in range(KEYS):
        c.get(probe_key(k))
    c.close()
    return time.time() - began


def lease_stampede(port, clients=100):
    key = b"lease:%d" % random.randrange(1 << 30)
    barrier = threading.Barrier(clients)
    answers_seen = []

    def one():
        c = Conn(port)
        barrier.wait()
        c.sock.sendall(b"mg %s N30 v c\r\n" % key)
        line = c.r.readline()
        if line.startswith(b"VA "):
            c.r.read(int(line.split()[1]) + 2)
        answers_seen.append(line)
        c.close()

    threads = [threading.Thread(target=one) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wins = sum(1 for a in answers_seen if b" W" in a)
    return {"clients": clients, "answers": len(answers_seen), "winners": wins}


def replication_lag(port, far_nodes, n=200):
    """Seconds from a write's reply through the proxy to its visibility on
    the far zone's node that holds it."""
    c = Conn(port)
    far = [Conn(node.port) for node in far_nodes]
    lags = []
    for i in range(n):
        key = b"lag:%d" % i
        data = b"v%d-%f" % (i, time.time())
        if c.set(key, data, 0, 0) != b"STORED\r\n":
            problems.append("replication lag: a set was not stored")
            break
        replied = time.time()
        while True:
            if any(f.meta_many([key]).get(key, (None,))[0] == data for f in far):
                lags.append(time.time() - replied)
                break
            if time.time() - replied > 5:
                problems.append("replication lag: a write never reached the far zone")
                break
    lags.sort()
    return {"writes": len(lags), "p50_ms": round(1000 * lags[len(lags) // 2], 3),
            "p99_ms": round(1000 * lags[int(len(lags) * 0.99) - 1], 3)} if lags else {}


def node_gets(nodes):
    """cmd_get of each node, read on the node."""
    return [int(stat_lines(node.port, b"stats").get(b"cmd_get", 0)) for node in nodes]


def hot_key_spread(port, proxy, zones, hot_file, gets=200):
    """Share of a key's gets that reach zone z2 (the far zone), before and
    after the key is named in the proxy's hot_keys_file and the proxy is
    sent SIGHUP: 0 before (reads are near-zone first), about half after."""
    key = b"hot:%d" % random.randrange(1 << 30)
    c = Conn(port)
    if c.set(key, b"hot-value", 0, 0) != b"STORED\r\n":
        problems.append("hot keys: the set was not stored")

    def far_share():
        before = [node_gets(zones[z]) for z in ZONES]
        for _ in range(gets):
            if c.get(key) is None:
                problems.append("hot keys: a get of the hot key missed")
                break
        after = [node_gets(zones[z]) for z in ZONES]
        per_zone = [sum(a) - sum(b) for a, b in zip(after, before)]
        return per_zone[1] / max(sum(per_zone), 1)

    share_before = far_share()
    with open(hot_file, "w") as f:
        f.write(key.decode() + "\n")
    proxy.send_signal(signal.SIGHUP)
    time.sleep(1.5)  # the proxy reloads its routes in the background
    share_after = far_share()
    c.close()
    return {"far_share_before": round(share_before, 3), "far_share_after": round(share_after, 3)}


def ratio(rows):
    gets = sum(r[1] for r in rows)
    return (sum(r[2] + r[3] for r in rows) / gets) if gets else 1.0


def main():
    zones = {z: [Node(z, s) for s in range(SHARDS)] for z in ZONES}
    for nodes in zones.values():
        for node in nodes:
            node.start()
    conf = os.path.join(OUT, "cluster.lua")
    hot_file = os.path.join(OUT, "hot-keys")
    open(hot_file, "w").close()
    with open(conf, "w") as f:
        f.write("segcore_cluster{\n  local_zone = \"z1\",\n  backend_read_timeout = %s,\n" % READ_TIMEOUT)
        f.write("  hot_keys_file = \"%s\",\n  zones = {\n" % hot_file)
        for z, nodes in zones.items():
            f.write("    %s = { %s },\n" % (z, ", ".join('"127.0.0.1:%d"' % n.port for n in nodes)))
        f.write("  },\n}\n")
    proxy_port = free_port()
    proxy = subprocess.Popen(
        [PROXY, *AS_USER, "-l", "127.0.0.1", "-p", str(proxy_port), "-t", "1", "-m", "16",
         "-o", "proxy_config=routelib:%s,proxy_arg=%s" % (ROUTES, conf)],
        stdout=subprocess.DEVNULL, stderr=open(os.path.join(OUT, "proxy.err"), "ab"))
    procs = [proxy]
    try:
        wait_ready(proxy_port, proxy)
        print("proxy on %d; z1 %s; z2 %s" % (proxy_port, [n.port for n in zones["z1"]],
                                               [n.port for n in zones["z2"]]), flush=True)
        c = Conn(proxy_port)
        for k in range(KEYS):
            if c.set(probe_key(k), value(k), flags(k), exptime(k)) != b"STORED\r\n":
                raise SystemExit("fill: a set through the proxy was not stored")
        c.close()
        results = {"replication_lag": replication_lag(proxy_port, zones["z2"]),
                   "lease": lease_stampede(proxy_port)}
        print("replication lag:", results["replication_lag"], flush=True)
        print("lease stampede:", results["lease"], flush=True)
        if results["lease"]["winners"] != 1:
            problems.append("lease stampede: %d winners" % results["lease"]["winners"])
        results["hot_keys"] = hot_key_spread(proxy_port, proxy, zones, hot_file)
        print("hot key: share of its gets on the far zone", results["hot_keys"], flush=True)
        if results["hot_keys"]["far_share_before"] > 0.02:
            problems.append("hot keys: reads left the near zone before the key was hot")
        if not 0.25 <= results["hot_keys"]["far_share_after"] <= 0.75:
            problems.append("hot keys: a hot key's reads were not spread over the zones")
        counters = proxy_stats(proxy_port)
        replicated = counters.get("cmdmap_replicated_writes", 0)
        results["lag_counters"] = {
            "replicated_writes": replicated,
            "mean_lag_us": round(counters.get("cmdmap_replication_lag_us", 0) / max(replicated, 1)),
            "over_1ms": counters.get("cmdmap_replication_lag_over_1ms", 0),
            "over_10ms": counters.get("cmdmap_replication_lag_over_10ms", 0),
        }
        print("replication lag (proxy counters):", results["lag_counters"], flush=True)
        if replicated < KEYS + results["replication_lag"].get("writes", 0):
            problems.append("replication lag: the proxy counted %d replicated writes" % replicated)

        bench = subprocess.Popen(
            [BENCH, "run", "-s", "127.0.0.1:%d" % proxy_port, "--verify", "--prefill", "-c", "4",
             "--keys", "5000", "--value-size", "64-512", "--ratio", "3:1", "--duration", "24",
             "--warmup", "0"],
            stdout=open(os.path.join(OUT, "bench.txt"), "wb"), stderr=subprocess.STDOUT)
        procs.append(bench)
        probe = Probe(proxy_port, 21)
        probe.start()
        while probe.start_at is None:
            time.sleep(0.01)
        t0 = probe.start_at

        def at(t):
            time.sleep(max(0, t0 + t - time.time()))

        keys = [probe_key(k) for k in range(KEYS)]
        bench_keys = [b"key:%012d" % i for i in range(5000)]
        victim = zones["z1"][0]
        at(2.5)
        held_before = zone_contents([victim], keys)
        at(3)
        victim.kill()
        print("3 s: node z1/0 killed (held %d probe keys)" % len(held_before), flush=True)
        at(6)
        victim.start()
        # The proxy tries a failed node again after backend_retry_waittime
        # (1 s); reads before that still go to the other zone.
        time.sleep(RETRY_WAIT + 0.5)
        took = read_pass(proxy_port)
        now_held = zone_contents([victim], keys)
        # Back means: on the node again, with the other zone's value, flags
        # and (within a second) remaining TTL.
        far = zone_contents(zones["z2"], list(held_before))
        back = [k for k in held_before
                if k in now_held and k in far and now_held[k][:2] == far[k][:2]
                and abs(now_held[k][2] - far[k][2]) <= 1]
        refill = len(back) / max(1, len(held_before))
        results["refill"] = {"held_before": len(held_before), "back_identical": len(back),
                             "ratio": round(refill, 4), "read_pass_s": round(took, 2)}
        print("6 s: node z1/0 restarted empty; after one read pass (%.2f s) it holds %d of its %d keys"
              % (took, len(back), len(held_before)), flush=True)
        results["compare_1"] = [compare_zones("probe keys after the refill", zones, keys),
                                healthy_writes(proxy_port, zones, "after the refill"),
                                compare_zones("bench keys after the refill (being written)", zones, bench_keys)]
        at(11)
        zones["z1"][1].signal(signal.SIGSTOP)
        print("11 s: node z1/1 stalled (SIGSTOP)", flush=True)
        at(14)
        zones["z1"][1].signal(signal.SIGCONT)
        print("14 s: node z1/1 resumed", flush=True)
        at(15.5)
        results["compare_2"] = [compare_zones("probe keys after the stall", zones, keys),
                                healthy_writes(proxy_port, zones, "after the stall"),
                                compare_zones("bench keys after the stall (being written)", zones, bench_keys)]
        at(17)
        for node in zones["z1"]:
            node.kill()
        print("17 s: zone z1 killed", flush=True)
        probe.join()
        bench_status = bench.wait(timeout=60)
        print(open(os.path.join(OUT, "bench.txt")).read(), flush=True)

        rows = probe.rows
        wrong = sum(r[4] for r in rows)
        kill_windows = probe.windows(3, 6)
        kill_peak = max((r[2] + r[3]) / r[1] for r in kill_windows if r[1])
        stall = [lat for r in probe.windows(11, 14) for lat in r[5]]
        stall.sort()
        stall_p99 = stall[int(len(stall) * 0.99) - 1] if stall else None
        zone_windows = probe.windows(17.5, 21)
        zone_peak = max(((r[2] + r[3]) / r[1] for r in zone_windows if r[1]), default=1.0)
        results.update({
            "probe": {"gets": sum(r[1] for r in rows), "wrong": wrong,
                      "steady_ratio": round(ratio(probe.windows(0.25, 3)), 4)},
            "node_kill": {"peak_ratio": round(kill_peak, 4)},
            "stall": {"gets": len(stall), "p99_ms": round(1000 * stall_p99, 1) if stall else None,
                      "max_ms": round(1000 * stall[-1], 1) if stall else None},
            "zone_kill": {"peak_ratio": round(zone_peak, 4),
                          "gets": sum(r[1] for r in zone_windows)},
            "bench_status": bench_status,
            "proxy_stats": proxy_stats(proxy_port),
        })
        print("probe: %d gets, %d wrong values; steady miss+error %.4f" %
              (results["probe"]["gets"], wrong, results["probe"]["steady_ratio"]))
        if wrong:
            print("wrong values (t, key, got):", probe.wrong_examples)
        print("node killed: miss+error peak %.4f (every 250 ms window)" % kill_peak)
        print("node stalled 3 s: %d gets, p99 %s ms, max %s ms (backend timeout %d ms)" %
              (len(stall), results["stall"]["p99_ms"], results["stall"]["max_ms"], READ_TIMEOUT * 1000))
        print("zone z1 killed: miss+error peak %.4f over %d gets" % (zone_peak, results["zone_kill"]["gets"]))
        for cmp in results["compare_1"] + results["compare_2"]:
            print("zones compared (%s): %d in both, %d different, %d in one zone only" %
                  (cmp["label"], cmp["in_both"], cmp["different"], cmp["in_one_zone_only"]))
        print("proxy counters:", results["proxy_stats"])

        if wrong:
            problems.append("wrong values through the proxy")
        if bench_status:
            problems.append("segcore-bench --verify failed (status %s)" % bench_status)
        if kill_peak > 0.01:
            problems.append("miss+error %.4f in a window after a node kill (limit 0.01)" % kill_peak)
        if refill < 0.95:
            problems.append("the restarted node holds %.2f of its keys after a read pass (want 0.95)" % refill)
        if not stall or stall_p99 > READ_TIMEOUT + 0.25:
            problems.append("p99 during the stall beyond the backend timeout")
        if zone_peak > 0.01 or not zone_windows:
            problems.append("miss+error %.4f after a whole zone died (limit 0.01)" % zone_peak)
        # The probe's keys and the keys written while both zones were up
        # must match exactly; the bench's keys are being written while they
        # are read (and some were written while a zone failed), so they are
        # reported only.
        for cmp in results["compare_1"][:2] + results["compare_2"][:2]:
            if cmp["different"] or cmp["in_one_zone_only"]:
                problems.append("zones differ (%s): %s" % (cmp["label"], cmp["examples"]))
        with open(os.path.join(OUT, "results.json"), "w") as f:
            json.dump(results, f, indent=2, default=str)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        for nodes in zones.values():
            for node in nodes:
                if node.proc and node.proc.poll() is None:
                    node.proc.send_signal(signal.SIGCONT)
                    node.proc.kill()
                    node.proc.wait()
    for p in problems:
        print("replicated FAILED: " + p)
    print("replicated cluster: %s" % ("FAILED" if problems else "passed"))
    sys.exit(1 if problems else 0)


def stat_lines(port, command):
    """The STAT name -> value pairs one stats command answers."""
    c = Conn(port)
    c.sock.sendall(command + b"\r\n")
    out = {}
    while True:
        line = c.r.readline()
        if line in (b"END\r\n", b""):
            break
        parts = line.split()
        if len(parts) == 3 and parts[0] == b"STAT":
            out[parts[1]] = parts[2]
    c.close()
    return out


def proxy_stats(port):
    """The proxy's own counters (`user_...` in `stats proxy`)."""
    return {name[5:].decode(): int(value)
            for name, value in stat_lines(port, b"stats proxy").items()
            if name.startswith(b"user_")}


if __name__ == "__main__":
    main()
