#!/usr/bin/env bash
# The trigger pipeline of `warden serve`, on the same machine in one run:
#   (a) throughput: wrk posts CNCF distribution notifications to a receiver for DURATION (2 threads, 16
#       connections), every push twice (a duplicate the server deduplicates); each distinct push selects a trigger
#       whose run is created by the dispatcher (the run pool drives them meanwhile, 16 at once). Deliveries/s and
#       distinct runs/s from the first request to the last run created (goal ≥ 2,000 events/s), against the same
#       server's floor for creating runs: wrk posting POST /api/v1/workspaces/default/runs (authorised, audited,
#       idempotency-free) for DURATION — the ratio is what receipt, dedup and dispatch cost on top of a run start;
#   (b) latency: a real docker-registry notifying the server; PUSHES tags pushed one after another with skopeo;
#       per push the registry's own delay (its event timestamp → receipt) and Warden's (receipt → run created,
#       receipt → first step started), p50/p95 (goal p95 < 50 ms of Warden's own time).
# DURATION (default 10s) and PUSHES (default 30) change the sizes.
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH_TOOLS="python3 wrk skopeo docker-registry"
. bench/lib.sh
trap 'exit 130' INT TERM

DURATION=${DURATION:-10s}
PUSHES=${PUSHES:-30}
REPORT=(python3 bench/triggers_report.py)
export HOOK_SECRET=bench-secret-$$
printf '%s\n' "$HOOK_SECRET" >"$WORK/hook-secret"
cat >"$WORK/triggers.yml" <<YAML
limits: {writesPerMinute: 100000000}
concurrency: 16
receivers:
  - {name: registry, format: distribution, registry: reg.example, secretFile: $WORK/hook-secret}
  - {name: local, format: distribution, secretFile: $WORK/hook-secret}
YAML
export SERVE_CONFIG=$WORK/triggers.yml
cat >"$WORK/on-push.yaml" <<'YAML'
apiVersion: warden.dev/v1
kind: Workflow
name: on-push
inputs:
  image: {type: string, default: none}
steps:
  - id: note
    uses: noop@v1
    with: {image: "${{ inputs.image }}"}
YAML
cat >"$WORK/every-push.yaml" <<'YAML'
apiVersion: warden.dev/v1
kind: Trigger
metadata: {name: every-push}
spec:
  source: {receivers: [registry, local]}
  selector: event.kind == 'registry.push'
  workflow: on-push
  inputs:
    image: '${{ event.subject.reference }}'
YAML

publish() { # KIND FILE
    curl -sf -o /dev/null -X POST -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/yaml' \
        --data-binary "@$2" "$BASE/api/v1/workspaces/default/$1" || { echo "triggers: publishing $2 failed" >&2; exit 1; }
}
now() { python3 -c 'import time; print(time.time())'; }
fmt() { python3 -c "import sys; print(f'{float(sys.argv[1]):,.1f}')" "$1"; }

# (a) throughput: deliveries with half duplicates, then the floor.
start_server events "$WORK/events" --init
publish workflows "$WORK/on-push.yaml"
publish triggers "$WORK/every-push.yaml"
t0=$(now)
wrk -t2 -c16 -d"$DURATION" -s bench/triggers.lua "$BASE" >"$WORK/wrk-events.txt"
t_sent=$(now)
requests=$(awk '/^requests /{print $2}' "$WORK/wrk-events.txt")
errors=$(awk '/^errors /{print $2}' "$WORK/wrk-events.txt")
distinct=$(python3 -c "print($requests // 2 + $requests % 2)")
"${REPORT[@]}" wait "$WORK/events/workflows.sqlite" "$distinct" 600 >/dev/null
t_done=$("${REPORT[@]}" settled "$WORK/events/workflows.sqlite")
counts=$("${REPORT[@]}" counts "$WORK/events/workflows.sqlite")
stop_server

start_server floor "$WORK/floor" --init
publish workflows "$WORK/on-push.yaml"
cat >"$WORK/runs.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"workflow":"on-push"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $TOKEN"
function done(summary, latency, requests)
    io.write(string.format("requests %d\nerrors %d\n", summary.requests, summary.errors.status + summary.errors.connect + summary.errors.read))
end
LUA
f0=$(now)
wrk -t2 -c16 -d"$DURATION" -s "$WORK/runs.lua" "$BASE/api/v1/workspaces/default/runs" >"$WORK/wrk-runs.txt"
f_done=$(now)
floor_requests=$(awk '/^requests /{print $2}' "$WORK/wrk-runs.txt")
floor_errors=$(awk '/^errors /{print $2}' "$WORK/wrk-runs.txt")
floor_runs=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['runs'])" "$("${REPORT[@]}" counts "$WORK/floor/workflows.sqlite")")
stop_server

# (b) latency: a real registry's notifications.
start_server latency "$WORK/latency" --init
publish workflows "$WORK/on-push.yaml"
publish triggers "$WORK/every-push.yaml"
host=$(REGISTRY_EXTRA="notifications:
  endpoints:
    - name: warden
      url: $BASE/api/v1/hooks/local
      headers: {Authorization: [Bearer $HOOK_SECRET]}
      timeout: 2s
      threshold: 3
      backoff: 200ms" start_registry registry)
"$WARDEN_DEV" testdata "oci-layout:$WORK/layout:img" --layers 1 --min-size 1KiB --max-size 4KiB --seed 1 >/dev/null
for i in $(seq "$PUSHES"); do
    skopeo copy -q --dest-tls-verify=false "oci:$WORK/layout:img" "docker://$host/team/app:t$i" >/dev/null
    sleep 0.2
done
"${REPORT[@]}" wait "$WORK/latency/workflows.sqlite" "$PUSHES" 120 >/dev/null
latency=$("${REPORT[@]}" latency "$WORK/latency/workflows.sqlite")
stop_server

python3 - "$requests" "$errors" "$t0" "$t_sent" "$t_done" "$counts" "$floor_requests" "$floor_errors" "$f0" "$f_done" "$floor_runs" "$latency" <<'PY'
import json, sys
(requests, errors, t0, t_sent, t_done, counts, floor_requests, floor_errors, f0, f_done, floor_runs, latency) = sys.argv[1:]
requests, errors, floor_requests, floor_errors, floor_runs = map(int, (requests, errors, floor_requests, floor_errors, floor_runs))
t0, t_sent, t_done, f0, f_done = map(float, (t0, t_sent, t_done, f0, f_done))
counts, latency = json.loads(counts), json.loads(latency)
span = max(t_done, t_sent) - t0
deliveries = requests / span
runs = counts.get("dispatched", 0) / span
floor = floor_runs / (f_done - f0)
print("(a) throughput, deliveries with half duplicates -> runs created")
print(f"    deliveries {requests:,} (errors {errors}), events {counts['events']:,}, dispatched {counts.get('dispatched', 0):,},"
      f" dead {counts.get('dead', 0)}, runs {counts['runs']:,}; {span:.1f} s from the first delivery to the last run created")
print(f"    {deliveries:,.0f} deliveries/s ({'meets' if deliveries >= 2000 else 'MISSES'} the 2,000 events/s goal), {runs:,.0f} distinct runs/s")
print(f"    floor: POST /runs through the same server, {floor_runs:,} runs in {f_done - f0:.1f} s = {floor:,.0f} runs/s (errors {floor_errors})")
print(f"    ratio: triggered runs/s / direct runs/s = {runs / floor:.2f}")
print(f"(b) latency over {latency['receipt_to_run_created']['n']} pushes to a real docker-registry")
r = latency["registry_delay"]
if r:
    print(f"    registry (push -> notification received): p50 {r['p50_ms']} ms, p95 {r['p95_ms']} ms, max {r['max_ms']} ms")
c = latency["receipt_to_run_created"]
print(f"    Warden (receipt -> run created): p50 {c['p50_ms']} ms, p95 {c['p95_ms']} ms, max {c['max_ms']} ms"
      f" ({'meets' if c['p95_ms'] < 50 else 'MISSES'} the p95 < 50 ms goal)")
s = latency["receipt_to_first_step_started"]
if s:
    print(f"    Warden (receipt -> first step started): p50 {s['p50_ms']} ms, p95 {s['p95_ms']} ms, max {s['max_ms']} ms")
PY
