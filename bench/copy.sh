#!/usr/bin/env bash
# Copy benchmark: Warden vs skopeo on the same images between local registries, plus the destination registry's
# ingest floor (every blob uploaded straight from memory with maximal parallelism).
#
#   bench/copy.sh                 # 20 images x 3-5 layers of 1-20 MB
#   IMAGES=5 MAX_SIZE=8MiB bench/copy.sh
#
# Needs docker-registry and skopeo (scripts/test.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGES=${IMAGES:-20}
MIN_SIZE=${MIN_SIZE:-1MiB}
MAX_SIZE=${MAX_SIZE:-20MiB}
CONCURRENCY=${CONCURRENCY:-8}

BENCH_TOOLS="docker-registry skopeo python3"
. bench/lib.sh

SRC=$(start_registry src)

echo "Generating $IMAGES images (3-5 layers of $MIN_SIZE-$MAX_SIZE random data)..."
for i in $(seq 1 "$IMAGES"); do
    layers=$((3 + i % 3))
    "$WARDEN_DEV" testdata "oci-layout:$WORK/layout:img$i" --layers "$layers" --min-size "$MIN_SIZE" --max-size "$MAX_SIZE" --seed "$i" >/dev/null
    "$WARDEN" copy "oci-layout:$WORK/layout:img$i" "$SRC/bench/img$i:v1" >/dev/null
done
BYTES=$(du -sb "$WORK/layout/blobs" | cut -f1)
echo "Source: $(( BYTES / 1048576 )) MiB in $(ls "$WORK/layout/blobs/sha256" | wc -l) blobs"

now() { date +%s.%N; }
elapsed() { python3 -c "print(f'{$2 - $1:.2f}')"; }

run_warden() {
    for i in $(seq 1 "$IMAGES"); do
        "$WARDEN" copy --concurrency "$CONCURRENCY" "$SRC/bench/img$i:v1" "$DST_WARDEN/bench/img$i:v1" >/dev/null
    done
}
run_skopeo() {
    for i in $(seq 1 "$IMAGES"); do
        skopeo copy --quiet --preserve-digests --src-tls-verify=false --dest-tls-verify=false \
            "docker://$SRC/bench/img$i:v1" "docker://$DST_SKOPEO/bench/img$i:v1" >/dev/null
    done
}

# Cold copies: two rounds in the order skopeo, warden, warden, skopeo, each into a fresh registry; best of each.
SKOPEO_COLD=1e9; WARDEN_COLD=1e9
for tool in skopeo warden warden skopeo; do
    if [ "$tool" = skopeo ]; then DST_SKOPEO=$(start_registry "skopeo$RANDOM"); else DST_WARDEN=$(start_registry "warden$RANDOM"); fi
    sync; sleep 1
    t0=$(now); "run_$tool"; t1=$(now)
    echo "  cold $tool: $(elapsed "$t0" "$t1") s"
    if [ "$tool" = skopeo ]; then SKOPEO_COLD=$(python3 -c "print(min($SKOPEO_COLD, $t1 - $t0))"); else WARDEN_COLD=$(python3 -c "print(min($WARDEN_COLD, $t1 - $t0))"); fi
done
sync
# The floor: the best a fresh registry does at several levels of parallelism.
FLOOR=""
for c in 4 8 16 32; do
    reg=$(start_registry "floor$c")
    sync; sleep 1
    t0=$(now); "$WARDEN_DEV" bench-ingest "oci-layout:$WORK/layout" "$reg/bench/floor" --concurrency "$c" >/dev/null; t1=$(now)
    t=$(elapsed "$t0" "$t1")
    echo "  floor at concurrency $c: $t s"
    FLOOR=$(python3 -c "print(min(float('$t'), float('${FLOOR:-1e9}')))")
done
# Unchanged re-runs: three rounds, alternating the tools, best of each.
SKOPEO_WARM=1e9; WARDEN_WARM=1e9
for round in 1 2 3; do
    sync; sleep 1
    t0=$(now); run_skopeo; t1=$(now); SKOPEO_WARM=$(python3 -c "print(min($SKOPEO_WARM, $t1 - $t0))")
    t0=$(now); run_warden; t1=$(now); WARDEN_WARM=$(python3 -c "print(min($WARDEN_WARM, $t1 - $t0))")
done

# Every copied image must have the source digest.
for i in $(seq 1 "$IMAGES"); do
    a=$("$WARDEN" digest "$SRC/bench/img$i:v1"); b=$("$WARDEN" digest "$DST_WARDEN/bench/img$i:v1"); c=$("$WARDEN" digest "$DST_SKOPEO/bench/img$i:v1")
    [ "$a" = "$b" ] && [ "$a" = "$c" ] || { echo "digest mismatch for img$i: $a $b $c" >&2; exit 1; }
done

python3 - "$BYTES" "$SKOPEO_COLD" "$WARDEN_COLD" "$FLOOR" "$SKOPEO_WARM" "$WARDEN_WARM" <<'PY'
import sys
b, sc, wc, fl, sw, ww = int(sys.argv[1]), *map(float, sys.argv[2:])
mib = b / 1048576
print(f"\n{mib:.0f} MiB, times in seconds")
print(f"  cold     skopeo {sc:7.2f}  ({mib/sc:6.1f} MiB/s)   warden {wc:7.2f}  ({mib/wc:6.1f} MiB/s)   (best of 2)")
print(f"  floor    registry ingest from memory {fl:7.2f}  ({mib/fl:6.1f} MiB/s)")
print(f"  rerun    skopeo {sw:7.2f}   warden {ww:7.2f}   (best of 3)")
print(f"ratio cold   skopeo/warden = {sc/wc:.2f}   (target >= 1.25)")
print(f"ratio floor  warden/floor  = {wc/fl:.2f}   (target <= 1.20)")
print(f"ratio rerun  skopeo/warden = {sw/ww:.2f}   (target >= 1.50)")
PY
