#!/usr/bin/env bash
# Hit ratio of every eviction policy next to memcached, same run, at equal
# memory (-m, default 64 MB, two cores each): cache-aside replays of three
# streams over 2M keys of 20 bytes with 64-byte values —
#   zipf 0.99, zipf 0.8, and zipf 0.99 with 20% one-off scan keys.
# Each replay runs WARMUP gets from an empty cache (the cold-start figure)
# and then REQUESTS more (the steady-state figure). Prints a table and
# keeps the raw output under results/.
#
#   [STREAMS=...] [SERVERS=...] scripts/bench/bench-policies.sh [MEMORY_MB] [REQUESTS] [WARMUP]
set -euo pipefail
cd "$(dirname "$0")/../.."
memory_mb=${1:-64}
requests=${2:-20000000}
warmup=${3:-20000000}
. scripts/lib/lib.sh
bench_setup policies
# STREAMS / SERVERS (space-separated) run a subset.
read -r -a streams <<<"${STREAMS:-zipf:0.99 zipf:0.8 zipf:0.99+scan}"
read -r -a servers <<<"${SERVERS:-memcached fifo random cte merge s3fifo}"

run_one() { # server stream -> "cold steady items"
  local server=$1 stream=$2 port pid pattern scan=0 line
  port=$(free_port)
  if [ "$server" = memcached ]; then
    memcached -u "$(id -un)" -U 0 -p "$port" -m "$memory_mb" -t 2 &
  else
    target/release/segcore -u "$(id -un)" -p "$port" -m "$memory_mb" -t 2 --eviction "$server" &
  fi
  pid=$!
  wait_ready "$port" "$pid" >&2
  pattern=${stream%+scan}
  [ "$pattern" != "$stream" ] && scan=0.2
  line=$($bench hit-ratio -s 127.0.0.1:"$port" --keys 2000000 --key-pattern "$pattern" \
    --requests "$requests" --warmup "$warmup" --scan-share "$scan" | tee -a "$out/$server.txt")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  # "hit ratio: S (... (cold start C); ...)"
  echo "$(echo "$line" | sed -E 's/.*cold start ([0-9.]+).*/\1/') $(echo "$line" | awk '{print $3}')"
}

printf '%-16s' stream; for s in "${servers[@]}"; do printf '%-17s' "$s"; done; echo
printf '%-16s' ''; for _ in "${servers[@]}"; do printf '%-17s' 'cold  steady'; done; echo
for stream in "${streams[@]}"; do
  printf '%-16s' "$stream"
  for server in "${servers[@]}"; do
    read -r cold steady < <(run_one "$server" "$stream")
    printf '%-17s' "$cold $steady"
  done
  echo
done | tee "$out/table.txt"
echo "results in $out"
