"""Insights from a running engine: crafted situations give findings, calm data gives none."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from seismo.config import load_settings
from seismo.engine import Engine, now_ms
from seismo.ingest.schema import SeriesIn
from seismo.query.selector import parse_selector

MIN = 60_000
ENV = {"SEISMO_DETECT__ENABLED": "false"}


def start_engine(tmp_path: Path, **flags: Any) -> Engine:
    engine = Engine(load_settings(None, {"data_dir": tmp_path, "collector": False, **flags},
                                  environ=ENV))
    engine.start()
    return engine


def ingest(engine: Engine, series: list[SeriesIn]) -> None:
    prepared = engine.validator.columnar(series, now_ms())
    assert prepared.rejected == 0, prepared.errors
    engine.ingestor.submit_blocking(prepared.batch)


def calm(end: int, rng: np.random.Generator) -> list[SeriesIn]:
    """Stationary noise, a daily-flat gauge and a rising counter: nothing to report."""
    ts = [end - i * 5 * MIN for i in range(72)][::-1]
    out = [SeriesIn(metric="calm_gauge", labels={"i": str(i)}, timestamps=ts,
                    values=(level + rng.normal(0, level * 0.05, 72)).round(3).tolist())
           for i, level in enumerate((1.0, 40.0, 300.0, 5000.0))]
    out.append(SeriesIn(metric="requests_total", labels={}, timestamps=ts,
                        values=[float(i * 100) for i in range(72)]))
    out.append(SeriesIn(metric="cpu_usage_percent", labels={}, timestamps=ts,
                        values=(35 + rng.normal(0, 3, 72)).round(2).tolist()))
    return out


@pytest.fixture
def crafted(tmp_path: Path) -> Iterator[Engine]:
    engine = start_engine(
        tmp_path,
        rules=[{"name": "Flappy", "expr": "flap > 5", "severity": "low"}],
        slos=[{"name": "api-up", "objective": 0.99, "window": "1h",
               "sli": {"availability": 'up{job="api"}'}}])
    try:
        end = now_ms() // 1000 * 1000
        rng = np.random.default_rng(3)
        ts = [end - i * 5 * MIN for i in range(72)][::-1]
        ingest(engine, [*calm(end, rng),
                        SeriesIn(metric="disk_used_percent", labels={"mount": "/data"},
                                 timestamps=ts, values=(50 + 0.5 * np.arange(72) +
                                                        rng.normal(0, 0.5, 72)).tolist()),
                        SeriesIn(metric="up", labels={"job": "api"},
                                 timestamps=[end - i * 10_000 for i in range(30)][::-1],
                                 values=[0.0] * 30),
                        SeriesIn(metric="jittery", labels={}, timestamps=ts,
                                 values=rng.normal(0, 1, 72).tolist())])
        for i in range(14):  # 7 times over 5, 7 times back
            ingest(engine, [SeriesIn(metric="flap", values=[10.0 if i % 2 == 0 else 0.0])])
            assert engine.alerting.drain(5)
        engine.slos.evaluate()  # as its timer would (insights read the last judgment)
        slot = engine.store.index.select(parse_selector("jittery"))[0]
        n = len(engine.store.index)
        # the detectors' counters, as if they had flagged 30 % of 1000 points
        engine.watcher.scored, engine.watcher.flagged = np.zeros(n, np.int64), np.zeros(n,
                                                                                       np.int64)
        engine.watcher.scored[slot], engine.watcher.flagged[slot] = 1000, 300
        yield engine
    finally:
        engine.stop()


def test_crafted_situations_become_ranked_findings(crafted: Engine) -> None:
    report = crafted.insights.findings()
    assert report["errors"] == {}
    found = {(f["kind"], _subject(f)) for f in report["findings"]}
    assert found == {("slo_budget", "api-up"), ("capacity", "disk_used_percent"),
                     ("trend", "disk_used_percent"), ("noisy_rule", "Flappy"),
                     ("anomaly_rate", "jittery")}, report["findings"]
    risks = [f["risk"] for f in report["findings"]]
    assert risks == sorted(risks, key=("high", "medium", "low").index)
    by_kind = {f["kind"]: f for f in report["findings"]}
    slo = by_kind["slo_budget"]
    assert slo["risk"] == "high" and slo["numbers"]["status"] == "exhausted"
    capacity = by_kind["capacity"]
    assert capacity["numbers"]["threshold"] == 90 and capacity["risk"] == "high"
    assert capacity["numbers"]["eta_s"] == pytest.approx(3600 * (90 - 85.5) / 6, rel=0.3)
    trend = by_kind["trend"]
    assert trend["numbers"]["direction"] == "rising"
    assert trend["numbers"]["slope_per_hour"] == pytest.approx(6, rel=0.1)
    assert trend["numbers"]["p_value"] < 1e-6 and trend["action"]
    noisy = by_kind["noisy_rule"]
    assert noisy["numbers"]["fired"] == 7 and noisy["numbers"]["resolved"] == 7
    assert "resolve:" in noisy["action"] and "for: 1m" in noisy["action"]
    assert by_kind["anomaly_rate"]["numbers"]["anomaly_rate"] == 0.3
    assert all(f["summary"] and f["action"] for f in report["findings"])
    # the selector narrows the series-based checks; limit cuts the list
    narrowed = crafted.insights.findings(selector="calm_gauge", limit=1)
    assert narrowed["total"] == 2 and len(narrowed["findings"]) == 1  # the SLO and the rule


def _subject(finding: dict[str, Any]) -> str:
    s = finding["subject"]
    return str(s.get("slo") or s.get("rule") or s.get("metric"))


def test_calm_data_gives_no_findings(tmp_path: Path) -> None:
    engine = start_engine(tmp_path, rules=[{"name": "Hot", "expr": "cpu_usage_percent > 90"}])
    try:
        end = now_ms() // 1000 * 1000
        ingest(engine, calm(end, np.random.default_rng(11)))
        assert engine.alerting.drain(5)
        report = engine.insights.findings()
        assert report["findings"] == [] and report["errors"] == {}
        assert report["checked"]["series"] == 5  # the counter is not examined
        assert report["checked"]["sessions"] == 0
        assert engine.insights.jobs()["running"] == []
    finally:
        engine.stop()
