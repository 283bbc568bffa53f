#!/usr/bin/env bash
# Warm restart, segcore against memcached (both with -e on tmpfs, 1 GiB):
# fill with ITEMS items of 24-byte keys and 64-byte values, stop with
# SIGUSR1, start again, and report the time from process start to serving,
# the items back against the items held, and (segcore) the throughput of a
# server with -e against one on anonymous memory, same run.
#
#   scripts/bench-restart.sh [ITEMS] [SECONDS_PER_RUN]
set -euo pipefail
cd "$(dirname "$0")/.."
items=${1:-12000000}
secs=${2:-5}
. scripts/lib.sh
command -v memcached >/dev/null || (apt-get update -qq && apt-get install -y -qq memcached >/dev/null)
cargo build -q --release -p segcore -p segcore-bench
bench=target/release/segcore-bench
dir=/dev/shm/segcore-bench-restart
rm -rf "$dir" && mkdir -p "$dir"
out=results/restart-$(date +%Y%m%d-%H%M%S)
mkdir -p "$out"
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT

stat_of() { # port name
  python3 - "$1" "$2" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"stats\r\n")
data = b""
while not data.endswith(b"END\r\n"):
    data += s.recv(65536)
for line in data.decode().splitlines():
    parts = line.split()
    if len(parts) == 3 and parts[1] == sys.argv[2]:
        print(parts[2])
PY
}

# Starts "$@" and prints seconds from exec to the first `version` reply.
start_timed() { # port command...
  local port=$1
  shift
  local t0
  t0=$(date +%s.%N)
  "$@" &
  pid=$!
  python3 - "$port" "$t0" <<'PY'
import socket, sys, time
port, t0 = int(sys.argv[1]), float(sys.argv[2])
while True:
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=1)
        s.sendall(b"version\r\n")
        if s.recv(8) == b"VERSION ":
            break
    except OSError:
        time.sleep(0.005)
print("%.3f" % (time.time() - t0))
PY
}

stop_usr1() {
  local t0
  t0=$(date +%s.%N)
  kill -USR1 "$pid"
  wait "$pid" || true
  pid=
  python3 -c "import time; print('%.3f' % (time.time() - $t0))"
}

run_server() { # name command-with-PORT...
  local name=$1
  shift
  local port cmd
  port=$(free_port)
  cmd=("${@//PORT/$port}")
  start_timed "$port" "${cmd[@]}" >/dev/null
  $bench memory -s 127.0.0.1:"$port" --server-pid "$pid" --items "$items" --key-size 24 --value-size 64 \
    | tee "$out/$name-fill.txt"
  local held save back restored
  held=$(stat_of "$port" curr_items)
  save=$(stop_usr1)
  back=$(start_timed "$port" "${cmd[@]}")
  restored=$(stat_of "$port" curr_items)
  echo "$name: held $held items; SIGUSR1 stop took $save s; start to serving $back s; restored $restored items ($(python3 -c "print('%.4f' % ($restored / max($held, 1)))") of those held)" \
    | tee -a "$out/summary.txt"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  pid=
}

run_server segcore target/release/segcore -p PORT --cores 0,1 -m 1024 -c 4096 -e "$dir/segcore"
run_server memcached memcached -p PORT -U 0 -t 2 -m 1024 -c 4096 -u "$(id -un)" -e "$dir/memcached"

# Throughput: the same segcore on anonymous memory (A) and with -e (B).
rm -f "$dir"/segcore*
pa=$(free_port); pb=$(free_port)
taskset -c 1 target/release/segcore -p "$pa" --cores 1 -m 1024 -c 4096 &
a=$!
taskset -c 1 target/release/segcore -p "$pb" --cores 1 -m 1024 -c 4096 -e "$dir/ab" &
b=$!
wait_ready "$pa" "$a"; wait_ready "$pb" "$b"
for p in 1 16; do
  echo "== text pipeline $p: anonymous (A) vs -e on tmpfs (B)" | tee -a "$out/summary.txt"
  $bench compare --a 127.0.0.1:"$pa" --b 127.0.0.1:"$pb" --a-pid "$a" --b-pid "$b" --rounds 3 \
    --protocol text --pipeline "$p" --cpus 0 -c 50 --ratio 9:1 --keys 100000 --value-size 64 \
    --duration "$secs" --warmup 1 --prefill | tail -2 | tee -a "$out/summary.txt"
done
kill "$a" "$b"; wait "$a" "$b" 2>/dev/null || true
echo "results in $out"
