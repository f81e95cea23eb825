"""One model's predictions in memory: columns in arrival order, joined with their outcomes.

Rows hold the prediction time, version, predicted class code (or value), probability,
latency, the outcome once known (NaN until then) and one column per feature (categories as
codes). Prediction ids map to rows, so an outcome finds its prediction in O(1) however late
it comes; an outcome whose id is not known yet waits (bounded, `outcome_wait`) for its
prediction. Bounded: at most `max_rows` rows, the oldest (by arrival) go first.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from seismo.models.records import CATEGORICAL, OutcomeBatch, PredictionBatch

MAX_LISTED_IDS = 100
OTHER = "__other__"  # the category of values past max_categories


@dataclass
class View:
    """Copies of the selected rows' columns (plain arrays: safe to use without the lock)."""

    ts: np.ndarray
    pred: np.ndarray
    prob: np.ndarray
    latency: np.ndarray
    actual: np.ndarray
    features: np.ndarray  # rows × features
    class_probs: np.ndarray  # rows × classes (NaN: not given); 0 columns when none given

    def __len__(self) -> int:
        return len(self.ts)


class ModelTable:
    """See the module docstring; every method takes the table's lock."""

    def __init__(self, task: str, *, max_rows: int, max_pending: int,
                 max_categories: int) -> None:
        self.task = task
        self.max_rows = max_rows
        self.max_pending = max_pending
        self.max_categories = max_categories
        self.lock = threading.Lock()
        self.kinds: dict[str, str] = {}  # feature → numeric | categorical
        self.feature_names: list[str] = []
        self.categories: dict[str, dict[str, int]] = {}  # categorical feature → code of value
        self.classes: dict[str, int] = {}  # class label → code
        self.versions: dict[str, int] = {}  # version → code
        self.predictions_total: dict[str, int] = {}
        self.outcomes_total: dict[str, int] = {}
        self.pending: dict[str, tuple[float, int]] = {}  # id → (actual, received_ms)
        self.pending_dropped = 0
        self.last_seq = 0  # seq of the last record applied
        self.ids: dict[str, int] = {}  # prediction id → absolute row number
        self._id_list: list[str] = []  # ids of the live rows, in order, from _id_head
        self._id_head = 0
        self._lo = self._hi = 0  # live rows are [lo, hi) of the buffers
        self._shift = 0  # absolute row number of buffer index 0
        self._alloc(1024, 8, 0)

    def _alloc(self, rows: int, features: int, classes: int) -> None:
        self.ts = np.zeros(rows, np.int64)
        self.seq = np.zeros(rows, np.int64)
        self.ver = np.zeros(rows, np.int32)
        self.pred = np.full(rows, np.nan)
        self.prob = np.full(rows, np.nan)
        self.latency = np.full(rows, np.nan)
        self.actual = np.full(rows, np.nan)
        self.feats = np.full((rows, features), np.nan)
        self.cprobs = np.full((rows, classes), np.nan)

    def __len__(self) -> int:
        return self._hi - self._lo

    # -- growth -------------------------------------------------------------------------

    def _reserve(self, extra: int, features: int, classes: int) -> None:
        """Room for `extra` rows and the given columns: compact, or grow by doubling."""
        cap, fcap, ccap = len(self.ts), self.feats.shape[1], self.cprobs.shape[1]
        if self._hi + extra <= cap and features <= fcap and classes <= ccap:
            return
        lo, hi = self._lo, self._hi
        n = hi - lo
        old: tuple[np.ndarray, ...] = (self.ts, self.seq, self.ver, self.pred, self.prob,
                                       self.latency, self.actual)
        old_feats, old_cprobs = self.feats, self.cprobs
        self._alloc(cap if n + extra <= cap else max(2 * cap, n + extra),
                    fcap if features <= fcap else max(2 * fcap, features),
                    ccap if classes <= ccap else max(2 * ccap, classes))
        new: tuple[np.ndarray, ...] = (self.ts, self.seq, self.ver, self.pred, self.prob,
                                       self.latency, self.actual)
        for to, arr in zip(new, old, strict=True):
            to[:n] = arr[lo:hi]
        self.feats[:n, :fcap] = old_feats[lo:hi]
        self.cprobs[:n, :ccap] = old_cprobs[lo:hi]
        self._shift += lo
        self._lo, self._hi = 0, n

    def _code(self, vocab: dict[str, int], label: str, *, cap: int | None = None) -> int:
        code = vocab.get(label)
        if code is None:
            if cap is not None and len(vocab) >= cap:
                return self._code(vocab, OTHER)
            code = vocab[label] = len(vocab)
        return code

    def _codes(self, vocab: dict[str, int], labels: list[str | None],
               cap: int | None = None) -> np.ndarray:
        get = vocab.get
        out = np.fromiter((-1 if x is None else get(x, -2) for x in labels), np.float64,
                          len(labels))
        for i in np.flatnonzero(out == -2).tolist():
            out[i] = self._code(vocab, labels[i] or "", cap=cap)
        out[out == -1] = np.nan
        return out

    # -- applying records ---------------------------------------------------------------

    def add_predictions(self, batch: PredictionBatch, seq: int) -> dict[str, Any]:
        """Append a batch's rows (ids already held are skipped: a retried request)."""
        with self.lock:
            known = self.ids
            keep = np.fromiter((x not in known for x in batch.ids), bool, len(batch.ids))
            duplicates = int(len(keep) - keep.sum())
            idx = np.flatnonzero(keep) if duplicates else None
            ids = batch.ids if idx is None else [batch.ids[i] for i in idx.tolist()]

            def cut(a: np.ndarray) -> np.ndarray:
                return a if idx is None else a[idx]

            m = len(ids)
            for name, kind in ((n, "numeric") for n in batch.numeric):
                self.kinds.setdefault(name, kind)
            for name in batch.categorical:
                self.kinds.setdefault(name, CATEGORICAL)
            for name in self.kinds:
                if name not in self.feature_names:
                    self.feature_names.append(name)
            if batch.labels is not None:
                labels = batch.labels if idx is None else [batch.labels[i]
                                                           for i in idx.tolist()]
                pred = self._codes(self.classes, list(labels))
            else:
                assert batch.values is not None
                pred = cut(batch.values)
            for label in batch.class_probabilities:
                self._code(self.classes, label)
            self._reserve(m, len(self.feature_names), len(self.classes))
            lo, hi = self._hi, self._hi + m
            vcode = self._code(self.versions, batch.version)
            self.ts[lo:hi] = cut(batch.ts)
            self.seq[lo:hi] = seq
            self.ver[lo:hi] = vcode
            self.pred[lo:hi] = pred
            self.prob[lo:hi] = cut(batch.probability)
            self.latency[lo:hi] = cut(batch.latency_ms)
            self.actual[lo:hi] = np.nan
            self.feats[lo:hi] = np.nan
            self.cprobs[lo:hi] = np.nan
            column = {name: j for j, name in enumerate(self.feature_names)}
            for name, values in batch.numeric.items():
                self.feats[lo:hi, column[name]] = cut(values)
            for name, cats in batch.categorical.items():
                vocab = self.categories.setdefault(name, {})
                chosen = cats if idx is None else [cats[i] for i in idx.tolist()]
                self.feats[lo:hi, column[name]] = self._codes(vocab, chosen, self.max_categories)
            for label, q in batch.class_probabilities.items():
                self.cprobs[lo:hi, self.classes[label]] = cut(q)
            first = self._shift + lo
            known.update(zip(ids, range(first, first + m), strict=True))
            self._id_list.extend(ids)
            self._hi = hi
            self.predictions_total[batch.version] = \
                self.predictions_total.get(batch.version, 0) + m
            joined = self._join_pending(ids, first) if self.pending else 0
            self._evict_over(self.max_rows)
            return {"accepted": m, "duplicates": duplicates, "joined_outcomes": joined}

    def _join_pending(self, ids: list[str], first: int) -> int:
        rows, values = [], []
        for k, x in enumerate(ids):
            waiting = self.pending.pop(x, None)
            if waiting is not None:
                rows.append(first + k - self._shift)
                values.append(waiting[0])
        if rows:
            self._set_actual(np.array(rows, np.int64), np.array(values))
        return len(rows)

    def _set_actual(self, rows: np.ndarray, values: np.ndarray) -> None:
        new = np.isnan(self.actual[rows])
        self.actual[rows] = values
        versions = list(self.versions)
        for code, count in enumerate(np.bincount(self.ver[rows[new]],
                                                 minlength=len(versions)).tolist()):
            if count:
                v = versions[code]
                self.outcomes_total[v] = self.outcomes_total.get(v, 0) + count

    def add_outcomes(self, batch: OutcomeBatch, received_ms: int) -> dict[str, Any]:
        """Join outcomes to their predictions; unknown ids wait for a later prediction."""
        with self.lock:
            if batch.labels is not None:
                values = self._codes(self.classes, list(batch.labels))
            else:
                assert batch.values is not None
                values = batch.values
            get, lo_abs = self.ids.get, self._shift + self._lo
            rows = np.fromiter((get(x, -1) for x in batch.ids), np.int64, len(batch.ids))
            found = rows >= lo_abs
            hit = np.flatnonzero(found)
            updated = int((~np.isnan(self.actual[rows[hit] - self._shift])).sum())
            self._set_actual(rows[hit] - self._shift, values[hit])
            unknown = [batch.ids[i] for i in np.flatnonzero(~found).tolist()]
            for x, i in zip(unknown, np.flatnonzero(~found).tolist(), strict=True):
                self.pending.pop(x, None)
                self.pending[x] = (float(values[i]), received_ms)
            while len(self.pending) > self.max_pending:
                del self.pending[next(iter(self.pending))]
                self.pending_dropped += 1
            return {"accepted": len(batch), "matched": len(hit), "updated": updated,
                    "unknown": len(unknown), "unknown_ids": unknown[:MAX_LISTED_IDS]}

    # -- bounds -------------------------------------------------------------------------

    def _evict_over(self, max_rows: int, cutoff_ms: int | None = None) -> None:
        n = self._hi - self._lo
        k = max(0, n - max_rows)
        if cutoff_ms is not None and n:
            young = self.ts[self._lo:self._hi] >= cutoff_ms
            k = max(k, int(np.argmax(young)) if young.any() else n)
        if k == 0:
            return
        head = self._id_head
        for x in self._id_list[head:head + k]:
            del self.ids[x]
        self._id_head += k
        if self._id_head > len(self._id_list) // 2:  # amortised: not a memmove per batch
            del self._id_list[:self._id_head]
            self._id_head = 0
        self._lo += k

    def expire(self, cutoff_ms: int, pending_cutoff_ms: int) -> int | None:
        """Drop rows older than `cutoff_ms` (a prefix in arrival order) and outcomes that
        waited since before `pending_cutoff_ms`; the oldest record seq still held."""
        with self.lock:
            self._evict_over(self.max_rows, cutoff_ms)
            stale = [x for x, (_, at) in self.pending.items() if at < pending_cutoff_ms]
            for x in stale:
                del self.pending[x]
            return int(self.seq[self._lo]) if self._hi > self._lo else None

    # -- reading ------------------------------------------------------------------------

    def view(self, version: str | None, start_ms: int, end_ms: int,
             first: int | None = None) -> View:
        """Rows of a version (None: all) with start_ms <= ts <= end_ms; with `first`, the
        version's first rows held, in arrival order, instead of a time range."""
        with self.lock:
            lo, hi = self._lo, self._hi
            if version is not None and version not in self.versions:
                mask = np.zeros(hi - lo, bool)
            elif first is not None:
                mask = (np.ones(hi - lo, bool) if version is None
                        else self.ver[lo:hi] == self.versions[version])
                mask &= np.cumsum(mask) <= first
            else:
                ts = self.ts[lo:hi]
                mask = (ts >= start_ms) & (ts <= end_ms)
                if version is not None:
                    mask &= self.ver[lo:hi] == self.versions[version]
            rows = np.flatnonzero(mask) + lo
            nf, nc = len(self.feature_names), len(self.classes)
            return View(self.ts[rows], self.pred[rows], self.prob[rows], self.latency[rows],
                        self.actual[rows], self.feats[rows, :nf],
                        self.cprobs[rows, :nc] if np.isfinite(self.cprobs[rows, :nc]).any()
                        else np.zeros((len(rows), 0)))
