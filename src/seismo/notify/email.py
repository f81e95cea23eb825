"""The email channel: a MIME message with a plain-text body and an HTML alternative.

The subject reads like Alertmanager's (`[FIRING:2] HighCPU (critical)`) and always names the
alerts; everything taken from labels and annotations is HTML-escaped in the HTML part, and
control characters never reach a header. Sending over SMTP (STARTTLS, auth) comes later
(issue 6); `should_retry` already reads SMTP reply codes: 4xx is transient, 5xx is not.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from typing import ClassVar

from seismo.notify.channel import Payload, clip, colour_of, is_web_link, summary_of
from seismo.notify.message import Alert, Notification, format_labels, format_value, rfc3339

SUBJECT_LIMIT = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def header_text(text: str, limit: int = SUBJECT_LIMIT) -> str:
    """`text` made safe for a header: control characters and line breaks become spaces."""
    return clip(_CONTROL.sub(" ", text).strip(), limit)


def subject_of(notification: Notification) -> str:
    """The title, with the alert names added when the group labels do not carry them."""
    title = notification.title
    names = sorted({a.alertname for a in notification.alerts if a.alertname})
    carried = "alertname" in notification.group_labels or "alertname" in notification.common_labels
    if names and not carried:
        head, _, rest = title.partition(" ")
        listed = ", ".join(names[:3]) + (" …" if len(names) > 3 else "")
        title = f"{head} {listed} {rest}"
    return header_text(title)


@dataclass(frozen=True)
class Email:
    """Mails `to` from `sender`; at most `max_alerts` alerts listed in the body."""

    kind: ClassVar[str] = "email"
    name: str
    sender: str
    to: tuple[str, ...]
    max_alerts: int = 50

    def message(self, notification: Notification) -> EmailMessage:
        """The message, ready for `smtplib.SMTP.send_message`."""
        msg = EmailMessage()
        msg["Subject"] = subject_of(notification)
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.to)
        msg["Date"] = format_datetime(datetime.fromtimestamp(notification.ts_ms / 1000, UTC))
        msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to alerts
        msg["X-Seismo-Reason"] = notification.reason.value
        msg["X-Seismo-Group-Key"] = header_text(notification.group_key, 900)
        shown = notification.alerts[: max(self.max_alerts, 0)]
        hidden = len(notification.alerts) - len(shown)
        msg.set_content(plain_body(notification, shown, hidden))
        msg.add_alternative(html_body(notification, shown, hidden), subtype="html")
        return msg

    def payload(self, notification: Notification) -> Payload:
        return Payload("message/rfc822", self.message(notification).as_bytes(policy=SMTP))

    def should_retry(self, status: int) -> bool:
        """SMTP reply codes: 4xx is a transient failure, 5xx a permanent one."""
        return 400 <= status < 500


def _details(alert: Alert) -> list[tuple[str, str]]:
    """Name/value lines shown under an alert's summary."""
    rows = [("Labels", ", ".join(f"{k}={v}" for k, v in sorted(alert.labels.items())))]
    description = alert.annotations.get("description", "")
    if description and description != summary_of(alert.annotations, ""):
        rows.insert(0, ("Description", description))
    if alert.value is not None:
        rows.append(("Value", format_value(alert.value)))
    rows.append(("Started", rfc3339(alert.starts_at_ms)))
    if not alert.is_firing and alert.ends_at_ms is not None:
        rows.append(("Ended", rfc3339(alert.ends_at_ms)))
    return rows


def _intro(notification: Notification) -> list[tuple[str, str]]:
    counts = f"{len(notification.firing)} firing, {len(notification.resolved)} resolved"
    return [
        ("Status", f"{notification.status} ({counts})"),
        ("Severity", notification.severity or "none"),
        ("Reason", notification.reason.value.replace("_", " ")),
        ("Group", format_labels(notification.group_labels)),
    ]


def plain_body(notification: Notification, shown: tuple[Alert, ...], hidden: int) -> str:
    """The text/plain part."""
    lines = [notification.title, ""]
    lines += [f"{name}: {value}" for name, value in _intro(notification)]
    for alert in shown:
        lines += ["", f"{alert.status.upper()}: {summary_of(alert.annotations, alert.alertname)}"]
        lines += [f"  {name}: {value}" for name, value in _details(alert)]
        if alert.generator_url:
            lines.append(f"  Source: {alert.generator_url}")
    if hidden:
        lines += ["", f"{hidden} more alert{'s' if hidden > 1 else ''} not shown."]
    if notification.external_url:
        lines += ["", f"Open seismo: {notification.external_url}"]
    return "\n".join(lines) + "\n"


def _link(url: str, label: str) -> str:
    if not is_web_link(url):
        return html.escape(url)
    return f'<a href="{html.escape(url)}">{html.escape(label)}</a>'


def html_body(notification: Notification, shown: tuple[Alert, ...], hidden: int) -> str:
    """The text/html part; every value from an alert is escaped."""
    e = html.escape
    colour = colour_of(notification.status, notification.severity)
    out = [
        "<!DOCTYPE html>",
        '<html><body style="font-family:sans-serif">',
        f'<h2 style="border-left:6px solid {colour};padding-left:8px">'
        f"{e(notification.title)}</h2>",
        "<table>",
        *(f"<tr><th align=left>{e(n)}</th><td>{e(v)}</td></tr>" for n, v in _intro(notification)),
        "</table>",
    ]
    for alert in shown:
        summary = summary_of(alert.annotations, alert.alertname)
        out.append(
            f'<h3 style="border-left:6px solid {colour_of(alert.status, alert.severity)};'
            f'padding-left:8px">{e(alert.status.upper())}: {e(summary)}</h3>'
        )
        out.append("<table>")
        out += [f"<tr><th align=left>{e(n)}</th><td>{e(v)}</td></tr>" for n, v in _details(alert)]
        if alert.generator_url:
            link = _link(alert.generator_url, "source")
            out.append(f"<tr><th align=left>Source</th><td>{link}</td></tr>")
        out.append("</table>")
    if hidden:
        out.append(f"<p>{hidden} more alert{'s' if hidden > 1 else ''} not shown.</p>")
    if notification.external_url:
        out.append(f"<p>{_link(notification.external_url, 'Open seismo')}</p>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"
