#!/usr/bin/env bash
# Diagnosis: accuracy over the labelled traces and the cost of replay.
#
#   bash bench/diagnosis.sh              # 20 seeds of every scenario
#   SEEDS=5 bash bench/diagnosis.sh
#
# 1. `evaluate --seeds $SEEDS`: every scenario of crates/traces replayed through the detectors,
#    scored per kind (found, detection delay, change-point dating error, cause) and per trace
#    (false alarms, per 24 h); exits non-zero when a target is missed.
# 2. `infermon replay` (release binary, as a user runs it) of the 24 h diurnal trace (43 200
#    rows at 2 s), 5 runs, wall time each.
# Prints Markdown; docs/PERFORMANCE.md records the results. Needs nothing but cargo.
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS="${SEEDS:-20}"
cargo build --release -q -p infermon -p infermon-traces
T="${CARGO_TARGET_DIR:-target}/release"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "## Accuracy ($SEEDS seeds of every scenario)"
echo
status=0
"$T/evaluate" --seeds "$SEEDS" || status=$?

"$T/tracegen" --out "$work" --only quiet_diurnal_24h >/dev/null
rows=$(($(wc -l <"$work/quiet_diurnal_24h.csv") - 1))
echo
echo "## infermon replay of the 24 h diurnal trace ($rows rows)"
echo
best=""
for i in 1 2 3 4 5; do
  s=$(python3 - "$T/infermon" "$work/quiet_diurnal_24h.csv" <<'PY'
import subprocess, sys, time
t = time.perf_counter()
out = subprocess.run([sys.argv[1], "replay", "--json", "--trace", sys.argv[2]], capture_output=True, check=True)
print(f"{time.perf_counter() - t:.3f}")
PY
)
  echo "- run $i: $s s"
  best=$(python3 -c "print(min(float('$s'), float('${best:-1e9}')))")
done
echo
echo "replay-24h: best $best s for $rows rows (target <= 1 s)"
exit $status
