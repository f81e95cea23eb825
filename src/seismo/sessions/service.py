"""The sessions stage: events in, sessions, per-kind statistics and predictions out.

`Engine.add_events` hands every stored event to `observe` (after `check` let them in);
sessions are upserted in the state db (`store.py`) and published on the `sessions` topic
as `start` / `update` / `end`. A timer (`refresh`, every `sessions.refresh_interval_s`)
marks idle sessions `stale`, applies retention, refits the success model and writes
`session_overdue` / `session_failure_risk` series through the ingestor, so alert rules
can use them. REST and MCP call `list`, `get` and `stats`; the insights stage calls
`running` (findings on overdue and at-risk sessions).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from seismo.config import Sessions as SessionSettings
from seismo.config import parse_duration_s
from seismo.errors import InvalidInput, NotFound, SeismoError
from seismo.query.selector import parse_selector
from seismo.sessions.model import (
    END_TYPE,
    START_TYPE,
    STATES,
    Session,
    SessionTable,
    apply,
    check_event,
    session_id_of,
)
from seismo.sessions.predict import (
    Finished,
    KindHistory,
    SuccessModel,
    conditional_quantiles,
    finished_of,
    fit_success,
    quantile,
)
from seismo.sessions.store import SORTS, SessionStore
from seismo.store.batch import Batch
from seismo.store.events import Event, EventLog
from seismo.store.series import series_id

if TYPE_CHECKING:  # passed in by the engine
    from seismo.query.engine import QueryEngine
    from seismo.store.anomalies import AnomalyLog
    from seismo.store.series import SeriesIndex

log = logging.getLogger(__name__)
OVERDUE_METRIC = "session_overdue"
RISK_METRIC = "session_failure_risk"
MAX_DETAIL_WINDOW_S = 30 * 86400
PRUNE_EVERY_S = 60.0
REPLAY_BATCH = 10_000
SCORE_CHUNK = 500  # sessions scored per hold of the lock
MAX_RUNNING = 1000  # running sessions `running` reports, at most


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class SessionService:
    """See the module docstring."""

    def __init__(self, settings: SessionSettings, path: Path, events: EventLog, *,
                 publish: Callable[[str, Any], object] | None = None,
                 write: Callable[[Batch], object] | None = None,
                 index: SeriesIndex | None = None, query: QueryEngine | None = None,
                 anomalies: AnomalyLog | None = None,
                 alerts: Callable[[int], list[dict[str, Any]]] | None = None,
                 clock: Callable[[], int] = now_ms) -> None:
        self.settings = settings
        self.events = events
        self.publish = publish
        self.write = write if settings.write_series else None
        self.index = index
        self.query_engine = query
        self.anomalies = anomalies
        self.alerts = alerts
        self.clock = clock
        self.idle_ms = int(parse_duration_s(settings.idle_timeout) * 1000)
        self.retention_ms = int(parse_duration_s(settings.retention) * 1000)
        self.store = SessionStore(path)
        self.table = SessionTable(int(parse_duration_s(settings.early_window) * 1000))
        self.history: dict[str, KindHistory] = {}
        self.model: SuccessModel | None = None
        self._model_version = 0
        self._p_cache: dict[str, tuple[int, int, float]] = {}  # id → (model, events, p)
        self._labelled = 0  # labelled finished sessions seen, and at the last fit
        self._fitted_at = 0
        self._written: dict[str, str] = {}  # sessions with series: id → kind
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_prune = 0.0
        self._loaded = False

    # -- life cycle ---------------------------------------------------------------------

    def load(self) -> None:
        """Read open sessions and each kind's history back, catch up with the event log."""
        with self._lock:
            for session in self.store.unfinished():
                self.table.open[session.id] = session
            for session in self.store.finished(self.settings.history_per_kind):
                self._remember(finished_of(session))
            try:
                self._catch_up()
            except sqlite3.OperationalError as exc:  # e.g. a full disk: start all the same
                log.error("sessions: cannot record the catch-up with the event log (%s); "
                          "it is redone at the next start", exc)
            self._loaded = True
        self._refit(force=True)

    def _catch_up(self) -> None:
        """Apply the events stored after the last one the sessions have seen."""
        applied = self.store.applied_event_id()
        while True:
            missed = self.events.after_id(applied, REPLAY_BATCH)
            if not missed:
                break
            self.observe(missed, publish=False)
            applied = max(e.id or 0 for e in missed)
            self.store.save([], [], applied)  # events of no session move it on too
            if len(missed) < REPLAY_BATCH:
                break

    def start(self) -> None:
        if not self._loaded:
            self.load()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="seismo-sessions", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def close(self) -> None:
        self.store.close()

    def _run(self) -> None:
        while not self._stop.wait(self.settings.refresh_interval_s):
            try:
                self.refresh()
            except Exception:
                log.exception("sessions refresh failed; will retry")

    # -- events -------------------------------------------------------------------------

    def check(self, events: list[Event]) -> None:
        """InvalidInput (naming the field) for an event with a malformed session or status."""
        for i, event in enumerate(events):
            check_event(i, event)

    def observe(self, events: list[Event], *, publish: bool = True) -> None:
        """Apply stored events to their sessions, store the sessions, publish the changes."""
        at = self.clock()
        early_ms = self.table.early_ms
        cap = self.settings.max_events_per_session
        messages: list[dict[str, Any]] = []
        with self._lock:
            touched: dict[str, Session] = {}
            links: list[tuple[str, int, int]] = []
            for event in sorted(events, key=lambda e: (e.timestamp, e.id or 0)):
                sid = session_id_of(event)
                if sid is None:
                    continue
                before = touched.get(sid) or self.table.open.get(sid) or self.store.get(sid)
                was = (None if before is None else
                       (before.state, before.start_seen, before.ended_ms))
                session = apply(before, sid, event, early_ms)
                touched[sid] = session
                if event.id is not None and (session.events <= cap
                                             or event.type in (START_TYPE, END_TYPE)):
                    links.append((sid, event.id, event.timestamp))
                counted_before = (was is not None and session is before and was[0] == "finished"
                                  and was[1])
                if session.state == "finished":
                    self.table.open.pop(sid, None)
                    self._p_cache.pop(sid, None)
                    if session.start_seen and not counted_before:
                        self._remember(finished_of(session))
                    change = "end" if was is None or was[0] != "finished" else "update"
                else:
                    self.table.open[sid] = session
                    change = ("start" if was is None or session is not before
                              or (event.type == START_TYPE and not was[1]) else "update")
                if publish and self.publish is not None:
                    messages.append({"change": change, **session.to_dict(at),
                                     "prediction": None if session.state != "active"
                                     else self._predict(session, at)})
            if not touched:
                return
            newest = max((e.id or 0 for e in events), default=0)
            self.store.save(touched.values(), links, newest or None)
        for message in messages:
            assert self.publish is not None
            self.publish("sessions", message)

    def _remember(self, item: Finished) -> None:
        kind = item.categories.get("kind", "")
        history = self.history.get(kind)
        if history is None:
            history = self.history[kind] = KindHistory(self.settings.history_per_kind)
        history.add(item)
        if item.status in ("success", "failure"):
            self._labelled += 1

    # -- the timer ----------------------------------------------------------------------

    def refresh(self) -> None:
        """Mark idle sessions stale, prune, refit when due, write the rule series."""
        at = self.clock()
        with self._lock:
            stale = self.table.stale_ones(at, self.idle_ms)
            if stale:
                self.store.save(stale, [], None)
            messages = [{"change": "update", **s.to_dict(at), "prediction": None}
                        for s in stale]
        for message in messages:
            if self.publish is not None:
                self.publish("sessions", message)
        if time.monotonic() - self._last_prune >= PRUNE_EVERY_S:
            self._last_prune = time.monotonic()
            self.prune(at)
        self._refit()
        self._write_series(at)

    def prune(self, at: int) -> int:
        """Retention and `max_sessions`: drop the oldest sessions; return how many."""
        with self._lock:
            gone = self.store.prune(older_than_ms=at - self.retention_ms,
                                    max_sessions=self.settings.max_sessions)
            for sid in gone:
                self.table.open.pop(sid, None)
                self._p_cache.pop(sid, None)
        return len(gone)

    def _refit(self, *, force: bool = False) -> None:
        with self._lock:
            new = self._labelled - self._fitted_at
            if not force and new < max(10, self._fitted_at // 10):
                return
            items = [f for h in self.history.values() for f in h.items]
            self._fitted_at = self._labelled
        try:
            model = fit_success(items)
        except Exception:
            log.exception("session success model not fitted")
            return
        with self._lock:
            self.model = model
            self._model_version += 1

    def _write_series(self, at: int) -> None:
        if self.write is None or self.index is None:
            return
        scored = []
        for session, p in self._predicted(at):
            if p["success_probability"] is None and p["completion"] is None:
                continue
            risk = (None if p["success_probability"] is None
                    else 1 - p["success_probability"])
            scored.append((float(p["overdue"]), session, risk))
        chosen = scored[:self.settings.max_series_sessions]
        points: list[tuple[str, dict[str, str], float]] = []
        now_written: dict[str, str] = {}
        for overdue, session, risk in chosen:
            labels = {"session": session.id, "kind": session.kind}
            points.append((OVERDUE_METRIC, labels, overdue))
            if risk is not None:
                points.append((RISK_METRIC, labels, risk))
            now_written[session.id] = session.kind
        for sid, kind in self._written.items():  # left the chosen: alerts on them resolve
            if sid not in now_written:
                labels = {"session": sid, "kind": kind}
                points += [(OVERDUE_METRIC, labels, 0.0), (RISK_METRIC, labels, 0.0)]
        self._written = now_written
        if not points:
            return
        index = self.index
        slots = np.array([index.add(series_id(m, labels), m, labels, enforce_limit=False)
                          for m, labels, _ in points], np.int64)
        batch = Batch(slots.astype(np.int32), index.ids(slots),
                      np.full(len(slots), at, np.int64),
                      np.array([v for _, _, v in points], np.float64))
        try:
            self.write(batch)
        except SeismoError as exc:  # a full ingest queue: these points are skipped
            log.debug("session series not stored: %s", exc.message)

    # -- predictions --------------------------------------------------------------------

    def _predicted(self, at: int) -> list[tuple[Session, dict[str, Any]]]:
        """Every active session with its prediction, the most urgent first: overdue ones,
        then by failure risk, then the oldest."""
        with self._lock:
            active = [s for s in self.table.open.values() if s.state == "active"]
        out = []
        for start in range(0, len(active), SCORE_CHUNK):  # the lock is let go in between
            with self._lock:
                out += [(s, self._predict(s, at)) for s in active[start:start + SCORE_CHUNK]]
        out.sort(key=lambda sp: (not sp[1]["overdue"], -(sp[1]["failure_risk"] or 0.0),
                                 sp[0].started_ms))
        return out

    def _predict(self, session: Session, at: int) -> dict[str, Any]:
        """Completion estimate and success probability of a session that is not finished."""
        elapsed = session.duration_ms(at) / 1000
        out: dict[str, Any] = {"elapsed_s": round(elapsed, 3), "completion": None,
                               "overdue": False, "success_probability": None,
                               "failure_risk": None, "model": None}
        history = self.history.get(session.kind)
        if history is not None and len(history.items) >= self.settings.min_history:
            durations = history.durations
            limit = quantile(durations, self.settings.overdue_quantile)
            out["overdue"] = elapsed > limit
            q = conditional_quantiles(durations, elapsed)
            completion: dict[str, Any] = {"based_on": len(durations),
                                          "overdue_after_s": round(limit, 3),
                                          "expected_duration_s": None, "p90_duration_s": None,
                                          "expected_end_ms": None, "remaining_s": None}
            if q is not None:
                completion.update(expected_duration_s=round(q[0], 3),
                                  p90_duration_s=round(q[1], 3),
                                  expected_end_ms=session.started_ms + int(q[0] * 1000),
                                  remaining_s=round(max(0.0, q[0] - elapsed), 3))
            out["completion"] = completion
        p: float | None = None
        if self.model is not None:
            cached = self._p_cache.get(session.id)
            if cached is not None and cached[:2] == (self._model_version, session.events):
                p = cached[2]
            else:  # it changes only with the session's events and the model
                p = self.model.predict(finished_of(session))
                self._p_cache[session.id] = (self._model_version, session.events, p)
            out["model"] = "logistic"
        elif history is not None and history.succeeded + history.failed:
            n = history.succeeded + history.failed
            p = (history.succeeded + 1) / (n + 2)
            out["model"] = "rate"
        if p is not None:
            out["success_probability"] = round(p, 6)
            out["failure_risk"] = round(1 - p, 6)
        return out

    # -- reads --------------------------------------------------------------------------

    def list(self, *, state: list[str] | None = None, kind: str | None = None,
             user: str | None = None, start_ms: int | None = None, end_ms: int | None = None,
             sort: str = "start", order: str = "desc", limit: int = 100,
             cursor: str | None = None) -> dict[str, Any]:
        """A page of sessions, newest (or longest) first; `cursor` fetches the next."""
        for s in state or ():
            if s not in STATES:
                raise InvalidInput(f"state must be one of {', '.join(STATES)}", field="state")
        if sort not in SORTS:
            raise InvalidInput(f"sort must be one of {', '.join(SORTS)}", field="sort")
        if order not in ("asc", "desc"):
            raise InvalidInput("order must be asc or desc", field="order")
        if not 1 <= limit <= 1000:
            raise InvalidInput("limit must be from 1 to 1000", field="limit")
        at = self.clock()
        page, next_cursor = self.store.query(
            now_ms=at, states=state, kind=kind, user=user, start_ms=start_ms, end_ms=end_ms,
            sort=sort, descending=order == "desc", limit=limit, cursor=cursor)
        with self._lock:
            docs = []
            for row in page:
                session = self.table.open.get(row.id, row)
                doc = session.to_dict(at)
                doc["prediction"] = (None if session.state != "active"
                                     else self._predict(session, at))
                docs.append(doc)
        return {"sessions": docs, "cursor": next_cursor, "generated_ms": at}

    def running(self, limit: int = MAX_RUNNING) -> dict[str, Any]:
        """Active sessions with their predictions, the most urgent first (at most `limit`;
        `running_total` counts them all), and the outcomes of the stored finished ones."""
        at = self.clock()
        predicted = self._predicted(at)
        with self._lock:
            docs = [{**s.to_dict(at), "prediction": p} for s, p in predicted[:limit]]
            model = ({"kind": "logistic", "trained_on": self.model.report["evaluated_on"]}
                     if self.model is not None else {"kind": "rate", "trained_on": 0})
        finished = succeeded = failed = 0
        for (_, state, status), n in self.store.counts().items():
            if state == "finished":
                finished += n
                succeeded += n if status == "success" else 0
                failed += n if status == "failure" else 0
        labelled = succeeded + failed
        return {"generated_ms": at, "running": docs, "running_total": len(predicted),
                "finished": finished, "succeeded": succeeded, "failed": failed,
                "success_rate": round(succeeded / labelled, 6) if labelled else None,
                "model": model}

    def get(self, sid: str) -> dict[str, Any]:
        """One session: its timeline, metrics, anomalies, alerts and predictions."""
        at = self.clock()
        with self._lock:
            session = self.table.open.get(sid) or self.store.get(sid)
            if session is None:
                raise NotFound(f"no session {sid!r}", field="id")
            doc = session.to_dict(at)
            doc["prediction"] = None if session.state != "active" else self._predict(session,
                                                                                     at)
        ids = self.store.event_ids(sid, self.settings.max_events_per_session)
        doc["timeline"] = [e.to_dict() for e in self.events.by_ids(ids)]
        doc["timeline_truncated"] = session.events > len(ids)
        end = session.ended_ms if session.state == "finished" and session.ended_ms else at
        selector = parse_selector(f'{{session="{_quote(sid)}"}}')
        doc["metrics"] = []
        if self.query_engine is not None:
            window_s = min(MAX_DETAIL_WINDOW_S, max(1.0, (at - session.started_ms) / 1000 + 1))
            doc["metrics"] = self.query_engine.instant(selector, window_s, at)
        doc["anomalies"] = []
        if self.anomalies is not None and self.index is not None:
            names = sorted({self.index.info(s).metric for s in self.index.select(selector)})
            for name in names[:100]:
                doc["anomalies"] += [
                    a.to_dict() for a in self.anomalies.query(
                        metric=name, start_ms=session.started_ms, end_ms=end, limit=100)
                    if a.labels.get("session") == sid]
        doc["alerts"] = []
        if self.alerts is not None:
            doc["alerts"] = [a for a in self.alerts(session.started_ms)
                             if a.get("labels", {}).get("session") == sid]
        return doc

    def stats(self) -> dict[str, Any]:
        """Per kind: live counts, success rate, duration percentiles; the success model
        and its calibration."""
        counts = self.store.counts()
        kinds: dict[str, dict[str, Any]] = {}
        for (kind, state, status), n in counts.items():
            row = kinds.setdefault(kind, {"active": 0, "stale": 0, "finished": 0,
                                          "by_status": {}})
            row[state] = row.get(state, 0) + n
            if state == "finished":
                key = status or "unknown"
                row["by_status"][key] = row["by_status"].get(key, 0) + n
        with self._lock:
            for kind, history in self.history.items():
                row = kinds.setdefault(kind, {"active": 0, "stale": 0, "finished": 0,
                                              "by_status": {}})
                row.update(history.stats())
            model = (self.model.about() if self.model is not None else
                     {"kind": "rate", "trained_on": 0, "calibration": None,
                      "reason": "needs finished sessions with both success and failure"})
        return {"generated_ms": self.clock(), "kinds": kinds, "model": model}
