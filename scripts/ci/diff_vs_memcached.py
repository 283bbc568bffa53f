#!/usr/bin/env python3
"""Sends the same requests to memcached and to segcore, one fresh connection
per case, and prints every reply that differs. cas values are masked (they
are unique per write in both servers but not equal between them); nothing
else is. Exit status 1 when anything differs. Left out on purpose: replies
that are version-specific or not deterministic (last-access seconds, the
version string, cas values) and binary requests memcached answers
"Unknown command" that carry a body (Verbosity with its level): memcached
1.6.18 holds that reply until more bytes arrive and then eats the next
request; segcore answers at once and serves what follows.

    scripts/ci/diff_vs_memcached.py MEMCACHED_PORT SEGCORE_PORT

scripts/ci/diff-vs-memcached.sh starts both servers and runs this."""
import re
import socket
import sys


def talk(port, data):
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(0.3)
    s.sendall(data)
    out = b""
    while True:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            out += b"<closed>"
            break
        out += chunk
    s.close()
    return out


def mask_cas(reply):
    reply = re.sub(rb"^(VALUE \S+ \d+ \d+) \d+\r$", rb"\1 <cas>\r", reply, flags=re.M)
    return re.sub(rb"^((?:VA|HD|EN|NF|NS|EX)\b.*?) c\d+", rb"\1 c<cas>", reply, flags=re.M)


cases = [
 b"get\r\n", b"gets\r\n", b"get a b c\r\n",
 b"set k 0 0 1\r\n1\r\nincr k 18446744073709551615\r\n", b"incr k 1\r\n", b"decr k 5\r\n", b"decr k 100\r\n",
 b"set n 0 0 2\r\nab\r\nincr n 1\r\n", b"incr missing 1\r\n", b"decr missing 1\r\n",
 b"append missing 0 0 1\r\nx\r\n", b"prepend missing 0 0 1\r\nx\r\n",
 b"set a 5 0 3\r\nabc\r\nappend a 9 0 2\r\nde\r\nget a\r\n", b"prepend a 0 0 2\r\nzz\r\ngets a\r\n",
 b"cas a 0 0 1 1\r\nx\r\n", b"cas missing 0 0 1 1\r\nx\r\n", b"cas a 0 0 1 abc\r\nx\r\n",
 b"touch a 100\r\n", b"touch missing 100\r\n", b"gat 100 a missing\r\n", b"gats 0 a\r\n",
 b"set e 0 -1 1\r\nx\r\nget e\r\n", b"set z 0 0 0\r\n\r\nget z\r\n",
 b"set f 4294967295 0 1\r\nx\r\nget f\r\n", b"set g 4294967296 0 1\r\nx\r\n", b"set h 0 0 -5\r\n",
 b"delete a 0\r\n", b"delete a noreply\r\nget a\r\n", b"delete missing\r\n", b"delete\r\n",
 b"incr k 1 noreply\r\nget k\r\n", b"verbosity 1\r\n", b"verbosity\r\n", b"verbosity 1 noreply\r\nmn\r\n",
 b"flush_all 0\r\n", b"flush_all noreply\r\nmn\r\n", b"flush_all -1\r\n", b"flush_all abc\r\n",
 b"mn\r\n", b"ms mk 2 T0 F5\r\nhi\r\nmg mk v f t s k\r\n", b"mg mk v c O123 q\r\nmn\r\n", b"mg missing v q\r\nmn\r\n",
 b"mg missing v\r\n", b"mg missing\r\n", b"mg mk\r\n", b"md mk q\r\nmn\r\n", b"md mk\r\n", b"md missing q\r\nmn\r\n",
 b"ma cnt N0 J5 v\r\n", b"ma cnt v\r\n", b"ma cnt MD D10 v\r\n", b"ma nonum\r\n",
 b"ms big S2 I\r\nhi\r\n", b"ms mk2 2 MA\r\nhi\r\n", b"ms mk3 2 MZ\r\nhi\r\n", b"mg mk3 s v\r\n",
 b"ms bk 2 b\r\nhi\r\n", b"ms Ymsk 2 b\r\nhi\r\nmg Ymsk b k v\r\n",
 b"me mk\r\n", b"mg mk v N30\r\n", b"mg newkey v N30 t\r\nmg newkey v N30\r\n",
 b"get " + b"k"*251 + b"\r\n", b"set " + b"k"*250 + b" 0 0 1\r\nx\r\n",
 b"GET a\r\n", b"gets a a a\r\n", b"incr k -1\r\n", b"incr k 1.5\r\n", b"touch a\r\n", b"quit extra\r\n",
 b"stats nonsense\r\n", b"set k 0 0 1 noreply extra\r\nx\r\n", b"set k 0 0\r\n",
 b"set q 0 0 1 noreply\r\nx\r\nget q\r\n", b"add q 0 0 1\r\ny\r\n", b"replace nope 0 0 1\r\ny\r\n",
 b"set a 0 0 2\r\nabc\r\n", b"set a 0 0 2\r\na", b"get a\r\nget\r\n", b"incr\r\n", b"incr a\r\n",
 b"touch a 10 noreply\r\nmn\r\n", b"gat\r\n", b"gat 10\r\n", b"gat x a\r\n",
 b"set num 0 0 20\r\n18446744073709551615\r\nincr num 1\r\n",
 b"set sp 0 0 3\r\n5  \r\nincr sp 1\r\n",
 b"refresh_certs\r\n",
 b"set pd 0 0 3\r\n100\r\ndecr pd 1\r\nget pd\r\nincr pd 1\r\nget pd\r\n",
 b"set pm 0 0 4\r\n1000\r\nma pm MD D999 v\r\nmg pm v\r\n", b"decr missing 1 noreply\r\nmn\r\n",
 b"ms m1 1 T-1\r\nx\r\nmg m1 v\r\n", b"ms m1 1 F7 T0\r\nx\r\nmg m1 f v t\r\n", b"ms m1 1 C1\r\nx\r\n",
 b"ms m1 1 q\r\nx\r\nmn\r\n", b"ms m1 1 k O9\r\nx\r\n", b"mg m1 k O99 q v\r\n",
 b"md m1 I T30\r\nmg m1 v c\r\n", b"md missing\r\n",
 b"ma mcnt\r\n", b"ma mcnt q\r\nmn\r\n", b"ma mcnt N0 J7 MI D3 v t\r\n", b"ma mcnt MX\r\n",
 b"mg\r\n", b"ms\r\n", b"md\r\n", b"ma\r\n", b"me\r\n", b"mn extra\r\n",
 b"mg " + b"k"*251 + b" v\r\n", b"verbosity x\r\n",
 b"cas a 0 0 1\r\nx\r\n", b"cas a 0 0 1 1 noreply\r\nx\r\nmn\r\n",
 b"set big 0 0 2147483647\r\n", b"ms big 2147483646\r\n",
 b"GET / HTTP/1.0\r\n", b"PUT /a/b HTTP/1.1\r\n", b"DELETE HTTP/1.1\r\n", b"xyz HTTP/1.1\r\n",
 b"sxx / HTTP/1.0\r\n", b"set b 0 0 1\r\nx\r\nbget b\r\n",
 b"slabs automove 1\r\n", b"slabs automove 0 noreply\r\nmn\r\n", b"slabs automove invalid\r\n",
 b"slabs automove 3\r\n", b"slabs automove ratio\r\n", b"slabs automove ratio 0.5\r\n", b"slabs\r\n",
 b"slabs bogus 1\r\n", b"ms mc 2\r\nbo\r\nms mc 2 c C1\r\nio\r\nms mc 2 c ME\r\nio\r\n",
 # stats detail: per-prefix counts of classic get/set/delete only (one
 # prefix per dump: memcached lists prefixes in hash order).
 b"stats detail\r\n", b"stats detail bogus\r\n", b"stats detail dump\r\n",
 b"stats detail on\r\nset dp:1 0 0 1\r\nx\r\nget dp:1 dp:2 nodelim\r\ngets dp:1\r\ndelete dp:1\r\n"
 b"incr dp:1 1\r\nmg dp:3 v\r\nms dp:4 1\r\ny\r\nstats detail dump\r\nstats detail off\r\n"
 b"get dp:1\r\nstats detail dump\r\nstats reset\r\nstats detail dump\r\n",
 # meta cas rules (memcached's do_store_item): a cas of 0 compares nothing
 # for append/prepend and fails a set; add ignores a cas; append/prepend of a
 # missing key is NS whatever the cas; I stores stale only under an older cas
 b"set mc1 0 0 1\r\nx\r\nms mc1 2 MA C0\r\nhi\r\nmg mc1 v\r\n",
 b"set mc2 0 0 1\r\nx\r\nms mc2 2 MP C0\r\nhi\r\nmg mc2 v\r\n",
 b"set mc3 0 0 1\r\nx\r\nms mc3 2 MA C1\r\nhi\r\nmg mc3 v\r\n",
 b"ms mc4 2 MA C1\r\nhi\r\nms mc4 2 MP C0\r\nhi\r\nmg mc4 v\r\n",
 b"set mc5 0 0 1\r\nx\r\nms mc5 2 ME C0\r\nhi\r\nms mc6 2 ME C7\r\nhi\r\nmg mc5 v\r\nmg mc6 v\r\n",
 b"set mc7 0 0 1\r\nx\r\nms mc7 2 I C0\r\nhi\r\nmg mc7 v\r\nms mc8 2 C0\r\nhi\r\n",
 b"set mc9 0 0 1\r\nx\r\nms mc9 2 I C1\r\nhi\r\nmg mc9 v\r\nmg mc9 v\r\n",
 b"set mc10 0 0 1\r\nx\r\nms mc10 2 MR C0\r\nhi\r\nms mc11 2 MR C5\r\nhi\r\n",
 # flags a command cannot take: S nowhere; md and ma answer every refused
 # flag alike; a bad F is the generic bad line; ma's q hides a value too
 b"set mf1 0 0 1\r\nx\r\nms mf1 2 S2\r\nhi\r\nmg mf1 S v\r\nmg mf1 v\r\n",
 b"set mf2 0 0 1\r\nx\r\nmd mf2 Z\r\nmd mf2 q q\r\nmd mf2 C1 C0\r\nmd !!! b\r\nmd mf2 Fx\r\nmg mf2 v\r\n",
 b"set mf3 0 0 2\r\n10\r\nma mf3 Z\r\nma mf3 b\r\nma mf3 Jx\r\nma mf3 D-1\r\nma mf3 MII\r\nma mf3 T\r\nmg mf3 v\r\n",
 b"ms mf4 2 Fx\r\nhi\r\nmg mf4 Fx\r\nmd mf4 O" + b"o" * 33 + b"\r\nma mf4 O" + b"o" * 33 + b"\r\n",
 b"set mf5 0 0 2\r\n10\r\nma mf5 q v\r\nma mf5 q N0 v\r\nma mf5 q\r\nma nof5 q v\r\nmg mf5 v\r\nmn\r\n",
 # memcached takes control bytes in keys: only a space splits tokens
 b"set k\x01 0 0 1\r\nx\r\nget k\x01\r\nmg a\tb v\r\nms c\x7fd 1\r\ny\r\nmg c\x7fd v\r\n",
]

# Where memcached 1.6.18 and 1.6.38 answer differently: each case with the
# version segcore follows, the version the change came in, and what changed
# (docs/protocol-compat.md lists the same). Against the version it follows
# the reply must match; against the other it must differ (a table that no
# longer tells the two apart is stale).
versioned = [
    (b"ms vx1 2 MA N0\r\nhi\r\nmg vx1 v\r\n", "1.6.38", "1.6.20",
     "ms with N vivifies a missing key in append/prepend mode"),
    (b"set vx2 0 0 1\r\nx\r\nms vx2 2 s\r\nhi\r\n", "1.6.18", "1.6.20",
     "ms returns the item's size with s"),
    (b"stats sizes_enable\r\n", "1.6.38", "1.6.25", "stats sizes_enable/disable removed"),
    (b"ms vx3 2 E77 c\r\nhi\r\nmg vx3 v E5\r\nmd vx3 E9 q\r\nmn\r\n", "1.6.38", "1.6.27",
     "E<cas> sets the new item's cas (ms, mg, md, ma)"),
    (b"set vx4 0 0 1\r\nx\r\nmd vx4 x\r\nmg vx4 v\r\n", "1.6.38", "1.6.27",
     "md with x removes the value and keeps the item"),
]


def binreq(opcode, key=b"", extras=b"", value=b"", opaque=0, cas=0):
    """One binary protocol request."""
    body = extras + key + value
    return (bytes([0x80, opcode]) + len(key).to_bytes(2, "big") + bytes([len(extras), 0, 0, 0])
            + len(body).to_bytes(4, "big") + opaque.to_bytes(4, "big") + cas.to_bytes(8, "big") + body)


def mask_binary_cas(reply):
    """Zeroes the cas field of every binary response in `reply`."""
    out, at = bytearray(reply), 0
    while at + 24 <= len(out) and out[at] == 0x81:
        out[at + 16:at + 24] = bytes(8)
        at += 24 + int.from_bytes(out[at + 8:at + 12], "big")
    return bytes(out)


SET_EXTRAS = (7).to_bytes(4, "big") + (0).to_bytes(4, "big")
ARITH_EXTRAS = (5).to_bytes(8, "big") + (100).to_bytes(8, "big") + (0).to_bytes(4, "big")
ARITH_NO_CREATE = (5).to_bytes(8, "big") + (0).to_bytes(8, "big") + (0xFFFFFFFF).to_bytes(4, "big")
binary_cases = [
    binreq(0x00, b"missing", opaque=1),                                   # get miss
    binreq(0x01, b"bk", SET_EXTRAS, b"v", 2) + binreq(0x0C, b"bk", opaque=3),  # set, getk
    binreq(0x09, b"missing", opaque=4) + binreq(0x0A),                    # getq miss, noop
    binreq(0x02, b"bk", SET_EXTRAS, b"v", 5),                             # add existing
    binreq(0x03, b"missing", SET_EXTRAS, b"v", 6),                        # replace missing
    binreq(0x04, b"missing", opaque=7),                                   # delete missing
    binreq(0x05, b"cnt", ARITH_EXTRAS, opaque=8) + binreq(0x05, b"cnt", ARITH_EXTRAS, opaque=9),
    binreq(0x06, b"nocnt", ARITH_NO_CREATE, opaque=10),                   # decr miss, no create
    binreq(0x05, b"bk", ARITH_EXTRAS, opaque=11),                         # incr non-numeric
    binreq(0x0E, b"bk", value=b"++", opaque=12) + binreq(0x00, b"bk", opaque=13),  # append
    binreq(0x0F, b"missing", value=b"x", opaque=14),                      # prepend missing
    binreq(0x1C, b"bk", (100).to_bytes(4, "big"), opaque=15),             # touch
    binreq(0x1D, b"bk", (100).to_bytes(4, "big"), opaque=16),             # gat
    binreq(0x1C, b"missing", (100).to_bytes(4, "big"), opaque=17),        # touch miss
    binreq(0x55, b"", opaque=18),                                         # unknown opcode
    binreq(0x01, b"bk", SET_EXTRAS, b"v", 19, cas=12345),                 # set with wrong cas
    binreq(0x11, b"q1", SET_EXTRAS, b"v", 20) + binreq(0x0A, opaque=21),  # setq, noop
    binreq(0x08, opaque=23) + binreq(0x00, b"bk", opaque=24),             # flush, get
    binreq(0x00, b"k" * 251, opaque=25),                                  # key too long
    binreq(0x01, b"bk", b"", b"v", 26),                                   # set without extras
    binreq(0x10, b"detail on", opaque=28) + binreq(0x00, b"bp:1", opaque=29)  # detail on, get
    + binreq(0x01, b"bp:2", SET_EXTRAS, b"v", 30) + binreq(0x04, b"bp:2", opaque=31)  # set, delete
    + binreq(0x10, b"detail dump", opaque=32) + binreq(0x10, b"detail off", opaque=33)
    + binreq(0x10, b"reset", opaque=34) + binreq(0x10, b"detail dump", opaque=35),
    binreq(0x10, b"detail bogus", opaque=36),                             # unknown detail subcommand
    binreq(0x1B, opaque=37) + binreq(0x0A, opaque=38),                    # verbosity, noop
    binreq(0x07, opaque=27),                                              # quit
]


def main():
    a, b = int(sys.argv[1]), int(sys.argv[2])
    reference = sys.argv[3] if len(sys.argv) > 3 else "1.6.18"
    version = talk(a, b"version\r\n")
    print(f"reference: memcached {version.decode().strip()[8:]}")
    if not version.startswith(b"VERSION " + reference.encode()):
        raise SystemExit(f"the reference answered {version!r}, not {reference}")
    diffs = 0
    for case in cases:
        ra, rb = mask_cas(talk(a, case)), mask_cas(talk(b, case))
        if ra != rb:
            diffs += 1
            print(f"--- {case[:80]!r}\n  memcached: {ra[:200]!r}\n  segcore:   {rb[:200]!r}")
    for case, follows, since, what in versioned:
        ra, rb = mask_cas(talk(a, case)), mask_cas(talk(b, case))
        if (ra == rb) != (follows == reference):
            diffs += 1
            want = "the same reply" if follows == reference else "a different reply"
            print(f"--- {case[:80]!r} ({what}, {since}; segcore follows {follows}: want {want})"
                  f"\n  memcached: {ra[:200]!r}\n  segcore:   {rb[:200]!r}")
    for case in binary_cases:
        ra, rb = mask_binary_cas(talk(a, case)), mask_binary_cas(talk(b, case))
        if ra != rb:
            diffs += 1
            print(f"--- binary {case[:40].hex()}\n  memcached: {ra[:120].hex()}\n  segcore:   {rb[:120].hex()}")
    total = len(cases) + len(binary_cases) + len(versioned)
    print(f"{diffs} differences in {total} cases ({len(versioned)} that differ between versions)")
    sys.exit(1 if diffs else 0)


main()
