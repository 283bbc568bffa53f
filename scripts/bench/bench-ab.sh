#!/usr/bin/env bash
# Two segcore builds side by side, same run: each gets one core pinned to
# SERVER_CPU (default 1), the load runs on LOAD_CPU (default 0), and
# segcore-bench alternates A and B for ROUNDS rounds, reporting median
# ratios B/A of throughput and server CPU per request (text pipeline 1 and
# 16, binary pipeline 16). Use it to price a change on the hot path: build
# the old commit into another target folder and pass both binaries.
#
#   git worktree add /tmp/old <commit>
#   (cd /tmp/old && CARGO_TARGET_DIR=/tmp/old-target cargo build --release -p segcore)
#   scripts/bench/bench-ab.sh /tmp/old-target/release/segcore target/release/segcore [SECONDS] [ROUNDS]
#
# A_ARGS and B_ARGS add server options to one side (the same binary twice
# prices an option, e.g. A_ARGS="--eviction merge" B_ARGS="--eviction s3fifo").
set -euo pipefail
cd "$(dirname "$0")/../.."
old=$1
new=$2
secs=${3:-5}
rounds=${4:-5}
server_cpu=${SERVER_CPU:-1}
load_cpu=${LOAD_CPU:-0}
out=results/ab-$(date +%Y%m%d-%H%M%S)
mkdir -p "$out"
cargo build -q --release -p segcore-bench
. scripts/lib/lib.sh
a_port=$(free_port)
b_port=$(free_port)
# shellcheck disable=SC2086
"$old" -u "$(id -un)" -p "$a_port" --cores "$server_cpu" -m 1024 -c 4096 ${A_ARGS:-} &
a_pid=$!
# shellcheck disable=SC2086
"$new" -u "$(id -un)" -p "$b_port" --cores "$server_cpu" -m 1024 -c 4096 ${B_ARGS:-} &
b_pid=$!
trap 'kill $a_pid $b_pid 2>/dev/null; wait $a_pid $b_pid 2>/dev/null || true' EXIT
wait_ready "$a_port" "$a_pid"
wait_ready "$b_port" "$b_pid"
echo "A: $old (pid $a_pid)  B: $new (pid $b_pid); servers on cpu $server_cpu, load on cpu $load_cpu"
run() { # name protocol pipeline
  echo "== $1"
  target/release/segcore-bench compare --a 127.0.0.1:"$a_port" --b 127.0.0.1:"$b_port" \
    --a-pid "$a_pid" --b-pid "$b_pid" --rounds "$rounds" --a-name old --b-name new \
    --json "$out/$1.json" --protocol "$2" --pipeline "$3" --cpus "$load_cpu" -c 50 \
    --ratio 9:1 --keys 100000 --value-size 64 --duration "$secs" --warmup 1 --prefill \
    | tee "$out/$1.txt"
}
run text-pipeline-16 text 16
run text-pipeline-1 text 1
run binary-pipeline-16 binary 16
echo "results in $out"
