"""The access middleware on a small app of its own, in process: rules, 401/403, WebSocket
close codes, fail-closed routes, `?token=` stripped, the principal in request.state."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from seismo.api.access import PUBLIC, WEBSOCKET, AccessControl, Rule, principal_of, take_token
from seismo.auth import Role, TokenStore

with warnings.catch_warnings():  # starlette 1.x would rather have httpx2; httpx works
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

RULES: dict[tuple[str, str], Rule] = {
    ("/open", "GET"): PUBLIC,
    ("/read", "GET"): Role.VIEWER,
    ("/write", "POST"): Role.OPERATOR,
    ("/items/{item_id}", "DELETE"): Role.ADMIN,
    ("/ws", WEBSOCKET): Role.VIEWER,
    ("/ws/admin", WEBSOCKET): Role.ADMIN,
}


async def whoami(request: Request) -> JSONResponse:
    principal = principal_of(request)
    return JSONResponse({
        "name": None if principal is None else principal.name,
        "role": None if principal is None else str(principal.role),
        "query": request.url.query, "params": dict(request.query_params),
    })


async def ws_echo(websocket: WebSocket) -> None:
    await websocket.accept()
    principal = principal_of(websocket)
    await websocket.send_json({"name": principal.name if principal else None,
                               "query": websocket.scope["query_string"].decode()})
    await websocket.close()


def build(tokens: TokenStore, *, require_tokens: bool = False) -> Starlette:
    app = Starlette(routes=[
        Route("/open", whoami), Route("/read", whoami), Route("/write", whoami,
                                                              methods=["POST"]),
        Route("/items/{item_id}", whoami, methods=["DELETE"]),
        Route("/norule", whoami),
        WebSocketRoute("/ws", ws_echo), WebSocketRoute("/ws/admin", ws_echo),
        WebSocketRoute("/ws/norule", ws_echo),
    ])
    app.add_middleware(AccessControl, tokens=tokens, require_tokens=require_tokens,
                       rules=RULES)
    return app


@pytest.fixture
def tokens(tmp_path: Path) -> Iterator[TokenStore]:
    store = TokenStore(tmp_path / "state.db")
    yield store
    store.close()


@pytest.fixture
def secrets(tokens: TokenStore) -> dict[str, str]:
    return {role: tokens.create(f"{role}-token", role)[1]
            for role in ("viewer", "operator", "admin")}


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def test_with_no_token_everything_is_open_as_the_anonymous_admin(tokens: TokenStore) -> None:
    client = TestClient(build(tokens))
    assert client.get("/read").json()["name"] == "anonymous"
    assert client.delete("/items/1").json()["role"] == "admin"
    with client.websocket_connect("/ws/admin") as ws:
        assert ws.receive_json()["name"] == "anonymous"


def test_off_loopback_auth_stays_on_with_no_token(tokens: TokenStore) -> None:
    client = TestClient(build(tokens, require_tokens=True))
    assert client.get("/open").status_code == 200
    assert client.get("/read").status_code == 401


def test_http_401_403_and_pass(tokens: TokenStore, secrets: dict[str, str]) -> None:
    client = TestClient(build(tokens))
    missing = client.get("/read")
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"] == 'Bearer realm="seismo"'
    assert missing.json() == {"error": "missing token: send Authorization: Bearer <token>"}
    bad = client.get("/read", headers=bearer("smo_nope"))
    assert bad.status_code == 401
    assert 'error="invalid_token"' in bad.headers["WWW-Authenticate"]
    assert bad.json()["error"] == "invalid or revoked token"
    low = client.post("/write", headers=bearer(secrets["viewer"]))
    assert low.status_code == 403
    assert low.json()["error"] == ("token 'viewer-token' has role viewer; "
                                   "POST /write needs operator")
    ok = client.post("/write", headers=bearer(secrets["operator"]))
    assert ok.status_code == 200 and ok.json()["name"] == "operator-token"
    assert client.delete("/items/7", headers=bearer(secrets["operator"])).status_code == 403
    assert client.delete("/items/7", headers=bearer(secrets["admin"])).status_code == 200
    assert client.head("/read", headers=bearer(secrets["viewer"])).status_code == 200
    assert client.head("/read").status_code == 401


def test_public_routes_need_no_token_and_ignore_a_bad_one(
    tokens: TokenStore, secrets: dict[str, str],
) -> None:
    client = TestClient(build(tokens))
    assert client.get("/open").json()["name"] is None
    assert client.get("/open", headers=bearer("smo_bad")).status_code == 200
    assert client.get("/open", params={"token": secrets["viewer"]}).json()["name"] == (
        "viewer-token")


def test_a_route_without_a_rule_is_refused_even_for_admin(
    tokens: TokenStore, secrets: dict[str, str],
) -> None:
    client = TestClient(build(tokens))
    for headers in ({}, bearer(secrets["admin"])):
        reply = client.get("/norule", headers=headers)
        assert reply.status_code == 403
        assert reply.json() == {"error": "no access rule for this route"}
    with client.websocket_connect("/ws/norule", headers=bearer(secrets["admin"])) as ws, \
            pytest.raises(WebSocketDisconnect) as closed:
        ws.receive_json()
    assert closed.value.code == 4403


def test_unknown_paths_and_methods_are_the_router_s_404_and_405(tokens: TokenStore,
                                                                secrets: dict[str, str]) -> None:
    client = TestClient(build(tokens))
    assert client.get("/nowhere").status_code == 404
    assert client.put("/write").status_code == 405


def test_token_in_the_query_string_works_and_is_removed(
    tokens: TokenStore, secrets: dict[str, str],
) -> None:
    client = TestClient(build(tokens))
    reply = client.get("/read", params={"a": "1", "token": secrets["viewer"], "b": "x y"})
    assert reply.status_code == 200
    assert reply.json()["name"] == "viewer-token"
    assert reply.json()["params"] == {"a": "1", "b": "x y"}
    assert "token" not in reply.json()["query"]
    assert client.get("/read", params={"token": "smo_nope"}).status_code == 401


def test_the_header_wins_over_the_query(tokens: TokenStore, secrets: dict[str, str]) -> None:
    client = TestClient(build(tokens))
    reply = client.post("/write", params={"token": secrets["admin"]},
                        headers=bearer(secrets["viewer"]))
    assert reply.status_code == 403


def test_websocket_close_codes(tokens: TokenStore, secrets: dict[str, str]) -> None:
    client = TestClient(build(tokens))
    cases = [("/ws", {}, 4401, "missing token"),
             ("/ws", bearer("smo_nope"), 4401, "invalid or revoked token"),
             ("/ws/admin", bearer(secrets["operator"]), 4403, "needs admin")]
    for path, headers, code, reason in cases:
        with client.websocket_connect(path, headers=headers) as ws, \
                pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == code
        assert reason in closed.value.reason
    with client.websocket_connect("/ws?token=" + secrets["viewer"]) as ws:
        assert ws.receive_json() == {"name": "viewer-token", "query": ""}
    with client.websocket_connect("/ws/admin", headers=bearer(secrets["admin"])) as ws:
        assert ws.receive_json()["name"] == "admin-token"


def test_take_token_leaves_other_parameters_byte_for_byte() -> None:
    scope = {"type": "http", "headers": [],
             "query_string": b"selector=cpu%7Bhost%3D%22a%22%7D&token=smo_x%2By&step=1m"}
    assert take_token(scope) == "smo_x+y"
    assert scope["query_string"] == b"selector=cpu%7Bhost%3D%22a%22%7D&step=1m"
    scope = {"type": "http", "headers": [(b"authorization", b"Basic abc")],
             "query_string": b"tokens=1"}
    assert take_token(scope) is None
    assert scope["query_string"] == b"tokens=1"
