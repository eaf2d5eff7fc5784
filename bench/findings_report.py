#!/usr/bin/env python3
"""Prints bench/findings.sh's figures against the issue's goals: bench-findings' JSON and the store file."""
import json
import os
import sys

r = json.load(open(sys.argv[1]))
db = sys.argv[2]
size = sum(os.path.getsize(db + s) for s in ("", "-wal", "-shm") if os.path.exists(db + s))

def verdict(value, goal):
    return f"{value / goal:.2f}x the goal: {'met' if value < goal else 'MISSED'}"

print(f"estate: {r['artefacts']:,} artefact versions, {r['findings']:,} findings ({r['openFindings']:,} open), "
      f"{r['rescorings']:,} rescorings")
print(f"ingest: {r['ingestSeconds']:.1f} s — {r['scansPerSecond']:.0f} scans/s, {r['findingsPerSecond']:,.0f} findings/s; "
      f"rescorings made in {r['rescoreSeconds']:.1f} s")
cats = ", ".join(f"{k} {v:,}" for k, v in sorted(r["effectiveByCategory"].items()))
print(f"(a) effective category and due date of every finding: {r['effectiveSeconds']:.2f} s (goal 5 s; "
      f"{verdict(r['effectiveSeconds'], 5)}); {r['rescoredFindings']:,} decided by a rescoring; {cats}")
naive = r["naiveExtrapolatedSeconds"]
print(f"    every finding against every rescoring: {r['naiveSampleSeconds']:.2f} s for {r['naiveSample']:,} findings, "
      f"{naive:,.0f} s extrapolated to all — {naive / r['effectiveSeconds']:,.0f}x slower; answers agree: {r['naiveAgrees']}")
for label, key in [("(b) component summary", "componentSummaryMs"), ("    artefact summary", "artefactSummaryMs"),
                   ("(c) page: component's vulnerabilities", "pageMs"), ("    page: component's HIGH findings", "pageByCategoryMs"),
                   ("    page: repository's findings", "pageByRepositoryMs")]:
    p = r[key]
    print(f"{label:40} p50 {p['p50']:6.1f} ms, p95 {p['p95']:6.1f} ms, p99 {p['p99']:6.1f} ms, max {p['max']:6.1f} ms "
          f"(goal p99 50 ms: {verdict(p['p99'], 50)})")
print(f"    a component summary covers {r['componentSummaryFindings']:,} open findings")
print(f"(d) store on disk: {size / 1e6:,.0f} MB, {size / max(1, r['findings']):.0f} bytes per finding")
