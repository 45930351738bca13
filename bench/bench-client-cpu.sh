#!/usr/bin/env bash
# Client cost of `infermon bench` against infermon-mockllm, next to GuideLLM and llama-benchy
# when they can be installed: CPU-seconds per request (user + system of the client process and
# its children, from /usr/bin/time) and the highest request rate each client sustains.
#
# Usage: bash bench/bench-client-cpu.sh [RESULTS.md]      (default bench/results/bench-client.md)
# Env:   RATES="50 100 200 400 800 1600"   open-loop rates tried (req/s)
#        SECONDS_PER_RATE=5                requests per rate = rate × this (at least 100)
#        TOKENS=64 ITL_MS=1 INPUT_TOKENS=128   mock answer and prompt sizes
#        CONCURRENCY=8 N1=100 N2=1000      the marginal-cost runs (closed loop)
#        VENV=~/.cache/infermon-bench-venv SKIP_PYTHON=1
#
# CPU per request is marginal: (CPU(N2 requests) − CPU(N1 requests)) ÷ (N2 − N1) at the same
# concurrency, so process start-up (Python imports, tokenizer loading) is not charged to
# requests. A rate is "sustained" when the achieved rate is ≥ 95 % of the asked rate.
# Python tools run offline: GuideLLM and llama-benchy get a local tokenizer (converted from the
# test GGUF, see below) and llama-benchy a locally cached book (text from crates/bench/data).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT_MD=${1:-$ROOT/bench/results/bench-client.md}
RATES=${RATES:-"50 100 200 400 800 1600"}
SECONDS_PER_RATE=${SECONDS_PER_RATE:-5}
TOKENS=${TOKENS:-64}
ITL_MS=${ITL_MS:-1}
INPUT_TOKENS=${INPUT_TOKENS:-128}
CONCURRENCY=${CONCURRENCY:-8}
N1=${N1:-100}
N2=${N2:-1000}
VENV=${VENV:-$HOME/.cache/infermon-bench-venv}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
WORK=$(mktemp -d)
trap 'kill "${MOCK_PID:-}" 2>/dev/null || true; rm -rf "$WORK"' EXIT

echo "building release binaries..." >&2
(cd "$ROOT" && cargo build --release -q --bin infermon -p infermon && cargo build --release -q -p infermon-mockllm --bin infermon-mockllm)
INFERMON=$TARGET/release/infermon
MOCKLLM=$TARGET/release/infermon-mockllm

"$MOCKLLM" --listen 127.0.0.1:0 --tokens "$TOKENS" --itl-ms "$ITL_MS" --workers 1 >"$WORK/mock.out" 2>"$WORK/mock.err" &
MOCK_PID=$!
for _ in $(seq 50); do [ -s "$WORK/mock.out" ] && break; sleep 0.1; done
ADDR=$(head -1 "$WORK/mock.out")
URL=http://$ADDR
echo "mock at $URL ($TOKENS tokens, ${ITL_MS} ms apart)" >&2

# timed OUTFILE CMD... : runs CMD, writes "user sys wall" to OUTFILE.
timed() { local o=$1; shift; /usr/bin/time -f "%U %S %e" -o "$o" "$@" >"$o.log" 2>&1 || { echo "FAILED: $*" >&2; tail -5 "$o.log" >&2; return 1; }; }
cpu_of() { awk '{printf "%.3f", $1 + $2}' "$1"; }
wall_of() { awk '{printf "%.3f", $3}' "$1"; }
jget() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }

# ---- infermon bench --------------------------------------------------------------------
im_run() { # OUT N ARGS...
  local o=$1 n=$2; shift 2
  timed "$o.time" "$INFERMON" bench --url "$URL" --requests "$n" --warmup 0 --max-tokens "$TOKENS" \
    --input-tokens "$INPUT_TOKENS" -q --out "$o.json" "$@"
}
echo "infermon bench: marginal cost at concurrency $CONCURRENCY..." >&2
im_run "$WORK/im1" "$N1" --concurrency "$CONCURRENCY"
im_run "$WORK/im2" "$N2" --concurrency "$CONCURRENCY"
IM_C1=$(cpu_of "$WORK/im1.time"); IM_C2=$(cpu_of "$WORK/im2.time")
IM_PER=$(python3 -c "print(f'{($IM_C2-$IM_C1)/($N2-$N1)*1000:.3f}')")
IM_RPS=$(jget "$WORK/im2.json" "round(d['requests_per_second'],1)")
IM_ROWS=""
IM_MAX=0
for r in $RATES; do
  n=$(( r * SECONDS_PER_RATE )); [ "$n" -lt 100 ] && n=100
  im_run "$WORK/imr$r" "$n" --rate "$r" --arrivals constant
  ach=$(jget "$WORK/imr$r.json" "round(d['requests_per_second'] or 0,1)")
  ok=$(jget "$WORK/imr$r.json" "d['requests_completed']")
  p99=$(jget "$WORK/imr$r.json" "round(d['ttft_ms']['p99'],2) if d['ttft_ms'] else 'n/a'")
  lag=$(jget "$WORK/imr$r.json" "round(d['configs'][0]['schedule_lag_ms']['p99'],2) if d['configs'][0].get('schedule_lag_ms') else 'n/a'")
  cpu=$(cpu_of "$WORK/imr$r.time")
  per=$(python3 -c "print(f'{$cpu/$n*1000:.3f}')")
  sus=$(python3 -c "print('yes' if $ach >= 0.95*$r*($n/$r)/($n/$r+0.1) else 'no')")
  [ "$sus" = yes ] && IM_MAX=$r
  IM_ROWS+="| $r | $n | $ok | $ach | $lag | $p99 | $cpu | $per | $sus |"$'\n'
  echo "  rate $r: achieved $ach req/s, TTFT p99 $p99 ms, CPU $cpu s ($per ms/request)" >&2
done

# ---- Python tools ----------------------------------------------------------------------
PY_NOTE=""
GL_ROWS=""; GL_PER="n/a"; GL_MAX="n/a"; GL_STATUS=""
LB_PER="n/a"; LB_RPS="n/a"; LB_STATUS=""
if [ "${SKIP_PYTHON:-0}" != 1 ]; then
  if [ ! -x "$VENV/bin/python" ]; then python3 -m venv "$VENV" || PY_NOTE="python3 -m venv failed"; fi
  PIP=$VENV/bin/pip
  if [ -x "$PIP" ]; then
    [ -x "$VENV/bin/llama-benchy" ] || "$PIP" install -q llama-benchy >"$WORK/pip-benchy.log" 2>&1 || LB_STATUS="pip install llama-benchy failed: $(tail -1 "$WORK/pip-benchy.log")"
    [ -x "$VENV/bin/guidellm" ] || "$PIP" install -q guidellm >"$WORK/pip-guidellm.log" 2>&1 || GL_STATUS="pip install guidellm failed: $(tail -1 "$WORK/pip-guidellm.log")"
    "$VENV/bin/python" -c "import gguf" 2>/dev/null || "$PIP" install -q gguf >"$WORK/pip-gguf.log" 2>&1 || true
  fi
  # A tokenizer without network: the test model's own, converted from its GGUF.
  TOK=$VENV/tokenizer-smollm2
  if [ ! -f "$TOK/tokenizer.json" ]; then
    MODEL=${INFERMON_TEST_MODEL:-$(sed -n 's/^export INFERMON_TEST_MODEL="\(.*\)"/\1/p' "$HOME/.cache/infermon-engine/env.sh" 2>/dev/null || true)}
    if [ -n "$MODEL" ] && [ -f "$MODEL" ]; then
      "$VENV/bin/python" - "$MODEL" "$TOK" <<'EOF' >"$WORK/tok.log" 2>&1 || true
import os, sys
from transformers import AutoTokenizer
d, f = os.path.split(sys.argv[1])
AutoTokenizer.from_pretrained(d, gguf_file=f).save_pretrained(sys.argv[2])
EOF
    fi
  fi
  if [ ! -f "$TOK/tokenizer.json" ]; then
    PY_NOTE="no local tokenizer (set INFERMON_TEST_MODEL to a GGUF; see $WORK/tok.log)"
  fi
  # llama-benchy: batches of CONCURRENCY requests, runs = N / CONCURRENCY.
  if [ -z "$LB_STATUS" ] && [ -x "$VENV/bin/llama-benchy" ] && [ -z "$PY_NOTE" ]; then
    BOOK=http://book.invalid/pride-and-prejudice.txt
    H=$(python3 -c "import hashlib,sys;print(hashlib.md5(sys.argv[1].encode()).hexdigest())" "$BOOK")
    mkdir -p "$HOME/.cache/llama-benchy"
    for _ in $(seq 20); do cat "$ROOT/crates/bench/data/pride-and-prejudice-ch1-2.txt"; done >"$HOME/.cache/llama-benchy/$H.txt"
    lb() { timed "$1" "$VENV/bin/llama-benchy" --base-url "$URL/v1" --model mock --tokenizer "$TOK" --book-url "$BOOK" \
      --pp "$INPUT_TOKENS" --tg "$TOKENS" --concurrency "$CONCURRENCY" --runs "$(( $2 / CONCURRENCY ))" \
      --latency-mode none --skip-coherence --no-cache; }
    echo "llama-benchy: marginal cost at concurrency $CONCURRENCY..." >&2
    if lb "$WORK/lb1.time" "$N1" && lb "$WORK/lb2.time" "$N2"; then
      LB_PER=$(python3 -c "print(f'{($(cpu_of "$WORK/lb2.time")-$(cpu_of "$WORK/lb1.time"))/($N2-$N1)*1000:.3f}')")
      LB_RPS=$(python3 -c "print(f'{($N2-$N1)/($(wall_of "$WORK/lb2.time")-$(wall_of "$WORK/lb1.time")):.1f}')")
    else
      LB_STATUS="llama-benchy run failed: $(tail -2 "$WORK/lb2.time.log" 2>/dev/null | tr '\n' ' ')"
    fi
  fi
  # GuideLLM: the same closed loop for the marginal cost, then the same constant rates.
  if [ -z "$GL_STATUS" ] && [ -x "$VENV/bin/guidellm" ] && [ -z "$PY_NOTE" ]; then
    gl() { # TIMEFILE JSON N PROFILE
      timed "$1" "$VENV/bin/guidellm" run --backend "kind=openai_http,target=$URL,model=mock" --profile "$4" \
        --constraint "kind=max_requests,count=$3" --data "kind=synthetic_text,prompt_tokens=$INPUT_TOKENS,output_tokens=$TOKENS" \
        --tokenizer "kind=huggingface_auto,model=$TOK" --output "kind=json,path=$2" --disable-console-interactive; }
    gl_rps() { jget "$1" "round(d['benchmarks'][0]['metrics']['request_totals']['successful']/(d['benchmarks'][0]['scheduler_state']['end_time']-d['benchmarks'][0]['scheduler_state']['start_time']),1)"; }
    echo "GuideLLM: marginal cost at concurrency $CONCURRENCY..." >&2
    if gl "$WORK/gl1.time" "$WORK/gl1.json" "$N1" "kind=concurrent,streams=$CONCURRENCY" \
      && gl "$WORK/gl2.time" "$WORK/gl2.json" "$N2" "kind=concurrent,streams=$CONCURRENCY"; then
      GL_PER=$(python3 -c "print(f'{($(cpu_of "$WORK/gl2.time")-$(cpu_of "$WORK/gl1.time"))/($N2-$N1)*1000:.3f}')")
      GL_RPS=$(gl_rps "$WORK/gl2.json")
      GL_MAX=0
      for r in $RATES; do
        n=$(( r * SECONDS_PER_RATE )); [ "$n" -lt 100 ] && n=100
        gl "$WORK/glr$r.time" "$WORK/glr$r.json" "$n" "kind=constant,rate=$r" || break
        ach=$(gl_rps "$WORK/glr$r.json")
        ok=$(jget "$WORK/glr$r.json" "d['benchmarks'][0]['metrics']['request_totals']['successful']")
        cpu=$(cpu_of "$WORK/glr$r.time")
        sus=$(python3 -c "print('yes' if $ach >= 0.95*$r*($n/$r)/($n/$r+0.1) else 'no')")
        [ "$sus" = yes ] && GL_MAX=$r
        GL_ROWS+="| $r | $n | $ok | $ach | $cpu (incl. start-up) | $sus |"$'\n'
        echo "  GuideLLM rate $r: achieved $ach req/s, CPU $cpu s" >&2
      done
    else
      GL_STATUS="GuideLLM run failed: $(tail -2 "$WORK/gl2.time.log" 2>/dev/null | tr '\n' ' ')"
    fi
  fi
else
  PY_NOTE="skipped (SKIP_PYTHON=1)"
fi

ratio() { python3 -c "
a, b = '$1', '$2'
try: print(f'{float(b)/float(a):.1f}x')
except Exception: print('n/a')"; }

mkdir -p "$(dirname "$OUT_MD")"
{
  echo "# Client cost of \`infermon bench\` vs Python load generators"
  echo
  echo "Generated by \`bench/bench-client-cpu.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs"
  echo "($(uname -sr)); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
  echo "Mock: \`infermon-mockllm --tokens $TOKENS --itl-ms $ITL_MS --workers 1\` (SSE, one event per"
  echo "token); prompts ~$INPUT_TOKENS tokens, $TOKENS output tokens, streamed with usage."
  echo "CPU = user + system seconds of the client and its children (\`/usr/bin/time\`); per request ="
  echo "(CPU($N2 requests) − CPU($N1 requests)) ÷ $((N2 - N1)) at concurrency $CONCURRENCY (start-up excluded)."
  echo
  echo "## CPU per request (concurrency $CONCURRENCY)"
  echo
  echo "| client | CPU ms / request | vs infermon | req/s at concurrency $CONCURRENCY |"
  echo "|---|---|---|---|"
  echo "| infermon bench (hardware sampling on) | $IM_PER | 1.0x | $IM_RPS |"
  echo "| llama-benchy $( [ -x "$VENV/bin/llama-benchy" ] && "$VENV/bin/llama-benchy" --version 2>/dev/null | awk '{print $2}') | $LB_PER | $(ratio "$IM_PER" "$LB_PER") | $LB_RPS |"
  echo "| GuideLLM $( [ -x "$VENV/bin/guidellm" ] && "$VENV/bin/guidellm" --version 2>/dev/null | awk '{print $NF}') | $GL_PER | $(ratio "$IM_PER" "$GL_PER") | ${GL_RPS:-n/a} |"
  echo
  echo "## infermon bench at constant open-loop rates"
  echo
  echo "| rate asked | requests | completed | achieved req/s | send lag p99 ms | TTFT p99 ms | CPU s (incl. start-up) | CPU ms / request | sustained |"
  echo "|---|---|---|---|---|---|---|---|---|"
  printf '%s' "$IM_ROWS"
  echo
  echo "Highest sustained rate: **$IM_MAX req/s** (of the rates tried; the mock and the client share"
  echo "the machine). Open-loop runs use up to 4 client threads (more than 32 requests may be in"
  echo "flight); closed loops of up to 32 use one."
  if [ -n "$GL_ROWS" ]; then
    echo
    echo "## GuideLLM at the same constant rates"
    echo
    echo "| rate asked | requests | completed | achieved req/s | CPU s | sustained |"
    echo "|---|---|---|---|---|---|"
    printf '%s' "$GL_ROWS"
    echo
    echo "Highest sustained rate: **$GL_MAX req/s**. llama-benchy has no rate profile (batches of"
    echo "concurrent requests only), so only its closed-loop figures are above."
  fi
  for s in "$PY_NOTE" "$LB_STATUS" "$GL_STATUS"; do
    [ -n "$s" ] && { echo; echo "Note: $s"; }
  done
  echo
  echo "vLLM's \`bench serve\` was not run: installing \`vllm\` pulls a full GPU inference stack;"
  echo "GuideLLM (from the vLLM project) uses the same aiohttp/httpx style of client."
} >"$OUT_MD"
echo "wrote $OUT_MD" >&2
cat "$OUT_MD"
