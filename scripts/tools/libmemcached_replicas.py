#!/usr/bin/python3
"""What libmemcached's `num_replicas` really does (docs/deploy.md cites it):
two segcore nodes, pylibmc (Debian's python3-pylibmc over libmemcached)
with num_replicas=1 over the text and the binary protocol; 60 sets, then
each key looked up on each node directly, then one node killed: how many
gets still hit; then it restarts empty and every key is read once: how
many it holds again (nothing repairs it). Installs python3-pylibmc when missing; runs Debian's own
python3, which is the one that package serves.

    scripts/tools/libmemcached_replicas.py [SEGCORE_BINARY]
"""
import os
import socket
import subprocess
import sys
import time

try:
    import pylibmc
except ImportError:
    subprocess.run(["apt-get", "install", "-y", "-q", "python3-pylibmc"], check=True,
                   stdout=subprocess.DEVNULL)
    import pylibmc

BINARY = sys.argv[1] if len(sys.argv) > 1 else "target/debug/segcore"
USER = ["-u", os.environ.get("USER") or "root"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(port):
    p = subprocess.Popen([BINARY, *USER, "-l", "127.0.0.1", "-p", str(port), "--threads", "1",
                          "-m", "16"], stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port)).close()
            return p
        except OSError:
            time.sleep(0.05)
    raise SystemExit("segcore did not start")


def held(port, keys):
    with socket.create_connection(("127.0.0.1", port)) as s:
        f = s.makefile("rb")
        n = 0
        for k in keys:
            s.sendall(b"mg %s\r\n" % k.encode())
            n += f.readline().startswith(b"HD")
        return n


def trial(binary_protocol):
    ports = [free_port(), free_port()]
    procs = [start(p) for p in ports]
    try:
        mc = pylibmc.Client(["127.0.0.1:%d" % p for p in ports], binary=binary_protocol,
                            behaviors={"ketama": True, "num_replicas": 1, "remove_failed": 1,
                                       "retry_timeout": 1, "connect_timeout": 200})
        keys = ["rep:%d" % i for i in range(60)]
        for k in keys:
            mc.set(k, "v")
        on = [held(p, keys) for p in ports]
        both = sum(1 for k in keys if held(ports[0], [k]) and held(ports[1], [k]))
        procs[0].kill()
        procs[0].wait()
        hits = 0
        for k in keys:
            try:
                hits += mc.get(k) is not None
            except pylibmc.Error:
                pass
        procs[0] = start(ports[0])
        time.sleep(1.2)  # past retry_timeout: the client takes A back
        for k in keys:
            try:
                mc.get(k)
            except pylibmc.Error:
                pass
        back = held(ports[0], keys)
        name = "binary" if binary_protocol else "text"
        print(f"{name}: 60 sets; node A holds {on[0]}, node B {on[1]}, both {both}; "
              f"after A is killed {hits} of 60 gets hit; A restarted empty holds {back} "
              f"after every key is read once")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


print("libmemcached", pylibmc.libmemcached_version, "via pylibmc", pylibmc.__version__)
trial(False)
trial(True)
