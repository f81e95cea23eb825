"""REST routes of the SLO stage: define SLOs, read their budgets, burn rates and status.

Thin: decode the JSON body, call `SLOEvaluator`, shape the reply. Viewers read; admins
create, replace and delete the SLOs made over the API (see `access.py`).
"""

from __future__ import annotations

from typing import Any

import msgspec
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from seismo.api.body import read_body
from seismo.errors import InvalidInput
from seismo.slo import SLOEvaluator

MAX_BODY_BYTES = 64 * 1024


def _evaluator(request: Request) -> SLOEvaluator:
    evaluator: SLOEvaluator = request.app.state.engine.slos
    return evaluator


async def _object(request: Request) -> dict[str, Any]:
    body = msgspec.json.decode(await read_body(request, MAX_BODY_BYTES))
    if not isinstance(body, dict):
        raise InvalidInput("body must be a JSON object: an SLO", field="body")
    return body


def build_slo_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["slos"])

    @router.get("/slos")
    async def list_slos(request: Request) -> dict[str, Any]:
        """Every SLO with its status, error budget remaining and burn rate per window."""
        return {"slos": await run_in_threadpool(_evaluator(request).list_status)}

    @router.post("/slos", status_code=201)
    async def create_slo(request: Request) -> dict[str, Any]:
        """Add an SLO (same fields as `slos:` in seismo.yaml); it is evaluated at once."""
        body = await _object(request)
        return await run_in_threadpool(_evaluator(request).put, body)

    @router.get("/slos/{name}")
    async def get_slo(request: Request, name: str) -> dict[str, Any]:
        """Budget remaining, burn rate and SLI per window, status, conditions, alerts."""
        return await run_in_threadpool(_evaluator(request).status, name)

    @router.put("/slos/{name}")
    async def replace_slo(request: Request, name: str) -> dict[str, Any]:
        """Replace an SLO made over the API."""
        body = await _object(request)
        body.setdefault("name", name)
        return await run_in_threadpool(lambda: _evaluator(request).put(body, name=name))

    @router.delete("/slos/{name}")
    async def delete_slo(request: Request, name: str) -> dict[str, Any]:
        """Delete an SLO made over the API; its alerts resolve."""
        await run_in_threadpool(_evaluator(request).delete, name)
        return {"deleted": name}

    return router
