"""Which route of the app a request goes to, found the way the router itself finds it.

Middleware (timing, access control) runs before the router; it asks here for the route
template (`/api/v1/tokens/{token_id}`) rather than the raw path. FastAPI keeps included
routers as lazy branches of `app.routes`; `routes_of` flattens them like its OpenAPI does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from starlette.routing import BaseRoute, Match
from starlette.types import Scope

try:
    from fastapi.routing import iter_route_contexts
except ImportError:  # older FastAPI flattens included routers into app.routes itself
    def iter_route_contexts(routes: Sequence[Any]) -> Iterable[Any]:  # type: ignore[misc]
        return routes


_ROUTE_KEY = "seismo.route"
_UNKNOWN = object()
_FLAT: dict[int, tuple[list[BaseRoute], int, list[Any]]] = {}
"""Flattened routes per route list, rebuilt when the list grows: flattening on every
request took a third of the event loop's time under overload (bench/chaos/overload.py)."""
_FLAT_MAX = 8


def routes_of(app: Any) -> list[Any]:
    """Every route of `app` (included routers flattened), in the order the router tries them.

    Each has `path` (the full template), `methods` (None for WebSocket and mounts),
    `matches(scope)`, and `original_route` (the route as declared) on FastAPI ≥ 0.16x.
    """
    routes: list[BaseRoute] = getattr(getattr(app, "router", None), "routes", [])
    cached = _FLAT.get(id(routes))
    if cached is None or cached[0] is not routes or cached[1] != len(routes):
        cached = (routes, len(routes), list(iter_route_contexts(routes)))
        if len(_FLAT) >= _FLAT_MAX:  # test suites build many apps: keep the newest few
            del _FLAT[next(iter(_FLAT))]
        _FLAT[id(routes)] = cached
    return cached[2]


def matched_route(scope: Scope) -> Any | None:
    """The route that fully matches `scope` (path and method), or None (404 or 405).

    Found once per request (before the router runs) and remembered in the scope, so that
    every middleware asking gets the same answer for the price of one.
    """
    found = scope.get(_ROUTE_KEY, _UNKNOWN)
    if found is not _UNKNOWN:
        return found
    found = None
    for route in routes_of(scope.get("app")):
        match, _ = route.matches(scope)
        if match == Match.FULL:
            found = route
            break
    scope[_ROUTE_KEY] = found
    return found


def template_of(route: Any) -> str | None:
    """A route's path template, e.g. `/api/v1/tokens/{token_id}`."""
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else None
