"""REST routes under /api/v1: ingest, query, events, health. Thin: parse, call the engine."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from seismo.api.access import principal_of
from seismo.api.body import read_body
from seismo.engine import Engine, now_ms
from seismo.ingest.schema import decode_events
from seismo.query.engine import AGGS, RangeQuery
from seismo.query.selector import parse_selector
from seismo.query.timeparse import parse_step_ms, parse_time_ms, parse_window_s, time_bounds

INGEST_EXAMPLE = {
    "series": [{"metric": "cpu_usage", "labels": {"host": "a"},
                "timestamps": [1700000000000, 1700000010000], "values": [0.5, 0.7]}]
}


def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def build_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1")

    @router.get("/health", tags=["health"])
    async def health(request: Request) -> dict[str, Any]:
        """Status, version, uptime and the state of the store."""
        # On the event loop, not queued behind busy worker threads (issue 12: it stays fast
        # under overload); engine.health() must stay a few reads, no lock and no I/O.
        return _engine(request).health()

    @router.post(
        "/ingest", tags=["ingest"],
        openapi_extra={"requestBody": {"content": {"application/json": {
            "example": INGEST_EXAMPLE}}, "required": True}},
    )
    async def ingest(request: Request) -> dict[str, Any]:
        """Store samples (columnar `series` or row `samples`); replies once they are durable."""
        engine = _engine(request)
        engine.check_ingest_room()  # refuse when full before reading the body
        body = await read_body(request, engine.settings.limits.max_body_bytes)
        return await engine.ingest(body, principal=principal_of(request))  # decoded off-loop

    @router.post("/admin/flush", tags=["admin"])
    def flush(request: Request) -> dict[str, Any]:
        """Cut the in-memory head into a Parquet block now."""
        return _engine(request).flush()

    @router.get("/series", tags=["query"])
    def series(
        request: Request,
        selector: Annotated[str, Query(description='e.g. cpu_usage{host=~"web.*"}')],
        limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
    ) -> dict[str, Any]:
        """Series that match a Prometheus series selector."""
        found = _engine(request).query.series(parse_selector(selector), limit)
        return {"series": found}

    @router.get("/metric_names", tags=["query"])
    def metric_names(request: Request) -> dict[str, Any]:
        """Every metric name seismo knows."""
        return {"metrics": _engine(request).store.index.metrics()}

    @router.get("/query", tags=["query"])
    def query(
        request: Request,
        selector: str,
        window: Annotated[str, Query(description="e.g. 5m")] = "5m",
    ) -> dict[str, Any]:
        """Latest value and window stats (count, mean, min, max, stddev, p50/95/99, rate)."""
        return {"series": _engine(request).query.instant(
            parse_selector(selector), parse_window_s(window), now_ms())}

    @router.get("/query_range", tags=["query"])
    def query_range(
        request: Request,
        selector: str,
        start: Annotated[str | None, Query(description="epoch ms, now, now-1h")] = None,
        end: Annotated[str | None, Query(description="epoch ms, now, now-5m")] = None,
        step: Annotated[str | None, Query(description="e.g. 60, 1m; default: range/500")] = None,
        agg: Annotated[str, Query(description="|".join(AGGS))] = "avg",
        group_by: Annotated[str | None, Query(description="labels, comma-separated")] = None,
        band: Annotated[bool, Query(description="add the detectors' expected band")] = False,
    ) -> dict[str, Any]:
        """Values of the selected series in step buckets, aggregated with `agg`."""
        at = now_ms()
        end_ms = parse_time_ms(end, now_ms=at, default=at, field="end")
        start_ms = parse_time_ms(start, now_ms=at, default=end_ms - 3_600_000, field="start")
        step_ms = parse_step_ms(step) or max(1000, (end_ms - start_ms) // 500)
        groups = None
        if group_by is not None:
            groups = tuple(name.strip() for name in group_by.split(",") if name.strip())
        q = RangeQuery(parse_selector(selector), start_ms, end_ms, step_ms, agg, groups)
        return {"series": _engine(request).query_range(q, band=band), "step_ms": step_ms}

    @router.post(
        "/events", tags=["events"],
        openapi_extra={"requestBody": {"content": {"application/json": {"example": {
            "type": "deploy", "source": "ci", "severity": "info",
            "attributes": {"version": "1.4.2"}}}}, "required": True}},
    )
    async def post_events(request: Request) -> dict[str, Any]:
        """Store one event or `{"events": [...]}`, durably; all or none."""
        engine = _engine(request)
        body = await read_body(request, engine.settings.limits.max_body_bytes)
        stored = engine.add_events(decode_events(body))
        return {"accepted": len(stored), "events": [e.to_dict() for e in stored]}

    @router.get("/events", tags=["events"])
    def get_events(
        request: Request,
        type: str | None = None,
        source: str | None = None,
        start: str | None = None,
        end: str | None = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    ) -> dict[str, Any]:
        """Events, newest first, filtered by type, source and time range."""
        events = _engine(request).events.query(
            type=type, source=source,
            **time_bounds(start, end, now_ms()),
            limit=limit,
        )
        return {"events": [e.to_dict() for e in events]}

    @router.get("/anomalies", tags=["anomalies"])
    def anomalies(
        request: Request,
        selector: Annotated[str | None, Query(description="series selector")] = None,
        kind: Annotated[list[str] | None, Query(description="spike, drop, level_shift, "
                                                "trend_change, outlier, pattern_change")] = None,
        min_score: Annotated[float, Query(ge=0, le=1)] = 0.0,
        start: str | None = None,
        end: str | None = None,
        state: Annotated[str | None, Query(description="open or closed")] = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    ) -> dict[str, Any]:
        """Anomalies (one per incident, newest first) overlapping the time range."""
        found = _engine(request).find_anomalies(
            None if selector is None else parse_selector(selector), kinds=kind,
            min_score=min_score, state=state, limit=limit,
            **time_bounds(start, end, now_ms()))
        return {"anomalies": [a.to_dict() for a in found]}

    @router.get("/anomalies/rates", tags=["anomalies"])
    def anomaly_rates(
        request: Request,
        selector: Annotated[str, Query(description="series selector")] = '{__name__=~".+"}',
    ) -> dict[str, Any]:
        """Share of scored points that were anomalous: overall and per series, highest first."""
        return _engine(request).anomaly_rates(parse_selector(selector))

    return router
