"""A real Chromium (Debian's /usr/bin/chromium) driven by Playwright, and servers for it.

Skipped, not failed, when /usr/bin/chromium is absent (`make test` installs it).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.server import ServerProcess

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]
HOST = socket.gethostname()  # the host whose CPU and memory the `stats` topic reports
ENV = {"SEISMO_DETECT__ENABLED": "false", "SEISMO_STREAM__STATS_INTERVAL_S": "0.5"}
# What the browser itself logs when a server it talks to goes away on purpose.
NETWORK_NOISE = ("net::ERR_", "WebSocket connection to", "Failed to load resource")

if not CHROMIUM.exists():  # pragma: no cover - depends on the machine
    pytest.skip("/usr/bin/chromium is absent (apt-get install chromium)", allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api")


def write_config(path: Path) -> Path:
    """seismo.yaml with one rule the tests can fire."""
    path.write_text(yaml.safe_dump({
        "rules": [{"name": "HighCPU", "expr": 'cpu{host=~"web.*"} > 90', "resolve": "cpu < 80",
                   "severity": "critical",
                   "annotations": {"summary": "CPU {{ $value }}% on {{ $labels.host }}"}}],
        "alerting": {"tick_s": 0.05},
    }))
    return path


def start_server(tmp: Path, *args: str) -> ServerProcess:
    cfg = write_config(tmp / "seismo.yaml")
    return ServerProcess(tmp / "data", "--no-collector", "--config", str(cfg), *args,
                         env=ENV).start()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # Module scope: sync Playwright keeps an asyncio loop running in this thread while it
    # is open, which the asyncio tests of other packages must not meet.
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = start_server(tmp_path_factory.mktemp("ui"))
    yield srv
    srv.stop()


class Watched:
    """A page plus what it did: requests off loopback and console errors."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.foreign: list[str] = []
        self.errors: list[str] = []
        self.allow_network_errors = False
        page.on("request", self._on_request)
        page.on("websocket", lambda ws: self._on_request(ws))
        page.on("console", self._on_console)
        page.on("pageerror", lambda err: self.errors.append(f"pageerror: {err}"))

    def _on_request(self, request: Any) -> None:
        url = urlsplit(request.url)
        if url.scheme not in ("data", "blob", "about") and url.hostname != "127.0.0.1":
            self.foreign.append(request.url)

    def _on_console(self, message: Any) -> None:
        if message.type != "error":
            return
        if self.allow_network_errors and any(n in message.text for n in NETWORK_NOISE):
            return
        self.errors.append(message.text)

    def check(self) -> None:
        assert not self.foreign, f"requests left 127.0.0.1: {self.foreign}"
        assert not self.errors, f"console errors: {self.errors}"


@pytest.fixture
def watched(browser: Any) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    watched = Watched(context.new_page())
    yield watched
    context.close()
    watched.check()


@pytest.fixture(scope="session")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("screenshots")

