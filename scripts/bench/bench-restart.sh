#!/usr/bin/env bash
# Warm restart, segcore against memcached (both with -e on tmpfs, -m 1024,
# two threads/cores): fill with ITEMS items of 24-byte keys and 64-byte
# values, stop with SIGUSR1, start again, and report the time from process
# start to serving and the items back against the items held; then the
# throughput of a segcore with -e against one on anonymous memory, same run.
#
#   scripts/bench/bench-restart.sh [ITEMS] [SECONDS_PER_RUN]
set -euo pipefail
cd "$(dirname "$0")/../.."
items=${1:-12000000}
secs=${2:-5}
. scripts/lib/lib.sh
bench_setup restart
dir=/dev/shm/segcore-bench-restart
rm -rf "$dir" && mkdir -p "$dir"
pid=
cleanup() { if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT

curr_items() { # port
  python3 - "$1" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"stats\r\n")
data = b""
while not data.endswith(b"END\r\n"):
    data += s.recv(65536)
print(next(l.split()[2].decode() for l in data.split(b"\r\n") if l.startswith(b"STAT curr_items ")))
PY
}

# Starts the command in the background ($pid) and sets $took to the
# seconds from exec to its first `version` reply.
start_timed() { # port command...
  local port=$1
  shift
  local t0
  t0=$(date +%s.%N)
  "$@" >>"$out/server.log" 2>&1 &
  pid=$!
  took=$(python3 - "$port" "$t0" <<'PY'
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
)
}

run_server() { # name command-with-PORT...
  local name=$1
  shift
  local port t0 held save restored
  port=$(free_port)
  local cmd=("${@//PORT/$port}")
  start_timed "$port" "${cmd[@]}"
  python3 scripts/bench/bench_restart_fill.py "$port" "$items"
  held=$(curr_items "$port")
  t0=$(date +%s.%N)
  kill -USR1 "$pid"
  wait "$pid" || true
  save=$(python3 -c "import time; print('%.3f' % (time.time() - $t0))")
  # memcached refuses a restart within the second it stopped in (its
  # saved stop_time must be in the past): give both the same pause.
  sleep 2
  start_timed "$port" "${cmd[@]}"
  restored=$(curr_items "$port")
  echo "$name: held $held items; SIGUSR1 stop took $save s; start to serving $took s; restored $restored items ($(python3 -c "print('%.5f' % ($restored / max($held, 1)))") of those held)" \
    | tee -a "$out/summary.txt"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  pid=
}

run_server segcore target/release/segcore -u "$(id -un)" -p PORT --cores 0,1 -m 1024 -c 4096 -e "$dir/segcore"
run_server memcached memcached -p PORT -U 0 -t 2 -m 1024 -c 4096 -u "$(id -un)" -e "$dir/memcached"

# Throughput: the same segcore on anonymous memory (A) and with -e (B).
rm -f "$dir"/segcore*
pa=$(free_port)
pb=$(free_port)
taskset -c 1 target/release/segcore -u "$(id -un)" -p "$pa" --cores 1 -m 1024 -c 4096 >>"$out/server.log" 2>&1 &
a=$!
taskset -c 1 target/release/segcore -u "$(id -un)" -p "$pb" --cores 1 -m 1024 -c 4096 -e "$dir/ab" >>"$out/server.log" 2>&1 &
b=$!
wait_ready "$pa" "$a"
wait_ready "$pb" "$b"
for p in 1 16; do
  echo "== text pipeline $p: anonymous memory (A) vs -e on tmpfs (B)" | tee -a "$out/summary.txt"
  $bench compare --a 127.0.0.1:"$pa" --b 127.0.0.1:"$pb" --a-pid "$a" --b-pid "$b" --rounds 3 \
    --protocol text --pipeline "$p" --cpus 0 -c 50 --ratio 9:1 --keys 100000 --value-size 64 \
    --duration "$secs" --warmup 1 --prefill | tail -2 | tee -a "$out/summary.txt"
done
kill "$a" "$b"
wait "$a" "$b" 2>/dev/null || true
echo "results in $out"
