"""MCP over streamable HTTP at `/mcp` on the seismo server.

The endpoint is a route of the server's own app, so the access middleware checks the
bearer token first (a viewer gets in; each writing tool checks the role itself) and puts
the principal in `scope["state"]`, where the tools read it. Stateless JSON mode: every
POST is answered on its own, no session is kept between requests.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from fastapi import FastAPI
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
from mcp.server.transport_security import TransportSecuritySettings
from starlette.routing import Route

from seismo.auth import is_loopback
from seismo.engine import Engine
from seismo.mcp.local import EngineBackend
from seismo.mcp.server import build_server

PATH = "/mcp"


def mount(app: FastAPI, engine: Engine) -> Callable[[], AbstractAsyncContextManager[None]]:
    """Add `/mcp` to the app; returns the context manager its lifespan must run."""
    server, _ = build_server(EngineBackend(engine))
    host = engine.settings.host
    # On loopback the SDK refuses other Host/Origin headers (DNS rebinding: a web page
    # reaching 127.0.0.1 while no token is needed). Elsewhere a token is required anyway.
    security = None if is_loopback(host) else TransportSecuritySettings(
        enable_dns_rebinding_protection=False)
    server.streamable_http_app(stateless_http=True, json_response=True,
                               transport_security=security, host=host,
                               max_request_body_size=engine.settings.limits.max_body_bytes)
    sessions = server.session_manager
    app.router.routes.append(Route(PATH, endpoint=StreamableHTTPASGIApp(sessions),
                                   methods=["GET", "POST", "DELETE"]))
    return sessions.run
