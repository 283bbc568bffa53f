# Shared helpers for the scripts that start servers. Source it:
#   . "$(dirname "$0")/lib.sh"

# A free loopback port below the kernel's ephemeral range (32768+), so a
# readiness probe cannot connect to itself and no client socket of another
# process is sitting on it.
free_port() {
  python3 - <<'PY'
import random, socket
for _ in range(1000):
    port = random.randrange(20000, 32000)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        s.close()
    print(port)
    break
else:
    raise SystemExit("no free port in 20000..32000")
PY
}

# wait_ready PORT PID: waits until the server on PORT answers `version`
# (not merely accepts); fails at once if PID has exited, or after 10 s.
wait_ready() {
  local port=$1 pid=$2 reply
  for _ in $(seq 1 200); do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "server (pid $pid) exited before it answered on port $port" >&2
      return 1
    fi
    reply=$( (exec 3<>/dev/tcp/127.0.0.1/"$port" && printf 'version\r\n' >&3 &&
      timeout 5 head -c 8 <&3) 2>/dev/null || true)
    [ "$reply" = "VERSION " ] && return 0
    sleep 0.05
  done
  echo "server (pid $pid) never answered on port $port" >&2
  return 1
}

# segcore_bin [PATH]: prints PATH, or builds target/debug/segcore and prints
# that when no path is given.
segcore_bin() {
  if [ -n "${1:-}" ]; then
    echo "$1"
  else
    cargo build -q -p segcore
    echo target/debug/segcore
  fi
}

# ensure_memcached: installs memcached from apt when it is missing (the
# comparison scripts start it beside segcore).
ensure_memcached() {
  command -v memcached >/dev/null || (apt-get update -qq && apt-get install -y -qq memcached >/dev/null)
}

# bench_setup NAME: what every comparison benchmark does first. Sets `out`
# (a fresh results/NAME-DATE folder) and `bench` (the release
# segcore-bench), installs memcached if missing and builds the release
# server and load generator.
bench_setup() {
  out=results/$1-$(date +%Y%m%d-%H%M%S)
  mkdir -p "$out"
  ensure_memcached
  cargo build -q --release -p segcore -p segcore-bench
  bench=target/release/segcore-bench
}
