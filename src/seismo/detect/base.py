"""What every detector shares: per-slot state arrays, batch rounds and the `Detector` protocol.

A detector keeps one row of state per series slot in numpy arrays (grown on demand) and
scores a whole batch at once. A batch may hold several samples of one series: they are
processed in "rounds", each round taking at most one sample per series, in time order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol

import numpy as np

KINDS = ("none", "spike", "drop", "level_shift", "trend_change", "outlier", "pattern_change")
"""Anomaly kinds (DESIGN.md vocabulary); detectors report them as int8 codes into this tuple."""
NONE, SPIKE, DROP, LEVEL_SHIFT, TREND_CHANGE, OUTLIER, PATTERN_CHANGE = range(len(KINDS))

Spec = dict[str, tuple[tuple[int, ...], type, float]]
"""State layout: name -> (trailing shape per slot, dtype, initial value)."""


class SlotState:
    """Named arrays with one row per series slot, grown (doubling) when a larger slot appears."""

    def __init__(self, spec: Spec, capacity: int = 0) -> None:
        self.spec = spec
        self.capacity = 0
        self.arrays: dict[str, np.ndarray] = {
            name: np.full((0, *shape), fill, dtype=dtype)
            for name, (shape, dtype, fill) in spec.items()
        }
        if capacity:
            self.ensure(capacity - 1)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]

    def ensure(self, max_slot: int) -> None:
        """Make room for slots up to `max_slot`; new rows start at their initial value."""
        if max_slot < self.capacity:
            return
        capacity = max(64, self.capacity)
        while capacity <= max_slot:
            capacity *= 2
        for name, (shape, dtype, fill) in self.spec.items():
            grown: np.ndarray = np.full((capacity, *shape), fill, dtype=dtype)
            grown[: self.capacity] = self.arrays[name]
            self.arrays[name] = grown
        self.capacity = capacity

    def state(self) -> dict[str, np.ndarray]:
        """A copy of every array, keyed by name."""
        return {name: array.copy() for name, array in self.arrays.items()}

    def restore(self, state: dict[str, np.ndarray], prefix: str = "") -> None:
        """Load arrays saved by `state()` (with keys prefixed by `prefix`)."""
        capacities = {len(state[prefix + name]) for name in self.spec}
        if len(capacities) != 1:
            raise ValueError("detector state arrays disagree on the number of slots")
        self.capacity = capacities.pop()
        for name, (shape, dtype, _) in self.spec.items():
            array: np.ndarray = np.asarray(state[prefix + name], dtype=dtype)
            if array.shape[1:] != shape:
                raise ValueError(f"detector state {name!r} has shape {array.shape[1:]}, "
                                 f"expected {shape}")
            self.arrays[name] = array.copy()


@dataclass(slots=True)
class Step:
    """A detector's verdict on one round (one sample per series), arrays aligned with it."""

    score: np.ndarray  # float64 in 0..1
    expected: np.ndarray  # float64, what the detector expected the value to be
    scale: np.ndarray  # float64 >= 0, one "sigma" of the expected band
    kind: np.ndarray  # int8 code into KINDS


def rounds(slots: np.ndarray, ts: np.ndarray) -> list[np.ndarray]:
    """Split a batch into index arrays, each holding at most one sample per slot, in time order.

    Round r holds every series' r-th sample (by timestamp, ties in batch order).
    """
    n = len(slots)
    if n == 0:
        return []
    order = np.lexsort((ts, slots))
    ordered = slots[order]
    starts = np.empty(n, dtype=bool)
    starts[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=starts[1:])
    if starts.all():
        return [np.arange(n)]
    first = np.flatnonzero(starts)
    rank = np.arange(n) - first[np.cumsum(starts) - 1]
    by_round = order[np.argsort(rank, kind="stable")]
    counts = np.bincount(rank)
    return np.split(by_round, np.cumsum(counts)[:-1])


def as_batch(slots: np.ndarray, ts: np.ndarray, values: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coerce a batch to (int64 slots, int64 ts, float64 values) and check the lengths."""
    s = np.asarray(slots, dtype=np.int64)
    t = np.asarray(ts, dtype=np.int64)
    v = np.asarray(values, dtype=np.float64)
    if not (s.shape == t.shape == v.shape) or s.ndim != 1:
        raise ValueError("slots, ts and values must be 1-d arrays of one length")
    if len(s) and s.min() < 0:
        raise ValueError("slots must be >= 0")
    return s, t, v


def surprise(z: np.ndarray, z_half: float) -> np.ndarray:
    """Map a non-negative deviation in sigmas to 0..1; `z_half` sigmas give 0.5."""
    z2: np.ndarray = np.square(np.nan_to_num(z, nan=0.0, posinf=1e6))
    out: np.ndarray = z2 / (z2 + z_half * z_half)
    return out


class Detector(Protocol):
    """A streaming detector over many series; state in arrays indexed by slot."""

    name: ClassVar[str]

    def step(self, slots: np.ndarray, ts: np.ndarray, values: np.ndarray) -> Step:
        """Score then learn one sample per slot (slots unique); return the verdicts."""
        ...

    def update(self, slots: np.ndarray, ts: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Score then learn a batch (any order, several samples per series); scores 0..1."""
        ...

    def state(self) -> dict[str, np.ndarray]:
        """Everything the detector has learned, as arrays."""
        ...

    def restore(self, state: dict[str, np.ndarray]) -> None:
        """Continue from a `state()`."""
        ...


class RoundDetector:
    """Base of the detectors: `update` runs `step` round by round over a batch."""

    name: ClassVar[str] = "detector"

    def __init__(self, spec: Spec) -> None:
        self.s = SlotState(spec)

    def step(self, slots: np.ndarray, ts: np.ndarray, values: np.ndarray) -> Step:
        raise NotImplementedError

    def update(self, slots: np.ndarray, ts: np.ndarray, values: np.ndarray) -> np.ndarray:
        s, t, v = as_batch(slots, ts, values)
        out = np.zeros(len(s))
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            for idx in rounds(s, t):
                out[idx] = self.step(s[idx], t[idx], v[idx]).score
        return np.nan_to_num(out, nan=0.0)

    def state(self) -> dict[str, np.ndarray]:
        return self.s.state()

    def restore(self, state: dict[str, np.ndarray]) -> None:
        self.s.restore(state)
