#!/usr/bin/env python3
"""OSV records about the packages of an image, for the scan benchmark.

    bench/scan_records.py INVENTORY.json OUT_DIR

INVENTORY.json is `warden sbom … -o warden-json`. For every package one record is written to OUT_DIR/<id>.json, in
the ecosystem the scanner looks it up in (Debian:12 source packages, PyPI, npm, Go, Maven), with realistic ranges:
every third record affects the installed version (fixed in a later one), the others were fixed before it or are
scoped to another Debian release — so the scan does real range evaluation on every package, not only lookups that
miss. Deterministic.
"""
import json
import os
import sys


def ecosystem(p):
    t = p["type"]
    if t == "deb":
        m = p.get("metadata", {})
        return "Debian:12", m.get("source", p["name"]), m.get("sourceVersion", p["version"])
    if t == "pypi":
        return "PyPI", p["name"], p["version"]
    if t == "npm":
        return "npm", p["name"], p["version"]
    if t == "golang":
        return "Go", p["name"], p["version"]
    if t == "maven":
        group = p.get("metadata", {}).get("groupId", "")
        return "Maven", (group + ":" if group else "") + p["name"], p["version"]
    return None


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    inventory = json.load(open(sys.argv[1]))
    out = sys.argv[2]
    os.makedirs(out, exist_ok=True)
    n = 0
    for i, p in enumerate(inventory["packages"]):
        e = ecosystem(p)
        if e is None:
            continue
        eco, name, version = e
        kind = i % 3
        if kind == 0:
            # Affects the installed version: fixed in a later one (the version with a suffix that sorts after it).
            fixed = version + ("+deb12u99" if eco.startswith("Debian") else ".post99" if eco == "PyPI" else "-z99")
            if eco in ("npm", "Go", "Maven"):
                fixed = "99.0.0"
        elif kind == 1:
            fixed = "0.0.1" if eco != "Debian:12" else "0.0.1-1"
        else:
            eco = "Debian:11" if eco.startswith("Debian") else eco
            fixed = "0.0.2"
        rid = f"BENCH-{i:06d}"
        record = {
            "schema_version": "1.6.0", "id": rid, "modified": "2026-11-30T00:00:00Z", "published": "2026-01-01T00:00:00Z",
            "aliases": [f"CVE-2026-{100000 + i}"],
            "summary": f"A benchmark advisory for {name}",
            "details": "Synthetic record about a package of the benchmark image; ranges as real records write them.",
            "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"}],
            "affected": [{
                "package": {"ecosystem": eco, "name": name},
                "ranges": [{"type": "ECOSYSTEM" if eco != "Go" else "SEMVER", "events": [{"introduced": "0"}, {"fixed": fixed}]}],
            }],
            "references": [{"type": "ADVISORY", "url": f"https://example.org/advisories/{rid}"}],
        }
        with open(os.path.join(out, rid + ".json"), "w") as f:
            json.dump(record, f)
        n += 1
    print(n)


if __name__ == "__main__":
    main()
