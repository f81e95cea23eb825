"""`seismo token create|list|revoke` on a data dir, and `seismo serve` off loopback."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from seismo.auth import TokenStore
from tests.auth.helpers import bearer
from tests.server import ServerProcess, free_port


def seismo(*args: str, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "seismo", *args], capture_output=True,
                          text=True, timeout=timeout_s, env={**os.environ, "COLUMNS": "200"})


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_create_list_revoke(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    done = seismo("token", "create", "--role", "operator", "--name", "ci", "--data-dir", data)
    assert done.returncode == 0, done.stderr
    secret = done.stdout.strip()
    assert secret.startswith("smo_") and "\n" not in secret  # stdout: the secret alone
    assert "store the secret now" in done.stderr and secret not in done.stderr

    store = TokenStore(tmp_path / "data" / "state.db")
    principal = store.authenticate(secret)
    store.close()
    assert principal is not None and principal.name == "ci" and str(principal.role) == (
        "operator")

    seismo("token", "create", "--role", "viewer", "--name", "grafana", "--data-dir", data)
    listed = seismo("token", "list", "--data-dir", data)
    assert listed.returncode == 0, listed.stderr
    rows = [line for line in listed.stdout.splitlines() if " ci " in line or "grafana" in line]
    assert len(rows) == 2 and "operator" in rows[0] and "viewer" in rows[1]
    assert secret not in listed.stdout

    done = seismo("token", "revoke", "ci", "--data-dir", data)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "revoked token 1 'ci'"
    done = seismo("token", "revoke", "2", "--data-dir", data)
    assert done.stdout.strip() == "revoked token 2 'grafana'"
    listed = seismo("token", "list", "--data-dir", data)
    [row] = [line for line in listed.stdout.splitlines() if " ci " in line]
    # created, last used (authenticated above), revoked
    assert len(re.findall(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", row)) == 3


def test_list_with_no_tokens(tmp_path: Path) -> None:
    done = seismo("token", "list", "--data-dir", str(tmp_path / "data"))
    assert done.returncode == 0
    assert done.stdout.startswith("no tokens")


@pytest.mark.parametrize(("args", "code", "text"), [
    (["create", "--role", "root", "--name", "x"], 2, "role must be one of viewer, operator"),
    (["create", "--role", "viewer", "--name", "has space"], 2, "name 'has space' is invalid"),
    (["create", "--role", "viewer", "--name", "x", "--ingest-samples-per-s", "-1"], 2,
     "ingest_samples_per_s must be"),
    (["revoke", "nobody"], 1, "no active token named 'nobody'"),
    (["revoke", "99"], 1, "no token with id 99"),
])
def test_errors_are_one_line(tmp_path: Path, args: list[str], code: int, text: str) -> None:
    done = seismo("token", *args, "--data-dir", str(tmp_path / "data"))
    assert done.returncode == code
    assert text in one_error_line(done)


def test_a_name_in_use_is_refused(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    assert seismo("token", "create", "--role", "viewer", "--name", "ci",
                  "--data-dir", data).returncode == 0
    done = seismo("token", "create", "--role", "admin", "--name", "ci", "--data-dir", data)
    assert done.returncode == 2
    assert "an active token named 'ci' exists" in one_error_line(done)


# -- serve: loopback only while there is no token ------------------------------------------

def test_serve_off_loopback_without_a_token_exits_2(tmp_path: Path) -> None:
    done = seismo("serve", "--host", "0.0.0.0", "--port", str(free_port()), "--no-collector",
                  "--data-dir", str(tmp_path / "data"), timeout_s=30)
    assert done.returncode == 2
    line = one_error_line(done)
    assert "refusing to listen on 0.0.0.0 without access tokens" in line
    assert "--insecure" in line


def test_serve_off_loopback_with_insecure_starts(tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path / "data", "--no-collector", "--host", "0.0.0.0",
                        "--insecure").start()
    try:  # only loopback is contacted
        assert httpx.get(srv.url + "/api/v1/metric_names", timeout=10).status_code == 200
    finally:
        srv.stop()
    assert "warning: --insecure" in srv.log.read_text()


def test_serve_off_loopback_with_a_token_starts_and_never_falls_open(tmp_path: Path) -> None:
    data = tmp_path / "data"
    store = TokenStore(data / "state.db")
    _, secret = store.create("me", "admin")
    store.close()
    srv = ServerProcess(data, "--no-collector", "--host", "0.0.0.0").start()
    try:
        url = srv.url + "/api/v1/metric_names"
        assert httpx.get(url, timeout=10).status_code == 401
        assert httpx.get(url, headers=bearer(secret), timeout=10).status_code == 200
        # With the last token revoked, a server reachable off loopback stays closed.
        assert seismo("token", "revoke", "me", "--data-dir", str(data)).returncode == 0
        store = TokenStore(data / "state.db")
        assert not store.has_active()
        store.close()
        time.sleep(1.2)  # past the server's 1 s token cache: nothing may change
        assert httpx.get(url, timeout=10).status_code == 401
        assert httpx.get(srv.url + "/api/v1/health", timeout=10).status_code == 200
    finally:
        srv.stop()
