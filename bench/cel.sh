#!/usr/bin/env bash
# Policy benchmark: a realistic policy (10 CEL rules over an input with 500 SBOM components and 200
# vulnerabilities; bench/cel_policy.py writes both) evaluated ITERATIONS times in one Warden process, and the same
# ten expressions over the same input with cel-python (PyPI `cel-python`) in one Python process. Prints
# evaluations per second of each, the ratio, and the cost of parsing versus evaluating. Both must reach the same
# decisions (the benchmark stops if they do not).
#
#   bench/cel.sh                          # 10,000 Warden evaluations, 5 cel-python evaluations
#   ITERATIONS=1000 CELPY_ITERATIONS=2 bench/cel.sh
#
# cel-python takes about 1.5 s per evaluation of this policy here, so it runs fewer iterations; throughput is
# compared per evaluation.
set -euo pipefail
cd "$(dirname "$0")/.."

ITERATIONS=${ITERATIONS:-10000}
CELPY_ITERATIONS=${CELPY_ITERATIONS:-5}

python3 -c "import celpy" 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check cel-python
BENCH_TOOLS="python3"
. bench/lib.sh

python3 bench/cel_policy.py write "$WORK"
echo "Input: $(wc -c <"$WORK/input.json") bytes of JSON (500 SBOM components, 200 vulnerabilities); 10 rules."

echo "Warden: $ITERATIONS evaluations..."
"$WARDEN_DEV" bench-policy --policy "$WORK/policy.yaml" --input "$WORK/input.json" --iterations "$ITERATIONS" >"$WORK/warden.json"
echo "cel-python $(python3 -c 'import importlib.metadata as m; print(m.version("cel-python"))'): $CELPY_ITERATIONS evaluations..."
python3 bench/cel_policy.py celpy "$WORK" "$CELPY_ITERATIONS" >"$WORK/celpy.json"

python3 - "$WORK/warden.json" "$WORK/celpy.json" <<'PY'
import json, sys
w = json.load(open(sys.argv[1]))
c = json.load(open(sys.argv[2]))
wf = sorted(f.split(":")[0] for f in w["fired"])
if c["errors"] or wf != c["fired"]:
    sys.exit(f"decisions differ: warden fired {wf}, cel-python fired {c['fired']} (errors: {c['errors']})")
print(f"rules fired (both): {', '.join(wf) or 'none'}")
print(f"{'':12} {'evaluations/s':>14} {'ms/evaluation':>14} {'parse ms/policy':>16}")
for name, r in (("warden", w), ("cel-python", c)):
    print(f"{name:12} {r['evaluationsPerSecond']:14.2f} {1000 / r['evaluationsPerSecond']:14.3f} {1000 * r['parseSecondsPerPolicy']:16.3f}")
print(f"warden: parsing the policy (YAML + 10 expressions) costs {w['parseSecondsPerPolicy'] / (1 / w['evaluationsPerSecond']):.3f} evaluations; "
      f"reading the input JSON {1000 * w['inputParseSeconds']:.2f} ms")
print(f"throughput ratio (warden / cel-python): {w['evaluationsPerSecond'] / c['evaluationsPerSecond']:.0f}x (target: at least 20x)")
PY
