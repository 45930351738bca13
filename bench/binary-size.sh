#!/usr/bin/env bash
# Size of the infermon binary: the release profile as built (thin LTO, debuginfo stripped),
# the same with every symbol stripped, and the `dist` profile (fat LTO, one codegen unit, optimised for size,
# symbols stripped) that `cargo install --profile dist` and packages use, with build times;
# and the dist build without TLS (`--no-default-features`), to show what TLS costs.
#
#   bash bench/binary-size.sh
#
# Prints a Markdown table; docs/PERFORMANCE.md records the results. Target: <= 10 MiB.
set -euo pipefail
cd "$(dirname "$0")/.."
T="${CARGO_TARGET_DIR:-target}"
t0=$SECONDS; cargo build --release -q -p infermon; t_rel=$((SECONDS - t0))
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
t0=$SECONDS; cargo build --profile dist -q -p infermon --no-default-features; t_notls=$((SECONDS - t0))
cp "$T/dist/infermon" "$work/notls"
t0=$SECONDS; cargo build --profile dist -q -p infermon; t_dist=$((SECONDS - t0))
cp "$T/release/infermon" "$work/stripped" && strip "$work/stripped"
mib() { python3 -c "import os,sys; print(f'{os.path.getsize(sys.argv[1])/1048576:.2f}')" "$1"; }
echo "| build | size | build time (this run) |"
echo "|---|---|---|"
echo "| release (thin LTO, debuginfo stripped) | $(mib "$T/release/infermon") MiB | ${t_rel} s |"
echo "| release + \`strip\` | $(mib "$work/stripped") MiB | |"
echo "| dist (fat LTO, 1 codegen unit, symbols stripped, opt-level s) | $(mib "$T/dist/infermon") MiB | ${t_dist} s |"
echo "| dist without TLS (\`--no-default-features\`) | $(mib "$work/notls") MiB | ${t_notls} s |"
echo
echo "dist: $(stat -c %s "$T/dist/infermon") bytes; without TLS: $(stat -c %s "$work/notls") bytes"
