#!/usr/bin/env bash
# Soak: proves that under constant eviction and hostile clients nothing is
# lost, mixed up or leaked. For MINUTES minutes, against one segcore (two
# cores, 16 MB, so items are evicted all the time):
#   - segcore-bench --verify over text and over binary (separate key
#     spaces): every hit is checked byte for byte against what was written
#     for that key;
#   - scripts/ci/soak_chaos.py: connection churn, garbage, half requests that
#     vanish, values over the item limit, slow large values, clients that
#     pipeline without reading.
# Fails on any wrong value, a crash, a chaos check, or resident memory that
# keeps growing after warm-up (RSS at the end more than 16 MB + 10% above
# RSS at the end of warm-up, a fifth of the run and at least 60 s: a debug
# build under this load is still filling its heap at 30 s, and reaches its
# plateau at 60-100 s — see results/soak-*/rss.txt).
#
#   scripts/ci/soak.sh [MINUTES] [SEGCORE_BINARY]
#
# Without a binary it builds and runs the release one. CI runs a 2-minute
# version on the debug build. Results (RSS samples, outputs) go to results/.
set -euo pipefail
cd "$(dirname "$0")/../.."
minutes=${1:-30}
. scripts/lib/lib.sh
if [ -n "${2:-}" ]; then
  segcore=$2
  cargo build -q -p segcore-bench
  bench=target/debug/segcore-bench
else
  cargo build -q --release -p segcore -p segcore-bench
  segcore=target/release/segcore
  bench=target/release/segcore-bench
fi
secs=$(python3 -c "print(int(float('$minutes') * 60))")
warm=$((secs / 5 > 60 ? secs / 5 : 60))
out=results/soak-$(date +%Y%m%d-%H%M%S)
mkdir -p "$out"
ulimit -n 65536 2>/dev/null || true

port=$(free_port)
"$segcore" -u "$(id -un)" -p "$port" --threads 2 -m 16 --segment-size 256k -c 4096 2>"$out/segcore.err" &
pid=$!
pids=()
cleanup() { kill "${pids[@]}" "$pid" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT
wait_ready "$port" "$pid"

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0; }
(
  start=$(date +%s)
  while kill -0 "$pid" 2>/dev/null; do
    echo "$(( $(date +%s) - start )) $(rss_kb)"
    sleep 5
  done
) >"$out/rss.txt" &
pids+=($!)

verify() { # name protocol pipeline prefix
  "$bench" run -s 127.0.0.1:"$port" --verify --prefill --protocol "$2" --pipeline "$3" \
    --key-prefix "$4" -c 16 --keys 30000 --value-size 64-3000 --ratio 3:1 \
    --duration "$secs" --warmup 0 >"$out/$1.txt" 2>&1
}
verify verify-text text 8 soak-t: &
text_job=$!
verify verify-binary binary 4 soak-b: &
binary_job=$!
python3 scripts/ci/soak_chaos.py "$port" "$secs" >"$out/chaos.txt" 2>&1 &
chaos_job=$!
pids+=("$text_job" "$binary_job" "$chaos_job")

sleep "$warm"
rss_warm=$(rss_kb)
status=0
wait "$text_job" || status=$?
wait "$binary_job" || status=$?
chaos_status=0
wait "$chaos_job" || chaos_status=$?
rss_end=$(rss_kb)

failed=()
[ "$status" -eq 0 ] || failed+=("segcore-bench --verify exited $status")
[ "$chaos_status" -eq 0 ] || failed+=("chaos clients reported failures")
kill -0 "$pid" 2>/dev/null || failed+=("segcore is not running")
allowed=$((rss_warm + 16384 + rss_warm / 10))
[ "$rss_end" -le "$allowed" ] || failed+=("RSS grew after warm-up: ${rss_warm} kB -> ${rss_end} kB")

requests=0
for f in "$out"/verify-*.txt; do
  echo "$(basename "$f" .txt): $(grep -h "^verify:" "$f" || echo 'no verify line')"
  n=$(awk -v s="$secs" '/^total / {printf "%d", $2 * s; exit}' "$f")
  requests=$((requests + ${n:-0}))
  lost=$(awk '/failed connections:/ {print $NF}' "$f")
  [ "${lost:-0}" -eq 0 ] || failed+=("$(basename "$f" .txt): ${lost} failed connections")
done
echo "verified load: ${requests} requests"
cat "$out/chaos.txt"
rss_first=$(awk '$1 >= 60 {print $2; exit}' "$out/rss.txt")
echo "soak: ${minutes} min, RSS ${rss_first:-?} kB at minute 1, ${rss_warm} kB after warm-up (${warm} s), ${rss_end} kB at the end; results in $out"
if [ ${#failed[@]} -gt 0 ]; then
  printf 'soak FAILED: %s\n' "${failed[@]}"
  tail -n 5 "$out"/verify-*.txt "$out/segcore.err" || true
  exit 1
fi
echo "soak passed"
