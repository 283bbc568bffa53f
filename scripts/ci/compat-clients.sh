#!/usr/bin/env bash
# Runs real memcached clients against segcore: pymemcache (text protocol)
# and python-binary-memcached (binary protocol), from a virtualenv this
# script creates. Starts segcore itself on a free port unless HOST:PORT is
# given; then also runs pymemcache's HashClient (client-side consistent
# hashing) over three segcore nodes and over per-core endpoints, stopping
# one node mid-test, and python-binary-memcached with SASL PLAIN against
# a segcore started with -S, and pymemcache over TLS against one started
# with -Z (certificates made with openssl).
#
#   scripts/ci/compat-clients.sh [HOST:PORT]
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib/lib.sh
command -v openssl >/dev/null || (apt-get update -qq && apt-get install -y -qq openssl >/dev/null)
venv=target/compat-venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q pymemcache python-binary-memcached
fi
target=${1:-}
if [ -z "$target" ]; then
  cargo build -q -p segcore
  port=$(free_port)
  target/debug/segcore -u "$(id -un)" -p "$port" --threads 2 -m 64 &
  pid=$!
  trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
  target=127.0.0.1:$port
  wait_ready "$port" "$pid"
fi
if [ -n "${pid:-}" ]; then
  "$venv/bin/python" scripts/ci/compat_clients.py "$target" target/debug/segcore
else
  "$venv/bin/python" scripts/ci/compat_clients.py "$target"
fi
