"""`ModelService` in process: recording, late and unknown outcomes, bounds, comparison,
drift, the timer's series and alerts, and replay after a restart."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from seismo.config import Models
from seismo.errors import InvalidInput, NotFound, Overloaded
from seismo.models import Evaluation, ModelService
from seismo.models.journal import Record

NOW = 1_800_000_000_000


class Clock:
    def __init__(self) -> None:
        self.ms = NOW

    def __call__(self) -> int:
        return self.ms


def service(path: Path, clock: Clock, **settings: Any) -> ModelService:
    s = ModelService(Models(**{"reference_predictions": 200, "min_samples": 50, **settings}),
                     path / "state.db", clock=clock)
    s.start()
    return s


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def svc(tmp_path: Path, clock: Clock) -> Iterator[ModelService]:
    s = service(tmp_path, clock)
    s.register({"name": "churn", "version": "v1", "task": "classification"})
    s.register({"name": "churn", "version": "v2", "task": "classification"})
    yield s
    s.stop()


def predictions(svc: ModelService, version: str, items: list[dict[str, Any]],
                model: str = "churn") -> dict[str, Any]:
    return svc.record(model, "predictions",
                      json.dumps({"version": version, "items": items}).encode())


def outcomes(svc: ModelService, items: list[dict[str, Any]],
             model: str = "churn") -> dict[str, Any]:
    return svc.record(model, "outcomes", json.dumps({"items": items}).encode())


def batch(n: int, *, start: int = 0, shift: float = 0.0, ts: int | None = None,
          seed: int = 0, prefix: str = "p") -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    x = rng.normal(shift, 1, n)
    plan = rng.choice(["free", "pro"], n, p=[0.7, 0.3] if not shift else [0.2, 0.8])
    return [{"id": f"{prefix}{start + i}", "features": {"x": float(x[i]), "plan": str(plan[i])},
             "prediction": int(x[i] > 0), "probability": float(1 / (1 + np.exp(-x[i]))),
             "latency_ms": 5.0 + i % 10, **({} if ts is None else {"timestamp": ts})}
            for i in range(n)]


def test_register_is_idempotent_and_the_task_is_fixed(svc: ModelService) -> None:
    reply, created = svc.register({"name": "churn", "version": "v1", "task": "classification"})
    assert not created and reply["version"] == "v1"
    with pytest.raises(InvalidInput) as exc:
        svc.register({"name": "churn", "version": "v3", "task": "regression"})
    assert exc.value.field == "task"
    with pytest.raises(InvalidInput) as exc:
        svc.register({"name": "bad name", "version": "v1", "task": "classification"})
    assert exc.value.field == "name"
    assert [m["name"] for m in svc.list_models()] == ["churn"]


def test_bad_input_names_the_field_and_stores_nothing(svc: ModelService) -> None:
    good = batch(3)
    bad = [*good, {"id": "x", "features": {"x": "text"}, "prediction": 1}]
    with pytest.raises(InvalidInput) as exc:
        predictions(svc, "v1", bad)
    assert exc.value.field == "items[3].features.x"
    with pytest.raises(InvalidInput) as exc:
        predictions(svc, "v1", [*good, {**good[0]}])
    assert exc.value.field == "items[3].id"
    with pytest.raises(InvalidInput) as exc:
        predictions(svc, "v9", good)
    assert exc.value.field == "version"
    with pytest.raises(InvalidInput) as exc:
        predictions(svc, "v1", [{**good[0], "probability": 1.5}])
    assert exc.value.field == "items[0].probability"
    with pytest.raises(NotFound):
        predictions(svc, "v1", good, model="nope")
    assert svc.describe("churn")["versions"][0]["predictions_total"] == 0


def test_late_outcomes_join_and_unknown_ids_are_listed_and_kept(svc: ModelService,
                                                               clock: Clock) -> None:
    assert predictions(svc, "v1", batch(100))["accepted"] == 100
    clock.ms += 6 * 3600 * 1000  # six hours later: still within retention
    reply = outcomes(svc, [{"id": "p1", "actual": 1}, {"id": "later-1", "actual": 0}])
    assert reply == {"accepted": 2, "matched": 1, "updated": 0, "unknown": 1,
                     "unknown_ids": ["later-1"]}
    assert svc.describe("churn")["pending_outcomes"] == 1
    # The prediction for the unknown id arrives afterwards: the outcome joins it.
    reply = predictions(svc, "v1", [{"id": "later-1", "features": {"x": 0.1},
                                     "prediction": 0}])
    assert reply["joined_outcomes"] == 1
    m = svc.metrics("churn", "v1", window="1h")
    assert m["predictions"] == 1 and m["outcomes"] == 1 and m["accuracy"] == 1.0
    assert svc.metrics("churn", "v1", window="7h")["outcomes"] == 2


def test_a_retried_request_is_not_counted_twice(svc: ModelService) -> None:
    items = batch(10)
    predictions(svc, "v1", items)
    assert predictions(svc, "v1", items) == {"accepted": 0, "duplicates": 10,
                                             "joined_outcomes": 0}
    assert svc.metrics("churn", "v1")["predictions"] == 10


def test_max_rows_and_retention_bound_what_is_held(tmp_path: Path, clock: Clock) -> None:
    s = service(tmp_path, clock, max_rows_per_model=250, retention="1d")
    try:
        s.register({"name": "m", "version": "v1", "task": "regression"})
        for k in range(4):
            s.record("m", "predictions", json.dumps({"version": "v1", "items": [
                {"id": f"{k}-{i}", "prediction": 1.0} for i in range(100)]}).encode())
        assert s.describe("m")["predictions"] == 250
        assert outcomes(s, [{"id": "0-0", "actual": 1.0}], model="m")["unknown"] == 1
        clock.ms += 2 * 86_400_000
        s.expire()
        assert s.describe("m")["predictions"] == 0
    finally:
        s.stop()
    s = service(tmp_path, clock, max_rows_per_model=250, retention="1d")
    try:  # the records of evicted rows were deleted: nothing comes back
        assert s.describe("m")["predictions"] == 0
    finally:
        s.stop()


def test_metrics_regression_and_compare(tmp_path: Path, clock: Clock) -> None:
    s = service(tmp_path, clock)
    try:
        s.register({"name": "price", "version": "a", "task": "regression"})
        s.register({"name": "price", "version": "b", "task": "regression"})
        rng = np.random.default_rng(1)
        truth = rng.uniform(10, 100, 400)
        for version, noise in (("a", 2.0), ("b", 8.0)):
            guess = truth + rng.normal(0, noise, 400)
            s.record("price", "predictions", json.dumps({"version": version, "items": [
                {"id": f"{version}{i}", "prediction": float(guess[i]),
                 "features": {"size": float(truth[i])}} for i in range(400)]}).encode())
            outcomes(s, [{"id": f"{version}{i}", "actual": float(truth[i])}
                         for i in range(400)], model="price")
        m = s.metrics("price", "a")
        assert m["mae"] < 2.0 and m["rmse"] > m["mae"] and 0 < m["mape"] < 0.2
        c = s.compare("price", "a", "b")
        assert c["better"] == "a" and c["significant"] and c["metric"] == "mae"
        assert c["difference"]["mae"] == pytest.approx(c["b"]["mae"] - c["a"]["mae"],
                                                       abs=1e-5)
    finally:
        s.stop()


def test_drift_and_accuracy_drop_against_the_first_predictions(svc: ModelService,
                                                              clock: Clock) -> None:
    old = clock.ms - 2 * 3600 * 1000
    reference = batch(200, ts=old, seed=1)
    predictions(svc, "v1", reference)
    outcomes(svc, [{"id": it["id"], "actual": it["prediction"]} for it in reference])
    same = batch(300, start=1000, seed=2)
    predictions(svc, "v1", same)
    outcomes(svc, [{"id": it["id"], "actual": it["prediction"]} for it in same])
    calm = svc.drift("churn", "v1")
    assert calm["status"] in ("ok", "warn") and calm["drifted"] == []
    assert calm["performance"]["status"] == "ok"
    clock.ms += 2 * 3600 * 1000
    shifted = batch(300, start=5000, shift=1.5, seed=3)
    predictions(svc, "v1", shifted)
    rng = np.random.default_rng(4)
    outcomes(svc, [{"id": it["id"], "actual": int(rng.random() < 0.5)} for it in shifted])
    d = svc.drift("churn", "v1", window="1h")
    assert d["status"] == "alert" and {"x", "plan"} <= set(d["drifted"])
    assert d["features"]["x"]["tests"]["ks"]["status"] == "alert"
    assert d["features"]["plan"]["tests"]["chi2"]["status"] == "alert"
    assert d["performance"]["status"] == "alert"
    assert d["performance"]["relative_change"] < -0.15
    ranged = svc.drift("churn", "v1", window="1h", reference="now-5h..now-3h")
    assert ranged["reference"]["predictions"] == 200 and ranged["status"] == "alert"
    with pytest.raises(InvalidInput) as exc:
        svc.drift("churn", "v1", reference="yesterday")
    assert exc.value.field == "reference"


def test_the_timer_writes_series_and_raises_then_resolves_alerts(svc: ModelService,
                                                                 clock: Clock) -> None:
    seen: list[tuple[str, bool]] = []

    def observe(source: str, name: str, labels: dict[str, str], severity: str,
                annotations: dict[str, str], is_true: bool, value: float | None = None) -> None:
        assert source == "model" and labels == {"model": "churn", "version": "v1"}
        seen.append((name, is_true))

    written: list[Any] = []
    from seismo.store.series import SeriesIndex

    index = SeriesIndex(10_000)
    evaluation = Evaluation(svc, index=index, write=written.append, observe=observe)
    reference = batch(200, ts=clock.ms - 7_200_000, seed=1)
    predictions(svc, "v1", reference)
    outcomes(svc, [{"id": it["id"], "actual": it["prediction"]} for it in reference])
    shifted = batch(300, start=5000, shift=1.5, seed=3)
    predictions(svc, "v1", [{**it, "latency_ms": 900.0} for it in shifted])
    outcomes(svc, [{"id": it["id"], "actual": 1 - it["prediction"]} for it in shifted])
    evaluation.run_once()
    assert set(seen) == {("ModelAccuracyDrop", True), ("ModelDrift", True),
                         ("ModelLatencyHigh", True)}
    names = {index.info(int(s)).metric for s in written[0].slots}
    assert {"model_accuracy", "model_latency_p95_ms", "model_drift_psi",
            "model_predictions_total", "model_f1", "model_auc"} <= names
    psi = [index.info(int(s)).labels for s in written[0].slots
           if index.info(int(s)).metric == "model_drift_psi"]
    assert {"model": "churn", "version": "v1", "feature": "x"} in psi
    seen.clear()
    clock.ms += 2 * 3600 * 1000  # no predictions in the window any more: all resolve
    evaluation.run_once()
    assert set(seen) == {("ModelAccuracyDrop", False), ("ModelDrift", False),
                         ("ModelLatencyHigh", False)}


def test_state_is_replayed_after_a_restart(tmp_path: Path, clock: Clock) -> None:
    s = service(tmp_path, clock)
    s.register({"name": "churn", "version": "v1", "task": "classification",
                "metadata": {"owner": "ml-team"}})
    predictions(s, "v1", batch(150))
    outcomes(s, [{"id": f"p{i}", "actual": 1} for i in range(100)])
    outcomes(s, [{"id": "ghost", "actual": 1}])
    before = s.metrics("churn", "v1")
    s.stop()
    s = service(tmp_path, clock)
    try:
        assert s.metrics("churn", "v1") == before
        described = s.describe("churn")
        assert described["versions"][0]["metadata"] == {"owner": "ml-team"}
        assert described["pending_outcomes"] == 1
        assert described["features"] == {"x": "numeric", "plan": "categorical"}
    finally:
        s.stop()


def test_a_full_queue_is_refused_at_once(tmp_path: Path, clock: Clock) -> None:
    s = service(tmp_path, clock, queue_rows=150)
    try:
        s.register({"name": "m", "version": "v1", "task": "regression"})

        def record(n: int, start: int) -> Record:
            return s.prepare_predictions("m", json.dumps({"version": "v1", "items": [
                {"id": str(start + i), "prediction": 1.0} for i in range(n)]}).encode())

        with s.log._db_lock:  # the writer blocks on its commit: the queue keeps its rows
            first = s.submit(record(100, 0))
            with pytest.raises(Overloaded) as exc:
                s.submit(record(100, 1000))
            assert exc.value.retry_after_s > 0
        assert first.result(timeout=10)["accepted"] == 100
    finally:
        s.stop()


def test_a_full_queue_is_429_with_retry_after_over_http(tmp_path: Path) -> None:
    import threading
    import warnings

    with warnings.catch_warnings():  # starlette 1.x would rather have httpx2; httpx works
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    from seismo.api.app import create_app
    from seismo.config import load_settings
    from seismo.engine import Engine

    engine = Engine(load_settings(None, {"data_dir": tmp_path, "collector": False}, environ={
        "SEISMO_MODELS__QUEUE_ROWS": "150", "SEISMO_DETECT__ENABLED": "false"}))
    with TestClient(create_app(engine), base_url="http://127.0.0.1") as http:
        http.post("/api/v1/models", json={"name": "m", "version": "v1", "task": "regression"})

        def body(start: int) -> dict[str, Any]:
            return {"version": "v1", "items": [{"id": str(start + i), "prediction": 1.0}
                                               for i in range(100)]}

        replies: list[int] = []
        with engine.models.log._db_lock:  # the writer is stuck on its commit
            first = threading.Thread(target=lambda: replies.append(http.post(
                "/api/v1/models/m/predictions", json=body(0)).status_code))
            first.start()
            deadline = time.monotonic() + 5
            while engine.models.log.queued_rows < 100 and time.monotonic() < deadline:
                time.sleep(0.01)
            refused = http.post("/api/v1/models/m/predictions", json=body(1000))
        first.join(timeout=10)
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
        assert "queue is full" in refused.json()["error"]
        assert replies == [200]
        assert http.get("/api/v1/models/m").json()["versions"][0]["predictions_total"] == 100
