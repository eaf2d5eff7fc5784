#!/usr/bin/env python3
"""A synthetic osv.dev dump for the vulnerability database benchmarks.

    bench/scan_db.py N OUT [--dir]

Writes OUT/all.zip (one `<id>.json` entry per record, deflated, as osv.dev publishes them) and OUT/modified_id.csv
(`modified,id`, newest first); with --dir also OUT/records/<id>.json. The N records are the real OSV records of
Tests/VulnerabilityTests/Data/osv (JSON and, when PyYAML is installed, YAML) replicated with synthetic ids,
modified times and package names (each template's packages get 5,000 name variants, so lookups spread over many
keys), keeping the templates' real sizes and shapes. Deterministic: the same N gives the same dump.
"""
import glob
import json
import os
import sys
import zipfile
from datetime import datetime, timedelta, timezone

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "VulnerabilityTests", "Data", "osv")


def templates():
    out = []
    for path in sorted(glob.glob(os.path.join(ROOT, "**", "*.json"), recursive=True)):
        with open(path) as f:
            out.append(json.load(f))
    try:
        import yaml

        for path in sorted(glob.glob(os.path.join(ROOT, "**", "*.yaml"), recursive=True)):
            with open(path) as f:
                # Versions stay strings as written (Warden reads YAML scalars as written).
                out.append(json.loads(json.dumps(yaml.load(f, Loader=yaml.BaseLoader))))
    except ImportError:
        pass
    # Records that name packages, of typical sizes (osv.dev's median record is about 2 KB).
    return [t for t in out if t.get("affected") and 500 <= len(json.dumps(t)) <= 5000]


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 2:
        sys.exit(__doc__)
    n, out = int(args[0]), args[1]
    write_dir = "--dir" in sys.argv
    os.makedirs(out, exist_ok=True)
    if write_dir:
        os.makedirs(os.path.join(out, "records"), exist_ok=True)
    base = templates()
    start = datetime(2020, 1, 1, tzinfo=timezone.utc)
    modified = []
    total = 0
    with zipfile.ZipFile(os.path.join(out, "all.zip"), "w", zipfile.ZIP_DEFLATED) as z:
        for i in range(n):
            r = json.loads(json.dumps(base[i % len(base)]))
            prefix = r["id"].split("-")[0]
            r["id"] = f"{prefix}-SYN-{i:07d}"
            r["modified"] = (start + timedelta(seconds=i * 60)).strftime("%Y-%m-%dT%H:%M:%SZ")
            r.pop("withdrawn", None)
            for a in r["affected"]:
                if "package" in a:
                    a["package"]["name"] = f"{a['package']['name']}-syn{(i // len(base)) % 5000}"
                    a["package"].pop("purl", None)
            text = json.dumps(r, indent=2)
            total += len(text)
            z.writestr(r["id"] + ".json", text)
            if write_dir:
                with open(os.path.join(out, "records", r["id"] + ".json"), "w") as f:
                    f.write(text)
            modified.append((r["modified"], r["id"]))
    with open(os.path.join(out, "modified_id.csv"), "w") as f:
        for m, i in reversed(modified):
            f.write(f"{m},{i}\n")
    print(f"{n} records from {len(base)} templates, {total / max(n, 1):.0f} bytes each on average, {total / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
