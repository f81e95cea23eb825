"""Incidents: alerts that fire close together on the same host, service or job, as one.

The alert service shows every alert change to `Incidents.observe`; alerts firing within
`window_ms` of each other that share a value of a correlation label (`host`, `instance`,
`service`, `job`, `namespace`, `cluster`) join one incident, and incidents that such an
alert links are merged. In memory and bounded: the oldest resolved incidents go first.
"""

from __future__ import annotations

import builtins
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from seismo.errors import InvalidInput
from seismo.notify.message import SEVERITIES, Alert, common_pairs

CORRELATION_LABELS = ("host", "instance", "service", "job", "namespace", "cluster")
MAX_RESOLVED = 1000

Pair = tuple[str, str]


@dataclass(eq=False)
class Incident:
    id: str
    started_ms: int
    last_ms: int
    alerts: dict[str, Alert] = field(default_factory=dict)
    """The latest view of each member alert, by fingerprint, in joining order."""
    firing: set[str] = field(default_factory=set)
    pairs: dict[Pair, int] = field(default_factory=dict)
    """Correlation label values of members, with the last time one of them fired."""

    @property
    def status(self) -> str:
        return "firing" if self.firing else "resolved"

    @property
    def shared_labels(self) -> dict[str, str]:
        """The labels every member alert has, with the same value."""
        return common_pairs(a.labels for a in self.alerts.values())

    def to_dict(self) -> dict[str, Any]:
        alerts = self.alerts.values()
        ranks = [SEVERITIES.index(a.severity) for a in alerts if a.severity in SEVERITIES]
        return {"id": self.id, "status": self.status, "started_ms": self.started_ms,
                "last_ms": self.last_ms, "alerts": list(self.alerts),
                "firing": len(self.firing), "shared_labels": self.shared_labels,
                "alertnames": sorted({a.alertname for a in alerts if a.alertname}),
                "severity": SEVERITIES[min(ranks)] if ranks else ""}


class Incidents:
    """Correlate alerts into incidents by time and shared label values."""

    def __init__(self, window_ms: int = 300_000,
                 labels: tuple[str, ...] = CORRELATION_LABELS, *,
                 max_resolved: int = MAX_RESOLVED,
                 clock: Callable[[], int] | None = None) -> None:
        self.window_ms = window_ms
        self.labels = tuple(labels)
        self.max_resolved = max_resolved
        self.clock = clock
        """For alerts that carry no start or end time."""
        self._incidents: dict[str, Incident] = {}
        self._of: dict[str, str] = {}
        """The incident each fingerprint last joined."""
        self._by_pair: dict[Pair, set[str]] = {}
        self._resolved: OrderedDict[str, None] = OrderedDict()
        """Resolved incidents, the longest resolved first."""

    def observe(self, alert: Alert) -> Incident | None:
        """Take a change of one alert; return the incident it belongs to (None: unknown)."""
        fp = alert.fingerprint
        current = self._incidents.get(self._of.get(fp, ""))
        if not alert.is_firing:
            if current is None or fp not in current.alerts:
                return None
            current.alerts[fp] = alert
            current.firing.discard(fp)
            at = alert.ends_at_ms or self._time(alert)
            current.last_ms = max(current.last_ms, at)
            if not current.firing:
                self._resolved[current.id] = None
                self._resolved.move_to_end(current.id)
                self._trim()
            return current
        if current is not None and fp in current.firing:
            current.alerts[fp] = alert  # the same episode, changed (annotations, value)
            return current
        at = self._time(alert)
        pairs = [(k, alert.labels[k]) for k in self.labels if k in alert.labels]
        joined = {iid for pair in pairs for iid in self._by_pair.get(pair, ())
                  if abs(self._incidents[iid].pairs[pair] - at) <= self.window_ms}
        if joined:
            incident = self._merge(sorted((self._incidents[i] for i in joined),
                                          key=lambda i: (i.started_ms, i.id)))
        else:
            incident = Incident(uuid.uuid4().hex, at, at)
            self._incidents[incident.id] = incident
        incident.alerts.pop(fp, None)
        incident.alerts[fp] = alert
        incident.firing.add(fp)
        incident.started_ms = min(incident.started_ms, at)
        incident.last_ms = max(incident.last_ms, at)
        self._resolved.pop(incident.id, None)
        for pair in pairs:
            incident.pairs[pair] = max(incident.pairs.get(pair, at), at)
            self._by_pair.setdefault(pair, set()).add(incident.id)
        self._of[fp] = incident.id
        return incident

    def get(self, incident_id: str) -> Incident | None:
        return self._incidents.get(incident_id)

    def list(self, status: str | None = None, limit: int = 100) -> builtins.list[dict[str, Any]]:
        """Incidents, the most recently active first; `status`: firing or resolved."""
        if status not in (None, "firing", "resolved"):
            raise InvalidInput("status must be firing or resolved", field="status")
        found = [i for i in self._incidents.values() if status is None or i.status == status]
        found.sort(key=lambda i: (-i.last_ms, i.id))
        return [i.to_dict() for i in found[:max(0, limit)]]

    def __len__(self) -> int:
        return len(self._incidents)

    def _time(self, alert: Alert) -> int:
        if alert.starts_at_ms:
            return alert.starts_at_ms
        return int(self.clock()) if self.clock is not None else 0

    def _merge(self, incidents: builtins.list[Incident]) -> Incident:
        """Fold later incidents into the earliest one (an alert linked them)."""
        into = incidents[0]
        for other in incidents[1:]:
            for fp, alert in other.alerts.items():
                into.alerts[fp] = alert
                self._of[fp] = into.id
            into.firing |= other.firing
            for pair, at in other.pairs.items():
                into.pairs[pair] = max(into.pairs.get(pair, at), at)
                ids = self._by_pair[pair]
                ids.discard(other.id)
                ids.add(into.id)
            into.started_ms = min(into.started_ms, other.started_ms)
            into.last_ms = max(into.last_ms, other.last_ms)
            del self._incidents[other.id]
            self._resolved.pop(other.id, None)
        return into

    def _drop(self, incident: Incident) -> None:
        self._incidents.pop(incident.id, None)
        self._resolved.pop(incident.id, None)
        for fp in incident.alerts:
            if self._of.get(fp) == incident.id:
                del self._of[fp]
        for pair in incident.pairs:
            ids = self._by_pair.get(pair)
            if ids is not None:
                ids.discard(incident.id)
                if not ids:
                    del self._by_pair[pair]

    def _trim(self) -> None:
        while len(self._resolved) > self.max_resolved:
            oldest = next(iter(self._resolved))
            self._drop(self._incidents[oldest])
