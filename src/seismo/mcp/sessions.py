"""MCP tools for sessions: list them, one session's detail, per-kind statistics.

They read `SessionService` (in this process) or `/api/v1/sessions` (a remote server), as
the dashboard's Sessions tab does; live changes come from `subscribe(topic="sessions")`.
Summaries first: a session's detail opens with counts, then at most `MAX_TIMELINE` events.
"""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any, Literal, TypedDict

from mcp.server.mcpserver import Context
from pydantic import Field

from seismo.auth import Role
from seismo.mcp import shape
from seismo.mcp.backend import Doc
from seismo.mcp.toolkit import Toolkit

State = Literal["active", "finished", "stale"]
MAX_TIMELINE = 20  # events shown of one session: the first few and the newest
FIRST_EVENTS = 5
MAX_DETAIL_ROWS = 10  # metrics, anomalies, alerts of one session
MAX_KINDS = 50


class SessionList(TypedDict):
    shown: int
    cursor: str | None
    generated_ms: int
    sessions: list[dict[str, Any]]


class SessionDetail(TypedDict):
    session: dict[str, Any]
    prediction: dict[str, Any] | None
    summary: dict[str, Any]
    timeline: list[dict[str, Any]]
    metrics: list[dict[str, Any]]
    anomalies: list[dict[str, Any]]
    alerts: list[dict[str, Any]]


class SessionStats(TypedDict):
    generated_ms: int
    kinds_total: int
    kinds: dict[str, Any]
    model: dict[str, Any]


def timeline_excerpt(events: list[Doc]) -> list[Doc]:
    """At most MAX_TIMELINE events, oldest first: the first few and the newest."""
    if len(events) <= MAX_TIMELINE:
        return events
    return events[:FIRST_EVENTS] + events[-(MAX_TIMELINE - FIRST_EVENTS):]


def metric_row(row: Doc) -> Doc:
    out: Doc = {"series": shape.series_name(str(row.get("metric")), row.get("labels") or {}),
                "value": shape.num(row.get("value"))}
    window = row.get("window")
    if isinstance(window, dict):
        out.update(shape.window_stats(window))
    return out


def model_summary(model: Doc) -> Doc:
    """The success model without its long tail: top weights cut to 10."""
    out = dict(model)
    if isinstance(out.get("top_weights"), dict):
        out["top_weights"] = dict(list(out["top_weights"].items())[:10])
    return out


def register(kit: Toolkit) -> None:
    backend = kit.backend

    @kit.tool(Role.VIEWER)
    async def list_sessions(
        ctx: Context,
        state: Annotated[list[State] | None, Field(description="default: every state")]
        = None,
        kind: Annotated[str | None, Field(description="e.g. train, etl")] = None,
        user: str | None = None,
        sort: Annotated[Literal["start", "duration"], Field(
            description="newest or longest first")] = "start",
        limit: Annotated[int, Field(ge=1, le=shape.MAX_ROWS)] = 20,
        cursor: Annotated[str | None, Field(description=(
            "the `cursor` of the previous reply: the next page"))] = None,
    ) -> SessionList:
        """Sessions (agent chats, training runs, ETL jobs ...) with state, status, duration
        and, for running ones, whether they are overdue, the expected remaining time and
        the probability of success. Page with the returned `cursor`."""
        reply = await backend.sessions(None if state is None else list(state), kind, user,
                                       sort, limit, cursor)
        rows = [shape.session_row(s) for s in reply["sessions"][:limit]]
        return {"shown": len(rows), "cursor": reply.get("cursor"),
                "generated_ms": reply["generated_ms"], "sessions": rows}

    @kit.tool(Role.VIEWER)
    async def get_session(
        ctx: Context,
        session_id: Annotated[str, Field(min_length=1, max_length=256)],
    ) -> SessionDetail:
        """One session: counts of its events by type and severity first, then its timeline
        (the first 5 and newest 15 events), its metrics' window stats, anomalies and alerts
        carrying its `session` label, and its completion and success estimates."""
        doc = await backend.session(session_id)
        timeline: list[Doc] = doc.get("timeline") or []
        by_type = Counter(str(e.get("type")) for e in timeline)
        by_severity = Counter(str(e.get("severity") or "info") for e in timeline)
        shown = timeline_excerpt(timeline)
        metrics = doc.get("metrics") or []
        anomalies = doc.get("anomalies") or []
        alerts = doc.get("alerts") or []
        return {
            "session": shape.session_row({**doc, "prediction": None}),
            "prediction": doc.get("prediction"),
            "summary": {
                "events": doc.get("events"), "events_linked": len(timeline),
                "events_shown": len(shown),
                "timeline_truncated": bool(doc.get("timeline_truncated"))
                or len(shown) < len(timeline),
                "by_type": dict(by_type.most_common(20)),
                "by_severity": dict(by_severity),
                "metrics": len(metrics), "anomalies": len(anomalies), "alerts": len(alerts)},
            "timeline": [shape.event_row(e) for e in shown],
            "metrics": [metric_row(m) for m in metrics[:MAX_DETAIL_ROWS]],
            "anomalies": [shape.anomaly_row(a) for a in anomalies[:MAX_DETAIL_ROWS]],
            "alerts": [shape.alert_row(a) for a in shape.by_severity(alerts)[:MAX_DETAIL_ROWS]],
        }

    @kit.tool(Role.VIEWER)
    async def session_stats(ctx: Context) -> SessionStats:
        """Per session kind: active, stale and finished counts, outcomes, success rate and
        duration percentiles; the success model and its calibration (Brier score against
        the base rate, reliability bins)."""
        reply = await backend.session_stats()
        kinds: Doc = reply.get("kinds") or {}
        busiest = sorted(kinds.items(), key=lambda kv: (-int(kv[1].get("active", 0)), kv[0]))
        return {"generated_ms": reply["generated_ms"], "kinds_total": len(kinds),
                "kinds": dict(busiest[:MAX_KINDS]),
                "model": model_summary(reply.get("model") or {})}
