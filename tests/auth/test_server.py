"""Access control on a real server: tokens by header and `?token=`, the admin API, revoke
without restart, per-token ingest limits, CORS, and no secret in the log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus

from seismo.auth import TokenStore
from tests.auth.helpers import bearer, make_tokens, ws_close_code, ws_subscribe_stats, ws_url
from tests.server import ServerProcess

ORIGIN = "http://app.example"
DEFAULT_RATE = 1000  # limits.token_ingest_samples_per_s of the module's server


class Secured:
    def __init__(self, server: ServerProcess, secrets: dict[str, str]) -> None:
        self.server = server
        self.secrets = secrets
        self.used: list[str] = list(secrets.values())  # every secret sent to the server

    @property
    def url(self) -> str:
        return self.server.url

    def http(self, role: str | None = "admin") -> httpx.Client:
        return httpx.Client(base_url=self.url + "/api/v1", timeout=30,
                            headers=bearer(None if role is None else self.secrets[role]))

    def create(self, name: str, role: str, **extra: Any) -> dict[str, Any]:
        with self.http() as admin:
            reply = admin.post("/tokens", json={"name": name, "role": role, **extra})
        assert reply.status_code == 201, reply.text
        created: dict[str, Any] = reply.json()
        self.used.append(created["secret"])
        return created


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    data = tmp_path_factory.mktemp("secured") / "data"
    secrets = make_tokens(data)
    srv = ServerProcess(data, "--no-collector", "--log-level", "debug", env={
        "SEISMO_CORS_ORIGINS": json.dumps([ORIGIN]),
        "SEISMO_LIMITS__TOKEN_INGEST_SAMPLES_PER_S": str(DEFAULT_RATE),
    }).start()
    yield Secured(srv, secrets)
    srv.stop()


def seismo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "seismo", *args], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "COLUMNS": "200"})


def wait_for(status: int, request: Any, timeout_s: float = 3.0) -> float:
    """Seconds until `request()` answers `status`; fails after `timeout_s`."""
    started = time.monotonic()
    while True:
        got = request().status_code
        if got == status:
            return time.monotonic() - started
        assert time.monotonic() - started < timeout_s, f"still {got} after {timeout_s} s"
        time.sleep(0.05)


# -- tokens in requests -------------------------------------------------------------------

def test_401_without_a_token_403_with_a_low_role(secured: Secured) -> None:
    with secured.http(None) as anonymous, secured.http("viewer") as viewer:
        missing = anonymous.get("/series", params={"selector": "x"})
        assert missing.status_code == 401
        assert missing.headers["WWW-Authenticate"].startswith("Bearer")
        assert "missing token" in missing.json()["error"]
        assert viewer.get("/series", params={"selector": "x"}).status_code == 200
        low = viewer.post("/events", json={"type": "deploy"})
        assert low.status_code == 403
        assert low.json() == {"error": "token 'viewer' has role viewer; "
                                       "POST /api/v1/events needs operator"}
        assert anonymous.get("/health").status_code == 200


def test_token_in_the_query_string_for_http_and_websocket(secured: Secured) -> None:
    viewer = secured.secrets["viewer"]
    reply = httpx.get(secured.url + "/api/v1/series",
                      params={"selector": "nothing_here", "token": viewer}, timeout=10)
    assert reply.status_code == 200 and reply.json() == {"series": []}
    bad = httpx.get(secured.url + "/api/v1/series",
                    params={"selector": "x", "token": "smo_wrong"}, timeout=10)
    assert bad.status_code == 401 and 'error="invalid_token"' in bad.headers[
        "WWW-Authenticate"]
    assert ws_subscribe_stats(ws_url(secured.server, query=f"token={viewer}"))["type"] == (
        "subscribed")
    assert ws_close_code(ws_url(secured.server, query="token=smo_wrong"))[0] == 4401


def test_the_metrics_page_needs_a_viewer(secured: Secured) -> None:
    assert httpx.get(secured.url + "/metrics", timeout=10).status_code == 401
    reply = httpx.get(secured.url + "/metrics", headers=bearer(secured.secrets["viewer"]),
                      timeout=10)
    assert reply.status_code == 200 and "seismo_http_request_seconds" in reply.text
    # Latency is labelled by route template, 401s included.
    assert 'route="/api/v1/series",status="401"' in reply.text


# -- the admin API --------------------------------------------------------------------------

def test_create_list_and_revoke_over_the_api(secured: Secured) -> None:
    created = secured.create("api-made", "operator", ingest_samples_per_s=0)
    assert created["secret"].startswith("smo_")
    assert created["role"] == "operator" and created["active"] is True
    secret = created["secret"]
    with secured.http() as admin:
        listed = admin.get("/tokens")
        assert listed.status_code == 200
        [entry] = [t for t in listed.json()["tokens"] if t["name"] == "api-made"]
        assert set(entry) == {"id", "name", "role", "created_ms", "last_used_ms",
                              "revoked_ms", "active", "ingest_samples_per_s"}
        assert secret not in listed.text
        with httpx.Client(base_url=secured.url + "/api/v1", headers=bearer(secret),
                          timeout=10) as made:
            assert made.post("/events", json={"type": "api_token_check"}).status_code == 200
            revoked = admin.delete(f"/tokens/{created['id']}")
            assert revoked.status_code == 200
            assert revoked.json()["active"] is False and revoked.json()["revoked_ms"] > 0
            assert secret not in revoked.text
            # Revoked in the server's own process: refused at once.
            assert made.post("/events", json={"type": "api_token_check"}).status_code == 401


def test_revoking_an_unknown_token_is_404_and_a_bad_id_400(secured: Secured) -> None:
    with secured.http() as admin:
        assert admin.delete("/tokens/987654").status_code == 404
        bad = admin.delete("/tokens/abc")
        assert bad.status_code == 400 and bad.json()["field"] == "token_id"


@pytest.mark.parametrize(("method", "path", "field"), [
    ("DELETE", "/tokens/{id}", "token_id"),
    ("POST", "/outbox/{id}/retry", "notification_id"),
])
@pytest.mark.parametrize("row_id", ["18446744073709551615", "1098187848724392443904", "0"])
def test_row_id_past_64_bits_is_400_not_500(secured: Secured, method: str, path: str,
                                            field: str, row_id: str) -> None:
    """Found by tests/fuzz/test_openapi.py: sqlite3 raised OverflowError, a 500."""
    with secured.http() as admin:
        reply = admin.request(method, path.format(id=row_id))
        assert reply.status_code == 400 and reply.json()["field"] == field


@pytest.mark.parametrize(("body", "field"), [
    ({"name": "x1", "role": "root"}, "role"),
    ({"name": "bad name", "role": "viewer"}, "name"),
    ({"name": "viewer", "role": "viewer"}, "name"),          # taken by an active token
    ({"name": "x2", "role": "viewer", "ingest_samples_per_s": -5}, "ingest_samples_per_s"),
    ({"name": "x3", "role": "viewer", "secret": "mine"}, "secret"),  # unknown field
    ({"name": "x4"}, "role"),
    ({"name": 7, "role": "viewer"}, "name"),
])
def test_bad_token_requests_name_the_field_and_change_nothing(
    secured: Secured, body: dict[str, Any], field: str,
) -> None:
    with secured.http() as admin:
        before = admin.get("/tokens").json()
        reply = admin.post("/tokens", json=body)
        assert reply.status_code == 400, reply.text
        assert reply.json().get("field") == field or field in reply.json()["error"]
        assert admin.get("/tokens").json() == before


def test_only_admins_manage_tokens(secured: Secured) -> None:
    with secured.http("operator") as operator:
        assert operator.get("/tokens").status_code == 403
        assert operator.post("/tokens", json={"name": "sneaky", "role": "admin"}
                             ).status_code == 403


# -- other processes: the CLI while the server runs ---------------------------------------

def test_cli_revoke_takes_effect_within_a_second(secured: Secured) -> None:
    data_dir = str(secured.server.data_dir)
    done = seismo("token", "create", "--name", "cli-live", "--role", "viewer",
                  "--data-dir", data_dir)
    assert done.returncode == 0, done.stderr
    secret = done.stdout.strip()
    secured.used.append(secret)
    with httpx.Client(base_url=secured.url + "/api/v1", headers=bearer(secret),
                      timeout=10) as http:
        def get() -> httpx.Response:
            return http.get("/metric_names")

        wait_for(200, get)  # a token made by another process is known within ~1 s
        done = seismo("token", "revoke", "cli-live", "--data-dir", data_dir)
        assert done.returncode == 0, done.stderr
        assert wait_for(401, get) < 2.0


# -- per-token ingest limits ----------------------------------------------------------------

def samples(metric: str, n: int) -> dict[str, Any]:
    now = time.time_ns() // 1_000_000
    return {"series": [{"metric": metric, "timestamps": [now - 10 * n + 10 * i
                                                         for i in range(n)],
                        "values": [1.0] * n}]}


def test_a_token_over_its_rate_gets_429_and_nothing_is_stored(secured: Secured) -> None:
    secret = secured.create("slow-pusher", "operator", ingest_samples_per_s=10)["secret"]
    with httpx.Client(base_url=secured.url + "/api/v1", headers=bearer(secret),
                      timeout=10) as http, secured.http("viewer") as viewer:
        first = http.post("/ingest", json=samples("rl_first", 50))  # a big one is admitted
        assert first.status_code == 200 and first.json()["accepted"] == 50
        refused = http.post("/ingest", json=samples("rl_refused", 5))
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["Retry-After"]) <= 4  # debt 40 / 10 per s
        assert "slow-pusher" in refused.json()["error"]
        assert viewer.get("/series", params={"selector": "rl_refused"}).json() == {
            "series": []}
        # Other tokens have buckets of their own.
        with secured.http("operator") as operator:
            assert operator.post("/ingest", json=samples("rl_other", 5)).status_code == 200


def test_the_default_rate_applies_to_tokens_without_their_own(secured: Secured) -> None:
    secret = secured.create("default-pusher", "operator")["secret"]
    with httpx.Client(base_url=secured.url + "/api/v1", headers=bearer(secret),
                      timeout=10) as http:
        assert http.post("/ingest", json=samples("rl_default", 3 * DEFAULT_RATE)
                         ).status_code == 200
        refused = http.post("/ingest", json=samples("rl_default", 1))
        assert refused.status_code == 429
        assert int(refused.headers["Retry-After"]) >= 1


# -- CORS ----------------------------------------------------------------------------------

def test_cors_preflight_from_a_configured_origin_only(secured: Secured) -> None:
    preflight = {"Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization, content-type"}
    ok = httpx.options(secured.url + "/api/v1/ingest", timeout=10,
                       headers={"Origin": ORIGIN, **preflight})
    assert ok.status_code == 200
    assert ok.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "authorization" in ok.headers["Access-Control-Allow-Headers"].lower()
    other = httpx.options(secured.url + "/api/v1/ingest", timeout=10,
                          headers={"Origin": "http://evil.example", **preflight})
    assert "Access-Control-Allow-Origin" not in other.headers
    # A refused request still carries the header, so the page can read the 401.
    denied = httpx.get(secured.url + "/api/v1/series", params={"selector": "x"},
                       headers={"Origin": ORIGIN}, timeout=10)
    assert denied.status_code == 401
    assert denied.headers["Access-Control-Allow-Origin"] == ORIGIN


# -- logs ----------------------------------------------------------------------------------

def test_no_secret_reaches_the_server_log(secured: Secured) -> None:
    viewer = secured.secrets["viewer"]
    httpx.get(secured.url + "/api/v1/series", params={"selector": "x{", "token": viewer},
              timeout=10)  # a 400 path
    httpx.get(secured.url + "/api/v1/nowhere", params={"token": viewer}, timeout=10)
    httpx.get(secured.url + "/api/v1/series", params={"selector": "x"},
              headers=bearer(viewer), timeout=10)
    ws_close_code(ws_url(secured.server, query=f"token={viewer}&x=1"))
    with pytest.raises(InvalidStatus):  # no such route: the router refuses the handshake
        ws_close_code(ws_url(secured.server, "/api/v1/nowhere", query=f"token={viewer}"))
    ws_close_code(ws_url(secured.server), bearer(viewer))
    ws_close_code(ws_url(secured.server, query="token=smo_notarealtokenbutsecretish"))
    secured.used.append("smo_notarealtokenbutsecretish")
    time.sleep(0.3)
    log = secured.server.log.read_text()
    assert "WebSocket /api/v1/stream" in log  # the lines that used to print the URL
    for secret in secured.used:
        assert secret not in log
        assert secret[4:20] not in log


def test_the_state_db_keeps_no_secret(secured: Secured) -> None:
    store = TokenStore(secured.server.data_dir / "state.db")
    try:
        assert len(store.list()) >= 3
    finally:
        store.close()
    db = secured.server.data_dir
    raw = b"".join(p.read_bytes() for p in db.glob("state.db*"))
    for secret in secured.used:
        assert secret.encode() not in raw
