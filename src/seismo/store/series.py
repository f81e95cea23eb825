"""The series index: metric + labels ↔ stable id ↔ process-local slot, and selector matching.

Ids are a stable 63-bit hash of the metric and its sorted labels, so they are the same in
the WAL, in blocks and across restarts. Slots index the per-series numpy arrays in memory.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from seismo.query.selector import Selector

LabelKey = tuple[str, tuple[tuple[str, str], ...]]


def series_key(metric: str, labels: dict[str, str]) -> LabelKey:
    return metric, tuple(sorted(labels.items()))


def series_id(metric: str, labels: dict[str, str]) -> int:
    """Stable id of a series: blake2b of the canonical text, as a positive int64.

    >>> series_id("cpu", {"b": "2", "a": "1"}) == series_id("cpu", {"a": "1", "b": "2"})
    True
    """
    text = metric + "{" + ",".join(f"{k}={v}" for k, v in sorted(labels.items())) + "}"
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & 0x7FFF_FFFF_FFFF_FFFF


@dataclass(frozen=True, slots=True)
class SeriesInfo:
    id: int
    metric: str
    labels: dict[str, str]


class SeriesLimitReached(Exception):
    """The configured cardinality limit refuses a new series."""


class SeriesIndex:
    """All known series. Lookups are lock-free dict reads; additions take a lock."""

    def __init__(self, max_series: int) -> None:
        self.max_series = max_series
        self._lock = threading.Lock()
        self._slot_of_key: dict[LabelKey, int] = {}
        self._slot_of_id: dict[int, int] = {}
        self._series: list[SeriesInfo] = []
        self._by_metric: dict[str, list[int]] = {}
        self._ids = np.zeros(1024, dtype=np.int64)

    def __len__(self) -> int:
        return len(self._series)

    def slot_for(self, metric: str, labels: dict[str, str], *, create: bool = True) -> int:
        """Slot of a series, adding it if new; raise SeriesLimitReached past max_series."""
        key = series_key(metric, labels)
        slot = self._slot_of_key.get(key)
        if slot is not None:
            return slot
        if not create:
            raise KeyError(key)
        return self.add(series_id(metric, labels), metric, labels, key=key)

    def add(
        self, sid: int, metric: str, labels: dict[str, str], *, key: LabelKey | None = None,
        enforce_limit: bool = True,
    ) -> int:
        with self._lock:
            slot = self._slot_of_id.get(sid)
            if slot is not None:
                return slot
            if enforce_limit and len(self._series) >= self.max_series:
                raise SeriesLimitReached(
                    f"series limit of {self.max_series} reached; new series are refused"
                )
            slot = len(self._series)
            self._series.append(SeriesInfo(sid, metric, dict(labels)))
            if slot >= len(self._ids):
                self._ids = np.concatenate([self._ids, np.zeros(len(self._ids), np.int64)])
            self._ids[slot] = sid
            self._slot_of_id[sid] = slot
            self._slot_of_key[key or series_key(metric, labels)] = slot
            self._by_metric.setdefault(metric, []).append(slot)
            return slot

    def info(self, slot: int) -> SeriesInfo:
        return self._series[slot]

    def slot_of_id(self, sid: int) -> int | None:
        return self._slot_of_id.get(sid)

    def ids(self, slots: np.ndarray) -> np.ndarray:
        """Series ids of an array of slots."""
        ids: np.ndarray = self._ids[slots]
        return ids

    def metrics(self) -> list[str]:
        return sorted(self._by_metric)

    def select(self, selector: Selector) -> list[int]:
        """Slots of the series the selector matches, in slot order."""
        name = selector.metric_name()
        if name is not None:
            candidates: Iterable[int] = list(self._by_metric.get(name, ()))
        else:
            candidates = range(len(self._series))
        return [
            slot for slot in candidates
            if selector.matches(self._series[slot].metric, self._series[slot].labels)
        ]
