"""Model monitoring in a real server over HTTP: recording, bad input, model alerts in
GET /api/v1/alerts and as series, durability across kill -9, the client helper."""

from __future__ import annotations

import gzip
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from seismo.client import Client, ModelMonitor
from tests.server import ServerProcess, free_port, wait_for

pytestmark = pytest.mark.timeout(60)
ENV = {"SEISMO_DETECT__ENABLED": "false", "SEISMO_MODELS__EVALUATION_INTERVAL_S": "0.2",
       "SEISMO_MODELS__REFERENCE_PREDICTIONS": "200", "SEISMO_MODELS__MIN_SAMPLES": "50",
       "SEISMO_ALERTING__TICK_S": "0.05", "SEISMO_LIMITS__MAX_BODY_BYTES": "2000000"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path_factory.mktemp("models") / "data", "--no-collector",
                        env=ENV).start()
    yield srv
    srv.stop()


@pytest.fixture
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url + "/api/v1", timeout=20) as client:
        yield client



def items(n: int, *, prefix: str, shift: float = 0.0, seed: int = 0,
          ts: int | None = None) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    x = rng.normal(shift, 1, n)
    return [{"id": f"{prefix}{i}", "features": {"x": float(x[i])},
             "prediction": int(x[i] > 0), "probability": float(1 / (1 + np.exp(-x[i]))),
             "latency_ms": 4.0, **({} if ts is None else {"timestamp": ts})}
            for i in range(n)]


def register(http: httpx.Client, name: str, version: str = "v1",
             task: str = "classification") -> None:
    reply = http.post("/models", json={"name": name, "version": version, "task": task})
    assert reply.status_code in (200, 201), reply.text


def test_record_and_read_metrics_over_http(http: httpx.Client) -> None:
    reply = http.post("/models", json={"name": "spam", "version": "v1",
                                       "task": "classification",
                                       "metadata": {"positive_class": "spam"}})
    assert reply.status_code == 201 and reply.json()["metadata"]["positive_class"] == "spam"
    assert http.post("/models", json={"name": "spam", "version": "v1",
                                      "task": "classification"}).status_code == 200
    body = {"version": "v1", "items": [
        {"id": "m1", "features": {"len": 10}, "prediction": "spam", "latency_ms": 2},
        {"id": "m2", "features": {"len": 20}, "prediction": "ham", "latency_ms": 4},
        {"id": "m3", "features": {"len": 30}, "prediction": "spam", "latency_ms": 6}]}
    assert http.post("/models/spam/predictions", json=body).json()["accepted"] == 3
    single = http.post("/models/spam/predictions", json={
        "version": "v1", "id": "m4", "prediction": "ham", "features": {"len": 5}})
    assert single.json()["accepted"] == 1
    reply = http.post("/models/spam/outcomes", json={"items": [
        {"id": "m1", "actual": "spam"}, {"id": "m2", "actual": "spam"},
        {"id": "m3", "actual": "ham"}, {"id": "nobody", "actual": "ham"}]})
    assert reply.json()["matched"] == 3 and reply.json()["unknown_ids"] == ["nobody"]
    assert http.post("/models/spam/outcomes", json={"id": "m4", "actual": "ham"}
                     ).json()["matched"] == 1
    m = http.get("/models/spam/metrics", params={"version": "v1", "window": "1h"}).json()
    assert m["predictions"] == 4 and m["outcomes"] == 4 and m["accuracy"] == 0.5
    assert m["positive_class"] == "spam" and m["precision"] == 0.5 and m["recall"] == 0.5
    assert m["latency_p50_ms"] == 4.0 and m["outcome_coverage"] == 1.0
    listed = http.get("/models").json()["models"]
    assert {"name": "spam", "task": "classification"}.items() <= \
        next(x for x in listed if x["name"] == "spam").items()
    gz = http.post("/models/spam/predictions", content=gzip.compress(
        b'{"version": "v1", "items": [{"id": "g1", "prediction": "ham"}]}'),
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})
    assert gz.json()["accepted"] == 1


def test_bad_input_is_400_naming_the_field_and_too_large_is_413(http: httpx.Client) -> None:
    register(http, "strict")
    cases = [
        ({"version": "v1", "items": [{"id": "a", "prediction": [1]}]}, "items[0].prediction"),
        ({"version": "v1", "items": [{"id": "a", "prediction": 1, "latency_ms": -1}]},
         "items[0].latency_ms"),
        ({"version": "nope", "items": [{"id": "a", "prediction": 1}]}, "version"),
        ({"version": "v1", "items": []}, "items"),
        ({"version": "v1", "items": [{"id": "a", "prediction": 1, "colour": "red"}]}, None),
    ]
    for body, field in cases:
        reply = http.post("/models/strict/predictions", json=body)
        assert reply.status_code == 400, (body, reply.text)
        if field:
            assert reply.json()["field"] == field, reply.json()
    reply = http.post("/models", json={"name": "x", "version": "v1", "task": "clustering"})
    assert reply.status_code == 400 and reply.json()["field"] == "task"
    assert http.get("/models/strict").json()["versions"][0]["predictions_total"] == 0
    big = {"version": "v1", "items": items(40_000, prefix="big")}
    assert http.post("/models/strict/predictions", json=big).status_code == 413
    assert http.get("/models/missing/metrics").status_code == 404


def test_accuracy_drop_and_drift_alerts_show_in_the_alerts_api(http: httpx.Client) -> None:
    register(http, "fraud")
    old = int(time.time() * 1000) - 2 * 3600 * 1000
    reference = items(200, prefix="r", ts=old, seed=1)
    http.post("/models/fraud/predictions", json={"version": "v1", "items": reference})
    http.post("/models/fraud/outcomes", json={"items": [
        {"id": it["id"], "actual": it["prediction"]} for it in reference]})
    shifted = items(300, prefix="s", shift=1.5, seed=2)
    http.post("/models/fraud/predictions", json={"version": "v1", "items": shifted})
    http.post("/models/fraud/outcomes", json={"items": [
        {"id": it["id"], "actual": 1 - it["prediction"]} for it in shifted]})

    def fired() -> set[str]:
        alerts = http.get("/alerts", params={"state": "firing"}).json()["alerts"]
        return {a["labels"]["alertname"] for a in alerts
                if a["labels"].get("model") == "fraud" and a["source"] == "model"}

    assert wait_for(lambda: {"ModelAccuracyDrop", "ModelDrift"} <= fired())
    drift = http.get("/models/fraud/drift", params={"window": "1h"}).json()
    assert drift["status"] == "alert" and "x" in drift["drifted"]
    assert drift["performance"]["status"] == "alert"
    series = wait_for(lambda: http.get("/query", params={
        "selector": 'model_accuracy{model="fraud",version="v1"}'}).json()["series"])
    assert series[0]["value"] == 0.0
    psi = http.get("/query", params={"selector": 'model_drift_psi{model="fraud",feature="x"}'})
    assert psi.json()["series"][0]["value"] > 0.25


def test_compare_two_versions(http: httpx.Client) -> None:
    register(http, "rank", "a")
    register(http, "rank", "b")
    for version, wrong in (("a", 0), ("b", 1)):
        batch = items(120, prefix=f"{version}-", seed=3)
        http.post("/models/rank/predictions", json={"version": version, "items": batch})
        http.post("/models/rank/outcomes", json={"items": [
            {"id": it["id"], "actual": it["prediction"] if i % 4 else wrong * (
                1 - it["prediction"]) + (1 - wrong) * it["prediction"]}
            for i, it in enumerate(batch)]})
    c = http.get("/models/rank/compare", params={"a": "a", "b": "b", "window": "1h"}).json()
    assert c["a"]["accuracy"] == 1.0 and c["b"]["accuracy"] == 0.75
    assert c["better"] == "a" and c["difference"]["accuracy"] == -0.25 and c["significant"]
    assert http.get("/models/rank/compare", params={"a": "a", "b": "zz"}).json()["field"] == "b"


def test_acknowledged_predictions_survive_kill_9(tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path / "data", "--no-collector", env=ENV).start()
    try:
        with httpx.Client(base_url=srv.url + "/api/v1", timeout=20) as http:
            register(http, "durable", task="regression")
            for k in range(5):
                reply = http.post("/models/durable/predictions", json={"version": "v1", "items": [
                    {"id": f"{k}-{i}", "prediction": float(i), "features": {"f": float(i)}}
                    for i in range(1000)]})
                assert reply.json()["accepted"] == 1000
            http.post("/models/durable/outcomes", json={"items": [
                {"id": f"0-{i}", "actual": float(i) + 1} for i in range(1000)]})
            before = http.get("/models/durable/metrics").json()
        srv.kill()
        srv.start()
        with httpx.Client(base_url=srv.url + "/api/v1", timeout=20) as http:
            after = http.get("/models/durable/metrics").json()
            described = http.get("/models/durable").json()
        assert after["predictions"] == before["predictions"] == 5000
        assert after["outcomes"] == 1000 and after["mae"] == before["mae"] == 1.0
        assert described["versions"][0]["predictions_total"] == 5000
    finally:
        srv.stop()


def test_the_client_helper_records_predictions_and_outcomes(server: ServerProcess) -> None:
    def model(features: dict[str, Any]) -> int:
        return int(features["score"] > 0.5)

    with Client(server.url) as client, \
            client.monitor("helper", version="v1", task="classification",
                           flush_interval_s=0.05) as monitor:
        results = [monitor.predict(model, {"score": i / 100}, id=f"h{i}") for i in range(100)]
        assert results[10] == 0 and results[90] == 1
        for i in range(100):
            monitor.outcome(f"h{i}", 1 if i >= 40 else 0)
        assert monitor.flush(timeout_s=10)
        assert monitor.sent == 200 and monitor.dropped == 0
        m = client.model_metrics("helper", "v1", window="1h")
    assert m["predictions"] == 100 and m["outcomes"] == 100 and m["accuracy"] == 0.89
    assert m["latency_p50_ms"] is not None and m["latency_p50_ms"] < 50


def test_the_client_helper_never_breaks_the_caller_when_the_server_is_down() -> None:
    monitor = ModelMonitor(f"http://127.0.0.1:{free_port()}", None, "m", "v1", max_queue=50,
                           batch_size=10, flush_interval_s=0.01, timeout_s=0.5)
    started = time.monotonic()
    for i in range(100):
        assert monitor.predict(lambda f: f["x"] * 2, {"x": i}, id=str(i)) == i * 2
    assert time.monotonic() - started < 1.0
    assert not monitor.flush(timeout_s=0.5)
    monitor.close(timeout_s=1)
    assert monitor.sent == 0 and monitor.dropped >= 50 and monitor.last_error
