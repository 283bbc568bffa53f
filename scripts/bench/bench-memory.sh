#!/usr/bin/env bash
# Resident memory and density, segcore against memcached in the same run,
# over the wire (segcore-bench memory), 24-byte keys and 64-byte values
# unless said:
#   1. -m 4096, one core: 10M items; RSS per item at 1M, 5M, 10M; the
#      latency of every 100-set batch while the server (and its index)
#      grows, against a second pass over the same keys that grows nothing.
#   2. -m 1024, two cores: 14M distinct items; how many a get still finds
#      (every 1000th key sampled) and the RSS.
#   3. -m 64, two cores: 2M distinct 20-byte keys; how many are held.
#   4. -m 192, one core: 1M items, a budget fitted to them.
# Raw output under results/.
#
#   scripts/bench/bench-memory.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib/lib.sh
bench_setup memory

measure() { # name server(memcached|segcore) memory_mb threads -- bench args...
  local name=$1 server=$2 mb=$3 threads=$4 port pid
  shift 5
  port=$(free_port)
  # One-thread servers run on CPU 1 and the client on CPU 0, so neither
  # preempts the other (what is left is the machine's own noise).
  local server_cpus=() client_cpus=()
  if [ "$threads" = 1 ]; then
    server_cpus=(taskset -c 1)
    client_cpus=(taskset -c 0)
  fi
  if [ "$server" = memcached ]; then
    "${server_cpus[@]}" memcached -u "$(id -un)" -U 0 -p "$port" -m "$mb" -t "$threads" -c 4096 &
  else
    "${server_cpus[@]}" target/release/segcore -u "$(id -un)" -p "$port" -m "$mb" -t "$threads" &
  fi
  pid=$!
  wait_ready "$port" "$pid"
  echo "== $name: $server -m $mb -t $threads"
  "${client_cpus[@]}" $bench memory -s 127.0.0.1:"$port" --server-pid "$pid" "$@" | tee "$out/$name-$server.txt"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

for server in memcached segcore; do
  measure growth "$server" 4096 1 -- --items 10000000 --milestones 1000000,5000000,10000000 --rewrite
  measure full-1g "$server" 1024 2 -- --items 14000000 --sample-every 1000
  measure full-64m "$server" 64 2 -- --items 2000000 --key-size 20 --sample-every 100
  measure fitted "$server" 192 1 -- --items 1000000
done
echo "results in $out"
