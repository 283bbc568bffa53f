#!/usr/bin/env bash
# The Debian package as a user gets it: built (scripts/tools/package.sh,
# the dev profile for speed), installed with dpkg, started from its
# installed path through the unit's wrapper with a memcached.conf-style
# file, checked answering, then purged. Needs root (dpkg); says so and
# skips otherwise.
#
#   scripts/ci/package.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib/lib.sh
if [ "$(id -u)" -ne 0 ]; then
  echo "package: skipped (dpkg -i needs root)"
  exit 0
fi
scripts/tools/package.sh dev
deb=$(ls -t target/debian/segcore_*.deb | head -1)
dpkg -i "$deb" >/dev/null
pid=
cleanup() {
  [ -z "$pid" ] || kill "$pid" 2>/dev/null || true
  dpkg --purge segcore >/dev/null 2>&1 || true
}
trap cleanup EXIT
for file in /usr/bin/segcore /usr/share/segcore/segcore-start /etc/segcore.conf \
  /lib/systemd/system/segcore.service /usr/share/man/man1/segcore.1.gz \
  /usr/share/bash-completion/completions/segcore /usr/share/doc/segcore/copyright; do
  [ -e "$file" ] || { echo "package FAILED: $file not installed"; exit 1; }
done
getent passwd segcore >/dev/null || { echo "package FAILED: no segcore user"; exit 1; }
/usr/bin/segcore --version | grep -q segcore
# The installed config with another port, as an operator would edit it.
port=$(free_port)
conf=$(mktemp)
sed "s/^-p 11211$/-p $port/" /etc/segcore.conf >"$conf"
/usr/share/segcore/segcore-start "$conf" 2>"$conf.log" &
pid=$!
wait_ready "$port" "$pid"
user=$(ps -o user= -p "$pid" | tr -d ' ')
[ "$user" = segcore ] || { echo "package FAILED: running as $user, not segcore"; exit 1; }
grep -q "listening on 127.0.0.1:$port" "$conf.log"
kill -TERM "$pid"
wait "$pid" || { echo "package FAILED: SIGTERM did not exit 0"; exit 1; }
pid=
rm -f "$conf" "$conf.log"
echo "package: $(basename "$deb") installed, started from /usr/bin as user segcore, stopped; purged"
