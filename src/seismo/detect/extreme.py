"""New extremes: a sample beyond the range its series has covered, by a share of that range.

Each series keeps the lowest and highest value it has seen; both slowly shrink toward
their midpoint (half-life `half_life` samples), so a range set long ago is forgotten. A
sample above the high or below the low by `tol` of the range scores 0.5, by twice that 0.8,
provided the excess is also `noise` times the series' step-to-step spread (an EWMA of
|first difference|): a noisy series reaches new records by a hair all the time.
This is the "spatial anomaly" check Numenta's NAB detector adds to HTM (values 5 % outside
the range seen so far): a level never reached before is news whatever the noise around it.
Reference: Ahmad, Lavin, Purdy & Agha, "Unsupervised real-time anomaly detection for
streaming data", Neurocomputing 262, 2017; NAB's `numenta` detector.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from seismo.detect.base import DROP, SPIKE, RoundDetector, Spec, Step

STEP_SIGMA = 1.2533  # mean |difference| to the sigma of the difference (normal noise)
STEP_RATE = 0.01  # the step spread is an EWMA over about 100 samples


class RangeExcess(RoundDetector):
    """Distance beyond the series' (slowly forgotten) min/max, relative to its range."""

    name: ClassVar[str] = "extreme"

    def __init__(self, tol: float = 0.03, half_life: int = 50_000, noise: float = 1.25,
                 sensitivity: float = 1.0) -> None:
        self.tol = tol
        self.noise = noise
        self.sensitivity = sensitivity
        self.decay = 0.5 ** (1.0 / half_life) if half_life else 1.0
        spec: Spec = {
            "low": ((), np.float64, np.nan),
            "high": ((), np.float64, np.nan),
            "prev": ((), np.float64, np.nan),
            "step": ((), np.float64, 0.0),  # EWMA of |value - previous value|
            "count": ((), np.int64, 0),
        }
        super().__init__(spec)

    def step(self, slots: np.ndarray, ts: np.ndarray, values: np.ndarray) -> Step:
        s = self.s
        s.ensure(int(slots.max()))
        low, high = s["low"][slots], s["high"][slots]
        mid = (low + high) / 2
        span = np.maximum(high - low, 1e-9 + 1e-6 * np.abs(mid))
        excess = np.maximum(values - high, low - values)
        step = s["step"][slots]
        x = np.minimum(excess / (self.tol * span),
                       excess / np.maximum(self.noise * STEP_SIGMA * step, 1e-300))
        x = np.where(np.isfinite(x), np.maximum(x, 0.0), 0.0) * self.sensitivity
        score = x * x / (1.0 + x * x)
        kind = np.where(values >= mid, SPIKE, DROP).astype(np.int8)
        # learn: the step spread, then widen to the sample and shrink toward the middle
        count = s["count"][slots]
        change = np.abs(values - s["prev"][slots])
        rate = np.maximum(1.0 / np.maximum(count, 1.0), STEP_RATE)
        s["step"][slots] = np.where(count > 0, step + rate * (change - step), 0.0)
        s["prev"][slots] = values
        s["count"][slots] = count + 1
        high = np.fmax(high, values)
        low = np.fmin(low, values)
        mid = (low + high) / 2
        s["high"][slots] = mid + (high - mid) * self.decay
        s["low"][slots] = mid + (low - mid) * self.decay
        return Step(score, mid, span * self.tol / self.sensitivity, kind)
