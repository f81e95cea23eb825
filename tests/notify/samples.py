"""Notifications shared by the channel tests, starting with the one in ../shared/formats."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from seismo.notify import Alert, Notification, Reason

FORMATS = Path(__file__).resolve().parent / "formats"  # copied from ../shared/formats
STARTS_MS = 1795421405508  # 2026-11-23T08:10:05.508Z
LABELS = {
    "alertname": "BenchHigh",
    "instance": "127.0.0.1:44745",
    "job": "exp",
    "severity": "critical",
}
GENERATOR_URL = "http://prometheus.example:9090/graph?g0.expr=bench_value+%3E+0.5&g0.tab=1"


def alertmanager_sample() -> dict[str, Any]:
    """Alertmanager 0.25's own firing and resolved webhook messages."""
    sample: dict[str, Any] = json.loads((FORMATS / "alertmanager-webhook-v4.json").read_text())
    return sample


def sample_alert(*, resolved: bool = False) -> Alert:
    return Alert(
        fingerprint="0515facf0ae64530",
        status="resolved" if resolved else "firing",
        labels=dict(LABELS),
        annotations={},
        starts_at_ms=STARTS_MS,
        ends_at_ms=STARTS_MS + 1000 if resolved else None,
        generator_url=GENERATOR_URL,
        value=0.93,
    )


def sample_notification(*, resolved: bool = False) -> Notification:
    """The notification Alertmanager sent in the sample, as seismo would build it."""
    return Notification(
        receiver="hook",
        group_key='{}:{alertname="BenchHigh"}',
        group_labels={"alertname": "BenchHigh"},
        alerts=(sample_alert(resolved=resolved),),
        reason=Reason.RESOLVED if resolved else Reason.FIRST,
        ts_ms=STARTS_MS + 2000,
        external_url="http://alertmanager.example:9093",
    )


def cpu_alert(host: str, severity: str = "high", *, resolved: bool = False,
              **annotations: str) -> Alert:
    labels = {"alertname": "HighCPU", "host": host, "severity": severity, "team": "infra"}
    return Alert(
        fingerprint=f"fp-{host}",
        status="resolved" if resolved else "firing",
        labels=labels,
        annotations=annotations or {"summary": f"CPU 95% on {host}"},
        starts_at_ms=STARTS_MS,
        ends_at_ms=STARTS_MS + 60_000 if resolved else None,
        generator_url=f"http://seismo.example:8765/alerts/fp-{host}",
        value=95.0,
    )


def cpu_notification(*alerts: Alert, reason: Reason = Reason.FIRST) -> Notification:
    """A group of HighCPU alerts on several hosts."""
    return Notification(
        receiver="oncall",
        group_key='{}:{alertname="HighCPU"}',
        group_labels={"alertname": "HighCPU"},
        alerts=alerts or (cpu_alert("web-1", "critical"), cpu_alert("web-2")),
        reason=reason,
        ts_ms=STARTS_MS,
        external_url="http://seismo.example:8765",
    )
