"""The forecaster on synthetic series whose future is known: accuracy, intervals, crossing."""

from __future__ import annotations

import numpy as np

from seismo.forecast import crossings, forecast_many, resample, rule_step_ms
from seismo.forecast.accuracy import coverage, mase, naive_scale, smape
from seismo.forecast.season import detect

STEP_MS = 300_000  # 5 minutes
DAY = 288  # steps


def seasonal(rows: int, steps: int, seed: int = 0, noise: float = 2.0) -> np.ndarray:
    """A daily sine (amplitude 20) on a rising trend (+2.9 a day) around 100, with noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(steps)
    return (100 + 0.01 * t + 20 * np.sin(2 * np.pi * t / DAY))[None, :] \
        + rng.normal(0, noise, (rows, steps))


def test_daily_season_with_trend_is_forecast_within_3_percent_smape() -> None:
    y = seasonal(50, 5 * DAY)
    history, future = y[:, : 4 * DAY], y[:, 4 * DAY:]
    f = forecast_many(history, STEP_MS, DAY)
    assert set(f.period.tolist()) == {DAY}  # the daily season is found
    assert all(m.startswith("ETS(A,") and m.endswith(",A)") for m in f.model)
    assert np.median(smape(future, f.mean)) < 3.0  # noise alone is ~1.6 %
    assert np.median(mase(future, f.mean, naive_scale(history, f.period))) < 1.0
    # the backtest reported with the forecast tells the same story
    assert np.median(f.smape) < 3.0 and np.median(f.mase) < 1.0


def test_80_percent_intervals_cover_about_80_percent_of_held_out_points() -> None:
    y = seasonal(200, 5 * DAY, seed=1)
    f = forecast_many(y[:, : 4 * DAY], STEP_MS, DAY, level=0.8)
    share = float(np.mean(coverage(y[:, 4 * DAY:], f.lower, f.upper)))
    assert 0.72 <= share <= 0.88, share
    wide = forecast_many(y[:, : 4 * DAY], STEP_MS, DAY, level=0.95)
    share95 = float(np.mean(coverage(y[:, 4 * DAY:], wide.lower, wide.upper)))
    assert 0.9 <= share95 <= 0.99, share95
    assert np.all(f.lower <= f.mean) and np.all(f.mean <= f.upper)


def test_random_walks_get_no_season_and_honest_intervals() -> None:
    rng = np.random.default_rng(2)
    y = 50 + np.cumsum(rng.normal(0, 1, (300, 1500)), axis=1)
    f = forecast_many(y[:, :1440], 60_000, 60)
    assert np.mean(f.period > 1) < 0.05  # no hourly season made up
    share = float(np.mean(coverage(y[:, 1440:], f.lower, f.upper)))
    assert 0.65 <= share <= 0.92, share


def test_time_to_threshold_on_a_linear_trend() -> None:
    # Falls 1 per minute from 500 with a little noise: reaches 100 at minute 400 after the
    # start, i.e. 100 minutes after the last of 300 points of history.
    rng = np.random.default_rng(3)
    t = np.arange(300)
    y = (500 - t + rng.normal(0, 0.5, (20, 300)))
    f = forecast_many(y, 60_000, 180)
    ts = 60_000 * np.arange(1, 181)
    cross = crossings(f.last, np.zeros(20, np.int64), ts, f.mean, f.lower, f.upper, 100.0)
    minutes = cross["at"] / 60_000
    assert cross["falling"].all()
    assert np.all(np.abs(minutes - 101) < 4), minutes  # last point is minute 299
    assert np.all(cross["earliest"] <= cross["at"]) and np.all(cross["at"] <= cross["latest"])
    # a threshold the forecast never reaches within the horizon
    never = crossings(f.last, np.zeros(20, np.int64), ts, f.mean, f.lower, f.upper, -1e6)
    assert np.isnan(never["at"]).all()


def test_short_empty_and_constant_series() -> None:
    y = np.full((3, 100), np.nan)
    y[0, -5:] = [1, 2, 3, 4, 5]  # too short for ETS: naive
    y[2] = 7.0  # constant
    f = forecast_many(y, 60_000, 10)
    assert f.model[0] == "naive" and f.mean[0].tolist() == [5.0] * 10
    assert np.isnan(f.mase[0])
    assert f.model[1] == "none" and np.isnan(f.mean[1]).all()
    assert np.allclose(f.mean[2], 7.0) and np.allclose(f.upper[2] - f.lower[2], 0)
    assert f.mase[2] == 0.0 and f.smape[2] == 0.0


def test_gaps_and_late_starts_are_forecast() -> None:
    y = seasonal(4, 4 * DAY, seed=4)
    y[0, 100:200] = np.nan  # a gap
    y[1, : 2 * DAY] = np.nan  # started two days late: too little for the daily season
    y[2, -3:] = np.nan  # stopped a little before the end
    f = forecast_many(y, STEP_MS, 12)
    assert not np.isnan(f.mean).any()
    assert f.period[0] == DAY and f.period[1] == 1
    assert abs(f.mean[2, 0] - y[3, -1]) < 15


def test_season_detection_and_resampling() -> None:
    y = seasonal(3, 3 * DAY, seed=5)
    assert detect(y, STEP_MS).tolist() == [DAY] * 3
    assert detect(y[:, : 2 * DAY], STEP_MS).tolist() == [1] * 3  # under 2.5 periods
    ts = np.arange(0, 3_600_000, 10_000)
    assert rule_step_ms(ts, 3_600_000) == 10_000
    row = resample(ts, np.ones(len(ts)), int(ts[-1]), 60_000, 60)
    assert row.tolist() == [1.0] * 60


def test_examples_in_docstrings_and_docs_run() -> None:
    import doctest
    import importlib
    from pathlib import Path

    for name in ("forecast.accuracy", "forecast.crossing", "forecast.resample",
                 "forecast.service", "alerting.forecast_rules"):
        module = importlib.import_module(f"seismo.{name}")
        assert doctest.testmod(module).failed == 0, name
    doc = Path(__file__).resolve().parents[2] / "docs" / "forecast.md"
    failed, tried = doctest.testfile(str(doc), module_relative=False)
    assert failed == 0 and tried > 0
