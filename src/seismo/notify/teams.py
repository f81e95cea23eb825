"""The Microsoft Teams channel: an incoming-webhook message carrying one Adaptive Card.

The envelope is the documented one (`type: message`, one attachment of content type
`application/vnd.microsoft.card.adaptive`, `contentUrl: null`); the card (schema 1.2, full
width) has a title banner styled by severity, a fact set for the group, one container per
alert and a button back to seismo. Works for connector webhooks and Workflows webhooks.
Reference: https://learn.microsoft.com/microsoftteams/platform/webhooks-and-connectors/
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from seismo.notify.channel import (
    JSON,
    Payload,
    clip,
    encode_json,
    is_web_link,
    should_retry,
    summary_of,
)
from seismo.notify.message import Alert, Notification, format_labels

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
CARD_VERSION = "1.2"

_STYLES = {"critical": "attention", "high": "attention", "medium": "warning"}
"""Container style per severity; lower severities are `accent`, resolved is `good`."""


def style_of(status: str, severity: str) -> str:
    """The Adaptive Card container style for an alert or a group."""
    if status == "resolved":
        return "good"
    return _STYLES.get(severity, "accent")


@dataclass(frozen=True)
class Teams:
    """POSTs an Adaptive Card to a Teams incoming webhook; at most `max_alerts` shown."""

    kind: ClassVar[str] = "teams"
    name: str
    max_alerts: int = 10

    def card(self, notification: Notification) -> dict[str, Any]:
        """The Adaptive Card itself."""
        shown = notification.alerts[: max(self.max_alerts, 0)]
        hidden = len(notification.alerts) - len(shown)
        body: list[dict[str, Any]] = [
            {
                "type": "Container",
                "style": style_of(notification.status, notification.severity),
                "bleed": True,
                "items": [_text(notification.title, weight="Bolder", size="Large")],
            },
            {"type": "FactSet", "facts": _facts(notification)},
            *(_alert(a) for a in shown),
        ]
        if hidden:
            body.append(_text(f"{hidden} more alert{'s' if hidden > 1 else ''} not shown",
                              isSubtle=True))
        card: dict[str, Any] = {
            "$schema": CARD_SCHEMA,
            "type": "AdaptiveCard",
            "version": CARD_VERSION,
            "msteams": {"width": "Full"},
            "body": body,
        }
        if is_web_link(notification.external_url):
            card["actions"] = [
                {"type": "Action.OpenUrl", "title": "Open seismo", "url": notification.external_url}
            ]
        return card

    def document(self, notification: Notification) -> dict[str, Any]:
        """The webhook message: the card wrapped in Teams' message envelope."""
        return {
            "type": "message",
            "attachments": [
                {
                    "contentType": CARD_CONTENT_TYPE,
                    "contentUrl": None,
                    "content": self.card(notification),
                }
            ],
        }

    def payload(self, notification: Notification) -> Payload:
        return Payload(JSON, encode_json(self.document(notification)))

    def should_retry(self, status: int) -> bool:
        return should_retry(status)


def _text(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": clip(text, 2000), "wrap": True, **style}


def _facts(notification: Notification) -> list[dict[str, str]]:
    counts = f"{len(notification.firing)} firing, {len(notification.resolved)} resolved"
    return [
        {"title": "Status", "value": f"{notification.status} ({counts})"},
        {"title": "Severity", "value": notification.severity or "none"},
        {"title": "Reason", "value": notification.reason.value.replace("_", " ")},
        {"title": "Group", "value": clip(format_labels(notification.group_labels), 1000)},
        {"title": "Channel", "value": notification.receiver},
    ]


def _alert(alert: Alert) -> dict[str, Any]:
    summary = summary_of(alert.annotations, alert.alertname)
    items: list[dict[str, Any]] = [
        _text(f"{alert.status.upper()}: {summary}", weight="Bolder",
              color=style_of(alert.status, alert.severity).capitalize()),
    ]
    description = alert.annotations.get("description", "")
    if description and description != summary:
        items.append(_text(description))
    items.append({
        "type": "FactSet",
        "facts": [{"title": k, "value": clip(v, 500)} for k, v in sorted(alert.labels.items())],
    })
    container: dict[str, Any] = {"type": "Container", "separator": True, "items": items}
    if is_web_link(alert.generator_url):
        container["selectAction"] = {"type": "Action.OpenUrl", "url": alert.generator_url}
    return container
