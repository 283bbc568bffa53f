#!/usr/bin/env bash
# Idle CPU of segcore (release) and memcached, same run: no clients, then
# 1,000 idle connections, 60 s each (SECONDS_IDLE to change).
#
#   scripts/bench/idle-cpu.sh [SEGCORE_BINARY]
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib/lib.sh
ensure_memcached
segcore=${1:-target/release/segcore}
[ -n "${1:-}" ] || cargo build -q --release -p segcore
root=()
[ "$(id -u)" -eq 0 ] && root=(-u root)
for conns in 0 1000; do
  CONNS=$conns python3 scripts/bench/idle_cpu.py "$segcore" -u "$(id -un)" -p '{port}' -c 4096
  CONNS=$conns python3 scripts/bench/idle_cpu.py memcached "${root[@]}" -p '{port}' -c 4096
done
