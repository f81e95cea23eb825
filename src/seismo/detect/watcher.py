"""Watching every series as it arrives: the detection stage after the WAL.

The ingest writer hands each durable batch to `offer`, which never blocks: the queue is
bounded and a batch that does not fit is skipped for detection (and counted). A thread
scores batches with one `Ensemble` per configuration, turns runs of anomalous points into
anomaly records (one per incident, with start and end), stores and publishes them.

Detector rows are keyed by series id, not by the process-local slot, so a snapshot of the
detectors' state restores onto the right series after a restart.
"""

from __future__ import annotations

import io
import logging
import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from seismo.config import Detect
from seismo.detect.config import DetectConfig
from seismo.detect.ensemble import Ensemble, Scores
from seismo.errors import SeismoError
from seismo.priority import background_priority
from seismo.query.selector import Selector, parse_selector
from seismo.store.anomalies import Anomaly, AnomalyLog
from seismo.store.batch import Batch
from seismo.store.series import SeriesIndex, series_id

log = logging.getLogger(__name__)
UNWATCHED = -2
UNKNOWN = -1
BAND_METRICS = ("anomaly_band_expected", "anomaly_band_lower", "anomaly_band_upper")
BAND_LABEL = "series_metric"  # band series carry the watched series' labels and this one


def band_labels(metric: str, labels: dict[str, str]) -> dict[str, str]:
    """The labels of a series' band series."""
    return {**labels, BAND_LABEL: metric}


@dataclass(frozen=True)
class WatchRule:
    """Series matching `selector` use `config`; `config` None means: not watched."""

    selector: Selector
    config: DetectConfig | None


def watch_configs(settings: Detect) -> tuple[DetectConfig, list[WatchRule]]:
    """The default detection config and the per-selector rules, from the settings."""
    base = {"detectors": tuple(settings.detectors), "sensitivity": settings.sensitivity,
            "warmup": settings.warmup, "seasonality": settings.seasonality,
            "min_score": settings.min_score}
    default = DetectConfig(**base)  # type: ignore[arg-type]
    rules = []
    for rule in settings.rules:
        given = {k: v for k, v in rule.model_dump(exclude={"selector", "enabled"}).items()
                 if v is not None}
        if "detectors" in given:
            given["detectors"] = tuple(given["detectors"])
        config = DetectConfig(**{**base, **given}) if rule.enabled else None
        rules.append(WatchRule(parse_selector(rule.selector), config))
    return default, rules


@dataclass
class _Watch:
    """One configuration: its ensemble and the detector row of each series id."""

    config: DetectConfig
    ensemble: Ensemble
    row_of_sid: dict[int, int] = field(default_factory=dict)

    def row(self, sid: int) -> int:
        return self.row_of_sid.setdefault(sid, len(self.row_of_sid))


class Watcher:
    """Scores every durable batch and keeps the anomaly records; plain Python, one thread."""

    def __init__(self, index: SeriesIndex, anomalies: AnomalyLog, *,
                 default: DetectConfig, rules: list[WatchRule] | None = None,
                 publish: Callable[[Anomaly], None] = lambda a: None,
                 state_path: Path | None = None, queue_samples: int = 1_000_000,
                 quiet_samples: int = 10, snapshot_interval_s: float = 60.0,
                 band_interval_s: float = 60.0, max_rounds: int = 1000,
                 max_cpu_share: float = 0.5,
                 write_band: Callable[[Batch], object] | None = None) -> None:
        self.index = index
        self.anomalies = anomalies
        self.rules = rules or []
        self.publish = publish
        self.state_path = state_path
        self.queue_samples = queue_samples
        self.quiet_samples = quiet_samples
        self.snapshot_interval_s = snapshot_interval_s
        self.band_interval_ms = int(band_interval_s * 1000)
        self.max_rounds = max_rounds
        self.max_cpu_share = max_cpu_share
        self._rest = threading.Event()  # set on stop: no more resting
        self.write_band = write_band
        self._band_due = np.zeros(0, np.int64)  # per slot: ts from which a band point is due
        self._band_slots = np.full((0, 3), UNKNOWN, np.int64)
        self.watches: list[_Watch] = []
        for config in [default, *(r.config for r in self.rules if r.config is not None)]:
            if all(watch.config != config for watch in self.watches):
                self.watches.append(_Watch(config, Ensemble(config)))
        self._watch_of_slot = np.full(0, UNKNOWN, np.int16)
        self._row_of_slot = np.full(0, UNKNOWN, np.int64)
        self._quiet = np.zeros(0, np.int64)
        self.scored = np.zeros(0, np.int64)  # points scored per slot, since start
        self.flagged = np.zeros(0, np.int64)  # …and how many of them were anomalous
        self.open: dict[int, Anomaly] = {}  # slot → its open anomaly
        self._queue: deque[Batch] = deque()
        self._queued = 0
        self._cond = threading.Condition()
        self._running = False
        self._busy = False
        self._thread: threading.Thread | None = None
        self.skipped_samples = 0
        self.anomalies_opened = 0
        self._unsaved: list[Anomaly] = []  # records a full disk kept from the anomaly log

    # -- producer side (the ingest writer thread) ---------------------------------------

    def offer(self, batch: Batch) -> None:
        """Queue a durable batch for scoring; skip it (counted) when the queue is full."""
        with self._cond:
            if self._queued + len(batch) > self.queue_samples:
                self.skipped_samples += len(batch)
                return
            self._queue.append(batch)
            self._queued += len(batch)
            self._cond.notify()

    # -- life cycle ---------------------------------------------------------------------

    def start(self) -> None:
        self.restore()
        self._rest.clear()
        self._running = True
        self._thread = threading.Thread(target=self._run, name="seismo-detect", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._rest.set()
        with self._cond:
            self._running = False
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout=60)
            self._thread = None
        self.snapshot()

    def _run(self) -> None:
        background_priority()
        next_snapshot = time.monotonic() + self.snapshot_interval_s
        while True:
            with self._cond:
                if not self._queue and self._running:
                    self._cond.wait(timeout=1.0)
                if not self._queue and not self._running:
                    return
                batches = list(self._queue)
                self._queue.clear()
                self._queued = 0
                self._busy = bool(batches)
            started = time.perf_counter()
            try:
                if batches:
                    self.process(Batch.concat(batches))
            except Exception:
                log.exception("anomaly detection failed on a batch; going on")
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()
            # Scoring holds the GIL; resting in proportion keeps ingest and the stream fed.
            # Batches that arrive meanwhile are merged (fewer, larger rounds) or skipped.
            busy_s = time.perf_counter() - started
            if batches and self.max_cpu_share < 1:
                self._rest.wait(busy_s * (1 / self.max_cpu_share - 1))
            if time.monotonic() >= next_snapshot:
                next_snapshot = time.monotonic() + self.snapshot_interval_s
                try:
                    self.snapshot()
                except OSError as exc:
                    log.error("detector state not saved: %s", exc)

    def drain(self, timeout_s: float = 10.0) -> bool:
        """Wait until every queued batch has been scored; False on timeout."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._queue or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(timeout=min(left, 0.05))
        return True

    # -- scoring ------------------------------------------------------------------------

    def process(self, batch: Batch) -> None:
        """Score a batch and update the anomaly records (on the detection thread)."""
        if len(batch) == 0:
            return
        batch = self._newest(batch)
        slots = batch.slots.astype(np.int64)
        self._grow(int(slots.max()) + 1)
        new = np.unique(slots[self._watch_of_slot[slots] == UNKNOWN])
        for slot in new.tolist():
            self._place(slot)
        which = self._watch_of_slot[slots]
        for w, watch in enumerate(self.watches):
            take = np.flatnonzero(which == w)
            if len(take) == 0:
                continue
            s, ts, v = slots[take], batch.ts[take], batch.values[take]
            scores = watch.ensemble.update(self._row_of_slot[s], ts, v)
            self._merge(s, ts, v, scores, watch.config.min_score)
            if self.write_band is not None and self.band_interval_ms > 0:
                self._band(s, ts, scores, watch.config.warmup)

    def _band(self, slots: np.ndarray, ts: np.ndarray, scores: Scores, warmup: int) -> None:
        """Store the expected band as series, one point per series per band interval,
        once a series is past its warm-up."""
        write = self.write_band
        assert write is not None
        due = ((ts >= self._band_due[slots]) & np.isfinite(scores.expected)
               & (self.scored[slots] >= warmup))
        if not due.any():
            return
        idx = np.flatnonzero(due)
        bucket = ts[idx] // self.band_interval_ms
        _, first = np.unique(np.stack([slots[idx], bucket]), axis=1, return_index=True)
        idx = idx[first]
        s = slots[idx]
        np.maximum.at(self._band_due, s, (ts[idx] // self.band_interval_ms + 1)
                      * self.band_interval_ms)
        for slot in np.unique(s[self._band_slots[s, 0] == UNKNOWN]).tolist():
            info = self.index.info(slot)
            labels = band_labels(info.metric, info.labels)
            for k, name in enumerate(BAND_METRICS):
                self._band_slots[slot, k] = self.index.add(
                    series_id(name, labels), name, labels, enforce_limit=False)
        band_slots = self._band_slots[s].T.ravel()
        values = np.concatenate([scores.expected[idx], scores.lower[idx], scores.upper[idx]])
        keep = np.isfinite(values)
        batch = Batch(band_slots[keep].astype(np.int32), self.index.ids(band_slots[keep]),
                      np.tile(ts[idx], 3)[keep], values[keep])
        try:
            write(batch)
        except SeismoError as exc:  # a full ingest queue: this band point is skipped
            log.debug("band points not stored: %s", exc)

    def _newest(self, batch: Batch) -> Batch:
        """At most `max_rounds` newest points per series: detectors work one round per point
        of a series, so a backfill of thousands of points would hold the thread for long."""
        _, inverse, counts = np.unique(batch.slots, return_inverse=True, return_counts=True)
        if counts.max() <= self.max_rounds:
            return batch
        order = np.argsort(inverse, kind="stable")
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        rank = np.empty(len(order), np.int64)
        rank[order] = np.arange(len(order)) - starts[inverse[order]]
        keep = rank >= counts[inverse] - self.max_rounds
        self.skipped_samples += int(len(keep) - keep.sum())
        return Batch(batch.slots[keep], batch.sids[keep], batch.ts[keep], batch.values[keep])

    def _grow(self, size: int) -> None:
        old = len(self._watch_of_slot)
        if size <= old:
            return
        size = max(size, 2 * old, 64)
        self._watch_of_slot = np.concatenate(
            [self._watch_of_slot, np.full(size - old, UNKNOWN, np.int16)])
        self._row_of_slot = np.concatenate(
            [self._row_of_slot, np.full(size - old, UNKNOWN, np.int64)])
        for name in ("_quiet", "scored", "flagged"):
            setattr(self, name, np.concatenate([getattr(self, name),
                                                np.zeros(size - old, np.int64)]))
        self._band_due = np.concatenate([self._band_due, np.zeros(size - old, np.int64)])
        self._band_slots = np.concatenate(
            [self._band_slots, np.full((size - old, 3), UNKNOWN, np.int64)])

    def _place(self, slot: int) -> None:
        """Choose a new series' configuration (first matching rule) and detector row."""
        info = self.index.info(slot)
        if info.metric in BAND_METRICS:
            self._watch_of_slot[slot] = UNWATCHED
            return
        config: DetectConfig | None = self.watches[0].config
        for rule in self.rules:
            if rule.selector.matches(info.metric, info.labels):
                config = rule.config
                break
        if config is None:
            self._watch_of_slot[slot] = UNWATCHED
            return
        w = next(i for i, watch in enumerate(self.watches) if watch.config == config)
        self._watch_of_slot[slot] = w
        self._row_of_slot[slot] = self.watches[w].row(info.id)

    def _merge(self, slots: np.ndarray, ts: np.ndarray, values: np.ndarray, scores: Scores,
               min_score: float) -> None:
        """Open, extend and close anomaly records from one batch's scores."""
        hit = scores.score >= min_score
        np.add.at(self.scored, slots, 1)
        changed: dict[int, Anomaly] = {}
        opened: list[Anomaly] = []
        if hit.any():
            np.add.at(self.flagged, slots[hit], 1)
            for i in np.flatnonzero(hit).tolist():  # anomalous points are rare by design
                slot = int(slots[i])
                anomaly = self.open.get(slot)
                if anomaly is None:
                    anomaly = self._start(slot, int(ts[i]), float(values[i]), scores, i)
                    self.open[slot] = anomaly
                    opened.append(anomaly)
                else:
                    _extend(anomaly, int(ts[i]), float(values[i]), scores, i)
                changed[slot] = anomaly
            self._quiet[slots[hit]] = 0
        closed: list[Anomaly] = []
        if self.open:  # count the calm points after each series' last anomalous one
            order = np.arange(len(slots))
            unique, inverse = np.unique(slots, return_inverse=True)
            last_hit = np.full(len(unique), -1)
            np.maximum.at(last_hit, inverse[hit], order[hit])
            calm = ~hit & (order > last_hit[inverse])
            np.add.at(self._quiet, slots[calm], 1)
            for slot, anomaly in list(self.open.items()):
                if slot not in changed and self._quiet[slot] >= self.quiet_samples:
                    anomaly.state = "closed"
                    closed.append(self.open.pop(slot))
        unsaved = list({id(a): a for a in [  # each record once, in order
            *self._unsaved, *changed.values(), *(a for a in closed if a not in opened)]}.values())
        try:
            self.anomalies.save(unsaved)
            self._unsaved = []
        except sqlite3.OperationalError as exc:  # a full disk: saved with a later batch
            self._unsaved = unsaved
            log.error("cannot store %d anomaly records (%s); kept to retry", len(unsaved), exc)
        self.anomalies_opened += len(opened)
        for anomaly, state in [*((a, "open") for a in opened), *((a, "closed") for a in closed)]:
            self.publish(replace(anomaly, state=state, labels=dict(anomaly.labels),
                                 detectors=list(anomaly.detectors)))  # the record changes on

    def _start(self, slot: int, ts_ms: int, value: float, scores: Scores, i: int) -> Anomaly:
        info = self.index.info(slot)
        return Anomaly(
            sid=info.id, metric=info.metric, labels=dict(info.labels), start_ms=ts_ms,
            end_ms=ts_ms, kind=str(scores.kind_names()[i]) if scores.kind[i] else "outlier",
            score=float(scores.score[i]), confidence=float(scores.confidence[i]),
            expected=_finite(scores.expected[i]), lower=_finite(scores.lower[i]),
            upper=_finite(scores.upper[i]), actual=value, detectors=scores.fired(i))

    def rates(self, slots: list[int]) -> list[tuple[int, int, int]]:
        """(slot, points scored, anomalous points) since start, for the given slots."""
        out = []
        for slot in slots:
            if slot < len(self.scored):
                out.append((slot, int(self.scored[slot]), int(self.flagged[slot])))
        return out

    # -- state --------------------------------------------------------------------------

    def snapshot(self) -> None:
        """Save every ensemble's state and row map atomically (`state_path`)."""
        if self.state_path is None:
            return
        arrays: dict[str, np.ndarray] = {}
        for w, watch in enumerate(self.watches):
            arrays[f"w{w}.config"] = np.frombuffer(repr(watch.config).encode(), np.uint8)
            arrays[f"w{w}.sids"] = np.array(list(watch.row_of_sid), dtype=np.int64)
            arrays.update({f"w{w}.{k}": a for k, a in watch.ensemble.state().items()})
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)  # type: ignore[arg-type]
        tmp = self.state_path.with_suffix(".tmp")
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(buffer.getvalue())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.state_path)

    def restore(self) -> None:
        """Load the last snapshot (configurations that changed start afresh) and the
        anomalies that were still open."""
        if self.state_path is not None and self.state_path.exists():
            try:
                with np.load(self.state_path, allow_pickle=False) as data:
                    saved = {k: data[k] for k in data.files}
            except (OSError, ValueError) as exc:
                log.warning("detector state in %s unreadable, starting afresh: %s",
                            self.state_path, exc)
                saved = {}
            for watch in self.watches:
                key = repr(watch.config).encode()
                match = [p for p in {k.split(".", 1)[0] for k in saved}
                         if saved.get(f"{p}.config", np.zeros(0, np.uint8)).tobytes() == key]
                if not match:
                    continue
                prefix = match[0] + "."
                state = {k[len(prefix):]: a for k, a in saved.items()
                         if k.startswith(prefix) and k not in (prefix + "config",
                                                               prefix + "sids")}
                watch.ensemble.restore(state)
                watch.row_of_sid = {int(sid): row for row, sid in
                                    enumerate(saved[prefix + "sids"].tolist())}
        for anomaly in self.anomalies.open_ones():
            slot = self.index.slot_of_id(anomaly.sid)
            if slot is not None:
                self._grow(slot + 1)
                self.open[slot] = anomaly


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def _extend(anomaly: Anomaly, ts_ms: int, value: float, scores: Scores, i: int) -> None:
    anomaly.end_ms = max(anomaly.end_ms, ts_ms)
    anomaly.points += 1
    for name in scores.fired(i):
        if name not in anomaly.detectors:
            anomaly.detectors.append(name)
    if scores.score[i] > anomaly.score:
        anomaly.score = float(scores.score[i])
        anomaly.confidence = float(scores.confidence[i])
        if scores.kind[i]:
            anomaly.kind = str(scores.kind_names()[i])
        anomaly.expected = _finite(scores.expected[i])
        anomaly.lower = _finite(scores.lower[i])
        anomaly.upper = _finite(scores.upper[i])
        anomaly.actual = value
