"""Forecast rules in the evaluator: `forecast(disk_free[1h], 30m) < 0` fires before the disk
is full, not on a flat series, refits on the timer only, and resolves when data stops."""

from __future__ import annotations

import numpy as np
import pytest

from seismo.alerting.forecast_rules import format_duration_s
from seismo.alerting.rules import parse_rule
from seismo.errors import InvalidInput
from tests.alerting.test_evaluator import World

NOW = 1_700_000_000_000
RULE = {"name": "DiskFull", "expr": "forecast(disk_free[1h], 30m) < 0", "severity": "high",
        "annotations": {"summary": "{{ $labels.host }} full in {{ $crosses_in }}",
                        "at": "{{ $crosses_at }}", "value": "{{ $value }}"}}


def world() -> World:
    w = World(RULE)
    w.clock.ms = NOW
    rng = np.random.default_rng(0)
    i = np.arange(360)  # one hour, a sample every 10 s
    # host a loses 12 units a minute: 282 left at the end, empty in ~23.5 minutes
    w.push("disk_free", {"host": "a"}, list(1000 - 2.0 * i + rng.normal(0, 1, 360)), 10_000)
    w.push("disk_free", {"host": "b"}, list(500 + rng.normal(0, 1, 360)), 10_000)  # flat
    # host c falls too slowly to be empty within 30 minutes (in ~2.6 h)
    w.push("disk_free", {"host": "c"}, list(2000 - 0.5 * i + rng.normal(0, 1, 360)), 10_000)
    return w


def test_fires_before_the_threshold_is_crossed_and_not_on_flat_or_slow_series() -> None:
    w = world()
    assert w.states() == {} and w.evaluator.forecast_fits == 0  # batches do not fit
    w.evaluator.tick()
    assert w.evaluator.forecast_fits == 3
    assert w.states() == {"host=a": "firing"}
    assert float(w.head.latest[1][w.index.slot_for("disk_free", {"host": "a"})]) > 250
    tracked = next(iter(w.evaluator.alerts.values()))
    # $value: the forecast at the horizon, 30 minutes of 12 a minute below 282
    assert tracked.alert.value == pytest.approx(282 - 360, abs=40)
    summary = tracked.annotations["summary"]
    assert summary.startswith("a full in 2") and "m" in summary, summary
    minutes = int(summary.removeprefix("a full in ").split("m")[0])
    assert 21 <= minutes <= 26, summary
    assert tracked.annotations["at"].startswith("2023-11-14T")


def test_refits_on_the_timer_at_most_every_interval() -> None:
    w = world()
    w.evaluator.tick()
    assert w.evaluator.forecast_fits == 3
    for _ in range(5):  # new samples and ticks within the interval: no refit
        w.clock.ms += 1000
        w.push("disk_free", {"host": "a"}, [250.0], 1000)
        w.evaluator.tick()
    assert w.evaluator.forecast_fits == 3
    w.clock.ms += 60_000
    w.evaluator.tick()
    assert w.evaluator.forecast_fits == 6


def test_the_refit_budget_spreads_series_over_ticks() -> None:
    w = world()
    w.evaluator.forecast_fits_per_tick = 2
    w.evaluator.tick()
    assert w.evaluator.forecast_fits == 2
    w.evaluator.tick()
    assert w.evaluator.forecast_fits == 3
    w.evaluator.tick()
    assert w.evaluator.forecast_fits == 3


def test_a_series_that_stops_reporting_resolves() -> None:
    w = world()
    w.evaluator.tick()
    assert w.states() == {"host=a": "firing"}
    w.clock.ms += 31 * 60_000  # longer than the horizon without a sample
    w.evaluator.tick()
    assert w.states() == {}
    assert [c[1] for c in w.changes] == ["firing", "resolved"]


def test_too_few_samples_kept_leaves_the_alert_as_it_is() -> None:
    w = world()
    w.evaluator.tick()
    w.evaluator.windows.forget(set())  # as after a restart: the windows refill from now on
    w.clock.ms += 60_000
    w.evaluator.tick()
    assert w.states() == {"host=a": "firing"}


def test_forecast_rules_parse_and_resolve_is_not_a_forecast() -> None:
    rule = parse_rule({"name": "Full", "expr": "forecast(disk_free[6h], 4h) < 0",
                       "resolve": "disk_free > 1000"})
    assert str(rule.expr) == "forecast(disk_free[6h], 4h) < 0"
    with pytest.raises(InvalidInput) as err:
        parse_rule({"name": "Full", "expr": "disk_free < 0",
                    "resolve": "forecast(disk_free[6h], 4h) > 0"})
    assert err.value.field == "rule.resolve"


def test_format_duration() -> None:
    assert [format_duration_s(s) for s in (0, 59.6, 61, 3600, 8000, 90_061)] == \
        ["0s", "1m", "1m1s", "1h", "2h13m", "1d1h"]
