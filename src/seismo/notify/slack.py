"""The Slack channel: an incoming-webhook message with Block Kit blocks.

`text` is the plain fallback Slack shows in notifications; `blocks` hold a header (the
title), a section of fields (status, severity, reason, group) and a context line. Each alert
follows as a secondary attachment whose bar is coloured by its severity (green once
resolved), the documented way to colour a message. Text is escaped (`&`, `<`, `>`) so a label
cannot mention `@channel` or forge a link, and clipped to Slack's limits.
Reference: https://api.slack.com/messaging/webhooks, https://api.slack.com/reference/block-kit
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from seismo.notify.channel import (
    JSON,
    Payload,
    clip,
    colour_of,
    encode_json,
    is_web_link,
    should_retry,
    summary_of,
)
from seismo.notify.message import Alert, Notification, format_labels

HEADER_LIMIT = 150
"""Characters in a header block's text."""
FIELD_LIMIT = 2000
"""Characters in one field of a section."""
TEXT_LIMIT = 3000
"""Characters in a section's or the message's text."""


def escape(text: str) -> str:
    """Slack's three control characters as entities (its documented escaping)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mrkdwn(text: str, limit: int = TEXT_LIMIT) -> str:
    """`text` escaped for mrkdwn and clipped to `limit` without cutting an entity in two."""
    escaped = escape(text)
    if len(escaped) <= limit:
        return escaped
    cut = escaped[: limit - 1]
    amp = cut.rfind("&")
    if amp >= 0 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + "…"


def link(url: str, label: str) -> str:
    """A mrkdwn link to an http(s) URL, or the escaped label alone for any other URL."""
    if not is_web_link(url):
        return escape(label)
    safe = url.replace("&", "&amp;").replace("<", "%3C").replace(">", "%3E").replace("|", "%7C")
    return f"<{safe}|{escape(label)}>"


@dataclass(frozen=True)
class Slack:
    """POSTs a Block Kit message to a Slack incoming webhook; at most `max_alerts` shown."""

    kind: ClassVar[str] = "slack"
    name: str
    max_alerts: int = 10

    def document(self, notification: Notification) -> dict[str, Any]:
        """The message as a JSON-ready dict."""
        shown = notification.alerts[: max(self.max_alerts, 0)]
        hidden = len(notification.alerts) - len(shown)
        return {
            "text": mrkdwn(_fallback(notification)),
            "blocks": [
                {
                    "type": "header",
                    "text": {
                        "type": "plain_text",
                        "text": clip(notification.title, HEADER_LIMIT),
                        "emoji": True,
                    },
                },
                {"type": "section", "fields": _fields(notification)},
                {"type": "context", "elements": [
                    {"type": "mrkdwn", "text": _context(notification, hidden)},
                ]},
            ],
            "attachments": [_attachment(a) for a in shown],
        }

    def payload(self, notification: Notification) -> Payload:
        return Payload(JSON, encode_json(self.document(notification)))

    def should_retry(self, status: int) -> bool:
        return should_retry(status)


def _fallback(notification: Notification) -> str:
    first = (notification.firing or notification.alerts or (None,))[0]
    if first is None:
        return notification.title
    return f"{notification.title}: {summary_of(first.annotations, first.alertname)}"


def _fields(notification: Notification) -> list[dict[str, str]]:
    counts = f"{len(notification.firing)} firing, {len(notification.resolved)} resolved"
    pairs = [
        ("Status", f"{notification.status} ({counts})"),
        ("Severity", notification.severity or "none"),
        ("Reason", notification.reason.value.replace("_", " ")),
        ("Group", format_labels(notification.group_labels)),
    ]
    return [
        {"type": "mrkdwn", "text": f"*{name}*\n" + mrkdwn(value, FIELD_LIMIT - len(name) - 3)}
        for name, value in pairs
    ]


def _context(notification: Notification, hidden: int) -> str:
    parts = [f"seismo · {mrkdwn(notification.receiver, 200)}"]
    if hidden:
        parts.append(f"{hidden} more alert{'s' if hidden > 1 else ''} not shown")
    if notification.external_url:
        parts.append(link(notification.external_url, "open seismo"))
    return " · ".join(parts)


def _attachment(alert: Alert) -> dict[str, Any]:
    summary = summary_of(alert.annotations, alert.alertname)
    lines = [f"*{mrkdwn(f'{alert.status.upper()}: {summary}', 500)}*"]
    description = alert.annotations.get("description", "")
    if description and description != summary:
        lines.append(mrkdwn(description, 1000))
    labels = " · ".join(f"{k}={v}" for k, v in sorted(alert.labels.items()))
    lines.append(mrkdwn(labels, 1200))
    source = link(alert.generator_url, "source") if alert.generator_url else ""
    if source and sum(len(line) + 1 for line in lines) + len(source) <= TEXT_LIMIT:
        lines.append(source)
    return {
        "color": colour_of(alert.status, alert.severity),
        "fallback": mrkdwn(f"{alert.status.upper()}: {summary}", 300),
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}}],
    }
