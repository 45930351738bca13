#!/usr/bin/env bash
# Dashboard budgets (issue 12), measured in headless Chromium (Debian `chromium`) against a
# release agent whose store holds a simulated month (the store's `month` example, written at
# one sample every INTERVAL_MS through the store's real write path; the 30-day chart reads the
# 720 hourly rollups, as many whatever the sample interval, so the default writes one sample
# every 10 minutes to keep the set-up short):
#
#   - first useful paint: the page's `infermon:first-useful-paint` mark (the first snapshot
#     rendered), from navigation start, browser cache off;
#   - 30-day chart: fetch of /api/v1/history at 1-hour resolution and its draw (the page's
#     `infermon:history-30d` measure);
#   - assets: bytes of the page and every file it loads, gzipped as the agent sends them.
#
#   bash bench/dashboard.sh                 # RUNS=10, INTERVAL_MS=600000
#
# Needs: chromium (scripts/setup-test-deps.sh), python3. Prints JSON lines; docs/PERFORMANCE.md
# records the results.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS="${RUNS:-10}"
INTERVAL_MS="${INTERVAL_MS:-600000}"
CHROMIUM="${INFERMON_CHROMIUM:-$(command -v chromium)}"
TARGET="${CARGO_TARGET_DIR:-target}"

cargo build --release -q --bin infermon
cargo build --release -q -p infermon-store --example month

work=$(mktemp -d)
agent_pid=""
cleanup() {
  [ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/month" "$work/data"
"$TARGET/release/examples/month" --days 30 --interval-ms "$INTERVAL_MS" --queries 1 --dir "$work/month" >&2
cp "$work/month/month.db" "$work/data/infermon.db"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
INFERMON_LOG=warn "$TARGET/release/infermon" agent --listen "127.0.0.1:$port" --data-dir "$work/data" \
  --no-discovery >"$work/agent.log" 2>&1 &
agent_pid=$!
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$port/api/v1/snapshot" >/dev/null && break
  sleep 0.1
done

# The simulated month starts 2025-11-01T00:00:00Z (the example's START_MS).
end_ms=$((1761955200000 + 30 * 86400000))
link="#history?metric=infermon_node_generation_tokens_per_second&range=30d&to=$end_ms"
python3 tests/clients/dashboard_cdp.py --bench "$CHROMIUM" "http://127.0.0.1:$port" "$RUNS" "$link"

# Compressed size of the page and everything it loads.
version=$(curl -s "http://127.0.0.1:$port/" | grep -o 'assets/[0-9a-f]*/' | head -1)
total_gz=$(curl -s -H 'accept-encoding: gzip' "http://127.0.0.1:$port/" | wc -c)
total_raw=$(curl -s "http://127.0.0.1:$port/" | wc -c)
for f in crates/api/assets/*; do
  name=$(basename "$f")
  [ "$name" = index.html ] && continue
  [ "$name" = uPlot.LICENSE ] && continue
  total_gz=$((total_gz + $(curl -s -H 'accept-encoding: gzip' "http://127.0.0.1:$port/$version$name" | wc -c)))
  total_raw=$((total_raw + $(curl -s "http://127.0.0.1:$port/$version$name" | wc -c)))
done
printf '{"assets_gzip_bytes": %d, "assets_plain_bytes": %d}\n' "$total_gz" "$total_raw"
