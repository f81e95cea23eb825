"""Level shifts and trend changes: two-sided CUSUM on the value, EWMA slope test on the change.

Level: the tabular CUSUM of Page (1954) on the value standardised against a slow, robust
baseline (EWMA mean and EWMA absolute deviation, deviations clipped so that a lone spike
cannot fire it); when a sum crosses `h` the shift is reported and the baseline jumps to the
recent (fast EWMA) level. Trend: the fast EWMA of the standardised first differences against
the slow one, in units of its own standard error. References: E. S. Page, "Continuous
inspection schemes", Biometrika 1954; D. C. Montgomery, "Introduction to Statistical Quality
Control", ch. 9 (CUSUM and EWMA charts).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from seismo.detect.base import LEVEL_SHIFT, TREND_CHANGE, RoundDetector, Spec, Step, surprise

SLOW = 0.01  # baseline EWMA rate (about 100 samples)
FAST = 0.1  # recent level used after a shift
SLOPE_FAST = 0.05
CLIP = 4.0  # sigmas: a sample moves a sum by at most this
MIN_SAMPLES = 16
LEVEL_GAIN = 1.2  # the level score at the decision level h is about 0.6, 0.4 at 0.8 h
RAMP_SPAN = 200  # a second shift the same way within this many samples makes a trend


class Cusum(RoundDetector):
    """Two-sided CUSUM (level shift) plus an EWMA slope test (trend change) per series."""

    name: ClassVar[str] = "cusum"

    def __init__(self, k: float = 0.5, h: float = 12.0, z_half: float = 5.0,
                 trend_half: float = 8.0, sensitivity: float = 1.0) -> None:
        self.k = k
        self.h = h
        self.z_half = z_half
        self.trend_half = trend_half
        self.sensitivity = sensitivity
        spec: Spec = {
            "mean": ((), np.float64, 0.0),
            "dev": ((), np.float64, 0.0),
            "fast": ((), np.float64, 0.0),
            "up": ((), np.float64, 0.0),
            "down": ((), np.float64, 0.0),
            "last_shift": ((), np.int64, -(1 << 40)),  # sample count at the last shift
            "last_sign": ((), np.int8, 0),  # its direction
            "prev": ((), np.float64, 0.0),
            "d_mean": ((), np.float64, 0.0),
            "d_dev": ((), np.float64, 0.0),
            "slope": ((), np.float64, 0.0),
            "count": ((), np.int64, 0),
        }
        super().__init__(spec)

    def step(self, slots: np.ndarray, ts: np.ndarray, values: np.ndarray) -> Step:
        s = self.s
        s.ensure(int(slots.max()))
        count = s["count"][slots]
        first = count == 0
        mean = np.where(first, values, s["mean"][slots])
        dev = s["dev"][slots]
        fast = np.where(first, values, s["fast"][slots])
        prev = np.where(first, values, s["prev"][slots])
        floor = 1e-9 + 1e-6 * np.abs(mean)
        sigma = np.maximum(1.2533 * dev, floor)
        ready = count >= MIN_SAMPLES

        z = np.clip((values - mean) / sigma * self.sensitivity, -CLIP, CLIP)
        z = np.where(ready, z, 0.0)
        up = np.maximum(0.0, s["up"][slots] + z - self.k)
        down = np.maximum(0.0, s["down"][slots] - z - self.k)
        level_stat = np.maximum(up, down) / self.h
        shifted = level_stat >= 1.0
        # a ramp shows as shifts in one direction again and again: after the baseline
        # caught up with one, the next comes soon; a step leaves the new level quiet
        sign = np.where(up >= down, 1, -1).astype(np.int8)
        ramp = ((count - s["last_shift"][slots] <= RAMP_SPAN)
                & (s["last_sign"][slots] == sign))

        d = values - prev
        d_mean = s["d_mean"][slots]
        d_sigma = np.maximum(1.2533 * s["d_dev"][slots], floor)
        dz = np.where(ready, np.clip((d - d_mean) / d_sigma, -3.0, 3.0), 0.0)
        slope = s["slope"][slots] + SLOPE_FAST * (dz - s["slope"][slots])
        trend_z = np.abs(slope) / np.sqrt(SLOPE_FAST / (2 - SLOPE_FAST)) * self.sensitivity

        level_score = surprise(level_stat**2 * self.z_half * LEVEL_GAIN, self.z_half)
        trend_score = surprise(trend_z, self.trend_half)
        is_trend = (trend_score > level_score) | ramp
        score = np.maximum(level_score, trend_score)
        kind = np.where(is_trend, TREND_CHANGE, LEVEL_SHIFT).astype(np.int8)
        expected = mean.copy()

        # learn: robust slow baseline; after a shift, restart from the recent level
        rate = np.maximum(1.0 / (count + 1.0), SLOW)
        resid = values - mean
        clipped = np.clip(resid, -CLIP * sigma, CLIP * sigma)
        new_mean = mean + rate * np.where(ready, clipped, resid)
        new_dev = dev + rate * (np.abs(np.where(ready, clipped, resid)) - dev)
        fast = fast + FAST * (values - fast)
        new_mean = np.where(shifted, fast, new_mean)
        s["up"][slots] = np.where(shifted, 0.0, up)
        s["down"][slots] = np.where(shifted, 0.0, down)
        s["last_shift"][slots] = np.where(shifted, count, s["last_shift"][slots])
        s["last_sign"][slots] = np.where(shifted, sign, s["last_sign"][slots])
        d_rate = np.maximum(1.0 / np.maximum(count, 1.0), SLOW)
        d_resid = np.where(first, 0.0, d - d_mean)
        d_clip = np.where(ready, np.clip(d_resid, -CLIP * d_sigma, CLIP * d_sigma), d_resid)
        s["d_mean"][slots] = d_mean + d_rate * d_clip
        s["d_dev"][slots] = s["d_dev"][slots] + d_rate * (np.abs(d_clip) - s["d_dev"][slots])
        s["slope"][slots] = np.where(shifted, 0.0, slope)
        s["mean"][slots] = new_mean
        s["dev"][slots] = new_dev
        s["fast"][slots] = fast
        s["prev"][slots] = values
        s["count"][slots] = count + 1
        return Step(score, expected, np.where(ready, sigma, 0.0), kind)
