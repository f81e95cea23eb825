"""Recent samples per series, for window rules (`rate(x[1m])`, `p95_over_time(x[5m])`).

The rule evaluator keeps here only the series a window rule selects, and only as far back
as the longest window that reads them, so that evaluating a rule on an ingest batch never
goes to the store. Bounded: at most `max_samples` per series (oldest dropped first).
"""

from __future__ import annotations

import numpy as np

from seismo.alerting.expr import OverTime, Rate

MAX_SAMPLES = 10_000


class SeriesWindows:
    """Per-slot (timestamps, values) arrays, trimmed to each slot's horizon."""

    def __init__(self, max_samples: int = MAX_SAMPLES) -> None:
        self.max_samples = max_samples
        self.horizon_ms: dict[int, int] = {}
        """Slots kept, and how far back from their newest sample."""
        self._ts: dict[int, np.ndarray] = {}
        self._values: dict[int, np.ndarray] = {}

    def keep(self, slot: int, horizon_ms: int) -> None:
        self.horizon_ms[slot] = max(horizon_ms, self.horizon_ms.get(slot, 0))

    def append(self, slots: np.ndarray, ts: np.ndarray, values: np.ndarray) -> None:
        """Add a batch's samples of the kept slots (one Python step per series, not sample)."""
        if not self.horizon_ms or len(slots) == 0:
            return
        kept = np.fromiter(self.horizon_ms, dtype=np.int64, count=len(self.horizon_ms))
        mask = np.isin(slots, kept)
        if not mask.any():
            return
        s, t, v = slots[mask], ts[mask], values[mask]
        order = np.lexsort((t, s))
        s, t, v = s[order], t[order], v[order]
        bounds = np.flatnonzero(np.diff(s)) + 1
        for part in np.split(np.arange(len(s)), bounds):
            slot = int(s[part[0]])
            self._add(slot, t[part], v[part])

    def _add(self, slot: int, ts: np.ndarray, values: np.ndarray) -> None:
        old_ts = self._ts.get(slot)
        if old_ts is not None and len(old_ts):
            if ts[0] > old_ts[-1]:
                values = np.concatenate([self._values[slot], values])
                ts = np.concatenate([old_ts, ts])
            else:  # late samples: merge, the newest arrival of a timestamp wins
                all_ts = np.concatenate([old_ts, ts])
                all_values = np.concatenate([self._values[slot], values])
                order = np.argsort(all_ts, kind="stable")
                all_ts, all_values = all_ts[order], all_values[order]
                last = np.ones(len(all_ts), dtype=bool)
                last[:-1] = all_ts[1:] != all_ts[:-1]
                ts, values = all_ts[last], all_values[last]
        start = max(int(np.searchsorted(ts, ts[-1] - self.horizon_ms[slot], side="right")),
                    len(ts) - self.max_samples)
        self._ts[slot], self._values[slot] = ts[start:], values[start:]

    def window(self, slot: int, end_ms: int, window_ms: int) -> tuple[np.ndarray, np.ndarray]:
        """Samples with end - window < ts <= end (Prometheus' range selector)."""
        ts = self._ts.get(slot)
        if ts is None:
            return np.empty(0, np.int64), np.empty(0)
        lo = np.searchsorted(ts, end_ms - window_ms, side="right")
        hi = np.searchsorted(ts, end_ms, side="right")
        return ts[lo:hi], self._values[slot][lo:hi]

    def newest_ms(self, slot: int) -> int | None:
        ts = self._ts.get(slot)
        return None if ts is None or not len(ts) else int(ts[-1])

    def forget(self, keep: set[int]) -> None:
        """Drop the samples of slots no rule reads any more."""
        for slot in [s for s in self._ts if s not in keep]:
            del self._ts[slot], self._values[slot]


def rate(ts: np.ndarray, values: np.ndarray) -> float:
    """Per-second increase over the samples, counter resets counted as a restart from 0.

    No extrapolation to the window's edges (unlike Prometheus' `rate`): the increase
    between the first and last sample, divided by the time between them.

    >>> rate(np.array([0, 1000, 2000]), np.array([5.0, 7.0, 1.0]))
    1.5
    """
    if len(ts) < 2 or ts[-1] == ts[0]:
        return float("nan")
    deltas = np.diff(values)
    increase = float(np.where(deltas >= 0, deltas, values[1:]).sum())
    return increase / (float(ts[-1] - ts[0]) / 1000)


def aggregate(term: OverTime, values: np.ndarray) -> float:
    """`<agg>_over_time` of the window's values; NaN when the window is empty."""
    if len(values) == 0:
        return 0.0 if term.agg == "count" else float("nan")
    match term.agg:
        case "avg":
            return float(values.mean())
        case "min":
            return float(values.min())
        case "max":
            return float(values.max())
        case "sum":
            return float(values.sum())
        case "count":
            return float(len(values))
    assert term.quantile is not None
    return float(np.quantile(values, term.quantile))


def window_value(term: Rate | OverTime, windows: SeriesWindows, slot: int, end_ms: int) -> float:
    ts, values = windows.window(slot, end_ms, term.window_ms)
    if isinstance(term, Rate):
        return rate(ts, values)
    return aggregate(term, values)
