# Shared by scripts/tools/cluster.sh and scripts/ci/cluster-failover.sh: segcore
# nodes behind twemproxy (nutcracker) on loopback. Source it after lib.sh.
#
#   cluster_start NODES PER_CORE CORES BINARY DIR   starts nodes and proxy
#   node_start I / node_kill I / node_stop_signal I SIG
#   cluster_stop                                     stops everything
# Afterwards: $proxy_port, node_ports[I] (first port of node I),
# node_pids[I], $proxy_pid.

ensure_nutcracker() {
  command -v nutcracker >/dev/null 2>&1 && return 0
  [ -x /usr/sbin/nutcracker ] && return 0
  apt-get update -qq && apt-get install -y -qq nutcracker >/dev/null
}

nutcracker_bin() {
  command -v nutcracker 2>/dev/null || echo /usr/sbin/nutcracker
}

# Ports for node I: one, or CORES in a row with --port-per-core.
node_ports=()
node_pids=()

node_start() { # index
  local i=$1 port=${node_ports[$1]}
  if [ "$cluster_per_core" = 1 ]; then
    "$cluster_binary" -u "$(id -un)" --port-per-core "$port" --threads "$cluster_cores" -m "$cluster_memory" \
      2>>"$cluster_dir/node$i.err" &
  else
    "$cluster_binary" -u "$(id -un)" -p "$port" --threads "$cluster_cores" -m "$cluster_memory" \
      2>>"$cluster_dir/node$i.err" &
  fi
  node_pids[$i]=$!
  wait_ready "$port" "${node_pids[$i]}"
}

node_kill() { # index
  kill -9 "${node_pids[$1]}" 2>/dev/null || true
  wait "${node_pids[$1]}" 2>/dev/null || true
}

# A run of COUNT free ports in a row (for --port-per-core nodes).
free_port_run() { # count
  python3 - "$1" <<'PY'
import random, socket, sys
count = int(sys.argv[1])
for _ in range(1000):
    base = random.randrange(20000, 32000 - count)
    held = []
    try:
        for p in range(base, base + count):
            s = socket.socket()
            s.bind(("127.0.0.1", p))
            held.append(s)
    except OSError:
        continue
    finally:
        for s in held:
            s.close()
    print(base)
    break
else:
    raise SystemExit("no free port run")
PY
}

cluster_start() { # nodes per_core cores binary dir
  cluster_nodes=$1 cluster_per_core=$2 cluster_cores=$3 cluster_binary=$4 cluster_dir=$5
  cluster_memory=${CLUSTER_MEMORY:-64}
  ensure_nutcracker
  mkdir -p "$cluster_dir"
  local i c conf="$cluster_dir/nutcracker.yml" width=1
  [ "$cluster_per_core" = 1 ] && width=$cluster_cores
  for i in $(seq 0 $((cluster_nodes - 1))); do
    node_ports[$i]=$(free_port_run "$width")
    node_start "$i"
  done
  proxy_port=$(free_port)
  proxy_stats_port=$(free_port)
  {
    echo "segcore:"
    echo "  listen: 127.0.0.1:$proxy_port"
    echo "  hash: fnv1a_64"
    echo "  distribution: ketama"
    echo "  timeout: ${CLUSTER_TIMEOUT_MS:-400}"
    echo "  auto_eject_hosts: true"
    echo "  server_failure_limit: 1"
    echo "  server_retry_timeout: ${CLUSTER_RETRY_MS:-2000}"
    echo "  servers:"
    for i in $(seq 0 $((cluster_nodes - 1))); do
      for c in $(seq 0 $((width - 1))); do
        echo "   - 127.0.0.1:$((node_ports[$i] + c)):1 node$i-core$c"
      done
    done
  } >"$conf"
  "$(nutcracker_bin)" -c "$conf" -s "$proxy_stats_port" -a 127.0.0.1 -o "$cluster_dir/nutcracker.log" &
  proxy_pid=$!
  wait_ready "$proxy_port" "$proxy_pid"
}

cluster_stop() {
  local pid
  for pid in ${proxy_pid:-} "${node_pids[@]}"; do
    kill -CONT "$pid" 2>/dev/null || true
    kill "$pid" 2>/dev/null || true
  done
  for pid in ${proxy_pid:-} "${node_pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
}
