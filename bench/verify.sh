#!/usr/bin/env bash
# Verification benchmark: IMAGES images signed in a local registry (cosign .sig layout), then verified all at once
# by one `warden verify` process, against the floor: the same number of plain manifest fetches (GET) by one
# `warden digest --fetch` process with the same parallelism. Prints images per second and the ratio to the floor;
# the ratio to HEAD-only lookups (`warden digest`) is printed too.
#
#   bench/verify.sh               # 200 images, 3 alternating rounds
#   IMAGES=50 ROUNDS=1 bench/verify.sh
#
# Needs docker-registry and openssl (scripts/test.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGES=${IMAGES:-200}
ROUNDS=${ROUNDS:-3}
CONCURRENCY=${CONCURRENCY:-16}

BENCH_TOOLS="docker-registry openssl python3"
. bench/lib.sh

REG=$(start_registry verify)
openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null | openssl pkcs8 -topk8 -nocrypt -out "$WORK/k.pem"
openssl ec -in "$WORK/k.pem" -pubout -out "$WORK/k.pub" 2>/dev/null

echo "Pushing $IMAGES images signed by warden and $IMAGES signed by the independent cosign-format implementation..."
REFS=()
COSIGN_REFS=()
for i in $(seq 1 "$IMAGES"); do
    ref="$REG/bench/img$i:v1"
    "$WARDEN_DEV" testdata "$ref" --layers 1 --min-size 1KiB --max-size 4KiB --seed "$i" >/dev/null
    "$WARDEN" sign "$ref" --key "$WORK/k.pem" >/dev/null
    REFS+=("$ref")
    ref="$REG/bench/cosign$i:v1"
    "$WARDEN_DEV" testdata "$ref" --layers 1 --min-size 1KiB --max-size 4KiB --seed "$((i + 100000))" >/dev/null
    COSIGN_REFS+=("$ref")
done
# cosign's layout exactly (payload only in the blob, no embedded copy), written by Tests/Interop/cosign_sign.py.
"$WARDEN" digest "${COSIGN_REFS[@]}" >"$WORK/cosign-digests"
python3 - "$REG" "$WORK/k.pem" "$WORK/cosign-digests" <<'PY'
import sys
sys.path.insert(0, "Tests/Interop")
from cosign_sign import push
host, key, digests = sys.argv[1], sys.argv[2], open(sys.argv[3]).read().split()
for i, d in enumerate(digests, 1):
    push(host, f"bench/cosign{i}", d, key)
PY

# Sanity: every image verifies before anything is timed.
"$WARDEN" verify "${REFS[@]}" "${COSIGN_REFS[@]}" --key "$WORK/k.pub" --concurrency "$CONCURRENCY" >/dev/null

now() { date +%s.%N; }
elapsed() { python3 -c "print(f'{$2 - $1:.3f}')"; }

verify_times=()
floor_times=()
head_times=()
cosign_times=()
cosign_floor_times=()
for r in $(seq 1 "$ROUNDS"); do
    t0=$(now)
    "$WARDEN" digest --fetch "${COSIGN_REFS[@]}" --concurrency "$CONCURRENCY" >/dev/null
    t1=$(now)
    "$WARDEN" verify "${COSIGN_REFS[@]}" --key "$WORK/k.pub" --concurrency "$CONCURRENCY" >/dev/null
    t2=$(now)
    cosign_floor_times+=("$(elapsed "$t0" "$t1")")
    cosign_times+=("$(elapsed "$t1" "$t2")")
    t0=$(now)
    "$WARDEN" digest --fetch "${REFS[@]}" --concurrency "$CONCURRENCY" >/dev/null
    t1=$(now)
    "$WARDEN" verify "${REFS[@]}" --key "$WORK/k.pub" --concurrency "$CONCURRENCY" >/dev/null
    t2=$(now)
    "$WARDEN" digest "${REFS[@]}" --concurrency "$CONCURRENCY" >/dev/null
    t3=$(now)
    floor_times+=("$(elapsed "$t0" "$t1")")
    verify_times+=("$(elapsed "$t1" "$t2")")
    head_times+=("$(elapsed "$t2" "$t3")")
    echo "round $r: floor (GET) ${floor_times[-1]} s, verify ${verify_times[-1]} s, HEAD-only ${head_times[-1]} s;" \
        "cosign-written: floor ${cosign_floor_times[-1]} s, verify ${cosign_times[-1]} s"
done

python3 - "$IMAGES" "${floor_times[*]}" "${verify_times[*]}" "${head_times[*]}" "${cosign_floor_times[*]}" "${cosign_times[*]}" <<'PY'
import statistics, sys
n = int(sys.argv[1])
floor, verify, head, cfloor, cverify = ([float(x) for x in a.split()] for a in sys.argv[2:7])
f, v, h = statistics.median(floor), statistics.median(verify), statistics.median(head)
print(f"images: {n}")
print(f"floor (manifest GETs): median {f:.3f} s = {n / f:.0f} images/s")
print(f"HEAD-only lookups:     median {h:.3f} s = {n / h:.0f} images/s")
print(f"warden verify (cold):  median {v:.3f} s = {n / v:.0f} images/s")
print(f"ratio verify/floor: {v / f:.2f} (target <= 3.00); per round: " + ", ".join(f"{b / a:.2f}" for a, b in zip(floor, verify)))
print(f"ratio verify/HEAD-only: {v / h:.2f}")
cf, cv = statistics.median(cfloor), statistics.median(cverify)
print(f"signatures written in cosign's exact layout (payload fetched as a blob): verify median {cv:.3f} s = {n / cv:.0f} images/s,"
      f" ratio to floor {cv / cf:.2f}")
PY
