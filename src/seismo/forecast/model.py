"""Forecasts for many series at once: season, model choice by backtest, prediction intervals.

`forecast_many(y, step_ms, horizon)` takes series already resampled to one step (a matrix,
NaN = no value) and, for every row at once:

1. holds out the last min(horizon, T/4) steps; on the rest, detects the season
   (`season.detect`), fits damped Holt-Winters (`ets.fit`) and forecasts the held-out steps,
   as does the seasonal-naive forecast (the naive one without a season);
2. keeps, per series, the model with the lower MASE on the held-out steps (ETS on ties);
   its MASE and sMAPE there are reported with the forecast;
3. runs the kept model over the whole history (ETS with the parameters of step 1) and
   forecasts `horizon` steps with a `level` prediction interval.

A series with fewer than MIN_POINTS values gets the naive forecast and no accuracy figures.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seismo.forecast import ets, season
from seismo.forecast.accuracy import mase, naive_scale, smape

MIN_POINTS = 16
"""Values a series needs for ETS; fewer get the naive forecast."""
LEVEL = 0.8


@dataclass
class Forecasts:
    """Forecasts of n series, `horizon` steps each (arrays with one row per series)."""

    mean: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    model: list[str]
    """`ETS(A,Ad,A)` (error, trend, season as in Hyndman et al.), `seasonal_naive`,
    `naive`, or `none` for a series without values."""
    period: np.ndarray
    """Season in steps; 1 when none."""
    mase: np.ndarray
    smape: np.ndarray
    """Backtest figures on the held-out tail; NaN when there was none."""
    last: np.ndarray
    """The last value of each series (NaN when none)."""
    last_column: np.ndarray
    """Column of that value."""


def _ets_names(fitted: ets.Ets) -> list[str]:
    trend = np.where(fitted.beta == 0, "N", np.where(fitted.phi == 1.0, "A", "Ad"))
    seasonal = "A" if fitted.period > 1 else "N"
    return [f"ETS(A,{t},{seasonal})" for t in trend.tolist()]


def seasonal_naive(y: np.ndarray, m: int, horizon: int, level: float
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """y_{T+h} = the value one period before; sigma sqrt(k+1) intervals (FPP3 5.5)."""
    n, t_len = y.shape
    filled = season.fill(y)
    m = max(1, min(m, t_len))
    h = np.arange(1, horizon + 1)
    k = (h - 1) // m
    source = t_len - 1 + h - m * (k + 1)
    mean = filled[:, source]
    if t_len > m:
        diff = y[:, m:] - y[:, :-m]
        with np.errstate(invalid="ignore"), ets.quiet():
            sigma = np.sqrt(np.nanmean(diff * diff, axis=1))
    else:
        sigma = np.full(n, np.nan)
    half = ets.z_score(level) * sigma[:, None] * np.sqrt(k + 1)[None, :]
    return mean, mean - half, mean + half


def forecast_many(y: np.ndarray, step_ms: int, horizon: int, *, level: float = LEVEL,
                  backtest: bool = True,
                  periods_ms: tuple[int, ...] = season.PERIODS_MS) -> Forecasts:
    """Forecast every row of y (n, T) `horizon` steps past its last column; see the module."""
    y = np.asarray(y, np.float64)
    n, t_len = y.shape
    valid = ~np.isnan(y)
    count = valid.sum(axis=1)
    last_column = np.where(count > 0, t_len - 1 - np.argmax(valid[:, ::-1], axis=1), -1)
    last = np.where(count > 0, y[np.arange(n), np.maximum(last_column, 0)], np.nan)
    out = Forecasts(
        mean=np.full((n, horizon), np.nan), lower=np.full((n, horizon), np.nan),
        upper=np.full((n, horizon), np.nan), model=["none"] * n,
        period=np.ones(n, np.int64), mase=np.full(n, np.nan), smape=np.full(n, np.nan),
        last=last, last_column=last_column)
    few = np.flatnonzero((count > 0) & (count < MIN_POINTS))
    if len(few):
        mean, lower, upper = seasonal_naive(y[few], 1, horizon, level)
        out.mean[few], out.lower[few], out.upper[few] = mean, lower, upper
        for row in few.tolist():
            out.model[row] = "naive"
    rows = np.flatnonzero(count >= MIN_POINTS)
    if not len(rows):
        return out
    hold = min(horizon, t_len // 4) if backtest else 0
    train = y[:, : t_len - hold]
    if hold:
        enough = (~np.isnan(train[rows])).sum(axis=1) >= MIN_POINTS
        _forecast_rows(out, y, rows[~enough], step_ms, horizon, level, 0, periods_ms)
        rows = rows[enough]
    _forecast_rows(out, y, rows, step_ms, horizon, level, hold, periods_ms)
    return out


def _forecast_rows(out: Forecasts, y: np.ndarray, rows: np.ndarray, step_ms: int,
                   horizon: int, level: float, hold: int, periods_ms: tuple[int, ...]) -> None:
    if not len(rows):
        return
    t_len = y.shape[1]
    train = y[rows, : t_len - hold]
    periods = season.detect(train, step_ms, periods_ms)
    for m in np.unique(periods).tolist():
        group = rows[periods == m]
        size = ets.chunk_rows(len(group), m)
        for start in range(0, len(group), size):
            _forecast_group(out, y, group[start:start + size], int(m), horizon, level, hold)


def _forecast_group(out: Forecasts, y: np.ndarray, rows: np.ndarray, m: int, horizon: int,
                    level: float, hold: int) -> None:
    t_len = y.shape[1]
    full = y[rows]
    train = full[:, : t_len - hold]
    fitted = ets.fit(train, m, season.indices(train, m) if m > 1 else None)
    use_naive = np.zeros(len(rows), bool)
    if hold:
        actual = full[:, t_len - hold:]
        by_ets = fitted.predict(hold, level)[0]
        by_naive = seasonal_naive(train, m, hold, level)[0]
        scale = naive_scale(train, np.full(len(rows), m))
        mase_ets, mase_naive = mase(actual, by_ets, scale), mase(actual, by_naive, scale)
        use_naive = np.nan_to_num(mase_naive, nan=np.inf) < np.nan_to_num(mase_ets, nan=np.inf)
        out.mase[rows] = np.where(use_naive, mase_naive, mase_ets)
        out.smape[rows] = np.where(use_naive, smape(actual, by_naive), smape(actual, by_ets))
        fitted = ets.refit(full, m, season.indices(full, m) if m > 1 else None,
                           fitted.alpha, fitted.beta, fitted.phi, fitted.gamma)
    mean, lower, upper = fitted.predict(horizon, level)
    if use_naive.any():
        naive = seasonal_naive(full, m, horizon, level)
        for target, source in zip((mean, lower, upper), naive, strict=True):
            target[use_naive] = source[use_naive]
    out.mean[rows], out.lower[rows], out.upper[rows] = mean, lower, upper
    out.period[rows] = m
    names = _ets_names(fitted)
    naive_name = "seasonal_naive" if m > 1 else "naive"
    for i, row in enumerate(rows.tolist()):
        out.model[row] = naive_name if use_naive[i] else names[i]
