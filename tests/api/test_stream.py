"""The live stream against a real server: real WebSocket and SSE clients."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.server import ServerProcess

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def stream_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {"SEISMO_STREAM__CLIENT_QUEUE_BYTES": "65536", "SEISMO_STREAM__HEARTBEAT_S": "0.5",
           "SEISMO_STREAM__STATS_INTERVAL_S": "0.5", "SEISMO_STREAM__BUFFER_MESSAGES": "200"}
    srv = ServerProcess(tmp_path_factory.mktemp("stream") / "data", "--no-collector", env=env)
    srv.start()
    yield srv
    srv.stop()


def ws_url(server: ServerProcess) -> str:
    return server.url.replace("http://", "ws://") + "/api/v1/stream"


async def push(server: ServerProcess, metric: str, host: str, values: list[float]) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        reply = await http.post("/api/v1/ingest", json={"series": [
            {"metric": metric, "labels": {"host": host}, "values": values}]})
        assert reply.status_code == 200, reply.text


async def next_of(ws: ClientConnection, kind: str, timeout_s: float = 5.0) -> dict[str, Any]:
    """The next message of a type, skipping heartbeats and the like."""
    async with asyncio.timeout(timeout_s):
        while True:
            message = json.loads(await ws.recv())
            if message["type"] == kind:
                return message


async def subscribe(ws: ClientConnection, **request: Any) -> dict[str, Any]:
    await ws.send(json.dumps({"op": "subscribe", **request}))
    return await next_of(ws, "subscribed")


async def test_subscribers_get_only_the_series_their_selector_matches(
        stream_server: ServerProcess) -> None:
    async with connect(ws_url(stream_server)) as a, connect(ws_url(stream_server)) as every:
        await subscribe(a, topic="samples", selector='sel_cpu{host="a"}')
        await subscribe(every, topic="samples", selector="sel_cpu")
        await push(stream_server, "sel_cpu", "b", [1.0])
        await push(stream_server, "sel_cpu", "a", [2.0, 3.0])
        got = await next_of(a, "samples")
        assert got["topic"] == "samples"
        assert got["series"] == [{"metric": "sel_cpu", "labels": {"host": "a"},
                                  "timestamps": got["series"][0]["timestamps"],
                                  "values": [2.0, 3.0]}]
        first, second = await next_of(every, "samples"), await next_of(every, "samples")
        assert [s["labels"]["host"] for s in first["series"] + second["series"]] == ["b", "a"]
        assert second["seq"] == got["seq"] > first["seq"]


async def test_reconnecting_with_since_loses_nothing_in_the_buffer(
        stream_server: ServerProcess) -> None:
    async with connect(ws_url(stream_server)) as ws:
        await subscribe(ws, topic="samples", selector="resume_cpu")
        await push(stream_server, "resume_cpu", "a", [0.0])
        last_seq = (await next_of(ws, "samples"))["seq"]
    for i in range(1, 6):  # while nobody listens
        await push(stream_server, "resume_cpu", "a", [float(i)])
    async with connect(ws_url(stream_server)) as ws:
        await subscribe(ws, topic="samples", selector="resume_cpu", since=last_seq)
        replayed = [await next_of(ws, "samples") for _ in range(5)]
        await push(stream_server, "resume_cpu", "a", [6.0])
        live = await next_of(ws, "samples")
    values = [m["series"][0]["values"][0] for m in [*replayed, live]]
    assert values == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    seqs = [m["seq"] for m in [*replayed, live]]
    assert seqs == sorted(set(seqs)) and seqs[0] > last_seq


async def test_a_slow_client_gets_a_gap_while_a_fast_one_gets_everything(
        stream_server: ServerProcess) -> None:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", stream_server.port))
    slow = await connect(ws_url(stream_server), sock=sock, max_queue=1)
    fast = await connect(ws_url(stream_server), max_size=None)
    try:
        await subscribe(slow, topic="samples", selector="flood")
        await subscribe(fast, topic="samples", selector="flood")
        batches = 60
        values = [float(v) for v in range(3000)]
        fast_seqs: list[int] = []

        async def read_fast() -> None:
            while len(fast_seqs) < batches:
                fast_seqs.append((await next_of(fast, "samples", 20))["seq"])

        reader = asyncio.create_task(read_fast())
        for _ in range(batches):  # ~60 × 60 KB: far past the slow client's 64 KiB backlog
            await push(stream_server, "flood", "a", values)
        await asyncio.wait_for(reader, 30)
        assert fast_seqs == sorted(fast_seqs) and len(set(fast_seqs)) == batches
        # the slow client now reads: some messages, then a gap naming exactly what it lost
        seen: list[int] = []
        gaps: list[dict[str, Any]] = []
        async with asyncio.timeout(30):
            while not seen or seen[-1] < fast_seqs[-1]:
                message = json.loads(await slow.recv())
                if message["type"] == "samples":
                    seen.append(message["seq"])
                elif message["type"] == "gap":
                    gaps.append(message)
                    await push(stream_server, "flood", "a", [1.0])  # something after the gap
                    fast_seqs.append(fast_seqs[-1] + 1)
        assert gaps and all(g["reason"] == "slow_client" for g in gaps)
        covered = set(seen)
        for gap in gaps:
            covered.update(range(gap["from_seq"], gap["to_seq"] + 1))
        assert covered >= set(fast_seqs)
        assert sum(g["missed"] for g in gaps) == len(set(fast_seqs) - set(seen))
    finally:
        await slow.close()
        await fast.close()


async def test_bad_messages_get_an_error_and_the_connection_stays_up(
        stream_server: ServerProcess) -> None:
    async with connect(ws_url(stream_server)) as ws:
        for raw, field in [("{oops", "message"), ('{"op": "dance"}', "op"),
                           ('{"op": "subscribe", "topic": "weather"}', "topic"),
                           ('{"op": "subscribe", "topic": "samples", "selector": "x{"}',
                            "selector"),
                           (json.dumps({"op": "ping", "pad": "x" * 100_000}), "message")]:
            await ws.send(raw)
            error = await next_of(ws, "error")
            assert error["field"] == field
            assert error["error"]
        await ws.send('{"op": "ping"}')
        assert (await next_of(ws, "pong"))["type"] == "pong"


async def test_heartbeats_stats_and_events_by_type(stream_server: ServerProcess) -> None:
    async with connect(ws_url(stream_server)) as ws:
        await subscribe(ws, topic="stats")
        await subscribe(ws, topic="events", type="deploy")
        beat = await next_of(ws, "heartbeat")
        assert set(beat["seqs"]) == {"stats", "events"}
        stats = (await next_of(ws, "stats"))["stats"]
        assert stats["stream_clients"] >= 1 and "ingest_samples_per_s" in stats
        async with httpx.AsyncClient(base_url=stream_server.url) as http:
            for kind in ("incident", "deploy"):
                reply = await http.post("/api/v1/events", json={"type": kind, "source": "ci"})
                assert reply.status_code == 200
        event = await next_of(ws, "event")
        assert event["event"]["type"] == "deploy" and event["topic"] == "events"


def read_sse(response: httpx.Response, count: int) -> list[tuple[str | None, str, dict[str, Any]]]:
    """`count` data events (id, event, data) from an SSE response."""
    out: list[tuple[str | None, str, dict[str, Any]]] = []
    event_id, kind = None, ""
    for line in response.iter_lines():
        if line.startswith("id: "):
            event_id = line[4:]
        elif line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: ") and kind == "samples":
            out.append((event_id, kind, json.loads(line[6:])))
            if len(out) == count:
                break
    return out


def test_sse_resumes_from_last_event_id(stream_server: ServerProcess) -> None:
    url = "/api/v1/stream/sse"
    params = {"topic": "samples", "selector": "sse_cpu"}
    with httpx.Client(base_url=stream_server.url, timeout=10) as http:
        with http.stream("GET", url, params=params) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            http.post("/api/v1/ingest", json={"series": [
                {"metric": "sse_cpu", "labels": {}, "values": [1.0]}]})
            [(last_id, _, first)] = read_sse(response, 1)
        assert last_id == f"samples={first['seq']}"
        for value in (2.0, 3.0):
            http.post("/api/v1/ingest", json={"series": [
                {"metric": "sse_cpu", "labels": {}, "values": [value]}]})
        with http.stream("GET", url, params=params,
                         headers={"Last-Event-ID": str(last_id)}) as response:
            resumed = read_sse(response, 2)
        assert [d["series"][0]["values"] for _, _, d in resumed] == [[2.0], [3.0]]
        bad = http.get(url, params=params, headers={"Last-Event-ID": "samples=x"})
        assert bad.status_code == 400 and bad.json()["field"] == "Last-Event-ID"
        assert http.get(url, params={"topic": "nope"}).json()["field"] == "topic"


def test_sse_and_ws_tell_the_same_messages(stream_server: ServerProcess, tmp_path: Path) -> None:
    del tmp_path
    reply = httpx.get(stream_server.url + "/api/v1/stream/sse",
                      params={"topic": "samples"}, timeout=10)
    assert reply.status_code == 400 and reply.json()["field"] == "selector"
