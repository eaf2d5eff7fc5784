#!/usr/bin/env python3
"""The client side of bench/serve.sh (standard library only).

    bench/serve_api.py workflow NAME                    the demo's workflow NAME (Sources/WardenServer/Demo.swift) as YAML
    bench/serve_api.py publish BASE TOKEN FILE          publish FILE in workspace default
    bench/serve_api.py start BASE TOKEN RUNS IN_FLIGHT  start RUNS runs of three-steps, IN_FLIGHT requests at once, and wait
                                                        until none is unfinished; prints JSON (runs/s, POST latencies)
    bench/serve_api.py seed DB RUNS DEFINITION_FILE     insert RUNS finished runs (row + 14-entry journal each) into DB
    bench/serve_api.py cursor BASE TOKEN DEPTH          walk the run pages once; print the cursor after DEPTH runs
    bench/serve_api.py wrk FILE                         wrk --latency output as JSON (p50, p99 in ms, req/s, errors)

BASE is http://127.0.0.1:PORT; every request carries the bearer TOKEN (so each is authorised and audited).
"""
import http.client
import json
import os
import random
import re
import sqlite3
import sys
import threading
import time
import urllib.parse
from datetime import datetime, timedelta, timezone

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
RUNS = "/api/v1/workspaces/default/runs"


def demo_workflow(name):
    text = open(os.path.join(ROOT, "Sources", "WardenServer", "Demo.swift")).read()
    for block in re.findall(r'"""\n(.*?)\n\s*"""', text, re.S):
        lines = block.split("\n")
        indent = len(lines[0]) - len(lines[0].lstrip())
        doc = "\n".join(line[indent:] for line in lines) + "\n"
        if re.search(rf"^name: {re.escape(name)}$", doc, re.M):
            return doc
    sys.exit(f"no workflow {name} in Demo.swift")


class Client:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, base, token):
        u = urllib.parse.urlsplit(base)
        self.host, self.port = u.hostname, u.port
        self.headers = {"Authorization": f"Bearer {token}"}
        self.conn = None

    def request(self, method, path, body=None, content_type="application/json"):
        headers = dict(self.headers)
        if body is not None:
            headers["Content-Type"] = content_type
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
            try:
                self.conn.request(method, path, body=body, headers=headers)
                r = self.conn.getresponse()
                data = r.read()
                return r.status, data
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise

    def json(self, method, path, body=None, expect=(200,), content_type="application/json"):
        status, data = self.request(method, path, body, content_type)
        if status not in expect:
            sys.exit(f"{method} {path}: HTTP {status}: {data[:300]!r}")
        return json.loads(data)


def pct(sorted_values, p):
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * p))] if sorted_values else 0.0


def start(base, token, runs, in_flight):
    lock = threading.Lock()
    state = {"next": 0, "failed": None}
    latencies = []

    def worker():
        c = Client(base, token)
        mine = []
        while True:
            with lock:
                if state["next"] >= runs or state["failed"]:
                    break
                state["next"] += 1
            t = time.perf_counter()
            status, data = c.request("POST", RUNS, b'{"workflow":"three-steps"}')
            mine.append(time.perf_counter() - t)
            if status != 201:
                with lock:
                    state["failed"] = f"POST {RUNS}: HTTP {status}: {data[:300]!r}"
        with lock:
            latencies.extend(mine)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(in_flight)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if state["failed"]:
        sys.exit(state["failed"])
    posted = time.perf_counter() - t0
    c = Client(base, token)
    polls = 0
    while True:
        polls += 1
        page = c.json("GET", RUNS + "?status=queued,running,waiting&limit=1")
        if not page["runs"]:
            break
        time.sleep(0.01)
    seconds = time.perf_counter() - t0
    # Count every finished run by its status, a page at a time (after the clock stopped).
    counts, cursor = {}, None
    while True:
        page = c.json("GET", RUNS + "?limit=500" + (f"&cursor={cursor}" if cursor else ""))
        for r in page["runs"]:
            counts[r["status"]] = counts.get(r["status"], 0) + 1
        cursor = page.get("next")
        if not cursor:
            break
    latencies.sort()
    print(json.dumps({
        "runs": runs, "succeeded": counts.get("succeeded", 0), "statuses": counts, "seconds": seconds,
        "postSeconds": posted, "runsPerSecond": runs / seconds, "polls": polls,
        "postP50Milliseconds": pct(latencies, 0.5) * 1000, "postP99Milliseconds": pct(latencies, 0.99) * 1000,
    }))


def seed(db, runs, definition_file):
    """Finished runs as the engine leaves them: the run row and the journal of three succeeded no-op steps."""
    definition = open(definition_file).read()
    con = sqlite3.connect(db, timeout=30)
    con.execute("PRAGMA synchronous = OFF")
    base = datetime.now(timezone.utc) - timedelta(days=3)
    rng = random.Random(7)

    def stamp(t):
        return t.strftime("%Y-%m-%d %H:%M:%S.") + f"{t.microsecond // 1000:03d}"

    run_rows, journal_rows = [], []
    for i in range(runs):
        created = base + timedelta(milliseconds=10 * i)
        ms = int(created.timestamp() * 1000)
        rid = f"{ms:x}{rng.getrandbits(24):06x}"
        finished = stamp(created + timedelta(milliseconds=5))
        at = stamp(created + timedelta(milliseconds=2))
        run_rows.append((rid, "three-steps", "default/three-steps@1", definition, "{}", None, None, "succeeded", "{}", None, None,
                         stamp(created), finished, "default", '{"seed":"bench"}'))
        journal_rows.append((rid, "run.created", None, None, None, '{"inputs":{}}', stamp(created)))
        for step in ("one", "two", "three"):
            journal_rows += [
                (rid, "step.started", step, None, None, "{}", at),
                (rid, "attempt.started", step, 0, 1, json.dumps({"key": f"{rid}/{step}/1"}, separators=(",", ":")), at),
                (rid, "attempt.finished", step, 0, 1, '{"status":"succeeded","outputs":{},"artifacts":{}}', at),
                (rid, "step.finished", step, None, None, '{"status":"succeeded","outputs":{}}', at),
            ]
        journal_rows.append((rid, "run.finished", None, None, None, '{"status":"succeeded","outputs":{}}', finished))
    with con:
        con.executemany(
            "INSERT INTO run (id, workflow, file, definition, inputs, idempotencyKey, parent, status, outputs, error, owner, createdAt, "
            "updatedAt, workspace, labels) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", run_rows)
        con.executemany("INSERT INTO journal (run, type, step, item, attempt, data, at) VALUES (?, ?, ?, ?, ?, ?, ?)", journal_rows)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    n = con.execute("SELECT count(*) FROM run").fetchone()[0]
    j = con.execute("SELECT count(*) FROM journal").fetchone()[0]
    con.close()
    print(json.dumps({"runs": n, "journal": j, "middle": run_rows[runs // 2][0]}))


def cursor(base, token, depth):
    c = Client(base, token)
    seen, cur = 0, None
    while seen < depth:
        page = c.json("GET", RUNS + f"?limit={min(500, depth - seen)}" + (f"&cursor={cur}" if cur else ""))
        seen += len(page["runs"])
        cur = page.get("next")
        if not cur:
            sys.exit(f"only {seen} runs: no cursor after {depth}")
    print(cur)


def wrk(path):
    text = open(path).read()

    def ms(label):
        m = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
        if not m:
            sys.exit(f"{path}: no {label}% latency in wrk's output:\n{text}")
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]

    rps = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    total = re.search(r"^\s*(\d+) requests in", text, re.M)
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    print(json.dumps({
        "p50": ms("50"), "p90": ms("90"), "p99": ms("99"), "rps": float(rps.group(1)) if rps else 0.0,
        "requests": int(total.group(1)) if total else 0,
        "errors": (int(bad.group(1)) if bad else 0) + (sum(int(g) for g in sock.groups()) if sock else 0),
    }))


def main():
    a = sys.argv[1:]
    if a[:1] == ["workflow"] and len(a) == 2:
        sys.stdout.write(demo_workflow(a[1]))
    elif a[:1] == ["publish"] and len(a) == 4:
        body = open(a[3], "rb").read()
        Client(a[1], a[2]).json("POST", "/api/v1/workspaces/default/workflows", body, expect=(200, 201), content_type="application/yaml")
    elif a[:1] == ["start"] and len(a) == 5:
        start(a[1], a[2], int(a[3]), int(a[4]))
    elif a[:1] == ["seed"] and len(a) == 4:
        seed(a[1], int(a[2]), a[3])
    elif a[:1] == ["cursor"] and len(a) == 4:
        cursor(a[1], a[2], int(a[3]))
    elif a[:1] == ["wrk"] and len(a) == 2:
        wrk(a[1])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
