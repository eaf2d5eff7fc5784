#!/usr/bin/env bash
# Builds realistic test images from Debian packages into OCI layouts (for bench/sbom.sh; not committed):
#   OUT/debian:     bookworm minbase (1 layer)
#   OUT/python:     + python3 and pip, and packages installed by pip (2 layers)
#   OUT/full:       + a Go program, Java libraries and npm with its node modules, from Debian packages (3 layers)
# Each image is its own layout with tag "latest". Needs root, debootstrap, umoci and network access to
# deb.debian.org and PyPI. Usage: scripts/build-test-images.sh [OUT] (default /tmp/warden-test-images).
set -euo pipefail
OUT=${1:-/tmp/warden-test-images}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
for tool in debootstrap umoci; do
    command -v "$tool" >/dev/null || { echo "build-test-images: $tool is missing (apt-get install debootstrap umoci)" >&2; exit 1; }
done
[ "$(id -u)" -eq 0 ] || { echo "build-test-images: run as root (debootstrap and chroot)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/warden-images.XXXXXX)
trap 'umount -l "$WORK/bundle/rootfs/proc" "$WORK/bundle/rootfs/dev" 2>/dev/null || true; rm -rf "$WORK"' EXIT
rm -rf "$OUT"
mkdir -p "$OUT"
L="$WORK/layout"
umoci init --layout "$L"
umoci new --image "$L:latest"
umoci unpack --image "$L:latest" "$WORK/bundle"
R="$WORK/bundle/rootfs"

snapshot() {  # snapshot NAME: commit the rootfs as a layer and copy the layout out as OUT/NAME
    umoci repack --image "$L:latest" "$WORK/bundle"
    cp -a "$L" "$OUT/$1"
    umoci gc --layout "$OUT/$1"  # not in the working layout: repack needs the manifest the bundle came from
    echo "built $OUT/$1"
}

echo "debootstrap bookworm (minbase)..."
debootstrap --variant=minbase bookworm "$R" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 || { tail -20 "$WORK/debootstrap.log"; exit 1; }
rm -rf "$R"/var/cache/apt/archives/*.deb "$R"/var/lib/apt/lists/*
snapshot debian

in_root() { chroot "$R" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive HOME=/root "$@"; }
mount -t proc proc "$R/proc"
mount --bind /dev "$R/dev"
cp /etc/resolv.conf "$R/etc/resolv.conf"

echo "python3, pip and packages from PyPI..."
in_root apt-get update -qq
in_root apt-get install -y -qq --no-install-recommends python3 python3-pip python3-yaml >/dev/null
# The host's CA bundle, for networks that inspect TLS; removed before the layer is committed.
cp /etc/ssl/certs/ca-certificates.crt "$R/tmp/host-ca.crt"
in_root pip install --quiet --no-cache-dir --break-system-packages --cert /tmp/host-ca.crt \
    requests==2.31.0 click==8.1.7 Jinja2==3.1.3 attrs==23.2.0 packaging==24.0
rm -f "$R/tmp/host-ca.crt"
in_root apt-get clean
rm -rf "$R"/var/lib/apt/lists/*
umount -l "$R/proc" "$R/dev"
snapshot python

echo "a Go program, Java libraries and npm (with its node modules) from Debian packages..."
mount -t proc proc "$R/proc"
mount --bind /dev "$R/dev"
in_root apt-get update -qq
in_root apt-get install -y -qq --no-install-recommends age libcommons-lang3-java libcommons-io-java libslf4j-java npm >/dev/null
in_root apt-get clean
rm -rf "$R"/var/lib/apt/lists/*
umount -l "$R/proc" "$R/dev"
snapshot full
du -sh "$OUT"/*
