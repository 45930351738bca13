#!/usr/bin/env bash
# Hub scale: simulated agents (crates/hub/examples/hubload.rs, the real push protocol, one
# sampling round of a 2-GPU, 5-model node per push) against one `infermon hub` pinned to 2
# cores, nodes spread evenly over the interval; the leaderboard and the route asked once a
# second meanwhile. Prints the load generator's latency lines (each 30 s window, the whole
# run, and the run after its first 60 s) with the machine's busy, stolen and I/O-wait
# shares per window, then the hub's CPU use, peak RSS and disk per node-day, and how long a
# restart after SIGKILL takes to answer again.
#
#   bash bench/hub-scale.sh                           # 1000 nodes at 2 s for 10 minutes
#   NODES=200 DURATION=120 bash bench/hub-scale.sh    # a smaller run
#   HUB_CPUS=0,1 LOAD_CPUS=2,3 bash bench/hub-scale.sh   # hub and load on separate cores
#
# On a 2-core machine the load generator shares the hub's cores (said in the output); the
# figures then are a lower bound of what the hub alone could do. docs/PERFORMANCE.md
# ("Hub scale") records the results. Targets: ingest p99 <= 50 ms, leaderboard and route
# p99 <= 50 ms at 1000 nodes every 2 s.
set -euo pipefail
cd "$(dirname "$0")/.."

NODES="${NODES:-1000}"
INTERVAL="${INTERVAL:-2}"
DURATION="${DURATION:-600}"
HUB_CPUS="${HUB_CPUS:-0,1}"
LOAD_CPUS="${LOAD_CPUS:-0,1}"
T="${CARGO_TARGET_DIR:-target}"

cargo build --release -q
cargo build --release -q -p infermon-hub --example hubload
BIN="$T/release/infermon"

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=$(port)
JOIN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')

INFERMON_LOG=warn taskset -c "$HUB_CPUS" "$BIN" hub --listen "127.0.0.1:$PORT" \
  --join-token "$JOIN" --data-dir "$work/hub" 2>"$work/hub.log" &
HUB=$!; pids+=($HUB)
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$PORT/api/v1/fleet/nodes" >/dev/null && break; sleep 0.1; done

cpu_s() { awk -v t="$(getconf CLK_TCK)" '{print ($14+$15)/t}' "/proc/$1/stat"; }
# The whole machine's busy, total and stolen CPU time (all processes and the kernel; I/O wait
# counts as idle; stolen: time the hypervisor gave to other guests).
busy() { awk -v t="$(getconf CLK_TCK)" '/^cpu / {print ($2+$3+$4+$7+$8)/t, ($2+$3+$4+$5+$6+$7+$8+$9)/t, $9/t}' /proc/stat; }
peak=0
(
  while kill -0 "$HUB" 2>/dev/null; do
    awk '/^VmRSS/ {print $2}' "/proc/$HUB/status" 2>/dev/null
    sleep 5
  done
) > "$work/rss.txt" &
pids+=($!)

echo "hub-scale: $NODES nodes every ${INTERVAL} s for ${DURATION} s; hub on CPUs $HUB_CPUS, load on CPUs $LOAD_CPUS ($(nproc) CPUs here)"
cpu0=$(cpu_s "$HUB")
start=$(date +%s.%N)
taskset -c "$LOAD_CPUS" "$T/release/examples/hubload" --hub "http://127.0.0.1:$PORT" \
  --join-token "$JOIN" --nodes "$NODES" --interval "$INTERVAL" --duration "$DURATION" &
LOAD=$!; pids+=($LOAD)
# The load generator's CPU, read until it exits (its own cost is part of the shared cores).
( while kill -0 "$LOAD" 2>/dev/null; do cpu_s "$LOAD" 2>/dev/null; sleep 1; done ) > "$work/load-cpu.txt" &
pids+=($!)
busy0=$(busy)
# The machine every 30 s, beside hubload's windows: a window whose latencies jump while the
# hypervisor took CPU or the disk stalled says so here.
(
  prev=$(awk '/^cpu / {print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8+$9, $9, $6}' /proc/stat); t=0
  while kill -0 "$LOAD" 2>/dev/null; do
    sleep 30; t=$((t + 30))
    now=$(awk '/^cpu / {print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8+$9, $9, $6}' /proc/stat)
    echo "$prev $now" | awk -v t="$t" '{d = $6 - $2; if (d > 0) printf "hub-scale: machine t=%ds busy %.0f%% stolen %.0f%% iowait %.0f%%\n", t, 100 * ($5 - $1) / d, 100 * ($7 - $3) / d, 100 * ($8 - $4) / d}'
    prev=$now
  done
) &
pids+=($!)
wait "$LOAD"
end=$(date +%s.%N)
busy1=$(busy)
cpu1=$(cpu_s "$HUB")
loadgen_s=$(tail -1 "$work/load-cpu.txt")
load_cpu=$(awk -v a="$start" -v b="$end" 'BEGIN {print b - a}')
accepted=$(curl -fs "http://127.0.0.1:$PORT/metrics" | awk '/^infermon_hub_samples_accepted_total/ {print $2}')
du_nodes=$(du -sk "$work/hub/nodes" | cut -f1)
wal_kib=$(find "$work/hub/nodes" -name '*-wal' -printf '%s\n' | awk '{s += $1} END {printf "%d", s / 1024}')
du_all=$(du -sk "$work/hub" | cut -f1)
peak=$(sort -n "$work/rss.txt" | tail -1)
awk -v c0="$cpu0" -v c1="$cpu1" -v w="$load_cpu" -v n="$NODES" -v d="$DURATION" -v i="$INTERVAL" \
    -v lg="$loadgen_s" -v b0="$busy0" -v b1="$busy1" -v acc="$accepted" -v dn="$du_nodes" -v da="$du_all" -v rss="$peak" -v wal="$wal_kib" 'BEGIN {
  printf "hub-scale: hub CPU %.2f cores on average over %.0f s; %d samples stored (%.0f/s; %.0f/s scheduled)\n",
    (c1 - c0) / w, w, acc, acc / w, n / i
  split(b0, x, " "); split(b1, y, " ")
  printf "hub-scale: load generator CPU %.2f cores; the whole machine %.0f%% busy (%.2f of %.0f cores; %.2f stolen by the hypervisor)\n",
    lg / w, 100 * (y[1] - x[1]) / (y[2] - x[2]), (y[1] - x[1]) / w, (y[2] - x[2]) / w, (y[3] - x[3]) / w
  printf "hub-scale: peak RSS %.1f MiB (%.2f MiB per node); disk %.1f MiB (node stores %.1f MiB, of which WAL %.1f MiB)\n",
    rss / 1024, rss / 1024 / n, da / 1024, dn / 1024, wal / 1024
  printf "hub-scale: %.1f MiB per node-day of unsealed raw samples, extrapolated from %.0f s (sealed hourly blocks are smaller: bench/store-month.sh)\n",
    (dn - wal) / 1024 / n * 86400 / d, d
}'
echo "hub-scale: $(grep -c 'WARN\|ERROR' "$work/hub.log" || true) warning lines in the hub's log"
tail -3 "$work/hub.log"

# A restart after a crash: SIGKILL the hub, start it again on the same data directory and
# time until it answers, with how many nodes have their last push back (every node's store
# is opened and its pending rounds counted before the hub serves).
kill -9 "$HUB" 2>/dev/null || true
wait "$HUB" 2>/dev/null || true
t0=$(date +%s.%N)
INFERMON_LOG=warn taskset -c "$HUB_CPUS" "$BIN" hub --listen "127.0.0.1:$PORT" \
  --join-token "$JOIN" --data-dir "$work/hub" 2>>"$work/hub.log" &
HUB=$!; pids+=($HUB)
back=""
for _ in $(seq 1 1200); do
  back=$(curl -fs "http://127.0.0.1:$PORT/api/v1/fleet/nodes" 2>/dev/null | python3 -c '
import json, sys
nodes = json.load(sys.stdin)["nodes"]
print(len(nodes), sum(1 for n in nodes if n.get("sample_ts_unix_ms")))' 2>/dev/null) && break
  sleep 0.1
done
t1=$(date +%s.%N)
read -r listed restored <<<"${back:-0 0}"
echo "hub-scale: restart after SIGKILL answered in $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}') s: $listed nodes listed, $restored with their last push"
