"""Per-kind statistics and predictions for running sessions.

Completion time: the durations of finished sessions of the same kind, conditioned on the
time already elapsed — the median (and 90th percentile) of the durations longer than it
(a Kaplan-Meier-free conditional quantile: every finished session is an observation).
Success: a logistic regression (`logistic.py`) over the session's start attributes and
its early events, its calibration measured on 5-fold out-of-fold predictions (Brier
score, reliability bins).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from seismo.sessions.logistic import Logistic, fit_logistic
from seismo.sessions.model import Session

MAX_CATEGORIES = 200  # one-hot key=value columns kept (most frequent first)
MAX_EVENT_TYPES = 20  # early-event-count columns kept
MAX_TRAIN = 20_000  # newest labelled sessions a fit uses
FOLDS = 5
BINS = 10
MIN_LONGER = 3  # durations longer than the elapsed time needed for a conditional estimate


def quantile(ordered: Sequence[float], q: float, lo: int = 0) -> float:
    """The q-quantile of the sorted `ordered[lo:]`, interpolated linearly (numpy's default).

    >>> quantile([1.0, 2.0, 3.0, 4.0], 0.5)
    2.5
    """
    n = len(ordered) - lo
    pos = q * (n - 1)
    i = int(pos)
    if i + 1 >= n:
        return float(ordered[lo + n - 1])
    frac = pos - i
    return float(ordered[lo + i] * (1 - frac) + ordered[lo + i + 1] * frac)


def conditional_quantiles(durations: Sequence[float], elapsed: float,
                          qs: tuple[float, ...] = (0.5, 0.9)) -> list[float] | None:
    """Quantiles of the sorted `durations` that are longer than `elapsed`; None when fewer
    than MIN_LONGER are.

    >>> conditional_quantiles([1.0, 2.0, 3.0, 4.0, 5.0], 2.5, (0.5,))
    [4.0]
    """
    lo = bisect_right(durations, elapsed)
    if len(durations) - lo < MIN_LONGER:
        return None
    return [quantile(durations, q, lo) for q in qs]


@dataclass(slots=True)
class Finished:
    """A finished session as the statistics see it."""

    duration_s: float
    status: str | None
    categories: dict[str, str]
    numbers: dict[str, float]
    early: dict[str, int]
    ended_ms: int


def finished_of(session: Session) -> Finished:
    categories: dict[str, str] = {}
    numbers: dict[str, float] = {}
    for key, value in session.attributes.items():
        if isinstance(value, bool):
            categories[key] = str(value).lower()
        elif isinstance(value, int | float):
            if np.isfinite(value):
                numbers[key] = float(value)
        elif isinstance(value, str):
            categories[key] = value
    if session.kind:
        categories["kind"] = session.kind
    return Finished(session.duration_ms(session.last_ms) / 1000, session.status, categories,
                    numbers, dict(session.early), session.ended_ms or session.last_ms)


class KindHistory:
    """The newest finished sessions of one kind; their durations kept sorted, their
    outcomes counted, both as sessions come and go (O(log n) to find, O(n) memmove)."""

    def __init__(self, size: int) -> None:
        self.items: deque[Finished] = deque(maxlen=size)
        self.durations: list[float] = []
        self.succeeded = 0
        self.failed = 0

    def add(self, item: Finished) -> None:
        if len(self.items) == self.items.maxlen:
            self._count(self.items[0], -1)
            del self.durations[bisect_left(self.durations, self.items[0].duration_s)]
        self.items.append(item)
        self._count(item, 1)
        insort(self.durations, item.duration_s)

    def _count(self, item: Finished, by: int) -> None:
        if item.status == "success":
            self.succeeded += by
        elif item.status == "failure":
            self.failed += by

    def stats(self) -> dict[str, Any]:
        d = self.durations
        labelled = self.succeeded + self.failed
        pct = ({f"p{q}": round(quantile(d, q / 100), 3) for q in (50, 90, 95, 99)}
               if d else None)
        return {"history": len(self.items), "duration_s": pct,
                "success_rate": round(self.succeeded / labelled, 6) if labelled else None,
                "succeeded": self.succeeded, "failed": self.failed}


class Features:
    """Columns of the success model: start attributes one-hot, numbers, early events."""

    def __init__(self, items: list[Finished]) -> None:
        counts = Counter((k, v) for f in items for k, v in f.categories.items())
        self.pairs = [p for p, _ in counts.most_common(MAX_CATEGORIES)]
        self.numbers = sorted({k for f in items for k in f.numbers})
        self.fill = {k: float(np.mean([f.numbers[k] for f in items if k in f.numbers]))
                     for k in self.numbers}
        types = Counter(t for f in items for t in f.early if t != "__errors__")
        self.types = [t for t, _ in types.most_common(MAX_EVENT_TYPES)]

    @property
    def names(self) -> list[str]:
        return ([f"{k}={v}" for k, v in self.pairs] + self.numbers
                + [f"early:{t}" for t in self.types] + ["early_errors", "early_events"])

    def row(self, f: Finished) -> list[float]:
        early = f.early
        return ([float(f.categories.get(k) == v) for k, v in self.pairs]
                + [f.numbers.get(k, self.fill[k]) for k in self.numbers]
                + [float(np.log1p(early.get(t, 0))) for t in self.types]
                + [float(np.log1p(early.get("__errors__", 0))),
                   float(np.log1p(sum(v for t, v in early.items() if t != "__errors__")))])


def calibration(p: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Brier score, the base rate's Brier score and reliability bins of predictions `p`."""
    base = float(y.mean())
    bins = []
    edges = np.linspace(0, 1, BINS + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, BINS - 1)
    for b in range(BINS):
        mask = which == b
        if mask.any():
            bins.append({"from": round(float(edges[b]), 2), "to": round(float(edges[b + 1]), 2),
                         "count": int(mask.sum()),
                         "mean_predicted": round(float(p[mask].mean()), 4),
                         "observed_rate": round(float(y[mask].mean()), 4)})
    return {"brier": round(float(np.mean((p - y) ** 2)), 6),
            "brier_base_rate": round(float(np.mean((base - y) ** 2)), 6),
            "evaluated_on": len(y), "method": f"{FOLDS}-fold out-of-fold predictions",
            "bins": bins}


@dataclass
class SuccessModel:
    """A fitted success model with its calibration report."""

    features: Features
    model: Logistic
    report: dict[str, Any]

    def predict(self, f: Finished) -> float:
        return float(self.model.predict(np.array([self.features.row(f)]))[0])

    def about(self) -> dict[str, Any]:
        weights = sorted(zip(self.features.names, self.model.weights.tolist(), strict=True),
                         key=lambda nw: -abs(nw[1]))
        return {"kind": "logistic", "trained_on": self.report["evaluated_on"],
                "top_weights": {n: round(w, 4) for n, w in weights[:20]},
                "intercept": round(self.model.intercept, 4), "calibration": self.report}


def fit_success(items: list[Finished], l2: float = 1.0) -> SuccessModel | None:
    """Fit on finished sessions with status success or failure (both must occur)."""
    labelled = [f for f in items if f.status in ("success", "failure")]
    labelled.sort(key=lambda f: f.ended_ms)
    labelled = labelled[-MAX_TRAIN:]
    y = np.array([f.status == "success" for f in labelled], dtype=np.int64)
    if len(labelled) < 2 * FOLDS or y.min() == y.max():
        return None
    features = Features(labelled)
    x = np.array([features.row(f) for f in labelled], dtype=np.float64)
    folds = np.random.default_rng(0).permutation(len(y)) % FOLDS
    out_of_fold = np.empty(len(y))
    for k in range(FOLDS):
        test = folds == k
        train_y = y[~test]
        if train_y.min() == train_y.max():
            out_of_fold[test] = train_y.mean()
            continue
        out_of_fold[test] = fit_logistic(x[~test], train_y, l2).predict(x[test])
    return SuccessModel(features, fit_logistic(x, y, l2), calibration(out_of_fold, y))
