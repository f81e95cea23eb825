"""The alert manager: routes alerts to channels in groups, on Alertmanager's timers.

Between the rule engine (which calls `receive` on every change of an alert and `tick` every
~100-250 ms) and the channels (`send`). Mirrors Alertmanager's dispatcher and notify
pipeline (group_wait, group_interval, repeat_interval, silences, inhibition, dedup by what
each channel was told) plus seismo's own: severity-aware group_wait, cooldown, escalation
and per-channel rate limits. Plain object, injected clock, no threads and no I/O.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import logging
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from seismo.alerting.routes import Escalation, InhibitRule, Route
from seismo.alerting.silences import SilenceStore
from seismo.notify.message import Alert, Notification, Reason, group_key

log = logging.getLogger(__name__)

DEFAULT_ROUTE_KEY = "{}"
PRUNE_EVERY_MS = 60_000

GroupId = tuple[str, tuple[tuple[str, str], ...]]
"""A route's identity and the group's label values."""
Slot = tuple[str, int]
"""A channel and an escalation level (0: the route's own channels, n: `escalate[n-1]`)."""


@dataclass
class _Entry:
    """The latest state of one alert, by fingerprint."""

    alert: Alert
    acknowledged: bool
    first_seen_ms: int
    resolved_ms: int | None = None
    groups: set[GroupId] = field(default_factory=set)

    @property
    def started_ms(self) -> int:
        return self.alert.starts_at_ms or self.first_seen_ms


@dataclass
class _Log:
    """What one channel (at one escalation level) was told about one group."""

    notified: set[str] = field(default_factory=set)
    """Fingerprints the channel believes are firing."""
    last_sent_ms: int | None = None


@dataclass(eq=False)
class _Group:
    id: GroupId
    route: Route
    route_index: int | None
    labels: dict[str, str]
    key: str
    next_flush_ms: int
    alerts: dict[str, None] = field(default_factory=dict)
    """Fingerprints, in arrival order."""
    logs: dict[Slot, _Log] = field(default_factory=dict)
    is_flushed: bool = False
    """Whether group_wait is over (the first flush happened)."""
    due_ms: int | None = None

    def slots(self) -> list[Slot]:
        slots = [(c, 0) for c in self.route.channels]
        for level, step in enumerate(self.route.escalate, start=1):
            slots += [(c, level) for c in step.channels]
        return slots


class _RateLimit:
    """At most `per_minute` sends in any rolling minute (fractional rates: 1 per 60/rate s)."""

    def __init__(self, per_minute: float) -> None:
        self.per_minute = per_minute
        self.burst = max(1, int(per_minute))
        self.window_ms = self.burst * 60_000 / per_minute
        self.sent: deque[int] = deque(maxlen=self.burst)

    def can_send(self, now_ms: int) -> bool:
        return len(self.sent) < self.burst or now_ms - self.sent[0] >= self.window_ms

    def take(self, now_ms: int) -> None:
        self.sent.append(now_ms)


class AlertManager:
    """Group, mute, time and rate-limit alerts into notifications to channels."""

    def __init__(self, routes: Sequence[Route], *,
                 send: Callable[[str, Notification], None],
                 clock: Callable[[], int],
                 silences: SilenceStore | None = None,
                 inhibit_rules: Sequence[InhibitRule] = (),
                 default_channels: tuple[str, ...] = (),
                 send_resolved: Mapping[str, bool] | None = None,
                 channel_rate_per_minute: Mapping[str, float] | None = None,
                 external_url: str = "") -> None:
        self._send = send
        self._clock = clock
        self.silences = silences
        self._lock = threading.RLock()
        self._now_ms = 0
        self._alerts: dict[str, _Entry] = {}
        self._groups: dict[GroupId, _Group] = {}
        self._heap: list[tuple[int, int, GroupId]] = []
        self._seq = itertools.count()
        self._held: dict[str, dict[tuple[GroupId, Slot], None]] = {}
        self._limits: dict[str, _RateLimit] = {}
        self._resolved_at: dict[str, int] = {}
        """Last resolve of alerts whose resolve was notified: what cooldown counts from."""
        self._pruned_ms = 0
        self._routes: list[Route] = []
        self._route_ids: list[str] = []
        self._default = Route()
        self._inhibit_rules: list[InhibitRule] = []
        self._sources: list[dict[tuple[str, ...], dict[str, Mapping[str, str]]]] = []
        self._send_resolved: dict[str, bool] = {}
        self.external_url = external_url
        self.set_config(routes, inhibit_rules=inhibit_rules, default_channels=default_channels,
                        send_resolved=send_resolved or {},
                        channel_rate_per_minute=channel_rate_per_minute or {})

    # -- configuration ------------------------------------------------------------------

    def set_config(self, routes: Sequence[Route], *,
                   inhibit_rules: Sequence[InhibitRule] | None = None,
                   default_channels: tuple[str, ...] | None = None,
                   send_resolved: Mapping[str, bool] | None = None,
                   channel_rate_per_minute: Mapping[str, float] | None = None,
                   external_url: str | None = None) -> None:
        """Swap the configuration; a group whose route is unchanged keeps its state.

        Arguments left as None keep their current value. Alerts are routed again: one that
        now lands in a new group is notified there as new (after its group_wait).
        """
        with self._lock:
            now = self._now()
            self._routes = list(routes)
            seen: dict[str, int] = {}
            self._route_ids = []
            for route in self._routes:
                n = seen.get(route.identity, 0)
                seen[route.identity] = n + 1
                self._route_ids.append(f"{route.identity}#{n}")
            if default_channels is not None:
                self._default = Route(channels=tuple(default_channels))
            if inhibit_rules is not None:
                self._inhibit_rules = list(inhibit_rules)
            if send_resolved is not None:
                self._send_resolved = dict(send_resolved)
            if external_url is not None:
                self.external_url = external_url
            if channel_rate_per_minute is not None:
                limits = {}
                for channel, rate in channel_rate_per_minute.items():
                    old = self._limits.get(channel)
                    if rate and rate > 0:
                        limits[channel] = old if old and old.per_minute == rate \
                            else _RateLimit(rate)
                self._limits = limits
            self._sources = [{} for _ in self._inhibit_rules]
            for fp, entry in self._alerts.items():
                self._index_source(fp, entry.alert)
            self._regroup(now)

    def _regroup(self, now: int) -> None:
        old, self._groups = self._groups, {}
        for entry in self._alerts.values():
            entry.groups.clear()
        for fp, entry in self._alerts.items():
            for gid in self._place(fp, entry, now, old):
                entry.groups.add(gid)
        for group in self._groups.values():
            slots = set(group.slots())
            group.logs = {s: lg for s, lg in group.logs.items() if s in slots}
            group.due_ms = None
            self._schedule(group, now)
        for channel in list(self._held):
            self._held[channel] = {k: None for k in self._held[channel]
                                   if k[0] in self._groups and k[1][0] == channel
                                   and k[1] in self._groups[k[0]].logs}

    # -- input --------------------------------------------------------------------------

    def receive(self, alert: Alert, *, acknowledged: bool = False) -> None:
        """Take a change of one alert (fired, resolved, acknowledged, annotations changed).

        A group due now (group_wait 0: critical alerts by default) is notified before this
        returns.
        """
        with self._lock:
            now = self._now()
            fp = alert.fingerprint
            entry = self._alerts.get(fp)
            if not alert.is_firing:
                resolved_ms = alert.ends_at_ms if alert.ends_at_ms is not None else now
                if fp in self._resolved_at:  # flapping: the cooldown counts from this resolve
                    self._resolved_at[fp] = max(self._resolved_at[fp], resolved_ms)
                if entry is None:
                    return  # never seen firing: nobody was told about it
                entry.alert, entry.acknowledged = alert, acknowledged
                entry.resolved_ms = resolved_ms
                self._index_source(fp, alert)
                return
            if entry is None:
                entry = self._alerts[fp] = _Entry(alert, acknowledged, now)
            else:
                # An acknowledgement lasts until the alert resolves (none is ever taken back).
                acknowledged = acknowledged or (entry.acknowledged and entry.alert.is_firing)
                entry.alert, entry.acknowledged = alert, acknowledged
            self._index_source(fp, alert)
            due_now = []
            for gid in self._place(fp, entry, now, {}):
                entry.groups.add(gid)
                group = self._groups[gid]
                if not group.is_flushed and (
                        group.next_flush_ms <= now or (alert.severity == "critical"
                                                       and group.route.group_wait_ms is None)):
                    group.next_flush_ms = now
                    due_now.append(group)
                else:
                    self._wake_for(group, entry, now)
            for group in due_now:
                self._flush(group, now)

    def adopt(self, alert: Alert, *, acknowledged: bool = False) -> None:
        """Take a firing alert whose channels were told before a restart: no new `first`
        for it, but it repeats, escalates and is notified resolved as if seismo never
        stopped."""
        with self._lock:
            now = self._now()
            fp = alert.fingerprint
            entry = self._alerts[fp] = _Entry(alert, acknowledged, now)
            self._index_source(fp, alert)
            for gid in self._place(fp, entry, now, {}):
                entry.groups.add(gid)
                group = self._groups[gid]
                for slot in group.slots():
                    if slot[1] == 0:  # escalations were not necessarily reached
                        log = group.logs.setdefault(slot, _Log())
                        log.notified.add(fp)
                        log.last_sent_ms = now

    def tick(self) -> None:
        """Flush groups whose timers are due, escalate, release rate-limited notifications."""
        with self._lock:
            now = self._now()
            while self._heap and self._heap[0][0] <= now:
                due, _, gid = heapq.heappop(self._heap)
                group = self._groups.get(gid)
                if group is not None and group.due_ms == due:
                    self._flush(group, now)
            self._release_held(now)
            if now - self._pruned_ms >= PRUNE_EVERY_MS:
                self._prune(now)

    # -- for the API --------------------------------------------------------------------

    def marks(self, labels: Mapping[str, str]) -> dict[str, list[str]]:
        """What mutes alerts with these labels: silence ids and inhibiting alerts."""
        with self._lock:
            return {"silenced_by": self._silenced_by(labels),
                    "inhibited_by": self._inhibited_by(labels)}

    def groups(self) -> list[dict[str, Any]]:
        """The alert groups, for the API: key, route, channels, alerts, timers."""
        with self._lock:
            out = []
            for group in self._groups.values():
                sent = [lg.last_sent_ms for lg in group.logs.values()
                        if lg.last_sent_ms is not None]
                out.append({
                    "group_key": group.key, "route": group.route_index,
                    "channels": list(dict.fromkeys(c for c, _ in group.slots())),
                    "group_labels": dict(group.labels), "alerts": list(group.alerts),
                    "last_notified_ms": max(sent) if sent else None,
                    "next_flush_ms": group.next_flush_ms,
                    "held_channels": sorted({c for c, h in self._held.items()
                                             for gid, _ in h if gid == group.id})})
            return out

    # -- routing ------------------------------------------------------------------------

    def _matching_routes(self, labels: Mapping[str, str]) -> list[tuple[int | None, str, Route]]:
        matched: list[tuple[int | None, str, Route]] = []
        for i, route in enumerate(self._routes):
            if route.matches(labels):
                matched.append((i, self._route_ids[i], route))
                if not route.continue_:
                    break
        if not matched:
            matched.append((None, "default#" + self._default.identity, self._default))
        return matched

    def _place(self, fp: str, entry: _Entry, now: int,
               previous: Mapping[GroupId, _Group]) -> list[GroupId]:
        """Put an alert in its groups (made as needed, or taken from `previous`)."""
        gids = []
        for index, rid, route in self._matching_routes(entry.alert.labels):
            labels = route.group_labels(entry.alert.labels)
            gid: GroupId = (rid, tuple(labels.items()))
            group = self._groups.get(gid)
            if group is None:
                group = previous.get(gid)
                if group is not None:
                    group.alerts, group.route, group.route_index = {}, route, index
                else:
                    wait = route.group_wait_for(entry.alert.severity)
                    key = group_key(labels, DEFAULT_ROUTE_KEY if index is None else route.key)
                    group = _Group(gid, route, index, labels, key, now + wait)
                    self._schedule(group, now)
                self._groups[gid] = group
            group.alerts[fp] = None
            gids.append(gid)
        return gids

    # -- muting -------------------------------------------------------------------------

    def _index_source(self, fp: str, alert: Alert) -> None:
        for rule, sources in zip(self._inhibit_rules, self._sources, strict=True):
            key = rule.equal_values(alert.labels)
            if alert.is_firing and rule.is_source(alert.labels):
                sources.setdefault(key, {})[fp] = alert.labels
            elif key in sources:
                sources[key].pop(fp, None)
                if not sources[key]:
                    del sources[key]

    def _inhibited_by(self, labels: Mapping[str, str]) -> list[str]:
        found: set[str] = set()
        for rule, sources in zip(self._inhibit_rules, self._sources, strict=True):
            if not rule.is_target(labels):
                continue
            # Alertmanager: an alert on both sides is inhibited only by sources that are not.
            two_sided = rule.is_source(labels)
            for fp, source in sources.get(rule.equal_values(labels), {}).items():
                if source == labels or (two_sided and rule.is_target(source)):
                    continue
                found.add(fp)
        return sorted(found)

    def _silenced_by(self, labels: Mapping[str, str]) -> list[str]:
        return self.silences.silencing(labels) if self.silences is not None else []

    # -- flushing -----------------------------------------------------------------------

    def _flush(self, group: _Group, now: int) -> None:
        group.due_ms = None  # whatever was scheduled is being done now
        if now >= group.next_flush_ms:
            group.is_flushed = True
            interval = group.route.group_interval_ms
            group.next_flush_ms += interval
            if group.next_flush_ms <= now:
                group.next_flush_ms = now + interval
        muted: dict[str, bool] = {}
        for slot in group.slots():
            if (group.id, slot) not in self._held.get(slot[0], {}):
                self._flush_slot(group, slot, now, muted)
        self._sweep(group)
        if group.id in self._groups:
            self._schedule(group, now)

    def _flush_slot(self, group: _Group, slot: Slot, now: int, muted: dict[str, bool]) -> None:
        """Send one channel what changed in the group since it was last told, if anything."""
        channel, level = slot
        step = group.route.escalate[level - 1] if level else None
        lg = group.logs.setdefault(slot, _Log())
        firing: list[str] = []
        resolved: list[str] = []
        for fp in group.alerts:
            entry = self._alerts[fp]
            if not entry.alert.is_firing:
                if fp in lg.notified:
                    resolved.append(fp)
            elif self._is_eligible(group, fp, entry, lg, step, now, muted):
                firing.append(fp)
        new = [fp for fp in firing if fp not in lg.notified]
        send_resolved = self._send_resolved.get(channel, True)
        reason: Reason | None = None
        alerts = firing + resolved if send_resolved else firing
        if lg.last_sent_ms is None:
            reason = Reason.FIRST if firing else None
        elif new:
            reason = Reason.NEW_ALERTS
        elif resolved and send_resolved:
            reason = Reason.RESOLVED
        else:
            if resolved:  # the channel does not want resolves: forget them quietly
                lg.notified.difference_update(resolved)
                self._note_resolved(group, resolved)
                resolved = []
            unacked = [fp for fp in firing if not self._alerts[fp].acknowledged]
            if unacked and now - lg.last_sent_ms >= group.route.repeat_interval_ms:
                reason, alerts = Reason.REPEAT, unacked
        if reason is None:
            return
        limit = self._limits.get(channel)
        if limit is not None:
            if not limit.can_send(now):
                self._held.setdefault(channel, {})[(group.id, slot)] = None
                return
            limit.take(now)
        notification = Notification(
            receiver=channel, group_key=group.key, group_labels=dict(group.labels),
            alerts=tuple(self._copy(self._alerts[fp].alert, step) for fp in alerts),
            reason=reason, ts_ms=now, external_url=self.external_url)
        try:
            self._send(channel, notification)
        except Exception:
            log.exception("sending to channel %r failed; retried at the next group flush",
                          channel)
            return
        lg.notified.difference_update(resolved)
        lg.notified.update(firing)
        lg.last_sent_ms = now
        self._note_resolved(group, resolved)

    def _is_eligible(self, group: _Group, fp: str, entry: _Entry, lg: _Log,
                     step: Escalation | None, now: int, muted: dict[str, bool]) -> bool:
        """Whether a firing alert is to be (or stay) in what this channel is told."""
        if fp not in muted:
            labels = entry.alert.labels
            muted[fp] = bool(self._silenced_by(labels) or self._inhibited_by(labels))
        if muted[fp]:
            return False
        if fp not in lg.notified and self._cooling_until(group, fp) > now:
            return False
        if step is not None:
            return not entry.acknowledged and now >= entry.started_ms + step.after_ms
        return True

    def _cooling_until(self, group: _Group, fp: str) -> int:
        cooldown = group.route.cooldown_ms
        resolved = self._resolved_at.get(fp)
        return 0 if not cooldown or resolved is None else resolved + cooldown

    def _note_resolved(self, group: _Group, fps: list[str]) -> None:
        if not group.route.cooldown_ms:
            return
        for fp in fps:
            at = self._alerts[fp].resolved_ms
            if at is None:
                at = self._now_ms
            self._resolved_at[fp] = max(self._resolved_at.get(fp, at), at)

    @staticmethod
    def _copy(alert: Alert, step: Escalation | None) -> Alert:
        if step is None:
            return alert
        labels = dict(alert.labels)
        labels["escalated"] = "1"
        if step.severity is not None:
            labels["severity"] = step.severity
        return dataclasses.replace(alert, labels=labels)

    def _sweep(self, group: _Group) -> None:
        """Drop resolved alerts every channel was told about (or never heard of)."""
        slots = set(group.slots())
        for fp in list(group.alerts):
            entry = self._alerts[fp]
            if entry.alert.is_firing:
                continue
            if any(fp in lg.notified for s, lg in group.logs.items() if s in slots):
                continue
            del group.alerts[fp]
            entry.groups.discard(group.id)
            if not entry.groups:
                del self._alerts[fp]
        if not group.alerts:
            del self._groups[group.id]

    # -- timers -------------------------------------------------------------------------

    def _schedule(self, group: _Group, now: int) -> None:
        due = group.next_flush_ms
        if group.is_flushed:
            for fp in group.alerts:
                due = min(due, self._wake_ms(group, self._alerts[fp], now) or due)
        self._push(group, due)

    def _wake_for(self, group: _Group, entry: _Entry, now: int) -> None:
        """An alert joined a notified group: wake it for its escalation or cooldown end."""
        if group.is_flushed:
            wake = self._wake_ms(group, entry, now)
            if wake is not None:
                self._push(group, wake)

    def _wake_ms(self, group: _Group, entry: _Entry, now: int) -> int | None:
        """The next time this alert needs its group flushed before group_interval, if any."""
        if not entry.alert.is_firing:
            return None
        fp = entry.alert.fingerprint
        times = []
        cooling = self._cooling_until(group, fp)
        if cooling > now:
            times.append(cooling)
        if not entry.acknowledged:
            for step in group.route.escalate:
                at = entry.started_ms + step.after_ms
                if at > now:
                    times.append(at)
        return min(times) if times else None

    def _push(self, group: _Group, due: int) -> None:
        if group.due_ms is not None and group.due_ms <= due:
            return
        group.due_ms = due
        heapq.heappush(self._heap, (due, next(self._seq), group.id))

    def _release_held(self, now: int) -> None:
        for channel, held in self._held.items():
            limit = self._limits.get(channel)
            while held and (limit is None or limit.can_send(now)):
                gid, slot = next(iter(held))
                del held[(gid, slot)]
                group = self._groups.get(gid)
                if group is None:
                    continue
                self._flush_slot(group, slot, now, {})
                self._sweep(group)
                if group.id in self._groups:
                    self._schedule(group, now)
        for channel in [c for c, h in self._held.items() if not h]:
            del self._held[channel]

    def _prune(self, now: int) -> None:
        self._pruned_ms = now
        longest = max((r.cooldown_ms for r in self._routes), default=0)
        self._resolved_at = {fp: t for fp, t in self._resolved_at.items()
                             if t + longest > now}
        if len(self._heap) > 4 * len(self._groups) + 64:  # drop stale timer entries
            self._heap = [e for e in self._heap
                          if (g := self._groups.get(e[2])) is not None and g.due_ms == e[0]]
            heapq.heapify(self._heap)

    def _now(self) -> int:
        self._now_ms = max(self._now_ms, int(self._clock()))
        return self._now_ms
