#!/usr/bin/env bash
# Agent overhead: CPU time and resident memory of `infermon agent` sampling every 2 s with a
# real llama-server attached, side by side in the same run with Prometheus node_exporter
# scraped every 2 s, and with a second agent that has diagnosis switched off
# (INFERMON_DIAGNOSIS=false) — the cost of the detectors is the difference between the two
# agents. All are scraped on /metrics every 2 s, as Prometheus would.
#
#   bash bench/agent-overhead.sh            # 10 minutes (DURATION=600)
#   DURATION=60 bash bench/agent-overhead.sh
#
# Needs: scripts/setup-engine.sh (run by this script), apt (installs prometheus-node-exporter).
# Prints a Markdown table; docs/PERFORMANCE.md records the results.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-600}"
INTERVAL=2
eval "$(bash scripts/setup-engine.sh 2>/dev/null)"

if ! command -v prometheus-node-exporter >/dev/null && [ ! -x /usr/bin/prometheus-node-exporter ]; then
  echo "installing prometheus-node-exporter (Debian)" >&2
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus-node-exporter >/dev/null
fi
NODE_EXPORTER=$(command -v prometheus-node-exporter || echo /usr/bin/prometheus-node-exporter)

cargo build --release -q
BIN="${CARGO_TARGET_DIR:-target}/release/infermon"

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
LLAMA_PORT=$(port); AGENT_PORT=$(port); NE_PORT=$(port); OFF_PORT=$(port)

"$INFERMON_LLAMA_SERVER" -m "$INFERMON_TEST_MODEL" --host 127.0.0.1 --port "$LLAMA_PORT" \
  --metrics -t 1 -c 2048 >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 1 600); do curl -fs "http://127.0.0.1:$LLAMA_PORT/health" >/dev/null && break; sleep 0.2; done

"$BIN" agent --listen "127.0.0.1:$AGENT_PORT" --data-dir "$work/data" --no-discovery \
  --engine "llamacpp=http://127.0.0.1:$LLAMA_PORT" --interval ${INTERVAL}s --max-interval ${INTERVAL}s \
  2>"$work/agent.log" &
AGENT=$!; pids+=($AGENT)
INFERMON_DIAGNOSIS=false "$BIN" agent --listen "127.0.0.1:$OFF_PORT" --data-dir "$work/data-off" --no-discovery \
  --engine "llamacpp=http://127.0.0.1:$LLAMA_PORT" --interval ${INTERVAL}s --max-interval ${INTERVAL}s \
  2>"$work/agent-off.log" &
OFF=$!; pids+=($OFF)
"$NODE_EXPORTER" --web.listen-address="127.0.0.1:$NE_PORT" 2>"$work/ne.log" &
NE=$!; pids+=($NE)
sleep 3

cpu_s() { awk -v t="$(getconf CLK_TCK)" '{print ($14+$15)/t}' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

# A light, steady load on llama-server so the agent has an engine doing work: one short
# request every 10 s (bounded by DURATION).
(
  end=$((SECONDS + DURATION))
  while [ $SECONDS -lt $end ]; do
    curl -fs "http://127.0.0.1:$LLAMA_PORT/v1/chat/completions" -H 'content-type: application/json' \
      -d '{"messages":[{"role":"user","content":"Say hello."}],"max_tokens":16}' >/dev/null || true
    sleep 10
  done
) &
pids+=($!)

a0=$(cpu_s $AGENT); n0=$(cpu_s $NE); o0=$(cpu_s $OFF)
a_max=0; n_max=0; a_sum=0; n_sum=0; k=0; o_max=0; o_sum=0
end=$((SECONDS + DURATION))
while [ $SECONDS -lt $end ]; do
  curl -fs "http://127.0.0.1:$AGENT_PORT/metrics" >/dev/null || echo "agent scrape failed" >&2
  curl -fs "http://127.0.0.1:$NE_PORT/metrics" >/dev/null || echo "node_exporter scrape failed" >&2
  curl -fs "http://127.0.0.1:$OFF_PORT/metrics" >/dev/null || echo "agent (diagnosis off) scrape failed" >&2
  ar=$(rss_kib $AGENT); nr=$(rss_kib $NE); or=$(rss_kib $OFF)
  a_sum=$((a_sum + ar)); n_sum=$((n_sum + nr)); o_sum=$((o_sum + or)); k=$((k + 1))
  [ "$or" -gt "$o_max" ] && o_max=$or
  [ "$ar" -gt "$a_max" ] && a_max=$ar
  [ "$nr" -gt "$n_max" ] && n_max=$nr
  sleep $INTERVAL
done
a1=$(cpu_s $AGENT); n1=$(cpu_s $NE); o1=$(cpu_s $OFF)
# What diagnosis said about this steady, healthy node over the run (it should say nothing).
curl -fs "http://127.0.0.1:$AGENT_PORT/api/v1/observations?since=-${DURATION}s" \
  | python3 -c '
import json, sys
obs = json.load(sys.stdin)["observations"]
print("observations during the run:", len(obs))
for x in obs:
    print("  %s on %s (%s): %s" % (x["kind"], x["subject"], x["severity"], x["action"]))
' >&2
samples=$(curl -fs "http://127.0.0.1:$AGENT_PORT/api/v1/history?metric=infermon_agent_collect_duration_seconds&from=-${DURATION}s&resolution=raw" \
  | python3 -c 'import json,sys; d=json.load(sys.stdin); p=d["series"][0]["points"]; v=sorted(x["value"] for x in p); print(len(v), round(1000*v[len(v)//2],2), round(1000*v[int(len(v)*0.99)-1],2))')
read -r n_samples collect_p50 collect_p99 <<<"$samples"

python3 - "$DURATION" "$a0" "$a1" "$n0" "$n1" "$a_max" "$n_max" "$a_sum" "$n_sum" "$k" "$n_samples" "$collect_p50" "$collect_p99" "$o0" "$o1" "$o_max" "$o_sum" <<'PY'
import sys
d, a0, a1, n0, n1 = map(float, sys.argv[1:6])
a_max, n_max, a_sum, n_sum, k, ns = map(int, sys.argv[6:12])
p50, p99 = sys.argv[12:14]
o0, o1 = map(float, sys.argv[14:16])
o_max, o_sum = map(int, sys.argv[16:18])
ac, nc, oc = a1 - a0, n1 - n0, o1 - o0
print(f"duration {d:.0f} s, interval 2 s, {k} scrapes of each, {ns} agent samples stored")
print()
print("| process | CPU seconds | CPU % of one core | RSS mean | RSS max |")
print("|---|---|---|---|---|")
print(f"| infermon agent (2 s sampling, llama-server attached, SQLite history) | {ac:.2f} | {100*ac/d:.3f} % | {a_sum/k/1024:.1f} MiB | {a_max/1024:.1f} MiB |")
print(f"| infermon agent, diagnosis off (same, INFERMON_DIAGNOSIS=false) | {oc:.2f} | {100*oc/d:.3f} % | {o_sum/k/1024:.1f} MiB | {o_max/1024:.1f} MiB |")
print(f"| prometheus-node-exporter (scraped every 2 s) | {nc:.2f} | {100*nc/d:.3f} % | {n_sum/k/1024:.1f} MiB | {n_max/1024:.1f} MiB |")
print()
print(f"agent collect time per sample: p50 {p50} ms, p99 {p99} ms")
print(f"targets: CPU <= node_exporter's: {'met' if ac <= nc else 'NOT met'}; RSS <= 25 MiB: {'met' if a_max <= 25*1024 else 'NOT met'}")
dcpu = 100 * (ac - oc) / oc if oc > 0 else float('nan')
drss = (a_sum - o_sum) / k / 1024
print(f"diagnosis: CPU {ac - oc:+.2f} s ({dcpu:+.1f} % of the agent's), RSS mean {drss:+.2f} MiB, max {(a_max - o_max)/1024:+.2f} MiB; "
      f"targets <= 5 % CPU: {'met' if dcpu <= 5 else 'NOT met'}, <= 2 MiB RSS: {'met' if drss <= 2 else 'NOT met'}")
PY
