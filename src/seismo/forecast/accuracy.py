"""Forecast accuracy: MASE and sMAPE of a forecast against held-out values, per series.

MASE (Hyndman & Koehler, "Another look at measures of forecast accuracy", 2006) scales the
mean absolute error by the in-sample mean absolute error of the seasonal-naive forecast
(lag m; m = 1 is the naive forecast): below 1, the forecast beat "same as one period ago"
on the history. sMAPE is in percent, 0..200 (the M3/M4 definition).
"""

from __future__ import annotations

import warnings

import numpy as np


def naive_scale(history: np.ndarray, period: np.ndarray) -> np.ndarray:
    """Mean |y_t - y_{t-m}| over each row's history (NaN pairs skipped); m per row."""
    n, t_len = history.shape
    scale = np.full(n, np.nan)
    for m in np.unique(period).tolist():
        rows = np.flatnonzero(period == m)
        lag = int(min(max(m, 1), t_len - 1)) if t_len > 1 else 0
        if lag == 0:
            continue
        diff = np.abs(history[rows, lag:] - history[rows, :-lag])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a row with no pair
            scale[rows] = np.nanmean(diff, axis=1)
    return scale


def mase(actual: np.ndarray, forecast: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Mean absolute scaled error per row; NaN when nothing to compare or no scale.

    >>> mase(np.array([[2.0, 4.0]]), np.array([[1.0, 1.0]]), np.array([2.0])).tolist()
    [1.0]
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mae = np.nanmean(np.abs(actual - forecast), axis=1)
        out: np.ndarray = np.where(scale > 0, mae / np.where(scale > 0, scale, 1.0),
                                   np.where(mae == 0, 0.0, np.nan))
    return out


def smape(actual: np.ndarray, forecast: np.ndarray) -> np.ndarray:
    """Symmetric mean absolute percentage error per row, in percent (0..200).

    >>> smape(np.array([[100.0, 0.0]]), np.array([[110.0, 0.0]])).round(3).tolist()
    [4.762]
    """
    den = np.abs(actual) + np.abs(forecast)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        terms = np.where(den > 0, 2 * np.abs(actual - forecast) / np.where(den > 0, den, 1.0),
                         0.0)
        terms = np.where(np.isnan(actual) | np.isnan(forecast), np.nan, terms)
        out: np.ndarray = 100 * np.nanmean(terms, axis=1)
    return out


def coverage(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Share of each row's held-out values inside [lower, upper]."""
    valid = ~np.isnan(actual)
    inside = (actual >= lower) & (actual <= upper) & valid
    with np.errstate(invalid="ignore", divide="ignore"):
        out: np.ndarray = inside.sum(axis=1) / valid.sum(axis=1)
    return out
