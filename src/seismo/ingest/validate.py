"""Validation of incoming samples: names, labels, values, timestamps, cardinality.

Series-level checks run once per series entry (and are skipped for series already known);
sample-level checks are numpy masks over the whole entry. Good samples become a Batch;
each bad one is counted by reason and listed (up to MAX_LISTED) with its index.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from seismo.config import Limits
from seismo.ingest.schema import SampleIn, SeriesIn
from seismo.store import Batch, SeriesLimitReached, Store

METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
MAX_LISTED = 100


@dataclass
class Prepared:
    """The outcome of validating one request: what to store and what was refused."""

    batch: Batch
    rejected: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)

    def refuse(self, code: str, reason: str, count: int, where: dict[str, Any]) -> None:
        self.rejected += count
        self.reasons[code] += count
        if len(self.errors) < MAX_LISTED:
            self.errors.append({**where, "reason": reason})

    def refuse_samples(
        self, code: str, reason: str, positions: np.ndarray, where: Any
    ) -> None:
        """Refuse samples at `positions`; `where(j)` names sample j in the reply."""
        self.rejected += len(positions)
        self.reasons[code] += len(positions)
        room = MAX_LISTED - len(self.errors)
        for j in positions[: max(room, 0)].tolist():
            self.errors.append({**where(j), "reason": reason})


class SeriesRefused(Exception):
    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class Validator:
    """Turns decoded ingest bodies into batches, following the configured limits."""

    def __init__(
        self, store: Store, limits: Limits, *, retention_s: float, out_of_order_s: float
    ) -> None:
        self.store = store
        self.limits = limits
        self.retention_ms = int(retention_s * 1000)
        self.out_of_order_ms = int(out_of_order_s * 1000)

    def check_series(self, metric: str, labels: dict[str, str]) -> None:
        """Raise SeriesRefused naming the problem with a metric name or its labels."""
        if not METRIC_NAME.match(metric):
            raise SeriesRefused(
                "invalid_metric_name",
                f"metric name {metric!r} is invalid: must match [a-zA-Z_:][a-zA-Z0-9_:]*",
            )
        if len(labels) > self.limits.max_labels_per_series:
            raise SeriesRefused(
                "too_many_labels",
                f"{len(labels)} labels, more than the limit of "
                f"{self.limits.max_labels_per_series}",
            )
        for name, value in labels.items():
            if not LABEL_NAME.match(name) or name.startswith("__"):
                raise SeriesRefused(
                    "invalid_label_name",
                    f"label name {name!r} is invalid: must match [a-zA-Z_][a-zA-Z0-9_]* "
                    "and not start with __",
                )
            if len(value) > self.limits.max_label_value_length:
                raise SeriesRefused(
                    "label_value_too_long",
                    f"value of label {name!r} is {len(value)} characters, more than the limit "
                    f"of {self.limits.max_label_value_length}",
                )

    def _slot(self, metric: str, labels: dict[str, str]) -> int:
        index = self.store.index
        try:
            return index.slot_for(metric, labels, create=False)
        except KeyError:
            pass
        self.check_series(metric, labels)
        try:
            return index.slot_for(metric, labels)
        except SeriesLimitReached as exc:
            raise SeriesRefused("series_limit", str(exc)) from None

    def columnar(self, entries: list[SeriesIn], now_ms: int) -> Prepared:
        parts: list[tuple[int, np.ndarray, np.ndarray]] = []
        prepared = Prepared(_empty_batch())
        for i, entry in enumerate(entries):
            n = len(entry.values)
            if entry.timestamps is not None and len(entry.timestamps) != n:
                prepared.refuse(
                    "length_mismatch",
                    f"{len(entry.timestamps)} timestamps but {n} values", n, {"series": i},
                )
                continue
            try:
                slot = self._slot(entry.metric, entry.labels)
            except SeriesRefused as exc:
                prepared.refuse(exc.code, exc.reason, n, {"series": i})
                continue
            ts = (np.full(n, now_ms, np.int64) if entry.timestamps is None
                  else np.asarray(entry.timestamps, dtype=np.int64))
            values = np.array(entry.values, dtype=np.float64)  # None becomes nan
            keep = self._check_samples(prepared, slot, ts, values, now_ms,
                                       lambda j, i=i: {"series": i, "index": j})
            parts.append((slot, ts[keep], values[keep]))
        prepared.batch = self._batch(parts)
        return prepared

    def rows(self, samples: list[SampleIn], now_ms: int) -> Prepared:
        prepared = Prepared(_empty_batch())
        grouped: dict[tuple[str, tuple[tuple[str, str], ...]], list[int]] = {}
        for i, sample in enumerate(samples):
            key = (sample.metric, tuple(sorted(sample.labels.items())))
            grouped.setdefault(key, []).append(i)
        parts: list[tuple[int, np.ndarray, np.ndarray]] = []
        for (metric, label_items), positions in grouped.items():
            try:
                slot = self._slot(metric, dict(label_items))
            except SeriesRefused as exc:
                for i in positions:
                    prepared.refuse(exc.code, exc.reason, 1, {"index": i})
                continue
            ts = np.array(
                [now_ms if samples[i].timestamp is None else samples[i].timestamp
                 for i in positions], dtype=np.int64,
            )
            values = np.array([samples[i].value for i in positions], dtype=np.float64)
            keep = self._check_samples(prepared, slot, ts, values, now_ms,
                                       lambda j, p=positions: {"index": p[j]})
            parts.append((slot, ts[keep], values[keep]))
        prepared.batch = self._batch(parts)
        return prepared

    def _check_samples(
        self, prepared: Prepared, slot: int, ts: np.ndarray, values: np.ndarray,
        now_ms: int, where: Any,
    ) -> np.ndarray:
        """Mask of good samples; each bad one is refused with its reason."""
        last_ts, _ = self.store.latest(np.array([slot]))
        checks = [
            # JSON has no NaN, so a NaN here is a null that msgspec decoded.
            ("null_value", "value is null", np.isnan(values)),
            ("non_finite", "value is not a finite number", np.isinf(values)),
            ("future", f"timestamp is more than {self.limits.max_future_s:g}s in the future",
             ts > now_ms + int(self.limits.max_future_s * 1000)),
            ("too_old", "timestamp is older than the retention period",
             ts < now_ms - self.retention_ms),
            ("out_of_order",
             "timestamp is older than the newest sample of its series by more than the "
             "out-of-order tolerance",
             ts < int(last_ts[0]) - self.out_of_order_ms),
        ]
        bad = np.zeros(len(ts), bool)
        for code, reason, mask in checks:
            mask &= ~bad
            if mask.any():
                prepared.refuse_samples(code, reason, np.flatnonzero(mask), where)
                bad |= mask
        return ~bad

    def _batch(self, parts: list[tuple[int, np.ndarray, np.ndarray]]) -> Batch:
        if not parts:
            return _empty_batch()
        slots = np.concatenate([np.full(len(p[1]), p[0], np.int32) for p in parts])
        return Batch(
            slots, self.store.index.ids(slots),
            np.concatenate([p[1] for p in parts]), np.concatenate([p[2] for p in parts]),
        )


def _empty_batch() -> Batch:
    return Batch(np.zeros(0, np.int32), np.zeros(0, np.int64), np.zeros(0, np.int64),
                 np.zeros(0, np.float64))
