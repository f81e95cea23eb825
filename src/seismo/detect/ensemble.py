"""The ensemble: every configured detector on every sample, combined into one anomaly score.

This is what the engine runs per batch and what `seismo detect` runs over a file. The score
of a sample is the strongest (weighted) detector score plus a share of the second strongest;
the kind, expected value and band come from the detectors that fired. A series scores 0
during its warm-up; after an anomaly nothing is reported for `holdoff` samples, and then only
a departure stronger than the decaying peak (half-life `refractory`), so one incident is one
anomaly, not one per sample.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from seismo.detect.base import (
    DROP,
    KINDS,
    PATTERN_CHANGE,
    SPIKE,
    RoundDetector,
    SlotState,
    Step,
    as_batch,
    rounds,
)
from seismo.detect.config import DetectConfig
from seismo.detect.cusum import Cusum
from seismo.detect.drift import SlowDrift
from seismo.detect.extreme import RangeExcess
from seismo.detect.hst import HalfSpaceTrees
from seismo.detect.mad import RobustZ
from seismo.detect.seasonal import SeasonalEWMA

VALUE_LIMIT = 1e150  # larger magnitudes are clipped so that squares stay finite
TYPICAL_ODDS = 0.05  # mean score odds of a well-behaved series (|z| ~ 1 against z_half 5)
TYPICAL_RATE = 0.002  # the mean odds are over about 500 samples
ODDS_CAP = 20.0  # one anomaly moves the mean odds by at most this / 500
HOUR_MS = 3_600_000
DAILY_HALF_LIFE_MS = 5 * 86_400_000  # the memory of each hour of the day fades over days
DAILY_POWER = 4.0


@dataclass(slots=True)
class Scores:
    """The ensemble's verdict on a batch: one entry per sample, in the batch's order."""

    score: np.ndarray  # float64 0..1
    kind: np.ndarray  # int8 code into KINDS (0 = none)
    confidence: np.ndarray  # float64 0..1
    expected: np.ndarray  # float64 (NaN before a series has any history)
    lower: np.ndarray  # float64
    upper: np.ndarray  # float64
    detectors: np.ndarray  # uint8 bit mask: bit i set = names[i] fired
    names: tuple[str, ...]  # the detectors, in bit order

    def __len__(self) -> int:
        return len(self.score)

    def kind_names(self) -> np.ndarray:
        """The kinds as strings (object array)."""
        names: np.ndarray = np.asarray(KINDS, dtype=object)[self.kind]
        return names

    def fired(self, i: int) -> list[str]:
        """Names of the detectors that fired on sample i."""
        mask = int(self.detectors[i])
        return [name for bit, name in enumerate(self.names) if mask >> bit & 1]


def _build(config: DetectConfig) -> dict[str, RoundDetector]:
    made: dict[str, RoundDetector] = {}
    for name in config.detectors:
        if name == "mad":
            made[name] = RobustZ(config.window, config.refresh, config.z_half,
                                 config.sensitivity)
        elif name == "seasonal":
            made[name] = SeasonalEWMA(config.seasonality, z_half=config.z_half,
                                      sensitivity=config.sensitivity)
        elif name == "cusum":
            made[name] = Cusum(config.cusum_k, config.cusum_h, config.z_half,
                               sensitivity=config.sensitivity)
        elif name == "hst":
            made[name] = HalfSpaceTrees(config.hst_trees, config.hst_depth, config.hst_window,
                                        config.sensitivity)
        elif name == "extreme":
            made[name] = RangeExcess(config.extreme_tol, config.extreme_half_life,
                                     config.extreme_noise, config.sensitivity)
        elif name == "drift":
            made[name] = SlowDrift(config.drift_fast, config.drift_slow, config.sensitivity)
    return made


class Ensemble:
    """Streaming anomaly scoring for many series; state in arrays indexed by series slot."""

    def __init__(self, config: DetectConfig | None = None) -> None:
        self.config = config or DetectConfig()
        self.detectors = _build(self.config)
        self.names = tuple(self.detectors)
        self.names_array = np.array(self.names)
        self.weights = np.array([self.config.weights.get(n, 1.0) for n in self.names])
        self.s = SlotState({"count": ((), np.int64, 0), "peak": ((), np.float64, 0.0),
                            "typical": ((len(self.names),), np.float64, 0.0),
                            "reported": ((), np.int64, -(1 << 40)),
                            "held": ((), np.float64, 0.0),
                            "daily": ((24,), np.float64, 0.0),
                            "daily_ts": ((24,), np.int64, 0)})
        self.decay = 0.5 ** (1.0 / self.config.refractory) if self.config.refractory else 0.0
        ms = min(max(self.config.min_score, 0.01), 0.99)
        self.band_z = self.config.z_half * np.sqrt(ms / (1 - ms)) / self.config.sensitivity

    def update(self, slots: np.ndarray, ts: np.ndarray, values: np.ndarray) -> Scores:
        """Score then learn a batch: any order, any number of samples per series."""
        s, t, v = as_batch(slots, ts, values)
        n = len(s)
        out = Scores(np.zeros(n), np.zeros(n, np.int8), np.zeros(n), np.full(n, np.nan),
                     np.full(n, np.nan), np.full(n, np.nan), np.zeros(n, np.uint8), self.names)
        finite = np.flatnonzero(np.isfinite(v))  # NaN / inf samples: no score, not learned
        if len(finite) < n:
            s, t, v = s[finite], t[finite], v[finite]
        v = np.clip(v, -VALUE_LIMIT, VALUE_LIMIT)
        # extreme values may overflow intermediate terms to inf; scores are clipped after
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            for idx in rounds(s, t):
                where = idx if len(finite) == n else finite[idx]
                self._round(s[idx], t[idx], v[idx], out, where)
        return out

    def _round(self, slots: np.ndarray, ts: np.ndarray, values: np.ndarray, out: Scores,
               where: np.ndarray) -> None:
        self.s.ensure(int(slots.max()))
        steps: list[Step] = [d.step(slots, ts, values) for d in self.detectors.values()]
        count = self.s["count"][slots]
        warm = count >= self.config.warmup
        each = np.stack([st.score for st in steps], axis=1) * self.weights[None, :]
        each = np.clip(np.nan_to_num(each, nan=0.0), 0.0, 1.0 - 1e-12)
        each = self._relative(slots, count, each) * warm[:, None]
        if "seasonal" in self.detectors:
            # a seasonal series is judged against its time of day: what is normal
            # there is normal, however far from the recent median it is (but a value
            # beyond anything seen lately is news at any time of day)
            i = self.names.index("seasonal")
            active = np.isfinite(steps[i].expected)
            capped = active[:, None] & (self.names_array != "extreme")[None, :]
            each = np.where(capped, np.minimum(each, each[:, i:i + 1]), each)
        best = np.argmax(each, axis=1)
        rows = np.arange(len(slots))
        raw = each[rows, best]
        if len(steps) > 1 and self.config.agreement > 0:
            # a second detector agreeing adds evidence (a share of its score)
            others = each.copy()
            others[rows, best] = 0.0
            second = others.max(axis=1)
            raw = np.minimum(raw + self.config.agreement * second, 1.0 - 1e-12)
        raw = self._daily(slots, ts, raw)

        kinds = np.stack([st.kind for st in steps], axis=1)
        kind = kinds[rows, best]
        if "seasonal" in self.detectors and "mad" in self.detectors:
            # off the daily pattern but not off the recent range: the shape changed
            i_seasonal, i_mad = self.names.index("seasonal"), self.names.index("mad")
            shape = (best == i_seasonal) & (each[:, i_mad] < 0.5 * raw)
            kind = np.where(shape & np.isin(kind, (SPIKE, DROP)), PATTERN_CHANGE, kind)

        # one incident, one anomaly: a new report needs a score above the decaying peak,
        # and for `holdoff` samples after a clear anomaly, odds `holdoff_escape` times
        # those of that report (a weak false alarm must not hide a strong anomaly)
        peak = self.s["peak"][slots] * self.decay
        reported = self.s["reported"][slots]
        held = self.s["held"][slots]
        escape = self.config.holdoff_escape * held / np.maximum(1.0 - held, 1e-12)
        clear = (count - reported > self.config.holdoff) | (raw / (1.0 - raw) > escape)
        fresh = (raw > peak) & clear
        score = np.where(fresh, raw, 0.0)
        self.s["peak"][slots] = np.maximum(peak, raw)
        starts = score >= self.config.holdoff_after
        self.s["reported"][slots] = np.where(starts, count, reported)
        self.s["held"][slots] = np.where(starts, score, held)
        self.s["count"][slots] = count + 1

        expected, scale = self._baseline(steps, values)
        fired = each >= max(self.config.min_score, 1e-12)
        bits = (fired * (1 << np.arange(len(steps)))[None, :]).sum(axis=1).astype(np.uint8)
        out.score[where] = score
        out.kind[where] = np.where(score > 0, kind, 0).astype(np.int8)
        out.confidence[where] = np.where(score > 0, 1.0 - np.prod(1.0 - each, axis=1), 0.0)
        out.expected[where] = expected
        out.lower[where] = expected - self.band_z * scale
        out.upper[where] = expected + self.band_z * scale
        out.detectors[where] = np.where(score > 0, bits, 0).astype(np.uint8)

    def _daily(self, slots: np.ndarray, ts: np.ndarray, raw: np.ndarray) -> np.ndarray:
        """Damp a score no higher than the series reached at this hour of the day lately.

        Each series keeps, per hour of the day (UTC), the highest score of the last days
        (fading with a half-life of 5 days); a score below the highest of its hour and the
        two next to it is damped by (score / that)^4: a job that spikes every night at three
        is news at that hour only when it spikes about as hard as on the nights before.
        """
        daily = self.s["daily"].reshape(-1)  # views: the arrays are contiguous
        daily_ts = self.s["daily_ts"].reshape(-1)
        base = slots * 24
        hour = (ts // HOUR_MS) % 24
        reach = np.zeros(len(slots))
        now = np.zeros(len(slots))
        for offset in (-1, 0, 1):
            cell = base + (hour + offset) % 24
            age = np.maximum(ts - np.take(daily_ts, cell), 0)
            seen = np.take(daily, cell) * 0.5 ** (age / DAILY_HALF_LIFE_MS)
            reach = np.maximum(reach, seen)
            if offset == 0:
                now = seen
        cell = base + hour
        daily[cell] = np.maximum(now, raw)
        daily_ts[cell] = ts
        damped: np.ndarray = raw * np.minimum(1.0, raw / np.maximum(reach, 1e-300)) ** DAILY_POWER
        return damped

    def _relative(self, slots: np.ndarray, count: np.ndarray, each: np.ndarray) -> np.ndarray:
        """Scores against what is usual for the series: odds divided by their long mean.

        A series that is often far from its baseline (spiky, heavy-tailed) has a high mean
        odds, and must go further than usual to score as high as a quiet series would.
        """
        odds = each / (1.0 - each)
        typical = self.s["typical"][slots]
        relative = odds / np.maximum(1.0, typical / TYPICAL_ODDS)
        rate = np.maximum(1.0 / (count + 1.0), TYPICAL_RATE)[:, None]
        self.s["typical"][slots] = typical + rate * (np.minimum(odds, ODDS_CAP) - typical)
        out: np.ndarray = relative / (1.0 + relative)
        return out

    def _baseline(self, steps: list[Step], values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Expected value and sigma: seasonal when active, else the robust median, else any."""
        order = [n for n in ("seasonal", "mad", "cusum", "hst") if n in self.detectors]
        expected = np.full(len(values), np.nan)
        scale = np.full(len(values), np.nan)
        for name in order:
            st = steps[self.names.index(name)]
            take = np.isnan(expected) & np.isfinite(st.expected) & np.isfinite(st.scale)
            expected = np.where(take, st.expected, expected)
            scale = np.where(take, st.scale, scale)
        return expected, scale

    def state(self) -> dict[str, np.ndarray]:
        """Every array the ensemble and its detectors have learned, keyed `detector.array`."""
        state = {f"ensemble.{k}": a for k, a in self.s.state().items()}
        for name, detector in self.detectors.items():
            state.update({f"{name}.{k}": a for k, a in detector.state().items()})
        return state

    def restore(self, state: dict[str, np.ndarray]) -> None:
        """Continue from a `state()` taken with the same configuration."""
        if "ensemble.reported" not in state and "ensemble.count" in state:
            # a snapshot from before hold-offs: no report is recent
            state = {**state, "ensemble.reported": np.full(
                len(state["ensemble.count"]), -(1 << 40), dtype=np.int64)}
        if "ensemble.count" in state:
            # snapshots from before hold-off escapes (a hold-off then holds a report of
            # 0.5) and before the hour-of-day memory (nothing remembered) still load
            rows = len(state["ensemble.count"])
            state = {"ensemble.held": np.full(rows, 0.5),
                     "ensemble.daily": np.zeros((rows, 24)),
                     "ensemble.daily_ts": np.zeros((rows, 24), np.int64), **state}
        self.s.restore(state, "ensemble.")
        for name, detector in self.detectors.items():
            prefix = f"{name}."
            detector.restore({k[len(prefix):]: a for k, a in state.items()
                              if k.startswith(prefix)})

    def to_bytes(self) -> bytes:
        """The state as one `.npz` blob (no pickles)."""
        buffer = io.BytesIO()
        np.savez(buffer, **self.state())  # type: ignore[arg-type]
        return buffer.getvalue()

    def from_bytes(self, blob: bytes) -> None:
        """Restore from `to_bytes()`."""
        with np.load(io.BytesIO(blob), allow_pickle=False) as data:
            self.restore({k: data[k] for k in data.files})
