#!/usr/bin/env bash
# segcore against memcached over TLS, same run: both started with -Z and the
# same certificate (a CA and a server certificate for 127.0.0.1 made here by
# openssl), one worker each pinned to SERVER_CPU (default 1), load on
# LOAD_CPU (default 0). Reports segcore-bench's median ratios (throughput
# and server CPU per request) at text pipeline 1 and 16, then the handshake
# rate (new TLS connections per second, openssl s_time, each server alone).
#
#   scripts/bench/bench-tls.sh [SECONDS_PER_RUN] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-5}
rounds=${2:-3}
server_cpu=${SERVER_CPU:-1}
load_cpu=${LOAD_CPU:-0}
. scripts/lib/lib.sh
bench_setup tls
command -v openssl >/dev/null || (apt-get update -qq && apt-get install -y -qq openssl >/dev/null)

pki=$(mktemp -d)
scripts/lib/test-pki.sh "$pki"
tls_opts="ssl_chain_cert=$pki/server.pem,ssl_key=$pki/server.key"

mc_port=$(free_port)
sc_port=$(free_port)
taskset -c "$server_cpu" memcached -p "$mc_port" -U 0 -t 1 -m 1024 -c 4096 -u "$(id -un)" -Z -o "$tls_opts" &
mc_pid=$!
target/release/segcore -u "$(id -un)" -p "$sc_port" --cores "$server_cpu" -m 1024 -c 4096 -Z -o "$tls_opts" &
sc_pid=$!
trap 'kill $mc_pid $sc_pid 2>/dev/null; wait $mc_pid $sc_pid 2>/dev/null || true; rm -rf "$pki"' EXIT
for port in "$mc_port" "$sc_port"; do
  for _ in $(seq 1 200); do
    (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break
    sleep 0.05
  done
done
echo "memcached $(memcached -V | cut -d' ' -f2) -Z pid $mc_pid, segcore -Z pid $sc_pid; servers on cpu $server_cpu, load on cpu $load_cpu"

run() { # name pipeline
  echo "== $1"
  target/release/segcore-bench compare --a 127.0.0.1:"$mc_port" --b 127.0.0.1:"$sc_port" \
    --a-pid "$mc_pid" --b-pid "$sc_pid" --rounds "$rounds" --a-name memcached --b-name segcore \
    --json "$out/$1.json" --protocol text --pipeline "$2" --cpus "$load_cpu" -c 50 \
    --ratio 9:1 --keys 100000 --value-size 64 --duration "$secs" --warmup 1 --prefill \
    --tls-ca "$pki/ca.pem" | tee "$out/$1.txt"
}
run tls-text-pipeline-1 1
run tls-text-pipeline-16 16

echo "== handshakes (new TLS connections per second, openssl s_time, $secs s each)"
for name in memcached segcore; do
  port=$mc_port
  [ "$name" = segcore ] && port=$sc_port
  rate=$(taskset -c "$load_cpu" openssl s_time -connect 127.0.0.1:"$port" -new -time "$secs" \
    -CAfile "$pki/ca.pem" 2>/dev/null | awk '/real seconds/ {printf "%.0f", $1 / $4}' | head -1)
  echo "$name: ${rate:-?} handshakes/s" | tee -a "$out/handshakes.txt"
done
echo "results in $out"
