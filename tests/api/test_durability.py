"""What seismo acknowledged survives kill -9; a full queue answers 429 and loses nothing."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import uvicorn

from seismo.api.app import create_app
from seismo.config import load_settings
from seismo.engine import Engine
from tests.server import ServerProcess, free_port


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def total_count(url: str, selector: str, start: int, end: int) -> int:
    reply = httpx.get(url + "/api/v1/query_range", params={
        "selector": selector, "start": str(start), "end": str(end), "step": "1d", "agg": "count"})
    assert reply.status_code == 200, reply.text
    return int(sum(v for s in reply.json()["series"] for v in s["values"] if v))


def test_kill_9_right_after_replies_loses_no_acknowledged_sample(tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path / "data", "--no-collector").start()
    t0 = now_ms() - 30 * 60_000
    rng = np.random.default_rng(1)

    def push(client_no: int) -> int:
        acknowledged = 0
        with httpx.Client(base_url=srv.url + "/api/v1", timeout=30) as http:
            for b in range(15):
                series = [{
                    "metric": "crash_metric", "labels": {"c": str(client_no), "s": str(s)},
                    "timestamps": [t0 + (b * 100 + i) * 1000 for i in range(100)],
                    "values": np.round(rng.normal(size=100), 2).tolist(),
                } for s in range(10)]
                reply = http.post("/ingest", json={"series": series})
                assert reply.status_code == 200
                acknowledged += reply.json()["accepted"]
            events = http.post("/events", json={"events": [
                {"type": "crash_test", "source": str(client_no)} for _ in range(5)]})
            assert events.json()["accepted"] == 5
        return acknowledged

    with ThreadPoolExecutor(4) as pool:
        acknowledged = sum(pool.map(push, range(4)))
    srv.kill()
    assert acknowledged == 4 * 15 * 10 * 100

    srv.start()
    try:
        assert total_count(srv.url, "crash_metric", t0, now_ms()) == acknowledged
        events = httpx.get(srv.url + "/api/v1/events",
                           params={"type": "crash_test", "limit": 100}).json()["events"]
        assert len(events) == 20
        health = httpx.get(srv.url + "/api/v1/health").json()
        # the WAL also holds the detectors' band points (anomaly_band_*), if any were due
        band = total_count(srv.url, '{__name__=~"anomaly_band_.*"}', t0, now_ms())
        assert health["store"]["replayed_samples"] == acknowledged + band
    finally:
        srv.stop()


def test_kill_9_after_a_block_cut_keeps_block_and_wal_data_once(tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path / "data", "--no-collector").start()
    t0 = now_ms() - 10 * 60_000
    url = srv.url + "/api/v1"
    first = {"series": [{"metric": "cut_m", "timestamps": [t0 + i for i in range(1000)],
                         "values": [float(i) for i in range(1000)]}]}
    assert httpx.post(url + "/ingest", json=first).json()["accepted"] == 1000
    assert httpx.post(url + "/admin/flush").json()["samples"] == 1000
    second = {"series": [{"metric": "cut_m", "timestamps": [t0 + 1000 + i for i in range(500)],
                          "values": [1.0] * 500}]}
    assert httpx.post(url + "/ingest", json=second).json()["accepted"] == 500
    srv.kill()
    srv.start()
    try:
        assert total_count(srv.url, "cut_m", t0, now_ms()) == 1500
        assert httpx.get(url + "/health").json()["store"]["blocks"] == 1
    finally:
        srv.stop()


class InProcessServer:
    """uvicorn in a thread around an Engine the test holds, to stall its disk on purpose."""

    def __init__(self, engine: Engine) -> None:
        self.port = free_port()
        config = uvicorn.Config(create_app(engine), host="127.0.0.1", port=self.port,
                                log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        return f"http://127.0.0.1:{self.port}/api/v1"

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def test_full_queue_answers_429_with_retry_after_and_loses_nothing(tmp_path: Path) -> None:
    settings = load_settings(None, {"data_dir": tmp_path / "data", "collector": False,
                                    "ingest_queue_samples": 1000}, environ={})
    engine = Engine(settings)
    t0 = now_ms() - 60_000
    body = lambda k: {"series": [{"metric": "q_m", "labels": {"k": str(k)},  # noqa: E731
                                  "timestamps": [t0 + i for i in range(300)],
                                  "values": [1.0] * 300}]}
    with InProcessServer(engine) as url, ThreadPoolExecutor(8) as pool:
        # Hold the store's write lock, as a stalled disk would: the queue fills up.
        with engine.store._write_lock:
            futures = [pool.submit(httpx.post, url + "/ingest", json=body(k), timeout=30)
                       for k in range(3)]
            deadline = time.monotonic() + 10
            while engine.ingestor.queued_samples < 600 and time.monotonic() < deadline:
                time.sleep(0.01)
            refused = httpx.post(url + "/ingest", json=body(99), timeout=30)
            assert refused.status_code == 429
            assert int(refused.headers["Retry-After"]) >= 1
            assert "queue is full" in refused.json()["error"]
            health = httpx.get(url + "/health", timeout=5)
            assert health.status_code == 200
        replies = [f.result(timeout=30) for f in futures]
        accepted = sum(r.json()["accepted"] for r in replies if r.status_code == 200)
        assert accepted + 300 * sum(r.status_code == 429 for r in replies) == 900
        assert total_count(url[: -len("/api/v1")], "q_m", t0 - 1, now_ms()) == accepted
        assert total_count(url[: -len("/api/v1")], 'q_m{k="99"}', t0 - 1, now_ms()) == 0
