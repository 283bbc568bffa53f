#!/usr/bin/env bash
# What connections cost, segcore against memcached in the same run, as a
# memcached user meets it (release builds, -m 64, default threads/cores):
#   churn      COUNT_CHURN sequential connect / get / close: RSS growth and
#              connect-to-first-reply latency
#   idle       COUNT_IDLE connections that each sent one get, held open:
#              RSS growth per connection
#   half-sent  COUNT_HALF connections, each declaring a 1 MB value and
#              sending 900 KB of it, then waiting: RSS growth
# Installs memcached from apt when missing. Results go to results/.
#
#   scripts/bench/bench-conns.sh [COUNT_CHURN] [COUNT_IDLE] [COUNT_HALF]
set -euo pipefail
cd "$(dirname "$0")/../.."
churn=${1:-100000}
idle=${2:-10000}
half=${3:-500}
. scripts/lib/lib.sh
bench_setup conns
# The idle scenario holds COUNT_IDLE sockets on each side.
ulimit -n $((idle * 2 + 1024)) 2>/dev/null || ulimit -n "$(ulimit -Hn)"
conns=$((idle + half + 1024))

pid=
stop() { if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=; fi; }
trap stop EXIT
start() { # name
  port=$(free_port)
  case $1 in
    memcached) memcached -p "$port" -U 0 -m 64 -c "$conns" -u "$(id -un)" & ;;
    segcore) target/release/segcore -u "$(id -un)" -p "$port" -m 64 -c "$conns" & ;;
  esac
  pid=$!
  wait_ready "$port" "$pid"
}

for scenario in churn idle half-sent; do
  case $scenario in churn) n=$churn ;; idle) n=$idle ;; half-sent) n=$half ;; esac
  for server in memcached segcore; do
    start "$server"
    printf '%-9s ' "$server"
    $bench conns -s 127.0.0.1:"$port" --server-pid "$pid" --scenario "$scenario" --count "$n" \
      | tee -a "$out/$scenario.txt"
    stop
  done
done
echo "results in $out"
