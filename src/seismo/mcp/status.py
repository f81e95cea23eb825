"""MCP tools for the whole server: status, start/stop monitoring, subscribe, dashboard.

Summaries first: a status is a few numbers, a dashboard a handful of counts and the top
few alerts and anomalies; `subscribe` pages through a topic's replay buffer by cursor
(MCP is request/response, so a client polls with the cursor it got back).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Annotated, Any, Literal, TypedDict, TypeVar

from mcp.server.mcpserver import Context
from pydantic import Field

from seismo.auth import Role
from seismo.errors import InvalidInput
from seismo.mcp import shape
from seismo.mcp.backend import Backend, Doc
from seismo.mcp.toolkit import Toolkit

T = TypeVar("T")
Topic = Literal["samples", "events", "anomalies", "alerts", "stats", "sessions"]
RATES = ("ingest_samples_per_s", "events_per_s", "anomalies_per_min",
         "alert_transitions_per_min", "stream_clients")


class Status(TypedDict):
    status: str
    version: str
    uptime_s: float
    series: int
    head_samples: int
    blocks: int
    queued_samples: int
    rates: dict[str, float | None]
    anomalies_open: int | None
    host: dict[str, float]
    monitoring: dict[str, Any]


class Monitoring(TypedDict):
    running: bool
    collectors: list[dict[str, Any]]
    processors: dict[str, bool]


class Updates(TypedDict):
    topic: str
    cursor: int
    latest_seq: int
    more: bool
    gap: dict[str, Any] | None
    count: int
    updates: list[dict[str, Any]]


class Dashboard(TypedDict):
    at_ms: int | None
    status: str
    series: int
    ingest_samples_per_s: float | None
    alerts: dict[str, Any] | None
    anomalies: dict[str, Any]
    slos: list[dict[str, Any]]
    models: dict[str, Any]
    host: dict[str, float]
    monitoring: dict[str, Any]


async def latest_stats(backend: Backend) -> Doc:
    """The newest `stats` message (rates, open anomalies, host vitals), or {}."""
    reply = await backend.recent("stats", {}, None, 1)
    messages = reply.get("messages") or []
    stats: Doc = messages[-1].get("stats", {}) if messages else {}
    return stats


async def optional(call: Awaitable[T]) -> T | None:
    """A part of a summary that a disabled stage (alerting, models) cannot give: None."""
    try:
        return await call
    except InvalidInput as exc:
        if exc.field in ("alerting", "models"):
            return None
        raise


def register(kit: Toolkit) -> None:
    backend = kit.backend

    @kit.tool(Role.VIEWER)
    async def get_status(ctx: Context) -> Status:
        """Health and live statistics in one call: version, uptime, store size, ingest and
        event rates, open anomalies, this host's vital signs and what seismo is watching."""
        health, stats, monitoring = await asyncio.gather(
            backend.health(), latest_stats(backend), backend.monitoring())
        store = health.get("store", {})
        return {"status": health.get("status", "unknown"), "version": health.get("version", ""),
                "uptime_s": float(health.get("uptime_s", 0.0)),
                "series": int(store.get("series", 0)),
                "head_samples": int(store.get("head_samples", 0)),
                "blocks": int(store.get("blocks", 0)),
                "queued_samples": int(store.get("queued_samples", 0)),
                "rates": {k: shape.num(stats.get(k), 4) for k in RATES},
                "anomalies_open": stats.get("anomalies_open"),
                "host": stats.get("host", {}), "monitoring": monitoring}

    @kit.tool(Role.OPERATOR)
    async def start_monitoring(ctx: Context) -> Monitoring:
        """Start what seismo watches by itself: the host collector (added when the server
        runs without it), other collectors, and the anomaly detectors on new samples."""
        reply = await backend.start_monitoring()
        return {"running": reply["running"], "collectors": reply["collectors"],
                "processors": reply["processors"]}

    @kit.tool(Role.OPERATOR)
    async def stop_monitoring(ctx: Context) -> Monitoring:
        """Stop the collectors and pause the anomaly detectors. Ingest, storage, alert
        rules, SLOs and model monitoring go on, so pushed data and configured alerts keep
        working."""
        reply = await backend.stop_monitoring()
        return {"running": reply["running"], "collectors": reply["collectors"],
                "processors": reply["processors"]}

    @kit.tool(Role.VIEWER)
    async def subscribe(
        ctx: Context,
        topic: Annotated[Topic, Field(description="what to follow")],
        cursor: Annotated[int | None, Field(ge=0, description=(
            "the `cursor` of the previous reply: updates after it; omit for the newest"))]
        = None,
        selector: Annotated[str | None, Field(description=(
            'series selector (samples needs one; anomalies may), e.g. cpu{host="a"}'))]
        = None,
        filters: Annotated[dict[str, list[str]] | None, Field(description=(
            "events: type, source; alerts: severity, state, rule; anomalies: kind, "
            "detector, state; sessions: kind, state"))] = None,
        limit: Annotated[int, Field(ge=1, le=100)] = 20,
    ) -> Updates:
        """Updates of a topic (samples of a series, events, anomalies, alert transitions,
        stats, sessions starting, changing and ending) since a cursor, from the live
        stream's replay buffer. Call again with the returned `cursor` to get what came
        after; `gap` says when some were lost."""
        spec: dict[str, Any] = dict(filters or {})
        if selector is not None:
            spec["selector"] = selector
        reply = await backend.recent(topic, spec, cursor, limit)
        updates = [shape.compact_message(m) for m in reply["messages"]]
        return {"topic": reply["topic"], "cursor": reply["cursor"],
                "latest_seq": reply["seq"], "more": reply["more"], "gap": reply["gap"],
                "count": len(updates), "updates": updates}

    @kit.tool(Role.VIEWER)
    async def dashboard_snapshot(ctx: Context) -> Dashboard:
        """A compact picture of now: series count, ingest rate, alerts by state and the
        most severe firing ones, open anomalies with the strongest, SLO statuses, models,
        host vitals and whether monitoring runs."""
        health, stats, monitoring = await asyncio.gather(
            backend.health(), latest_stats(backend), backend.monitoring())
        alerts, anomalies, slos, models = await asyncio.gather(
            optional(backend.alerts(["pending", "firing", "acknowledged"], None, None, 500)),
            backend.anomalies(None, "open", 0.0, None, None, 200),
            backend.slos(), optional(backend.models()))
        by_state: dict[str, int] = {}
        by_severity: dict[str, int] = {}
        for alert in alerts or []:
            by_state[alert["state"]] = by_state.get(alert["state"], 0) + 1
            if alert["state"] == "firing":
                sev = str(alert.get("severity"))
                by_severity[sev] = by_severity.get(sev, 0) + 1
        firing = [a for a in alerts or [] if a["state"] == "firing"]
        strongest = sorted(anomalies, key=lambda a: -float(a.get("score") or 0))
        return {
            "at_ms": stats.get("ts"), "status": health.get("status", "unknown"),
            "series": int(health.get("store", {}).get("series", 0)),
            "ingest_samples_per_s": shape.num(stats.get("ingest_samples_per_s"), 4),
            "alerts": None if alerts is None else {
                "by_state": by_state, "firing_by_severity": by_severity,
                "top_firing": [shape.alert_row(a) for a in shape.by_severity(firing)[:5]]},
            "anomalies": {"open": len(anomalies), "open_counted_up_to": 200,
                          "strongest": [shape.anomaly_row(a) for a in strongest[:5]]},
            "slos": [shape.slo_row(s) for s in slos[:20]],
            "models": {"count": None if models is None else len(models),
                       "names": None if models is None else [m["name"] for m in models[:20]]},
            "host": stats.get("host", {}), "monitoring": monitoring}
