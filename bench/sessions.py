"""Sessions at scale: 10,000 concurrent active sessions, 100 events/s (issue 13).

Run with `make bench` (or `.venv/bin/python bench/sessions.py --help`). A real server
(no collector) first gets a history of finished sessions of four kinds (so every running
session has a completion estimate and a success probability), then ACTIVE sessions are
opened; the RSS it grew by, divided by ACTIVE, is the memory per active session. Then,
for DURATION seconds, one thread posts RATE events/s (progress events, errors, and ends
matched by new starts so that ACTIVE stay open) in batches every 100 ms, while another
times the list view (`GET /sessions?state=active`, and sorted by duration), the detail
view (`GET /sessions/{id}`) of random sessions and the stats view, one request at a time.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from ingest import machine, start_seismo  # bench/ingest.py

KINDS = {"chat": 45.0, "train": 240.0, "etl": 90.0, "eval": 60.0}
USERS = ("ana", "bo", "cy", "dee")


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def post(http: httpx.Client, events: list[dict[str, Any]]) -> float:
    t0 = time.perf_counter()
    http.post("/events", json={"events": events}).raise_for_status()
    return time.perf_counter() - t0


def history(http: httpx.Client, count: int, rng: random.Random, now: int) -> None:
    events: list[dict[str, Any]] = []
    for i in range(count):
        kind = rng.choice(list(KINDS))
        start = now - rng.randrange(600_000, 3_600_000)
        duration = int(KINDS[kind] * rng.lognormvariate(0, 0.4) * 1000)
        sid = f"h{i}"
        events += [{"type": "session.start", "timestamp": start,
                    "attributes": {"session": sid, "kind": kind, "user": rng.choice(USERS)}},
                   {"type": "session.end", "timestamp": start + duration,
                    "attributes": {"session": sid,
                                   "status": "success" if rng.random() < 0.8 else "failure"}}]
        if len(events) >= 1000:
            post(http, events)
            events = []
    if events:
        post(http, events)


def start_event(sid: str, rng: random.Random) -> dict[str, Any]:
    return {"type": "session.start", "attributes": {
        "session": sid, "kind": rng.choice(list(KINDS)), "user": rng.choice(USERS),
        "model": rng.choice(("small", "large"))}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--active", type=int, default=10_000)
    parser.add_argument("--history", type=int, default=2_000)
    parser.add_argument("--rate", type=float, default=100.0, help="events/s during the load")
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="seismo-bench-sessions-"))
    work.mkdir(parents=True, exist_ok=True)
    server = start_seismo(work)
    rng = random.Random(1)
    try:
        with httpx.Client(base_url=server.base + "/api/v1", timeout=60) as http:
            now = int(time.time() * 1000)
            history(http, args.history, rng, now)
            http.get("/sessions", params={"limit": 100}).raise_for_status()
            time.sleep(6)  # a refresh: the success model is fitted on the history
            rss0 = server.rss()
            t0 = time.perf_counter()
            ids = [f"a{i}" for i in range(args.active)]
            for i in range(0, len(ids), 1000):
                post(http, [start_event(sid, rng) for sid in ids[i:i + 1000]])
            open_s = time.perf_counter() - t0
            time.sleep(6)  # a refresh with every session active (series written)
            rss1 = server.rss()
            stop = threading.Event()
            post_lat: list[float] = []
            sent = [0]
            next_id = [args.active]

            def load() -> None:
                per_batch = max(1, round(args.rate / 10))
                with httpx.Client(base_url=server.base + "/api/v1", timeout=60) as client:
                    tick = time.perf_counter()
                    while not stop.is_set():
                        batch: list[dict[str, Any]] = []
                        for _ in range(per_batch):
                            sid = rng.choice(ids)
                            r = rng.random()
                            if r < 0.05:  # an end, and a new session in its place
                                batch.append({"type": "session.end", "attributes": {
                                    "session": sid, "status": rng.choice(("success",
                                                                          "failure"))}})
                                new = f"a{next_id[0]}"
                                next_id[0] += 1
                                ids[ids.index(sid)] = new
                                batch.append(start_event(new, rng))
                            elif r < 0.15:
                                batch.append({"type": "tool_error", "severity": "high",
                                              "attributes": {"session": sid}})
                            else:
                                batch.append({"type": "step", "attributes": {"session": sid}})
                        post_lat.append(post(client, batch))
                        sent[0] += len(batch)
                        tick += 0.1
                        time.sleep(max(0.0, tick - time.perf_counter()))

            loader = threading.Thread(target=load, daemon=True)
            cpu0 = server.cpu_s()
            started = time.perf_counter()
            loader.start()
            lat: dict[str, list[float]] = {"list": [], "list_by_duration": [], "detail": [],
                                           "stats": []}
            views = [("list", "/sessions", {"state": "active", "limit": 100}),
                     ("list_by_duration", "/sessions", {"sort": "duration", "limit": 100}),
                     ("stats", "/sessions/stats", {})]
            i = 0
            while time.perf_counter() - started < args.duration:
                name, path, params = views[i % 3]
                if i % 2:
                    name, path, params = "detail", f"/sessions/{rng.choice(ids)}", {}
                t0 = time.perf_counter()
                http.get(path, params=params).raise_for_status()
                lat[name].append(time.perf_counter() - t0)
                i += 1
            stop.set()
            loader.join(timeout=30)
            elapsed = time.perf_counter() - started
            cpu = server.cpu_s() - cpu0
            page = http.get("/sessions", params={"state": "active", "limit": 1}).json()
            assert page["sessions"], "no active session"
    finally:
        server.stop()
    result = {
        "active_sessions": args.active, "history": args.history,
        "open_sessions_per_s": round(args.active / open_s, 1),
        "memory_per_active_session_bytes": round((rss1 - rss0) / args.active),
        "events_per_s": round(sent[0] / elapsed, 1),
        "post_events_ms": {"p50": round(pct(post_lat, 50) * 1000, 2),
                           "p99": round(pct(post_lat, 99) * 1000, 2)},
        "server_cpu_share": round(cpu / elapsed, 3),
        "views_ms": {k: {"n": len(v), "p50": round(pct(v, 50) * 1000, 2),
                         "p99": round(pct(v, 99) * 1000, 2),
                         "mean": round(statistics.fmean(v) * 1000, 2) if v else None}
                     for k, v in lat.items()},
        "machine": machine(), "work_dir": str(work),
    }
    print("| view | requests | p50 ms | p99 ms |\n|---|---|---|---|")
    for name, v in result["views_ms"].items():
        print(f"| {name} | {v['n']} | {v['p50']} | {v['p99']} |")
    print(f"\n{args.active} active sessions opened at {result['open_sessions_per_s']}/s; "
          f"memory per active session {result['memory_per_active_session_bytes']} bytes "
          f"(RSS {rss0 / 2**20:.0f} → {rss1 / 2**20:.0f} MiB)")
    print(f"load: {result['events_per_s']} events/s, POST /events p50 "
          f"{result['post_events_ms']['p50']} ms p99 {result['post_events_ms']['p99']} ms; "
          f"server CPU {result['server_cpu_share']:.0%} of a core")
    print(f"machine: {result['machine']}")
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
