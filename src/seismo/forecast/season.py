"""Season detection and seasonal indices of resampled series, for the forecaster.

A candidate period (an hour, a day, a week; in steps) is kept for a series when the
autocorrelation at that lag of the series minus its centred moving average is at least
ACF_MIN, the test seismo's seasonal detector uses (`detect/seasonal.py`), and the history
spans at least MIN_PERIODS periods. Reference: Hyndman & Athanasopoulos, "Forecasting:
Principles and Practice", 3rd ed., ch. 2.8 (autocorrelation), 3.4 (classical decomposition).
"""

from __future__ import annotations

import warnings

import numpy as np

PERIODS_MS = (3_600_000, 86_400_000, 604_800_000)
ACF_MIN = 0.3
MIN_PERIODS = 2.5
"""Two and a half periods: the moving average eats one, the lag another."""
MIN_POINTS = 4
"""A period shorter than this many steps is not a season at this step."""
MAX_POINTS = 10_080
"""A week at one minute."""


def fill(y: np.ndarray) -> np.ndarray:
    """Rows with gaps linearly interpolated; before the first / after the last value, held."""
    out = y.copy()
    for row in np.flatnonzero(np.isnan(y).any(axis=1)):
        valid = ~np.isnan(y[row])
        if valid.any():
            x = np.flatnonzero(valid)
            out[row] = np.interp(np.arange(y.shape[1]), x, y[row, x])
    return out


def moving_average(y: np.ndarray, m: int) -> np.ndarray:
    """Centred moving average of length m along each row; NaN where the window is short."""
    n, t_len = y.shape
    out = np.full((n, t_len), np.nan)
    if t_len < m:
        return out
    csum = np.cumsum(np.concatenate([np.zeros((n, 1)), y], axis=1), axis=1)
    trailing = (csum[:, m:] - csum[:, :-m]) / m  # mean of columns i .. i+m-1
    start = m // 2
    out[:, start:start + trailing.shape[1]] = trailing
    return out


def candidates(step_ms: int, columns: int, periods_ms: tuple[int, ...] = PERIODS_MS
               ) -> list[int]:
    """Periods (in steps) that fit this step and history length."""
    found = []
    for period_ms in periods_ms:
        m = round(period_ms / step_ms)
        if MIN_POINTS <= m <= MAX_POINTS and columns >= MIN_PERIODS * m and m not in found:
            found.append(m)
    return found


def autocorrelation(residual: np.ndarray, lag: int) -> np.ndarray:
    """Autocorrelation at `lag` of each row (NaN = missing), over the valid pairs."""
    x, y = residual[:, lag:], residual[:, :-lag]
    valid = ~(np.isnan(x) | np.isnan(y))
    count = np.maximum(valid.sum(axis=1), 1)
    x, y = np.where(valid, x, 0.0), np.where(valid, y, 0.0)
    xc = np.where(valid, x - (x.sum(axis=1) / count)[:, None], 0.0)
    yc = np.where(valid, y - (y.sum(axis=1) / count)[:, None], 0.0)
    den = np.sqrt((xc * xc).sum(axis=1) * (yc * yc).sum(axis=1))
    return np.where(den > 0, (xc * yc).sum(axis=1) / np.where(den > 0, den, 1.0), 0.0)


def detect(y: np.ndarray, step_ms: int, periods_ms: tuple[int, ...] = PERIODS_MS
           ) -> np.ndarray:
    """The period (in steps) of each row of y (n, T), 1 when it has none."""
    n, t_len = y.shape
    period = np.ones(n, np.int64)
    best = np.full(n, ACF_MIN)
    filled = fill(y)
    valid = ~np.isnan(y)
    span = np.where(valid.any(axis=1),
                    t_len - np.argmax(valid[:, ::-1], axis=1) - np.argmax(valid, axis=1), 0)
    for m in candidates(step_ms, t_len, periods_ms):
        residual = np.where(valid, filled - moving_average(filled, m), np.nan)
        r = autocorrelation(residual, m)
        better = (r >= best) & (span >= MIN_PERIODS * m)
        period[better], best[better] = m, r[better]
    return period


def indices(y: np.ndarray, m: int) -> np.ndarray:
    """Seasonal indices (m, n) by phase t % m: the median of the series minus its moving
    average at each phase, centred to sum to zero."""
    n, t_len = y.shape
    filled = fill(y)
    valid = ~np.isnan(y)
    # Gaps inside a row count with their interpolated values, so that a phase that is never
    # sampled (a step finer than the samples) gets its neighbours' index, not zero.
    column = np.arange(t_len)[None, :]
    inside = ((column >= np.argmax(valid, axis=1)[:, None])
              & (column <= (t_len - 1 - np.argmax(valid[:, ::-1], axis=1))[:, None]))
    residual = np.where(inside, filled - moving_average(filled, m), np.nan)
    periods = -(-t_len // m)
    padded = np.full((n, periods * m), np.nan)
    padded[:, :t_len] = residual
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a phase with no values
        by_phase = np.nanmedian(padded.reshape(n, periods, m), axis=1)
    by_phase = np.nan_to_num(by_phase)
    centred: np.ndarray = (by_phase - by_phase.mean(axis=1, keepdims=True)).T.copy()
    return centred
