#!/usr/bin/env bash
# Scrapes segcore's /metrics after some traffic and checks the exposition
# with Prometheus's own linter (`promtool check metrics`: names, types,
# HELP, counter suffixes, units). Installs Debian's `prometheus` (which
# ships promtool) when missing. Exit status is promtool's.
#
#   scripts/ci/check-metrics.sh [path/to/segcore]   (default: builds target/debug/segcore)
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib/lib.sh
bin=$(segcore_bin "${1:-}")
if ! command -v promtool >/dev/null; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends prometheus) >/dev/null
fi
port=$(free_port)
metrics=$(free_port)
"$bin" -u "$(id -un)" -p "$port" --threads 2 -m 64 --metrics-listen "$metrics" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
wait_ready "$port" "$pid"
out=$(mktemp)
python3 - "$port" "$metrics" "$out" <<'PY'
import socket, sys, urllib.request
port, metrics, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
c = socket.create_connection(("127.0.0.1", port))
f = c.makefile("rwb")
for i in range(200):
    f.write(b"set k%d 0 0 5\r\nvalue\r\nget k%d\r\nget missing%d\r\n" % (i, i, i))
    f.write(b"incr k%d 1\r\ndelete k%d\r\ntouch k%d 10\r\n" % (i, i, i))
f.write(b"mg k1 v\r\nms k1 2\r\nhi\r\nmn\r\n")
f.flush()
while not f.readline().startswith(b"MN"):
    pass
body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % metrics, timeout=10).read()
open(out, "wb").write(body)
print("scraped %d bytes, %d samples" % (len(body), sum(1 for l in body.splitlines() if not l.startswith(b"#"))))
PY
promtool check metrics < "$out"
echo "promtool check metrics: clean"
rm -f "$out"
