"""MCP tools for alerts: active alerts, acknowledge, resolve, custom alerts, explain an
alert, silences and rules.

Acting on alerts and silences needs operator; changing rules needs admin. `explain_alert`
gathers what an on-call engineer looks at first: the rule and its expression, the values
of the alert's series around it, and the anomalies and events of that window.
"""

from __future__ import annotations

import asyncio
import math
from typing import Annotated, Any, Literal, TypedDict

from mcp.server.mcpserver import Context
from pydantic import Field

from seismo.alerting.expr import parse_expr
from seismo.auth import Role
from seismo.config import parse_duration_s
from seismo.engine import now_ms
from seismo.errors import InvalidInput, NotFound
from seismo.mcp import shape
from seismo.mcp.backend import Backend, Doc
from seismo.mcp.toolkit import Toolkit

Severity = Literal["critical", "high", "medium", "low", "info"]
AlertId = Annotated[str, Field(min_length=1, max_length=128,
                               description="the alert's id (fingerprint)")]
NOT_SERIES = ("alertname", "severity")
EXPLAIN_POINTS = 60
EXPLAIN_SERIES = 5


class Alerts(TypedDict):
    total: int
    by_state: dict[str, int]
    shown: int
    truncated: bool
    alerts: list[dict[str, Any]]


class AlertResult(TypedDict):
    alert: dict[str, Any]


class Explanation(TypedDict):
    alert: dict[str, Any]
    rule: dict[str, Any] | None
    window: dict[str, int]
    values: list[dict[str, Any]]
    anomalies: list[dict[str, Any]]
    events: list[dict[str, Any]]
    transitions: list[dict[str, Any]]


class Silences(TypedDict):
    shown: int
    truncated: bool
    silences: list[dict[str, Any]]


class SilenceResult(TypedDict):
    silence: dict[str, Any]


class Rules(TypedDict):
    total: int
    shown: int
    truncated: bool
    rules: list[dict[str, Any]]


class RuleResult(TypedDict):
    rule: dict[str, Any]


class Deleted(TypedDict):
    deleted: str


def alert_detail(alert: Doc) -> dict[str, Any]:
    row = shape.alert_row(alert)
    row.update(annotations=alert.get("annotations") or {}, episode=alert.get("episode"),
               resolved_ms=alert.get("resolved_ms"), ends_at_ms=alert.get("ends_at_ms"))
    return row


def _seconds(text: str, field: str) -> int:
    try:
        return int(parse_duration_s(text) * 1000)
    except ValueError as exc:
        raise InvalidInput(str(exc), field=field) from None


def series_selectors(rule: Doc | None, alert: Doc) -> list[str]:
    """Selectors of the alert's own series: each selector of the rule's expression, with
    the alert's series labels (its labels but alertname, severity and the rule's own)."""
    if rule is None:
        return []
    try:
        expr = parse_expr(str(rule["expr"]))
    except InvalidInput:
        return []
    own = set(NOT_SERIES) | set(rule.get("labels") or {})
    labels = {k: v for k, v in (alert.get("labels") or {}).items() if k not in own}
    out = []
    for selector in getattr(expr, "selectors", lambda: ())():
        metric = selector.metric_name()
        if metric is None:
            out.append(selector.text)
            continue
        narrow = shape.series_name(metric, {k: v.replace("\\", "\\\\").replace('"', '\\"')
                                            for k, v in labels.items()})
        out.append(narrow if labels else selector.text)
    return list(dict.fromkeys(out))


async def values_around(backend: Backend, selector: str, start_ms: int,
                        end_ms: int) -> list[dict[str, Any]]:
    """Up to EXPLAIN_SERIES series of a selector, EXPLAIN_POINTS points each."""
    matched = await backend.series(selector, EXPLAIN_SERIES + 1)
    if not matched or len(matched) > EXPLAIN_SERIES:
        return []
    step_s = max(1, math.ceil((end_ms - start_ms) / 1000 / (EXPLAIN_POINTS - 1)))
    reply = await backend.query_range(selector, str(start_ms), str(end_ms), f"{step_s}s",
                                      "avg", None)
    out = []
    for s in reply["series"]:
        ts, values = shape.downsample(s["timestamps"], s["values"], EXPLAIN_POINTS)
        out.append({"series": shape.series_name(s["metric"], s["labels"]),
                    "summary": shape.series_summary(values), "timestamps": ts,
                    "values": values})
    return out


def register(kit: Toolkit) -> None:
    backend = kit.backend

    @kit.tool(Role.VIEWER)
    async def get_active_alerts(
        ctx: Context,
        severity: Annotated[list[Severity] | None, Field(description="only these")] = None,
        rule: Annotated[str | None, Field(description="only this rule's alerts")] = None,
        include_pending: bool = True,
        limit: Annotated[int, Field(ge=1, le=shape.MAX_ROWS)] = 20,
    ) -> Alerts:
        """Alerts that are firing, acknowledged (or pending): counts by state first, then
        the most severe and most recent, with silenced/inhibited marks."""
        states = ["firing", "acknowledged"] + (["pending"] if include_pending else [])
        alerts = await backend.alerts(states, list(severity) if severity else None, rule, 1000)
        by_state: dict[str, int] = {}
        for a in alerts:
            by_state[a["state"]] = by_state.get(a["state"], 0) + 1
        shown, cut = shape.bounded(shape.by_severity(alerts), limit)
        return {"total": len(alerts), "by_state": by_state, "shown": len(shown),
                "truncated": cut, "alerts": [shape.alert_row(a) for a in shown]}

    @kit.tool(Role.OPERATOR)
    async def acknowledge_alert(ctx: Context, alert_id: AlertId,
                                comment: Annotated[str, Field(max_length=4096)] = ""
                                ) -> AlertResult:
        """Acknowledge a firing alert: stops its repeats and escalation."""
        principal = kit.caller(ctx)
        reply = await backend.acknowledge(alert_id, comment,
                                          None if principal is None else principal.name)
        return {"alert": alert_detail(reply)}

    @kit.tool(Role.OPERATOR)
    async def resolve_alert(ctx: Context, alert_id: AlertId,
                            comment: Annotated[str, Field(max_length=4096)] = ""
                            ) -> AlertResult:
        """Resolve an active alert by hand."""
        principal = kit.caller(ctx)
        reply = await backend.resolve(alert_id, comment,
                                      None if principal is None else principal.name)
        return {"alert": alert_detail(reply)}

    @kit.tool(Role.OPERATOR)
    async def create_alert(
        ctx: Context,
        name: Annotated[str, Field(min_length=1, max_length=128, description=(
            "the alert's name (its alertname label)"))],
        severity: Severity = "high",
        labels: dict[str, str] | None = None,
        annotations: Annotated[dict[str, str] | None, Field(description=(
            "e.g. {summary: ..., description: ...}"))] = None,
        ends_at: Annotated[str | None, Field(description=(
            "epoch ms when it resolves by itself; default: when resolved by hand"))] = None,
    ) -> AlertResult:
        """Raise a custom alert now; it is routed and notified like a rule's. Raising the
        same name and labels again refreshes it."""
        reply = await backend.raise_alert(name, labels or {}, annotations or {}, severity,
                                          ends_at)
        return {"alert": alert_detail(reply)}

    @kit.tool(Role.VIEWER)
    async def explain_alert(
        ctx: Context, alert_id: AlertId,
        before: Annotated[str, Field(description="how far back from when it fired")]
        = "30m",
        after: Annotated[str, Field(description="how long after it fired or resolved")]
        = "10m",
    ) -> Explanation:
        """Why an alert fired: the alert, its rule and expression, the values of its
        series around it (downsampled), and the anomalies and events in that window."""
        alert = await backend.alert(alert_id)
        rule = None
        if alert.get("source") == "rule":
            try:
                rule = await backend.rule(str(alert["rule"]))
            except NotFound:
                rule = None
        center = int(alert.get("fired_ms") or alert.get("started_ms") or now_ms())
        start_ms = center - _seconds(before, "before")
        end_ms = min(now_ms(), int(alert.get("resolved_ms") or center) + _seconds(after,
                                                                                 "after"))
        end_ms = max(end_ms, start_ms + 1000)
        selectors = series_selectors(rule, alert)
        values: list[dict[str, Any]] = []
        for found in await asyncio.gather(*(values_around(backend, s, start_ms, end_ms)
                                            for s in selectors[:2])):
            values.extend(found)
        anomaly_selector = selectors[0] if selectors else None
        anomalies, events = await asyncio.gather(
            backend.anomalies(anomaly_selector, None, 0.0, str(start_ms), str(end_ms), 10),
            backend.events(None, None, str(start_ms), str(end_ms), 10))
        return {
            "alert": alert_detail(alert),
            "rule": None if rule is None else {k: rule.get(k) for k in (
                "name", "expr", "resolve", "for", "keep_firing_for", "severity", "labels",
                "annotations", "source")},
            "window": {"start_ms": start_ms, "end_ms": end_ms}, "values": values,
            "anomalies": [shape.anomaly_row(a) for a in anomalies],
            "events": [shape.event_row(e) for e in events],
            "transitions": list(alert.get("transitions") or [])[-10:]}

    @kit.tool(Role.VIEWER)
    async def list_silences(
        ctx: Context, state: Literal["pending", "active", "expired"] | None = None,
        limit: Annotated[int, Field(ge=1, le=shape.MAX_ROWS)] = 50,
    ) -> Silences:
        """Silences (pending, active, expired) with their matchers and times."""
        shown, cut = shape.bounded(await backend.silences(state), limit)
        return {"shown": len(shown), "truncated": cut, "silences": shown}

    @kit.tool(Role.OPERATOR)
    async def add_silence(
        ctx: Context,
        matchers: Annotated[dict[str, str], Field(min_length=1, description=(
            'label → value, e.g. {"alertname": "HighCPU"}'))],
        comment: Annotated[str, Field(min_length=1, max_length=4096)],
        duration: Annotated[str | None, Field(description="e.g. 30m, 2h")] = "1h",
        ends_at: Annotated[str | None, Field(description=(
            "epoch ms or now+...; instead of duration"))] = None,
    ) -> SilenceResult:
        """Silence alerts whose labels match, for `duration` (or until `ends_at`)."""
        doc: dict[str, Any] = {"matchers": matchers, "comment": comment}
        if ends_at is not None:
            doc["ends_at"] = ends_at
        elif duration is not None:
            doc["duration"] = duration
        principal = kit.caller(ctx)
        return {"silence": await backend.add_silence(
            doc, None if principal is None else principal.name)}

    @kit.tool(Role.OPERATOR)
    async def expire_silence(ctx: Context, silence_id: Annotated[str, Field(min_length=1)]
                             ) -> SilenceResult:
        """End a silence now."""
        return {"silence": await backend.expire_silence(silence_id)}

    @kit.tool(Role.VIEWER)
    async def list_rules(ctx: Context,
                         limit: Annotated[int, Field(ge=1, le=shape.MAX_ROWS)] = 50) -> Rules:
        """Alert rules: name, expression, for, severity, where defined."""
        rules = await backend.rules()
        shown, cut = shape.bounded(rules, limit)
        return {"total": len(rules), "shown": len(shown), "truncated": cut,
                "rules": [{k: r.get(k) for k in ("name", "expr", "for", "severity",
                                                  "enabled", "source")} for r in shown]}

    @kit.tool(Role.ADMIN)
    async def create_rule(
        ctx: Context,
        name: Annotated[str, Field(min_length=1, max_length=128)],
        expr: Annotated[str, Field(min_length=1, description=(
            "e.g. cpu_usage > 90, rate(errors_total[1m]) > 5, anomaly(latency) > 0.8"))],
        severity: Severity = "medium",
        for_duration: Annotated[str, Field(description="the rule's `for`, e.g. 30s")] = "0s",
        resolve: Annotated[str | None, Field(description="resolve expression")] = None,
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
    ) -> RuleResult:
        """Add an alert rule (same fields as in seismo.yaml); a bad one is refused with the
        reason."""
        doc: dict[str, Any] = {"name": name, "expr": expr, "severity": severity,
                               "for": for_duration, "labels": labels or {},
                               "annotations": annotations or {}}
        if resolve is not None:
            doc["resolve"] = resolve
        return {"rule": await backend.put_rule(doc)}

    @kit.tool(Role.ADMIN, destructive=True)
    async def delete_rule(ctx: Context, name: Annotated[str, Field(min_length=1)]) -> Deleted:
        """Delete a rule made over the API (or MCP); its active alerts resolve."""
        await backend.delete_rule(name)
        return {"deleted": name}
