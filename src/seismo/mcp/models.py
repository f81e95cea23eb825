"""MCP tools for ML models and SLOs: status, record predictions and outcomes, metrics and
drift, SLO budgets.

Recording needs operator (like the REST routes); reading needs viewer. Metrics come back
as the model service computes them, with drift reduced to its verdict per feature.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal, TypedDict

from mcp.server.mcpserver import Context
from pydantic import BaseModel, Field

from seismo.auth import Role
from seismo.mcp import shape
from seismo.mcp.toolkit import Toolkit

ModelName = Annotated[str, Field(min_length=1, max_length=128, description="model name")]
MAX_ITEMS = 1000


class ModelsStatus(TypedDict):
    count: int
    models: list[dict[str, Any]]


class Recorded(TypedDict):
    model: str
    reply: dict[str, Any]


class Performance(TypedDict):
    model: str
    version: str
    task: str
    window: str
    metrics: dict[str, Any]
    drift: dict[str, Any] | None


class SLOStatus(TypedDict):
    count: int
    by_status: dict[str, int]
    slos: list[dict[str, Any]]


class Prediction(BaseModel):
    """One prediction: its id (joins the outcome), features, the prediction itself."""

    id: str | int
    prediction: float | str | bool
    features: dict[str, float | str | bool | None] = Field(default_factory=dict)
    probability: float | dict[str, float] | None = None
    latency_ms: float | None = None
    timestamp: Annotated[int | None, Field(description="epoch ms; default now")] = None


class Outcome(BaseModel):
    """The actual value (class or number) for a prediction id."""

    id: str | int
    actual: float | str | bool


def drift_summary(drift: dict[str, Any]) -> dict[str, Any]:
    """Drift reduced to verdicts: overall status, drifted features, the metric's change."""
    features = {name: f.get("status") for name, f in (drift.get("features") or {}).items()}
    perf = drift.get("performance") or {}
    return {"status": drift.get("status"), "drifted": drift.get("drifted", []),
            "features": dict(list(features.items())[:30]),
            "prediction": (drift.get("prediction") or {}).get("status"),
            "performance": {k: perf.get(k) for k in ("metric", "reference", "current",
                                                      "relative_change", "status")}}


def register(kit: Toolkit) -> None:
    backend = kit.backend

    @kit.tool(Role.VIEWER)
    async def ml_status(ctx: Context) -> ModelsStatus:
        """ML models being watched: name, task, versions, predictions held."""
        models = await backend.models()
        shown, _ = shape.bounded(models, shape.MAX_ROWS)
        return {"count": len(models), "models": [
            {"name": m["name"], "task": m["task"],
             "versions": [v.get("version") if isinstance(v, dict) else v
                          for v in m.get("versions", [])][-10:],
             "predictions": m.get("predictions", 0)} for m in shown]}

    @kit.tool(Role.OPERATOR)
    async def register_model(
        ctx: Context, name: ModelName,
        version: Annotated[str, Field(min_length=1, max_length=128)],
        task: Literal["classification", "regression"],
    ) -> Recorded:
        """Register a model version so that its predictions can be recorded."""
        reply = await backend.register_model({"name": name, "version": version, "task": task})
        return {"model": name, "reply": reply}

    @kit.tool(Role.OPERATOR)
    async def record_prediction(
        ctx: Context, model: ModelName,
        version: Annotated[str, Field(min_length=1)],
        predictions: Annotated[list[Prediction], Field(min_length=1, max_length=MAX_ITEMS)],
    ) -> Recorded:
        """Record predictions of a registered model version; replies once durable."""
        items = [p.model_dump(exclude_none=True) for p in predictions]
        return {"model": model,
                "reply": await backend.record_predictions(model, version, items)}

    @kit.tool(Role.OPERATOR)
    async def record_outcome(
        ctx: Context, model: ModelName,
        outcomes: Annotated[list[Outcome], Field(min_length=1, max_length=MAX_ITEMS)],
    ) -> Recorded:
        """Record actual outcomes, joined to predictions by id (unknown ids wait for a
        prediction that comes later)."""
        reply = await backend.record_outcomes(model, [o.model_dump() for o in outcomes])
        if isinstance(reply.get("unknown_ids"), list):
            reply["unknown_ids"] = reply["unknown_ids"][:20]
        return {"model": model, "reply": reply}

    @kit.tool(Role.VIEWER)
    async def ml_performance(
        ctx: Context, model: ModelName,
        version: Annotated[str | None, Field(description="default: the newest")] = None,
        window: Annotated[str | None, Field(description="e.g. 1h; default: the "
                                                        "server's evaluation window")] = None,
        drift: Annotated[bool, Field(description="also judge drift")] = True,
    ) -> Performance:
        """Performance of a model version over a window: accuracy, precision, recall, F1,
        AUC (or MAE, RMSE, MAPE), latency percentiles, volume, outcome coverage; and drift
        per feature."""
        metrics, drift_doc = await asyncio.gather(
            backend.model_metrics(model, version, window),
            backend.model_drift(model, version, window) if drift else asyncio.sleep(0))
        return {"model": model, "version": metrics["version"], "task": metrics["task"],
                "window": metrics["window"],
                "metrics": {k: (shape.num(v) if isinstance(v, float) else v)
                            for k, v in metrics.items()
                            if k not in ("model", "version", "task", "window")
                            and not isinstance(v, dict | list)},
                "drift": drift_summary(drift_doc) if isinstance(drift_doc, dict) else None}

    @kit.tool(Role.VIEWER)
    async def slo_status(
        ctx: Context,
        name: Annotated[str | None, Field(description="one SLO; default: all")] = None,
    ) -> SLOStatus:
        """SLOs: status, error budget remaining and burn rate per window."""
        slos = [await backend.slo(name)] if name else await backend.slos()
        by_status: dict[str, int] = {}
        for s in slos:
            by_status[str(s.get("status"))] = by_status.get(str(s.get("status")), 0) + 1
        rows = []
        for s in slos[:shape.MAX_ROWS]:
            row = shape.slo_row(s)
            if name:
                row["alerts"] = [shape.alert_row(a) for a in s.get("alerts", [])[:10]]
                row["conditions"] = s.get("conditions", [])
            rows.append(row)
        return {"count": len(slos), "by_status": by_status, "slos": rows}
