"""Forwarding to an existing Alertmanager: the body of `POST /api/v2/alerts`.

A list of `postableAlert` objects (labels, annotations, startsAt, endsAt, generatorURL), so
teams that already route with Alertmanager keep doing so while seismo evaluates on ingest.
A firing alert has no `endsAt`: Alertmanager then resolves it after its `resolve_timeout`
unless it is sent again. Reference: https://prometheus.io/docs/alerting/latest/clients/
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from seismo.notify.channel import JSON, Payload, encode_json, should_retry
from seismo.notify.message import Alert, Notification, rfc3339


@dataclass(frozen=True)
class AlertmanagerForward:
    """POSTs the notification's alerts to Alertmanager's API v2."""

    kind: ClassVar[str] = "alertmanager"
    name: str

    def document(self, notification: Notification) -> list[dict[str, Any]]:
        """The `postableAlerts` list as JSON-ready dicts."""
        return [postable_alert(a, notification.ts_ms) for a in notification.alerts]

    def payload(self, notification: Notification) -> Payload:
        return Payload(JSON, encode_json(self.document(notification)))

    def should_retry(self, status: int) -> bool:
        return should_retry(status)


def postable_alert(alert: Alert, now_ms: int) -> dict[str, Any]:
    """One `postableAlert`; a resolved alert of unknown end ends at `now_ms`."""
    document: dict[str, Any] = {
        "labels": dict(sorted(alert.labels.items())),
        "annotations": dict(sorted(alert.annotations.items())),
        "startsAt": rfc3339(alert.starts_at_ms),
    }
    if not alert.is_firing:
        document["endsAt"] = rfc3339(alert.ends_at_ms if alert.ends_at_ms is not None else now_ms)
    if alert.generator_url:
        document["generatorURL"] = alert.generator_url
    return document
