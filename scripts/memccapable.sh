#!/usr/bin/env bash
# Runs libmemcached's memccapable (every ascii and binary check) against a
# segcore started here on a free loopback port. Installs libmemcached-tools
# when missing. Exit status is memccapable's.
#
#   scripts/memccapable.sh [path/to/segcore]     (default: builds target/debug/segcore)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-}
if [ -z "$bin" ]; then
  cargo build -q -p segcore
  bin=target/debug/segcore
fi
if ! command -v memccapable >/dev/null; then
  (apt-get update -qq && apt-get install -y -qq libmemcached-tools) >/dev/null
fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$bin" -p "$port" --threads 2 -m 64 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 200); do
  (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break
  sleep 0.05
done
memccapable -h 127.0.0.1 -p "$port" -t 10
