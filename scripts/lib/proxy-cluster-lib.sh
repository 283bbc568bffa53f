# segcore replicated behind memcached's proxy on loopback, for
# scripts/tools/cluster.sh --engine proxy. Source it after lib.sh and
# memcached-proxy.sh and cluster-lib.sh (its cluster_stop stops these too).
#
#   proxy_cluster_start ZONES SHARDS CORES BINARY DIR
#     (CLUSTER_TIMEOUT_S, CLUSTER_MEMORY, CLUSTER_HOT_KEYS_FILE, PROXY_THREADS
#     change the defaults)
#   cluster_stop                                  (from cluster-lib.sh)
# Afterwards: $proxy_port, $proxy_pid, zone_ports[Z] ("port port ..." of
# zone zZ+1), node_pids (every node).

zone_ports=()

proxy_cluster_start() { # zones shards cores binary dir
  local zones=$1 shards=$2 cores=$3 binary=$4 dir=$5 z s port ports conf
  ensure_memcached_proxy
  mkdir -p "$dir"
  conf="$dir/cluster.lua"
  {
    echo "segcore_cluster{"
    echo "  local_zone = \"z1\","
    echo "  backend_read_timeout = ${CLUSTER_TIMEOUT_S:-0.4},"
    [ -z "${CLUSTER_HOT_KEYS_FILE:-}" ] || echo "  hot_keys_file = \"$CLUSTER_HOT_KEYS_FILE\","
    echo "  zones = {"
  } >"$conf"
  for z in $(seq 1 "$zones"); do
    ports=()
    for s in $(seq 1 "$shards"); do
      port=$(free_port)
      "$binary" -u "$(id -un)" -l 127.0.0.1 -p "$port" --threads "$cores" -m "${CLUSTER_MEMORY:-64}" \
        2>>"$dir/node-z$z-$s.err" &
      node_pids+=($!)
      wait_ready "$port" $!
      ports+=("$port")
    done
    zone_ports[$((z - 1))]="${ports[*]}"
    printf '    z%d = { %s },\n' "$z" "$(printf '"127.0.0.1:%s", ' "${ports[@]}")" >>"$conf"
  done
  echo "  }," >>"$conf"
  echo "}" >>"$conf"
  proxy_port=$(free_port)
  "$memcached_proxy" -u "$(id -un)" -l 127.0.0.1 -p "$proxy_port" -t "${PROXY_THREADS:-1}" -m 16 \
    -o "proxy_config=routelib:$PWD/deploy/proxy/segcore-routes.lua,proxy_arg=$conf" \
    2>>"$dir/proxy.err" &
  proxy_pid=$!
  wait_ready "$proxy_port" "$proxy_pid"
}
