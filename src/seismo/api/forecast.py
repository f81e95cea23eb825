"""REST route of the forecast stage: `GET /api/v1/forecast`.

Thin: parse the query parameters (each error names its field), call `ForecastService`, and
return its series. Viewers may call it (see `access.py`).
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from seismo.errors import InvalidInput
from seismo.forecast import ForecastService
from seismo.query.selector import parse_selector
from seismo.query.timeparse import parse_step_ms


def _service(request: Request) -> ForecastService:
    service: ForecastService = request.app.state.engine.forecasts
    return service


def _number(text: str | None, field: str) -> float | None:
    if text is None or text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        raise InvalidInput(f"{field} must be a number, not {text!r}", field=field) from None
    if not math.isfinite(value):
        raise InvalidInput(f"{field} must be a finite number", field=field)
    return value


def build_forecast_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["forecast"])

    @router.get("/forecast")
    async def forecast(
        request: Request,
        selector: Annotated[str, Query(description="series selector, such as disk_free")],
        horizon: Annotated[str, Query(description="how far ahead: 1h, 4h, 1d")] = "1h",
        step: Annotated[str | None, Query(description="default: horizon / 60, rounded "
                                                      "up to 1s, 1m, 5m, 1h...")] = None,
        history: Annotated[str | None, Query(description="history fitted; default: "
                                                         "1440 steps")] = None,
        threshold: Annotated[str | None, Query(description="when the forecast reaches "
                                                           "this value")] = None,
        level: Annotated[str | None, Query(description="prediction interval, 0.5..0.999; "
                                                       "default 0.8")] = None,
    ) -> dict[str, Any]:
        """Forecast of each selected series with a prediction interval, the backtest
        accuracy (MASE, sMAPE) and, with `threshold`, when it is reached."""
        parsed = parse_selector(selector)
        horizon_ms = parse_step_ms(horizon, field="horizon")
        if horizon_ms is None:
            raise InvalidInput("horizon is required, such as 1h", field="horizon")
        step_ms = parse_step_ms(step, field="step")
        history_ms = parse_step_ms(history, field="history")
        return await run_in_threadpool(
            _service(request).forecast, parsed, horizon_ms, step_ms=step_ms,
            history_ms=history_ms, threshold=_number(threshold, "threshold"),
            level=_number(level, "level"))

    return router
