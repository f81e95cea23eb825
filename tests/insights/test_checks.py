"""The checks as plain functions: trend fits, capacity, noisy rules, SLOs and models."""

from __future__ import annotations

import numpy as np
import pytest

from seismo.alerting.rules import parse_rule
from seismo.config import CapacityRule
from seismo.insights.budgets import model_findings, slo_finding
from seismo.insights.finding import Finding, rank
from seismo.insights.noise import anomaly_rate_finding, noisy_rule_finding
from seismo.insights.trends import capacity_finding, fit_trend, trend_finding

MIN = 60_000
T = np.arange(60, dtype=np.int64) * 6 * MIN  # 6 h in 6 min steps


def test_a_rising_line_with_noise_is_a_significant_trend() -> None:
    rng = np.random.default_rng(1)
    values = 50 + 0.1 * np.arange(60) * 6 + rng.normal(0, 2, 60)  # +6 per hour
    trend = fit_trend(T, values)
    assert trend is not None
    assert trend.slope_per_s * 3600 == pytest.approx(6, rel=0.1)
    assert trend.p_value < 1e-10 and trend.is_significant(0.001, 0.2)
    finding = trend_finding("disk_used_percent", {"host": "a"}, trend, "6h")
    assert finding.kind == "trend" and finding.numbers["direction"] == "rising"
    assert finding.risk == "medium"  # about +70 % of its level
    assert "rising" in finding.summary and 'host="a"' in finding.summary
    rule = CapacityRule(selector="disk_used_percent", threshold=90, horizon="1d")
    capacity = capacity_finding("disk_used_percent", {"host": "a"}, trend, rule)
    assert capacity is not None and capacity.risk == "high"
    # the line is near 85 at the end: 90 is reached in under an hour at +6/h
    assert 0 < capacity.numbers["eta_s"] < 3600
    far = CapacityRule(selector="x", threshold=1000, horizon="1d")
    assert capacity_finding("x", {}, trend, far) is None
    below = CapacityRule(selector="x", threshold=10, direction="below")
    assert capacity_finding("x", {}, trend, below) is None


def test_calm_series_are_not_trends() -> None:
    rng = np.random.default_rng(7)
    significant = 0
    for _ in range(200):
        level = rng.uniform(1, 1000)
        values = level + rng.normal(0, level * 0.05, 60)
        trend = fit_trend(T, values)
        assert trend is not None
        significant += trend.is_significant(0.001, 0.2)
    assert significant == 0
    flat = fit_trend(T, np.full(60, 3.0))
    assert flat is not None and not flat.is_significant(0.001, 0.2)
    assert fit_trend(T[:5], np.arange(5.0)) is None  # too few points


def test_noisy_rule_advice_depends_on_what_the_rule_lacks() -> None:
    count = {"rule": "Flappy", "source": "rule", "fired": 20, "resolved": 19, "alerts": 1}
    bare = parse_rule({"name": "Flappy", "expr": "x > 5"})
    finding = noisy_rule_finding(count, bare, 6, "1h")
    assert finding is not None and finding.risk == "medium"
    assert "resolve:" in finding.action and "for: 1m" in finding.action
    held = parse_rule({"name": "Flappy", "expr": "x > 5", "resolve": "x < 4", "for": "30s"})
    finding = noisy_rule_finding(count, held, 6, "1h")
    assert finding is not None and "keep_firing_for" in finding.action
    assert "resolve:" not in finding.action
    assert noisy_rule_finding({**count, "fired": 2}, bare, 6, "1h") is None
    assert noisy_rule_finding({**count, "source": "slo"}, bare, 6, "1h") is None


def test_anomaly_rate_threshold_and_minimum_points() -> None:
    row = {"metric": "m", "labels": {}, "points": 1000, "anomalous": 300, "anomaly_rate": 0.3}
    finding = anomaly_rate_finding(row, 0.05, 200)
    assert finding is not None and finding.risk == "medium"
    assert anomaly_rate_finding({**row, "anomaly_rate": 0.01}, 0.05, 200) is None
    assert anomaly_rate_finding({**row, "points": 50}, 0.05, 200) is None


def test_rank_puts_high_risk_first() -> None:
    low = Finding("trend", "low", "a", "", {}, score=100)
    high = Finding("slo_budget", "high", "b", "", {}, score=0.1)
    medium = Finding("noisy_rule", "medium", "c", "", {}, score=5)
    assert [f.risk for f in rank([low, medium, high])] == ["high", "medium", "low"]


def test_slo_and_model_findings_from_their_stages_reports() -> None:
    status = {"name": "api", "status": "warning", "budget_remaining": 0.4, "window": "30d",
              "objective": 0.999, "burn_rates": {"1h": 2.0}}
    finding = slo_finding(status, 0.25)
    assert finding is not None and finding.risk == "medium"
    assert finding.numbers["budget_spent_in_s"] == pytest.approx(0.4 * 30 * 86_400 / 2)
    assert slo_finding({**status, "status": "ok"}, 0.25) is None  # 40 % left is fine
    assert slo_finding({**status, "status": "ok", "budget_remaining": 0.2}, 0.25) is not None
    drift = {"model": "churn", "version": "v2", "window": "1h", "status": "alert",
             "drifted": ["age"], "features": {"age": {"tests": {"psi": {"value": 0.4}}}},
             "performance": {"status": "alert", "metric": "accuracy", "reference": 0.9,
                             "current": 0.7, "relative_change": -0.2222, "threshold": 0.15}}
    kinds = {f.kind: f for f in model_findings(drift)}
    assert set(kinds) == {"model_degrading", "model_drift"}
    assert kinds["model_degrading"].risk == "high" and "0.9 to 0.7" in kinds[
        "model_degrading"].summary
    assert kinds["model_drift"].numbers["psi"] == {"age": 0.4}
    calm = {**drift, "status": "ok", "drifted": [],
            "performance": {**drift["performance"], "status": "ok"}}
    assert model_findings(calm) == []


def test_docstring_examples_run() -> None:
    import doctest
    import importlib

    for name in ("seismo.energy.integrate", "seismo.insights.trends"):
        failed, tried = doctest.testmod(importlib.import_module(name))
        assert tried > 0 and failed == 0
