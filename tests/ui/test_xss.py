"""Untrusted text in a real browser: label values, annotations and events that look like
HTML are shown as text on every tab that shows them, and never run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server import ServerProcess
from tests.ui.conftest import Watched, start_server

IMG = "<img src=x onerror=window.__xss=1>"
SCRIPT = "<script>window.__xss=1</script>"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = start_server(tmp_path_factory.mktemp("xss"))
    yield srv
    srv.stop()


def post(server: ServerProcess, path: str, body: dict[str, Any]) -> None:
    reply = httpx.post(f"{server.url}/api/v1/{path}", json=body, timeout=10)
    assert reply.status_code in (200, 201), reply.text


def assert_inert(page: Any, selector: str, *texts: str) -> None:
    """Each text shows literally inside `selector`, and nothing set `window.__xss`."""
    for text in texts:
        page.wait_for_function("([s, t]) => window.__xss !== undefined"
                               " || document.querySelector(s)?.innerText.includes(t)",
                               arg=[selector, text], timeout=10_000)
        assert page.evaluate("typeof window.__xss") == "undefined", f"{text} ran in {selector}"
    assert page.locator(f"{selector} img, {selector} script").count() == 0


def test_html_in_labels_annotations_and_events_is_shown_as_text(
        server: ServerProcess, watched: Watched, shots: Path) -> None:
    page = watched.page
    page.goto(server.url + "/")
    page.locator("#conn[data-state=live]").wait_for(state="attached", timeout=15_000)
    post(server, "ingest", {"samples": [{"metric": "xss_probe", "labels": {"who": IMG},
                                          "value": 1.0}]})
    post(server, "alerts", {"name": "XssProbe", "labels": {"who": SCRIPT, "img": IMG},
                            "annotations": {"summary": SCRIPT, "description": IMG},
                            "severity": "high"})
    post(server, "events", {"type": "deploy", "source": SCRIPT, "message": IMG,
                            "attributes": {"note": SCRIPT}})

    assert_inert(page, "#feed", f"who={SCRIPT}", IMG)  # Overview: the live feed

    page.click('nav [data-tab="alerts"]')
    assert_inert(page, "#alerts-table", "XssProbe", SCRIPT, f"img={IMG}")

    page.goto(server.url + "/#explorer?selector=xss_probe&range=15m")
    page.locator("#chart-explorer canvas").wait_for()
    assert_inert(page, "#tab-explorer", f'xss_probe{{who="{IMG}"}}')

    page.click('nav [data-tab="events"]')
    assert_inert(page, "#tab-events", SCRIPT, IMG, f"note={SCRIPT}")
    page.screenshot(path=str(shots / "xss-events.png"))
    assert page.evaluate("typeof window.__xss") == "undefined"
