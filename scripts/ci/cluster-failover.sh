#!/usr/bin/env bash
# Failover through twemproxy (nutcracker): three segcore nodes behind the
# proxy (ketama, auto_eject_hosts, 400 ms timeout, 2 s retry), with
#   - segcore-bench --verify through the proxy the whole time (no value may
#     be wrong, no connection may hang), and
#   - a cache-aside probe (scripts/ci/cluster_probe.py) measuring the miss
#     ratio every 250 ms,
# while node 1 is killed (SIGKILL) at 4 s and restarted empty at 9 s, and
# node 2 is stalled (SIGSTOP) at 14 s and resumed at 17 s. Fails on a wrong
# value, a hung client, misses beyond the failed node's share, or no
# recovery; prints the miss-ratio spikes and the time to recover.
#
#   scripts/ci/cluster-failover.sh [SEGCORE_BINARY] [--per-core]
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib/lib.sh
. scripts/lib/cluster-lib.sh
binary=${1:-}
per_core=0
[ "${2:-}" = --per-core ] && per_core=1
if [ -z "$binary" ]; then
  cargo build -q --release -p segcore
  binary=target/release/segcore
fi
cargo build -q -p segcore-bench
out=results/failover-$(date +%Y%m%d-%H%M%S)
mkdir -p "$out"
trap cluster_stop EXIT
cluster_start 3 "$per_core" 2 "$binary" "$out"
echo "nutcracker on $proxy_port; nodes on ${node_ports[*]}"

python3 scripts/ci/cluster_probe.py "$proxy_port" 1000 fill
python3 scripts/ci/cluster_probe.py "$proxy_port" 1000 22 >"$out/probe.txt" 2>"$out/probe.err" &
probe=$!
timeout 60 target/debug/segcore-bench run -s 127.0.0.1:"$proxy_port" --verify --prefill \
  -c 4 --keys 5000 --value-size 64-512 --ratio 3:1 --duration 20 --warmup 0 \
  >"$out/bench.txt" 2>&1 &
bench=$!

# Events at fixed offsets from the probe's own start, logged with the
# time they happened so the analysis lines them up with its windows.
until [ -s "$out/probe.txt" ]; do sleep 0.05; done
start=$(awk '/^# start/ {print $3}' "$out/probe.txt")
at() { sleep "$(python3 -c "import time; print(max(0, $start + $1 - time.time()))")"; }
event() { python3 -c "import time; print('%s %.3f' % ('$1', time.time() - $start))" >>"$out/events.txt"; }
at 4; node_kill 1; event kill; echo "4 s: node 1 killed"
at 9; node_start 1; event restart; echo "9 s: node 1 restarted, empty"
at 14; kill -STOP "${node_pids[2]}"; event stop; echo "14 s: node 2 stalled (SIGSTOP)"
at 17; kill -CONT "${node_pids[2]}"; event resume; echo "17 s: node 2 resumed"

status=0
wait "$bench" || status=$?
wait "$probe" || true
cat "$out/bench.txt"
restarted_items=$(printf 'stats\r\nquit\r\n' | timeout 5 python3 -c "
import socket, sys
s = socket.create_connection(('127.0.0.1', ${node_ports[1]}))
s.sendall(b'stats\r\n'); data = b''
while not data.endswith(b'END\r\n'): data += s.recv(65536)
print(next(l.split()[2].decode() for l in data.split(b'\r\n') if l.startswith(b'STAT curr_items ')))")
echo "node 1 holds $restarted_items items after rejoining"

python3 - "$out/probe.txt" "$status" "$restarted_items" "$out/events.txt" <<'PY'
import sys
rows = [tuple(float(x) for x in line.split()) for line in open(sys.argv[1]) if line.strip() and not line.startswith("#")]
bench_status, rejoined_items = int(sys.argv[2]), int(sys.argv[3])
ev = {name: float(t) for name, t in (line.split() for line in open(sys.argv[4]))}
def ratio(t0, t1):
    sel = [r for r in rows if t0 <= r[0] < t1]
    gets = sum(r[1] for r in sel)
    return (sum(r[2] + r[3] for r in sel) / gets) if gets else 1.0, gets
def peak(t0, t1, span=1.0):
    # The worst miss+error ratio over any `span` seconds (gets-weighted): a
    # single 250 ms window can hold one get stuck behind the proxy's 400 ms
    # timeout, and 1 of 1 says nothing about the share of keys lost.
    starts = [r[0] for r in rows if t0 <= r[0] and r[0] + span <= t1]
    return max((ratio(s, s + span)[0] for s in starts), default=ratio(t0, t1)[0])
def recovered(t0, t1):
    for r in rows:
        if t0 <= r[0] < t1 and r[1] and (r[2] + r[3]) / r[1] < 0.05:
            return round(r[0] - t0, 2)
    return None
problems = []
wrong = sum(r[4] for r in rows)
k, r, st, re = ev["kill"], ev["restart"], ev["stop"], ev["resume"]
base, _ = ratio(1, k - 0.25)
kill_peak, kill_rec = peak(k - 0.25, r), recovered(k + 0.25, r)
rejoin_peak, rejoin_rec = peak(r, st), recovered(r, st)
stall_ratio, stall_gets = ratio(st, re)
stall_peak, stall_rec = peak(st, re), recovered(re, 22)
end_ratio, _ = ratio(20, 22)
print(f"probe: {sum(r[1] for r in rows):.0f} gets, {wrong:.0f} wrong values")
print(f"miss+error ratio: steady {base:.3f}; node killed: peak {kill_peak:.2f}, back under 5% after {kill_rec} s; "
      f"node rejoined empty: peak {rejoin_peak:.2f}, back under 5% after {rejoin_rec} s; "
      f"node stalled: {stall_ratio:.2f} over the stall (peak {stall_peak:.2f}, {stall_gets:.0f} gets served), "
      f"back under 5% {stall_rec} s after it resumed; last 2 s {end_ratio:.3f}")
if wrong: problems.append("wrong values through the proxy")
if bench_status: problems.append(f"segcore-bench --verify failed (status {bench_status})")
if base > 0.05: problems.append("misses before any failure")
if kill_peak > 0.6: problems.append("misses beyond the killed node's share")
if kill_rec is None: problems.append("no recovery after the kill")
if rejoined_items == 0: problems.append("the restarted node never rejoined")
if stall_gets == 0: problems.append("nothing served while a node was stalled")
if end_ratio > 0.1: problems.append("not recovered at the end")
for p in problems: print("failover FAILED: " + p)
sys.exit(1 if problems else 0)
PY
echo "failover passed; results in $out"
