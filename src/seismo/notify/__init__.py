"""Notifications: what is sent about a group of alerts, and the payload each channel expects.

Sits after the alert manager in the data path. A `Notification` (plain data, with the
`Reason` it is sent) goes to a `Channel`, one module per kind: `webhook` (Alertmanager v4
JSON), `slack`, `teams`, `email`, `alertmanager` (forwarding). Sending, the outbox, retries,
routes and grouping are not built yet (issue 6).
"""

from seismo.notify.alertmanager import AlertmanagerForward
from seismo.notify.channel import Channel, Payload, should_retry
from seismo.notify.email import Email
from seismo.notify.message import (
    SEVERITIES,
    Alert,
    Notification,
    Reason,
    fingerprint_of,
    format_labels,
    group_key,
    rfc3339,
)
from seismo.notify.slack import Slack
from seismo.notify.teams import Teams
from seismo.notify.template import Rendered, Template, render_annotations
from seismo.notify.webhook import Webhook

__all__ = [
    "SEVERITIES",
    "Alert",
    "AlertmanagerForward",
    "Channel",
    "Email",
    "Notification",
    "Payload",
    "Reason",
    "Rendered",
    "Slack",
    "Teams",
    "Template",
    "Webhook",
    "fingerprint_of",
    "format_labels",
    "group_key",
    "render_annotations",
    "rfc3339",
    "should_retry",
]
