"""Plumbing for scripts/ci/hostile.py: servers started under an address-space
limit, loopback clients for the text and binary protocols, RSS sampling,
and the list of failures the suite reports."""
import os
import pwd
import resource
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time

# segcore's -u with this process's user: as root memcached's rule needs one
# named (for anyone else -u changes nothing).
AS_USER = ["-u", pwd.getpwuid(os.geteuid()).pw_name]

BIG = 1_000_000
failures = []


def check(ok, message):
    if not ok:
        failures.append(message)


def free_port():
    import random
    for _ in range(1000):
        port = random.randrange(20000, 32000)
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    raise SystemExit("no free port")


def connect(port, timeout=10.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def recv_until(s, marker, limit=1 << 30):
    data = b""
    while not data.endswith(marker):
        chunk = s.recv(1 << 16)
        if not chunk:
            break
        data += chunk
        if len(data) > limit:
            break
    return data


def rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Peak:
    """Samples a process's RSS every 20 ms while in use; `.kb` is the peak."""

    def __init__(self, pid):
        self.pid, self.kb, self.running = pid, rss_kb(pid), True
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while self.running:
            self.kb = max(self.kb, rss_kb(self.pid))
            time.sleep(0.02)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()


class Server:
    def __init__(self, argv, as_limit_gb, env=None, log=None):
        self.port = free_port()
        self.argv = argv
        limit = int(as_limit_gb * (1 << 30))

        def cap():
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

        self.log = log or tempfile.NamedTemporaryFile(prefix="hostile-", suffix=".log", delete=False).name
        self.proc = subprocess.Popen(
            [a.replace("{port}", str(self.port)) for a in argv],
            stdout=subprocess.DEVNULL,
            stderr=open(self.log, "ab"),
            preexec_fn=cap,
            env=env,
        )
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("server exited at start: %s" % self.stderr())
            try:
                s = connect(self.port, 2)
                s.sendall(b"version\r\n")
                reply = s.recv(64)
                s.close()
                if reply.startswith(b"VERSION") or reply.startswith(b"CLIENT_ERROR") or reply == b"":
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("server never answered")

    def alive(self):
        return self.proc.poll() is None

    def stderr(self):
        try:
            with open(self.log, "rb") as f:
                return f.read().decode("utf-8", "replace")[-2000:]
        except OSError:
            return ""

    def stop(self, sig=signal.SIGTERM):
        if self.alive():
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def text_set(s, key, value, flags=0):
    s.sendall(b"set %s %d 0 %d\r\n" % (key, flags, len(value)) + value + b"\r\n")
    return recv_until(s, b"\r\n")


def binary_request(opcode, key=b"", value=b"", extras=b"", opaque=0):
    body = extras + key + value
    return struct.pack(">BBHBBHIIQ", 0x80, opcode, len(key), len(extras), 0, 0, len(body), opaque, 0) + body


def read_binary(s):
    head = b""
    while len(head) < 24:
        chunk = s.recv(24 - len(head))
        if not chunk:
            raise OSError("closed")
        head += chunk
    _, opcode, key_len, extras_len, _, status, body_len, _, _ = struct.unpack(">BBHBBHIIQ", head)
    body = b""
    while len(body) < body_len:
        chunk = s.recv(min(1 << 16, body_len - len(body)))
        if not chunk:
            raise OSError("closed")
        body += chunk
    return status, body[extras_len + key_len:]


def get_values(port, keys):
    s = connect(port)
    s.sendall(b"get " + b" ".join(keys) + b"\r\n")
    reply = recv_until(s, b"END\r\n")
    s.close()
    values, at = {}, 0
    while reply.startswith(b"VALUE ", at):
        end = reply.index(b"\r\n", at)
        _, key, _, length = reply[at:end].split(b" ")[:4]
        values[key] = reply[end + 2:end + 2 + int(length)]
        at = end + 2 + int(length) + 2
    return values



def others_served(port):
    """Whether an ordinary client is served right now."""
    try:
        s = connect(port, 5)
        ok = text_set(s, b"bystander", b"ok") == b"STORED\r\n"
        s.sendall(b"get bystander\r\n")
        ok = ok and recv_until(s, b"END\r\n") == b"VALUE bystander 0 2\r\nok\r\nEND\r\n"
        s.close()
        return ok
    except OSError:
        return False
