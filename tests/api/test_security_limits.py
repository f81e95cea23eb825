"""Request limits on every route of a real server: body size (413) and rate per client (429).

The routes come from the app's own route table (as in test_access_matrix.py), so a route
added later is covered: an over-limit body is refused on every (route, method), declared
or sent in chunks, and compression bombs (gzip, snappy) are refused after inflating no
more than the limit.
"""

from __future__ import annotations

import gzip
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import cramjam
import httpx
import pytest
import yaml
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from seismo.api.access import WEBSOCKET
from seismo.auth import TokenStore
from tests.server import ServerProcess

LIMIT = 64 * 1024
NO_BODY = frozenset({
    ("/api/v1/admin/flush", "POST"), ("/api/v1/monitoring/start", "POST"),
    ("/api/v1/monitoring/stop", "POST"), ("/api/v1/outbox/{notification_id}/retry", "POST")})
"""Routes that read no body: a body sent in chunks (no Content-Length) is left unread."""
CHUNKED_METHODS = ("POST", "PUT")
FORM = {"Content-Type": "application/x-www-form-urlencoded"}  # Prometheus' POSTs read forms
INGEST_ROUTES = ("/api/v1/ingest", "/api/v1/events", "/write", "/api/v2/write", "/v1/metrics",
                 "/prometheus/api/v1/query")


def serve(tmp_path: Path, limits: dict[str, object]) -> ServerProcess:
    config = tmp_path / "seismo.yaml"
    config.write_text(yaml.safe_dump({"limits": limits}))
    return ServerProcess(tmp_path / "data", "--no-collector", "--config", str(config),
                         env={"SEISMO_DETECT__ENABLED": "false"}).start()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = serve(tmp_path_factory.mktemp("limits"), {"max_body_bytes": LIMIT})
    try:
        yield srv
    finally:
        srv.stop()


def concrete(path: str) -> str:
    """A request path for a route template: every `{param}` becomes 1, a mount gets `/`."""
    path = re.sub(r"\{[^}]+\}", "1", path)
    return path + "/" if path == "/ui" else path


def assert_too_large(reply: httpx.Response, what: str) -> None:
    assert reply.status_code == 413, f"{what}: {reply.status_code} {reply.text[:300]}"
    error = reply.json()["error"]
    assert "limit" in error and "bytes" in error, f"{what}: unclear error {error!r}"


def test_a_declared_oversized_body_is_refused_on_every_route(
        server: ServerProcess, route_keys: list[tuple[str, str]]) -> None:
    body = b"x" * (LIMIT + 1)
    checked = 0
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for path, method in route_keys:
            if method == WEBSOCKET:
                continue
            reply = client.request(method, concrete(path), content=body)
            assert_too_large(reply, f"{method} {path}")
            checked += 1
    assert checked >= 80  # every route and method of the app


def test_an_oversized_body_in_chunks_is_refused_on_every_route_that_reads_one(
        server: ServerProcess, route_keys: list[tuple[str, str]]) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(LIMIT // 4096 + 2):
            yield b"x" * 4096

    checked = 0
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for path, method in route_keys:
            if method not in CHUNKED_METHODS or (path, method) in NO_BODY:
                continue
            reply = client.request(method, concrete(path), content=chunks(), headers=FORM)
            assert "content-length" not in reply.request.headers
            assert_too_large(reply, f"chunked {method} {path}")
            checked += 1
    assert checked >= 20


def test_gzip_bombs_are_refused(server: ServerProcess) -> None:
    bomb = gzip.compress(b"0" * (LIMIT * 64))  # ~4 MiB of zeros in a few KiB
    assert len(bomb) < LIMIT // 4
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for path in INGEST_ROUTES:
            reply = client.post(path, content=bomb, headers={**FORM, "Content-Encoding": "gzip"})
            assert_too_large(reply, f"gzip bomb to {path}")
            assert "decompressed" in reply.json()["error"]
        small = gzip.compress(json.dumps({"samples": [
            {"metric": "m", "value": 1.0}]}).encode())
        reply = client.post("/api/v1/ingest", content=small,
                            headers={"Content-Encoding": "gzip"})
        assert reply.status_code == 200, reply.text


def test_snappy_bombs_are_refused(server: ServerProcess) -> None:
    big = b"\0" * (LIMIT * 2)
    bomb = bytes(cramjam.snappy.compress_raw(big))
    assert len(bomb) < LIMIT
    with httpx.Client(base_url=server.url, timeout=10) as client:
        reply = client.post("/api/v1/write", content=bomb,
                            headers={"Content-Encoding": "snappy",
                                     "Content-Type": "application/x-protobuf"})
        assert_too_large(reply, "snappy bomb")
        # The same stream with a lying header (it claims 100 bytes): refused, not inflated.
        liar = bytes([100]) + bomb[3:]  # LIMIT * 2 is a 3-byte uvarint
        reply = client.post("/api/v1/write", content=liar,
                            headers={"Content-Encoding": "snappy"})
        assert reply.status_code == 400, reply.text
        assert client.get("/api/v1/health").status_code == 200


def test_requests_past_the_rate_get_429_per_client(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    store = TokenStore(data / "state.db")
    try:
        first = store.create("first", "admin")[1]
        second = store.create("second", "viewer")[1]
    finally:
        store.close()
    server = serve(tmp_path, {"requests_per_s": 2, "request_burst": 5})
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            hdr = {"Authorization": f"Bearer {first}"}
            codes = [client.get("/api/v1/metric_names", headers=hdr).status_code
                     for _ in range(8)]
            assert codes[:5] == [200] * 5 and 429 in codes[5:], codes
            refused = client.get("/api/v1/metric_names", headers=hdr)
            assert refused.status_code == 429
            assert 1 <= int(refused.headers["Retry-After"]) <= 2
            assert "limits.requests_per_s" in refused.json()["error"]
            # Another token has a budget of its own; health probes are never limited.
            other = client.get("/api/v1/metric_names",
                               headers={"Authorization": f"Bearer {second}"})
            assert other.status_code == 200
            assert all(client.get("/api/v1/health").status_code == 200 for _ in range(10))
            # A WebSocket past the rate is closed with 4429.
            url = f"ws://127.0.0.1:{server.port}/api/v1/stream?token={first}"
            with pytest.raises(ConnectionClosed) as closed, \
                    connect(url, open_timeout=10, proxy=None) as ws:
                ws.recv(timeout=10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4429
            time.sleep(1.1)  # the bucket refills at 2 a second
            assert client.get("/api/v1/metric_names", headers=hdr).status_code == 200
    finally:
        server.stop()
