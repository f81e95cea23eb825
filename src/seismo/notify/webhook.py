"""The generic webhook channel: Alertmanager's webhook JSON, version 4, key for key.

Receivers written for Alertmanager (`webhook_configs`) read it unchanged: same keys in the
same order, labels sorted, times in Go's RFC 3339 with the zero time for an open end, and
`max_alerts` truncation counted in `truncatedAlerts`. Reference:
https://prometheus.io/docs/alerting/latest/configuration/#webhook_config
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from seismo.notify.channel import JSON, Payload, encode_json, should_retry
from seismo.notify.message import Alert, Notification, rfc3339


@dataclass(frozen=True)
class Webhook:
    """POSTs Alertmanager webhook v4 JSON; `max_alerts` > 0 caps the alerts listed."""

    kind: ClassVar[str] = "webhook"
    name: str
    max_alerts: int = 0

    def document(self, notification: Notification) -> dict[str, Any]:
        """The webhook message as a JSON-ready dict."""
        alerts = notification.alerts
        kept = alerts[: self.max_alerts] if self.max_alerts > 0 else alerts
        return {
            "receiver": notification.receiver,
            "status": notification.status,
            "alerts": [alert_document(a, notification.ts_ms) for a in kept],
            "groupLabels": dict(sorted(notification.group_labels.items())),
            "commonLabels": notification.common_labels,
            "commonAnnotations": notification.common_annotations,
            "externalURL": notification.external_url,
            "version": "4",
            "groupKey": notification.group_key,
            "truncatedAlerts": len(alerts) - len(kept),
        }

    def payload(self, notification: Notification) -> Payload:
        return Payload(JSON, encode_json(self.document(notification)))

    def should_retry(self, status: int) -> bool:
        return should_retry(status)


def alert_document(alert: Alert, now_ms: int) -> dict[str, Any]:
    """One alert of a webhook message; a firing alert's end is the zero time, as Alertmanager.

    A resolved alert whose end is unknown ends at `now_ms` (the notification's time).
    """
    ends_at_ms = alert.ends_at_ms if alert.ends_at_ms is not None else now_ms
    return {
        "status": alert.status,
        "labels": dict(sorted(alert.labels.items())),
        "annotations": dict(sorted(alert.annotations.items())),
        "startsAt": rfc3339(alert.starts_at_ms),
        "endsAt": rfc3339(None if alert.is_firing else ends_at_ms),
        "generatorURL": alert.generator_url,
        "fingerprint": alert.fingerprint,
    }
