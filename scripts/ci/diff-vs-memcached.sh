#!/usr/bin/env bash
# Differential check: the same requests against memcached and segcore, side
# by side; any reply that differs (cas values masked) fails. Installs
# memcached when missing.
#
#   scripts/ci/diff-vs-memcached.sh [path/to/segcore]   (default: builds target/debug/segcore)
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib/lib.sh
bin=$(segcore_bin "${1:-}")
ensure_memcached
mc_port=$(free_port)
memcached -p "$mc_port" -U 0 -t 1 -m 64 -u "$(id -un)" &
mc_pid=$!
sc_port=$(free_port)
"$bin" -u "$(id -un)" -p "$sc_port" --threads 2 -m 64 &
sc_pid=$!
trap 'kill -TERM $mc_pid $sc_pid 2>/dev/null; wait $mc_pid $sc_pid 2>/dev/null || true' EXIT
wait_ready "$mc_port" "$mc_pid"
wait_ready "$sc_port" "$sc_pid"
python3 scripts/ci/diff_vs_memcached.py "$mc_port" "$sc_port"
