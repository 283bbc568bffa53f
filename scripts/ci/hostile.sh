#!/usr/bin/env bash
# The hostile-client suite (issue 30; scripts/ci/hostile.py says what each case
# does and what it must stay within): huge replies from small requests,
# pipelines never read, half-sent large values, keys that look like
# protocol lines, chaos clients, restarts with other settings, two servers
# on one memory file, flipped bytes in a saved file, a core that fails,
# slow metrics scrapers, password guessing. Exits 1 if segcore breaks a
# bound, dies, or any sentinel value is wrong afterwards.
#
#   scripts/ci/hostile.sh [SEGCORE_BINARY] [--compare]
#
# Without a binary it builds the debug one. --compare runs the shared cases
# against memcached too (installed from apt when missing) and records its
# figures beside segcore's in results/hostile-*/results.json.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib/lib.sh
binary=target/debug/segcore
compare=()
for arg in "$@"; do
  case "$arg" in
    --compare) ensure_memcached; compare=(--compare "$(command -v memcached)") ;;
    *) binary=$arg ;;
  esac
done
[ "$binary" != target/debug/segcore ] || cargo build -q -p segcore
out=results/hostile-$(date +%Y%m%d-%H%M%S)
mkdir -p "$out"
ulimit -n 65536 2>/dev/null || true
python3 scripts/ci/hostile.py "$binary" "${compare[@]}" --json "$out/results.json" | tee "$out/summary.txt"
