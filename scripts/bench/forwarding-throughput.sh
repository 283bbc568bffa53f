#!/usr/bin/env bash
# Forwarded-message throughput under load: segcore on two cores, loaded by
# segcore-bench on the same two CPUs, and the ops that crossed cores per
# second from `stats cores` (forwarded_out summed over cores) before and
# after the measured window.
#
#   scripts/bench/forwarding-throughput.sh [SECONDS] [PIPELINE]
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib/lib.sh
secs=${1:-10}
pipeline=${2:-16}
cargo build -q --release -p segcore -p segcore-bench
port=$(free_port)
target/release/segcore -u "$(id -un)" -p "$port" --threads 2 -m 1024 -c 4096 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
wait_ready "$port" "$pid"

forwarded() { # prints the sums of core:N:forwarded_out and core:N:requests
  local f=0 r=0 name value
  exec 3<>/dev/tcp/127.0.0.1/"$port"
  printf 'stats cores\r\n' >&3
  # Line by line in bash: awk (mawk) would wait for a full block or EOF.
  while read -r _ name value <&3; do
    value=${value%$'\r'}
    case $name in
      *:forwarded_out) f=$((f + value)) ;;
      *:requests) r=$((r + value)) ;;
      '') break ;; # END
    esac
  done
  exec 3<&- 3>&-
  echo "$f $r"
}

target/release/segcore-bench run -s 127.0.0.1:"$port" --pipeline "$pipeline" -c 50 \
  --ratio 9:1 --keys 100000 --value-size 64 --duration "$((secs + 2))" --warmup 1 \
  --prefill --server-pid "$pid" > /tmp/forwarding-throughput.$$ 2>&1 &
load=$!
# Measure a window inside the run (after prefill and warm-up).
sleep 3
read -r f0 r0 < <(forwarded)
t0=$(date +%s.%N)
sleep "$((secs - 2))"
read -r f1 r1 < <(forwarded)
t1=$(date +%s.%N)
wait "$load"
tail -n 4 /tmp/forwarding-throughput.$$
rm -f /tmp/forwarding-throughput.$$
python3 - "$f0" "$f1" "$r0" "$r1" "$t0" "$t1" <<'PY'
import sys
f0, f1, r0, r1, t0, t1 = map(float, sys.argv[1:])
dt = t1 - t0
print(f"forwarded ops: {(f1 - f0) / dt:,.0f}/s of {(r1 - r0) / dt:,.0f} requests/s "
      f"({(f1 - f0) / max(r1 - r0, 1):.0%} crossed cores)")
PY
