"""seismo's Prometheus query API against a real Prometheus, on the same samples.

A real Prometheus (Debian's /usr/bin/prometheus) scrapes a small exporter (counters with a
reset, gauges, a histogram) every second for ~15 s; its raw samples (`x[1h]`) are then
ingested into a real seismo server with the same timestamps, and each PromQL query of the
table is asked of both `/api/v1/query_range` endpoints: same label sets, same
timestamps, values equal to float rounding.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server import ServerProcess, free_port

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
pytestmark = pytest.mark.skipif(not Path(PROMETHEUS).exists(),
                                reason="no prometheus binary (Debian package `prometheus`)")
SCRAPES = 15
BUCKETS = ("0.05", "0.1", "0.25", "0.5", "1", "+Inf")


class Exporter:
    """Exposition text that moves on with every scrape (deterministic in the scrape count)."""

    def __init__(self) -> None:
        self.scrapes = 0
        self.lock = threading.Lock()
        self.buckets = [0] * len(BUCKETS)
        self.total = 0.0

    def render(self) -> str:
        with self.lock:
            n = self.scrapes
            self.scrapes += 1
            for i in range(5):  # five observations per scrape
                seen = ((n * 37 + i * 11) % 100) / 90
                self.total += seen
                for b, le in enumerate(BUCKETS):
                    if seen <= float(le):
                        self.buckets[b] += 1
        post = n * 5 if n < 8 else (n - 8) * 2  # a counter reset at the 9th scrape
        lines = [
            "# TYPE test_requests_total counter",
            f'test_requests_total{{code="200",method="get"}} {3 * n + n % 3}',
            f'test_requests_total{{code="500",method="get"}} {n // 2}',
            f'test_requests_total{{code="200",method="post"}} {post}',
            "# TYPE test_temperature gauge",
            f'test_temperature{{room="a"}} {20 + 5 * math.sin(n / 2)!r}',
            f'test_temperature{{room="b"}} {15 + 3 * math.cos(n / 3)!r}',
            "# TYPE test_latency_seconds histogram",
            *(f'test_latency_seconds_bucket{{le="{le}"}} {c}'
              for le, c in zip(BUCKETS, self.buckets, strict=True)),
            f"test_latency_seconds_sum {self.total!r}",
            f"test_latency_seconds_count {self.buckets[-1]}",
        ]
        return "\n".join(lines) + "\n"


def serve_exporter(exporter: Exporter) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = exporter.render().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@dataclass
class Pair:
    prometheus: httpx.Client
    seismo: httpx.Client
    start: float  # unix seconds, half-way between two scrapes
    end: float


def wait_for(check: Any, timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            found = check()
        except httpx.HTTPError:
            found = None
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    root = tmp_path_factory.mktemp("prometheus")
    exporter_server = serve_exporter(Exporter())
    port = free_port()
    config = root / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1m}\n"
        "scrape_configs:\n"
        "  - job_name: test\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{exporter_server.server_port}']}}]\n")
    log = open(root / "prometheus.log", "wb")  # noqa: SIM115 (closed below)
    prometheus = subprocess.Popen(
        [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={root / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=log, stderr=subprocess.STDOUT)
    seismo = ServerProcess(root / "seismo", "--no-collector")
    try:
        seismo.start()  # while Prometheus starts and scrapes
        prom = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
        ours = httpx.Client(base_url=seismo.url, timeout=30)

        def scraped() -> bool:
            reply = prom.get("/api/v1/query", params={
                "query": 'count_over_time(test_requests_total{code="500"}[1h])'}).json()
            result = reply["data"]["result"]
            return bool(result) and float(result[0]["value"][1]) >= SCRAPES

        wait_for(scraped, 40, f"{SCRAPES} scrapes by Prometheus")
        fetched_at = time.time()
        raw = prom.get("/api/v1/query", params={
            "query": '{job="test"}[1h]', "time": fetched_at}).json()["data"]["result"]
        body = {"series": [{
            "metric": s["metric"]["__name__"],
            "labels": {k: v for k, v in s["metric"].items() if k != "__name__"},
            "timestamps": [round(t * 1000) for t, _ in s["values"]],
            "values": [float(v) for _, v in s["values"]],
        } for s in raw]}
        reply = ours.post("/api/v1/ingest", json=body)
        assert reply.status_code == 200 and reply.json()["rejected"] == 0, reply.text
        first = min(t for s in raw if s["metric"]["__name__"] == "test_temperature"
                    for t, _ in s["values"])
        # Half-way between scrapes, so that no window edge falls on a sample; the end well
        # before the fetch, so that both have every sample a query reads.
        yield Pair(prom, ours, start=first + 2.5, end=fetched_at - 2)
        prom.close()
        ours.close()
    finally:
        seismo.stop()
        prometheus.terminate()
        try:
            prometheus.wait(timeout=20)
        except subprocess.TimeoutExpired:
            prometheus.kill()
            prometheus.wait(timeout=10)
        log.close()
        exporter_server.shutdown()
        exporter_server.server_close()


QUERIES = [
    "test_requests_total",
    'test_requests_total{method="get", code=~"2.."}',
    "rate(test_requests_total[5s])",
    "irate(test_requests_total[5s])",
    "increase(test_requests_total[6s])",
    "delta(test_temperature[5s])",
    "idelta(test_temperature[4s])",
    "sum by (code) (rate(test_requests_total[5s]))",
    "sum without (method) (test_requests_total)",
    "sum(rate(test_requests_total[5s])) by (method)",
    "avg(test_temperature)",
    "min(test_temperature)",
    "max by (room) (test_temperature)",
    "count by (method) (test_requests_total)",
    "stddev(test_temperature)",
    "quantile(0.75, test_temperature)",
    "avg_over_time(test_temperature[5s])",
    "min_over_time(test_temperature[5s])",
    "max_over_time(test_temperature[5s])",
    "sum_over_time(test_temperature[5s])",
    "count_over_time(test_temperature[5s])",
    "last_over_time(test_temperature[5s])",
    "quantile_over_time(0.9, test_temperature[5s])",
    "stddev_over_time(test_temperature[6s])",
    "histogram_quantile(0.9, sum by (le) (rate(test_latency_seconds_bucket[5s])))",
    "histogram_quantile(0.5, rate(test_latency_seconds_bucket[4s]))",
    "rate(test_latency_seconds_sum[5s]) / rate(test_latency_seconds_count[5s])",
    "test_temperature * 2 + 1",
    "test_temperature % 7",
    "2 ^ (test_temperature / 10)",
    "-test_temperature",
    "100 - test_temperature",
    "test_temperature > 18",
    "18 < test_temperature",
    "test_temperature > bool 18",
    "test_temperature <= bool test_temperature",
    'test_requests_total{code="200"} / ignoring(code) test_requests_total{code="500"}',
    "sum by (method) (rate(test_requests_total[5s])) / on(method) "
    "sum by (method) (test_requests_total)",
    "abs(test_temperature - 20)",
    "clamp_min(test_temperature, 18)",
    "clamp_max(test_temperature, 18)",
    "clamp(test_temperature, 16, 19)",
    "round(test_temperature, 0.5)",
    "sqrt(test_temperature) + ln(test_temperature)",
    "time()",
    "time() - 1",
    "vector(1)",
    "vector(time())",
    "scalar(sum(test_temperature))",
    "scalar(test_temperature)",
    "topk(1, test_temperature)",
    "bottomk(2, test_requests_total)",
    "up",
    "sum(up)",
    "count(up == 1)",
    "test_temperature offset 3s",
    "rate(test_requests_total[5s] offset 2s)",
    "(test_temperature + 1) * (test_temperature - 1)",
    "test_temperature and test_temperature > 18",
    "test_temperature unless test_temperature > 18",
    "sum(test_temperature > 100) or vector(0)",
    "test_temperature > 18 or test_temperature < 14",
    "rate(test_requests_total[5s]) and on(code) test_requests_total{method=\"post\"} > 20",
]


def as_series(reply: httpx.Response) -> dict[frozenset[tuple[str, str]],
                                               dict[int, float]]:
    body = reply.json()
    assert reply.status_code == 200 and body["status"] == "success", reply.text
    assert body["data"]["resultType"] == "matrix"
    return {frozenset(s["metric"].items()): {round(t * 1000): float(v) for t, v in s["values"]}
            for s in body["data"]["result"]}


def close(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


@pytest.mark.parametrize("query", QUERIES)
def test_query_range_agrees_with_prometheus(pair: Pair, query: str) -> None:
    params: dict[str, str | float] = {"query": query, "start": pair.start, "end": pair.end,
                                      "step": "1s"}
    expected = as_series(pair.prometheus.get("/api/v1/query_range", params=params))
    got = as_series(pair.seismo.get("/prometheus/api/v1/query_range", params=params))
    assert expected, f"Prometheus has no result for {query}"
    assert_same(query, got, expected)


def assert_same(query: str, got: dict[frozenset[tuple[str, str]], dict[int, float]],
                expected: dict[frozenset[tuple[str, str]], dict[int, float]]) -> None:
    assert set(got) == set(expected)
    for labels, points in expected.items():
        assert set(got[labels]) == set(points), (query, dict(labels))
        wrong = {t: (got[labels][t], v) for t, v in points.items()
                 if not close(got[labels][t], v)}
        assert not wrong, (query, dict(labels), wrong)


@pytest.mark.parametrize("query", ["test_temperature", "rate(test_requests_total[5s])",
                                   "sum(test_temperature)", "scalar(sum(test_temperature))",
                                   "test_temperature[3s]", "1 + 1"])
def test_instant_query_agrees_with_prometheus(pair: Pair, query: str) -> None:
    params: dict[str, str | float] = {"query": query, "time": pair.end}
    expected = pair.prometheus.get("/api/v1/query", params=params).json()
    got = pair.seismo.get("/prometheus/api/v1/query", params=params).json()
    assert got["status"] == "success"
    assert got["data"]["resultType"] == expected["data"]["resultType"]
    if expected["data"]["resultType"] == "scalar":
        assert close(float(got["data"]["result"][1]), float(expected["data"]["result"][1]))
        return

    def by_labels(body: dict[str, Any]) -> dict[frozenset[tuple[str, str]], dict[int, float]]:
        return {frozenset(s["metric"].items()): {
            round(t * 1000): float(v) for t, v in s.get("values", [s.get("value")])}
            for s in body["data"]["result"]}

    assert_same(query, by_labels(got), by_labels(expected))


def test_a_form_encoded_post_gives_the_same_answer(pair: Pair) -> None:
    params = {"query": "sum by (code) (rate(test_requests_total[5s]))",
              "start": str(pair.start), "end": str(pair.end), "step": "1"}
    by_get = pair.seismo.get("/prometheus/api/v1/query_range", params=params)
    by_post = pair.seismo.post("/prometheus/api/v1/query_range", data=params)
    assert by_post.status_code == 200
    assert by_post.json() == by_get.json()
    assert_same(params["query"], as_series(by_post),
                as_series(pair.prometheus.post("/api/v1/query_range", data=params)))


@pytest.mark.parametrize("path,params", [
    ("/labels", {"match[]": '{job="test"}'}),
    ("/label/__name__/values", {"match[]": '{job="test"}'}),
    ("/label/code/values", {}),
    ("/label/room/values", {"match[]": "test_temperature"}),
])
def test_label_listings_agree_with_prometheus(pair: Pair, path: str,
                                               params: dict[str, str]) -> None:
    expected = pair.prometheus.get("/api/v1" + path, params=params).json()
    got = pair.seismo.get("/prometheus/api/v1" + path, params=params).json()
    assert got == expected


def test_series_agree_with_prometheus(pair: Pair) -> None:
    params = httpx.QueryParams([("match[]", "test_temperature"),
                                ("match[]", 'test_requests_total{code="500"}')])
    expected = pair.prometheus.get("/api/v1/series", params=params).json()
    got = pair.seismo.get("/prometheus/api/v1/series", params=params).json()
    assert got["status"] == "success"
    assert sorted(map(sorted, (s.items() for s in got["data"]))) == sorted(
        map(sorted, (s.items() for s in expected["data"])))
    assert len(got["data"]) == 3


@pytest.mark.parametrize("query", ["sum(", "rate(test_temperature)", "1 > 2",
                                   "test_temperature[5s] + 1"])
def test_bad_queries_are_bad_data_in_both(pair: Pair, query: str) -> None:
    params: dict[str, str | float] = {"query": query, "start": pair.start, "end": pair.end,
                                      "step": "1"}
    expected = pair.prometheus.get("/api/v1/query_range", params=params)
    got = pair.seismo.get("/prometheus/api/v1/query_range", params=params)
    assert expected.status_code == got.status_code == 400
    assert set(got.json()) == {"status", "errorType", "error"}
    assert got.json()["status"] == "error" and got.json()["errorType"] == "bad_data"
