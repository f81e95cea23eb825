"""The head: recent samples in memory, in arrival order, plus the latest value of every series.

Samples stay here until the store cuts them into a Parquet block. Queries see the head as
one Arrow table (zero-copy over the record batches appended so far).
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pyarrow as pa

from seismo.store.batch import Batch

SCHEMA = pa.schema([("sid", pa.int64()), ("ts", pa.int64()), ("value", pa.float64())])
NO_TS = np.iinfo(np.int64).min


def sort_dedupe(sid: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """Indices that sort samples by (series, ts), keeping the last arrival of a duplicate.

    >>> sort_dedupe(np.array([2, 1, 2]), np.array([5, 7, 5])).tolist()
    [1, 2]
    """
    order = np.lexsort((ts, sid))  # stable: among equal keys, arrival order is kept
    if len(order) < 2:
        return order
    s, t = sid[order], ts[order]
    keep = np.ones(len(order), dtype=bool)
    keep[:-1] = (s[1:] != s[:-1]) | (t[1:] != t[:-1])
    return order[keep]


class Head:
    """In-memory samples not yet in a block, and per-slot latest timestamp and value."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._chunks: list[pa.RecordBatch] = []
        self._frozen: list[pa.RecordBatch] = []
        self._frozen_overlap = False
        self._table: pa.Table | None = None
        self.count = 0
        self.may_overlap = False
        self.started_at: float | None = None
        self.min_ts = NO_TS
        self.max_ts = NO_TS
        # Replaced whole (never resized in place) so readers always get a matching pair.
        self.latest: tuple[np.ndarray, np.ndarray] = (
            np.full(1024, NO_TS, dtype=np.int64), np.full(1024, np.nan, dtype=np.float64))

    def _grow(self, slots: int) -> None:
        last_ts, last_value = self.latest
        size = len(last_ts)
        while size < slots:
            size *= 2
        if size != len(last_ts):
            extra = size - len(last_ts)
            self.latest = (np.concatenate([last_ts, np.full(extra, NO_TS, np.int64)]),
                           np.concatenate([last_value, np.full(extra, np.nan)]))

    def observe(self, slots: np.ndarray, ts: np.ndarray, values: np.ndarray) -> bool:
        """Update latest values from samples; return True if any is not newer than its series."""
        if len(ts) == 0:
            return False
        self._grow(int(slots.max()) + 1)
        order = np.lexsort((ts, slots))
        s, t, v = slots[order], ts[order], values[order]
        bounds = np.flatnonzero(s[1:] != s[:-1])
        firsts = np.concatenate([np.zeros(1, np.intp), bounds + 1])
        lasts = np.concatenate([bounds, np.array([len(s) - 1], np.intp)])
        last_ts, last_value = self.latest
        previous = last_ts[s[firsts]]
        overlaps = bool(np.any(t[firsts] <= previous)) or bool(
            np.any((s[1:] == s[:-1]) & (t[1:] == t[:-1]))
        )
        newer = t[lasts] >= last_ts[s[lasts]]
        last_ts[s[lasts][newer]] = t[lasts][newer]
        last_value[s[lasts][newer]] = v[lasts][newer]
        return overlaps

    def append(self, batch: Batch) -> None:
        overlaps = self.observe(batch.slots, batch.ts, batch.values)
        record = pa.RecordBatch.from_arrays(
            [pa.array(batch.sids), pa.array(batch.ts), pa.array(batch.values)], schema=SCHEMA
        )
        with self._lock:
            self._chunks.append(record)
            self._table = None
            self.count += len(batch)
            self.may_overlap |= overlaps
            if self.started_at is None:
                self.started_at = time.monotonic()
            lo, hi = int(batch.ts.min()), int(batch.ts.max())
            self.min_ts = lo if self.min_ts == NO_TS else min(self.min_ts, lo)
            self.max_ts = max(self.max_ts, hi)

    def freeze(self) -> tuple[pa.Table, bool]:
        """Move the current samples aside for a block cut; they stay visible until `release`."""
        with self._lock:
            # Accumulate: samples of a cut that failed are still frozen and go in this one.
            self._frozen, self._chunks = self._frozen + self._chunks, []
            self._frozen_overlap |= self.may_overlap
            self.may_overlap = False
            self.count, self.started_at = 0, None
            self.min_ts = self.max_ts = NO_TS
            self._table = None
            return pa.Table.from_batches(self._frozen, schema=SCHEMA), self._frozen_overlap

    def release(self) -> None:
        """Forget frozen samples once their block is durable and visible."""
        with self._lock:
            self._frozen = []
            self._frozen_overlap = False
            self._table = None

    def table(self) -> pa.Table:
        """All head samples (frozen included) as one table, sorted and deduplicated if needed."""
        return self.view()[0]

    def view(self) -> tuple[pa.Table, bool]:
        """(all head samples, whether they may repeat samples in blocks), read together."""
        with self._lock:
            if self._table is None:
                table = pa.Table.from_batches(self._frozen + self._chunks, schema=SCHEMA)
                if self.may_overlap or self._frozen_overlap:
                    keep = sort_dedupe(
                        table.column("sid").to_numpy(), table.column("ts").to_numpy()
                    )
                    table = table.take(pa.array(keep))
                self._table = table
            return self._table, self.may_overlap or self._frozen_overlap

    @property
    def has_frozen(self) -> bool:
        """True while samples of a block cut that failed (a full disk) wait for the next."""
        return bool(self._frozen)

    @property
    def age_s(self) -> float:
        return 0.0 if self.started_at is None else time.monotonic() - self.started_at
