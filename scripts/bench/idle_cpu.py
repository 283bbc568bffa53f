#!/usr/bin/env python3
"""A server's CPU while idle: starts `ARGV` ({port} stands for a free
port), opens CONNS idle connections (env, default 0), waits, then reads the
process's CPU time from /proc/PID/task/*/schedstat over SECONDS (env,
default 60) and prints it as a share of one CPU.

    CONNS=1000 idle_cpu.py target/release/segcore -p {port} -c 4096
"""
import os
import socket
import subprocess
import sys
import time


def cpu_ns(pid):
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/schedstat") as f:
            total += int(f.read().split()[0])
    return total


def main():
    argv = sys.argv[1:]
    conns = int(os.environ.get("CONNS", "0"))
    seconds = float(os.environ.get("SECONDS_IDLE", "60"))
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    server = subprocess.Popen([a.replace("{port}", str(port)) for a in argv], stderr=subprocess.DEVNULL)
    try:
        time.sleep(2)
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(conns)]
        time.sleep(2)
        before, start = cpu_ns(server.pid), time.time()
        time.sleep(seconds)
        used, took = cpu_ns(server.pid) - before, time.time() - start
        print(f"{os.path.basename(argv[0])} idle, {conns} connections: "
              f"{100 * used / 1e9 / took:.3f}% of a CPU over {took:.0f} s")
        for s in idle:
            s.close()
    finally:
        server.kill()


if __name__ == "__main__":
    main()
