"""Raw samples to a regular grid of steps, the input every forecast model takes.

The REST API resamples in the store (`query_range`, avg per step); forecast rules resample
the recent samples the alert evaluator keeps in memory, with these functions.
"""

from __future__ import annotations

import numpy as np

RULE_POINTS = 360
"""Steps a forecast rule's window is cut into (fewer when samples are sparser)."""


def rule_step_ms(ts: np.ndarray, window_ms: int, points: int = RULE_POINTS) -> int:
    """The window divided into `points` steps, or the median sample interval if larger.

    >>> rule_step_ms(np.arange(0, 3_600_000, 60_000), 3_600_000)
    60000
    """
    step = -(-window_ms // points)
    if len(ts) > 1:
        step = max(step, int(np.median(np.diff(ts))))
    return max(step, 1)


def resample(ts: np.ndarray, values: np.ndarray, end_ms: int, step_ms: int,
             columns: int) -> np.ndarray:
    """Mean of the samples in each step; column k holds end - (columns-k) step < ts <=
    end - (columns-k-1) step, so the last column ends at `end_ms`. NaN: no sample.

    >>> resample(np.array([10, 20, 30]), np.array([1.0, 3.0, 5.0]), 30, 10, 3).tolist()
    [1.0, 3.0, 5.0]
    """
    back = (end_ms - ts) // step_ms
    k = columns - 1 - back
    keep = (k >= 0) & (k < columns)
    k, v = k[keep].astype(np.int64), values[keep]
    sums = np.bincount(k, v, minlength=columns)
    counts = np.bincount(k, minlength=columns)
    with np.errstate(invalid="ignore", divide="ignore"):
        out: np.ndarray = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return out
