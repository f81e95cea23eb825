"""Time to threshold: when a forecast first reaches a value, and the interval around it.

A series above the threshold is watched for a fall to it, one below for a rise. The time is
interpolated linearly between the two forecast points around the crossing (the first
point's predecessor is the last observed value). With the prediction interval, the
earliest time is when the near bound crosses (the lower one for a fall) and the latest when
the far bound does; NaN where a curve does not cross within the horizon.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def first_crossing(values: np.ndarray, start: np.ndarray, start_ms: np.ndarray,
                   ts: np.ndarray, threshold: float, falling: np.ndarray) -> np.ndarray:
    """Per row, the time (ms, float) `values` (n, H) at `ts` (H,) first reach `threshold`,
    going down where `falling`, up elsewhere; `start` at `start_ms` precedes ts[0].

    >>> first_crossing(np.array([[8.0, 6.0, 4.0]]), np.array([10.0]), np.array([0]),
    ...                np.array([10, 20, 30]), 5.0, np.array([True])).tolist()
    [25.0]
    """
    n, horizon = values.shape
    out = np.full(n, np.nan)
    if horizon == 0:
        return out
    with np.errstate(invalid="ignore"):
        hit = np.where(falling[:, None], values <= threshold, values >= threshold)
        already = np.where(falling, start <= threshold, start >= threshold)
    any_hit = hit.any(axis=1)
    idx = np.argmax(hit, axis=1)
    rows = np.arange(n)
    v = values[rows, idx]
    prev = np.where(idx > 0, values[rows, np.maximum(idx - 1, 0)], start)
    prev_ms = np.where(idx > 0, ts[np.maximum(idx - 1, 0)], start_ms).astype(np.float64)
    span = prev - v
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(span != 0, (prev - threshold) / np.where(span != 0, span, 1.0), 1.0)
    frac = np.clip(np.nan_to_num(frac, nan=1.0), 0.0, 1.0)
    at = prev_ms + frac * (ts[idx] - prev_ms)
    out = np.where(any_hit, at, out)
    return np.where(already, start_ms.astype(np.float64), out)


def crossings(last: np.ndarray, last_ms: np.ndarray, ts: np.ndarray, mean: np.ndarray,
              lower: np.ndarray, upper: np.ndarray, threshold: float) -> dict[str, Any]:
    """When each forecast reaches `threshold`: `falling` (bool), `at`, `earliest`, `latest`
    (ms as floats, NaN when not within the horizon), per row."""
    falling = last >= threshold
    at = first_crossing(mean, last, last_ms, ts, threshold, falling)
    by_lower = first_crossing(lower, last, last_ms, ts, threshold, falling)
    by_upper = first_crossing(upper, last, last_ms, ts, threshold, falling)
    return {"falling": falling, "at": at,
            "earliest": np.where(falling, by_lower, by_upper),
            "latest": np.where(falling, by_upper, by_lower)}
