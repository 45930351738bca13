#!/usr/bin/env bash
# Proxy soak: does `infermon proxy` leak? DURATION seconds of continuous streaming at
# CONCURRENCY streams through infermon proxy to the mock engine (`infermon-mockllm`), sampling
# the infermon process's resident memory (VmRSS) every SAMPLE_S seconds, then checking that
# its agent counted every request the client sent.
#
#   bash bench/proxy-soak.sh                    # 180 s at 64 streams
#   DURATION=600 WINDOW=30s bash bench/proxy-soak.sh
#
# Knobs (environment):
#   DURATION=180      seconds of load
#   CONCURRENCY=64    streams in flight
#   SAMPLE_S=10       RSS sampling period
#   WARMUP_S=30       samples before this are left out of the verdict
#   TOKENS=64 TTFT_MS=20 ITL_MS=2   the mock's answers
#   WINDOW=           the agent's request window (INFERMON_REQUESTS_WINDOW); empty keeps the
#                     default (5m). The agent keeps every request of the window in memory (at
#                     most 50 000), so RSS rises until the window is full; a window shorter
#                     than the warm-up (e.g. 30s) makes "flat after warm-up" a test for leaks.
#
# The verdict ("flat": mean RSS of the last third of the samples after warm-up within 10 % of
# the first third's) is printed, not enforced. Exits non-zero when something fails to start,
# the client saw errors, or the agent's count differs from the client's.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-180}"
CONCURRENCY="${CONCURRENCY:-64}"
SAMPLE_S="${SAMPLE_S:-10}"
WARMUP_S="${WARMUP_S:-30}"
TOKENS="${TOKENS:-64}"
TTFT_MS="${TTFT_MS:-20}"
ITL_MS="${ITL_MS:-2}"
WINDOW="${WINDOW:-}"

# --- Build: the infermon binary, the mock engine and the load client, all release. ---------
cargo build --release -q -p infermon -p infermon-mockllm -p infermon-proxy \
  --bin infermon --bin infermon-mockllm --example stream_load
BIN="${CARGO_TARGET_DIR:-target}/release"

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() {
  echo "proxy-soak: $1" >&2
  [ -n "${2:-}" ] && [ -f "$2" ] && tail -n 20 "$2" >&2
  exit 1
}
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() {
  for _ in $(seq 1 100); do curl -fs -o /dev/null "$1" && return 0; sleep 0.1; done
  return 1
}

# --- The mock engine; it prints its bound address first. ----------------------------------
"$BIN/infermon-mockllm" --listen 127.0.0.1:0 --tokens "$TOKENS" --ttft-ms "$TTFT_MS" \
  --itl-ms "$ITL_MS" >"$work/mock.out" 2>"$work/mock.err" &
pids+=("$!")
for _ in $(seq 1 100); do [ -s "$work/mock.out" ] && break; sleep 0.1; done
MOCK=$(head -n1 "$work/mock.out")
if [ -z "$MOCK" ] || ! wait_http "http://$MOCK/health"; then
  die "the mock did not start" "$work/mock.err"
fi

# --- infermon proxy: the agent with one proxy, history on (the default), no discovery. ----
PROXY_PORT=$(port); API_PORT=$(port)
if [ -n "$WINDOW" ]; then export INFERMON_REQUESTS_WINDOW="$WINDOW"; fi
"$BIN/infermon" proxy --listen "127.0.0.1:$PROXY_PORT" --upstream "http://$MOCK" \
  --api-listen "127.0.0.1:$API_PORT" --no-discovery --data-dir "$work/data" \
  2>"$work/infermon.log" &
INFERMON_PID=$!; pids+=("$INFERMON_PID")
wait_http "http://127.0.0.1:$API_PORT/api/v1/snapshot" || die "the infermon agent did not start" "$work/infermon.log"
wait_http "http://127.0.0.1:$PROXY_PORT/health" || die "the infermon proxy did not start" "$work/infermon.log"

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
# Requests the agent has counted so far (all outcomes), from its /metrics.
recorded() {
  curl -fs "http://127.0.0.1:$API_PORT/metrics" \
    | awk '/^infermon_proxy_requests_total[{ ]/ { s += $NF } END { print s + 0 }'
}

echo "mock $MOCK (ttft ${TTFT_MS} ms, itl ${ITL_MS} ms, $TOKENS tokens), infermon proxy :$PROXY_PORT" \
  "(API :$API_PORT, window ${WINDOW:-default}); $CONCURRENCY streams for ${DURATION} s" >&2

# --- The load, in the background; RSS and the agent's count sampled while it runs. --------
"$BIN/examples/stream_load" --url "http://127.0.0.1:$PROXY_PORT" --concurrency "$CONCURRENCY" \
  --duration-s "$DURATION" --tokens "$TOKENS" >"$work/load.json" 2>"$work/load.err" &
LOAD_PID=$!; pids+=("$LOAD_PID")
start=$SECONDS
series="$work/rss.tsv"
printf '0\t%s\t%s\n' "$(rss_kib "$INFERMON_PID")" "$(recorded)" >"$series"
while kill -0 "$LOAD_PID" 2>/dev/null; do
  sleep "$SAMPLE_S"
  kill -0 "$INFERMON_PID" 2>/dev/null || die "infermon exited during the soak" "$work/infermon.log"
  printf '%s\t%s\t%s\n' $((SECONDS - start)) "$(rss_kib "$INFERMON_PID")" "$(recorded)" >>"$series"
done
wait "$LOAD_PID" || die "the load client failed" "$work/load.err"
sleep 1
final_recorded=$(recorded)
printf '%s\t%s\t%s\n' $((SECONDS - start)) "$(rss_kib "$INFERMON_PID")" "$final_recorded" >>"$series"

python3 - "$series" "$work/load.json" "$final_recorded" "$WARMUP_S" "$DURATION" "$CONCURRENCY" "${WINDOW:-5m (default)}" <<'PY'
import json, sys
path, load_path, recorded, warm, duration, conc, window = sys.argv[1:8]
rows = [tuple(map(int, l.split())) for l in open(path) if l.strip()]
load = json.load(open(load_path))
recorded, warm = int(recorded), int(warm)
print(f"{conc} streams for {duration} s, agent request window {window}; "
      f"load average at the end {open('/proc/loadavg').read().split()[0]}")
print()
print("| t (s) | infermon RSS (MiB) | requests recorded |")
print("|---|---|---|")
for t, kib, n in rows:
    print(f"| {t} | {kib / 1024:.1f} | {n} |")
rss = [kib for _, kib, _ in rows]
print()
print(f"RSS first {rss[0] / 1024:.1f} MiB, last {rss[-1] / 1024:.1f} MiB, max {max(rss) / 1024:.1f} MiB")
steady = [kib for t, kib, _ in rows if t >= warm]
if len(steady) >= 3:
    k = len(steady) // 3
    first, last = sum(steady[:k]) / k, sum(steady[-k:]) / k
    change = last / first - 1
    verdict = "flat" if abs(change) <= 0.10 else "NOT flat"
    print(f"after {warm} s warm-up: first third mean {first / 1024:.1f} MiB, last third mean "
          f"{last / 1024:.1f} MiB ({change * 100:+.1f} %): {verdict}")
    # A leak grows with the requests served; the window's memory stops growing once it is full.
    late = [r for r in rows if r[0] >= warm][-(k + 1):]
    dreq = late[-1][2] - late[0][2]
    if dreq > 0:
        print(f"last third: {(late[-1][1] - late[0][1]) * 1024 / dreq:+.1f} bytes of RSS per request served")
    print("note: the agent keeps the requests of its window in memory (at most 50 000), so RSS "
          "rises until the window is full; see WINDOW")
else:
    print("too few samples after warm-up for a verdict")
tt, e2e = load["ttft_ms"], load["e2e_ms"]
print(f"client: {load['ok']} ok, {load['errors']} errors ({load['first_error']}), "
      f"{load['req_per_s']:.1f} req/s, TTFT p50 {tt['p50']:.2f} / p99 {tt['p99']:.2f} / max {tt['max']:.2f} ms, "
      f"E2E p50 {e2e['p50']:.1f} / p99 {e2e['p99']:.1f} ms")
print(f"agent: infermon_proxy_requests_total = {recorded}; client sent {load['sent']}"
      f" ({'equal' if recorded == load['sent'] else 'DIFFERENT'})")
sys.exit(0 if recorded == load["sent"] and load["errors"] == 0 else 1)
PY
