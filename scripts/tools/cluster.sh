#!/usr/bin/env bash
# A segcore cluster on loopback. Prints the proxy's address and stops
# everything on Ctrl-C or exit.
#
#   scripts/tools/cluster.sh [--nodes N] [--cores C] [--per-core] [--binary PATH]
#   scripts/tools/cluster.sh --engine proxy [--zones Z] [--shards S] [--cores C] [--binary PATH]
#
# The default engine is twemproxy (nutcracker, from Debian if missing):
# N nodes, ketama hashing, ejection of failed nodes, no copies.
# --engine proxy is memcached's own proxy (built once from Debian 13's
# source package, cached in ~/.cache/segcore) with
# deploy/proxy/segcore-routes.lua: Z zones of S nodes, every key in every
# zone, reads from zone z1 first with failover and read repair.
#
# --per-core starts each node with --port-per-core and lists every core's
# port as a node of nutcracker's ring, so no request is forwarded between
# cores. Without --binary, builds and runs the release binary.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib/lib.sh
. scripts/lib/cluster-lib.sh
nodes=3 cores=2 per_core=0 binary= engine=twemproxy zones=2 shards=3
while [ $# -gt 0 ]; do
  case $1 in
    --engine) engine=$2; shift 2 ;;
    --zones) zones=$2; shift 2 ;;
    --shards) shards=$2; shift 2 ;;
    --nodes) nodes=$2; shift 2 ;;
    --cores) cores=$2; shift 2 ;;
    --per-core) per_core=1; shift ;;
    --binary) binary=$2; shift 2 ;;
    *) echo "usage: $0 [--engine twemproxy|proxy] [--nodes N] [--zones Z] [--shards S] [--cores C] [--per-core] [--binary PATH]" >&2; exit 2 ;;
  esac
done
if [ -z "$binary" ]; then
  cargo build -q --release -p segcore
  binary=target/release/segcore
fi
dir=$(mktemp -d /tmp/segcore-cluster.XXXXXX)
if [ "$engine" = proxy ]; then
  . scripts/lib/memcached-proxy.sh
  . scripts/lib/proxy-cluster-lib.sh
  trap 'cluster_stop; rm -rf "$dir"' EXIT
  trap 'exit 0' INT TERM
  proxy_cluster_start "$zones" "$shards" "$cores" "$binary" "$dir"
  echo "memcached proxy on 127.0.0.1:$proxy_port (local zone z1), config $dir/cluster.lua"
  for z in "${!zone_ports[@]}"; do
    echo "zone z$((z + 1)): ports ${zone_ports[$z]}"
  done
  echo "Ctrl-C stops the cluster."
  wait "$proxy_pid"
  exit 0
fi
[ "$engine" = twemproxy ] || { echo "unknown engine $engine (twemproxy or proxy)" >&2; exit 2; }
trap 'cluster_stop; rm -rf "$dir"' EXIT
trap 'exit 0' INT TERM
cluster_start "$nodes" "$per_core" "$cores" "$binary" "$dir"
echo "nutcracker on 127.0.0.1:$proxy_port (stats on $proxy_stats_port), config $dir/nutcracker.yml"
for i in "${!node_ports[@]}"; do
  echo "node $i: pid ${node_pids[$i]}, port ${node_ports[$i]}$([ "$per_core" = 1 ] && echo "-$((node_ports[$i] + cores - 1))")"
done
echo "Ctrl-C stops the cluster."
wait "$proxy_pid"
