#!/usr/bin/env bash
# Through twemproxy (nutcracker), one two-core segcore node served two ways,
# same run: A = one shared port (nutcracker's single connection per server
# lands on one core, which forwards the other core's keys), B = per-core
# endpoints (--port-per-core, both ports in nutcracker's ring, nothing
# forwarded). segcore-bench compare alternates A and B; afterwards each
# node's forwarded ops are read from `stats cores`.
#
#   scripts/bench/bench-cluster.sh [SECONDS_PER_RUN] [ROUNDS] [PIPELINE]
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-5}
rounds=${2:-3}
pipeline=${3:-1}
. scripts/lib/lib.sh
. scripts/lib/cluster-lib.sh
ensure_nutcracker
cargo build -q --release -p segcore -p segcore-bench
out=results/cluster-$(date +%Y%m%d-%H%M%S)
mkdir -p "$out"

pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT
proxy() { # name servers...; sets $port
  local name=$1 conf="$out/$1.yml"
  shift
  port=$(free_port)
  {
    echo "$name:"
    echo "  listen: 127.0.0.1:$port"
    echo "  hash: fnv1a_64"
    echo "  distribution: ketama"
    echo "  timeout: 1000"
    echo "  servers:"
    for s in "$@"; do echo "   - 127.0.0.1:$s:1"; done
  } >"$conf"
  "$(nutcracker_bin)" -c "$conf" -s "$(free_port)" -a 127.0.0.1 -o "$out/$name.log" \
    >/dev/null 2>&1 &
  pids+=($!)
  wait_ready "$port" "$!"
}

shared=$(free_port)
target/release/segcore -u "$(id -un)" -p "$shared" --cores 0,1 -m 256 &
shared_pid=$!
pids+=("$shared_pid")
wait_ready "$shared" "$shared_pid"
per_core=$(free_port_run 2)
target/release/segcore -u "$(id -un)" --port-per-core "$per_core" --cores 0,1 -m 256 &
per_core_pid=$!
pids+=("$per_core_pid")
wait_ready "$per_core" "$per_core_pid"
proxy shared "$shared"
proxy_a=$port
proxy percore "$per_core" "$((per_core + 1))"
proxy_b=$port

target/release/segcore-bench compare --a 127.0.0.1:"$proxy_a" --b 127.0.0.1:"$proxy_b" \
  --a-pid "$shared_pid" --b-pid "$per_core_pid" --rounds "$rounds" \
  --protocol text --pipeline "$pipeline" -c 50 --ratio 9:1 --keys 100000 --value-size 64 \
  --duration "$secs" --warmup 1 --prefill | tee "$out/compare.txt"

forwarded() { # port
  python3 - "$1" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"stats cores\r\n")
data = b""
while not data.endswith(b"END\r\n"):
    data += s.recv(65536)
stats = dict(l.split()[1:3] for l in data.decode().splitlines() if l.startswith("STAT "))
out = sum(int(v) for k, v in stats.items() if k.endswith(":forwarded_out"))
req = sum(int(v) for k, v in stats.items() if k.endswith(":requests"))
print(f"{out} of {req} requests ({out / max(req, 1):.0%})")
PY
}
echo "A (shared port) forwarded: $(forwarded "$shared")"
echo "B (per-core endpoints) forwarded: $(forwarded "$per_core")"
echo "results in $out"
