"""Common memcached client operations through pymemcache (text) and
python-binary-memcached (binary) against HOST:PORT. Prints a line per check
and a closing 'N passed, N failed' line; exits non-zero on any failure."""
import sys

import bmemcached
from pymemcache.client.base import Client

host, port = sys.argv[1].rsplit(":", 1)
port = int(port)
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


text_checks()
binary_checks()
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
