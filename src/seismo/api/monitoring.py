"""REST routes that start and stop what seismo watches by itself (seed 001's start/stop
monitoring): the host collector, demo workloads and the detectors. Thin: call the engine.
Viewers read the state; operators start and stop (see `access.py`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from seismo.engine import Engine


def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def build_monitoring_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["monitoring"])

    @router.get("/monitoring")
    def monitoring(request: Request) -> dict[str, Any]:
        """Collectors (running or not) and stream processors (on or off)."""
        return _engine(request).monitoring()

    @router.post("/monitoring/start")
    async def start(request: Request) -> dict[str, Any]:
        """Start the host collector (added if the server runs without one) and the other
        workers; new samples reach the detectors again."""
        return await run_in_threadpool(_engine(request).start_monitoring)

    @router.post("/monitoring/stop")
    async def stop(request: Request) -> dict[str, Any]:
        """Stop the collectors and pause the detectors; ingest, alert rules, SLOs and
        models go on."""
        return await run_in_threadpool(_engine(request).stop_monitoring)

    return router
