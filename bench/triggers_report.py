#!/usr/bin/env python3
"""The reading side of bench/triggers.sh (standard library only), over a server's workflows.sqlite.

    bench/triggers_report.py counts DB                 JSON: events, dispatches by status, runs
    bench/triggers_report.py wait DB N TIMEOUT         wait until N dispatches are dispatched and none is pending;
                                                       prints the seconds waited (the time of the last run created
                                                       is read by `settled`)
    bench/triggers_report.py settled DB                the creation time of the last run (epoch seconds)
    bench/triggers_report.py latency DB                JSON: per registry push, the registry's delay (event
                                                       timestamp -> receipt) and Warden's (receipt -> run created,
                                                       receipt -> first step started), p50/p95/max in ms
"""
import json
import sqlite3
import sys
import time
from datetime import datetime, timezone


def ts(text):
    """GRDB's dates ("2026-12-02 05:10:11.123", UTC) and RFC 3339 ("2026-12-02T05:10:11.123456Z")."""
    text = text.replace("T", " ").rstrip("Z")
    if "+" in text[10:]:
        text = text[: text.index("+", 10)]
    fmt = "%Y-%m-%d %H:%M:%S.%f" if "." in text else "%Y-%m-%d %H:%M:%S"
    if "." in text:
        head, frac = text.split(".")
        text = head + "." + frac[:6]
    return datetime.strptime(text, fmt).replace(tzinfo=timezone.utc).timestamp()


def connect(path):
    c = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    return c


def counts(path):
    c = connect(path)
    out = {"events": c.execute("select count(*) from triggerEvent").fetchone()[0]}
    for status, n in c.execute("select status, count(*) from dispatch group by status"):
        out[status] = n
    out["runs"] = c.execute("select count(*) from run").fetchone()[0]
    return out


def percentile(values, p):
    values = sorted(values)
    if not values:
        return None
    k = (len(values) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def summary(values):
    return {
        "p50_ms": round(percentile(values, 50) * 1000, 2),
        "p95_ms": round(percentile(values, 95) * 1000, 2),
        "max_ms": round(max(values) * 1000, 2),
        "n": len(values),
    }


def latency(path):
    c = connect(path)
    registry, created, started = [], [], []
    rows = c.execute(
        "select e.event, e.receivedAt, r.createdAt, r.id from dispatch d join triggerEvent e on e.id = d.event "
        "join run r on r.id = d.run where d.status = 'dispatched'"
    ).fetchall()
    for event, received, run_created, run in rows:
        occurred = json.loads(event)["source"].get("occurredAt")
        rec = ts(received)
        if occurred:
            registry.append(max(0.0, rec - ts(occurred)))
        created.append(ts(run_created) - rec)
        first = c.execute(
            "select at from journal where run = ? and type = 'attempt.started' order by seq limit 1", (run,)
        ).fetchone()
        if first:
            started.append(ts(first[0]) - rec)
    return {
        "registry_delay": summary(registry) if registry else None,
        "receipt_to_run_created": summary(created),
        "receipt_to_first_step_started": summary(started) if started else None,
    }


def main():
    cmd = sys.argv[1]
    if cmd == "counts":
        print(json.dumps(counts(sys.argv[2])))
    elif cmd == "wait":
        path, n, timeout = sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
        start = time.time()
        while time.time() - start < timeout:
            c = counts(path)
            if c.get("dispatched", 0) >= n and c.get("pending", 0) == 0:
                print(round(time.time() - start, 3))
                return
            time.sleep(0.05)
        sys.exit(f"not settled after {timeout} s: {counts(path)}")
    elif cmd == "settled":
        c = connect(sys.argv[2])
        print(ts(c.execute("select max(createdAt) from run").fetchone()[0]))
    elif cmd == "latency":
        print(json.dumps(latency(sys.argv[2])))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
