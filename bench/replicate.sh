#!/usr/bin/env bash
# Replication benchmark: an estate of REPOS x TAGS images (two shared base layers, half the repositories signed,
# some with attestations) in one local registry, replicated into fresh registries by `warden replicate` (verifying
# the signed half, carrying signatures and attestations) and by `skopeo sync` (YAML source, same tags; it verifies
# and carries nothing), then both re-run with nothing changed. Run twice: straight from the loopback registry, and
# through a proxy adding LATENCY_MS (default 10) to every upstream request. Prints times and ratios.
#
#   bench/replicate.sh                     # 10 repositories x 3 tags = 30 images, 8 MiB bases, 2 MiB own layers
#   REPOS=4 TAGS=2 bench/replicate.sh
#
# Needs docker-registry, skopeo, openssl (scripts/test.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."

REPOS=${REPOS:-10}
TAGS=${TAGS:-3}
BASE_MIB=${BASE_MIB:-8}
OWN_MIB=${OWN_MIB:-2}

BENCH_TOOLS="docker-registry skopeo openssl python3"
. bench/lib.sh

SRC=$(start_registry upstream)

echo "Pushing $((REPOS * TAGS)) images ($REPOS repositories x $TAGS tags)..."
python3 bench/make_estate.py "$SRC" "$REPOS" "$TAGS" "$BASE_MIB" "$OWN_MIB"
openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null | openssl pkcs8 -topk8 -nocrypt -out "$WORK/k.pem"
openssl ec -in "$WORK/k.pem" -pubout -out "$WORK/k.pub" 2>/dev/null
echo '{"builder":{"id":"https://ci.example.com"}}' >"$WORK/provenance.json"

TAG_LIST=$(for t in $(seq 0 $((TAGS - 1))); do printf '"1.%s.0", ' "$t"; done | sed 's/, $//')
for r in $(seq 0 2 $((REPOS - 1))); do
    for t in $(seq 0 $((TAGS - 1))); do
        "$WARDEN" sign "$SRC/estate/app$r:1.$t.0" --key "$WORK/k.pem" >/dev/null
        [ "$t" -eq 0 ] && "$WARDEN" attest "$SRC/estate/app$r:1.$t.0" --key "$WORK/k.pem" --predicate "$WORK/provenance.json" --type slsaprovenance1 >/dev/null
    done
done

now() { date +%s.%N; }
elapsed() { python3 -c "print(f'{$2 - $1:.3f}')"; }

# scenario NAME UPSTREAM: both tools replicate from UPSTREAM into fresh registries, cold then unchanged.
scenario() {
    local name=$1 upstream=$2 w_dst s_dst
    w_dst=$(start_registry "warden-$name")
    s_dst=$(start_registry "skopeo-$name")
    {
        echo "apiVersion: warden.dev/v1"
        echo "kind: Replication"
        echo "defaults: {concurrency: ${CONCURRENCY:-8}}"
        echo "artifacts:"
    } >"$WORK/warden-$name.yaml"
    {
        echo "$upstream:"
        echo "  tls-verify: false"
        echo "  images:"
    } >"$WORK/skopeo-$name.yaml"
    for r in $(seq 0 $((REPOS - 1))); do
        local verify=false
        [ $((r % 2)) -eq 0 ] && verify="{authorities: {release: {key: $WORK/k.pub}}}"
        echo "  - {source: $upstream/estate/app$r, target: $w_dst/mirror/estate/app$r, tags: {exact: [$TAG_LIST]}, verify: $verify}" \
            >>"$WORK/warden-$name.yaml"
        echo "    estate/app$r: [$TAG_LIST]" >>"$WORK/skopeo-$name.yaml"
    done
    local t0 t1 t2 t3 t4
    t0=$(now)
    "$WARDEN" replicate -f "$WORK/warden-$name.yaml" --state "$WORK/state-$name" --output json >"$WORK/warden-$name-cold.json"
    t1=$(now)
    skopeo sync --src yaml --dest docker --dest-tls-verify=false --preserve-digests "$WORK/skopeo-$name.yaml" "$s_dst/mirror" \
        >"$WORK/skopeo.log" 2>&1 || { tail -5 "$WORK/skopeo.log"; exit 1; }
    t2=$(now)
    "$WARDEN" replicate -f "$WORK/warden-$name.yaml" --state "$WORK/state-$name" --output json >"$WORK/warden-$name-warm.json"
    t3=$(now)
    skopeo sync --src yaml --dest docker --dest-tls-verify=false --preserve-digests "$WORK/skopeo-$name.yaml" "$s_dst/mirror" \
        >"$WORK/skopeo.log" 2>&1 || { tail -5 "$WORK/skopeo.log"; exit 1; }
    t4=$(now)
    python3 - "$name" "$(elapsed "$t0" "$t1")" "$(elapsed "$t1" "$t2")" "$(elapsed "$t2" "$t3")" "$(elapsed "$t3" "$t4")" \
        "$WORK/warden-$name-cold.json" "$WORK/warden-$name-warm.json" "$((REPOS * TAGS))" <<'PY'
import json, sys
name = sys.argv[1]
wc, sc, ww, sw = (float(x) for x in sys.argv[2:6])
cold, warm = (json.load(open(p)) for p in sys.argv[6:8])
n = int(sys.argv[8])
moved = sum(i["bytesCopied"] for i in cold["items"]) / 1048576
mounted = sum(i["blobsMounted"] for i in cold["items"])
verified = sum(1 for i in cold["items"] if i["verifiedBy"])
atts = sum(len(i["attestations"]) for i in cold["items"])
refs = sum(i["referrersCopied"] + i["cosignTags"] for i in cold["items"])
print(f"[{name}] images: {n}; warden cold: {cold['counts']}, {moved:.0f} MiB moved, {mounted} blobs mounted, {verified} verified, "
      f"{atts} attestations verified, {refs} referrers/cosign tags carried; unchanged run: {warm['counts']}")
print(f"[{name}] cold:      warden {wc:.2f} s, skopeo sync {sc:.2f} s, skopeo/warden {sc / wc:.2f} (target >= 1.5)")
print(f"[{name}] unchanged: warden {ww:.2f} s, skopeo sync {sw:.2f} s, skopeo/warden {sw / ww:.2f} (target >= 10)")
PY
}

scenario loopback "$SRC"
# The same estate behind a proxy adding LATENCY_MS to every request: an upstream registry across a network.
LATENCY_MS=${LATENCY_MS:-10}
"$WARDEN_DEV" test-proxy --upstream "$SRC" --latency-ms "$LATENCY_MS" >"$WORK/proxy.addr" &
echo $! >>"$WORK/pids"
for _ in $(seq 50); do [ -s "$WORK/proxy.addr" ] && break; sleep 0.1; done
scenario "upstream+${LATENCY_MS}ms" "$(cat "$WORK/proxy.addr")"
