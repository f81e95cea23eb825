"""Docs checked by tests: every setting, route and CLI command is documented."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from seismo.api.app import create_app
from seismo.api.routing import routes_of
from seismo.config import Settings, load_settings
from seismo.engine import Engine

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_every_setting_is_documented() -> None:
    text = (DOCS / "configuration.md").read_text()
    for name, field in Settings.model_fields.items():
        section = field.annotation
        if isinstance(section, type) and issubclass(section, BaseModel):
            assert f"(`{name}:`)" in text, f"section {name} is missing"
            names = [f"{name}.{sub}" for sub in section.model_fields]
        else:
            names = [name]
        for dotted in names:
            key = dotted.rsplit(".", 1)[-1]
            assert f"`{key}: <" in text, f"setting {dotted} is missing from docs/configuration.md"


def test_every_route_is_documented(tmp_path: Path) -> None:
    engine = Engine(load_settings(None, {"data_dir": tmp_path, "collector": False},
                                  environ={}))
    try:
        app = create_app(engine)
        text = (DOCS / "api.md").read_text()
        for route in routes_of(app):  # included routers flattened
            path = getattr(route, "path", "")
            if path.startswith("/api/") or path == "/metrics":
                assert path in text, f"route {path} is missing from docs/api.md"
    finally:
        engine.store.close()
        engine.events.close()
        engine.tokens.close()


def test_every_cli_command_is_documented() -> None:
    from seismo.cli import app

    text = (DOCS / "cli.md").read_text()
    for command in app.registered_commands:
        name = command.name or (command.callback.__name__ if command.callback else "")
        assert f"seismo {name}" in text, f"command {name} is missing from docs/cli.md"
    for group in app.registered_groups:
        assert group.typer_instance is not None
        for command in group.typer_instance.registered_commands:
            name = f"{group.name} {command.name}"
            assert f"seismo {name}" in text, f"command {name} is missing from docs/cli.md"
