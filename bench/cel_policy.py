"""The policy benchmark's shared work: ten rules, and an input with 500 SBOM components and 200 vulnerabilities.

`python3 bench/cel_policy.py write DIR` writes DIR/policy.yaml (a Warden policy document) and DIR/input.json.
`python3 bench/cel_policy.py celpy DIR ITERATIONS` evaluates the same ten expressions with cel-python (PyPI
`cel-python`) over the same input and prints JSON timings.
"""
import json
import random
import sys
import time

RULES = [
    ("signed-by-release-key", "deny", '!signatures.exists(s, s.verified && s.authority == "release")'),
    (
        "provenance-from-our-builder",
        "deny",
        '!attestations.exists(a, a.verified && a.predicateType == "https://slsa.dev/provenance/v1"'
        ' && a.predicate.runDetails.builder.id == "https://ci.example/builder")',
    ),
    (
        "no-open-critical",
        "deny",
        'vulnerabilities.exists(v, v.severity == "CRITICAL" && !(v.vex.status in ["not_affected", "fixed"]))',
    ),
    ("fixable-high", "warn", 'size(vulnerabilities.filter(v, v.cvss.score >= 7.0 && v.fixedVersion != "")) > 20'),
    ("no-gpl-3", "deny", 'sbom.components.exists(c, c.licenses.exists(l, l.startsWith("GPL-3.0")))'),
    ("purls-name-their-package", "warn", '!sbom.components.all(c, c.purl.startsWith("pkg:") && c.purl.contains(c.name))'),
    ("banned-packages", "deny", 'sbom.components.exists(c, c.name in ["log4j-core", "event-stream", "ua-parser-js-0.7.29"])'),
    ("pre-release-versions", "warn", 'sbom.components.exists(c, c.version.matches("^0\\\\.0\\\\.[0-9]+$"))'),
    ("image-age", "warn", 'now - timestamp(image.created) > duration("2160h")'),
    ("source-label", "warn", '!("org.opencontainers.image.source" in image.labels)'),
]

LICENSES = ["MIT", "Apache-2.0", "BSD-3-Clause", "LGPL-2.1-or-later", "ISC", "MPL-2.0", "GPL-2.0-only"]
TYPES = [("deb", "pkg:deb/debian/{n}@{v}?arch=amd64&distro=debian-12"), ("pypi", "pkg:pypi/{n}@{v}"),
         ("npm", "pkg:npm/{n}@{v}"), ("golang", "pkg:golang/github.com/acme/{n}@v{v}"), ("maven", "pkg:maven/org.acme/{n}@{v}")]


def make_input():
    rnd = random.Random(7)
    components = []
    for i in range(500):
        t, purl = TYPES[i % len(TYPES)]
        name = f"package-{i:03d}"
        version = f"{rnd.randint(1, 9)}.{rnd.randint(0, 30)}.{rnd.randint(0, 99)}"
        components.append({
            "type": t, "name": name, "version": version, "purl": purl.format(n=name, v=version),
            "licenses": rnd.sample(LICENSES, rnd.randint(1, 2)), "layer": f"sha256:{i % 4:064x}",
        })
    severities = ["CRITICAL", "HIGH", "MEDIUM", "LOW"]
    statuses = ["not_affected", "fixed", "under_investigation", "not_affected"]
    vulnerabilities = []
    for i in range(200):
        c = components[rnd.randrange(500)]
        sev = severities[i % 4]
        vulnerabilities.append({
            "id": f"CVE-2026-{10000 + i}", "aliases": [f"GHSA-{i:04d}-abcd-efgh"], "severity": sev,
            "cvss": {"score": {"CRITICAL": 9.8, "HIGH": 7.5, "MEDIUM": 5.3, "LOW": 2.1}[sev], "vector": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"},
            "package": {"name": c["name"], "version": c["version"], "purl": c["purl"], "type": c["type"]},
            "fixedVersion": "" if i % 3 == 0 else "99.0.0",
            # Every critical finding carries a VEX statement that sets it aside, so the whole list is scanned.
            "vex": {"status": "not_affected" if sev == "CRITICAL" else statuses[i % 4], "justification": "component_not_present"},
        })
    return {
        "image": {
            "reference": "registry.example.com/products/shop:1.4.2", "digest": "sha256:" + "ab" * 32,
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "annotations": {}, "layers": 4,
            "platform": {"os": "linux", "architecture": "amd64", "variant": None}, "created": "2026-11-01T08:00:00Z",
            "labels": {"org.opencontainers.image.source": "https://git.example/shop"}, "config": None,
        },
        "signatures": [{"verified": True, "authority": "release", "identity": None, "layout": "sig-tag",
                        "location": "sha256-ab.sig", "reason": None, "integratedTime": None}],
        "attestations": [{"predicateType": "https://slsa.dev/provenance/v1", "verified": True, "authority": "release",
                          "identity": None, "layout": "bundle-referrer", "location": "sha256:cd", "reason": None,
                          "integratedTime": None,
                          "predicate": {"runDetails": {"builder": {"id": "https://ci.example/builder"}}}}],
        "sbom": {"format": "warden-json", "components": components},
        "vulnerabilities": vulnerabilities,
        "now": "2026-11-26T12:00:00Z",
    }


def write(directory):
    with open(f"{directory}/input.json", "w") as f:
        json.dump(make_input(), f)
    with open(f"{directory}/policy.yaml", "w") as f:
        f.write("apiVersion: warden.dev/v1\nkind: Policy\nname: bench\nrules:\n")
        for name, effect, expr in RULES:
            f.write(f"  - name: {name}\n    {effect}: {json.dumps(expr)}\n")


def celpy_run(directory, iterations):
    import celpy
    import celpy.celtypes as ct

    with open(f"{directory}/input.json") as f:
        doc = json.load(f)
    env = celpy.Environment()
    start = time.perf_counter()
    programs = [(name, env.program(env.compile(expr))) for name, _, expr in RULES]
    parse = time.perf_counter() - start
    activation = {k: celpy.json_to_cel(v) for k, v in doc.items() if k != "now"}
    activation["now"] = ct.TimestampType(doc["now"])
    results = {}
    start = time.perf_counter()
    for _ in range(iterations):
        for name, prog in programs:
            results[name] = prog.evaluate(activation)
    elapsed = time.perf_counter() - start
    print(json.dumps({
        "iterations": iterations, "parseSecondsPerPolicy": parse, "evaluateSeconds": elapsed,
        "evaluationsPerSecond": iterations / elapsed,
        "fired": sorted(n for n, v in results.items() if isinstance(v, ct.BoolType) and bool(v)),
        "errors": sorted(f"{n}: {v}" for n, v in results.items() if not isinstance(v, ct.BoolType)),
    }))


if __name__ == "__main__":
    if sys.argv[1] == "write":
        write(sys.argv[2])
    else:
        celpy_run(sys.argv[2], int(sys.argv[3]))
