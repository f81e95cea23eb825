"""The service layer: one object that REST, WebSocket, MCP, the CLI and the UI all call.

It wires the data path together (validator → ingestor → store → query engine, events,
host collector) and runs the store's upkeep (block cuts, retention, compaction).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import numpy as np

from seismo import __version__
from seismo.alerting.service import AlertService
from seismo.auth import Principal, RateLimiter, TokenStore
from seismo.config import Settings
from seismo.detect.base import KINDS
from seismo.detect.watcher import BAND_METRICS, Watcher, band_labels, watch_configs
from seismo.energy import EnergyService
from seismo.errors import InvalidInput, Overloaded, StorageUnavailable
from seismo.forecast import ForecastService
from seismo.ingest.pipeline import Ingestor
from seismo.ingest.schema import EventIn, IngestBody, SeriesIn, decode_ingest
from seismo.ingest.validate import Prepared, Validator
from seismo.insights import InsightService
from seismo.models import Evaluation, ModelService
from seismo.priority import background_priority
from seismo.query.engine import QueryEngine, RangeQuery
from seismo.query.selector import Selector, parse_selector
from seismo.sessions import SessionService
from seismo.slo import SLOEvaluator
from seismo.store import Store
from seismo.store.anomalies import Anomaly, AnomalyLog
from seismo.store.batch import Batch
from seismo.store.events import SEVERITIES, Event, EventLog
from seismo.store.series import series_id
from seismo.stream import Hub
from seismo.telemetry import Telemetry

log = logging.getLogger(__name__)
_HOST = socket.gethostname().replace("\\", "\\\\").replace('"', '\\"')
HOST_SUMMARY = {  # this host's collector series shown in the `stats` snapshot
    "cpu_percent": parse_selector(f'host_cpu_usage_percent{{host="{_HOST}",cpu="total"}}'),
    "memory_percent": parse_selector(f'host_memory_usage_percent{{host="{_HOST}"}}'),
    "load1": parse_selector(f'host_load1{{host="{_HOST}"}}'),
    "disk_percent": parse_selector(f'host_disk_usage_percent{{host="{_HOST}",mount="/"}}'),
}
MAX_EVENT_TEXT = 4096
MAX_BAND_SERIES = 100
MAX_COUNTED_ANOMALIES = 10_000


def _hold(points: dict[str, Any], at: list[int], hold_ms: int) -> list[float | None]:
    """Band values at the times `at`: the latest band point at most `hold_ms` before each."""
    ts = np.asarray(points["timestamps"], dtype=np.int64)
    values = points["values"]
    where = np.searchsorted(ts, np.asarray(at, dtype=np.int64), side="right") - 1
    return [values[i] if i >= 0 and t - ts[i] < hold_ms else None
            for i, t in zip(where.tolist(), at, strict=True)]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Engine:
    """Everything a running seismo holds; plain Python, no HTTP."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.started_at = time.monotonic()  # uptime: a wall-clock step must not move it
        self.telemetry = Telemetry()
        data_dir = settings.data_dir
        self.store = Store(data_dir, max_series=settings.limits.max_series,
                           fsync=settings.wal_fsync)
        self.validator = Validator(
            self.store, settings.limits, retention_s=settings.retention_s,
            out_of_order_s=settings.out_of_order_tolerance_s,
        )
        self.ingestor = Ingestor(self.store, self.telemetry,
                                 max_queued_samples=settings.ingest_queue_samples,
                                 max_head_samples=2 * settings.block_max_samples)
        # Decoding and validating hold the interpreter for milliseconds per request: on one
        # thread of their own, not the event loop, so health and every other request stay
        # answered while ingest is busy (issue 12).
        self._validation = ThreadPoolExecutor(1, thread_name_prefix="seismo-ingest-validate",
                                              initializer=background_priority)
        # Bytes of bodies waiting for it, bounded like the ingest queue (~16 bytes a JSON
        # sample) but never under one largest body: past it, ingest is refused (429) before
        # a body is read.
        self._validating_bytes = 0
        self._validating_max_bytes = max(settings.limits.max_body_bytes,
                                         16 * settings.ingest_queue_samples)
        self.query = QueryEngine(self.store, settings.limits)
        self.forecasts = ForecastService(self.query, settings.forecast)
        self.events = EventLog(data_dir / "state.db")
        self.tokens = TokenStore(data_dir / "state.db")
        self.ingest_limiter = RateLimiter()  # per-token samples/s, see _check_ingest_rate
        self.hub = Hub(settings.stream, self.store.index)
        self.hub.stats_extra = self.stats_snapshot
        self.ingestor.add_listener(self._publish_samples)
        self.anomalies = AnomalyLog(data_dir / "state.db")
        default, rules = watch_configs(settings.detect)
        d = settings.detect
        self.watcher = Watcher(
            self.store.index, self.anomalies, default=default, rules=rules,
            publish=self._publish_anomaly, state_path=data_dir / "detect" / "state.npz",
            queue_samples=d.queue_samples, quiet_samples=d.quiet_samples,
            snapshot_interval_s=d.snapshot_interval_s, band_interval_s=d.band_interval_s,
            write_band=self.ingestor.enqueue, max_rounds=d.max_points_per_batch,
            max_cpu_share=d.max_cpu_share)
        if d.enabled:
            self.ingestor.add_listener(self._offer_to_detectors)
        self.alerting = AlertService(settings, self.store.index, lambda: self.store.head.latest,
                                     self.hub.publish)
        if settings.alerting.enabled:
            self.ingestor.add_listener(self.alerting.offer)
        self.slos = SLOEvaluator(
            settings, self.query, self.store.index, write=self.ingestor.enqueue,
            alerts=self.alerting if settings.alerting.enabled else None)
        self.models = ModelService(settings.models, data_dir / "state.db")
        self.model_evaluation = Evaluation(
            self.models, index=self.store.index, write=self.ingestor.enqueue,
            observe=self.alerting.observe if settings.alerting.enabled else None)
        self.energy = EnergyService(settings.energy, self.query, self.store.index,
                                    self.count_anomalies)
        self.insights = InsightService(self)
        self.sessions = SessionService(  # sessions from events (docs/sessions.md)
            settings.sessions, data_dir / "state.db", self.events, publish=self.hub.publish,
            write=self.ingestor.enqueue, index=self.store.index, query=self.query,
            anomalies=self.anomalies,
            alerts=lambda since_ms: self.alerting.log.query(since_ms=since_ms, limit=10_000))
        self._counted: dict[str, int] = {}  # running totals already added to telemetry
        self._stop = threading.Event()
        self._upkeep: threading.Thread | None = None
        self.background: list[Any] = []  # collector, demo: objects with start() and stop()
        self.detectors_paused = False  # stop_monitoring: batches skip the detectors
        self._monitoring_lock = threading.Lock()

    # -- life cycle ---------------------------------------------------------------------

    def start(self) -> None:
        if self.settings.alerting.enabled:
            self.alerting.start()
        if self.settings.detect.enabled:
            self.watcher.start()
        self.ingestor.start()
        if self.settings.slo.enabled:  # after the ingestor: it writes its results as series
            self.slos.start()
        if self.settings.models.enabled:  # after the ingestor: it writes series
            self.models.start()
            self.model_evaluation.start()
        if self.settings.sessions.enabled:  # after the ingestor: it writes series
            self.sessions.start()
        self._upkeep = threading.Thread(target=self._run_upkeep, name="seismo-upkeep",
                                        daemon=True)
        self._upkeep.start()
        for worker in self.background:
            worker.start()

    def stop(self) -> None:
        for worker in self.background:
            worker.stop()
        self.slos.stop()
        if self.settings.models.enabled:
            self.model_evaluation.stop()
            self.models.stop()
        self.energy.stop()  # before the store closes under its reads
        self.sessions.stop()  # before the ingestor: it writes series
        self._stop.set()
        if self._upkeep is not None:
            self._upkeep.join(timeout=60)
        self.ingestor.stop()
        self._validation.shutdown(wait=False)
        if self.settings.detect.enabled:
            self.watcher.stop()
        if self.settings.alerting.enabled:
            self.alerting.stop()
        self.store.close()
        self.events.close()
        self.tokens.close()
        self.anomalies.close()
        self.sessions.close()

    def _run_upkeep(self) -> None:
        background_priority()
        while not self._stop.wait(1.0):
            try:
                self.upkeep()
            except Exception:
                log.exception("store upkeep failed; will retry")

    def upkeep(self) -> None:
        """Cut the head into a block when due, apply retention, compact small blocks."""
        s = self.settings
        if self.store.should_cut(s.block_duration_s, s.block_max_samples):
            self.store.cut()
        self.store.apply_retention(now_ms(), s.retention_s)
        self.store.compact(s.compaction_target_samples)
        self._refresh_gauges()

    def _refresh_gauges(self) -> None:
        t = self.telemetry
        blocks = self.store.blocks
        t.head_series.set(len(self.store.index))
        t.head_samples.set(self.store.head.count)
        t.blocks.set(len(blocks))
        t.block_bytes.set(sum(b.meta.bytes for b in blocks))
        t.stream_clients.set(len(self.hub.subscribers))
        w = self.watcher
        t.anomalies_open.set(len(w.open))
        a = self.alerting
        t.alert_rules.set(len(a.evaluator.rules))
        t.alerts_active.set(len(a.evaluator.alerts))
        if self.settings.alerting.enabled:
            for state, count in a.outbox.stats().items():
                t.notifications.labels(state).set(count)
        totals = {"stream_messages": self.hub.sent, "stream_dropped": self.hub.dropped,
                  "anomalies_opened": w.anomalies_opened, "detect_skipped": w.skipped_samples,
                  "detect_scored": int(w.scored.sum()), "detect_flagged": int(w.flagged.sum()),
                  "rule_samples": a.evaluated_samples}
        for name, total in totals.items():  # running totals → counter increments
            getattr(t, name).inc(max(0, total - self._counted.get(name, 0)))
            self._counted[name] = total

    # -- samples ------------------------------------------------------------------------

    def _publish_samples(self, batch: Batch) -> None:
        self.hub.publish("samples", batch)

    def _publish_anomaly(self, anomaly: Anomaly) -> None:
        self.hub.publish("anomalies", anomaly.to_dict())
        if self.settings.alerting.enabled:
            self.alerting.offer_anomaly(anomaly)

    async def ingest(self, body: IngestBody | bytes, at_ms: int | None = None,
                     principal: Principal | None = None) -> dict[str, Any]:
        """Validate and store samples (`body` may be JSON still to decode); return once the
        accepted ones are durable."""
        at_ms = now_ms() if at_ms is None else at_ms
        size = len(body) if isinstance(body, bytes) else 0
        self._validating_bytes += size
        try:
            try:
                future = self._validation.submit(self._validate, body, at_ms, principal)
            except RuntimeError:  # shut down: the engine has stopped
                raise StorageUnavailable("the store is shutting down") from None
            prepared = await asyncio.wrap_future(future)
        finally:
            self._validating_bytes -= size
        await self.ingestor.submit(prepared.batch)
        for reason, count in prepared.reasons.items():
            self.telemetry.samples_rejected.labels(reason).inc(count)
        return {"accepted": len(prepared.batch), "rejected": prepared.rejected,
                "errors": prepared.errors}

    def check_ingest_room(self) -> None:
        """Overloaded (429) if ingest has no room: the queue is saturated or too many bytes
        wait for validation. Cheap: callers ask before reading a request's body."""
        self.ingestor.check_room()
        if self._validating_bytes > self._validating_max_bytes:
            self.telemetry.ingest_overloaded.inc()
            raise Overloaded(f"ingest is busy ({self._validating_bytes} bytes waiting to be "
                             "validated); retry later", retry_after_s=1.0)

    def _validate(self, body: IngestBody | bytes, at_ms: int,
                  principal: Principal | None) -> Prepared:
        """Decode, check the token's rate and validate (on the validation thread)."""
        if isinstance(body, bytes):
            body = decode_ingest(body)
        if body.series is None and body.samples is None:
            raise InvalidInput("body must have 'series' (columnar) or 'samples' (rows)",
                               field="series")
        self._check_ingest_rate(body, principal)
        prepared = self.validator.columnar(body.series or [], at_ms)
        if body.samples:
            rows = self.validator.rows(body.samples, at_ms)
            prepared.batch = type(prepared.batch).concat([prepared.batch, rows.batch])
            prepared.rejected += rows.rejected
            prepared.errors += rows.errors
            prepared.reasons.update(rows.reasons)
        return prepared

    def ingest_blocking(self, series: list[SeriesIn], at_ms: int) -> None:
        """Validate and store columnar series from a worker thread (scrape, MQTT), counting
        the refused samples by reason; waits while the ingest queue is full."""
        prepared = self.validator.columnar(series, at_ms)
        for reason, count in prepared.reasons.items():
            self.telemetry.samples_rejected.labels(reason).inc(count)
        self.ingestor.submit_blocking(prepared.batch)

    def _check_ingest_rate(self, body: IngestBody, principal: Principal | None) -> None:
        """Overloaded (429) when the principal's token is over its samples/s; checked before
        validation, so a refused request stores nothing, not even a new series."""
        if principal is None or principal.token_id is None:
            return
        rate = principal.ingest_samples_per_s
        if rate is None:
            rate = self.settings.limits.token_ingest_samples_per_s
        if rate <= 0:
            return
        cost = sum(len(s.values) for s in body.series or ()) + len(body.samples or ())
        wait_s = self.ingest_limiter.take(principal.token_id, rate, cost)
        if wait_s > 0:
            self.telemetry.ingest_overloaded.inc()
            raise Overloaded(f"token {principal.name!r} is over its ingest rate of {rate:g} "
                             f"samples/s; retry in {wait_s:.1f} s", retry_after_s=wait_s)

    def flush(self) -> dict[str, Any]:
        """Cut the head into a block now (before a backup, or in benchmarks)."""
        block = self.store.cut()
        self._refresh_gauges()
        return {"block": None if block is None else block.path.name,
                "samples": 0 if block is None else block.meta.count}

    # -- events -------------------------------------------------------------------------

    def add_events(self, items: list[EventIn]) -> list[Event]:
        """Validate every event first; store all of them or none."""
        at = now_ms()
        future_ms = int(self.settings.limits.max_future_s * 1000)
        events = []
        for i, item in enumerate(items):
            if not item.type.strip():
                raise InvalidInput("event type must not be empty", field=f"events[{i}].type")
            if item.severity not in SEVERITIES:
                raise InvalidInput(
                    f"severity must be one of {', '.join(SEVERITIES)}",
                    field=f"events[{i}].severity")
            for name, text in (("type", item.type), ("source", item.source),
                               ("message", item.message)):
                if len(text) > MAX_EVENT_TEXT:
                    raise InvalidInput(f"{name} is longer than {MAX_EVENT_TEXT} characters",
                                       field=f"events[{i}].{name}")
            ts = at if item.timestamp is None else item.timestamp
            if ts > at + future_ms or ts < 0:
                raise InvalidInput("timestamp is in the future or negative",
                                   field=f"events[{i}].timestamp")
            events.append(Event(item.type, item.source, item.severity, item.message,
                                dict(item.attributes), ts))
        if self.settings.sessions.enabled:
            self.sessions.check(events)  # a bad session id or status: nothing stored
        stored = self.events.append(events)
        self.telemetry.events_ingested.inc(len(stored))
        for event in stored:
            self.hub.publish("events", event.to_dict())
        if self.settings.sessions.enabled:
            self.sessions.observe(stored)
        return stored

    def query_range(self, q: RangeQuery, *, band: bool = False) -> list[dict[str, Any]]:
        """`QueryEngine.range`, and with `band` the detectors' expected band of each series
        (`expected`, `lower`, `upper`, aligned with `timestamps`; None where unknown)."""
        series = self.query.range(q)
        if not band:
            return series
        if q.group_by is not None:
            raise InvalidInput("band is for single series: drop group_by", field="band")
        if len(series) > MAX_BAND_SERIES:
            raise InvalidInput(f"band is computed for up to {MAX_BAND_SERIES} series; "
                               "narrow the selector", field="band")
        index = self.store.index
        wanted: list[int] = []
        for s in series:
            labels = band_labels(s["metric"], s["labels"])
            for name in BAND_METRICS:
                slot = index.slot_of_id(series_id(name, labels))
                if slot is not None:
                    wanted.append(slot)
        found = {} if not wanted else {
            (b["metric"], tuple(sorted(b["labels"].items()))): b
            for b in self.query.range(replace(q, slots=tuple(wanted)))}
        hold_ms = max(q.step_ms, int(self.settings.detect.band_interval_s * 1000))
        for s in series:
            key = tuple(sorted(band_labels(s["metric"], s["labels"]).items()))
            for name, field in zip(BAND_METRICS, ("expected", "lower", "upper"), strict=True):
                points = found.get((name, key))
                s[field] = (_hold(points, s["timestamps"], hold_ms) if points
                            else [None] * len(s["timestamps"]))
        return series

    # -- anomalies ----------------------------------------------------------------------

    def find_anomalies(self, selector: Selector | None = None, *,
                       kinds: list[str] | None = None, min_score: float = 0.0,
                       start_ms: int | None = None, end_ms: int | None = None,
                       state: str | None = None, limit: int = 100) -> list[Anomaly]:
        """Anomalies newest first; a selector narrows them to the series it matches."""
        unknown = sorted(set(kinds or ()) - set(KINDS[1:]))
        if unknown:
            raise InvalidInput(f"unknown kind {unknown[0]!r}: use {', '.join(KINDS[1:])}",
                               field="kind")
        if state not in (None, "open", "closed"):
            raise InvalidInput("state must be open or closed", field="state")
        metric = None if selector is None else selector.metric_name()
        found: list[Anomaly] = []
        fetch = limit if selector is None else limit * 10
        while True:  # a selector filters after SQL: fetch more until `limit` match
            rows = self.anomalies.query(metric=metric, kinds=kinds, min_score=min_score,
                                        start_ms=start_ms, end_ms=end_ms, state=state,
                                        limit=fetch)
            found = [a for a in rows
                     if selector is None or selector.matches(a.metric, a.labels)]
            if len(found) >= limit or len(rows) < fetch or fetch >= 1_000_000:
                return found[:limit]
            fetch *= 10

    def anomaly_rates(self, selector: Selector) -> dict[str, Any]:
        """Share of scored points that were anomalous, per series and overall (since start)."""
        slots = self.store.index.select(selector)
        series: list[dict[str, Any]] = []
        for slot, scored, flagged in self.watcher.rates(slots):
            if scored:
                info = self.store.index.info(slot)
                series.append({"metric": info.metric, "labels": info.labels,
                               "points": scored, "anomalous": flagged,
                               "anomaly_rate": round(flagged / scored, 6)})
        series.sort(key=lambda r: float(r["anomaly_rate"]), reverse=True)
        scored = sum(int(r["points"]) for r in series)
        flagged = sum(int(r["anomalous"]) for r in series)
        return {"anomaly_rate": round(flagged / scored, 6) if scored else 0.0,
                "points": scored, "anomalous": flagged, "series": series}

    def count_anomalies(self, selector: Selector, start_ms: int, end_ms: int) -> int:
        """Anomalies of the selected series overlapping [start_ms, end_ms] (at most
        MAX_COUNTED_ANOMALIES): the energy statistics' `anomalies`."""
        return len(self.find_anomalies(selector, start_ms=start_ms, end_ms=end_ms,
                                       limit=MAX_COUNTED_ANOMALIES))

    # -- stats --------------------------------------------------------------------------

    def stats_snapshot(self) -> dict[str, Any]:
        """What the `stats` topic adds to its rates: series and this host's vital signs."""
        scored, flagged = int(self.watcher.scored.sum()), int(self.watcher.flagged.sum())
        snapshot: dict[str, Any] = {
            "series": len(self.store.index), "head_samples": self.store.head.count,
            "anomalies_open": len(self.watcher.open),
            "anomaly_rate": round(flagged / scored, 6) if scored else 0.0}
        host: dict[str, float] = {}
        for name, selector in HOST_SUMMARY.items():
            slots = self.store.index.select(selector)
            if slots:
                _, values = self.store.latest(np.asarray(slots[:1], dtype=np.int64))
                if np.isfinite(values[0]):
                    host[name] = round(float(values[0]), 3)
        snapshot["host"] = host
        if self.settings.energy.stream:  # computed off the event loop, cached
            energy = self.energy.latest()
            if energy is not None:
                snapshot["energy"] = energy
        return snapshot

    # -- monitoring (start/stop) ------------------------------------------------------

    def _offer_to_detectors(self, batch: Batch) -> None:
        if not self.detectors_paused:
            self.watcher.offer(batch)

    def monitoring(self) -> dict[str, Any]:
        """What seismo watches by itself: its collectors and stream processors."""
        s = self.settings
        workers = [{"name": w.name, "running": bool(getattr(w, "is_running", True))}
                   for w in self.background]
        detecting = s.detect.enabled and not self.detectors_paused
        return {"running": detecting or any(w["running"] for w in workers),
                "collectors": workers,
                "processors": {"detectors": detecting, "alert_rules": s.alerting.enabled,
                               "slos": s.slo.enabled, "models": s.models.enabled}}

    def start_monitoring(self) -> dict[str, Any]:
        """Start the host collector (adding one if the server runs without it), the other
        background workers, and let new samples reach the detectors again."""
        from seismo.collector.host import HostCollector  # it imports this module

        with self._monitoring_lock:
            if not any(isinstance(w, HostCollector) for w in self.background):
                self.background.append(HostCollector(self))
            for worker in self.background:
                if not getattr(worker, "is_running", True):
                    worker.start()
            self.detectors_paused = False
        return self.monitoring()

    def stop_monitoring(self) -> dict[str, Any]:
        """Stop the collectors and pause the detectors. Ingest, storage, alert rules, SLOs
        and models go on: pushed samples are kept and configured alerts keep firing."""
        with self._monitoring_lock:
            for worker in self.background:
                if getattr(worker, "is_running", False):
                    worker.stop()
            self.detectors_paused = True
        return self.monitoring()

    # -- health -------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        blocks = self.store.blocks
        write_error = self.ingestor.write_error
        return {
            "status": "ok" if write_error is None else "degraded",
            "version": __version__,
            "uptime_s": round(time.monotonic() - self.started_at, 3),
            "store": {
                "series": len(self.store.index),
                "head_samples": self.store.head.count,
                "blocks": len(blocks),
                "block_samples": sum(b.meta.count for b in blocks),
                "block_bytes": sum(b.meta.bytes for b in blocks),
                "wal_segment": self.store.wal.segment,
                "replayed_samples": self.store.replayed_samples,
                "queued_samples": self.ingestor.queued_samples,
                "write_error": write_error,
            },
        }
