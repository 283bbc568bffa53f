#!/usr/bin/env bash
# Runs the protocol fuzz targets, each for SECONDS (default 600), with its
# dictionary, then minimizes the corpus it grew. Needs the nightly toolchain;
# installs cargo-fuzz when missing.
#
#   scripts/tools/fuzz.sh [SECONDS] [TARGET...]      (targets: text meta binary)
set -euo pipefail
cd "$(dirname "$0")/../../protocol"
seconds=${1:-600}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(text meta binary)

command -v cargo-fuzz >/dev/null || cargo +nightly install cargo-fuzz --locked

for target in "${targets[@]}"; do
  log=$(mktemp)
  echo "== fuzzing $target for ${seconds}s"
  status=0
  cargo +nightly fuzz run "$target" -- \
    -max_total_time="$seconds" -dict="fuzz/dict/$target.dict" -print_final_stats=1 \
    >"$log" 2>&1 || status=$?
  grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|Done)" "$log" || true
  if [ "$status" -ne 0 ]; then
    tail -40 "$log"
    echo "== $target: CRASH (exit $status); reproducer under protocol/fuzz/artifacts/$target/"
    exit "$status"
  fi
  echo "== $target: no crash"
  # cmin renames what it keeps; named regression inputs stay named.
  keep=$(mktemp -d)
  cp fuzz/corpus/"$target"/regression-* "$keep"/ 2>/dev/null || true
  cargo +nightly fuzz cmin "$target" >/dev/null 2>&1 || true
  cp "$keep"/* fuzz/corpus/"$target"/ 2>/dev/null || true
  rm -rf "$keep"
  rm -f "$log"
done
