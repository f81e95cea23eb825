"""Validation of incoming samples: names, labels, values, timestamps, cardinality.

Series-level checks run once per series entry (and are skipped for series already known);
sample-level checks are numpy masks over all samples of the request at once. Good samples
become a Batch; each bad one is counted by reason and listed (up to MAX_LISTED) by index.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from seismo.config import Limits
from seismo.ingest.schema import SampleIn, SeriesIn
from seismo.store import Batch, SeriesLimitReached, Store
from seismo.store.head import NO_TS

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
        self, code: str, reason: str, names: list[dict[str, Any]], count: int
    ) -> None:
        """Refuse `count` samples; `names` say where the first of them are in the request."""
        self.rejected += count
        self.reasons[code] += count
        room = max(MAX_LISTED - len(self.errors), 0)
        self.errors.extend({**where, "reason": reason} for where in names[:room])


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
        """Validate the columnar form; a bad sample is named by series and index."""
        prepared = Prepared(_empty_batch())
        parts = _Parts()
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
            parts.add(i, slot, entry.timestamps or [now_ms] * n, entry.values)
        prepared.batch = self._check(prepared, parts, now_ms,
                                     lambda owner, j: {"series": owner, "index": j})
        return prepared

    def rows(self, samples: list[SampleIn], now_ms: int) -> Prepared:
        """Validate the row form; a bad sample is named by its index."""
        prepared = Prepared(_empty_batch())
        parts = _Parts()
        for i, sample in enumerate(samples):
            try:
                slot = self._slot(sample.metric, sample.labels)
            except SeriesRefused as exc:
                prepared.refuse(exc.code, exc.reason, 1, {"index": i})
                continue
            ts = now_ms if sample.timestamp is None else sample.timestamp
            parts.add(i, slot, [ts], [sample.value])
        prepared.batch = self._check(prepared, parts, now_ms, lambda owner, j: {"index": owner})
        return prepared

    def _check(
        self, prepared: Prepared, parts: _Parts, now_ms: int,
        name: Callable[[int, int], dict[str, Any]],
    ) -> Batch:
        """Check every sample of the request at once; return the good ones as a Batch."""
        if not parts.slots:
            return _empty_batch()
        lengths = np.array(parts.lengths)
        starts = np.concatenate([np.zeros(1, np.intp), np.cumsum(lengths)[:-1]])
        slots = np.repeat(np.array(parts.slots, np.int32), lengths)
        ts = np.array(parts.ts, dtype=np.int64)
        values = np.array(parts.values, dtype=np.float64)  # None becomes nan
        last_ts, _ = self.store.latest(slots)
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
             (last_ts != NO_TS) & (ts < last_ts - self.out_of_order_ms)),
        ]
        bad = np.zeros(len(ts), bool)
        owners = np.array(parts.owners)
        for code, reason, mask in checks:
            mask &= ~bad
            if mask.any():
                positions = np.flatnonzero(mask)
                part = np.searchsorted(starts, positions, side="right") - 1
                prepared.refuse_samples(code, reason, [
                    name(int(owners[k]), int(p - starts[k]))
                    for p, k in zip(positions[:MAX_LISTED], part[:MAX_LISTED], strict=False)
                ], len(positions))
                bad |= mask
        good = ~bad
        kept = slots[good]
        return Batch(kept, self.store.index.ids(kept), ts[good], values[good])


class _Parts:
    """Flat lists of a request's samples, one part per series entry or row."""

    def __init__(self) -> None:
        self.owners: list[int] = []
        self.slots: list[int] = []
        self.lengths: list[int] = []
        self.ts: list[int] = []
        self.values: list[float | None] = []

    def add(self, owner: int, slot: int, ts: list[int], values: list[float | None]) -> None:
        self.owners.append(owner)
        self.slots.append(slot)
        self.lengths.append(len(values))
        self.ts.extend(ts)
        self.values.extend(values)


def _empty_batch() -> Batch:
    return Batch(np.zeros(0, np.int32), np.zeros(0, np.int64), np.zeros(0, np.int64),
                 np.zeros(0, np.float64))
