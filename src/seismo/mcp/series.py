"""MCP tools for data: metric names, series, window stats, ranges, analytics, samples,
events and anomalies.

Ranges are downsampled on the server: the step is chosen so that no series has more than
`max_points` buckets, and a selector may pick at most `max_series` series (or groups).
"""

from __future__ import annotations

import asyncio
import math
from typing import Annotated, Any, Literal, TypedDict

from mcp.server.mcpserver import Context
from pydantic import BaseModel, Field

from seismo.auth import Role
from seismo.config import parse_duration_s
from seismo.engine import now_ms
from seismo.errors import InvalidInput
from seismo.mcp import shape
from seismo.mcp.toolkit import Toolkit
from seismo.query.timeparse import parse_step_ms, parse_time_ms

Selector = Annotated[str, Field(min_length=1, description=(
    'Prometheus series selector, e.g. cpu_usage{host=~"web.*"}'))]
ALL = '{__name__=~".+"}'
Agg = Literal["avg", "min", "max", "sum", "count", "p50", "p95", "p99", "rate"]


class Names(TypedDict):
    total: int
    shown: int
    truncated: bool
    metrics: list[str]


class SeriesList(TypedDict):
    shown: int
    truncated: bool
    series: list[str]


class Metrics(TypedDict):
    window: str
    total: int
    shown: int
    truncated: bool
    series: list[dict[str, Any]]


class Range(TypedDict):
    start_ms: int
    end_ms: int
    step_ms: int
    agg: str
    series_count: int
    series: list[dict[str, Any]]


class Analytics(TypedDict):
    window: str
    series: int
    series_with_data: int
    anomaly_rate: float | None
    anomalies_in_window: int
    open_anomalies: int
    top_movers: list[dict[str, Any]]
    recent_anomalies: list[dict[str, Any]]
    most_anomalous: list[dict[str, Any]]


class Rows(TypedDict):
    shown: int
    truncated: bool
    rows: list[dict[str, Any]]


class Stored(TypedDict):
    accepted: int
    rejected: int
    errors: list[dict[str, Any]]


class EventStored(TypedDict):
    accepted: int
    events: list[dict[str, Any]]


class Forecast(TypedDict):
    step_ms: int
    horizon_ms: int
    level: float
    series: list[dict[str, Any]]


class Sample(BaseModel):
    """One sample: metric, labels, value, and a timestamp (epoch ms; default now)."""

    metric: str
    value: float | None
    labels: dict[str, str] = Field(default_factory=dict)
    timestamp: int | None = None


def mover(row: dict[str, Any]) -> dict[str, Any] | None:
    """How far a series' latest value is from its window mean, in standard deviations."""
    w = row.get("window") or {}
    value, mean, std = row.get("value"), w.get("mean"), w.get("stddev")
    if value is None or mean is None or not w.get("count"):
        return None
    z = (value - mean) / std if std else 0.0
    change = (value - mean) / abs(mean) if mean else None
    return {"series": shape.series_name(row["metric"], row["labels"]), "value": shape.num(value),
            "mean": shape.num(mean), "stddev": shape.num(std), "z": shape.num(z, 3),
            "change": shape.num(change, 3), "min": shape.num(w.get("min")),
            "max": shape.num(w.get("max"))}


def register(kit: Toolkit) -> None:
    backend = kit.backend

    @kit.tool(Role.VIEWER)
    async def list_metrics(
        ctx: Context,
        match: Annotated[str | None, Field(description="only names containing this")] = None,
        limit: Annotated[int, Field(ge=1, le=1000)] = 200,
    ) -> Names:
        """Metric names seismo knows, sorted; `match` filters by substring."""
        names = sorted(await backend.metric_names())
        if match:
            names = [n for n in names if match in n]
        shown, cut = shape.bounded(names, limit)
        return {"total": len(names), "shown": len(shown), "truncated": cut, "metrics": shown}

    @kit.tool(Role.VIEWER)
    async def list_series(
        ctx: Context, selector: Selector,
        limit: Annotated[int, Field(ge=1, le=shape.MAX_ROWS)] = 50,
    ) -> SeriesList:
        """The series a selector matches, each as the selector that picks exactly it."""
        found = await backend.series(selector, limit + 1)
        shown, cut = shape.bounded(found, limit)
        return {"shown": len(shown), "truncated": cut,
                "series": [shape.series_name(s["metric"], s["labels"]) for s in shown]}

    @kit.tool(Role.VIEWER)
    async def get_metrics(
        ctx: Context, selector: Selector,
        window: Annotated[str, Field(description="e.g. 5m, 1h")] = "5m",
        limit: Annotated[int, Field(ge=1, le=shape.MAX_ROWS)] = 20,
    ) -> Metrics:
        """Latest value and window stats (count, mean, min, max, stddev, p50/p95/p99, rate)
        of each series the selector matches."""
        rows = sorted(await backend.instant(selector, window),
                      key=lambda r: shape.series_name(r["metric"], r["labels"]))
        shown, cut = shape.bounded(rows, limit)
        return {"window": window, "total": len(rows), "shown": len(shown), "truncated": cut,
                "series": [{"series": shape.series_name(r["metric"], r["labels"]),
                            "value": shape.num(r["value"]), "timestamp": r["timestamp"],
                            **shape.window_stats(r["window"])} for r in shown]}

    @kit.tool(Role.VIEWER)
    async def query_range(
        ctx: Context, selector: Selector,
        start: Annotated[str, Field(description="epoch ms, now or now-<duration>")]
        = "now-1h",
        end: Annotated[str, Field(description="epoch ms, now or now-<duration>")] = "now",
        step: Annotated[str | None, Field(description=(
            "bucket size, e.g. 1m; raised when needed to stay within max_points"))] = None,
        agg: Agg = "avg",
        group_by: Annotated[list[str] | None, Field(description="labels to group by")] = None,
        max_points: Annotated[int, Field(ge=2, le=shape.MAX_POINTS)] = 60,
        max_series: Annotated[int, Field(ge=1, le=shape.MAX_SERIES)] = 10,
    ) -> Range:
        """Values of the selected series in time buckets, downsampled to at most
        `max_points` per series, with min/max/mean/first/last of each series first."""
        at = now_ms()
        end_ms = parse_time_ms(end, now_ms=at, default=at, field="end")
        start_ms = parse_time_ms(start, now_ms=at, default=end_ms - 3_600_000, field="start")
        if end_ms <= start_ms:
            raise InvalidInput("end must be after start", field="end")
        needed = math.ceil((end_ms - start_ms) / (max_points - 1))
        step_ms = max(parse_step_ms(step) or 0, needed, 1000)
        step_ms = math.ceil(step_ms / 1000) * 1000
        if group_by is None:
            matched = await backend.series(selector, max_series + 1)
            if len(matched) > max_series:
                raise InvalidInput(
                    f"the selector matches more than {max_series} series; narrow it, or "
                    "aggregate with group_by (e.g. [] for one total series)", field="selector")
        reply = await backend.query_range(selector, str(start_ms), str(end_ms),
                                          f"{step_ms // 1000}s", agg, group_by)
        series = reply["series"]
        if len(series) > max_series:
            raise InvalidInput(f"the query gives {len(series)} groups, over max_series "
                               f"({max_series}); group by fewer labels", field="group_by")
        out = []
        for s in series:
            ts, values = shape.downsample(s["timestamps"], s["values"], max_points)
            out.append({"series": shape.series_name(s["metric"], s["labels"]),
                        "summary": shape.series_summary(values), "timestamps": ts,
                        "values": values})
        return {"start_ms": start_ms, "end_ms": end_ms, "step_ms": int(reply["step_ms"]),
                "agg": agg, "series_count": len(out), "series": out}

    @kit.tool(Role.VIEWER)
    async def get_analytics(
        ctx: Context,
        selector: Annotated[str, Field(min_length=1, description="series selector")] = ALL,
        window: Annotated[str, Field(description="e.g. 15m, 1h, 1d")] = "1h",
        top: Annotated[int, Field(ge=1, le=50)] = 10,
    ) -> Analytics:
        """Analytics over a window: the top movers (latest value farthest from the window
        mean, in standard deviations), recent anomalies, and the most anomalous series."""
        try:
            window_s = parse_duration_s(window)
        except ValueError as exc:
            raise InvalidInput(str(exc), field="window") from None
        start = str(now_ms() - int(window_s * 1000))
        rows, anomalies, open_anomalies, rates = await asyncio.gather(
            backend.instant(selector, window),
            backend.anomalies(selector, None, 0.0, start, None, 1000),
            backend.anomalies(selector, "open", 0.0, None, None, 1000),
            backend.anomaly_rates(selector))
        movers = [m for m in (mover(r) for r in rows) if m is not None]
        movers.sort(key=lambda m: -abs(m["z"] or 0.0))
        return {"window": window, "series": len(rows), "series_with_data": len(movers),
                "anomaly_rate": shape.num(rates.get("anomaly_rate"), 4),
                "anomalies_in_window": len(anomalies), "open_anomalies": len(open_anomalies),
                "top_movers": movers[:top],
                "recent_anomalies": [shape.anomaly_row(a) for a in anomalies[:top]],
                "most_anomalous": [
                    {"series": shape.series_name(r["metric"], r["labels"]),
                     "anomaly_rate": shape.num(r["anomaly_rate"], 4), "points": r["points"]}
                    for r in rates.get("series", [])[:top] if r.get("anomalous")]}

    @kit.tool(Role.OPERATOR)
    async def push_samples(
        ctx: Context,
        samples: Annotated[list[Sample], Field(min_length=1, max_length=10_000)],
    ) -> Stored:
        """Store samples (as POST /api/v1/ingest); replies once they are durable."""
        reply = await backend.ingest([s.model_dump(exclude_none=True) for s in samples])
        errors, _ = shape.bounded(reply.get("errors", []), 20)
        return {"accepted": reply["accepted"], "rejected": reply["rejected"], "errors": errors}

    @kit.tool(Role.OPERATOR)
    async def add_event(
        ctx: Context,
        type: Annotated[str, Field(min_length=1, description="e.g. deploy, incident")],
        source: str = "mcp",
        severity: Literal["critical", "high", "medium", "low", "info"] = "info",
        message: str = "",
        attributes: dict[str, Any] | None = None,
        timestamp: Annotated[int | None, Field(description="epoch ms; default now")] = None,
    ) -> EventStored:
        """Record an event (a deploy, a config change, an incident note), durably."""
        doc: dict[str, Any] = {"type": type, "source": source, "severity": severity,
                               "message": message, "attributes": attributes or {}}
        if timestamp is not None:
            doc["timestamp"] = timestamp
        reply = await backend.add_events([doc])
        return {"accepted": reply["accepted"],
                "events": [shape.event_row(e) for e in reply["events"]]}

    @kit.tool(Role.VIEWER)
    async def list_events(
        ctx: Context, type: str | None = None, source: str | None = None,
        start: Annotated[str | None, Field(description="e.g. now-1h")] = None,
        end: str | None = None,
        limit: Annotated[int, Field(ge=1, le=shape.MAX_ROWS)] = 20,
    ) -> Rows:
        """Events, newest first, filtered by type, source and time."""
        events = await backend.events(type, source, start, end, limit + 1)
        shown, cut = shape.bounded(events, limit)
        return {"shown": len(shown), "truncated": cut,
                "rows": [shape.event_row(e) for e in shown]}

    @kit.tool(Role.VIEWER)
    async def list_anomalies(
        ctx: Context,
        selector: Annotated[str | None, Field(description="series selector")] = None,
        state: Literal["open", "closed"] | None = None,
        min_score: Annotated[float, Field(ge=0, le=1)] = 0.0,
        start: Annotated[str | None, Field(description="e.g. now-1h")] = None,
        end: str | None = None,
        limit: Annotated[int, Field(ge=1, le=shape.MAX_ROWS)] = 20,
    ) -> Rows:
        """Anomalies (one per incident: kind, score, actual vs expected), newest first."""
        found = await backend.anomalies(selector, state, min_score, start, end, limit + 1)
        shown, cut = shape.bounded(found, limit)
        return {"shown": len(shown), "truncated": cut,
                "rows": [shape.anomaly_row(a) for a in shown]}

    @kit.tool(Role.VIEWER)
    async def forecast(
        ctx: Context, selector: Selector,
        horizon: Annotated[str, Field(description="how far ahead: 1h, 4h, 1d")] = "1h",
        step: Annotated[str | None, Field(description="default: horizon / 60")] = None,
        threshold: Annotated[float | None, Field(description=(
            "say when the forecast reaches this value"))] = None,
        level: Annotated[float | None, Field(ge=0.5, le=0.999, description=(
            "prediction interval, default 0.8"))] = None,
        max_points: Annotated[int, Field(ge=2, le=shape.MAX_POINTS)] = 30,
    ) -> Forecast:
        """Forecast of each selected series (as GET /api/v1/forecast): the model, its
        backtest accuracy (MASE, sMAPE), when it crosses `threshold`, and the forecast
        with its interval, downsampled to `max_points`."""
        reply = await backend.forecast(selector, horizon, step, threshold, level)
        out = []
        for s in reply["series"][:shape.MAX_SERIES]:
            ts, values = shape.downsample(s["timestamps"], s["values"], max_points)
            _, lower = shape.downsample(s["timestamps"], s["lower"], max_points)
            _, upper = shape.downsample(s["timestamps"], s["upper"], max_points)
            out.append({"series": shape.series_name(s["metric"], s["labels"]),
                        "model": s.get("model"), "mase": shape.num(s.get("mase"), 3),
                        "smape": shape.num(s.get("smape"), 3), "crosses": s.get("crosses"),
                        "summary": shape.series_summary(values), "timestamps": ts,
                        "values": values, "lower": lower, "upper": upper})
        return {"step_ms": int(reply["step_ms"]), "horizon_ms": int(reply["horizon_ms"]),
                "level": float(reply["level"]), "series": out}
