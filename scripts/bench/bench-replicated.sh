#!/usr/bin/env bash
# The replicated cluster as a user measures it, same run: 2 zones x 3
# segcore nodes (one core each) behind memcached's proxy, nutcracker over
# zone 1's three nodes, and zone 1's first node direct; throughput, p50/p99
# and the CPU per request of every serving process (proxy + nodes), write
# and read amplification counted on the nodes, the busiest node's share of
# a Zipf 1.2 load before and after the nodes' hot keys are given to the
# proxy, and the proxy's replication-lag counters. Builds the proxy and
# installs nutcracker when missing.
#
#   scripts/bench/bench-replicated.sh [SECONDS_PER_RUN] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-5}
rounds=${2:-3}
. scripts/lib/lib.sh
. scripts/lib/cluster-lib.sh
. scripts/lib/memcached-proxy.sh
. scripts/lib/proxy-cluster-lib.sh
ensure_nutcracker
cargo build -q --release -p segcore -p segcore-bench
out=results/replicated-$(date +%Y%m%d-%H%M%S)
mkdir -p "$out"
node_pids=()
nc_pid=
trap 'cluster_stop; [ -z "$nc_pid" ] || { kill "$nc_pid"; wait "$nc_pid"; } 2>/dev/null || true' EXIT
hot_file="$PWD/$out/hot-keys"
: >"$hot_file"
CLUSTER_HOT_KEYS_FILE=$hot_file CLUSTER_MEMORY=256 \
  proxy_cluster_start 2 3 1 target/release/segcore "$out"

# nutcracker over zone 1's nodes: the same nodes, no replication.
read -r -a z1 <<<"${zone_ports[0]}"
nc_port=$(free_port)
{
  echo "zone1:"
  echo "  listen: 127.0.0.1:$nc_port"
  echo "  hash: fnv1a_64"
  echo "  distribution: ketama"
  echo "  timeout: 400"
  echo "  servers:"
  for p in "${z1[@]}"; do echo "   - 127.0.0.1:$p:1"; done
} >"$out/nutcracker.yml"
"$(nutcracker_bin)" -c "$out/nutcracker.yml" -s "$(free_port)" -a 127.0.0.1 \
  -o "$out/nutcracker.log" >/dev/null 2>&1 &
nc_pid=$!
wait_ready "$nc_port" "$nc_pid"

python3 - "$out/config.json" <<PY
import json, sys
ports = "${zone_ports[*]}".split()
pids = "${node_pids[*]}".split()
nodes = [{"zone": "z%d" % (i // 3 + 1), "port": int(p), "pid": int(q)} for i, (p, q) in enumerate(zip(ports, pids))]
json.dump({"bench": "target/release/segcore-bench", "out": "$out", "secs": $secs, "rounds": $rounds,
           "hot_keys_file": "$hot_file", "nodes": nodes,
           "proxy": {"port": $proxy_port, "pid": $proxy_pid},
           "nutcracker": {"port": $nc_port, "pid": $nc_pid}}, open(sys.argv[1], "w"))
PY
python3 scripts/bench/bench_replicated.py "$out/config.json" | tee "$out/summary.txt"
echo "results in $out"
