"""Prediction recording: predictions/s made durable by a real server (issue 7).

Run with `make bench` (or `.venv/bin/python bench/predictions.py --help`). Starts `seismo
serve` on a free loopback port with its own data directory, registers a classifier and:

1. HTTP API: PREDICTIONS predictions with FEATURES features each (numeric and
   categorical), pre-encoded as JSON requests of BATCH items, sent by CLIENTS threads;
   each reply comes once its records are fsync'd. Predictions/s = all of them / wall time.
2. Outcomes for all of them through the same API, in the same batches.
3. The client helper: HELPERS `ModelMonitor`s in threads, each `record()`ing its share
   one by one (the caller's cost per call is printed), then `flush()`; predictions/s =
   all of them / time until the last one was acknowledged.

Then the metrics and drift queries over everything recorded, and a check that the
server holds every prediction it acknowledged. Request encoding is not timed in (1).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import msgspec
import numpy as np

from ingest import ROOT, machine, start_seismo  # bench/ingest.py
from seismo.client import ModelMonitor

MODEL = "bench"


def make_items(count: int, features: int, start: int, seed: int) -> list[dict[str, object]]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(count, features)).round(4)
    plans = np.array(["free", "pro", "team", "enterprise"])[rng.integers(0, 4, count)]
    latency = rng.gamma(2.0, 2.0, count).round(3)
    prob = 1 / (1 + np.exp(-x[:, 0]))
    items = []
    for i in range(count):
        feats: dict[str, object] = {f"f{j}": float(x[i, j]) for j in range(features - 1)}
        feats["plan"] = str(plans[i])
        items.append({"id": f"p{start + i}", "features": feats, "prediction": int(prob[i] > 0.5),
                      "probability": float(round(prob[i], 4)), "latency_ms": float(latency[i])})
    return items


def send(url: str, path: str, bodies: list[bytes], clients: int) -> tuple[float, list[float]]:
    """POST every body from `clients` threads; (wall seconds, per-request seconds)."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    next_body = iter(range(len(bodies)))

    def worker() -> None:
        with httpx.Client(base_url=url, timeout=60,
                          headers={"Content-Type": "application/json"}) as http:
            while True:
                with lock:
                    i = next(next_body, None)
                if i is None:
                    return
                t0 = time.perf_counter()
                reply = http.post(path, content=bodies[i])
                while reply.status_code == 429:
                    time.sleep(float(reply.headers.get("Retry-After", "1")))
                    reply = http.post(path, content=bodies[i])
                with lock:
                    latencies.append(time.perf_counter() - t0)
                    if reply.status_code != 200:
                        errors.append(reply.text[:200])

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    if errors:
        raise SystemExit(f"{len(errors)} requests failed, e.g. {errors[0]}")
    return wall, latencies


def helper_run(url: str, total: int, helpers: int, features: int,
               batch: int) -> dict[str, float]:
    shares = [make_items(total // helpers, features, 10_000_000 * (k + 1), seed=k + 10)
              for k in range(helpers)]
    monitors = [ModelMonitor(url, None, MODEL, "v2", batch_size=batch, max_queue=total)
                for _ in range(helpers)]
    call_s: list[float] = []
    lock = threading.Lock()

    def caller(monitor: ModelMonitor, items: list[dict[str, object]]) -> None:
        t0 = time.perf_counter()
        for item in items:
            monitor.record(str(item["id"]), item["features"], item["prediction"],  # type: ignore[arg-type]
                           probability=item["probability"], latency_ms=item["latency_ms"])  # type: ignore[arg-type]
        with lock:
            call_s.append((time.perf_counter() - t0) / len(items))
        monitor.flush(timeout_s=300)

    started = time.perf_counter()
    threads = [threading.Thread(target=caller, args=(m, s))
               for m, s in zip(monitors, shares, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    sent = sum(m.sent for m in monitors)
    dropped = sum(m.dropped + m.rejected for m in monitors)
    for m in monitors:
        m.close()
    return {"wall_s": wall, "sent": sent, "dropped": dropped,
            "call_us": statistics.mean(call_s) * 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--predictions", type=int, default=400_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--helpers", type=int, default=2)
    parser.add_argument("--helper-predictions", type=int, default=200_000)
    parser.add_argument("--features", type=int, default=10)
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="seismo-bench-predictions-"))
    work.mkdir(parents=True, exist_ok=True)
    server = start_seismo(work)
    url = server.base
    try:
        with httpx.Client(base_url=url + "/api/v1", timeout=60) as http:
            for version in ("v1", "v2"):
                http.post("/models", json={"name": MODEL, "version": version,
                                           "task": "classification"}).raise_for_status()
            items = make_items(args.predictions, args.features, 0, seed=1)
            chunks = [items[i:i + args.batch] for i in range(0, len(items), args.batch)]
            bodies = [msgspec.json.encode({"version": "v1", "items": c}) for c in chunks]
            cpu0 = server.cpu_s()
            wall, lat = send(url, f"/api/v1/models/{MODEL}/predictions", bodies, args.clients)
            cpu_pred = server.cpu_s() - cpu0
            rng = np.random.default_rng(3)
            outcome_bodies = [msgspec.json.encode({"items": [
                {"id": it["id"], "actual": int(rng.random() < 0.5)} for it in c]})
                for c in chunks]
            wall_out, lat_out = send(url, f"/api/v1/models/{MODEL}/outcomes", outcome_bodies,
                                     args.clients)
            helper = helper_run(url, args.helper_predictions, args.helpers, args.features,
                                args.batch)
            t0 = time.perf_counter()
            metrics = http.get(f"/models/{MODEL}/metrics", params={"version": "v1",
                                                                    "window": "1d"}).json()
            metrics_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            drift = http.get(f"/models/{MODEL}/drift", params={"version": "v1",
                                                                "window": "1d"}).json()
            assert drift["current"]["predictions"] == args.predictions, drift["current"]
            drift_s = time.perf_counter() - t0
            held = {v["version"]: v["predictions_total"]
                    for v in http.get(f"/models/{MODEL}").json()["versions"]}
    finally:
        server.stop()
    p = np.array(lat) * 1000
    figures = {
        "predictions": args.predictions, "batch": args.batch, "clients": args.clients,
        "features": args.features,
        "api_predictions_per_s": round(args.predictions / wall),
        "api_request_ms_p50": round(float(np.percentile(p, 50)), 1),
        "api_request_ms_p99": round(float(np.percentile(p, 99)), 1),
        "server_cpu_s_per_100k": round(cpu_pred / args.predictions * 100_000, 2),
        "api_outcomes_per_s": round(args.predictions / wall_out),
        "outcome_request_ms_p50": round(float(np.percentile(np.array(lat_out) * 1000, 50)), 1),
        "helper_predictions": args.helper_predictions, "helpers": args.helpers,
        "helper_predictions_per_s": round(helper["sent"] / helper["wall_s"]),
        "helper_record_call_us": round(helper["call_us"], 2),
        "helper_dropped": helper["dropped"],
        "metrics_query_ms": round(metrics_s * 1000, 1),
        "drift_query_ms": round(drift_s * 1000, 1),
        "metrics_predictions": metrics["predictions"], "accuracy": metrics["accuracy"],
        "held_v1": held.get("v1"), "held_v2": held.get("v2"),
        "machine": machine(), "work_dir": str(work),
    }
    ok = held.get("v1") == args.predictions and held.get("v2") == helper["sent"]
    if args.json:
        print(json.dumps(figures))
    else:
        print(f"HTTP API: {args.predictions:,} predictions x {args.features} features, "
              f"batches of {args.batch}, {args.clients} clients")
        print(f"  {figures['api_predictions_per_s']:,} predictions/s durable; request p50 "
              f"{figures['api_request_ms_p50']} ms, p99 {figures['api_request_ms_p99']} ms; "
              f"server CPU {figures['server_cpu_s_per_100k']} s per 100k")
        print(f"  outcomes: {figures['api_outcomes_per_s']:,}/s (request p50 "
              f"{figures['outcome_request_ms_p50']} ms)")
        print(f"client helper: {args.helper_predictions:,} predictions from {args.helpers} "
              f"ModelMonitors: {figures['helper_predictions_per_s']:,} predictions/s "
              f"acknowledged; record() {figures['helper_record_call_us']} us per call; "
              f"dropped {figures['helper_dropped']}")
        print(f"queries over {metrics['predictions']:,} predictions: metrics "
              f"{figures['metrics_query_ms']} ms, drift {figures['drift_query_ms']} ms")
        print(f"held by the server: v1 {held.get('v1'):,}, v2 {held.get('v2'):,} "
              f"({'all acknowledged' if ok else 'MISSING PREDICTIONS'})")
        print(f"machine: {figures['machine']}; logs in {work}")
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "bench"))
    main()
