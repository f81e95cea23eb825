"""The ingest protocols against a real server, with real peers where installed:
Prometheus (remote_write), the OpenTelemetry SDK's OTLP/HTTP exporter."""

from __future__ import annotations

import gzip
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cramjam
import httpx
import pytest

from seismo.ingest.remote_write import encode
from tests.server import ServerProcess, free_port


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path_factory.mktemp("protocols") / "data", "--no-collector")
    srv.start(timeout_s=90)  # a loaded CI machine starts it slowly
    yield srv
    srv.stop()


@pytest.fixture
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


def latest(http: httpx.Client, selector: str) -> dict[tuple[tuple[str, str], ...], Any]:
    reply = http.get("/api/v1/query", params={"selector": selector, "window": "1d"})
    assert reply.status_code == 200, reply.text
    return {tuple(sorted(s["labels"].items())): s for s in reply.json()["series"]}


def wait_for(http: httpx.Client, selector: str, timeout_s: float = 20.0) -> dict[Any, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = latest(http, selector)
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"no series for {selector} after {timeout_s} s")


# -- line protocol ----------------------------------------------------------------------


def test_line_protocol_v1_gzip(http: httpx.Client) -> None:
    t = now_ms() - 5000
    body = (f"# telegraf\nlp_cpu,host=web-1 usage_idle=97.5,usage_user=2i {t}\n"
            f'lp_cpu,host=web-2 usage_idle=50,note="hi" {t}\n').encode()
    reply = http.post("/write", params={"db": "telegraf", "precision": "ms"},
                      content=gzip.compress(body), headers={"Content-Encoding": "gzip"})
    assert reply.status_code == 204, reply.text
    assert reply.headers["X-Seismo-Skipped"] == "1"
    got = latest(http, "lp_cpu_usage_idle")
    assert {k: (s["value"], s["timestamp"]) for k, s in got.items()} == {
        (("host", "web-1"),): (97.5, t), (("host", "web-2"),): (50.0, t)}
    assert latest(http, "lp_cpu_usage_user")[(("host", "web-1"),)]["value"] == 2.0


def test_line_protocol_v2_with_token_scheme_and_seconds(http: httpx.Client) -> None:
    t_s = now_ms() // 1000 - 5
    reply = http.post("/api/v2/write", params={"org": "o", "bucket": "b", "precision": "s"},
                      content=f"lp_v2 value=3 {t_s}\n",
                      headers={"Authorization": "Token not-checked-while-auth-is-off"})
    assert reply.status_code == 204, reply.text
    assert latest(http, "lp_v2")[()]["timestamp"] == t_s * 1000


def test_malformed_line_stores_nothing(http: httpx.Client) -> None:
    reply = http.post("/write", content=b"lp_bad value=1\nlp_bad value=oops\n")
    assert reply.status_code == 400
    body = reply.json()
    assert body["field"] == "line 2" and "nothing stored" in body["error"]
    assert latest(http, "lp_bad") == {}


def test_refused_samples_are_a_partial_write(http: httpx.Client) -> None:
    reply = http.post("/write", params={"precision": "s"},
                      content=f"lp_partial value=1\nlp_partial value=2 {10**6}\n")
    assert reply.status_code == 400
    body = reply.json()
    assert body["accepted"] == 1 and body["rejected"] == 1
    assert "partial write" in body["error"] and "retention" in body["error"]


# -- remote write -----------------------------------------------------------------------


def test_remote_write(http: httpx.Client) -> None:
    t = now_ms() - 1000
    body = encode([({"__name__": "rw_up", "job": "node", "instance": "a:9100"},
                    [(t - 1000, 1.0), (t, 0.0)])])
    reply = http.post("/api/v1/write", content=body, headers={
        "Content-Encoding": "snappy", "Content-Type": "application/x-protobuf",
        "X-Prometheus-Remote-Write-Version": "0.1.0"})
    assert reply.status_code == 204, reply.text
    got = latest(http, "rw_up")
    assert got[(("instance", "a:9100"), ("job", "node"))]["value"] == 0.0


@pytest.mark.parametrize(("content", "reason"), [
    (b"\x10not snappy", "snappy"),
    (bytes(cramjam.snappy.compress_raw(b"\x0a\xff\xff\xff\x0f")), "protobuf"),
])
def test_malformed_remote_write(http: httpx.Client, content: bytes, reason: str) -> None:
    reply = http.post("/api/v1/write", content=content,
                      headers={"Content-Encoding": "snappy"})
    assert reply.status_code == 400 and reason in reply.json()["error"]


def test_remote_write_2_is_refused(http: httpx.Client) -> None:
    reply = http.post("/api/v1/write", content=b"", headers={
        "Content-Type": "application/x-protobuf;proto=io.prometheus.write.v2.Request"})
    assert reply.status_code == 400 and "2.0" in reply.json()["error"]


PROMETHEUS = shutil.which("prometheus")


@pytest.mark.skipif(PROMETHEUS is None, reason="prometheus is not installed")
@pytest.mark.timeout(60)
def test_a_real_prometheus_remote_writes(server: ServerProcess, http: httpx.Client,
                                         tmp_path: Path) -> None:
    assert PROMETHEUS is not None
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(f"""
global: {{scrape_interval: 1s, external_labels: {{replica: r1}}}}
scrape_configs:
  - job_name: seismo
    static_configs: [{{targets: ["127.0.0.1:{server.port}"]}}]
remote_write:
  - url: {server.url}/api/v1/write
    queue_config: {{batch_send_deadline: 500ms, min_backoff: 100ms}}
""")
    log = (tmp_path / "prometheus.log").open("wb")
    proc = subprocess.Popen([PROMETHEUS, f"--config.file={config}",
                             f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        instance = f"127.0.0.1:{server.port}"
        got = wait_for(http, 'up{job="seismo"}', timeout_s=40)
        key = (("instance", instance), ("job", "seismo"), ("replica", "r1"))
        assert got[key]["value"] == 1.0
        ingested = wait_for(http, 'seismo_samples_ingested_total{job="seismo"}')
        assert ingested[key]["value"] >= 0
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


# -- OTLP -------------------------------------------------------------------------------


def test_otlp_sdk_exporter(server: ServerProcess, http: httpx.Client) -> None:
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource

    exporter = OTLPMetricExporter(endpoint=f"{server.url}/v1/metrics", timeout=10)
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(resource=Resource.create({"service.name": "checkout"}),
                             metric_readers=[reader])
    meter = provider.get_meter("tests")
    meter.create_counter("otel.orders").add(3, {"region": "eu"})
    meter.create_up_down_counter("otel.in_flight").add(-2)
    histogram = meter.create_histogram("otel.latency", unit="s")
    for v in (0.004, 0.2, 7.0):
        histogram.record(v, {"route": "/pay"})
    exported: list[Any] = []
    export = exporter.export
    exporter.export = lambda *a, **kw: exported.append(export(*a, **kw)) or exported[-1]
    try:
        assert provider.force_flush(10_000)
    finally:
        provider.shutdown()
    assert exported and all(r.name == "SUCCESS" for r in exported), exported
    orders = latest(http, 'otel_orders_total{service_name="checkout"}')
    assert [s["value"] for s in orders.values()] == [3.0]
    assert next(iter(orders))[:1] == (("region", "eu"),)
    assert [s["value"] for s in latest(http, "otel_in_flight").values()] == [-2.0]
    buckets = {dict(k)["le"]: s["value"] for k, s in
               latest(http, 'otel_latency_bucket{route="/pay"}').items()}
    assert buckets["+Inf"] == 3.0 and buckets["5.0"] == 2.0 and buckets["0.0"] == 0.0
    assert [s["value"] for s in latest(http, "otel_latency_count").values()] == [3.0]


def test_otlp_json_and_malformed(http: httpx.Client) -> None:
    body = {"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"name": "otel_json", "gauge": {
        "dataPoints": [{"timeUnixNano": str((now_ms() - 1000) * 10**6), "asDouble": 4.5}]}}]}]}]}
    reply = http.post("/v1/metrics", json=body)
    assert reply.status_code == 200 and reply.headers["content-type"] == "application/json"
    assert [s["value"] for s in latest(http, "otel_json").values()] == [4.5]
    reply = http.post("/v1/metrics", content=b"\x0a\xff\xff\xff\x0f",
                      headers={"Content-Type": "application/x-protobuf"})
    assert reply.status_code == 400 and "OTLP" in reply.json()["error"]
