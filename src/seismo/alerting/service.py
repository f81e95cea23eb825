"""The alerting stage as one service: rules, alerts, the alert manager and the outbox.

Sits after the WAL (beside the detectors). The ingest writer offers each durable batch;
one thread evaluates rules on it, advances timers (`for`, `keep_firing_for`, `absent`,
group waits, escalations) every `tick_s` and reloads changed rule files. Every alert
transition is stored (history), published on the `alerts` topic, and handed to the alert
manager, whose notifications go to the durable outbox. REST, CLI and MCP call the methods
here; everything alerting runs under the evaluator's lock.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from seismo.alerting.evaluator import MAX_RESOLVED_KEPT, Evaluator, Tracked
from seismo.alerting.incidents import Incidents
from seismo.alerting.manager import AlertManager
from seismo.alerting.routes import parse_inhibit_rules, parse_routes
from seismo.alerting.rules import Rule, load_rule_file, parse_rule, parse_rules
from seismo.alerting.silences import SilenceStore
from seismo.alerting.state import Acknowledgement, AlertState, Episode, Transition
from seismo.config import Settings, parse_duration_s
from seismo.errors import InvalidInput, NotFound, Overloaded, StorageUnavailable
from seismo.notify import Alert as NotifyAlert
from seismo.notify import Notification
from seismo.notify.config import ChannelSpec, merge_secrets, parse_channel, parse_channels
from seismo.notify.delivery import deliver
from seismo.notify.message import SEVERITIES
from seismo.notify.outbox import Outbox
from seismo.outbound import OutboundPolicy
from seismo.store.alerts import AlertLog
from seismo.store.anomalies import Anomaly
from seismo.store.batch import Batch
from seismo.store.definitions import Definitions, check_put
from seismo.store.series import SeriesIndex

log = logging.getLogger(__name__)
alerts_log = logging.getLogger("seismo.alerts")
STATES = ("pending", "firing", "acknowledged", "resolved")
MAX_CUSTOM_LABELS = 64
RESOLVED_LOOKBACK_MS = 86_400_000
"""At start, alerts resolved this recently are checked for a resolve no channel heard of."""


def steady_clock() -> Callable[[], int]:
    """Epoch milliseconds that advance with the monotonic clock. The wall clock is read once,
    here, so a step of it (NTP, a VM resumed) neither fires nor stalls `for`,
    `keep_firing_for`, `absent()`, group waits, repeats or retry backoffs."""
    offset_ns = time.time_ns() - time.monotonic_ns()
    return lambda: (time.monotonic_ns() + offset_ns) // 1_000_000


class AlertService:
    """See the module docstring. `publish(topic, doc)` goes to the live stream."""

    def __init__(self, settings: Settings, index: SeriesIndex,
                 latest: Callable[[], Any], publish: Callable[[str, Any], object],
                 *, clock: Callable[[], int] | None = None) -> None:
        a = settings.alerting
        clock = steady_clock() if clock is None else clock
        self.settings = settings
        self.clock = clock
        self.publish = publish
        db = settings.data_dir / "state.db"
        self.log = AlertLog(db)
        self.definitions = Definitions(db)
        self.silences = SilenceStore(db, clock)
        self.incidents = Incidents(window_ms=int(parse_duration_s(a.correlation_window) * 1000))
        self.evaluator = Evaluator(index, latest, clock=clock, on_change=self._changed,
                                   max_active=a.max_active_alerts,
                                   forecast_interval_ms=int(a.forecast_interval_s * 1000))
        self.lock = self.evaluator.lock
        self.channels: dict[str, ChannelSpec] = {}
        self.outbox = Outbox(db, lambda: self.channels, clock=clock,
                             max_attempts=a.outbox_max_attempts,
                             backoff_max_s=a.outbox_backoff_max_s, workers=a.outbox_workers,
                             send=partial(deliver, policy=OutboundPolicy.of(
                                 settings.security.outbound_deny,
                                 settings.security.outbound_allow)))
        self.manager = AlertManager([], send=self._send, clock=clock, silences=self.silences,
                                    default_channels=tuple(a.default_channels),
                                    external_url=a.external_url)
        self.file_rules: dict[Path, list[Rule]] = {}
        self.file_status: dict[Path, dict[str, Any]] = {}
        self._mtimes: dict[Path, float | None] = {}
        self._changes: list[_Change] = []
        self._storage_error_at = float("-inf")  # a full disk last logged (monotonic s)
        self._queue: deque[Batch | Anomaly] = deque()
        self._queued = 0
        self._cond = threading.Condition()
        self._running = False
        self._thread: threading.Thread | None = None
        self.evaluated_samples = 0
        self.notifications_refused = 0

    # -- life cycle ---------------------------------------------------------------------

    def start(self) -> None:
        for path in self.settings.alerting.rule_files:
            self._reload_file(path)
        self._apply_channels()
        self._apply_routes()
        self._apply_rules()
        with self.transaction():  # alerts of rules removed meanwhile resolve
            restored = self.evaluator.restore(
                (row, _episode(row)) for row in self.log.active())
        resolved = self.log.query(states=["resolved"], limit=MAX_RESOLVED_KEPT)  # newest first
        self.evaluator.remember_resolved((row, _episode(row)) for row in reversed(resolved))
        with self.lock:
            self._resume_notifications(restored, resolved)
        if restored:
            log.info("restored %d active alerts", len(restored))
        self.outbox.start()
        self._running = True
        self._thread = threading.Thread(target=self._run, name="seismo-alerting", daemon=True)
        self._thread.start()

    def _resume_notifications(self, restored: list[Tracked],
                              resolved_rows: list[dict[str, Any]]) -> None:
        """After a restart, hand the alert manager what its channels had heard, as the
        outbox records it: a firing alert they were told of is adopted (not notified again);
        one they were not (the process died within its group_wait) is notified as new; an
        alert that resolved after they were told it fires, but before its group sent the
        resolve (died within the group_interval), is notified resolved."""
        url = self.settings.alerting.external_url
        firing = [(t, notify_alert(t, url)) for t in restored if t.alert.is_firing]
        since_ms = self.clock() - RESOLVED_LOOKBACK_MS
        resolved = [r for r in resolved_rows
                    if r["updated_ms"] >= since_ms and r["fired_ms"] is not None]
        if not firing and not resolved:
            return
        told, complete_from = self.outbox.told(
            min([v.starts_at_ms for _, v in firing] + [r["fired_ms"] for r in resolved]))
        for tracked, view in firing:
            acknowledged = tracked.alert.state is AlertState.ACKNOWLEDGED
            if (acknowledged or view.starts_at_ms < complete_from
                    or (view.fingerprint, "firing", view.starts_at_ms) in told):
                self.manager.adopt(view, acknowledged=acknowledged)
            else:
                self.manager.receive(view)
        for row in resolved:
            fp, starts = row["fingerprint"], row["fired_ms"]
            if (starts >= complete_from and (fp, "firing", starts) in told
                    and (fp, "resolved", starts) not in told):
                self.manager.adopt(row_alert(row, url, firing=True))
                self.manager.receive(row_alert(row, url, firing=False))

    def stop(self) -> None:
        with self._cond:
            self._running = False
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.outbox.stop()
        self.log.close()
        self.definitions.close()
        self.silences.close()

    def offer(self, batch: Batch) -> None:
        """Queue a durable batch for rule evaluation; wait while the queue is full (the
        ingest queue then fills and ingest answers 429), so no sample skips the rules."""
        with self._cond:
            while self._running and self._queued >= self.settings.alerting.queue_samples:
                self._cond.wait(0.1)
            self._queue.append(batch)
            self._queued += len(batch)
            self._cond.notify_all()

    def offer_anomaly(self, anomaly: Anomaly) -> None:
        with self._cond:
            self._queue.append(anomaly)
            self._cond.notify_all()

    def _run(self) -> None:
        tick_s = self.settings.alerting.tick_s
        reload_s = self.settings.alerting.reload_interval_s
        next_tick = next_reload = time.monotonic()
        while True:
            with self._cond:
                while self._running and not self._queue and time.monotonic() < next_tick:
                    self._cond.wait(max(0.0, next_tick - time.monotonic()))
                if not self._running and not self._queue:
                    return
                work = list(self._queue)
                self._queue.clear()
                self._queued = 0
                self._cond.notify_all()
            try:
                self._work(work)
                now = time.monotonic()
                if now >= next_tick:
                    next_tick = now + tick_s
                    with self.transaction():
                        self.evaluator.tick()
                        self.manager.tick()
                if now >= next_reload:
                    next_reload = now + reload_s
                    self._check_files()
            except StorageUnavailable as exc:  # every tick while the disk is full
                if time.monotonic() - self._storage_error_at >= 60:
                    self._storage_error_at = time.monotonic()
                    log.error("alert evaluation: %s (logged once a minute)", exc.message)
            except Exception:
                log.exception("alert evaluation failed; continuing")

    def _work(self, work: list[Batch | Anomaly]) -> None:
        for item in work:
            with self.transaction():
                if isinstance(item, Batch):
                    self.evaluator.on_batch(item)
                    self.evaluated_samples += len(item)
                else:
                    self.evaluator.on_anomaly(item)

    def drain(self, timeout_s: float = 10.0) -> bool:
        """Wait until every offered batch has been evaluated (tests, benchmarks)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._cond:
                if not self._queue:
                    with self.lock:  # the batch in hand, if any, is done once we get this
                        return True
            time.sleep(0.005)
        return False

    # -- alert transitions --------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Run evaluator calls under the lock; the transitions they make are then stored in
        one transaction, and only after that published and handed to the alert manager."""
        with self.lock:
            try:
                yield
            finally:
                self._commit_changes()

    def _changed(self, tracked: Tracked, transition: Transition) -> None:
        alert = tracked.alert
        to = transition.to_state
        never_fired = alert.episode is None or alert.episode.fired_at_ms is None
        view = None
        if to is not AlertState.PENDING and not (to is AlertState.RESOLVED and never_fired):
            view = notify_alert(tracked, self.settings.alerting.external_url)
        self._changes.append(
            _Change(alert_doc(tracked), transition_doc(transition), view,
                    to is AlertState.ACKNOWLEDGED, f"{alert.describe()} {to.value} "
                    f"({transition.reason})"))

    def _commit_changes(self) -> None:
        changes, self._changes = self._changes, []
        if not changes:
            return
        try:
            self.log.record_many([(c.alert, c.transition) for c in changes])
        except sqlite3.OperationalError as exc:
            # A full disk: the evaluator has moved on, so keep the changes and store, publish
            # and notify them with the next commit (the timer makes one every tick).
            self._changes = changes + self._changes
            raise StorageUnavailable(
                f"cannot store alert transitions, kept to retry: {exc}") from exc
        for c in changes:
            self.publish("alerts", {**public(c.alert), "transition": c.transition})
            if c.view is not None:
                alerts_log.info("alert %s", c.text)
                self.incidents.observe(c.view)
                self.manager.receive(c.view, acknowledged=c.acknowledged)

    def _send(self, channel: str, notification: Notification) -> None:
        try:
            self.outbox.put(channel, notification)
        except (Overloaded, StorageUnavailable) as exc:
            self.notifications_refused += 1
            log.error("notification to %s not queued: %s", channel, exc.message)

    # -- alerts -------------------------------------------------------------------------

    def list_alerts(self, *, state: list[str] | None = None, severity: list[str] | None = None,
                    rule: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        for s in state or ():
            if s not in STATES:
                raise InvalidInput(f"state must be one of {', '.join(STATES)}", field="state")
        for s in severity or ():
            if s not in SEVERITIES:
                raise InvalidInput(f"severity must be one of {', '.join(SEVERITIES)}",
                                   field="severity")
        rows = self.log.query(states=state, severities=severity, rule=rule, limit=limit)
        return [self._with_marks(r) for r in rows]

    def get_alert(self, fp: str) -> dict[str, Any]:
        row = self.log.get(fp)
        if row is None:
            raise NotFound(f"no alert {fp!r}", field="id")
        return {**self._with_marks(row), "transitions": self.log.transitions(fp)}

    def _with_marks(self, row: dict[str, Any]) -> dict[str, Any]:
        row = {"id": row["fingerprint"], **public(row)}
        if row["state"] != "resolved":
            with self.lock:
                row.update(self.manager.marks(row["labels"]))
        return row

    def acknowledge(self, fp: str, by: str, comment: str = "") -> dict[str, Any]:
        self._known(fp)
        with self.transaction():
            self.evaluator.acknowledge(fp, by, comment)
        return self.get_alert(fp)

    def resolve(self, fp: str, by: str, comment: str = "") -> dict[str, Any]:
        self._known(fp)
        with self.transaction():
            self.evaluator.resolve(fp, by, comment)
        return self.get_alert(fp)

    def _known(self, fp: str) -> None:
        if fp not in self.evaluator.alerts:
            row = self.log.get(fp)
            if row is None:
                raise NotFound(f"no alert {fp!r}", field="id")
            raise InvalidInput(f"alert {fp} is {row['state']}: only a firing alert can be "
                               "acknowledged, and only an active one resolved", field="state")

    def raise_alert(self, name: str, *, labels: Mapping[str, str],
                    annotations: Mapping[str, str], severity: str,
                    ends_at_ms: int | None) -> dict[str, Any]:
        """A custom alert (seed 001): fires now, notified like any other."""
        probe = parse_rule({"name": name, "expr": "custom_alert > 0", "severity": severity,
                            "labels": dict(labels)}, field_name="alert")
        if len(annotations) > MAX_CUSTOM_LABELS or any(
                not isinstance(v, str) or len(v) > 4096 for v in annotations.values()):
            raise InvalidInput("annotations: up to 64 texts of up to 4096 characters",
                               field="annotations")
        if ends_at_ms is not None and ends_at_ms <= self.clock():
            raise InvalidInput("ends_at must be in the future", field="ends_at")
        with self.transaction():
            tracked = self.evaluator.raise_alert(name, probe.labels, annotations, severity,
                                                 ends_at_ms)
        return self.get_alert(tracked.fingerprint)

    def observe(self, source: str, name: str, labels: Mapping[str, str], severity: str,
                annotations: Mapping[str, str], is_true: bool, value: float | None = None,
                *, for_ms: int = 0) -> None:
        """An alert condition from another stage (SLO burn rates, model drift): true raises
        or keeps the alert `name` + `labels`, false lets it resolve; routed, silenced and
        notified like any rule's. Call it each time the condition is judged."""
        with self.transaction():
            self.evaluator.observe(source, name, labels, severity, annotations, is_true, value,
                                   for_ms=for_ms)

    # -- rules --------------------------------------------------------------------------

    def _config_rules(self) -> list[Rule]:
        rules = parse_rules(self.settings.rules, source="seismo.yaml")
        for path in self.settings.alerting.rule_files:
            rules += self.file_rules.get(path, [])
        return rules

    def _api_rules(self) -> list[Rule]:
        return [parse_rule(doc, source="api") for doc in self.definitions.all("rule")]

    def rules(self) -> list[Rule]:
        return self._config_rules() + self._api_rules()

    def _apply_rules(self) -> None:
        seen: dict[str, Rule] = {}
        for rule in self.rules():
            if rule.name in seen:
                log.error("rule %r from %s ignored: %s defines it too", rule.name,
                          rule.source, seen[rule.name].source)
                continue
            seen[rule.name] = rule
        with self.transaction():
            self.evaluator.set_rules(list(seen.values()))

    def get_rule(self, name: str) -> Rule:
        for rule in self.rules():
            if rule.name == name:
                return rule
        raise NotFound(f"no rule {name!r}", field="name")

    def put_rule(self, doc: Any, *, name: str | None = None) -> Rule:
        """Create (`name` None) or replace an API rule; file rules are read-only here."""
        rule = parse_rule(doc, source="api")
        check_put("rule", "rules", "rule", rule.name, name,
                  {r.name: r.source for r in self.rules()})
        self.definitions.put("rule", rule.name, dict(doc))
        self._apply_rules()
        return rule

    def delete_rule(self, name: str) -> None:
        rule = self.get_rule(name)
        if rule.source != "api":
            raise InvalidInput(f"rule {name!r} is defined in {rule.source}; remove it there",
                               field="name")
        self.definitions.delete("rule", name)
        self._apply_rules()

    def _check_files(self) -> None:
        changed = False
        for path in self.settings.alerting.rule_files:
            changed |= self._reload_file(path)
        if changed:
            self._apply_rules()

    def _reload_file(self, path: Path) -> bool:
        """Load a rule file if it changed; on error keep its last good rules. True if loaded."""
        try:
            mtime: float | None = path.stat().st_mtime_ns
        except OSError:
            mtime = None
        if path in self._mtimes and self._mtimes[path] == mtime:
            return False
        self._mtimes[path] = mtime
        try:
            rules = load_rule_file(path)
            others = {r.name for p, rs in self.file_rules.items() if p != path for r in rs}
            others |= {r.name for r in parse_rules(self.settings.rules)}
            clash = next((r.name for r in rules if r.name in others), None)
            if clash is not None:
                raise InvalidInput(f"{path}: rule {clash!r} is defined elsewhere too",
                                   field="rule_file")
        except InvalidInput as exc:
            self.file_status[path] = {"path": str(path), "ok": False, "error": exc.message,
                                      "rules": len(self.file_rules.get(path, [])),
                                      "checked_ms": self.clock()}
            log.error("rule file not loaded, the previous rules keep running: %s", exc.message)
            return False
        self.file_rules[path] = rules
        self.file_status[path] = {"path": str(path), "ok": True, "error": None,
                                  "rules": len(rules), "loaded_ms": self.clock()}
        log.info("loaded %d rules from %s", len(rules), path)
        return True

    def rule_files(self) -> list[dict[str, Any]]:
        return [self.file_status[p] for p in self.settings.alerting.rule_files
                if p in self.file_status]

    # -- channels and routes ------------------------------------------------------------

    def _apply_channels(self) -> None:
        specs = parse_channels(self.settings.channels)
        specs += [parse_channel(doc, field="channel") for doc in self.definitions.all("channel")]
        self.channels = {s.name: s for s in specs}
        self._apply_routes()

    def _apply_routes(self) -> None:
        docs = self.settings.routes + self.definitions.all("routes")
        routes = parse_routes(docs, field="routes")
        inhibit = parse_inhibit_rules(self.settings.inhibit_rules, field="inhibit_rules")
        with self.lock:
            self.manager.set_config(
                routes, inhibit_rules=inhibit,
                default_channels=tuple(self.settings.alerting.default_channels),
                channel_rate_per_minute={n: s.max_per_minute for n, s in self.channels.items()
                                         if s.max_per_minute},
                send_resolved={n: s.send_resolved for n, s in self.channels.items()})

    def list_channels(self) -> list[dict[str, Any]]:
        config = {d.get("name") for d in self.settings.channels}
        return [{**s.public(), "source": "seismo.yaml" if n in config else "api"}
                for n, s in self.channels.items()]

    def put_channel(self, doc: Any, *, name: str | None = None) -> dict[str, Any]:
        spec = parse_channel(doc, field="channel")
        config = {d.get("name") for d in self.settings.channels}
        if spec.name in config:
            raise InvalidInput(f"channel {spec.name!r} is defined in seismo.yaml",
                               field="channel.name")
        old = self.channels.get(spec.name)
        if name is None and old is not None:
            raise InvalidInput(f"a channel named {spec.name!r} exists; PUT replaces it",
                               field="channel.name")
        if name is not None and (old is None or name != spec.name):
            raise NotFound(f"no channel {name!r}", field="name")
        if old is not None:
            spec = merge_secrets(spec, old)
        self.definitions.put("channel", spec.name, spec.document())
        self._apply_channels()
        return spec.public()

    def delete_channel(self, name: str) -> None:
        if name in {d.get("name") for d in self.settings.channels}:
            raise InvalidInput(f"channel {name!r} is defined in seismo.yaml", field="name")
        if not self.definitions.delete("channel", name):
            raise NotFound(f"no channel {name!r}", field="name")
        self._apply_channels()

    def list_routes(self) -> list[dict[str, Any]]:
        return ([{**r, "source": "seismo.yaml"} for r in self.settings.routes]
                + [{**r, "source": "api"} for r in self.definitions.all("routes")])

    def put_routes(self, docs: Any) -> list[dict[str, Any]]:
        """Replace the routes made over the API (they follow those of seismo.yaml)."""
        if not isinstance(docs, list):
            raise InvalidInput("routes must be a list", field="routes")
        parse_routes(self.settings.routes + docs, field="routes")
        self.definitions.replace_all("routes", [(str(i), d) for i, d in enumerate(docs)])
        self._apply_routes()
        return self.list_routes()

    # -- silences, outbox, incidents ----------------------------------------------------

    def add_silence(self, doc: Mapping[str, Any], by: str) -> dict[str, Any]:
        return self.silences.add(doc, by).to_dict(self.clock())

    def expire_silence(self, silence_id: str) -> dict[str, Any]:
        return self.silences.expire(silence_id).to_dict(self.clock())

    def list_silences(self, state: str | None = None) -> list[dict[str, Any]]:
        now = self.clock()
        return [s.to_dict(now) for s in self.silences.list(state)]

    def stats(self) -> dict[str, Any]:
        return {"rules": len(self.evaluator.rules), "active_alerts": len(self.evaluator.alerts),
                "evaluated_samples": self.evaluated_samples,
                "refused_alerts": self.evaluator.refused_alerts,
                "outbox": self.outbox.stats()}


@dataclass(frozen=True)
class _Change:
    """One alert transition, as stored and published, and what the manager gets."""

    alert: dict[str, Any]
    transition: dict[str, Any]
    view: NotifyAlert | None
    """None when nobody is notified (pending, or resolved before it ever fired)."""
    acknowledged: bool
    text: str


def _episode(row: dict[str, Any]) -> Episode:
    ack = None if row["ack_by"] is None else Acknowledgement(
        row["ack_by"], row["ack_ms"], row["ack_comment"] or "")
    return Episode(row["episode"], row["started_ms"], row["fired_ms"], ack,
                   row["resolved_ms"], row["resolved_by"])


def alert_doc(tracked: Tracked) -> dict[str, Any]:
    """An alert's durable row and API form (`id` is added by the reader)."""
    alert = tracked.alert
    episode = alert.episode
    ack = episode.acknowledgement if episode else None
    return {"fingerprint": alert.fingerprint, "rule": alert.rule, "source": tracked.source,
            "sid": tracked.sid, "labels": dict(alert.labels),
            "annotations": dict(tracked.annotations),
            "severity": alert.labels.get("severity", ""),
            "state": alert.state.value if alert.state else "pending",
            "episode": episode.number if episode else 0, "value": alert.value,
            "started_ms": episode.started_at_ms if episode else 0,
            "fired_ms": episode.fired_at_ms if episode else None,
            "ack_by": ack.by if ack else None, "ack_ms": ack.at_ms if ack else None,
            "ack_comment": ack.comment if ack else None,
            "resolved_ms": episode.resolved_at_ms if episode else None,
            "resolved_by": episode.resolved_by if episode else None,
            "ends_at_ms": tracked.ends_at_ms,
            "updated_ms": alert.transitions[-1].at_ms if alert.transitions else 0}


def public(alert: dict[str, Any]) -> dict[str, Any]:
    """An alert row as JSON readers see it: the 63-bit series id as a string (browsers
    lose precision past 2^53), as anomalies do."""
    return {**alert, "sid": None if alert["sid"] is None else str(alert["sid"])}


def transition_doc(t: Transition) -> dict[str, Any]:
    return {"episode": t.episode, "from": t.from_state.value if t.from_state else None,
            "to": t.to_state.value, "at_ms": t.at_ms, "reason": t.reason, "by": t.by,
            "comment": t.comment}


def row_alert(row: dict[str, Any], external_url: str, *, firing: bool) -> NotifyAlert:
    """A stored alert row of an episode that fired, as channels saw it firing or resolved."""
    return NotifyAlert(
        fingerprint=row["fingerprint"], status="firing" if firing else "resolved",
        labels=dict(row["labels"]), annotations=dict(row["annotations"]),
        starts_at_ms=row["fired_ms"], ends_at_ms=None if firing else row["resolved_ms"],
        generator_url=generator_url(external_url, row["fingerprint"]), value=row["value"])


def generator_url(external_url: str, fingerprint: str) -> str:
    """The alert's page on the dashboard, or "" without `alerting.external_url`."""
    base = external_url.rstrip("/")
    return f"{base}/#/alerts/{fingerprint}" if base else ""


def notify_alert(tracked: Tracked, external_url: str) -> NotifyAlert:
    """The alert as channels see it (Alertmanager's fields)."""
    alert = tracked.alert
    episode = alert.episode
    firing = alert.is_firing
    return NotifyAlert(
        fingerprint=alert.fingerprint, status="firing" if firing else "resolved",
        labels=dict(alert.labels), annotations=dict(tracked.annotations),
        starts_at_ms=(episode.fired_at_ms or episode.started_at_ms) if episode else 0,
        ends_at_ms=None if firing or episode is None else episode.resolved_at_ms,
        generator_url=generator_url(external_url, alert.fingerprint), value=alert.value)


