"""The email channel, read back with the stdlib parser as a mail client would."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest

from seismo.notify import Email, Notification, Reason
from tests.notify.samples import cpu_alert, cpu_notification

CHANNEL = Email("mail", sender="seismo@example.org", to=("oncall@example.org", "b@example.org"))


def _received(notification: Notification, channel: Email = CHANNEL) -> EmailMessage:
    payload = channel.payload(notification)
    assert payload.content_type == "message/rfc822"
    assert b"\r\n" in payload.body  # SMTP line endings on the wire
    parsed = message_from_bytes(payload.body, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _parts(msg: EmailMessage) -> tuple[str, str]:
    plain, html = msg.get_body(("plain",)), msg.get_body(("html",))
    assert plain is not None and html is not None
    return plain.get_content(), html.get_content()


def test_headers_and_both_parts() -> None:
    n = cpu_notification(cpu_alert("web-1", "critical"), cpu_alert("web-2", resolved=True))
    msg = _received(n)
    assert msg["Subject"] == "[FIRING:1] HighCPU (infra)"
    assert msg["From"] == "seismo@example.org"
    assert msg["To"] == "oncall@example.org, b@example.org"
    assert msg["Date"] == "Mon, 23 Nov 2026 08:10:05 +0000"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["X-Seismo-Reason"] == "first"
    assert msg["X-Seismo-Group-Key"] == '{}:{alertname="HighCPU"}'
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    plain, html = _parts(msg)
    assert "FIRING: CPU 95% on web-1" in plain
    assert "RESOLVED: CPU 95% on web-2" in plain
    assert "  Labels: alertname=HighCPU, host=web-1, severity=critical, team=infra" in plain
    assert "  Value: 95" in plain
    assert "  Started: 2026-11-23T08:10:05.508Z" in plain
    assert "  Ended: 2026-11-23T08:11:05.508Z" in plain
    assert "  Source: http://seismo.example:8765/alerts/fp-web-1" in plain
    assert "Reason: first" in plain
    assert "Open seismo: http://seismo.example:8765" in plain
    assert "<h3" in html and "FIRING: CPU 95% on web-1" in html
    assert '<a href="http://seismo.example:8765/alerts/fp-web-1">source</a>' in html


def test_html_part_escapes_everything_from_alerts() -> None:
    alert = cpu_alert("<script>alert(1)</script>", summary='<img src=x onerror="x()"> & co')
    alert = type(alert)(**{**alert.__dict__, "generator_url": 'http://x.example/?a=1&b="2"'})
    plain, html = _parts(_received(cpu_notification(alert)))
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=&quot;x()&quot;&gt; &amp; co" in html
    assert 'href="http://x.example/?a=1&amp;b=&quot;2&quot;"' in html
    assert "<script>alert(1)</script>" in plain  # plain text shows it as is


def test_non_web_urls_are_never_links() -> None:
    alert = cpu_alert("web-1")
    alert = type(alert)(**{**alert.__dict__, "generator_url": "javascript:alert(1)"})
    _, html = _parts(_received(cpu_notification(alert)))
    assert "javascript:alert(1)" in html  # shown as text
    assert 'href="javascript' not in html and html.count("href=") == 1  # only "Open seismo"


def test_subject_names_the_alerts_and_never_breaks_a_header() -> None:
    a = cpu_alert("web-1")
    b = type(a)(**{**a.__dict__, "labels": {"alertname": "DiskFull\r\nBcc: x@evil.example",
                                            "host": "db-1"}})
    n = Notification("mail", "{}:{}", {}, (a, b), Reason.NEW_ALERTS, ts_ms=0)
    msg = _received(n)
    subject = msg["Subject"]
    assert subject.startswith("[FIRING:2] DiskFull Bcc: x@evil.example, HighCPU")
    assert "\n" not in subject and "\r" not in subject
    assert msg["Bcc"] is None


def test_resolved_subject_and_max_alerts() -> None:
    alerts = [cpu_alert(f"web-{i}", resolved=True) for i in range(5)]
    n = cpu_notification(*alerts, reason=Reason.RESOLVED)
    msg = _received(n, Email("mail", sender="s@example.org", to=("t@example.org",), max_alerts=3))
    assert msg["Subject"] == "[RESOLVED] HighCPU (high infra)"
    plain, html = _parts(msg)
    assert plain.count("RESOLVED: CPU 95%") == 3 and "2 more alerts not shown." in plain
    assert "2 more alerts not shown." in html


@pytest.mark.parametrize(("status", "retry"), [(421, True), (451, True), (452, True),
                                               (550, False), (554, False), (250, False)])
def test_smtp_4xx_is_retried_5xx_is_not(status: int, retry: Any) -> None:
    assert CHANNEL.should_retry(status) is retry
