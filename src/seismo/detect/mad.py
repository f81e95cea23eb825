"""Robust z-score: distance of a sample from its series' rolling median, in MAD units.

The median and the MAD (median absolute deviation, scaled by 1.4826 to a normal sigma) are
taken over the last `window` samples of each series and recomputed every `refresh` samples,
which keeps the cost per sample at O(window / refresh). Reference: Rousseeuw & Croux,
"Alternatives to the Median Absolute Deviation", JASA 1993; Leys et al., "Detecting
outliers: do not use standard deviation around the mean, use absolute deviation around the
median", J. Exp. Soc. Psych. 2013.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from seismo.detect.base import DROP, SPIKE, RoundDetector, Spec, Step, surprise

MIN_SAMPLES = 8  # below this a window says nothing about spread
ENVELOPE_HALF_LIFE = 1000  # samples for the envelope of past deviations to halve
ENVELOPE_POWER = 4.0
ENVELOPE_MARGIN = 1.25  # a deviation this much beyond the envelope scores in full
LONG_HALF_LIFE = 10_000  # the long envelope: the largest deviations over weeks ...
LONG_MARGIN = 1.0  # ... which a deviation must pass to score in full


class RobustZ(RoundDetector):
    """Median/MAD over a rolling window per series."""

    name: ClassVar[str] = "mad"

    def __init__(self, window: int = 128, refresh: int = 4, z_half: float = 5.0,
                 sensitivity: float = 1.0) -> None:
        self.window = window
        self.refresh = refresh
        self.z_half = z_half
        self.sensitivity = sensitivity
        self.decay = 0.5 ** (1.0 / ENVELOPE_HALF_LIFE)
        self.long_decay = 0.5 ** (1.0 / LONG_HALF_LIFE)
        spec: Spec = {
            "buf": ((window,), np.float64, np.nan),
            "count": ((), np.int64, 0),
            "median": ((), np.float64, 0.0),
            "sigma": ((), np.float64, np.inf),
            "above": ((), np.float64, 0.0),  # envelope: decaying max of (value - median)
            "below": ((), np.float64, 0.0),  # and of (median - value)
            "above_long": ((), np.float64, 0.0),  # the same with a long half-life
            "below_long": ((), np.float64, 0.0),
        }
        super().__init__(spec)

    def _refresh(self, slots: np.ndarray) -> None:
        """Recompute median and robust sigma of the windows of `slots`."""
        buf = self.s["buf"][slots]
        full = self.s["count"][slots] >= self.window
        median = np.empty(len(slots))
        sigma = np.empty(len(slots))
        for mask, med_fn in ((full, np.median), (~full, np.nanmedian)):
            if not mask.any():
                continue
            window = buf[mask]
            med = med_fn(window, axis=1)
            dev = np.abs(window - med[:, None])
            mad = med_fn(dev, axis=1) * 1.4826
            mean_dev = np.nanmean(dev, axis=1) * 1.2533  # when over half the window is equal
            floor = 1e-9 + 1e-6 * np.abs(med)
            median[mask] = med
            sigma[mask] = np.maximum(np.maximum(mad, mean_dev), floor)
        self.s["median"][slots] = median
        self.s["sigma"][slots] = sigma

    def step(self, slots: np.ndarray, ts: np.ndarray, values: np.ndarray) -> Step:
        s = self.s
        s.ensure(int(slots.max()))
        count = s["count"][slots]
        due = (count >= MIN_SAMPLES) & ((count % self.refresh == 0) | (count < self.window))
        if due.any():
            self._refresh(slots[due])
        median = s["median"][slots]
        sigma = s["sigma"][slots]
        ready = count >= MIN_SAMPLES
        dist = values - median
        z = np.where(ready, np.abs(dist) / sigma, 0.0) * self.sensitivity
        # a deviation the series has recently reached before is news only in part:
        # damp it unless it clearly leaves the envelope of recent deviations, and the
        # (slowly forgotten) largest deviation of the last weeks: a spiky series that
        # bursts every few days must spike higher than in its earlier bursts
        above, below = s["above"][slots], s["below"][slots]
        above_long, below_long = s["above_long"][slots], s["below_long"][slots]
        reach = np.maximum(np.where(dist >= 0, above, below) * ENVELOPE_MARGIN,
                           np.where(dist >= 0, above_long, below_long) * LONG_MARGIN)
        inside = np.abs(dist) / np.maximum(reach, 1e-300)
        score = surprise(z, self.z_half) * np.minimum(1.0, inside) ** ENVELOPE_POWER
        kind = np.where(values >= median, SPIKE, DROP).astype(np.int8)
        s["above_long"][slots] = np.where(ready, np.maximum(dist, above_long * self.long_decay),
                                          0.0)
        s["below_long"][slots] = np.where(ready, np.maximum(-dist, below_long * self.long_decay),
                                          0.0)
        s["above"][slots] = np.where(ready, np.maximum(dist, above * self.decay), 0.0)
        s["below"][slots] = np.where(ready, np.maximum(-dist, below * self.decay), 0.0)
        s["buf"][slots, count % self.window] = values
        s["count"][slots] = count + 1
        return Step(score, np.where(ready, median, values), np.where(ready, sigma, 0.0), kind)
