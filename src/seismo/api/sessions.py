"""REST routes of the sessions stage: the list, per-kind statistics, one session.

Thin: read the query parameters, call `SessionService` off the event loop. Viewers may
read all three (see `access.py`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from seismo.engine import now_ms
from seismo.query.timeparse import parse_time_ms
from seismo.sessions import SessionService


def _sessions(request: Request) -> SessionService:
    service: SessionService = request.app.state.engine.sessions
    return service


def build_session_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["sessions"])

    @router.get("/sessions")
    async def list_sessions(
        request: Request,
        state: Annotated[list[str] | None, Query(
            description="active, finished or stale (repeat for several)")] = None,
        kind: str | None = None,
        user: str | None = None,
        start: Annotated[str | None, Query(
            description="sessions overlapping [start, end]: epoch ms, now, now-1h")] = None,
        end: str | None = None,
        sort: Annotated[str, Query(description="start or duration")] = "start",
        order: Annotated[str, Query(description="desc (default) or asc")] = "desc",
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        cursor: Annotated[str | None, Query(
            description="the `cursor` of the previous page")] = None,
    ) -> dict[str, Any]:
        """Sessions with their state, status, duration and predictions; `cursor` pages."""
        at = now_ms()
        start_ms = None if start is None else parse_time_ms(start, now_ms=at, default=0,
                                                             field="start")
        end_ms = None if end is None else parse_time_ms(end, now_ms=at, default=at,
                                                        field="end")
        service = _sessions(request)
        return await run_in_threadpool(lambda: service.list(
            state=state, kind=kind, user=user, start_ms=start_ms, end_ms=end_ms, sort=sort,
            order=order, limit=limit, cursor=cursor))

    @router.get("/sessions/stats")
    async def session_stats(request: Request) -> dict[str, Any]:
        """Per kind: live counts, success rate, duration percentiles; the success model
        and its calibration (Brier score, reliability bins)."""
        return await run_in_threadpool(_sessions(request).stats)

    @router.get("/sessions/{session_id}")
    async def get_session(request: Request, session_id: str) -> dict[str, Any]:
        """One session: timeline, metrics' window stats, anomalies, alerts, predictions."""
        service = _sessions(request)
        return await run_in_threadpool(lambda: service.get(session_id))

    return router
