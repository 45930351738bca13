#!/usr/bin/env bash
# `infermon top` CPU at a 1 s refresh (issue 12): top runs in a detached tmux pane (100×30)
# against a real agent that samples every 1 s (so every refresh brings a new snapshot, the
# worst case: snapshot, requests and observations read and the screen redrawn each second),
# watching a real llama-server with a request through the agent's proxy every 2 s. top's CPU
# is utime+stime from /proc/PID/stat over DURATION seconds after a 5 s warm-up. The agent's
# CPU is measured over the same length without top, then with it, for what answering top
# costs the watched node (noisy: the request load runs through the same agent).
#
#   bash bench/top-cpu.sh                 # DURATION=60 per phase
#   INFERMON_BIN=target/debug/infermon DURATION=30 bash bench/top-cpu.sh
#
# Needs: tmux, scripts/setup-engine.sh (run by this script). Builds the release binary unless
# INFERMON_BIN is given. Prints a Markdown table; docs/PERFORMANCE.md records the results.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-60}"
eval "$(bash scripts/setup-engine.sh 2>/dev/null)"
command -v tmux >/dev/null || { echo "needs tmux (bash scripts/setup-test-deps.sh)" >&2; exit 1; }
if [ -z "${INFERMON_BIN:-}" ]; then
  cargo build --release -q --bin infermon
  INFERMON_BIN="${CARGO_TARGET_DIR:-target}/release/infermon"
fi
BIN="$INFERMON_BIN"

work=$(mktemp -d)
pids=()
cleanup() {
  tmux -S "$work/tmux.sock" kill-server 2>/dev/null || true
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
LLAMA_PORT=$(port); AGENT_PORT=$(port); PROXY_PORT=$(port)

"$INFERMON_LLAMA_SERVER" -m "$INFERMON_TEST_MODEL" --host 127.0.0.1 --port "$LLAMA_PORT" \
  --metrics -t 1 -c 2048 -np 1 >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 1 600); do curl -fs "http://127.0.0.1:$LLAMA_PORT/health" >/dev/null && break; sleep 0.2; done

"$BIN" agent --listen "127.0.0.1:$AGENT_PORT" --data-dir "$work/data" --no-discovery \
  --engine "llamacpp=http://127.0.0.1:$LLAMA_PORT" \
  --proxy "127.0.0.1:$PROXY_PORT=http://127.0.0.1:$LLAMA_PORT" \
  --interval 1s --max-interval 1s 2>"$work/agent.log" &
AGENT=$!; pids+=($AGENT)
for _ in $(seq 1 150); do curl -fs "http://127.0.0.1:$AGENT_PORT/api/v1/snapshot" >/dev/null && break; sleep 0.2; done

# Steady load through the proxy: one short streamed request every 2 s.
(
  while true; do
    curl -fs "http://127.0.0.1:$PROXY_PORT/v1/chat/completions" -H 'content-type: application/json' \
      -d '{"messages":[{"role":"user","content":"Say hello."}],"max_tokens":24,"stream":true}' \
      >/dev/null || true
    sleep 2
  done
) &
pids+=($!)

cpu_s() { awk -v t="$(getconf CLK_TCK)" '{print ($14+$15)/t}' "/proc/$1/stat"; }

sleep 5
g0=$(cpu_s $AGENT); sleep "$DURATION"; g1=$(cpu_s $AGENT)

tmux -S "$work/tmux.sock" new-session -d -x 100 -y 30 -s top -- "$BIN" top \
  --url "http://127.0.0.1:$AGENT_PORT" --interval 1s
TOP=$(tmux -S "$work/tmux.sock" list-panes -t top -F '#{pane_pid}')
[ "$(cat "/proc/$TOP/comm")" = infermon ] || { echo "pane $TOP is not infermon top" >&2; exit 1; }
sleep 5
t0=$(cpu_s "$TOP"); a0=$(cpu_s $AGENT); sleep "$DURATION"; t1=$(cpu_s "$TOP"); a1=$(cpu_s $AGENT)
rss=$(awk '/^VmRSS/ {print $2}' "/proc/$TOP/status")
tmux -S "$work/tmux.sock" capture-pane -p -t top > "$work/screen.txt"
grep -q "llamacpp" "$work/screen.txt" || { echo "top did not show the engine:" >&2; cat "$work/screen.txt" >&2; exit 1; }

python3 - "$DURATION" "$t0" "$t1" "$g0" "$g1" "$a0" "$a1" "$rss" <<'PY'
import sys
d, t0, t1, g0, g1, a0, a1 = map(float, sys.argv[1:8])
rss = int(sys.argv[8])
top, alone, watched = t1 - t0, g1 - g0, a1 - a0
print(f"duration {d:.0f} s per phase; top refresh 1 s, agent sampling 1 s, 100x30 pane")
print()
print("| process | CPU seconds | CPU % of one core |")
print("|---|---|---|")
print(f"| infermon top (1 s refresh) | {top:.2f} | {100*top/d:.3f} % |")
print(f"| infermon agent, without top | {alone:.2f} | {100*alone/d:.3f} % |")
print(f"| infermon agent, watched by top | {watched:.2f} | {100*watched/d:.3f} % |")
print()
print(f"top RSS at the end: {rss/1024:.1f} MiB")
print(f"target: top <= 1 % of a core: {'met' if 100*top/d <= 1 else 'NOT met'}")
PY
