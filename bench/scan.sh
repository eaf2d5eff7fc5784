#!/usr/bin/env bash
# Vulnerability scanning benchmarks.
#
# import_bench: `warden db import` of a synthetic osv.dev all.zip (bench/scan_db.py: real OSV records replicated
# under synthetic ids and package names, typical sizes) into an empty database, then the same archive again with its
# modified_id.csv (nothing changed: no entry is opened). Prints records/s, CPU time and peak memory of each, against
# the target of 20,000 records/s. IMPORT_RECORDS sets the size (default 200,000).
#
#   bench/scan.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH_TOOLS="python3"
. bench/lib.sh

import_bench() {
    local n=${IMPORT_RECORDS:-200000}
    python3 bench/scan_db.py "$n" "$WORK/osv"
    mkdir -p "$WORK/osv-cold"
    cp "$WORK/osv/all.zip" "$WORK/osv-cold/all.zip"
    run_import() {
        local label=$1 path=$2
        python3 - "$label" "$n" "$WARDEN" "$path" "$WORK/state" <<'PY'
import json, resource, subprocess, sys, time
label, n, warden, path, state = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
u0 = resource.getrusage(resource.RUSAGE_CHILDREN)
t0 = time.monotonic()
p = subprocess.run([warden, "db", "import", path, "--state", state, "--json"], capture_output=True, text=True)
wall = time.monotonic() - t0
if p.returncode != 0:
    sys.exit(f"{label}: warden db import failed ({p.returncode}): {p.stderr}")
r = json.loads(p.stdout)
u = resource.getrusage(resource.RUSAGE_CHILDREN)
c = r["counts"]
print(f"{label:28} {wall:6.2f} s wall, {u.ru_utime + u.ru_stime - u0.ru_utime - u0.ru_stime:6.2f} s CPU, {u.ru_maxrss / 1024:5.0f} MB peak: "
      f"{n / wall:8.0f} records/s ({r['read']} read, {c['inserted']} inserted, {c['unchanged']} unchanged, "
      f"{r['skippedUnchanged']} skipped unchanged, {r['malformedCount']} malformed)")
if r["read"] == n:
    print(f"{'':28} vs target 20,000 records/s: {n / wall / 20000:.2f}x")
PY
    }
    # The first import has no modified_id.csv beside it: every entry is read.
    run_import "import (cold, $n records)" "$WORK/osv-cold/all.zip"
    ls -l "$WORK/state/vulnerabilities.sqlite" | awk '{printf "%-28s %.1f MB database\n", "", $5 / 1e6}'
    # Again with the csv: osv.dev's incremental path, nothing has changed.
    run_import "re-import with the csv" "$WORK/osv/all.zip"
}

import_bench
