"""Sessions against a real server: restart in the middle, the stream, rules, bad input."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.server import ServerProcess

pytestmark = pytest.mark.timeout(60)
ENV = {"SEISMO_SESSIONS__REFRESH_INTERVAL_S": "0.2", "SEISMO_SESSIONS__MIN_HISTORY": "3"}


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("sessions") / "data", "--no-collector",
                           env=ENV).start()
    yield server
    server.stop()


def post_events(server: ServerProcess, *events: dict[str, Any]) -> httpx.Response:
    return httpx.post(server.url + "/api/v1/events", json={"events": list(events)}, timeout=10)


def event(type: str, session: str, at_ms: int | None = None, **attributes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"type": type, "source": "test",
                           "attributes": {"session": session, **attributes}}
    if at_ms is not None:
        doc["timestamp"] = at_ms
    return doc


def get(server: ServerProcess, path: str, **params: Any) -> httpx.Response:
    return httpx.get(server.url + "/api/v1" + path, params=params, timeout=10)


def wait_for(check: Callable[[], Any], timeout_s: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def test_a_session_survives_a_restart_in_its_middle(srv: ServerProcess) -> None:
    now = int(time.time() * 1000)
    assert post_events(srv, event("session.start", "r1", now - 5000, kind="train",
                                  user="ana"),
                       event("step", "r1", now - 4000)).status_code == 200
    httpx.post(srv.url + "/api/v1/ingest", timeout=10, json={"series": [
        {"metric": "tokens", "labels": {"session": "r1"}, "values": [5.0]}]})
    srv.kill()  # SIGKILL: no shutdown hook runs
    srv.start()
    assert get(srv, "/sessions/r1").json()["state"] == "active"
    assert post_events(srv, event("session.end", "r1", now,
                                  status="success")).status_code == 200
    doc = get(srv, "/sessions/r1").json()
    assert doc["state"] == "finished" and doc["status"] == "success"
    assert doc["duration_s"] == 5.0 and doc["user"] == "ana"
    assert [e["type"] for e in doc["timeline"]] == ["session.start", "step", "session.end"]
    assert [(m["metric"], m["window"]["count"]) for m in doc["metrics"]] == [("tokens", 1)]


def test_bad_input_gets_400_naming_the_field_and_unknown_ids_404(srv: ServerProcess) -> None:
    reply = post_events(srv, event("session.start", "ok"),
                        event("session.end", "ok", status="finished"))
    assert reply.status_code == 400
    assert reply.json()["field"] == "events[1].attributes.status"
    assert get(srv, "/sessions/ok").status_code == 404  # nothing was stored
    reply = get(srv, "/sessions", state="running")
    assert reply.status_code == 400 and reply.json()["field"] == "state"
    reply = get(srv, "/sessions", sort="size")
    assert reply.status_code == 400 and reply.json()["field"] == "sort"
    reply = get(srv, "/sessions/nope")
    assert reply.status_code == 404 and reply.json()["field"] == "id"


async def _next(ws: ClientConnection, types: set[str]) -> dict[str, Any]:
    async with asyncio.timeout(5):
        while True:
            message = json.loads(await ws.recv())
            if message["type"] in types:
                return message


async def test_stream_resumes_the_sessions_topic_from_since(srv: ServerProcess) -> None:
    url = srv.url.replace("http://", "ws://") + "/api/v1/stream"
    async with connect(url) as ws:
        await ws.send(json.dumps({"op": "subscribe", "topic": "sessions", "kind": "resume"}))
        await _next(ws, {"subscribed"})
        await asyncio.to_thread(post_events, srv, event("session.start", "w1", kind="resume"),
                                event("session.start", "w-other", kind="other"))
        first = await _next(ws, {"start", "update", "end"})
    assert first["type"] == "start" and first["session"]["id"] == "w1"
    assert first["topic"] == "sessions" and first["session"]["state"] == "active"
    await asyncio.to_thread(post_events, srv, event("step", "w1"),
                            event("session.end", "w1", status="failure"))
    async with connect(url) as ws:
        await ws.send(json.dumps({"op": "subscribe", "topic": "sessions", "kind": "resume",
                                  "since": first["seq"]}))
        missed = [await _next(ws, {"start", "update", "end"}) for _ in range(2)]
    assert [(m["type"], m["session"]["state"]) for m in missed] == [
        ("update", "active"), ("end", "finished")]
    assert missed[1]["session"]["status"] == "failure"
    assert first["seq"] < missed[0]["seq"] < missed[1]["seq"]
    # the same over SSE, filtered by state
    with httpx.stream("GET", srv.url + "/api/v1/stream/sse", timeout=10, params={
            "topic": "sessions", "state": "finished", "since": 0}) as response:
        for line in response.iter_lines():
            if line.startswith("data: "):
                data = json.loads(line[6:])
                if data.get("type") in ("start", "update", "end"):
                    break
    assert data["type"] == "end" and data["session"]["state"] == "finished"


def test_an_overdue_rule_fires_on_the_session_series(srv: ServerProcess) -> None:
    rule = {"name": "SessionOverdue", "expr": "session_overdue > 0", "severity": "high"}
    assert httpx.post(srv.url + "/api/v1/rules", json=rule, timeout=10).status_code in (200,
                                                                                         201)
    now = int(time.time() * 1000)
    quick = []
    for i in range(5):
        quick += [event("session.start", f"q{i}", now - 60_000 + i, kind="quick"),
                  event("session.end", f"q{i}", now - 59_000 + i, status="success")]
    assert post_events(srv, *quick).status_code == 200
    assert post_events(srv, event("session.start", "stuck", now - 30_000,
                                  kind="quick")).status_code == 200
    doc = get(srv, "/sessions/stuck").json()
    assert doc["prediction"]["overdue"] is True
    assert doc["prediction"]["success_probability"] is not None

    def fired() -> list[dict[str, Any]]:
        return get(srv, "/sessions/stuck").json()["alerts"]

    alerts = wait_for(fired, 15)
    assert alerts[0]["labels"]["alertname"] == "SessionOverdue"
    assert alerts[0]["labels"]["session"] == "stuck" and alerts[0]["labels"]["kind"] == "quick"
    stats = get(srv, "/sessions/stats").json()
    quick_stats = stats["kinds"]["quick"]
    assert quick_stats["finished"] == 5 and quick_stats["success_rate"] == 1.0
    assert quick_stats["duration_s"]["p50"] == 1.0 and quick_stats["active"] == 1
    listed = get(srv, "/sessions", kind="quick", state="active").json()["sessions"]
    assert [s["id"] for s in listed] == ["stuck"]
