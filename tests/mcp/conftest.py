from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.auth.helpers import make_tokens
from tests.mcp.helpers import seed
from tests.server import ServerProcess


@pytest.fixture(scope="package")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One real server with tokens (viewer, operator, admin) and data in it."""
    data = tmp_path_factory.mktemp("mcp") / "data"
    secrets = make_tokens(data)
    srv = ServerProcess(data, "--no-collector").start()
    try:
        yield {"server": srv, "tokens": secrets, **seed(srv, secrets["admin"])}
    finally:
        srv.stop()
