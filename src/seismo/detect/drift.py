"""Slow drift: a long-horizon mean shift, too gradual for the CUSUM and the rolling median.

Two EWMAs of the value per series, a fast one (half-life `fast` samples) and a very slow
baseline (half-life `slow`); their gap is measured against its own usual size (an EWMA of
|fast - slow| over the slow horizon, clipped so one excursion cannot inflate it), so an
autocorrelated series that always wanders scores only when it wanders further than it
usually does. A level that creeps away over hundreds of samples (an overheating machine, a
rising spike density) shows here before it leaves the range seen. Reference: D. C.
Montgomery, "Introduction to Statistical Quality Control", ch. 9 (EWMA charts).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from seismo.detect.base import TREND_CHANGE, RoundDetector, Spec, Step, surprise

Z_HALF = 4.0  # the gap, in units of its usual size, that scores 0.5
CLIP = 4.0  # a gap counts into its usual size at most this many times that size
MIN_SAMPLES = 200  # the usual gap needs this much history


class SlowDrift(RoundDetector):
    """Fast vs very slow EWMA of the value, in units of the usual gap between them."""

    name: ClassVar[str] = "drift"

    def __init__(self, fast: int = 50, slow: int = 2000, sensitivity: float = 1.0) -> None:
        self.fast_rate = 1.0 - 0.5 ** (1.0 / fast)
        self.slow_rate = 1.0 - 0.5 ** (1.0 / slow)
        self.sensitivity = sensitivity
        spec: Spec = {
            "fast": ((), np.float64, 0.0),
            "slow": ((), np.float64, 0.0),
            "gap": ((), np.float64, 0.0),  # EWMA of |fast - slow|
            "count": ((), np.int64, 0),
        }
        super().__init__(spec)

    def step(self, slots: np.ndarray, ts: np.ndarray, values: np.ndarray) -> Step:
        s = self.s
        s.ensure(int(slots.max()))
        count = s["count"][slots]
        first = count == 0
        fast = np.where(first, values, s["fast"][slots])
        slow = np.where(first, values, s["slow"][slots])
        gap = s["gap"][slots]
        scale = np.maximum(1.2533 * gap, 1e-9 + 1e-6 * np.abs(slow))
        ready = count >= MIN_SAMPLES
        z = np.where(ready, np.abs(fast - slow) / scale, 0.0) * self.sensitivity
        score = surprise(z, Z_HALF)
        kind = np.full(len(slots), TREND_CHANGE, dtype=np.int8)

        # learn: both levels (plain averages while young), then the usual gap
        young = 1.0 / (count + 1.0)
        fast = fast + np.maximum(young, self.fast_rate) * (values - fast)
        slow_rate = np.maximum(young, self.slow_rate)
        d = np.abs(fast - slow)
        d = np.where(count > MIN_SAMPLES, np.minimum(d, CLIP * 1.2533 * gap), d)
        s["gap"][slots] = gap + slow_rate * (d - gap)
        s["slow"][slots] = slow + slow_rate * (values - slow)
        s["fast"][slots] = fast
        s["count"][slots] = count + 1
        return Step(score, slow, np.where(ready, scale, 0.0), kind)
