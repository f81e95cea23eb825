"""The dashboard in a real browser against a real server: live values, alerts acted on
from the page, reconnecting after a restart, polling when the WebSocket is blocked.

Every test also checks (in the `watched` fixture) that no request left 127.0.0.1 and that
the page logged no console error.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from tests.auth.helpers import make_tokens
from tests.server import ServerProcess
from tests.ui.conftest import ENV, HOST, Watched, start_server

FAST = "?retry_max_s=1&poll_s=1&poll_after=2"  # quick reconnects and polls (docs/dashboard.md)
TABS = ["overview", "alerts", "explorer", "anomalies", "slos", "models", "sessions", "energy",
        "events"]


def push(server: ServerProcess, metric: str, value: float, **labels: str) -> None:
    reply = httpx.post(server.url + "/api/v1/ingest", timeout=10, json={"samples": [
        {"metric": metric, "labels": labels, "value": value}]})
    assert reply.status_code == 200 and reply.json()["accepted"] == 1, reply.text


def push_host(server: ServerProcess, cpu: float, memory: float) -> None:
    push(server, "host_cpu_usage_percent", cpu, host=HOST, cpu="total")
    push(server, "host_memory_usage_percent", memory, host=HOST)


def card(page: Any, key: str) -> Any:
    return page.locator(f'[data-card="{key}"] .value')


def wait_text(page: Any, selector: str, text: str, timeout_s: float = 10) -> None:
    page.wait_for_function(
        "([s, t]) => document.querySelector(s)?.textContent.includes(t)",
        arg=[selector, text], timeout=timeout_s * 1000)


def wait_state(page: Any, *states: str, timeout_s: float = 15) -> str:
    page.wait_for_function("s => s.includes(document.getElementById('conn').dataset.state)",
                           arg=list(states), timeout=timeout_s * 1000)
    state: str = page.get_attribute("#conn", "data-state")
    return state


def test_overview_shows_live_values(ui_server: ServerProcess, watched: Watched,
                                    shots: Path) -> None:
    page = watched.page
    push_host(ui_server, 12.5, 40.25)
    page.goto(ui_server.url + "/")
    wait_state(page, "live")
    wait_text(page, '[data-card="cpu"] .value', "12.5 %")
    series_before = int(card(page, "series").inner_text())
    push_host(ui_server, 87.5, 61.75)
    push(ui_server, "brand_new_metric", 1.0)
    wait_text(page, '[data-card="cpu"] .value', "87.5 %")
    wait_text(page, '[data-card="memory"] .value', "61.8 %")
    page.wait_for_function(f"Number(document.querySelector('[data-card=series] .value')"
                           f".textContent) > {series_before}")
    assert "stale" not in (page.get_attribute('[data-card="cpu"]', "class") or "")
    assert page.locator("#chart-host canvas").count() == 1
    # The chart got the live points: its legend follows the cursor over real data.
    assert page.evaluate("document.querySelector('#chart-host .u-over') !== null")
    page.screenshot(path=str(shots / "overview.png"))


def test_alert_is_acknowledged_and_silenced_from_the_page(ui_server: ServerProcess,
                                                         watched: Watched,
                                                         shots: Path) -> None:
    page = watched.page
    page.goto(ui_server.url + "/#alerts")
    wait_state(page, "live")
    push(ui_server, "cpu", 50, host="web-7")
    push(ui_server, "cpu", 97, host="web-7")  # HighCPU fires; the row arrives by stream
    row = page.locator("#alerts-table tbody tr", has_text="web-7")
    row.locator(".state.firing").wait_for(timeout=10_000)
    wait_text(page, "#alerts-badge", "1")
    row.get_by_role("button", name="Acknowledge").click()
    row.locator(".state.acknowledged").wait_for(timeout=10_000)
    alert_id = row.get_attribute("data-id")
    detail = httpx.get(f"{ui_server.url}/api/v1/alerts/{alert_id}", timeout=10).json()
    assert detail["state"] == "acknowledged"
    assert detail["transitions"][-1]["comment"] == "from the dashboard"
    assert detail["ack_by"] == "anonymous"

    row.get_by_role("button", name="Silence").click()
    dialog = page.locator("#silence-dialog")
    dialog.locator("select[name=duration]").select_option("1h")
    dialog.locator("input[name=comment]").fill("maintenance window")
    dialog.get_by_role("button", name="Silence").click()
    silences = httpx.get(ui_server.url + "/api/v1/silences", timeout=10).json()["silences"]
    deadline = time.monotonic() + 10
    while not silences and time.monotonic() < deadline:
        time.sleep(0.05)
        silences = httpx.get(ui_server.url + "/api/v1/silences", timeout=10).json()["silences"]
    assert [s["comment"] for s in silences] == ["maintenance window"]
    page.screenshot(path=str(shots / "alerts-acknowledged.png"))

    page.locator("#alert-filters select[name=state]").select_option("resolved")
    push(ui_server, "cpu", 60, host="web-7")  # resolves: it moves to the history
    page.locator("#alerts-table tbody tr", has_text="web-7").locator(
        ".state.resolved").wait_for(timeout=10_000)


def test_every_tab_renders_in_both_themes_and_at_phone_width(
        ui_server: ServerProcess, watched: Watched, shots: Path) -> None:
    page = watched.page
    push_host(ui_server, 33.0, 44.0)
    page.goto(ui_server.url + "/")
    wait_state(page, "live")
    page.locator('nav [data-tab="overview"]').focus()
    page.keyboard.press("ArrowRight")  # keyboard: arrows move between tabs
    page.locator("#tab-alerts").wait_for(state="visible")
    assert page.evaluate("location.hash") == "#alerts"
    for name in TABS:
        page.click(f'nav [data-tab="{name}"]')
        page.locator(f"#tab-{name}").wait_for(state="visible")
        page.wait_for_load_state("networkidle")
        if name == "explorer":
            page.locator("#chart-explorer canvas").wait_for()
        if name in ("models", "slos", "sessions", "energy"):  # empty or not: it says something
            assert page.locator(f"#tab-{name} .content").inner_text().strip()
        page.screenshot(path=str(shots / f"{name}.png"))
    page.click("#theme-btn")
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    page.click('nav [data-tab="overview"]')
    page.screenshot(path=str(shots / "overview-dark.png"))
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(300)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    page.screenshot(path=str(shots / "overview-phone.png"), full_page=True)


def test_indicator_follows_a_server_restart(ui_server: ServerProcess, watched: Watched) -> None:
    page = watched.page
    watched.allow_network_errors = True  # the browser logs the refused connections itself
    page.goto(ui_server.url + "/" + FAST)
    wait_state(page, "live")
    push_host(ui_server, 21.0, 30.0)
    wait_text(page, '[data-card="cpu"] .value', "21.0 %")
    ui_server.kill()  # SIGKILL, then the same port and data dir again
    try:
        wait_state(page, "reconnecting", "polling", "offline", timeout_s=10)
        page.wait_for_selector('[data-card="cpu"].stale', timeout=5_000)  # not shown as live
    finally:
        ui_server.start()
    # Published before the page is back: it must still get them (no lost messages).
    httpx.post(ui_server.url + "/api/v1/events", timeout=10,
               json={"type": "restart-probe", "source": "ui-test"}).raise_for_status()
    httpx.post(ui_server.url + "/api/v1/alerts", timeout=10,
               json={"name": "AfterRestart", "severity": "high"}).raise_for_status()
    wait_state(page, "live", timeout_s=20)
    push_host(ui_server, 64.0, 30.0)
    wait_text(page, '[data-card="cpu"] .value', "64.0 %")
    page.wait_for_selector('[data-card="cpu"]:not(.stale)', timeout=5_000)
    wait_text(page, "#feed", "restart-probe")
    page.click('nav [data-tab="alerts"]')
    page.locator("#alerts-table tbody tr", has_text="AfterRestart").wait_for(timeout=10_000)


def test_polls_the_api_when_the_websocket_is_blocked(ui_server: ServerProcess,
                                                    watched: Watched) -> None:
    page = watched.page
    watched.allow_network_errors = True
    page.route_web_socket("**/api/v1/stream**", lambda ws: ws.close(code=1011))
    page.goto(ui_server.url + "/" + FAST)
    assert wait_state(page, "polling", timeout_s=15) == "polling"
    push_host(ui_server, 55.5, 50.0)
    wait_text(page, '[data-card="cpu"] .value', "55.5 %")
    page.wait_for_selector('[data-card="cpu"]:not(.stale)', timeout=5_000)
    push(ui_server, "cpu", 98, host="web-poll")  # alerts arrive by polling too
    page.click('nav [data-tab="alerts"]')
    page.locator("#alerts-table tbody tr", has_text="web-poll").wait_for(timeout=10_000)


def test_token_prompt_and_read_only_viewer(tmp_path: Path, watched: Watched) -> None:
    page = watched.page
    watched.allow_network_errors = True  # the 401s before the token is given
    secrets = make_tokens(tmp_path / "data")
    server = start_server(tmp_path)
    try:
        reply = httpx.post(server.url + "/api/v1/alerts", timeout=10, headers={
            "Authorization": f"Bearer {secrets['operator']}"}, json={"name": "BackupFailed"})
        assert reply.status_code in (200, 201), reply.text
        page.goto(server.url + "/#alerts")
        dialog = page.locator("#login-dialog")
        dialog.wait_for(state="visible")
        dialog.locator("input[name=token]").fill(secrets["viewer"])
        dialog.get_by_role("button", name="Sign in").click()
        dialog.wait_for(state="hidden")
        wait_state(page, "live")
        wait_text(page, "#who", "viewer")
        row = page.locator("#alerts-table tbody tr", has_text="BackupFailed")
        row.wait_for(timeout=10_000)
        assert row.get_by_role("button").count() == 0  # read-only: no actions offered
        assert "read-only" in row.inner_text()
        assert page.evaluate("sessionStorage.getItem('seismo.token')") == secrets["viewer"]
    finally:
        server.stop()


def post_events(server: ServerProcess, *events: dict[str, Any]) -> None:
    reply = httpx.post(server.url + "/api/v1/events", timeout=10, json={"events": list(events)})
    assert reply.status_code == 200, reply.text


def test_sessions_tab_lists_running_sessions_live(ui_server: ServerProcess, watched: Watched,
                                                  shots: Path) -> None:
    page = watched.page
    post_events(ui_server, {"type": "session.start",
                            "attributes": {"session": "s1", "kind": "etl"}})
    page.goto(ui_server.url + "/#sessions")
    wait_state(page, "live")
    rows = page.locator("#sessions-table tbody tr")
    rows.filter(has_text="s1").wait_for(timeout=10_000)
    page.locator('#session-kinds [data-kind="etl"]').wait_for(timeout=10_000)
    post_events(ui_server, {"type": "session.start",  # arrives by the `sessions` topic
                            "attributes": {"session": "s2", "kind": "train", "user": "ana"}})
    rows.filter(has_text="ana").wait_for(timeout=10_000)
    post_events(ui_server, {"type": "session.end",
                            "attributes": {"session": "s1", "status": "success"}})
    page.locator('#sessions-table tbody tr[data-id="s1"]').wait_for(state="detached",
                                                                     timeout=10_000)
    assert page.locator('#sessions-table tbody tr[data-id="s2"]').count() == 1
    page.locator("#session-filters select[name=kind]").focus()  # keyboard: a native select
    page.keyboard.press("Tab")
    page.screenshot(path=str(shots / "sessions.png"))


def test_energy_tab_shows_the_16_statistics(ui_server: ServerProcess, watched: Watched,
                                            shots: Path) -> None:
    page = watched.page
    now = int(time.time() * 1000)
    reply = httpx.post(ui_server.url + "/api/v1/ingest", timeout=10, json={"series": [
        {"metric": "machine_power_watts", "labels": {"machine": "m1"},
         "timestamps": [now - 600_000, now - 300_000, now], "values": [1000, 2000, 2000]}]})
    assert reply.json()["accepted"] == 3, reply.text
    page.goto(ui_server.url + "/#energy")
    page.locator("#energy-cards").wait_for(timeout=10_000)
    assert page.locator("#energy-cards .card").count() == 16
    assert page.locator('[data-stat="total_readings"] .value').inner_text() == "3"
    assert page.locator('[data-stat="peak_power"] .value').inner_text().startswith("2 ")
    assert page.locator('[data-stat="active_machines_today"] .value').inner_text().startswith(
        "1 ")
    row = page.locator('#tab-energy tr[data-machine="m1"]')
    assert "0.292" in row.inner_text()
    page.screenshot(path=str(shots / "energy-16.png"), full_page=True)
    page.click("#theme-btn")
    page.screenshot(path=str(shots / "energy-16-dark.png"), full_page=True)
    page.click('nav [data-tab="sessions"]')
    page.locator("#tab-sessions").wait_for(state="visible")
    page.screenshot(path=str(shots / "sessions-dark.png"))


def test_static_files_have_their_content_types(ui_server: ServerProcess) -> None:
    with httpx.Client(base_url=ui_server.url, timeout=10) as http:
        assert http.get("/").headers["content-type"].startswith("text/html")
        for path, kind in [("/ui/js/app.js", "text/javascript"), ("/ui/app.css", "text/css"),
                           ("/ui/vendor/uplot/uPlot.esm.js", "text/javascript"),
                           ("/ui/vendor/uplot/uPlot.min.css", "text/css")]:
            reply = http.get(path)
            assert reply.status_code == 200 and reply.headers["content-type"].startswith(kind)
        assert http.get("/ui/vendor/uplot/LICENSE").status_code == 200
        assert http.get("/ui/../../config.py").status_code == 404
    assert ENV["SEISMO_STREAM__STATS_INTERVAL_S"]
