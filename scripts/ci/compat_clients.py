"""Common memcached client operations through pymemcache (text) and
python-binary-memcached (binary) against HOST:PORT. Given a segcore binary,
also client-side consistent hashing: pymemcache's HashClient over three
nodes and over per-core endpoints, with one node stopped mid-test. Prints a
line per check and a closing 'N passed, N failed' line; exits non-zero on
any failure.

    compat_clients.py HOST:PORT [SEGCORE_BINARY]
"""
import os
import pwd
import socket
import subprocess
import sys
import time

import bmemcached
from pymemcache.client.base import Client
from pymemcache.client.hash import HashClient
from pymemcache.exceptions import MemcacheError

host, port = sys.argv[1].rsplit(":", 1)
port = int(port)
segcore = sys.argv[2] if len(sys.argv) > 2 else None
passed = failed = 0


def check(name, cond):
    global passed, failed
    if cond:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name}")


def text_checks():
    c = Client((host, port), connect_timeout=5, timeout=5)
    c.flush_all()
    check("text set/get", c.set("k1", "v1") and c.get("k1") == b"v1")
    check("text get miss", c.get("missing") is None)
    keys = {f"many:{i}": f"value:{i}".encode() for i in range(100)}
    c.set_many(keys)
    check("text get_many spanning cores", c.get_many(list(keys)) == keys)
    check("text add existing", c.add("k1", "x", noreply=False) is False)
    check("text add new", c.add("k2", "x", noreply=False) is True)
    check("text replace", c.replace("k2", "y", noreply=False) and c.get("k2") == b"y")
    check("text append/prepend", c.append("k2", ">", noreply=False) and c.prepend("k2", "<", noreply=False) and c.get("k2") == b"<y>")
    c.set("n", "10")
    check("text incr/decr", c.incr("n", 5) == 15 and c.decr("n", 20) == 0)
    value, cas = c.gets("k1")
    check("text gets/cas", value == b"v1" and c.cas("k1", "v2", cas) is True and c.cas("k1", "v3", cas) is False)
    check("text touch", c.touch("k1", 100, noreply=False) is True)
    check("text delete", c.delete("k1", noreply=False) is True and c.get("k1") is None)
    stats = c.stats()
    check("text stats", b"curr_items" in stats and int(stats[b"threads"]) >= 1)
    check("text version", c.version().startswith(b"1.6"))
    big = b"x" * (512 * 1024)
    check("text 512 KiB value", c.set("big", big) and c.get("big") == big)
    c.close()


def binary_checks():
    b = bmemcached.Client((f"{host}:{port}",))
    b.flush_all()
    check("binary set/get", b.set("b1", "v1") and b.get("b1") == "v1")
    check("binary get miss", b.get("missing") is None)
    keys = {f"bmany:{i}": f"value:{i}" for i in range(100)}
    b.set_multi(keys)
    check("binary get_multi spanning cores", b.get_multi(list(keys)) == keys)
    check("binary add existing", b.add("b1", "x") is False)
    check("binary replace", b.replace("b1", "r") and b.get("b1") == "r")
    b.set("bn", 10)
    check("binary incr/decr", b.incr("bn", 5) == 15 and b.decr("bn", 20) == 0)
    check("binary delete", b.delete("b1") and b.get("b1") is None)
    value, cas = b.gets("bn")
    check("binary gets/cas", cas is not None and b.cas("bn", 7, cas) and b.get("bn") == 7)
    stats = b.stats()
    check("binary stats", any(b"curr_items" in s or "curr_items" in s for s in stats.values()))
    b.disconnect_all()


def free_ports(count):
    """`count` free loopback ports in a row, below the ephemeral range."""
    import random
    for _ in range(1000):
        base = random.randrange(20000, 32000 - count)
        held = []
        try:
            for p in range(base, base + count):
                sk = socket.socket()
                sk.bind(("127.0.0.1", p))
                held.append(sk)
            return base
        except OSError:
            continue
        finally:
            for sk in held:
                sk.close()
    raise SystemExit("no free ports")


def start_node(args, port):
    proc = subprocess.Popen([segcore, "-u", pwd.getpwuid(os.geteuid()).pw_name, "--threads", "2", "-m", "32", *args])
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            c = Client(("127.0.0.1", port), connect_timeout=1, timeout=1)
            if c.version():
                c.close()
                return proc
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"segcore on {port} did not start")


def hash_client_checks(label, endpoints, procs, victim):
    """HashClient over `endpoints`; the process `victim` is stopped midway."""
    servers = [("127.0.0.1", p) for p in endpoints]
    # ignore_exc=False: with it on, the per-server clients swallow their own
    # connection errors, a retry of the dead node then looks like a success
    # and the ring never drops it. Errors are caught here instead.
    hc = HashClient(servers, connect_timeout=1, timeout=1, ignore_exc=False,
                    retry_attempts=1, retry_timeout=0.5, dead_timeout=60)

    def attempt(call, default):
        try:
            return call()
        except (OSError, MemcacheError):
            return default

    values = {f"ring:{label.replace(' ', '-')}:{i}": f"v{i}".encode() for i in range(300)}
    hc.set_many(values)
    check(f"{label}: all values through the ring", hc.get_many(list(values)) == values)
    held = [int(Client(sv, timeout=2).stats()[b"curr_items"]) for sv in servers]
    check(f"{label}: every endpoint holds a share", all(n > 0 for n in held))
    procs[victim].kill()
    procs[victim].wait()
    # The client notices the dead node and keeps working on the rest: its
    # keys miss, every other value is intact; after its retry it drops the
    # node from its ring and rehashes those keys onto the others.
    got = {}
    for key in values:
        got[key] = attempt(lambda: hc.get(key), None)
    intact = all(v is None or v == values[k] for k, v in got.items())
    served = sum(v is not None for v in got.values())
    check(f"{label}: after a node stops, no value is wrong", intact)
    check(f"{label}: after a node stops, the others still serve ({served}/300)", served >= 100)
    # Once the client's retry for the node has failed it rehashes that
    # node's keys onto the others: writing again makes every value
    # readable.
    deadline = time.time() + 10
    whole = False
    while not whole and time.time() < deadline:
        attempt(lambda: hc.set_many(values), None)
        whole = attempt(lambda: hc.get_many(list(values)), {}) == values
        time.sleep(0.1)
    check(f"{label}: the client drops the dead node; rewritten values all readable", whole)
    hc.quit()


def cluster_checks():
    procs = []
    try:
        ports = [free_ports(1) for _ in range(3)]
        procs = [start_node(["-p", str(p)], p) for p in ports]
        hash_client_checks("three nodes", ports, procs, 1)
    finally:
        for p in procs:
            p.kill()
            p.wait()
    procs = []
    try:
        # Two nodes with per-core endpoints: four endpoints in the ring.
        bases = [free_ports(2), free_ports(2)]
        procs = [start_node(["--port-per-core", str(b)], b) for b in bases]
        endpoints = [b + c for b in bases for c in range(2)]
        hash_client_checks("per-core endpoints", endpoints, procs, 0)
    finally:
        for p in procs:
            p.kill()
            p.wait()


def wait_listening(port):
    """Waits until something accepts on `port` (servers that answer no
    plain text command before authentication or TLS)."""
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port}")


def serves(call):
    """Whether `call` gets an answer (False on any error or close)."""
    try:
        call()
        return True
    except Exception:
        return False


def sasl_checks():
    """python-binary-memcached with SASL PLAIN against segcore -S."""
    import tempfile
    users = tempfile.NamedTemporaryFile("w", suffix=".pwdb", delete=False)
    users.write("alice:wonderland\n")
    users.close()
    p = free_ports(1)
    proc = subprocess.Popen([segcore, "-u", pwd.getpwuid(os.geteuid()).pw_name, "--threads", "2", "-m", "32", "-S", "-p", str(p)],
                            env={**os.environ, "MEMCACHED_SASL_PWDB": users.name})
    try:
        wait_listening(p)
        good = bmemcached.Client((f"127.0.0.1:{p}",), "alice", "wonderland")
        check("sasl: authenticated set/get", good.set("s1", "v1") and good.get("s1") == "v1")
        keys = {f"smany:{i}": f"value:{i}" for i in range(50)}
        good.set_multi(keys)
        check("sasl: get_multi spanning cores", good.get_multi(list(keys)) == keys)
        good.disconnect_all()
        bad = bmemcached.Client((f"127.0.0.1:{p}",), "alice", "looking-glass")
        try:
            refused = bad.get("s1") is None
        except Exception:
            refused = True
        check("sasl: a wrong password reads nothing", refused)
        bad.disconnect_all()
        text = Client(("127.0.0.1", p), connect_timeout=1, timeout=1)
        check("sasl: text clients are refused", not serves(lambda: text.get("s1")))
    finally:
        proc.kill()
        proc.wait()
        os.unlink(users.name)


def tls_checks():
    """pymemcache over TLS (tls_context) against segcore -Z, with a CA and
    server certificate from scripts/lib/test-pki.sh."""
    import shutil
    import ssl
    import tempfile
    d = tempfile.mkdtemp()
    subprocess.run([os.path.join(os.path.dirname(__file__), "..", "lib", "test-pki.sh"), d], check=True)
    p = free_ports(1)
    opts = f"ssl_chain_cert={d}/server.pem,ssl_key={d}/server.key"
    proc = subprocess.Popen([segcore, "-u", pwd.getpwuid(os.geteuid()).pw_name, "--threads", "2", "-m", "32", "-Z", "-o", opts, "-p", str(p)])
    try:
        context = ssl.create_default_context(cafile=os.path.join(d, "ca.pem"))
        wait_listening(p)
        c = Client(("127.0.0.1", p), tls_context=context, connect_timeout=1, timeout=5)
        check("tls: set/get over TLS", c.set("t1", "v1") and c.get("t1") == b"v1")
        keys = {f"tmany:{i}": f"value:{i}".encode() for i in range(50)}
        c.set_many(keys)
        check("tls: get_many spanning cores", c.get_many(list(keys)) == keys)
        c.close()
        plain = Client(("127.0.0.1", p), connect_timeout=1, timeout=2)
        check("tls: plaintext clients are not served on the TLS port", not serves(lambda: plain.get("t1")))
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(d)


text_checks()
binary_checks()
if segcore:
    cluster_checks()
    sasl_checks()
    tls_checks()
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
