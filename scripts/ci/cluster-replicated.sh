#!/usr/bin/env bash
# The replicated cluster's fault test: 2 zones x 3 shards of segcore behind
# memcached's own proxy (built from Debian 13's source package the first
# time, then cached) with deploy/proxy/segcore-routes.lua; node kill,
# restart empty with read repair, stall, whole-zone loss, zone comparison,
# replication lag and a lease stampede (scripts/ci/cluster_replicated.py
# says what is checked and the limits).
#
#   scripts/ci/cluster-replicated.sh [SEGCORE_BINARY]
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib/lib.sh
. scripts/lib/memcached-proxy.sh
binary=$(segcore_bin "${1:-}")
cargo build -q -p segcore-bench
ensure_memcached_proxy
out=results/replicated-$(date +%Y%m%d-%H%M%S)
mkdir -p "$out"
python3 scripts/ci/cluster_replicated.py "$binary" "$memcached_proxy" \
  "$PWD/deploy/proxy/segcore-routes.lua" target/debug/segcore-bench "$out"
echo "results in $out"
