#!/usr/bin/env bash
# The control plane (`warden serve`) against the engine it serves, on the same work in one run:
#   (a) 1,000 runs of the demo's three-steps workflow (noop@v1 one → two → three, Sources/WardenServer/Demo.swift)
#       started through the API (POST /api/v1/workspaces/default/runs with a bearer token: authenticated, authorised
#       and audited; 16 requests in flight, the server driving 16 runs at once) until none is unfinished, against the
#       same 1,000 runs started and driven in process (`warden-dev bench-workflow --definition`, 16 at once):
#       runs/s of each and what the API costs (goal ≤ 1.5×);
#   (b) read latency over 100,000 finished runs (seeded straight into workflows.sqlite after the server created the
#       schema): wrk, 10 s, 2 threads, 8 connections, on the first page of runs, a page 50,000 runs deep (its cursor
#       taken by walking the pages once) and one run (GET runs/{id} folds its journal); p50/p99 and req/s (goal
#       p99 < 20 ms), each after 2 s of warm-up. Every request is authorised and writes an audit entry
#       (group-committed, fsynced): that is part of the figure, and GET /api/v1/whoami (that and nothing else) shows
#       its floor;
#   (c) VmRSS of the server idle right after start on an empty state (goal < 40 MiB), after (a) with 1,000 runs stored,
#       and after (b)'s read load over 100,000 runs; each split into RssAnon (heap, stacks) and RssFile (pages of the
#       binary mapped in).
# (a) runs ROUNDS times (default 2, alternating) and keeps the best of each side. The server runs with
# `limits: {writesPerMinute: 1000000}` and `concurrency: 16`. RUNS, SEEDED, DURATION (wrk's -d) and ROUNDS change
# the sizes.
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH_TOOLS="python3 wrk"
. bench/lib.sh
trap 'exit 130' INT TERM

RUNS=${RUNS:-1000}
SEEDED=${SEEDED:-100000}
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-2}
IN_FLIGHT=16
API=(python3 bench/serve_api.py)

cat >"$WORK/serve.yml" <<'YAML'
limits: {writesPerMinute: 1000000}
concurrency: 16
YAML
"${API[@]}" workflow three-steps >"$WORK/three-steps.yaml"

# VmRSS, RssAnon (the heap and stacks) and RssFile (mapped pages of the binary and libraries), KiB.
rss_kib() { awk '/^(VmRSS|RssAnon|RssFile):/ {printf "%s ", $2} END {print ""}' "/proc/$PID/status"; }

# (a) and (c): ROUNDS rounds, each of the same work on fresh state, in process then through the API; the best of each
# counts (the machine may be busy with other work).
for round in $(seq "$ROUNDS"); do
    echo "(a) round $round: $RUNS runs in process..."
    "$WARDEN_DEV" bench-workflow --definition "$WORK/three-steps.yaml" --parallel "$IN_FLIGHT" --runs "$RUNS" \
        --state "$WORK/inproc-$round" >"$WORK/inproc-$round.json"
    echo "(a) round $round: $RUNS runs through the API..."
    start_server "api-$round" "$WORK/api-$round" --init
    sleep 1
    rss_kib >"$WORK/rss-idle-$round"
    "${API[@]}" publish "$BASE" "$TOKEN" "$WORK/three-steps.yaml"
    "${API[@]}" start "$BASE" "$TOKEN" "$RUNS" "$IN_FLIGHT" >"$WORK/api-$round.json"
    rss_kib >"$WORK/rss-runs-$round"
    stop_server
    python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT count(*) FROM audit").fetchone()[0])' \
        "$WORK/api-$round/workflows.sqlite" >"$WORK/api-audit-$round"
done

echo "(b) seeding $SEEDED finished runs..."
start_server schema "$WORK/reads" --init
stop_server
"${API[@]}" seed "$WORK/reads/workflows.sqlite" "$SEEDED" "$WORK/three-steps.yaml" >"$WORK/seed.json"
start_server reads "$WORK/reads"
DEEP=$("${API[@]}" cursor "$BASE" "$TOKEN" $((SEEDED / 2)))
ONE=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["middle"])' "$WORK/seed.json")
bench_get() {
    local name=$1 path=$2
    echo "(b) wrk $DURATION (after 2 s not counted): GET $path"
    wrk -t2 -c8 -d2s -H "Authorization: Bearer $TOKEN" "$BASE$path" >/dev/null
    wrk -t2 -c8 -d"$DURATION" --latency -H "Authorization: Bearer $TOKEN" "$BASE$path" >"$WORK/wrk-$name.txt"
    "${API[@]}" wrk "$WORK/wrk-$name.txt" >"$WORK/wrk-$name.json"
}
# The floor of every authorised request: authentication, the authorisation decision and its audit entry, no store
# read behind it.
bench_get whoami "/api/v1/whoami"
bench_get first "/api/v1/workspaces/default/runs?limit=50"
bench_get deep "/api/v1/workspaces/default/runs?limit=50&cursor=$DEEP"
bench_get one "/api/v1/workspaces/default/runs/$ONE"
rss_kib >"$WORK/rss-reads"
stop_server

python3 - "$WORK" "$RUNS" "$SEEDED" "$IN_FLIGHT" "$ROUNDS" <<'PY'
import json, sys
work, runs, seeded, in_flight, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
load = lambda name: json.load(open(f"{work}/{name}.json"))
rss = lambda name: [int(v) / 1024 for v in open(f"{work}/rss-{name}").read().split()]
mib = lambda name: rss(name)[0]
parts = lambda name: f"heap and stacks {rss(name)[1]:.1f} MiB, mapped files {rss(name)[2]:.1f} MiB"
for r in range(1, rounds + 1):
    for label, name in (("API", f"api-{r}"), ("in process", f"inproc-{r}")):
        if load(name)["succeeded"] != runs:
            sys.exit(f"serve: {label} round {r}: {load(name)['succeeded']} of {runs} runs succeeded ({load(name).get('statuses', '')})")
apis = [load(f"api-{r}") for r in range(1, rounds + 1)]
inprocs = [load(f"inproc-{r}") for r in range(1, rounds + 1)]
api = max(apis, key=lambda r: r["runsPerSecond"])
inproc = max(inprocs, key=lambda r: r["runsPerSecond"])
best = apis.index(api) + 1
audit = int(open(f"{work}/api-audit-{best}").read())
each = lambda rs: ", ".join(f"{r['runsPerSecond']:.0f}" for r in rs)
ratio = inproc["runsPerSecond"] / api["runsPerSecond"]
rows = [
    (f"(a) {runs} runs through the API, {in_flight} in flight", f"{api['runsPerSecond']:8.1f} runs/s",
     f"rounds {each(apis)}; {api['seconds']:.2f} s, POST p50 {api['postP50Milliseconds']:.1f} ms, p99 {api['postP99Milliseconds']:.1f} ms, "
     f"{audit} audit entries"),
    (f"(a) {runs} runs in process, {in_flight} at once", f"{inproc['runsPerSecond']:8.1f} runs/s",
     f"rounds {each(inprocs)}; {inproc['seconds']:.2f} s, step latency p50 {inproc['stepLatencyP50Milliseconds']:.2f} ms, "
     f"p99 {inproc['stepLatencyP99Milliseconds']:.2f} ms"),
    ("(a) API cost: in process / API (best of each)", f"{ratio:8.2f}x", "goal ≤ 1.5x: " + ("met" if ratio <= 1.5 else "MISSED")),
]
for name, label in (("whoami", "GET whoami (authn + audited authz only)"), ("first", "GET runs?limit=50 (first page)"), ("deep", f"GET runs?limit=50&cursor (after {seeded // 2:,})"),
                    ("one", "GET runs/{id} (journal folded)")):
    w = load(f"wrk-{name}")
    errors = f"; {w['errors']} ERRORS" if w["errors"] else ""
    goal = "" if name == "whoami" else "; goal p99 < 20 ms: " + ("met" if w["p99"] < 20 else "MISSED")
    rows.append((f"(b) {label}", f"p50 {w['p50']:6.2f} ms", f"p99 {w['p99']:6.2f} ms, {w['rps']:6.0f} req/s over {seeded:,} runs{goal}{errors}"))
idle = [mib(f"idle-{r}") for r in range(1, rounds + 1)]
rows += [
    ("(c) RSS idle right after start, empty state", f"{idle[0]:8.1f} MiB",
     "goal < 40 MiB: " + ("met" if idle[0] < 40 else "MISSED") + f"; {parts('idle-1')}"
     + (f"; rounds {', '.join(f'{v:.1f}' for v in idle)}" if rounds > 1 else "")),
    (f"(c) RSS after (a), {runs} runs stored", f"{mib('runs-1'):8.1f} MiB", parts("runs-1")),
    (f"(c) RSS after (b)'s reads, {seeded:,} runs", f"{mib('reads'):8.1f} MiB", parts("reads")),
]
print()
for a, b, c in rows:
    print(f"{a:48} {b:>16}   {c}".rstrip())
PY
