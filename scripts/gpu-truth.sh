#!/usr/bin/env bash
# GPU truth: on an NVIDIA machine, runs the agent and compares every NVML figure it reports
# with nvidia-smi read at the same moments, and its energy counter's delta with nvidia-smi's
# power integrated over time. Needs only the infermon binary and the driver (nvidia-smi);
# no network, no Python. Finishes in about a minute (ROUNDS samples at 2 s).
#
#   bash scripts/gpu-truth.sh                    # target/release/infermon, else `infermon` on PATH
#   INFERMON_BIN=/usr/bin/infermon ROUNDS=60 bash scripts/gpu-truth.sh
#
# Optional LOAD="command" runs alongside (e.g. a llama-server benchmark) so the figures move;
# it is killed at the end. Exit status: that of `infermon gpu-truth` (0 all agree, 1 not).
# Tolerances are printed beside each figure (see src/cmd/gpu_truth/compare.rs for why each).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN="${INFERMON_BIN:-}"
if [ -z "$BIN" ]; then
  if [ -x target/release/infermon ]; then BIN=target/release/infermon
  else BIN="$(command -v infermon || true)"; fi
fi
[ -x "$BIN" ] || { echo "gpu-truth: no infermon binary (set INFERMON_BIN or cargo build --release)" >&2; exit 2; }
command -v nvidia-smi >/dev/null || { echo "gpu-truth: nvidia-smi not found: this needs an NVIDIA driver" >&2; exit 2; }
ROUNDS="${ROUNDS:-30}"
PORT="${PORT:-17411}"

dir="$(mktemp -d)"
agent_pid=""
load_pid=""
cleanup() {
  [ -n "$load_pid" ] && kill "$load_pid" 2>/dev/null || true
  [ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

nvidia-smi --query-gpu=name,driver_version --format=csv,noheader >&2
"$BIN" --version >&2
# Never back off: a sample every 2 s even while idle.
"$BIN" agent --listen "127.0.0.1:$PORT" --data-dir "$dir" --interval 2s --max-interval 2s \
  >"$dir/agent.log" 2>&1 &
agent_pid=$!
if [ -n "${LOAD:-}" ]; then
  bash -c "$LOAD" >"$dir/load.log" 2>&1 &
  load_pid=$!
fi
# The first sample has no window yet (power from the counter needs two): skip it.
sleep 5
kill -0 "$agent_pid" 2>/dev/null || { cat "$dir/agent.log" >&2; echo "gpu-truth: the agent exited" >&2; exit 2; }
rc=0
timeout 280 "$BIN" gpu-truth --url "http://127.0.0.1:$PORT" --rounds "$ROUNDS" || rc=$?
exit "$rc"
