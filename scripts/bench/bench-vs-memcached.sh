#!/usr/bin/env bash
# segcore against memcached, same machine, same run: each server gets one
# worker pinned to the same core (SERVER_CPU, default 1), the load is pinned
# to another (LOAD_CPU, default 0), and segcore-bench alternates A (memcached)
# and B (segcore) for ROUNDS rounds, reporting median ratios B/A.
# Then, with fresh servers: the hit ratio each reaches at equal memory
# (cache-aside zipf 0.99 replay, memory for ~20% of the keys) and resident
# memory per item (1M items, 24-byte keys, 64-byte values).
# Installs memcached from apt when missing. Results go to results/.
#
#   scripts/bench/bench-vs-memcached.sh [SECONDS_PER_RUN] [ROUNDS] [HIT_RATIO_REQUESTS]
#
# Each throughput comparison also writes an SVG of both latency curves.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-5}
rounds=${2:-3}
hit_requests=${3:-10000000}
server_cpu=${SERVER_CPU:-1}
load_cpu=${LOAD_CPU:-0}
memory_mb=${MEMORY_MB:-1024}
out=results/$(date +%Y%m%d-%H%M%S)
mkdir -p "$out"

. scripts/lib/lib.sh
ensure_memcached
cargo build -q --release -p segcore -p segcore-bench

start_servers() { # memory_mb
  stop_servers
  mc_port=$(free_port)
  sc_port=$(free_port)
  taskset -c "$server_cpu" memcached -p "$mc_port" -U 0 -t 1 -m "$1" -c 4096 -u "$(id -un)" &
  mc_pid=$!
  target/release/segcore -u "$(id -un)" -p "$sc_port" --cores "$server_cpu" -m "$1" -c 4096 &
  sc_pid=$!
  wait_ready "$mc_port" "$mc_pid"
  wait_ready "$sc_port" "$sc_pid"
}
stop_servers() {
  if [ -n "${mc_pid:-}" ]; then kill "$mc_pid" "$sc_pid" 2>/dev/null || true; wait "$mc_pid" "$sc_pid" 2>/dev/null || true; fi
}
trap stop_servers EXIT
start_servers "$memory_mb"
echo "memcached $(memcached -V | cut -d' ' -f2) pid $mc_pid, segcore pid $sc_pid; servers on cpu $server_cpu, load on cpu $load_cpu"

run() { # name protocol pipeline [extra args...]
  echo "== $1"
  local name=$1 protocol=$2 pipeline=$3
  shift 3
  target/release/segcore-bench compare --a 127.0.0.1:"$mc_port" --b 127.0.0.1:"$sc_port" "$@" \
    --a-pid "$mc_pid" --b-pid "$sc_pid" --rounds "$rounds" \
    --plot "$out/$name.svg" --a-name memcached --b-name segcore --json "$out/$name.json" \
    --protocol "$protocol" --pipeline "$pipeline" --cpus "$load_cpu" -c 50 --ratio 9:1 --keys 100000 \
    --value-size 64 --duration "$secs" --warmup 1 --prefill | tee "$out/$name.txt"
}
run text-pipeline-1 text 1
run text-pipeline-16 text 16
run binary-pipeline-16 binary 16
# Latency at the same offered rate (open loop, 40k requests/s, a rate both
# servers sustain): p99 compares servers, not their saturation points.
run text-rate-40k text 1 --rate 40000

echo
echo "| workload | throughput B/A | p50 B/A | p99 B/A | server CPU/request B/A |"
echo "|---|---|---|---|---|"
for name in text-pipeline-1 text-pipeline-16 binary-pipeline-16 text-rate-40k; do
  awk -v n="$name" '/median B\/A: throughput/ {t=$4; p50=$6; p99=$8} /server CPU per request/ {c=$NF} END {printf "| %s | %s | %s | %s | %s |\n", n, t, p50, p99, c}' "$out/$name.txt" | tr -d ','
done

# Hit ratio at equal memory: 2M keys, 15-byte keys, 64-byte values; 40 MB
# holds about a fifth of them in either server.
start_servers 40
bench=target/release/segcore-bench
mc_hits=$(taskset -c "$load_cpu" $bench hit-ratio -s 127.0.0.1:"$mc_port" --keys 2000000 --requests "$hit_requests" | tee "$out/hit-ratio-memcached.txt" | awk '{print $3}')
sc_hits=$(taskset -c "$load_cpu" $bench hit-ratio -s 127.0.0.1:"$sc_port" --keys 2000000 --requests "$hit_requests" | tee "$out/hit-ratio-segcore.txt" | awk '{print $3}')

# Memory per item: both servers sized to hold the items (192 MB).
start_servers 192
mc_mem=$($bench memory -s 127.0.0.1:"$mc_port" --server-pid "$mc_pid" --items 1000000 | tee "$out/memory-memcached.txt" | awk '/^memory:/{print $2}')
sc_mem=$($bench memory -s 127.0.0.1:"$sc_port" --server-pid "$sc_pid" --items 1000000 | tee "$out/memory-segcore.txt" | awk '/^memory:/{print $2}')

echo
echo "| measure | memcached | segcore | segcore/memcached |"
echo "|---|---|---|---|"
python3 - "$mc_hits" "$sc_hits" "$mc_mem" "$sc_mem" <<'PY'
import sys
mh, sh, mm, sm = map(float, sys.argv[1:])
print(f"| hit ratio, zipf 0.99, 40 MB | {mh:.4f} | {sh:.4f} | {sh/mh:.3f}x |")
print(f"| resident bytes per item (24 B key, 64 B value) | {mm:.1f} | {sm:.1f} | {sm/mm:.2f}x |")
PY
echo "results in $out"
