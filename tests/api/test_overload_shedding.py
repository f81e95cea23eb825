"""Under overload, ingest is shed cheaply and health stays answerable (issue 12, found by
bench/chaos/overload.py): a saturated queue refuses a request before reading its body, and
/api/v1/health does not wait for a worker thread."""

from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from seismo.config import load_settings
from seismo.engine import Engine
from tests.api.test_durability import InProcessServer, now_ms


def _engine(tmp_path: Path, **settings: object) -> Engine:
    return Engine(load_settings(None, {"data_dir": tmp_path / "data", "collector": False,
                                       **settings}, environ={}))


def _body(t0: int, k: int) -> dict[str, object]:
    return {"series": [{"metric": "shed_m", "labels": {"k": str(k)},
                        "timestamps": [t0 + i for i in range(300)], "values": [1.0] * 300}]}


def _headers_only(url: str, content_length: int) -> bytes:
    """POST /ingest announcing a body that never comes; the reply, or b"" on timeout."""
    host, port = url.removeprefix("http://").split("/")[0].split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(f"POST /api/v1/ingest HTTP/1.1\r\nHost: {host}\r\nContent-Type: "
                     f"application/json\r\nContent-Length: {content_length}\r\n\r\n".encode())
        try:
            return sock.recv(65536)
        except TimeoutError:
            return b""


def test_a_saturated_queue_refuses_before_reading_the_body(tmp_path: Path) -> None:
    engine = _engine(tmp_path, ingest_queue_samples=1000)
    t0 = now_ms() - 60_000
    with InProcessServer(engine) as url, ThreadPoolExecutor(4) as pool:
        with engine.store._write_lock:  # a stalled disk: the queue fills up
            held = [pool.submit(httpx.post, url + "/ingest", json=_body(t0, k), timeout=30)
                    for k in range(3)]
            deadline = time.monotonic() + 10
            while engine.ingestor.queued_samples < 900 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert httpx.post(url + "/ingest", json=_body(t0, 9), timeout=10).status_code == 429
            # saturated: the next request is refused from its headers alone
            reply = _headers_only(url, 1_000_000)
            assert reply.startswith(b"HTTP/1.1 429"), reply[:200]
            assert b"retry-after: 1" in reply.lower()
        assert all(f.result(timeout=30).status_code == 200 for f in held)
        # the writer freed room: ingest is accepted again
        again = httpx.post(url + "/ingest", json=_body(t0, 5), timeout=10)
        assert again.status_code == 200, again.text
        assert again.json()["accepted"] == 300


def test_health_answers_while_every_worker_thread_is_busy(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    with InProcessServer(engine) as url, ThreadPoolExecutor(48) as pool:
        with engine.store._cut_lock:  # every /admin/flush (a sync route) waits in a thread
            stuck = [pool.submit(httpx.post, url + "/admin/flush", timeout=30)
                     for _ in range(45)]  # more than the 40 worker threads
            time.sleep(1.0)
            started = time.monotonic()
            health = httpx.get(url + "/health", timeout=5)
            took_s = time.monotonic() - started
            assert health.status_code == 200
            assert took_s < 1.0
        assert all(f.result(timeout=30).status_code == 200 for f in stuck)


def test_health_answers_while_ingest_validation_is_stuck(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    t0 = now_ms() - 60_000
    with InProcessServer(engine) as url, ThreadPoolExecutor(2) as pool:
        with engine.store.index._lock:  # adding a series waits: validation is stuck
            stuck = pool.submit(httpx.post, url + "/ingest", json=_body(t0, 1), timeout=30)
            time.sleep(0.5)
            assert not stuck.done()
            health = httpx.get(url + "/health", timeout=5)  # the event loop is free
            assert health.status_code == 200
        assert stuck.result(timeout=30).json()["accepted"] == 300


def test_a_validation_backlog_over_its_bound_refuses_before_reading_the_body(
        tmp_path: Path) -> None:
    # bound: max(limits.max_body_bytes, 16 x ingest_queue_samples) = 10,000 bytes
    engine = _engine(tmp_path, ingest_queue_samples=600, limits={"max_body_bytes": 10_000})
    t0 = now_ms() - 60_000
    with InProcessServer(engine) as url, ThreadPoolExecutor(2) as pool:
        with engine.store.index._lock:  # the first body's new series: validation waits
            waiting = [pool.submit(httpx.post, url + "/ingest", json=_body(t0, k), timeout=30)
                       for k in range(2)]  # ~6 kB each: 12 kB waiting
            deadline = time.monotonic() + 10
            while engine._validating_bytes < 10_000 and time.monotonic() < deadline:
                time.sleep(0.01)
            reply = _headers_only(url, 5_000)
            assert reply.startswith(b"HTTP/1.1 429"), reply[:200]
            assert b"retry-after: 1" in reply.lower()
            assert b"waiting to be validated" in reply
        assert [f.result(timeout=30).status_code for f in waiting] == [200, 200]
        assert engine._validating_bytes == 0


def test_ingest_is_refused_while_block_cuts_are_behind(tmp_path: Path) -> None:
    # the head may hold 2 x block_max_samples = 1,000 samples before a cut
    engine = _engine(tmp_path, block_max_samples=500)
    t0 = now_ms() - 60_000
    with InProcessServer(engine) as url:
        with engine.store._cut_lock:  # a cut that cannot keep up
            codes = [httpx.post(url + "/ingest", json=_body(t0 + 1000 * k, 1),
                                timeout=10).status_code for k in range(5)]
            assert codes == [200, 200, 200, 200, 429]
            refused = httpx.post(url + "/ingest", json=_body(t0 + 9000, 1), timeout=10)
            assert refused.status_code == 429
            assert "behind writing blocks" in refused.json()["error"]
            assert int(refused.headers["Retry-After"]) >= 1
            assert engine.store.head.count == 1200
        deadline = time.monotonic() + 10  # the upkeep thread cuts within about a second
        while engine.store.head.count and time.monotonic() < deadline:
            time.sleep(0.05)
        again = httpx.post(url + "/ingest", json=_body(t0 + 9000, 1), timeout=10)
        assert again.status_code == 200, again.text
