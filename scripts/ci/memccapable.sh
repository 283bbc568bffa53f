#!/usr/bin/env bash
# Runs libmemcached's memccapable (every ascii and binary check) against a
# segcore started here on a free loopback port. Installs libmemcached-tools
# when missing. Exit status is memccapable's.
#
#   scripts/ci/memccapable.sh [path/to/segcore]     (default: builds target/debug/segcore)
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib/lib.sh
bin=$(segcore_bin "${1:-}")
if ! command -v memccapable >/dev/null; then
  (apt-get update -qq && apt-get install -y -qq libmemcached-tools) >/dev/null
fi
port=$(free_port)
"$bin" -u "$(id -un)" -p "$port" --threads 2 -m 64 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
wait_ready "$port" "$pid"
memccapable -h 127.0.0.1 -p "$port" -t 10
