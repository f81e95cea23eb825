"""Seasonal baseline: an EWMA per time-of-day and per hour-of-week bucket, for series that repeat.

Each series keeps the mean and mean absolute deviation of its values in every half-hour of
the day (48 buckets) and every hour of the week (168). Whether a series is seasonal is
decided online from its hourly means: the autocorrelation of their first differences at a
24 h lag (daily) and a 168 h lag (weekly), re-checked once a day of data. Only a seasonal
series is scored. Reference: Hyndman & Athanasopoulos, "Forecasting: Principles and
Practice", 3rd ed., ch. 2.8 (autocorrelation) and ch. 8 (exponential smoothing).
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np

from seismo.detect.base import DROP, SPIKE, RoundDetector, Spec, Step, surprise

HOUR_MS = 3_600_000
DAY_BUCKETS = 48
WEEK_BUCKETS = 168
HISTORY_H = 336  # hourly means kept for the autocorrelation (two weeks)
MIN_HISTORY_H = 72  # three days before the daily check, two weeks before the weekly one
ACF_MIN = 0.3
MIN_VISITS = 12  # samples a bucket needs before it scores
VISITS_CAP = 30_000  # bucket visit counters saturate here (int16); only < 1 / alpha matters


def _acf(d: np.ndarray, lag: int) -> np.ndarray:
    """Autocorrelation at `lag` of each row of `d` (NaN = missing), over the valid pairs."""
    x = d
    y = np.roll(d, lag, axis=1)
    valid = ~(np.isnan(x) | np.isnan(y))
    n = valid.sum(axis=1)
    x = np.where(valid, x, 0.0)
    y = np.where(valid, y, 0.0)
    safe_n = np.maximum(n, 1)
    mx = x.sum(axis=1) / safe_n
    my = y.sum(axis=1) / safe_n
    xc = np.where(valid, x - mx[:, None], 0.0)
    yc = np.where(valid, y - my[:, None], 0.0)
    den = np.sqrt((xc * xc).sum(axis=1) * (yc * yc).sum(axis=1))
    r = np.where(den > 0, (xc * yc).sum(axis=1) / np.where(den > 0, den, 1.0), 0.0)
    return np.where(n >= 24, r, 0.0)


class SeasonalEWMA(RoundDetector):
    """Deviation from the same time of day (or of week), for series found to be seasonal."""

    name: ClassVar[str] = "seasonal"

    def __init__(self, mode: Literal["auto", "on", "off"] = "auto", alpha: float = 0.1,
                 z_half: float = 5.0, sensitivity: float = 1.0) -> None:
        self.mode = mode
        self.alpha = alpha
        self.z_half = z_half
        self.sensitivity = sensitivity
        spec: Spec = {
            "day_mean": ((DAY_BUCKETS,), np.float64, 0.0),
            "day_dev": ((DAY_BUCKETS,), np.float32, 0.0),
            "day_n": ((DAY_BUCKETS,), np.int16, 0),
            "week_mean": ((WEEK_BUCKETS,), np.float64, 0.0),
            "week_dev": ((WEEK_BUCKETS,), np.float32, 0.0),
            "week_n": ((WEEK_BUCKETS,), np.int16, 0),
            "hour": ((), np.int64, -1),  # hour being accumulated
            "hour_sum": ((), np.float64, 0.0),
            "hour_n": ((), np.int64, 0),
            "history": ((HISTORY_H,), np.float32, np.nan),  # hourly means at hour % HISTORY_H
            "history_hour": ((HISTORY_H,), np.int32, -1),  # hours since 1970
            "level": ((), np.float64, 0.0),  # slow EWMA of the value
            "spread": ((), np.float64, 0.0),  # slow EWMA of |value - level|
            "count": ((), np.int64, 0),
            "period": ((), np.int8, 0),  # 0 none, 1 daily, 2 weekly
        }
        super().__init__(spec)

    def _close_hours(self, slots: np.ndarray, hour: np.ndarray) -> None:
        """Store the finished hourly means of `slots` and re-check seasonality once a day."""
        s = self.s
        old = s["hour"][slots]
        closing = (old >= 0) & (hour > old) & (s["hour_n"][slots] > 0)
        if closing.any():
            cs, ch = slots[closing], old[closing]
            s["history"][cs, ch % HISTORY_H] = s["hour_sum"][cs] / s["hour_n"][cs]
            s["history_hour"][cs, ch % HISTORY_H] = ch
            # once per day of data, look for a period again
            check = (hour[closing] // 24) > (ch // 24)
            if check.any():
                self._check_period(cs[check], ch[check])
        moved = hour != old
        s["hour"][slots[moved]] = hour[moved]
        s["hour_sum"][slots[moved]] = 0.0
        s["hour_n"][slots[moved]] = 0

    def _check_period(self, slots: np.ndarray, last_hour: np.ndarray) -> None:
        s = self.s
        if self.mode != "auto":
            s["period"][slots] = 0 if self.mode == "off" else 1
            if self.mode == "off":
                return
        # lay the ring out by age: column j = hour (last_hour - HISTORY_H + 1 + j)
        want = last_hour[:, None] - HISTORY_H + 1 + np.arange(HISTORY_H)[None, :]
        pos = want % HISTORY_H
        rows = slots[:, None]
        valid = s["history_hour"][rows, pos] == want
        hist = np.where(valid, s["history"][rows, pos].astype(np.float64), np.nan)
        span = valid.sum(axis=1)
        diff = np.full_like(hist, np.nan)
        diff[:, 1:] = hist[:, 1:] - hist[:, :-1]
        diff[:, 0] = np.nan
        r_day = _acf(diff, 24)
        r_week = _acf(diff, WEEK_BUCKETS)
        daily = (span >= MIN_HISTORY_H) & (r_day >= ACF_MIN)
        weekly = (span >= 2 * WEEK_BUCKETS - 24) & (r_week >= ACF_MIN) & (r_week > r_day + 0.1)
        period = np.where(weekly, 2, np.where(daily, 1, 0)).astype(np.int8)
        if self.mode == "on":
            period = np.maximum(period, 1).astype(np.int8)
        s["period"][slots] = period

    def step(self, slots: np.ndarray, ts: np.ndarray, values: np.ndarray) -> Step:
        s = self.s
        s.ensure(int(slots.max()))
        hour = ts // HOUR_MS
        self._close_hours(slots, hour)
        s["hour_sum"][slots] += values
        s["hour_n"][slots] += 1

        day_b = (ts // (86_400_000 // DAY_BUCKETS)) % DAY_BUCKETS
        week_b = ((hour // 24 + 3) % 7) * 24 + hour % 24  # Monday 00:00 UTC is bucket 0
        period = s["period"][slots]
        weekly = period == 2
        mean = np.where(weekly, s["week_mean"][slots, week_b], s["day_mean"][slots, day_b])
        dev = np.where(weekly, s["week_dev"][slots, week_b], s["day_dev"][slots, day_b])
        n = np.where(weekly, s["week_n"][slots, week_b], s["day_n"][slots, day_b])
        count = s["count"][slots]
        level = s["level"][slots]
        spread = s["spread"][slots]
        sigma = np.maximum(1.2533 * dev, 0.05 * spread + 1e-9 + 1e-6 * np.abs(mean))
        active = (period > 0) & (n >= MIN_VISITS)
        z = np.where(active, np.abs(values - mean) / sigma, 0.0) * self.sensitivity
        score = surprise(z, self.z_half)
        kind = np.where(values >= mean, SPIKE, DROP).astype(np.int8)

        # learn: both bucket sets, whichever period is in use
        a = self.alpha
        for prefix, bucket in (("day", day_b), ("week", week_b)):
            bn = s[f"{prefix}_n"][slots, bucket]
            bm = s[f"{prefix}_mean"][slots, bucket]
            rate = np.maximum(1.0 / (bn + 1.0), a)
            resid = values - bm
            s[f"{prefix}_dev"][slots, bucket] = np.where(
                bn == 0, 0.0, s[f"{prefix}_dev"][slots, bucket]
                + rate * (np.abs(resid) - s[f"{prefix}_dev"][slots, bucket]))
            s[f"{prefix}_mean"][slots, bucket] = bm + rate * resid
            s[f"{prefix}_n"][slots, bucket] = np.minimum(bn + 1, VISITS_CAP)
        slow = np.maximum(1.0 / (count + 1.0), 0.01)
        s["spread"][slots] = spread + slow * (np.abs(values - level) - spread)
        s["level"][slots] = level + slow * (values - level)
        s["count"][slots] = count + 1
        return Step(score, np.where(active, mean, np.nan), np.where(active, sigma, np.nan), kind)

    def is_seasonal(self, slots: np.ndarray) -> np.ndarray:
        """0: not seasonal (yet), 1: daily, 2: weekly, per slot."""
        self.s.ensure(int(np.max(slots, initial=0)))
        period: np.ndarray = self.s["period"][slots].copy()
        return period
