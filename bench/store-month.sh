#!/usr/bin/env bash
# A simulated month of one node (2 GPUs, vLLM with 2 models, llama.cpp router with 3) written
# through the store's real write path (derive -> Store::write, Store::prune every 10 simulated
# minutes, as the agent does), time-compressed; then the file's size and 30-day history
# query times (Resolution::Auto, >= 50 queries, p50/p95), printed beside the targets.
#
#   bash bench/store-month.sh              # a full month: about 1.3 M rounds (hours here)
#   DAYS=2 bash bench/store-month.sh       # a shorter span, the size EXTRAPOLATED (said so)
#   KEEP_DIR=/tmp/m bash bench/store-month.sh   # keep the store file there
#   RAW_DAYS=30 bash bench/store-month.sh  # keep raw samples 30 days (default: the store's, 7)
#
# The last line reads `store-month: <size> MiB per node-month, 30-day query p95 <ms> ms
# (<n> series)`. docs/PERFORMANCE.md ("History that lasts a month") records the results.
# Targets: <= 200 MiB per node-month, query p95 <= 50 ms.
set -euo pipefail
cd "$(dirname "$0")/.."
T="${CARGO_TARGET_DIR:-target}"
cargo build --release -q -p infermon-store --example month
args=(--days "${DAYS:-30}" --queries "${QUERIES:-60}")
if [[ -n "${RAW_DAYS:-}" ]]; then
    args+=(--raw-days "$RAW_DAYS")
fi
if [[ -n "${KEEP_DIR:-}" ]]; then
    mkdir -p "$KEEP_DIR"
    args+=(--dir "$KEEP_DIR")
fi
exec "$T/release/examples/month" "${args[@]}"
