"""Every route of the app × {no token, viewer, operator, admin}, against a real server.

The routes come from the app's own route table, so a route added without an access rule
fails here (and is refused at run time: access control fails closed).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.routing import RouteContext
from starlette.routing import Mount, Route, WebSocketRoute

from seismo.api.access import CHECKS_ROLES_ITSELF, PUBLIC, READS_BY_POST, RULES, WEBSOCKET
from seismo.auth import Role
from tests.auth.helpers import bearer, make_tokens, ws_close_code, ws_subscribe_stats, ws_url
from tests.server import ServerProcess

CALLERS = (None, "viewer", "operator", "admin")
EXPECTED_PUBLIC = {"/", "/ui", "/api/v1/health", "/docs", "/docs/oauth2-redirect", "/redoc",
                   "/openapi.json"}


def keys_of(context: RouteContext) -> list[tuple[str, str]]:
    """The (path template, method) pairs of one route, as RULES spells them."""
    route, path = context.original_route, context.path
    assert path is not None, f"route without a path: {route!r}"
    if isinstance(route, WebSocketRoute):
        return [(path, WEBSOCKET)]
    if isinstance(route, Route):
        return [(path, m) for m in sorted(context.methods or {"GET"}) if m != "HEAD"]
    if isinstance(route, Mount):  # everything under a mount shares the mount's rule
        return [(path, "GET")]
    raise AssertionError(f"unknown kind of route {route!r}: teach access control about it")


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess,
                                                                        dict[str, str]]]:
    data = tmp_path_factory.mktemp("matrix") / "data"
    secrets = make_tokens(data)
    srv = ServerProcess(data, "--no-collector").start()
    yield srv, secrets
    srv.stop()


def test_every_route_has_an_access_rule(route_keys: list[tuple[str, str]]) -> None:
    missing = [key for key in route_keys if key not in RULES]
    assert not missing, f"routes without an access rule in api/access.py RULES: {missing}"


def test_every_rule_is_for_a_route_that_exists(route_keys: list[tuple[str, str]]) -> None:
    stale = set(RULES) - set(route_keys)
    assert not stale, f"rules for routes that do not exist: {sorted(stale)}"


def test_the_rules_table_is_sane() -> None:
    for (path, method), rule in RULES.items():
        if rule == PUBLIC:
            assert path in EXPECTED_PUBLIC and method == "GET", (path, method)
            continue
        if method not in ("GET", WEBSOCKET) and path not in CHECKS_ROLES_ITSELF | READS_BY_POST:
            assert rule >= Role.OPERATOR, f"{method} {path} changes state: operator at least"
        if path.startswith(("/api/v1/tokens", "/api/v1/admin/")):
            assert rule == Role.ADMIN, f"{method} {path} must need admin"
    assert {path for (path, _), rule in RULES.items() if rule == PUBLIC} == EXPECTED_PUBLIC


def expected_denial(rule: Role | str, caller: str | None) -> int | None:
    """401 or 403 when `caller` may not call a route with `rule`, else None."""
    if rule == PUBLIC:
        return None
    if caller is None:
        return 401
    assert isinstance(rule, Role)
    return 403 if Role.parse(caller) < rule else None


@pytest.mark.parametrize("caller", CALLERS, ids=lambda c: c or "no-token")
def test_every_route_for_every_caller(
    route_keys: list[tuple[str, str]], secured: tuple[ServerProcess, dict[str, str]],
    caller: str | None,
) -> None:
    srv, secrets = secured
    headers = bearer(None if caller is None else secrets[caller])
    wrong: list[str] = []
    with httpx.Client(base_url=srv.url, timeout=10, headers=headers) as http:
        for path, method in route_keys:
            rule = RULES[(path, method)]
            denial = expected_denial(rule, caller)
            # Dummy path parameters: an id no token has, so that DELETE revokes nothing.
            url = re.sub(r"\{[^}]+\}", "999999", path)
            if method == WEBSOCKET:
                code, _ = ws_close_code(ws_url(srv, url), headers)
                got = None if code is None else code - 4000
                if got != denial:
                    wrong.append(f"WS {path}: close code {code}, wanted "
                                 f"{'open' if denial is None else 4000 + denial}")
                continue
            with http.stream(method, url) as reply:  # no body read: SSE would not end
                status = reply.status_code
            if denial is None and status in (401, 403):
                wrong.append(f"{method} {path}: {status}, wanted neither 401 nor 403")
            elif denial is not None and status != denial:
                wrong.append(f"{method} {path}: {status}, wanted {denial}")
    assert not wrong, f"as {caller or 'no token'}:\n" + "\n".join(wrong)


def test_a_viewer_can_subscribe_to_the_stream(
    route_keys: list[tuple[str, str]], secured: tuple[ServerProcess, dict[str, str]],
) -> None:
    if ("/api/v1/stream", WEBSOCKET) not in route_keys:
        pytest.skip("WebSocket /api/v1/stream is not there yet")
    srv, secrets = secured
    reply = ws_subscribe_stats(ws_url(srv), bearer(secrets["viewer"]))
    assert reply["type"] == "subscribed" and reply["topic"] == "stats"
    reply = ws_subscribe_stats(ws_url(srv, query=f"token={secrets['viewer']}"))
    assert reply["type"] == "subscribed"


def test_no_token_and_a_bad_token_close_the_stream_with_4401(
    secured: tuple[ServerProcess, dict[str, str]],
) -> None:
    srv, _ = secured
    assert ws_close_code(ws_url(srv)) == (
        4401, "missing token: send Authorization: Bearer <token>")
    assert ws_close_code(ws_url(srv, query="token=smo_wrong")) == (
        4401, "invalid or revoked token")


def test_the_openapi_document_lists_the_token_routes(
    secured: tuple[ServerProcess, dict[str, str]], tmp_path: Path,
) -> None:
    srv, _ = secured
    document = httpx.get(srv.url + "/openapi.json", timeout=10).json()
    paths = document["paths"]
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert document["security"] == [{"bearer": []}]
    assert "/api/v1/query_range" in paths  # routes of included routers are all there
    assert {"get", "post"} <= set(paths["/api/v1/tokens"])
    assert "delete" in paths["/api/v1/tokens/{token_id}"]
