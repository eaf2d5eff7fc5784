#!/usr/bin/env bash
# Vulnerability scanning benchmarks.
#
# import_bench: `warden db import` of a synthetic osv.dev all.zip (bench/scan_db.py: real OSV records replicated
# under synthetic ids and package names, typical sizes) into an empty database, then the same archive again with its
# modified_id.csv (nothing changed: no entry is opened). Prints records/s, CPU time and peak memory of each, against
# the target of 20,000 records/s. IMPORT_RECORDS sets the size (default 200,000).
#
# scan_bench: `warden scan` of the full test image's SBOM against 200,000 and 20,000 records (see below).
#
#   bench/scan.sh [import|scan]   (default both; TEST_IMAGES: where scripts/build-test-images.sh wrote the images, default /tmp/warden-test-images)
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


# scan_bench: `warden scan` of the full test image's SBOM (scripts/build-test-images.sh builds the image; its
# CycloneDX SBOM is written by `warden sbom`) against a 200,000-record database and against one ten times smaller.
# Both databases hold the same records about the image's packages (bench/scan_records.py: one per package, a third
# of them affecting the installed version), padded with bench/scan_db.py's synthetic records; a scan that looked at
# every advisory would be ten times slower against the larger one. Prints wall time and peak memory of each scan
# (the median of SCAN_RUNS, default 5) and the ratio, against the targets (0.5 s, 150 MiB, ≤ 1.5× for 10× records).
scan_bench() {
    local images=${TEST_IMAGES:-/tmp/warden-test-images}
    if [ ! -d "$images/full" ]; then
        echo "scan_bench: $images/full is missing (sudo scripts/build-test-images.sh $images)" >&2
        return 1
    fi
    "$WARDEN" sbom "oci-layout:$images/full:latest" -o warden-json="$WORK/full.json" -o cyclonedx-json="$WORK/full.cdx.json"
    local image_records
    image_records=$(python3 bench/scan_records.py "$WORK/full.json" "$WORK/image-records")
    for total in 200000 20000; do
        python3 bench/scan_db.py $((total - image_records)) "$WORK/pad-$total" >/dev/null
        "$WARDEN" db import "$WORK/pad-$total/all.zip" "$WORK/image-records" --state "$WORK/scan-$total" >/dev/null
    done
    python3 - "$WARDEN" "$WORK" "${SCAN_RUNS:-5}" <<'PY'
import json, resource, statistics, subprocess, sys, time
warden, work, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
result = {}
for total in (200000, 20000):
    walls, peaks = [], []
    for _ in range(runs):
        t0 = time.monotonic()
        p = subprocess.run(["/usr/bin/time", "-f", "%M", warden, "scan", f"sbom:{work}/full.cdx.json", "--state", f"{work}/scan-{total}",
                            "-o", f"json={work}/scan-{total}.json"], capture_output=True, text=True)
        walls.append(time.monotonic() - t0)
        if p.returncode != 0:
            sys.exit(f"scan failed ({p.returncode}): {p.stderr}")
        peaks.append(int(p.stderr.strip().splitlines()[-1]) / 1024)
    report = json.load(open(f"{work}/scan-{total}.json"))
    result[total] = statistics.median(walls)
    print(f"scan, {total:>7} records: {statistics.median(walls):6.3f} s wall (median of {runs}), {max(peaks):5.0f} MiB peak, "
          f"{len(report['packages'])} packages, {len(report['findings'])} findings, {report['database']['records']} records in the database")
print(f"200,000 vs 20,000 records: {result[200000] / result[20000]:.2f}x the time for 10x the records (goal <= 1.5x); "
      f"vs target 0.5 s: {result[200000] / 0.5:.2f}x")
PY
}

case "${1:-all}" in
import) import_bench ;;
scan) scan_bench ;;
*) import_bench; scan_bench ;;
esac
