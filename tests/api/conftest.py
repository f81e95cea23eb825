"""Fixtures shared by the API tests."""

from __future__ import annotations

import pytest
from fastapi.routing import iter_route_contexts

from seismo.api.app import create_app
from seismo.config import load_settings
from seismo.engine import Engine
from tests.api.test_access_matrix import keys_of


@pytest.fixture(scope="module")
def route_keys(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, str]]:
    data = tmp_path_factory.mktemp("routes")
    engine = Engine(load_settings(None, {"data_dir": data, "collector": False}, environ={}))
    try:
        app = create_app(engine)
        # Included routers are lazy branches of app.routes; FastAPI's OpenAPI flattens
        # them the same way.
        return [key for context in iter_route_contexts(app.routes) for key in keys_of(context)]
    finally:
        engine.store.close()
        engine.events.close()
        engine.tokens.close()
