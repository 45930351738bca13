#!/usr/bin/env bash
# Remote write catch-up after an outage: N snapshots (default 43 200 = 24 h at 2 s) queued
# in a real store, then drained into a real VictoriaMetrics and a real Prometheus (Debian
# packages; `scripts/setup-test-deps.sh` installs them), unpaced and at the default pace.
#
#   bash bench/remote-write.sh            N=10000 bash bench/remote-write.sh
#
# Prints the queue size per snapshot, the enqueue cost and the drain rate for each receiver.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${N:-43200}"
cargo build --release -q -p infermon-remote --example catchup
BIN="${CARGO_TARGET_DIR:-target}/release/examples/catchup"
work=$(mktemp -d); pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ok() { for _ in $(seq 1 300); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 0.2; done; echo "no answer from $1" >&2; exit 1; }

vm=$(port)
victoria-metrics -httpListenAddr="127.0.0.1:$vm" -storageDataPath="$work/vm" >"$work/vm.log" 2>&1 &
pids+=($!)
wait_ok "http://127.0.0.1:$vm/health"
echo "## VictoriaMetrics, unpaced"
"$BIN" "http://127.0.0.1:$vm/api/v1/write" "$N"

pp=$(port)
# Prometheus refuses samples over ~1 h older than its newest ("out of bounds") unless an
# out-of-order window is set: a day's backlog needs it (2.39+).
printf 'global: {}\nstorage:\n  tsdb:\n    out_of_order_time_window: 2d\n' >"$work/prom.yml"
prometheus --config.file="$work/prom.yml" --storage.tsdb.path="$work/prom" \
  --web.listen-address="127.0.0.1:$pp" --web.enable-remote-write-receiver >"$work/prom.log" 2>&1 &
pids+=($!)
wait_ok "http://127.0.0.1:$pp/-/ready"
echo "## Prometheus, unpaced"
"$BIN" "http://127.0.0.1:$pp/api/v1/write" "$N"
echo "## Prometheus, default pace (500 per second)"
"$BIN" "http://127.0.0.1:$pp/api/v1/write" "$N" 500
