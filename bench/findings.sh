#!/usr/bin/env bash
# The compliance engine at scale (issue: findings and compliance). One process builds the estate on the SQLite store
# `warden serve` keeps — COMPONENTS components × 10 repositories × 10 versions = 10,000 artefact versions of 100
# findings each (1,000,000 findings; every version scanned through the compliance plane, discovery dates carried
# over) and 10,000 rescorings of all four scopes (a fifth expiring) — then measures:
#   (a) every finding's effective category and due date (goal < 5 s), against the same work done by comparing each
#       finding with every rescoring (timed on a sample, extrapolated; both must agree on the sample);
#   (b) p50/p99 of a component's compliance summary (10,000 findings) and an artefact's (goal p99 < 50 ms);
#   (c) p50/p99 of a filtered findings page: a component's vulnerabilities, its HIGH findings (an effective filter),
#       a repository's findings (goal p99 < 50 ms);
#   (d) the store's size on disk once closed.
# COMPONENTS (default 100) scales the estate; ITERATIONS (default 300) the latency samples.
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH_TOOLS="python3"
. bench/lib.sh

COMPONENTS=${COMPONENTS:-100}
ITERATIONS=${ITERATIONS:-300}
echo "Building the estate ($COMPONENTS components) and measuring..."
"$WARDEN_DEV" bench-findings --state "$WORK/state" --components "$COMPONENTS" --iterations "$ITERATIONS" >"$WORK/findings.json"
python3 bench/findings_report.py "$WORK/findings.json" "$WORK/state/workflows.sqlite"
