"""The segcore-only cases of scripts/ci/hostile.py: each starts servers of its
own (restarts with other settings, two servers on one -e path, flipped
bytes in a saved file, a core that fails, the metrics endpoint under -S,
password guessing) and checks its bound."""
import os
import signal
import socket
import subprocess
import tempfile
import time

from hostile_lib import (AS_USER, Server, binary_request, check, connect, free_port, get_values,
                         others_served, read_binary, text_set)


def case_restart(binary, as_limit, tmp):
    keys = [b"key%d" % i for i in range(2000)]
    seen_old = 0
    for middle_stop in (signal.SIGUSR1, signal.SIGKILL):
        folder = tempfile.mkdtemp(dir=tmp)
        path = os.path.join(folder, "mem")
        first = [binary, *AS_USER, "-p", "{port}", "-e", path, "-t", "2", "-m", "32"]
        s = Server(first, as_limit)
        c = connect(s.port)
        for k in keys:
            text_set(c, k, b"old")
        c.close()
        s.stop(signal.SIGUSR1)
        s = Server([binary, *AS_USER, "-p", "{port}", "-e", path, "-t", "1", "-m", "32"], as_limit)
        c = connect(s.port)
        for k in keys:
            text_set(c, k, b"new")
        c.close()
        s.stop(middle_stop)
        s = Server(first, as_limit)
        values = get_values(s.port, keys)
        seen_old += sum(1 for v in values.values() if v == b"old")
        s.stop()
    check(seen_old == 0, "restart: %d overwritten values served" % seen_old)
    return {"overwritten_values_served": seen_old}


def case_two_servers(binary, as_limit, tmp):
    path = os.path.join(tempfile.mkdtemp(dir=tmp), "mem")
    s = Server([binary, *AS_USER, "-p", "{port}", "-e", path, "-m", "32"], as_limit)
    second = subprocess.run(
        [binary, *AS_USER, "-p", str(free_port()), "-e", path, "-m", "32"], capture_output=True, text=True, timeout=30
    )
    first_alive = s.alive() and others_served(s.port)
    s.stop()
    refused = second.returncode != 0 and "in use" in second.stderr
    check(refused, "two_servers: the second was not refused: %r" % second.stderr)
    check(first_alive, "two_servers: the first stopped serving")
    return {"second_refused": refused, "message": second.stderr.strip()}


def case_flipped(binary, as_limit, tmp):
    path = os.path.join(tempfile.mkdtemp(dir=tmp), "mem")
    argv = [binary, *AS_USER, "-p", "{port}", "-e", path, "-t", "1", "-m", "32"]
    s = Server(argv, as_limit)
    c = connect(s.port)
    values = {b"flip%d" % i: (b"value-%d-" % i) * 20 for i in range(50)}
    for k, v in values.items():
        text_set(c, k, v)
    c.close()
    s.stop(signal.SIGUSR1)
    with open(path + ".0", "r+b") as f:
        data = bytearray(f.read())
        flipped = 0
        for i in range(50):
            at = data.find(b"value-%d-" % i)
            if at >= 0:
                data[at + 2] ^= 0x01
                flipped += 1
        key_at = data.find(b"flip7")
        if key_at >= 0:
            data[key_at] ^= 0x20  # "Flip7": a key never stored
        f.seek(0)
        f.write(data)
    s = Server(argv, as_limit)
    got = get_values(s.port, list(values) + [b"Flip7"])
    wrong = sum(1 for k, v in got.items() if values.get(k) != v)
    s.stop()
    check(wrong == 0, "flipped: %d wrong values served" % wrong)
    return {"flipped_bytes": flipped, "wrong_values_served": wrong, "values_served": len(got)}


def case_core_failure(binary, as_limit, tmp):
    folder = tempfile.mkdtemp(dir=tmp)
    path = os.path.join(folder, "mem")
    log = os.path.join(folder, "stderr.log")
    s = Server([binary, *AS_USER, "-p", "{port}", "-e", path, "-t", "2", "-m", "32"], as_limit, log=log)
    c = connect(s.port)
    keys = [b"victim%d" % i for i in range(200)]
    for k in keys:
        text_set(c, k, b"v" * 100)
    with open(path + ".1", "r+b") as f:
        f.write(b"\xff" * (1 << 20))
    try:
        c.sendall(b"get " + b" ".join(keys) + b"\r\n")
        c.recv(1024)
    except OSError:
        pass
    try:
        status = s.proc.wait(20)
    except subprocess.TimeoutExpired:
        status = None
        s.stop(signal.SIGKILL)
    message = [l for l in s.stderr().splitlines() if "failed" in l]
    check(status == 70, "core_failure: exit status %r (a live process with a dead core?)" % status)
    return {"exit_status": status, "message": message[:1]}


def case_metrics(binary, as_limit, tmp):
    users = os.path.join(tmp, "users")
    with open(users, "w") as f:
        f.write("foo:bar\n")
    metrics = free_port()
    env = dict(os.environ, MEMCACHED_SASL_PWDB=users)
    s = Server([binary, *AS_USER, "-p", "{port}", "-S", "--metrics-listen", str(metrics)], as_limit, env=env)

    def scrape(head):
        m = socket.create_connection(("127.0.0.1", metrics), timeout=10)
        m.sendall(head)
        reply = b""
        while True:
            chunk = m.recv(1 << 16)
            if not chunk:
                break
            reply += chunk
        m.close()
        return reply

    anonymous = scrape(b"GET /metrics HTTP/1.1\r\n\r\n")
    slow = []
    for _ in range(20):
        x = socket.create_connection(("127.0.0.1", metrics), timeout=10)
        x.sendall(b"G")
        slow.append(x)
    served = 0
    for _ in range(10):
        reply = scrape(b"GET /metrics HTTP/1.1\r\nAuthorization: Basic Zm9vOmJhcg==\r\n\r\n")
        served += reply.startswith(b"HTTP/1.1 200")
        for x in slow:
            try:
                x.sendall(b"E")
            except OSError:
                pass
    for x in slow:
        x.close()
    s.stop()
    check(anonymous.startswith(b"HTTP/1.1 401") and b"hot_key" not in anonymous,
          "metrics: served without credentials")
    check(served == 10, "metrics: %d of 10 real scrapes served beside slow clients" % served)
    return {"anonymous_status": anonymous.split(b"\r\n")[0].decode(), "real_scrapes_served": served}


def case_sasl_rate(binary, as_limit, tmp):
    users = os.path.join(tmp, "users")
    with open(users, "w") as f:
        f.write("foo:bar\n")
    env = dict(os.environ, MEMCACHED_SASL_PWDB=users)
    s = Server([binary, *AS_USER, "-p", "{port}", "-S"], as_limit, env=env)
    c = connect(s.port)
    tries, start = 0, time.time()
    while time.time() - start < 3.0:
        c.sendall(binary_request(0x21, b"PLAIN", b"\0foo\0guess%d" % tries))
        status, _ = read_binary(c)
        check(status == 0x20, "sasl_rate: a guess was accepted")
        tries += 1
    rate = tries / (time.time() - start)
    c.sendall(binary_request(0x21, b"PLAIN", b"\0foo\0bar"))
    ok = read_binary(c)[0] == 0
    s.stop()
    check(rate < 1000, "sasl_rate: %.0f guesses a second on one connection" % rate)
    check(ok, "sasl_rate: the right password was refused after the guesses")
    return {"guesses_per_second": round(rate), "guesses": tries, "right_password_after": ok}


SEGCORE_CASES = {
    "restart": case_restart,
    "two_servers": case_two_servers,
    "flipped": case_flipped,
    "core_failure": case_core_failure,
    "metrics": case_metrics,
    "sasl_rate": case_sasl_rate,
}


