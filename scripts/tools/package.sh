#!/usr/bin/env bash
# Builds the Debian package: the man page and shell completions from the
# CLI definition into target/package/, then `cargo deb` (installed from
# crates.io when missing). The .deb lands in target/debian/.
#
#   scripts/tools/package.sh [PROFILE]    # release (default) or dev
set -euo pipefail
cd "$(dirname "$0")/../.."
profile=${1:-release}
command -v cargo-deb >/dev/null || cargo install cargo-deb --locked -q
cargo build -q -p segcore --profile "$profile"
dir=$([ "$profile" = dev ] && echo debug || echo "$profile")
bin=target/$dir/segcore
mkdir -p target/package
"$bin" --generate-man | gzip -9n >target/package/segcore.1.gz
"$bin" --generate-completions bash >target/package/segcore.bash
"$bin" --generate-completions zsh >target/package/_segcore
"$bin" --generate-completions fish >target/package/segcore.fish
cargo deb -p segcore --no-build --profile "$profile" ${DEB_ARGS:-}
