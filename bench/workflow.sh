#!/usr/bin/env bash
# Workflow engine throughput (issue: durable throughput). One process starts and drives 1,000 runs of a 3-step
# workflow on the SQLite store (journal committed with synchronous = FULL before every effect), PARALLEL runs in
# flight at once:
#   (a) the built-in noop action — the engine's own cost per run and per transition;
#   (b) the process runtime (/bin/true per step) — what a child process adds per step.
# Prints runs/s, journal transitions/s and the p50/p95/p99 delay from a step's completion to the start of the step
# that waited for it. No workflow engine can be installed here to run side by side, so the figures are compared
# with the targets (≥ 300 runs/s, p95 < 10 ms) and with Dapr Workflow's published 28–98 workflows/s.
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH_TOOLS="python3"
. bench/lib.sh

RUNS=${RUNS:-1000}
report() {
    python3 - "$1" "$2" <<'PY'
import json, sys
label, path = sys.argv[1], sys.argv[2]
r = json.load(open(path))
print(f"{label:34} {r['succeeded']}/{r['runs']} runs in {r['seconds']:.2f} s: {r['runsPerSecond']:7.1f} runs/s, "
      f"{r['transitionsPerSecond']:8.0f} transitions/s, step latency p50 {r['stepLatencyP50Milliseconds']:.2f} ms, "
      f"p95 {r['stepLatencyP95Milliseconds']:.2f} ms, p99 {r['stepLatencyP99Milliseconds']:.2f} ms")
print(f"{'':34} vs target 300 runs/s: {r['runsPerSecond']/300:.2f}x; vs Dapr's best published 98/s: {r['runsPerSecond']/98:.1f}x; "
      f"p95 {'under' if r['stepLatencyP95Milliseconds'] < 10 else 'OVER'} 10 ms")
PY
}
for spec in "noop 16" "noop 64" "process 16"; do
    set -- $spec
    "$WARDEN_DEV" bench-workflow --runtime "$1" --parallel "$2" --runs "$RUNS" --state "$WORK/$1-$2" >"$WORK/$1-$2.json"
    report "(${1}, ${2} runs in flight)" "$WORK/$1-$2.json"
done
