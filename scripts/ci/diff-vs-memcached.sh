#!/usr/bin/env bash
# Differential check: the same requests against memcached and segcore, side
# by side; any reply that differs (cas values masked) fails. Installs
# memcached when missing.
#
# Two references: Debian 12's memcached 1.6.18 (what segcore follows) and,
# with --reference 1.6.38, Debian 13's 1.6.38 (the binary built for the
# proxy); a difference between the two versions that segcore does not
# follow is listed in docs/protocol-compat.md and named in
# diff_vs_memcached.py's NEWER table, which that run expects.
#
#   scripts/ci/diff-vs-memcached.sh [--reference 1.6.38] [path/to/segcore]
#     (default: 1.6.18, and builds target/debug/segcore)
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib/lib.sh
reference=1.6.18
if [ "${1:-}" = --reference ]; then
  reference=$2
  shift 2
fi
bin=$(segcore_bin "${1:-}")
case $reference in
  1.6.18)
    ensure_memcached
    memcached=memcached
    ;;
  1.6.38)
    . scripts/lib/memcached-proxy.sh
    ensure_memcached_proxy
    memcached=$memcached_proxy
    ;;
  *) echo "diff-vs-memcached.sh: references are 1.6.18 and 1.6.38" >&2; exit 64 ;;
esac
mc_port=$(free_port)
"$memcached" -p "$mc_port" -U 0 -t 1 -m 64 -u "$(id -un)" 2>/dev/null &
mc_pid=$!
sc_port=$(free_port)
"$bin" -u "$(id -un)" -p "$sc_port" --threads 2 -m 64 &
sc_pid=$!
trap 'kill -TERM $mc_pid $sc_pid 2>/dev/null; wait $mc_pid $sc_pid 2>/dev/null || true' EXIT
wait_ready "$mc_port" "$mc_pid"
wait_ready "$sc_port" "$sc_pid"
python3 scripts/ci/diff_vs_memcached.py "$mc_port" "$sc_port" "$reference"
