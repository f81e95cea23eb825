"""Access control for every HTTP and WebSocket request, in one place, from one table.

A pure ASGI middleware: it finds the route a request goes to, looks up what that
(route, method) needs in RULES, checks the bearer token, and either passes the request on
with its principal in `scope["state"]` or answers 401/403 (a WebSocket is accepted, then
closed with 4401/4403). A route without a rule is refused, so a new route fails closed.
Auth is on while at least one token is active (or always, off loopback without
`--insecure`); while it is off every request runs as the anonymous admin.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import Final, Literal
from urllib.parse import unquote_plus

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from seismo.api.routing import matched_route, template_of
from seismo.auth import ANONYMOUS, Principal, Role, TokenStore, is_loopback, requires_tokens
from seismo.auth.browser import browser_problem
from seismo.config import Settings

PUBLIC: Final = "public"
WEBSOCKET: Final = "WS"  # the method of a WebSocket route in RULES
Rule = Role | Literal["public"]

# (route template, method) → the least role that may call it, or PUBLIC.
RULES: dict[tuple[str, str], Rule] = {
    ("/", "GET"): PUBLIC,
    ("/ui", "GET"): PUBLIC,  # the dashboard's static files (api/ui.py)
    ("/docs", "GET"): PUBLIC,
    ("/docs/oauth2-redirect", "GET"): PUBLIC,
    ("/redoc", "GET"): PUBLIC,
    ("/openapi.json", "GET"): PUBLIC,
    ("/api/v1/health", "GET"): PUBLIC,
    ("/api/v1/whoami", "GET"): Role.VIEWER,
    ("/metrics", "GET"): Role.VIEWER,
    ("/api/v1/series", "GET"): Role.VIEWER,
    ("/api/v1/metric_names", "GET"): Role.VIEWER,
    ("/api/v1/query", "GET"): Role.VIEWER,
    ("/api/v1/query_range", "GET"): Role.VIEWER,
    ("/api/v1/events", "GET"): Role.VIEWER,
    ("/api/v1/anomalies", "GET"): Role.VIEWER,
    ("/api/v1/anomalies/rates", "GET"): Role.VIEWER,
    ("/api/v1/stream", WEBSOCKET): Role.VIEWER,
    ("/api/v1/stream/sse", "GET"): Role.VIEWER,
    ("/api/v1/ingest", "POST"): Role.OPERATOR,
    ("/api/v1/events", "POST"): Role.OPERATOR,
    ("/write", "POST"): Role.OPERATOR,  # ingest protocols (docs/protocols.md)
    ("/api/v2/write", "POST"): Role.OPERATOR,
    ("/api/v1/write", "POST"): Role.OPERATOR,
    ("/v1/metrics", "POST"): Role.OPERATOR,
    ("/api/v1/admin/flush", "POST"): Role.ADMIN,
    ("/api/v1/tokens", "GET"): Role.ADMIN,
    ("/api/v1/tokens", "POST"): Role.ADMIN,
    ("/api/v1/tokens/{token_id}", "DELETE"): Role.ADMIN,
    ("/api/v1/alerts", "GET"): Role.VIEWER,
    ("/api/v1/alerts/{alert_id}", "GET"): Role.VIEWER,
    ("/api/v1/incidents", "GET"): Role.VIEWER,
    ("/api/v1/alert_groups", "GET"): Role.VIEWER,
    ("/api/v1/rules", "GET"): Role.VIEWER,
    ("/api/v1/rules/{name}", "GET"): Role.VIEWER,
    ("/api/v1/silences", "GET"): Role.VIEWER,
    ("/api/v1/channels", "GET"): Role.VIEWER,
    ("/api/v1/routes", "GET"): Role.VIEWER,
    ("/api/v1/outbox", "GET"): Role.VIEWER,
    ("/api/v1/alerts", "POST"): Role.OPERATOR,
    ("/api/v1/alerts/{alert_id}/ack", "POST"): Role.OPERATOR,
    ("/api/v1/alerts/{alert_id}/resolve", "POST"): Role.OPERATOR,
    ("/api/v1/silences", "POST"): Role.OPERATOR,
    ("/api/v1/silences/{silence_id}", "DELETE"): Role.OPERATOR,
    ("/api/v1/rules", "POST"): Role.ADMIN,
    ("/api/v1/rules/{name}", "PUT"): Role.ADMIN,
    ("/api/v1/rules/{name}", "DELETE"): Role.ADMIN,
    ("/api/v1/channels", "POST"): Role.ADMIN,
    ("/api/v1/channels/{name}", "PUT"): Role.ADMIN,
    ("/api/v1/channels/{name}", "DELETE"): Role.ADMIN,
    ("/api/v1/routes", "PUT"): Role.ADMIN,
    ("/api/v1/outbox/{notification_id}/retry", "POST"): Role.ADMIN,
    ("/api/v1/models", "GET"): Role.VIEWER,
    ("/api/v1/models/{name}", "GET"): Role.VIEWER,
    ("/api/v1/models/{name}/metrics", "GET"): Role.VIEWER,
    ("/api/v1/models/{name}/drift", "GET"): Role.VIEWER,
    ("/api/v1/models/{name}/compare", "GET"): Role.VIEWER,
    ("/api/v1/models", "POST"): Role.OPERATOR,  # a deploy pipeline registers its version
    ("/api/v1/models/{name}/predictions", "POST"): Role.OPERATOR,
    ("/api/v1/models/{name}/outcomes", "POST"): Role.OPERATOR,
    ("/api/v1/slos", "GET"): Role.VIEWER,
    ("/api/v1/slos/{name}", "GET"): Role.VIEWER,
    ("/api/v1/slos", "POST"): Role.ADMIN,
    ("/api/v1/slos/{name}", "PUT"): Role.ADMIN,
    ("/api/v1/slos/{name}", "DELETE"): Role.ADMIN,
    ("/api/v1/forecast", "GET"): Role.VIEWER,
    ("/api/v1/energy/stats", "GET"): Role.VIEWER,
    ("/api/v1/insights", "GET"): Role.VIEWER,
    ("/api/v1/insights/jobs", "GET"): Role.VIEWER,
    ("/api/v1/sessions", "GET"): Role.VIEWER,
    ("/api/v1/sessions/stats", "GET"): Role.VIEWER,
    ("/api/v1/sessions/{session_id}", "GET"): Role.VIEWER,
    ("/api/v1/stream/recent", "GET"): Role.VIEWER,
    ("/api/v1/monitoring", "GET"): Role.VIEWER,
    ("/api/v1/monitoring/start", "POST"): Role.OPERATOR,
    ("/api/v1/monitoring/stop", "POST"): Role.OPERATOR,
    # MCP (streamable HTTP) sends every call, read or write, as a POST: a viewer gets in,
    # and each tool that writes checks the caller's role itself (seismo/mcp/tools.py).
    ("/mcp", "GET"): Role.VIEWER,
    ("/mcp", "POST"): Role.VIEWER,
    ("/mcp", "DELETE"): Role.VIEWER,
    # Prometheus' query API (docs/grafana.md): Grafana POSTs long queries as forms; all read.
    ("/prometheus/api/v1/query", "GET"): Role.VIEWER,
    ("/prometheus/api/v1/query", "POST"): Role.VIEWER,
    ("/prometheus/api/v1/query_range", "GET"): Role.VIEWER,
    ("/prometheus/api/v1/query_range", "POST"): Role.VIEWER,
    ("/prometheus/api/v1/series", "GET"): Role.VIEWER,
    ("/prometheus/api/v1/series", "POST"): Role.VIEWER,
    ("/prometheus/api/v1/labels", "GET"): Role.VIEWER,
    ("/prometheus/api/v1/labels", "POST"): Role.VIEWER,
    ("/prometheus/api/v1/label/{name}/values", "GET"): Role.VIEWER,
    ("/prometheus/api/v1/metadata", "GET"): Role.VIEWER,
    ("/prometheus/api/v1/status/buildinfo", "GET"): Role.VIEWER,
}
CHECKS_ROLES_ITSELF: Final = frozenset({"/mcp"})
"""Routes whose writes are checked per operation by the handler, not by RULES alone."""
READS_BY_POST: Final = frozenset({
    "/prometheus/api/v1/query", "/prometheus/api/v1/query_range",
    "/prometheus/api/v1/series", "/prometheus/api/v1/labels"})
"""POST routes that change nothing (a form instead of a long URL), so a viewer may call."""

NO_RULE = "no access rule for this route"
CORS_HEADERS = ["Authorization", "Content-Type", "Content-Encoding", "Last-Event-ID"]


def principal_of(connection: HTTPConnection) -> Principal | None:
    """Whom a request runs as (None: a public route called without a valid token)."""
    principal: Principal | None = getattr(connection.state, "principal", None)
    return principal


def method_of(scope: Scope) -> str:
    """The method a request is looked up by in RULES: HEAD as GET, WebSocket as `WS`."""
    if scope["type"] == "websocket":
        return WEBSOCKET
    method: str = scope["method"]
    return "GET" if method == "HEAD" else method


def take_token(scope: Scope) -> str | None:
    """The request's bearer secret: `Authorization: Bearer`, else `?token=`.

    `token` parameters are removed from the scope's query string, so that no later log
    line (uvicorn's WebSocket lines print the URL) and no route ever sees them.
    """
    secret = None
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, credentials = value.decode("latin-1").partition(" ")
            # `Token` is how InfluxDB 2 clients (Telegraf's influxdb_v2 output) send it.
            if scheme.lower() in ("bearer", "token") and credentials.strip():
                secret = credentials.strip()
            break
    query: bytes = scope.get("query_string", b"")
    if b"token" in query:
        kept = []
        for part in query.split(b"&"):
            key, _, value = part.decode("latin-1").partition("=")
            if unquote_plus(key) != "token":
                kept.append(part)
            elif secret is None and value:
                secret = unquote_plus(value)
        scope["query_string"] = b"&".join(kept)
    return secret


class AccessControl:
    """ASGI middleware that enforces RULES; see the module docstring."""

    def __init__(self, app: ASGIApp, tokens: TokenStore, *, require_tokens: bool = False,
                 rules: Mapping[tuple[str, str], Rule] = RULES, loopback_only: bool = False,
                 cors_origins: Collection[str] = ()) -> None:
        self.app = app
        self.tokens = tokens
        self.require_tokens = require_tokens
        self.rules = rules
        self.loopback_only = loopback_only  # while no token: Host must be loopback
        self.cors_origins = cors_origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        secret = take_token(scope)
        route = matched_route(scope)
        if route is None:  # the router answers 404 or 405 and reveals nothing
            await self.app(scope, receive, send)
            return
        path, method = template_of(route), method_of(scope)
        rule = self.rules.get((path or "", method))
        if rule is None:
            await _deny(scope, receive, send, 403, NO_RULE)
            return
        principal = self._principal(secret)
        if principal is ANONYMOUS and rule != PUBLIC:  # auth off: no other site, no rebinding
            problem = browser_problem(_header(scope, b"host"), _header(scope, b"origin"),
                                      loopback_only=self.loopback_only,
                                      cors_origins=self.cors_origins)
            if problem is not None:
                await _deny(scope, receive, send, 403, problem)
                return
        if rule != PUBLIC:
            if principal is None:
                reason = ("invalid or revoked token" if secret else
                          "missing token: send Authorization: Bearer <token>")
                await _deny(scope, receive, send, 401, reason, invalid=bool(secret))
                return
            if not principal.may(rule):
                await _deny(scope, receive, send, 403,
                            f"token {principal.name!r} has role {principal.role}; "
                            f"{method} {path} needs {rule}")
                return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)

    def _principal(self, secret: str | None) -> Principal | None:
        if not self.require_tokens and not self.tokens.has_active():
            return ANONYMOUS
        return None if secret is None else self.tokens.authenticate(secret)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            text: str = value.decode("latin-1")
            return text
    return None


async def refuse(scope: Scope, receive: Receive, send: Send, status: int, reason: str,
                 *, headers: list[tuple[bytes, bytes]] | None = None,
                 **detail: object) -> None:
    """Answer `{"error": reason, **detail}` with `status` before any route runs; a WebSocket
    is accepted, then closed with 4000 + status and the reason."""
    if scope["type"] == "websocket":
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        await send({"type": "websocket.accept"})
        # A close reason has at most 123 bytes.
        text = reason.encode()[:123].decode(errors="ignore")
        await send({"type": "websocket.close", "code": 4000 + status, "reason": text})
        return
    body = json.dumps({"error": reason, **detail}).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


async def _deny(scope: Scope, receive: Receive, send: Send, status: int, reason: str,
                *, invalid: bool = False) -> None:
    """`refuse`, with the bearer challenge a 401 carries."""
    headers = []
    if status == 401:
        challenge = 'Bearer realm="seismo"' + (', error="invalid_token"' if invalid else "")
        headers.append((b"www-authenticate", challenge.encode()))
    await refuse(scope, receive, send, status, reason, headers=headers)


def install(app: FastAPI, tokens: TokenStore, settings: Settings) -> None:
    """Access control on every route and, with `cors_origins`, CORS around it."""
    app.add_middleware(AccessControl, tokens=tokens,
                       require_tokens=requires_tokens(settings.host, settings.insecure),
                       loopback_only=is_loopback(settings.host),
                       cors_origins=settings.cors_origins)
    if settings.cors_origins:
        # Outside access control, so that preflights (which carry no token) are answered
        # and 401/403 replies carry the CORS headers a browser needs to read them.
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins,
                           allow_methods=["GET", "POST", "PUT", "DELETE"],
                           allow_headers=CORS_HEADERS,
                           expose_headers=["Retry-After", "WWW-Authenticate"])
