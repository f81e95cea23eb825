"""REST routes of model monitoring: registry, predictions, outcomes, metrics, drift, compare.

Thin: read the body under the size limit, call `ModelService`, shape the reply. A bad body
is refused whole (400 naming the field) before anything is queued; a full record queue is
429 with Retry-After. Access (viewer reads, operator records and registers) is in
`access.py`.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Query, Request, Response

from seismo.api.body import read_body
from seismo.errors import InvalidInput
from seismo.models import ModelService

WINDOW = Query(description="e.g. 15m, 1h, 7d; default models.evaluation_window")
PREDICTIONS_EXAMPLE = {"version": "v2", "items": [
    {"id": "req-1", "features": {"tenure": 14, "plan": "pro"}, "prediction": 1,
     "probability": 0.82, "latency_ms": 3.1}]}


def _service(request: Request) -> ModelService:
    engine = request.app.state.engine
    if not engine.settings.models.enabled:
        raise InvalidInput("model monitoring is disabled (models.enabled: false)",
                           field="models")
    service: ModelService = engine.models
    return service


def _max_body(request: Request) -> int:
    limit: int = request.app.state.engine.settings.limits.max_body_bytes
    return limit


def build_model_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["models"])

    @router.post("/models")
    async def register(request: Request, response: Response) -> dict[str, Any]:
        """Register a model version: `{name, version, task: classification|regression,
        metadata?}`. 201 when new; 200 with the stored version when it exists."""
        service = _service(request)
        body = msgspec.json.decode(await read_body(request, 256 * 1024))
        reply, created = await asyncio.to_thread(service.register, body)
        response.status_code = 201 if created else 200
        return reply

    @router.get("/models")
    def list_models(request: Request) -> dict[str, Any]:
        """Every registered model with its versions."""
        return {"models": _service(request).list_models()}

    @router.get("/models/{name}")
    def describe(request: Request, name: str) -> dict[str, Any]:
        """One model: versions with totals, features and their kinds, classes."""
        return _service(request).describe(name)

    @router.post("/models/{name}/predictions", openapi_extra={"requestBody": {
        "content": {"application/json": {"example": PREDICTIONS_EXAMPLE}}, "required": True}})
    async def predictions(request: Request, name: str) -> dict[str, Any]:
        """Record predictions `{version, items: [{id, features, prediction, probability?,
        latency_ms?, timestamp?}]}`; replies once they are durable."""
        service = _service(request)
        record = service.prepare_predictions(name, await read_body(request, _max_body(request)))
        return await asyncio.wrap_future(service.submit(record))

    @router.post("/models/{name}/outcomes")
    async def outcomes(request: Request, name: str) -> dict[str, Any]:
        """Record outcomes `{items: [{id, actual}]}`, joined to predictions by id; unknown
        ids are counted, listed and kept for a prediction that comes later."""
        service = _service(request)
        record = service.prepare_outcomes(name, await read_body(request, _max_body(request)))
        return await asyncio.wrap_future(service.submit(record))

    @router.get("/models/{name}/metrics")
    async def model_metrics(
        request: Request, name: str, version: str | None = None,
        window: Annotated[str | None, WINDOW] = None,
        end: Annotated[str | None, Query(description="epoch ms or now-1h")] = None,
    ) -> dict[str, Any]:
        """Accuracy, precision, recall, F1, AUC (or MAE, RMSE, MAPE), latency p50/p95/p99,
        volume and outcome coverage of a version (default: the newest) over a window."""
        return await asyncio.to_thread(_service(request).metrics, name, version, window, end)

    @router.get("/models/{name}/drift")
    async def drift(
        request: Request, name: str, version: str | None = None,
        window: Annotated[str | None, WINDOW] = None,
        reference: Annotated[str | None, Query(
            description="first (default), first:N, or <start>..<end>")] = None,
    ) -> dict[str, Any]:
        """Drift of each feature and of the predictions against a reference (PSI, KS,
        Jensen-Shannon, Wasserstein; chi-square for categories) and the metric's drop."""
        return await asyncio.to_thread(_service(request).drift, name, version, window,
                                       reference)

    @router.get("/models/{name}/compare")
    async def compare(
        request: Request, name: str, a: str, b: str,
        window: Annotated[str | None, WINDOW] = None,
        end: Annotated[str | None, Query(description="epoch ms or now-1h")] = None,
    ) -> dict[str, Any]:
        """Two versions on the same window: metrics, b − a, the better one, a p-value."""
        return await asyncio.to_thread(_service(request).compare, name, a, b, window, end)

    return router
