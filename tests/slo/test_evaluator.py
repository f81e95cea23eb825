"""The SLO evaluator on crafted series in a real store: each SLI kind, hand-computed; alerts
through the lifecycle; results written back as series."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from seismo.config import load_settings
from seismo.engine import Engine
from seismo.errors import InvalidInput, NotFound
from seismo.query.selector import parse_selector
from seismo.store import Batch

MIN = 60_000
T = 1_700_000_000_000 // MIN * MIN  # the evaluation time: windows are (T - w, T]


def build(tmp_path: Path, clock_ms: int = T) -> Engine:
    settings = load_settings(None, {
        "data_dir": tmp_path / "data", "collector": False, "detect": {"enabled": False},
        "alerting": {"tick_s": 0.05},
        "slo": {"interval_s": 3600},  # the timer evaluates once at start; tests call evaluate
        "slos": [{"name": "from-config", "objective": 0.9,
                  "sli": {"availability": "never_sent"}}]}, environ={})
    e = Engine(settings)
    e.slos.clock = lambda: clock_ms
    return e


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    e = build(tmp_path)
    e.start()
    yield e
    e.stop()


def write(engine: Engine, metric: str, labels: dict[str, str], ts: npt.ArrayLike,
          values: npt.ArrayLike) -> None:
    store = engine.store
    ts = np.asarray(ts, np.int64)
    slots = np.full(len(ts), store.index.slot_for(metric, labels), np.int32)
    store.write([Batch(slots, store.index.ids(slots), ts, np.asarray(values, np.float64))])


def windows(result: dict[str, Any], key: str) -> dict[str, Any]:
    return {w: v[key] for w, v in result["windows"].items()}


def test_good_total_counters_count_increases_across_a_reset(engine: Engine) -> None:
    # One sample a minute for 2 h; the last at T. Total rises 100 a step, good 99 (80 in
    # the last 5 steps); both reset at step 100 (T - 20m) to 50 and 40.
    k = np.arange(121)
    ts = T - (120 - k) * MIN
    total = np.where(k < 100, 100 * k, 100 * (k - 100) + 50)
    good_steps = np.where(k >= 116, 80, 99)
    good = np.cumsum(np.where(k == 0, 0, good_steps))
    good = np.where(k < 100, good, good - good[99] - good_steps[100] + 40)
    write(engine, "req_total", {"job": "api", "code": "200"}, ts, total)
    write(engine, "good_total", {"job": "api"}, ts, good)
    result = engine.slos.put({"name": "errors", "objective": 0.99, "window": "30d",
                              "sli": {"good": "good_total", "total": 'req_total{job="api"}'}})
    # Window (T - w, T]: a step counts when its sample is inside; step 0 has no predecessor.
    assert windows(result, "total") == {"5m": 500, "30m": 2950, "1h": 5950, "6h": 11950,
                                        "3d": 11950, "30d": 11950}
    assert windows(result, "good") == {"5m": 400, "30m": 2816, "1h": 5786, "6h": 11726,
                                       "3d": 11726, "30d": 11726}
    assert result["burn_rates"]["5m"] == pytest.approx(20.0)  # 20 % errors / 1 % budget
    assert result["budget_remaining"] == pytest.approx(1 - (224 / 11950) / 0.01)
    assert result["status"] == "exhausted"


def test_bad_total_counters(engine: Engine) -> None:
    ts = T - np.arange(61)[::-1] * MIN  # 1 h of minutes, the last at T
    write(engine, "req_total", {"job": "web"}, ts, np.arange(61) * 1000.0)
    write(engine, "err_total", {"job": "web"}, ts, np.arange(61) * 1.0)
    result = engine.slos.put({"name": "web", "objective": 0.999, "window": "7d",
                              "sli": {"bad": "err_total", "total": 'req_total{job="web"}'}})
    assert windows(result, "total")["1h"] == 60_000 and windows(result, "good")["1h"] == 59_940
    assert result["burn_rates"] == pytest.approx(
        {"5m": 1.0, "30m": 1.0, "1h": 1.0, "6h": 1.0, "3d": 1.0, "7d": 1.0})
    assert result["budget_remaining"] == pytest.approx(0.0, abs=1e-9)


def test_latency_share_under_the_threshold_and_the_percentile(engine: Engine) -> None:
    recent = np.arange(100) * 0.05  # 0.00 … 4.95 s over the last 100 s
    write(engine, "rt_seconds", {"route": "/old"}, [T - 2 * 3_600_000] * 1, [9.0])
    write(engine, "rt_seconds", {"route": "/api"}, T - 99_000 + np.arange(100) * 1000, recent)
    result = engine.slos.put({"name": "latency", "window": "30d", "sli": {
        "latency": "rt_seconds", "threshold_s": 2, "percentile": 95}})
    assert result["objective"] == 0.95
    five = result["windows"]["5m"]
    assert (five["good"], five["total"]) == (41, 100)  # 0.00 … 2.00 s are ≤ 2 s
    assert five["latency_percentile_s"] == pytest.approx(np.percentile(recent, 95))
    assert five["burn_rate"] == pytest.approx(0.59 / 0.05)
    assert (result["windows"]["3d"]["good"], result["windows"]["3d"]["total"]) == (41, 101)


def test_availability_counts_samples_that_are_up(engine: Engine) -> None:
    ts = T - np.arange(360)[::-1] * 10_000  # every 10 s for 1 h, the last at T
    up = np.ones(360)
    up[-12:-6] = 0  # one minute down, 1-2 minutes ago
    up[-1] = 0.5  # anything but 1 is down
    write(engine, "up", {"job": "api"}, ts, up)
    result = engine.slos.put({"name": "avail", "objective": 0.999, "sli": {
        "availability": 'up{job="api"}'}})
    assert windows(result, "good")["5m"] == 23 and windows(result, "total")["5m"] == 30
    assert windows(result, "good")["1h"] == 353 and windows(result, "total")["1h"] == 360


def active_slo_alerts(engine: Engine) -> dict[str, str]:
    rows = engine.alerting.list_alerts(rule="SLOErrorBudgetBurn", limit=100)
    return {f'{r["labels"]["slo"]} {r["labels"]["window"]}': r["state"] for r in rows}


def wait_for_series(engine: Engine, selector: str) -> float:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = engine.query.instant(parse_selector(selector), 60, T)
        if found and found[0]["value"] is not None:
            return float(found[0]["value"])
        time.sleep(0.02)
    raise AssertionError(f"no {selector} in time")


def test_alerts_fire_and_resolve_and_results_are_series(engine: Engine) -> None:
    ts = T - np.arange(360)[::-1] * 10_000
    up = np.ones(360)
    up[-6:] = 0  # down for the last minute: 5m 6/30 = 20 % errors, 1h 6/360 = 1.67 %
    write(engine, "up", {"job": "db"}, ts, up)
    engine.slos.put({"name": "db", "objective": 0.999, "labels": {"team": "storage"},
                     "sli": {"availability": 'up{job="db"}'}})
    status = engine.slos.status("db")
    assert status["status"] == "exhausted"  # 1.67 % errors over 30 d against 0.1 %
    assert [(c["window"], c["is_true"]) for c in status["conditions"]] == [
        ("1h/5m", True), ("6h/30m", True), ("3d/6h", True)]
    assert active_slo_alerts(engine) == {"db 1h/5m": "firing", "db 6h/30m": "firing",
                                         "db 3d/6h": "firing"}
    page = next(a for a in status["alerts"] if a["labels"]["window"] == "1h/5m")
    assert page["labels"] == {"alertname": "SLOErrorBudgetBurn", "severity": "critical",
                              "slo": "db", "window": "1h/5m", "type": "page",
                              "team": "storage"}
    assert page["value"] == pytest.approx(6 / 360 / 0.001)
    assert "16.67x" in page["annotations"]["summary"]
    assert wait_for_series(engine, 'slo_burn_rate{slo="db", window="5m"}') == \
        pytest.approx(200.0)
    assert wait_for_series(engine, 'slo_sli{slo="db", window="1h"}') == \
        pytest.approx(354 / 360)
    assert wait_for_series(engine, 'slo_error_budget_remaining{slo="db"}') == \
        pytest.approx(1 - 6 / 360 / 0.001)

    # 7 h later, with no new samples: every short window is empty; the budget stays spent.
    engine.slos.evaluate(T + 7 * 3_600_000)
    assert active_slo_alerts(engine) == {"db 1h/5m": "resolved", "db 6h/30m": "resolved",
                                         "db 3d/6h": "resolved"}
    assert engine.slos.results["db"].verdict.status == "exhausted"


def test_deleting_an_slo_resolves_its_alerts(engine: Engine) -> None:
    write(engine, "up", {"job": "q"}, T - np.arange(30)[::-1] * 10_000, np.zeros(30))
    engine.slos.put({"name": "q", "objective": 0.99, "alerting": {"ticket": False},
                     "sli": {"availability": 'up{job="q"}'}})
    assert active_slo_alerts(engine) == {"q 1h/5m": "firing", "q 6h/30m": "firing"}
    engine.slos.put({"name": "q", "objective": 0.99, "alerting": {"page": False},
                     "sli": {"availability": 'up{job="q"}'}}, name="q")
    assert active_slo_alerts(engine) == {"q 1h/5m": "resolved", "q 6h/30m": "resolved",
                                         "q 3d/6h": "firing"}
    engine.slos.delete("q")
    assert set(active_slo_alerts(engine).values()) == {"resolved"}
    with pytest.raises(NotFound):
        engine.slos.status("q")


def test_config_slos_are_read_only_over_the_api(engine: Engine) -> None:
    with pytest.raises(InvalidInput, match=r"defined in seismo\.yaml"):
        engine.slos.delete("from-config")
    with pytest.raises(InvalidInput, match=r"defined in seismo\.yaml"):
        engine.slos.put({"name": "from-config", "objective": 0.5,
                         "sli": {"availability": "x"}}, name="from-config")
    with pytest.raises(InvalidInput, match=r"defined in seismo\.yaml"):
        engine.slos.put({"name": "from-config", "objective": 0.5,
                         "sli": {"availability": "x"}})
    engine.slos.put({"name": "api-made", "objective": 0.5, "sli": {"availability": "x"}})
    with pytest.raises(InvalidInput, match="exists; PUT /api/v1/slos/api-made replaces it"):
        engine.slos.put({"name": "api-made", "objective": 0.5, "sli": {"availability": "x"}})
    with pytest.raises(NotFound):
        engine.slos.put({"name": "nope", "objective": 0.5, "sli": {"availability": "x"}},
                        name="nope")
    listed = {s["name"]: s for s in engine.slos.list_status()}
    assert listed["from-config"]["source"] == "seismo.yaml"
    assert listed["from-config"]["budget_remaining"] is None  # no events: nothing judged
    assert listed["from-config"]["status"] == "ok"


def test_api_slos_and_their_alerts_survive_a_restart(tmp_path: Path) -> None:
    first = build(tmp_path)
    first.start()
    try:
        write(first, "up", {"job": "r"}, T - np.arange(30)[::-1] * 10_000, np.zeros(30))
        first.slos.put({"name": "r", "objective": 0.99, "alerting": {"ticket": False},
                        "sli": {"availability": 'up{job="r"}'}})
        assert active_slo_alerts(first) == {"r 1h/5m": "firing", "r 6h/30m": "firing"}
    finally:
        first.stop()
    again = build(tmp_path, T + 7 * 3_600_000)  # long after: nothing burns any more
    again.start()
    try:
        assert [s.name for s in again.slos.slos()] == ["from-config", "r"]
        deadline = time.monotonic() + 10  # the timer's first evaluation, at start
        while set(active_slo_alerts(again).values()) != {"resolved"}:
            assert time.monotonic() < deadline, active_slo_alerts(again)
            time.sleep(0.02)
    finally:
        again.stop()
