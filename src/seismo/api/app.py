"""The ASGI application: FastAPI at the edge, the engine behind it."""

from __future__ import annotations

import gc
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from seismo import __version__
from seismo.api import access, errors
from seismo.api.alerts import build_alert_router
from seismo.api.energy import build_energy_router
from seismo.api.forecast import build_forecast_router
from seismo.api.insights import build_insight_router
from seismo.api.limits import RequestLimits
from seismo.api.models import build_model_router
from seismo.api.monitoring import build_monitoring_router
from seismo.api.prometheus import build_prometheus_router
from seismo.api.protocols import build_protocol_router
from seismo.api.routes import build_router
from seismo.api.routing import matched_route, template_of
from seismo.api.sessions import build_session_router
from seismo.api.slos import build_slo_router
from seismo.api.stream import CaptureTransport, build_stream_router
from seismo.api.tokens import build_token_router
from seismo.api.ui import mount_ui
from seismo.engine import Engine
from seismo.mcp.http import mount as mount_mcp
from seismo.telemetry import Telemetry


class _Timing:
    """ASGI middleware: HTTP latency by route template, method and status."""

    def __init__(self, app: ASGIApp, telemetry: Telemetry) -> None:
        self.app = app
        self.telemetry = telemetry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self.telemetry.http_seconds.labels(
                scope["method"], _route_of(scope), str(status)
            ).observe(time.perf_counter() - started)


def _route_of(scope: Scope) -> str:
    route = matched_route(scope)
    return "unmatched" if route is None else template_of(route) or "other"


def _with_bearer(openapi: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    """FastAPI's OpenAPI document plus the bearer token scheme (the Authorize button)."""

    def document() -> dict[str, Any]:
        schema = openapi()
        schema.setdefault("components", {}).setdefault("securitySchemes", {"bearer": {
            "type": "http", "scheme": "bearer",
            "description": "a token from `seismo token create` (docs/security.md)"}})
        schema.setdefault("security", [{"bearer": []}])
        return schema

    return document


def create_app(engine: Engine, *, manage_engine: bool = True,
               freeze_gc: bool = False) -> FastAPI:
    """The seismo app; with `manage_engine`, it starts and stops the engine with itself.

    `freeze_gc` (the server process): once started, everything allocated so far (modules,
    the store's index, rules) is moved out of the garbage collector's sight. A full
    collection otherwise walks those few hundred thousand objects while holding the
    interpreter, stalling ingest requests for ~100 ms about once every few seconds.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if manage_engine:
            engine.start()
        if freeze_gc:
            gc.collect()
            gc.freeze()
        await engine.hub.start()
        mcp_sessions = run_mcp()  # the /mcp session manager's task group
        await mcp_sessions.__aenter__()
        try:
            yield
        finally:
            await mcp_sessions.__aexit__(None, None, None)
            await engine.hub.stop()
            if manage_engine:
                engine.stop()

    app = FastAPI(
        title="seismo", version=__version__, lifespan=lifespan,
        description="Real-time monitoring and analytics: ingest, store, query, watch.",
    )
    app.state.engine = engine
    app.openapi = _with_bearer(app.openapi)  # type: ignore[method-assign]
    errors.install(app)
    app.include_router(build_router())
    app.include_router(build_stream_router())
    app.include_router(build_token_router())
    app.include_router(build_alert_router())
    app.include_router(build_model_router())
    app.include_router(build_slo_router())
    app.include_router(build_forecast_router())
    app.include_router(build_monitoring_router())
    app.include_router(build_protocol_router())  # /write, /api/v1/write, /v1/metrics
    run_mcp = mount_mcp(app, engine)  # /mcp: streamable HTTP (docs/mcp.md)
    app.include_router(build_energy_router())
    app.include_router(build_insight_router())
    app.include_router(build_prometheus_router())  # /prometheus: docs/grafana.md
    app.include_router(build_session_router())

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(engine.telemetry.registry),
                        media_type=CONTENT_TYPE_LATEST)

    mount_ui(app)  # the dashboard at / and /ui/ (docs/dashboard.md)

    app.add_middleware(RequestLimits, limits=engine.settings.limits)  # inside access
    access.install(app, engine.tokens, engine.settings)  # inside _Timing: 401s are timed
    app.add_middleware(_Timing, telemetry=engine.telemetry)
    app.add_middleware(CaptureTransport)  # outermost: it needs the server's own `send`
    return app


