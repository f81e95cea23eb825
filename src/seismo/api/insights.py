"""REST routes of the insights stage: ranked findings, and the running sessions' predictions.

Thin: read the query parameters, call `InsightService` off the event loop. Viewers may
read both (see `access.py`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from seismo.insights import InsightService


def _insights(request: Request) -> InsightService:
    service: InsightService = request.app.state.engine.insights
    return service


def build_insight_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["insights"])

    @router.get("/insights")
    async def insights(
        request: Request,
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
        selector: Annotated[str | None, Query(
            description="series examined for trends, capacity and anomaly rates; "
                        "default insights.selector")] = None,
    ) -> dict[str, Any]:
        """Findings, highest risk first: trends, capacity, SLO budgets, models, noisy
        rules, anomaly rates, running sessions; each with its numbers and a recommended
        action."""
        service = _insights(request)
        return await run_in_threadpool(lambda: service.findings(selector, limit))

    @router.get("/insights/jobs")
    async def jobs(request: Request) -> dict[str, Any]:
        """Running sessions with their predictions, the most urgent first: completion
        time, overdue, success probability (docs/sessions.md)."""
        return await run_in_threadpool(_insights(request).jobs)

    return router
