from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.server import ServerProcess


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One real server process shared by the read-mostly integration tests."""
    srv = ServerProcess(tmp_path_factory.mktemp("shared") / "data", "--no-collector")
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url + "/api/v1", timeout=30) as c:
        yield c


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A server of the test's own, for tests that restart, kill or fill it."""
    srv = ServerProcess(tmp_path / "data", "--no-collector")
    yield srv
    srv.stop()
