"""Damped additive Holt-Winters, ETS(A,Ad,A), fitted for many series at once.

The innovations state-space form of Hyndman et al., "Forecasting with Exponential
Smoothing" (2008), and FPP3 ch. 8.5-8.7: level, damped trend, additive season, one
Gaussian error. Smoothing parameters are chosen per series by a grid search on the
one-step squared error, the recursion running over a (grid x series) array, one numpy step
per time step, never per series. NaN is a missing value: the state is carried through.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from statistics import NormalDist
from typing import NamedTuple

import numpy as np

ALPHAS = (0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.7, 0.9)
TREND_SHARES = (0.02, 0.1, 0.3)
"""The trend's smoothing as a share of the level's: beta = share x alpha."""
PHIS = (0.9, 0.98, 1.0)
"""Damping; 1.0 is Holt's linear trend (a disk that fills at a steady rate keeps filling)."""
GAMMAS = (0.0, 0.05, 0.15)
"""Seasonal smoothing, capped at 1 - alpha; 0 keeps the season of the history."""
SEASON_BUDGET = 32_000_000
"""Floats of seasonal state held at once (256 MB); more series are fitted in chunks."""


@dataclass
class Ets:
    """Parameters and final state of n fitted series (arrays of length n)."""

    alpha: np.ndarray
    beta: np.ndarray
    phi: np.ndarray
    gamma: np.ndarray
    level: np.ndarray
    trend: np.ndarray
    season: np.ndarray
    """(period, n) seasonal state by phase (t % period); zeros when period is 1."""
    period: int
    sigma: np.ndarray
    """Standard deviation of the one-step errors."""
    columns: int
    """Time steps filtered: the next point is at column `columns`."""

    def predict(self, horizon: int, level: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Point forecast and `level` prediction interval, each (n, horizon).

        Variance of the h-step error: sigma^2 (1 + sum_{j<h} c_j^2) with
        c_j = alpha + beta phi_j + gamma [j % m == 0], phi_j = phi + ... + phi^j
        (Hyndman et al. 2008, table 6.1, class 1).
        """
        h = np.arange(1, horizon + 1)
        powers = self.phi[:, None] ** h[None, :]
        phi_h = np.cumsum(powers, axis=1)  # (n, H)
        phase = (self.columns - 1 + h) % self.period
        mean = self.level[:, None] + phi_h * self.trend[:, None] + self.season[phase].T
        seasonal_lag = (h % self.period == 0) if self.period > 1 else np.zeros(horizon, bool)
        c = (self.alpha[:, None] + self.beta[:, None] * phi_h
             + self.gamma[:, None] * seasonal_lag[None, :])
        spread = np.ones_like(mean)
        spread[:, 1:] += np.cumsum(c[:, :-1] ** 2, axis=1)
        half = z_score(level) * self.sigma[:, None] * np.sqrt(spread)
        return mean, mean - half, mean + half


def z_score(level: float) -> float:
    """The two-sided normal quantile of a prediction interval: 0.8 -> 1.2816."""
    return NormalDist().inv_cdf(0.5 + level / 2)


def grid() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(alpha, beta, phi) of every candidate; with no trend smoothing phi is moot."""
    rows = []
    for alpha in ALPHAS:
        rows.append((alpha, 0.0, 1.0))
        rows.extend((alpha, alpha * share, phi) for share in TREND_SHARES for phi in PHIS)
    table = np.array(rows)
    return table[:, 0], table[:, 1], table[:, 2]


def initial_state(y: np.ndarray, first: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Level and trend before each row's first valid value (seasonally adjusted y)."""
    t = y.shape[1]
    k = int(max(2, min(24, t // 8)))
    idx = np.minimum(first[:, None] + np.arange(2 * k)[None, :], t - 1)
    head = np.take_along_axis(y, idx, axis=1)
    with np.errstate(all="ignore"), quiet():
        early, late = np.nanmean(head[:, :k], axis=1), np.nanmean(head[:, k:], axis=1)
    trend = np.nan_to_num((late - early) / k)
    level = np.take_along_axis(y, first[:, None], axis=1)[:, 0] - trend
    return np.nan_to_num(level), trend


@contextmanager
def quiet() -> Iterator[None]:
    """Silence numpy's 'mean of empty slice' for rows without values."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def run(y: np.ndarray, valid: np.ndarray, first: np.ndarray, alpha: np.ndarray,
        beta: np.ndarray, phi: np.ndarray, gamma: np.ndarray, level0: np.ndarray,
        trend0: np.ndarray, season0: np.ndarray | None, burn: int
        ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """The ETS recursions over the columns of y (n, T) for G parameter sets at once.

    alpha, beta, phi, gamma broadcast to (G, n); season0 is (m, n) or None. Rows hold their
    initial state until their first valid column. Returns the sum of squared one-step
    errors after `burn` columns (G, n), and the final level, trend (G, n) and season
    (m, G, n).
    """
    n, t_len = y.shape
    g = max(np.shape(alpha)[0], np.shape(gamma)[0])
    shape = (g, n)
    alpha, beta = np.broadcast_to(alpha, shape), np.broadcast_to(beta, shape)
    phi, gamma = np.broadcast_to(phi, shape), np.broadcast_to(gamma, shape)
    level = np.broadcast_to(level0, shape).copy()
    trend0 = np.where(beta > 0, trend0, 0.0)  # beta = 0: no trend, not a fixed one
    trend = trend0.copy()
    season = None
    m = 1
    if season0 is not None:
        m = season0.shape[0]
        season = np.broadcast_to(season0[:, None, :], (m, g, n)).copy()
    sse = np.zeros(shape)
    ys = np.ascontiguousarray(np.where(valid, y, 0.0).T)
    vs = np.ascontiguousarray(valid.T.astype(np.float64))
    lead = int(first.max()) if len(first) else 0
    for t in range(t_len):
        if t <= lead:  # a row holds its start state up to its first valid column
            started = t > first
            level = np.where(started, level, level0)
            trend = np.where(started, trend, trend0)
        damped = phi * trend
        expected = level + damped
        if season is not None:
            phase = season[t % m]
            error = (ys[t] - expected - phase) * vs[t]
            phase += gamma * error
        else:
            error = (ys[t] - expected) * vs[t]
        level = expected + alpha * error
        trend = damped + beta * error
        if t >= burn:
            sse += error * error
    return sse, level, trend, season


class _Start(NamedTuple):
    """What every run over y (n, T) starts from."""

    valid: np.ndarray
    first: np.ndarray
    m: int
    adjusted: np.ndarray
    level0: np.ndarray
    trend0: np.ndarray
    burn: int


def _start(y: np.ndarray, period: int, season0: np.ndarray | None) -> _Start:
    """Missing values, each row's first valid column, the season's length, the seasonally
    adjusted series, its initial level and trend, and the columns left out of the error."""
    t_len = y.shape[1]
    valid = ~np.isnan(y)
    first = np.argmax(valid, axis=1)
    m = period if season0 is not None else 1
    adjusted = y if season0 is None else y - season0[np.arange(t_len) % m].T
    level0, trend0 = initial_state(adjusted, first)
    burn = min(m, t_len // 4) if m > 1 else min(4, t_len // 4)
    return _Start(valid, first, m, adjusted, level0, trend0, burn)


def fit(y: np.ndarray, period: int, season0: np.ndarray | None) -> Ets:
    """Fit each row of y (n, T; NaN missing) with its best parameters of the grid.

    `season0` (period, n) is the starting seasonal pattern (from `season.indices`), or None
    for no season. The trend's parameters are searched on the seasonally adjusted series
    first, then gamma with those fixed: two small grids rather than one large one.
    """
    n = y.shape[0]
    valid, first, _, adjusted, level0, trend0, burn = _start(y, period, season0)
    a, b, p = grid()
    sse, *_ = run(adjusted, valid, first, a[:, None], b[:, None], p[:, None],
                  np.zeros((1, 1)), level0, trend0, None, burn)
    best = np.argmin(sse, axis=0)
    alpha, beta, phi = a[best], b[best], p[best]
    gamma = np.zeros(n)
    if season0 is not None:
        gammas = np.minimum(np.array(GAMMAS)[:, None], 1 - alpha[None, :])
        sse, *_ = run(y, valid, first, alpha[None, :], beta[None, :], phi[None, :],
                      gammas, level0, trend0, season0, burn)
        gamma = gammas[np.argmin(sse, axis=0), np.arange(n)]
    return refit(y, period, season0, alpha, beta, phi, gamma)


def refit(y: np.ndarray, period: int, season0: np.ndarray | None, alpha: np.ndarray,
          beta: np.ndarray, phi: np.ndarray, gamma: np.ndarray) -> Ets:
    """Run known parameters over y (n, T) to its end: the state to forecast from."""
    n, t_len = y.shape
    valid, first, m, _, level0, trend0, burn = _start(y, period, season0)
    sse, level, trend, season = run(y, valid, first, alpha[None, :], beta[None, :],
                                    phi[None, :], gamma[None, :], level0, trend0, season0,
                                    burn)
    counted = np.maximum(valid[:, burn:].sum(axis=1) - 3, 1)
    return Ets(alpha=alpha, beta=beta, phi=phi, gamma=gamma, level=level[0], trend=trend[0],
               season=np.zeros((1, n)) if season is None else season[:, 0, :],
               period=m, sigma=np.sqrt(sse[0] / counted), columns=t_len)


def chunk_rows(n: int, period: int) -> int:
    """How many series to fit at once so the seasonal state stays within SEASON_BUDGET."""
    per_row = max(period, 1) * len(GAMMAS)
    return max(1, min(n, SEASON_BUDGET // per_row))
