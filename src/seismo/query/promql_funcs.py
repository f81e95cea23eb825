"""PromQL's range functions, aggregations and histogram_quantile, vectorised over steps.

Each mirrors the function of the same name in Prometheus' `promql/functions.go` and
`promql/quantile.go` (v2), so that results agree with Prometheus to float rounding.
A window at step t holds the samples with t - range < ts <= t.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

_GATHER_CELLS = 1 << 22  # bound on the (steps × window) scratch array of *_over_time


@dataclass
class SeriesSamples:
    ts: np.ndarray  # int64 ms, ascending
    values: np.ndarray  # float64


def windows(ts: np.ndarray, at: np.ndarray, range_ms: int) -> tuple[np.ndarray, np.ndarray]:
    """[lo, hi) sample indices of the window (at - range_ms, at] for every step."""
    lo = np.searchsorted(ts, at - range_ms, side="right")
    hi = np.searchsorted(ts, at, side="right")
    return lo, hi


# -- rate, increase, delta (extrapolatedRate) and irate, idelta (instantValue) ----------

def _extrapolated(s: SeriesSamples, at: np.ndarray, range_ms: int, *, counter: bool,
                  rate: bool) -> np.ndarray:
    lo, hi = windows(s.ts, at, range_ms)
    out = np.full(len(at), np.nan)
    ok = hi - lo >= 2  # no rate without two samples
    if not ok.any():
        return out
    first, last = lo[ok], hi[ok] - 1
    v, t = s.values, s.ts
    result = v[last] - v[first]
    if counter:  # a fall is a reset: add the value before it back
        drops = np.where(v[1:] < v[:-1], v[:-1], 0.0)
        resets = np.concatenate([[0.0], np.cumsum(drops)])
        result = result + resets[last] - resets[first]
    to_start = (t[first] - (at[ok] - range_ms)) / 1000
    to_end = (at[ok] - t[last]) / 1000
    sampled = (t[last] - t[first]) / 1000
    average = sampled / (hi[ok] - lo[ok] - 1)
    if counter:  # do not extrapolate below zero
        with np.errstate(all="ignore"):
            to_zero = sampled * (v[first] / result)
        shorter = (result > 0) & (v[first] >= 0) & (to_zero < to_start)
        to_start = np.where(shorter, to_zero, to_start)
    threshold = average * 1.1
    interval = (sampled + np.where(to_start < threshold, to_start, average / 2)
                + np.where(to_end < threshold, to_end, average / 2))
    with np.errstate(all="ignore"):
        result = result * (interval / sampled)
    if rate:
        result = result / (range_ms / 1000)
    out[ok] = result
    return out


def _instant(s: SeriesSamples, at: np.ndarray, range_ms: int, *, rate: bool) -> np.ndarray:
    lo, hi = windows(s.ts, at, range_ms)
    out = np.full(len(at), np.nan)
    ok = hi - lo >= 2
    last, prev = hi[ok] - 1, hi[ok] - 2
    v = s.values
    delta = v[last] - v[prev]
    if not rate:
        out[ok] = delta
        return out
    delta = np.where(v[last] < v[prev], v[last], delta)  # a counter reset
    interval = (s.ts[last] - s.ts[prev]) / 1000
    with np.errstate(all="ignore"):
        out[ok] = np.where(interval > 0, delta / interval, np.nan)
    return out


# -- *_over_time ----------------------------------------------------------------------

def _over_time(reduce: Callable[[np.ndarray, np.ndarray | None], np.ndarray]
               ) -> Callable[[SeriesSamples, np.ndarray, int, np.ndarray | None], np.ndarray]:
    """A range function that applies `reduce` to the (steps × window) values, NaN-padded."""

    def apply(s: SeriesSamples, at: np.ndarray, range_ms: int,
              param: np.ndarray | None) -> np.ndarray:
        lo, hi = windows(s.ts, at, range_ms)
        out = np.full(len(at), np.nan)
        width = int((hi - lo).max()) if len(at) else 0
        if width == 0:
            return out
        chunk = max(1, _GATHER_CELLS // width)
        offsets = np.arange(width)
        for begin in range(0, len(at), chunk):
            part = slice(begin, begin + chunk)
            idx = lo[part, None] + offsets[None, :]
            inside = idx < hi[part, None]
            gathered = np.where(inside, s.values[np.minimum(idx, len(s.values) - 1)], np.nan)
            with warnings.catch_warnings():  # empty windows are normal: NaN
                warnings.simplefilter("ignore", RuntimeWarning)
                out[part] = reduce(gathered, None if param is None else param[part])
        out[hi <= lo] = np.nan
        return out

    return apply


def _quantile_rows(values: np.ndarray, q: np.ndarray | None) -> np.ndarray:
    """The q-quantile of each row's non-NaN values (q per row), as Prometheus' `quantile`:
    rank q * (n - 1), linear between its neighbours; -Inf for q < 0, +Inf for q > 1."""
    assert q is not None
    count = (~np.isnan(values)).sum(axis=1)
    ordered = np.sort(np.where(np.isnan(values), np.inf, values), axis=1)  # NaNs last
    rank = np.clip(q, 0, 1) * np.maximum(count - 1, 0)
    lower = np.floor(np.nan_to_num(rank)).astype(np.int64)
    upper = np.minimum(lower + 1, np.maximum(count - 1, 0))
    weight = rank - lower
    low = np.take_along_axis(ordered, lower[:, None], axis=1)[:, 0]
    high = np.take_along_axis(ordered, upper[:, None], axis=1)[:, 0]
    with np.errstate(invalid="ignore"):
        result = low * (1 - weight) + high * weight
    result = np.where(count == 0, np.nan, result)
    out: np.ndarray = np.where(q < 0, -np.inf, np.where(q > 1, np.inf, result))
    return out


def _last(s: SeriesSamples, at: np.ndarray, range_ms: int,
          param: np.ndarray | None) -> np.ndarray:
    lo, hi = windows(s.ts, at, range_ms)
    return np.where(hi > lo, s.values[np.maximum(hi - 1, 0)] if len(s.values) else np.nan,
                    np.nan)


RangeFunction = Callable[[SeriesSamples, np.ndarray, int, np.ndarray | None], np.ndarray]
RANGE_FUNCTIONS: dict[str, RangeFunction] = {
    "rate": lambda s, at, r, p: _extrapolated(s, at, r, counter=True, rate=True),
    "increase": lambda s, at, r, p: _extrapolated(s, at, r, counter=True, rate=False),
    "delta": lambda s, at, r, p: _extrapolated(s, at, r, counter=False, rate=False),
    "irate": lambda s, at, r, p: _instant(s, at, r, rate=True),
    "idelta": lambda s, at, r, p: _instant(s, at, r, rate=False),
    "avg_over_time": _over_time(lambda g, p: np.nanmean(g, axis=1)),
    "min_over_time": _over_time(lambda g, p: np.nanmin(g, axis=1)),
    "max_over_time": _over_time(lambda g, p: np.nanmax(g, axis=1)),
    "sum_over_time": _over_time(lambda g, p: np.nansum(g, axis=1)),
    "count_over_time": _over_time(lambda g, p: (~np.isnan(g)).sum(axis=1).astype(float)),
    "stddev_over_time": _over_time(lambda g, p: np.nanstd(g, axis=1)),
    "stdvar_over_time": _over_time(lambda g, p: np.nanvar(g, axis=1)),
    "quantile_over_time": _over_time(_quantile_rows),
    "last_over_time": _last,
}


# -- aggregation operators: (series × steps) → steps -----------------------------------

def _sum(values: np.ndarray, param: np.ndarray | None) -> np.ndarray:
    present = ~np.isnan(values)
    return np.where(present.any(axis=0), np.where(present, values, 0.0).sum(axis=0), np.nan)


def _count(values: np.ndarray, param: np.ndarray | None) -> np.ndarray:
    count = (~np.isnan(values)).sum(axis=0).astype(float)
    return np.where(count > 0, count, np.nan)


def _stdvar(values: np.ndarray, param: np.ndarray | None) -> np.ndarray:
    count = _count(values, None)
    mean = _sum(values, None) / count
    variance: np.ndarray = _sum((values - mean[None, :]) ** 2, None) / count
    return variance


def _quantile(values: np.ndarray, param: np.ndarray | None) -> np.ndarray:
    return _quantile_rows(values.T, param)


AGGREGATORS: dict[str, Callable[[np.ndarray, np.ndarray | None], np.ndarray]] = {
    "sum": _sum,
    "avg": lambda v, p: _sum(v, p) / _count(v, p),
    "count": _count,
    "min": lambda v, p: np.fmin.reduce(v, axis=0),
    "max": lambda v, p: np.fmax.reduce(v, axis=0),
    "group": lambda v, p: np.where(np.isnan(_count(v, p)), np.nan, 1.0),
    "stdvar": _stdvar,
    "stddev": lambda v, p: np.sqrt(_stdvar(v, p)),
    "quantile": _quantile,
}


def topk(values: np.ndarray, k: np.ndarray, bottom: bool) -> np.ndarray:
    """Which cells are among the k largest (smallest) of their step, as a bool array."""
    present = ~np.isnan(values)
    key = np.where(present, values, np.inf if bottom else -np.inf)
    order = np.argsort(key if bottom else -key, axis=0, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(len(values))[:, None], axis=0)
    limit = np.nan_to_num(k, nan=0.0).astype(np.int64)
    keep: np.ndarray = present & (rank < limit[None, :])
    return keep


# -- histogram_quantile ---------------------------------------------------------------

def bucket_quantiles(q: np.ndarray, les: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """histogram_quantile at every step from cumulative bucket counts (buckets × steps),
    `les` ascending. A step uses the buckets that have a value at it."""
    out = np.full(counts.shape[1], np.nan)
    present = ~np.isnan(counts)
    complete = present.all(axis=0)
    if complete.any():
        out[complete] = _bucket_quantile(q[complete], les, counts[:, complete])
    for col in np.flatnonzero(~complete & present.any(axis=0)).tolist():
        rows = present[:, col]
        out[col] = _bucket_quantile(q[[col]], les[rows], counts[rows][:, [col]])[0]
    return out


def _bucket_quantile(q: np.ndarray, les: np.ndarray, counts: np.ndarray) -> np.ndarray:
    steps = counts.shape[1]
    if len(les) == 0 or not np.isposinf(les[-1]):
        return np.full(steps, np.nan)
    bounds, which = np.unique(les, return_inverse=True)  # coalesce equal bounds
    merged = np.zeros((len(bounds), steps))
    np.add.at(merged, which, counts)
    merged = np.maximum.accumulate(merged, axis=0)  # ensure monotonic
    if len(bounds) < 2:
        return np.full(steps, np.nan)
    observations = merged[-1]
    rank = q * observations
    reached = merged[:-1] >= rank[None, :]
    b = np.where(reached.any(axis=0), reached.argmax(axis=0), len(bounds) - 1)
    cols = np.arange(steps)
    below = np.where(b > 0, merged[np.maximum(b - 1, 0), cols], 0.0)
    start = np.where(b > 0, bounds[np.maximum(b - 1, 0)], 0.0)
    end = bounds[b]
    with np.errstate(all="ignore"):
        result = start + (end - start) * ((rank - below) / (merged[b, cols] - below))
    result = np.where(b == len(bounds) - 1, bounds[-2], result)
    result = np.where((b == 0) & (bounds[0] <= 0), bounds[0], result)
    result = np.where(observations == 0, np.nan, result)
    result = np.where(q < 0, -np.inf, np.where(q > 1, np.inf, result))
    out: np.ndarray = np.where(np.isnan(q), np.nan, result)
    return out
