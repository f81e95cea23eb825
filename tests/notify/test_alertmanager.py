"""Forwarding to Alertmanager: the body of POST /api/v2/alerts (postableAlerts)."""

from __future__ import annotations

import json

from seismo.notify import Alert, AlertmanagerForward, Reason
from tests.notify.samples import cpu_alert, cpu_notification


def test_body_is_a_list_of_postable_alerts() -> None:
    n = cpu_notification(cpu_alert("web-1", "critical"), cpu_alert("web-2", resolved=True))
    payload = AlertmanagerForward("upstream").payload(n)
    assert payload.content_type == "application/json"
    body = json.loads(payload.body)
    assert isinstance(body, list) and len(body) == 2
    firing, resolved = body
    assert firing == {
        "labels": {"alertname": "HighCPU", "host": "web-1", "severity": "critical",
                   "team": "infra"},
        "annotations": {"summary": "CPU 95% on web-1"},
        "startsAt": "2026-11-23T08:10:05.508Z",
        "generatorURL": "http://seismo.example:8765/alerts/fp-web-1",
    }
    # a firing alert has no endsAt (Alertmanager applies resolve_timeout); resolved has one
    assert resolved["endsAt"] == "2026-11-23T08:11:05.508Z"
    allowed = {"labels", "annotations", "startsAt", "endsAt", "generatorURL"}
    assert all(set(alert) <= allowed for alert in body)


def test_a_resolved_alert_without_an_end_ends_at_the_notification_time() -> None:
    alert = Alert(fingerprint="f", status="resolved", labels={"alertname": "X"}, starts_at_ms=0)
    n = cpu_notification(alert, reason=Reason.RESOLVED)
    (sent,) = json.loads(AlertmanagerForward("upstream").payload(n).body)
    assert sent["endsAt"] == "2026-11-23T08:10:05.508Z"
    assert "generatorURL" not in sent  # empty: left out rather than sent as ""
