#!/usr/bin/env bash
# Proxy latency: what `infermon proxy` adds to time-to-first-token (TTFT) and what it does to
# throughput, at 1, 16 and 64 concurrent streams, measured in one run against
#   * direct   — the client talks to the mock engine itself (the baseline),
#   * nginx    — the Debian nginx package as a streaming reverse proxy (proxy_buffering off,
#                HTTP/1.1 keep-alive to the upstream), the yardstick,
#   * infermon — `infermon proxy` (agent included: sampling, SQLite history, /metrics).
# The engine is `infermon-mockllm`, which streams TOKENS tokens ITL_MS apart after TTFT_MS;
# the client is the `stream_load` example of crates/proxy (client-side TTFT = request sent →
# first SSE event with non-empty content; E2E = request sent → end of the body).
#
#   bash bench/proxy-latency.sh
#   REQUESTS=1000 CONCURRENCY="16 64" bash bench/proxy-latency.sh
#
# Knobs (environment):
#   REQUESTS=3000     measured requests per (target, concurrency); concurrency 1 runs REQUESTS/10
#   TOKENS=64         tokens per answer
#   ITL_MS=2          mock inter-token latency
#   TTFT_MS=0         mock time to first token. 0 by default on purpose: the mock's timer has
#                     1 ms resolution, and as requests run back to back they start in step
#                     with its ticks, so a first token that waits on the timer hides (or
#                     inflates) sub-millisecond differences. At 0 the first token is written
#                     at once and the TTFT difference is exactly the proxy's path.
#   CONCURRENCY="1 16 64"
#   INCLUDE_USAGE=0   1: the client asks for stream_options.include_usage itself, so infermon
#                     forwards the body as is instead of adding it and removing the usage chunk
#   INFERMON_BIN=…    the infermon binary to measure (default: the release build; e.g.
#                     target/dist/infermon after `cargo build --profile dist`)
#   REPEAT=1          rounds of every (concurrency, target); with more, the tables give the
#                     median over rounds and each round's added TTFT p50 (a 2-vCPU box shared
#                     by mock, client and proxy moves single runs by ±0.2 ms at 64 streams)
#
# Needs: cargo, python3, curl, nginx (installed with apt-get when missing). Prints Markdown
# tables; exits non-zero when a server fails to start or infermon's agent did not record the
# requests it proxied.
set -euo pipefail
cd "$(dirname "$0")/.."

REQUESTS="${REQUESTS:-3000}"
TOKENS="${TOKENS:-64}"
ITL_MS="${ITL_MS:-2}"
TTFT_MS="${TTFT_MS:-0}"
CONCURRENCY="${CONCURRENCY:-1 16 64}"
INCLUDE_USAGE="${INCLUDE_USAGE:-0}"
REPEAT="${REPEAT:-1}"
NPROC=$(nproc)

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# --- Build: the infermon binary, the mock engine and the load client, all release. ---------
cargo build --release -q -p infermon -p infermon-mockllm -p infermon-proxy \
  --bin infermon --bin infermon-mockllm --example stream_load
BIN="${CARGO_TARGET_DIR:-target}/release"
INFERMON_BIN="${INFERMON_BIN:-$BIN/infermon}"
LOAD="$BIN/examples/stream_load"

# --- nginx from Debian, when missing (the package's service is not needed and not used). --
if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
  echo "installing nginx (Debian package)" >&2
  as_root apt-get update -qq >/dev/null
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

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
  echo "proxy-latency: $1" >&2
  [ -n "${2:-}" ] && [ -f "$2" ] && tail -n 20 "$2" >&2
  exit 1
}
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# Waits up to 10 s for URL to answer 2xx.
wait_http() {
  for _ in $(seq 1 100); do curl -fs -o /dev/null "$1" && return 0; sleep 0.1; done
  return 1
}

# --- The mock engine; it prints its bound address first. ----------------------------------
"$BIN/infermon-mockllm" --listen 127.0.0.1:0 --tokens "$TOKENS" --ttft-ms "$TTFT_MS" \
  --itl-ms "$ITL_MS" >"$work/mock.out" 2>"$work/mock.err" &
MOCK_PID=$!; pids+=("$MOCK_PID")
for _ in $(seq 1 100); do [ -s "$work/mock.out" ] && break; sleep 0.1; done
MOCK=$(head -n1 "$work/mock.out")
if [ -z "$MOCK" ] || ! wait_http "http://$MOCK/health"; then
  die "the mock did not start" "$work/mock.err"
fi

# --- nginx as a streaming reverse proxy, with everything under $work (no root paths). ------
NGINX_PORT=$(port)
mkdir -p "$work/nginx"
nginx_user=""
[ "$(id -u)" -eq 0 ] && nginx_user="user root;"
cat >"$work/nginx/nginx.conf" <<EOF
$nginx_user
worker_processes $NPROC;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  upstream mock {
    server $MOCK;
    keepalive 128;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / {
      proxy_pass http://mock;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
}
EOF
"$NGINX" -p "$work/nginx" -c "$work/nginx/nginx.conf" -e "$work/nginx/error.log" \
  2>"$work/nginx/stderr.log" &
NGINX_PID=$!; pids+=("$NGINX_PID")
wait_http "http://127.0.0.1:$NGINX_PORT/health" || die "nginx did not start" "$work/nginx/error.log"

# --- infermon proxy: the agent with one proxy, history on (the default), no discovery. ----
PROXY_PORT=$(port); API_PORT=$(port)
"$INFERMON_BIN" proxy --listen "127.0.0.1:$PROXY_PORT" --upstream "http://$MOCK" \
  --api-listen "127.0.0.1:$API_PORT" --no-discovery --data-dir "$work/data" \
  2>"$work/infermon.log" &
INFERMON_PID=$!; pids+=("$INFERMON_PID")
wait_http "http://127.0.0.1:$API_PORT/api/v1/snapshot" || die "the infermon agent did not start" "$work/infermon.log"
wait_http "http://127.0.0.1:$PROXY_PORT/health" || die "the infermon proxy did not start" "$work/infermon.log"

# CPU seconds (user + system) of a process and its children (nginx: master and workers).
cpu_s() {
  local total=0 p kids
  mapfile -t kids < <(pgrep -P "$1" || true)
  for p in "$1" "${kids[@]}"; do
    total=$(awk -v t="$(getconf CLK_TCK)" -v acc="$total" '{print acc + ($14+$15)/t}' "/proc/$p/stat")
  done
  echo "$total"
}

declare -A URL=(
  [direct]="http://$MOCK"
  [nginx]="http://127.0.0.1:$NGINX_PORT"
  [infermon]="http://127.0.0.1:$PROXY_PORT"
)
declare -A PID=([direct]="" [nginx]="$NGINX_PID" [infermon]="$INFERMON_PID")
usage_flag=()
[ "$INCLUDE_USAGE" = 1 ] && usage_flag=(--include-usage)

echo "mock $MOCK (ttft ${TTFT_MS} ms, itl ${ITL_MS} ms, $TOKENS tokens), nginx :$NGINX_PORT," \
  "infermon proxy :$PROXY_PORT (API :$API_PORT); $NPROC CPUs" >&2

# --- The runs: per concurrency, every target, in an order rotated per concurrency so that
# slow drift (thermal, page cache, the agent's history growing) does not favour one target.
# Each run starts with 2·c+10 warm-up requests (connections opened, caches warm), excluded.
targets=(direct nginx infermon)
results="$work/results.tsv"
: >"$results"
i=0
for rep in $(seq 1 "$REPEAT"); do
  for c in $CONCURRENCY; do
    n=$REQUESTS
    [ "$c" -eq 1 ] && n=$(( REQUESTS / 10 > 50 ? REQUESTS / 10 : 50 ))
    for k in 0 1 2; do
      t=${targets[$(( (i + k) % 3 ))]}
      cpu0=0; [ -n "${PID[$t]}" ] && cpu0=$(cpu_s "${PID[$t]}")
      out=$("$LOAD" --url "${URL[$t]}" --concurrency "$c" --requests "$n" --tokens "$TOKENS" \
        --warmup $(( 2 * c + 10 )) "${usage_flag[@]}")
      cpu=""; [ -n "${PID[$t]}" ] && cpu=$(awk -v a="$cpu0" -v b="$(cpu_s "${PID[$t]}")" 'BEGIN {print b - a}')
      printf '%s\t%s\t%s\t%s\t%s\n' "$rep" "$t" "$c" "$cpu" "$out" >>"$results"
      echo "  round $rep c=$c $t done" >&2
    done
    i=$((i + 1))
  done
done

# --- Tables. ------------------------------------------------------------------------------
python3 - "$results" "$TOKENS" "$ITL_MS" "$TTFT_MS" "$NPROC" "$INCLUDE_USAGE" <<'PY'
import json, statistics, sys
path, tokens, itl, ttft, nproc, usage = sys.argv[1:7]
runs = {}  # (target, c) -> [(cpu, result), ...] one per round
for line in open(path):
    rep, t, c, cpu, js = line.rstrip("\n").split("\t", 4)
    runs.setdefault((t, int(c)), []).append((float(cpu) if cpu else None, json.loads(js)))
concs = sorted({c for _, c in runs})
rounds = max(len(v) for v in runs.values())
med = statistics.median
def added(t, c, key):
    """Per round: the target's TTFT percentile minus direct's in the same round."""
    return [r["ttft_ms"][key] - b["ttft_ms"][key]
            for (_, r), (_, b) in zip(runs[(t, c)], runs[("direct", c)])]
print(f"mock: ttft {ttft} ms, itl {itl} ms, {tokens} tokens/answer; {nproc} CPUs; "
      f"client asks for usage itself: {'yes' if usage == '1' else 'no'}; rounds: {rounds}"
      f"{' (figures are medians over rounds)' if rounds > 1 else ''}; "
      f"load average at the end {open('/proc/loadavg').read().split()[0]}")
print()
print("| target | streams | requests (errors) | TTFT p50 ms | TTFT p99 ms | E2E p50 ms | req/s | tokens/s | proxy CPU ms/req | added TTFT p50 ms | added TTFT p99 ms |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for c in concs:
    for t in ("direct", "nginx", "infermon"):
        rs = runs[(t, c)]
        m = lambda f: med([f(r) for _, r in rs])
        ok = sum(r["ok"] for _, r in rs); err = sum(r["errors"] for _, r in rs)
        cpus = [1000 * cpu / r["sent"] for cpu, r in rs if cpu is not None]
        cpu_req = f"{med(cpus):.3f}" if cpus else "–"
        add = (f"{med(added(t, c, 'p50')):+.3f} | {med(added(t, c, 'p99')):+.3f}"
               if t != "direct" else "– | –")
        print(f"| {t} | {c} | {ok} ({err}) | {m(lambda r: r['ttft_ms']['p50']):.3f} | "
              f"{m(lambda r: r['ttft_ms']['p99']):.3f} | {m(lambda r: r['e2e_ms']['p50']):.2f} | "
              f"{m(lambda r: r['req_per_s']):.1f} | {m(lambda r: r['tokens_per_s']):.0f} | {cpu_req} | {add} |")
print()
print("Targets: added TTFT p50 <= 0.3 ms, p99 <= 2 ms, added p50 within 1.2x of nginx's.")
print()
print("| streams | infermon added p50 | infermon added p99 | nginx added p50 | nginx added p99 | added p50 infermon/nginx | p50 <= 0.3 ms | p99 <= 2 ms | <= 1.2x nginx | infermon / nginx added p50 per round |")
print("|---|---|---|---|---|---|---|---|---|---|")
for c in concs:
    ia50, ia99 = med(added("infermon", c, "p50")), med(added("infermon", c, "p99"))
    na50, na99 = med(added("nginx", c, "p50")), med(added("nginx", c, "p99"))
    ratio = f"{ia50 / na50:.2f}" if na50 > 0 else "n/a (nginx adds ~0)"
    within = "met" if (ia50 <= 1.2 * na50 or ia50 <= 0) else "NOT met"
    per = ", ".join(f"{a:+.2f}/{b:+.2f}" for a, b in zip(added("infermon", c, "p50"), added("nginx", c, "p50")))
    print(f"| {c} | {ia50:+.3f} | {ia99:+.3f} | {na50:+.3f} | {na99:+.3f} | {ratio} | "
          f"{'met' if ia50 <= 0.3 else 'NOT met'} | {'met' if ia99 <= 2 else 'NOT met'} | {within} | {per} |")
for (t, c), rs in sorted(runs.items()):
    for k, (_, r) in enumerate(rs):
        if r["errors"] or r.get("warmup_errors"):
            print(f"\nerrors: {t} c={c} round {k + 1}: {r['errors']} (+{r.get('warmup_errors', 0)} in warm-up), first: {r['first_error']}")
PY

# --- Did the agent record what went through the proxy? ------------------------------------
# The store is written every 0.5 s; the /metrics counter is updated as each request ends.
sleep 1.5
sent=$(python3 -c 'import json,sys; print(sum(json.loads(l.split("\t", 4)[4])["sent"] for l in open(sys.argv[1]) if l.split("\t", 2)[1] == "infermon"))' "$results")
last=$(curl -fs "http://127.0.0.1:$API_PORT/api/v1/requests?limit=1") || die "GET /api/v1/requests failed" "$work/infermon.log"
recorded=$(curl -fs "http://127.0.0.1:$API_PORT/metrics" \
  | awk '/^infermon_proxy_requests_total[{ ]/ { s += $NF } END { print s + 0 }')
echo
echo "infermon agent: newest stored request: $(python3 -c 'import json,sys; r=json.load(sys.stdin)["requests"]; print(json.dumps({k: r[0].get(k) for k in ("outcome","model","stream","ttft_ms","e2e_ms","completion_tokens","usage_injected")}) if r else "NONE")' <<<"$last")"
echo "infermon agent: infermon_proxy_requests_total = $recorded; requests sent through infermon (warm-ups included) = $sent"
python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)["requests"] else 1)' <<<"$last" \
  || die "the agent stored no request"
[ "$recorded" -eq "$sent" ] || die "the agent counted $recorded requests, $sent were sent"
