"""A server with no token refuses other web sites (CSRF) and DNS rebinding.

Finding of the security review: with no token, any page open in the user's browser could
POST to `http://127.0.0.1:8765` (a JSON body as text/plain needs no preflight) and act as
the anonymous admin, e.g. add a channel that sends every alert to the attacker; a page on
a rebound name could also read every reply.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from seismo.auth import TokenStore
from seismo.auth.browser import browser_problem
from tests.auth.helpers import ws_close_code, ws_url
from tests.server import ServerProcess


@pytest.mark.parametrize(("host", "origin", "refused"), [
    ("127.0.0.1:8765", None, False),
    ("localhost:8765", "http://localhost:8765", False),
    ("[::1]:8765", "http://[::1]:8765", False),
    ("127.0.0.1", "http://127.0.0.1", False),
    (None, None, False),  # HTTP/1.0 without Host: not a browser
    ("evil.example:8765", None, True),  # DNS rebinding
    ("evil.example", "http://evil.example", True),
    ("127.0.0.1:8765", "http://evil.example", True),  # another site's form or fetch
    ("127.0.0.1:8765", "http://127.0.0.1:9999", True),  # another port is another site
    ("127.0.0.1:8765", "https://127.0.0.1:8765", False),  # one port, one server (a TLS proxy)
    ("127.0.0.1:8765", "null", True),  # a sandboxed frame or a file:// page
    ("127.0.0.1:8765", "http://localhost:8765", True),
    ("127.0.0.1:8765", "https://grafana.example.com", False),  # listed in cors_origins
])
def test_browser_problem(host: str | None, origin: str | None, refused: bool) -> None:
    problem = browser_problem(host, origin, loopback_only=True,
                              cors_origins=["https://grafana.example.com"])
    assert (problem is not None) == refused, problem


def test_off_loopback_with_insecure_any_host_is_fine_but_not_another_origin() -> None:
    assert browser_problem("seismo.lan:8765", None, loopback_only=False) is None
    assert browser_problem("seismo.lan:8765", "http://seismo.lan:8765",
                           loopback_only=False) is None
    assert browser_problem("seismo.lan:8765", "http://evil.example",
                           loopback_only=False) is not None


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path_factory.mktemp("browser") / "data", "--no-collector",
                        env={"SEISMO_DETECT__ENABLED": "false"}).start()
    try:
        yield srv
    finally:
        srv.stop()


def test_another_site_cannot_act_as_the_anonymous_admin(server: ServerProcess) -> None:
    own = f"http://127.0.0.1:{server.port}"
    event = {"type": "deploy", "source": "csrf-check"}
    with httpx.Client(base_url=server.url, timeout=10) as client:
        forged = client.post("/api/v1/events", json=event,
                             headers={"Origin": "http://evil.example",
                                      "Content-Type": "text/plain"})
        assert forged.status_code == 403, forged.text
        assert "another site" in forged.json()["error"]
        channel = client.post("/api/v1/channels", headers={"Origin": "null"}, json={
            "name": "exfil", "type": "webhook", "url": "http://evil.example/hook"})
        assert channel.status_code == 403
        rebound = client.get("/api/v1/metric_names",
                             headers={"Host": f"evil.example:{server.port}"})
        assert rebound.status_code == 403
        assert "not a loopback name" in rebound.json()["error"]
        # Public routes stay public; the server's own pages and clients without a
        # browser's headers work as before.
        assert client.get("/api/v1/health", headers={"Host": "evil.example"}).status_code == 200
        assert client.post("/api/v1/events", json=event,
                           headers={"Origin": own}).status_code == 200
        assert client.get("/api/v1/metric_names",
                          headers={"Host": f"localhost:{server.port}"}).status_code == 200
        stored = client.get("/api/v1/events", params={"source": "csrf-check"}).json()
        assert len(stored["events"]) == 1, stored
        assert "exfil" not in client.get("/api/v1/channels").text
    code, reason = ws_close_code(ws_url(server), {"Origin": "http://evil.example"})
    assert code == 4403 and "another site" in reason
    assert ws_close_code(ws_url(server), {"Origin": own}) == (None, "")


def test_with_tokens_a_token_is_what_counts(tmp_path: Path) -> None:
    """Tokens are not cookies: a page cannot send one it does not have, so with auth on
    another origin with a valid token is fine (that is what cors_origins is for)."""
    data = tmp_path / "data"
    data.mkdir()
    store = TokenStore(data / "state.db")
    try:
        secret = store.create("ops", "admin")[1]
    finally:
        store.close()
    server = ServerProcess(data, "--no-collector").start()
    try:
        reply = httpx.get(server.url + "/api/v1/metric_names", timeout=10,
                          headers={"Origin": "http://other.example",
                                   "Authorization": f"Bearer {secret}"})
        assert reply.status_code == 200
        assert httpx.get(server.url + "/api/v1/metric_names", timeout=10,
                         headers={"Origin": "http://other.example"}).status_code == 401
    finally:
        server.stop()
