#!/usr/bin/env bash
# A segcore cluster on loopback: N nodes behind twemproxy (nutcracker, from
# Debian if missing) with ketama hashing and ejection of failed nodes.
# Prints the proxy's address and stops everything on Ctrl-C or exit.
#
#   scripts/tools/cluster.sh [--nodes N] [--cores C] [--per-core] [--binary PATH]
#
# --per-core starts each node with --port-per-core and lists every core's
# port as a node of nutcracker's ring, so no request is forwarded between
# cores. Without --binary, builds and runs the release binary.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib/lib.sh
. scripts/lib/cluster-lib.sh
nodes=3 cores=2 per_core=0 binary=
while [ $# -gt 0 ]; do
  case $1 in
    --nodes) nodes=$2; shift 2 ;;
    --cores) cores=$2; shift 2 ;;
    --per-core) per_core=1; shift ;;
    --binary) binary=$2; shift 2 ;;
    *) echo "usage: $0 [--nodes N] [--cores C] [--per-core] [--binary PATH]" >&2; exit 2 ;;
  esac
done
if [ -z "$binary" ]; then
  cargo build -q --release -p segcore
  binary=target/release/segcore
fi
dir=$(mktemp -d /tmp/segcore-cluster.XXXXXX)
trap 'cluster_stop; rm -rf "$dir"' EXIT
trap 'exit 0' INT TERM
cluster_start "$nodes" "$per_core" "$cores" "$binary" "$dir"
echo "nutcracker on 127.0.0.1:$proxy_port (stats on $proxy_stats_port), config $dir/nutcracker.yml"
for i in "${!node_ports[@]}"; do
  echo "node $i: pid ${node_pids[$i]}, port ${node_ports[$i]}$([ "$per_core" = 1 ] && echo "-$((node_ports[$i] + cores - 1))")"
done
echo "Ctrl-C stops the cluster."
wait "$proxy_pid"
