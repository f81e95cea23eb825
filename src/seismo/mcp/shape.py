"""Outputs sized for a model's context: bounded rows, rounded numbers, compact records.

Plain functions from the REST replies' shapes to what a tool returns; no I/O. Every list a
tool returns goes through `bounded` (or is cut by a limit the tool enforces), and series
are cut to `MAX_SERIES` × `MAX_POINTS`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

MAX_ROWS = 100
MAX_SERIES = 20
MAX_POINTS = 200
SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}


def num(value: Any, digits: int = 6) -> float | None:
    """A float with `digits` significant digits; None for None, NaN and infinities."""
    if value is None or isinstance(value, bool):
        return None
    x = float(value)
    if not math.isfinite(x):
        return None
    return float(f"{x:.{digits}g}")


def series_name(metric: str, labels: Mapping[str, str]) -> str:
    """`cpu_usage{host="a"}`: the selector that picks exactly this series."""
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{metric}{{{inner}}}" if inner else metric


def bounded(rows: Sequence[Any], limit: int) -> tuple[list[Any], bool]:
    """The first `limit` rows and whether some were left out."""
    return list(rows[:limit]), len(rows) > limit


def window_stats(window: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (v if k == "count" else num(v)) for k, v in window.items()}


def alert_row(alert: Mapping[str, Any]) -> dict[str, Any]:
    """An alert in a few fields: what, how bad, since when, the marks that matter."""
    row: dict[str, Any] = {
        "id": alert.get("id") or alert.get("fingerprint"), "rule": alert.get("rule"),
        "state": alert.get("state"), "severity": alert.get("severity"),
        "value": num(alert.get("value")), "source": alert.get("source"),
        "labels": {k: v for k, v in (alert.get("labels") or {}).items()
                   if k not in ("alertname", "severity")},
        "fired_ms": alert.get("fired_ms"), "started_ms": alert.get("started_ms"),
    }
    summary = (alert.get("annotations") or {}).get("summary")
    if summary:
        row["summary"] = summary
    for mark in ("silenced", "inhibited"):
        if alert.get(mark):
            row[mark] = True
    if alert.get("ack_by"):
        row["ack_by"] = alert["ack_by"]
    return row


def by_severity(alerts: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Most severe first, then most recent."""
    return sorted(alerts, key=lambda a: (SEVERITY_ORDER.get(str(a.get("severity")), 9),
                                         -int(a.get("fired_ms") or a.get("started_ms") or 0)))


def anomaly_row(anomaly: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": anomaly.get("id"),
            "series": series_name(str(anomaly.get("metric")), anomaly.get("labels") or {}),
            "kind": anomaly.get("kind"), "state": anomaly.get("state"),
            "score": num(anomaly.get("score"), 3), "actual": num(anomaly.get("actual")),
            "expected": num(anomaly.get("expected")), "start_ms": anomaly.get("start_ms"),
            "end_ms": anomaly.get("end_ms")}


def event_row(event: Mapping[str, Any]) -> dict[str, Any]:
    row = {k: event.get(k) for k in ("id", "type", "source", "severity", "timestamp")}
    if event.get("message"):
        row["message"] = str(event["message"])[:500]
    if event.get("attributes"):
        row["attributes"] = event["attributes"]
    return row


def slo_row(slo: Mapping[str, Any]) -> dict[str, Any]:
    return {"name": slo.get("name"), "status": slo.get("status"),
            "objective": slo.get("objective"), "window": slo.get("window"),
            "budget_remaining": num(slo.get("budget_remaining"), 4),
            "burn_rates": {w: num(b, 4) for w, b in (slo.get("burn_rates") or {}).items()}}


def prediction_row(prediction: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A running session's estimates: overdue, remaining and expected time, success odds."""
    if not prediction:
        return None
    completion = prediction.get("completion") or {}
    return {"overdue": bool(prediction.get("overdue")),
            "success_probability": num(prediction.get("success_probability"), 3),
            "failure_risk": num(prediction.get("failure_risk"), 3),
            "expected_duration_s": num(completion.get("expected_duration_s"), 4),
            "remaining_s": num(completion.get("remaining_s"), 4),
            "overdue_after_s": num(completion.get("overdue_after_s"), 4),
            "model": prediction.get("model")}


def session_row(session: Mapping[str, Any]) -> dict[str, Any]:
    """A session in a few fields: which, what kind, how far, how likely to succeed."""
    attributes = dict(list((session.get("attributes") or {}).items())[:10])
    row: dict[str, Any] = {k: session.get(k) for k in (
        "id", "state", "status", "kind", "user", "started_ms", "ended_ms", "events")}
    row["duration_s"] = num(session.get("duration_s"), 4)
    row["attributes"] = {k: (str(v)[:200] if isinstance(v, str) else v)
                         for k, v in attributes.items()}
    row["prediction"] = prediction_row(session.get("prediction"))
    if session.get("change"):
        row["change"] = session["change"]
    return row


def downsample(timestamps: Sequence[int], values: Sequence[float | None],
               max_points: int) -> tuple[list[int], list[float | None]]:
    """At most `max_points` points: averages of equal runs (the step already bounds the
    count; this guards against a server that returns more than asked)."""
    n = len(values)
    if n <= max_points:
        return list(timestamps), [num(v) for v in values]
    size = math.ceil(n / max_points)
    ts_out: list[int] = []
    out: list[float | None] = []
    for start in range(0, n, size):
        chunk = [v for v in values[start:start + size] if v is not None]
        ts_out.append(int(timestamps[start]))
        out.append(num(sum(chunk) / len(chunk)) if chunk else None)
    return ts_out, out


def series_summary(values: Sequence[float | None]) -> dict[str, Any]:
    present = [v for v in values if v is not None]
    if not present:
        return {"points": 0}
    return {"points": len(present), "min": num(min(present)), "max": num(max(present)),
            "mean": num(sum(present) / len(present)), "first": num(present[0]),
            "last": num(present[-1])}


def compact_message(message: Mapping[str, Any], max_points: int = 20) -> dict[str, Any]:
    """A stream message without its envelope; a samples message cut to `max_points` per
    series (the newest)."""
    body = {k: v for k, v in message.items() if k not in ("type", "topic")}
    if message.get("type") == "samples":
        series = []
        for s in message.get("series", []):
            ts, vs = s["timestamps"][-max_points:], s["values"][-max_points:]
            series.append({"series": series_name(s["metric"], s["labels"]),
                           "timestamps": ts, "values": [num(v) for v in vs],
                           "cut": len(s["values"]) > max_points})
        body["series"] = series
    elif message.get("topic") == "sessions" and isinstance(message.get("session"), Mapping):
        body["session"] = session_row(message["session"])
    return body
