#!/usr/bin/env python3
"""What a TLS connection costs segcore, next to a plaintext one: resident
memory per connection (RSS growth over N connections, one core) for idle
plaintext connections, TLS connections that never start their handshake,
and idle TLS connections after the handshake. Makes its own CA and server
certificate (scripts/lib/test-pki.sh).

    scripts/bench/bench_tls_memory.py [path/to/segcore] [CONNECTIONS]
"""
import os
import pwd
import random
import resource
import socket
import ssl
import subprocess
import sys
import tempfile
import time

segcore = sys.argv[1] if len(sys.argv) > 1 else "target/release/segcore"
n = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
resource.setrlimit(resource.RLIMIT_NOFILE, (n * 2 + 100, n * 2 + 100))
pki = tempfile.mkdtemp()
subprocess.run([os.path.join(os.path.dirname(__file__), "..", "lib", "test-pki.sh"), pki], check=True)


def rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) * 1024


def per_connection(args, mode):
    port = random.randrange(20000, 32000)
    proc = subprocess.Popen([segcore, "-u", pwd.getpwuid(os.geteuid()).pw_name, "-p", str(port), "--threads", "1", "-m", "64",
                             "-c", str(n * 2), "--tls-handshake-timeout", "60", *args])
    try:
        time.sleep(1.0)
        before = rss(proc.pid)
        context = ssl.create_default_context(cafile=os.path.join(pki, "ca.pem"))
        socks = []
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port))
            if mode == "tls-idle":
                s = context.wrap_socket(s, server_hostname="127.0.0.1")
            socks.append(s)
        time.sleep(1.5)
        grown = rss(proc.pid) - before
        for s in socks:
            s.close()
        return grown / n
    finally:
        proc.terminate()
        proc.wait()


tls = ["-Z", "-o", f"ssl_chain_cert={pki}/server.pem,ssl_key={pki}/server.key"]
print(f"{n} connections, one core; resident bytes per connection:")
print(f"  plaintext, idle:                {per_connection([], 'plain'):8.0f}")
print(f"  TLS, handshake never started:   {per_connection(tls, 'pending'):8.0f}")
print(f"  TLS, idle after the handshake:  {per_connection(tls, 'tls-idle'):8.0f}")
