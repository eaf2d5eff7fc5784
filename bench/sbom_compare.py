"""Runs `warden sbom` and syft on the same OCI layouts, measures wall time, CPU time and peak memory of each
process (os.wait4), and compares the package sets by (type, name, version).

    python3 bench/sbom_compare.py WARDEN LAYOUT...
"""
import json
import os
import subprocess
import sys
import time

# syft's package types, as purl types.
SYFT_TYPES = {"deb": "deb", "python": "pypi", "go-module": "golang", "java-archive": "maven", "npm": "npm",
              "apk": "apk", "rpm": "rpm", "jenkins-plugin": "maven"}
ECOSYSTEMS = ["deb", "pypi", "npm", "golang", "maven", "apk", "rpm"]


def run(argv, out_path, env=None):
    start = time.perf_counter()
    with open(out_path, "wb") as out, open(out_path + ".err", "wb") as err:
        p = subprocess.Popen(argv, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{argv[0]} failed: {open(out_path + '.err').read()[-2000:]}")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss": usage.ru_maxrss / 1024}


def warden_set(path):
    doc = json.load(open(path))
    return {(p["type"], p["name"], p["version"]): p["locations"] for p in doc["packages"]}


def syft_set(path):
    doc = json.load(open(path))
    out = {}
    for a in doc["artifacts"]:
        t = SYFT_TYPES.get(a["type"], "other:" + a["type"])
        out[(t, a["name"], a["version"])] = [l["path"] for l in a["locations"]]
    return out


def main():
    warden, layouts = sys.argv[1], sys.argv[2:]
    env = dict(os.environ, SYFT_CHECK_FOR_APP_UPDATE="false")
    totals = {"warden": [0.0, 0.0, 0.0], "syft": [0.0, 0.0, 0.0]}
    per_eco = {e: [0, 0, 0] for e in ECOSYSTEMS}  # both, only warden, only syft
    other_syft = 0
    differences = []
    for layout in layouts:
        name = os.path.basename(layout.rstrip("/"))
        w = run([warden, "sbom", f"oci-layout:{layout}:latest", "-o", "warden-json"], f"/tmp/sbom-{name}-warden.json")
        s = run(["syft", f"oci-dir:{layout}", "-o", "json", "-q"], f"/tmp/sbom-{name}-syft.json", env)
        ws, ss = warden_set(f"/tmp/sbom-{name}-warden.json"), syft_set(f"/tmp/sbom-{name}-syft.json")
        print(f"{name}: warden {w['wall']:.2f} s wall, {w['cpu']:.2f} s CPU, {w['rss']:.0f} MiB peak; "
              f"syft {s['wall']:.2f} s wall, {s['cpu']:.2f} s CPU, {s['rss']:.0f} MiB peak; "
              f"packages warden {len(ws)}, syft {len(ss)}")
        for k, r in (("warden", w), ("syft", s)):
            totals[k][0] += r["wall"]
            totals[k][1] += r["cpu"]
            totals[k][2] = max(totals[k][2], r["rss"])
        for key in sorted(set(ws) | set(ss)):
            eco = key[0]
            if eco not in per_eco:
                other_syft += 1
                differences.append((name, "only syft (no Warden cataloger)", key, ss.get(key)))
                continue
            if key in ws and key in ss:
                per_eco[eco][0] += 1
            elif key in ws:
                per_eco[eco][1] += 1
                differences.append((name, "only warden", key, ws[key]))
            else:
                per_eco[eco][2] += 1
                differences.append((name, "only syft", key, ss[key]))
    print()
    print(f"{'ecosystem':10} {'both':>6} {'only-warden':>12} {'only-syft':>10} {'agreement':>10}")
    for e, (b, ow, os_) in per_eco.items():
        if b + ow + os_ == 0:
            continue
        print(f"{e:10} {b:6} {ow:12} {os_:10} {100 * b / (b + ow + os_):9.1f}%")
    if other_syft:
        print(f"{'(other)':10} {0:6} {0:12} {other_syft:10}   syft types Warden does not catalog")
    print()
    for name, side, key, where in differences:
        print(f"  {name}: {side}: {key[0]} {key[1]} {key[2]}  {', '.join(where or [])[:120]}")
    print()
    tw, ts = totals["warden"], totals["syft"]
    print(f"total wall: warden {tw[0]:.2f} s, syft {ts[0]:.2f} s -> syft/warden {ts[0] / tw[0]:.1f}x (target >= 3x)")
    print(f"total CPU:  warden {tw[1]:.2f} s, syft {ts[1]:.2f} s -> {ts[1] / tw[1]:.1f}x")
    print(f"peak memory: warden {tw[2]:.0f} MiB, syft {ts[2]:.0f} MiB -> warden/syft {tw[2] / ts[2]:.2f} (target <= 0.5)")


if __name__ == "__main__":
    main()
