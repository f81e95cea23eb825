"""`seismo.client`: the backoff policy as a plain object, then `Client`, `AsyncClient` and
`subscribe()` against a real server over real HTTP and WebSocket."""

from __future__ import annotations

import asyncio
import doctest
import itertools
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

import seismo.client.backoff
import seismo.client.stream
from seismo.client import AsyncClient, Backoff, Client, Subscription
from seismo.client.stream import stream_url
from seismo.errors import Forbidden, InvalidInput, SeismoError, Unauthorized
from tests.server import ServerProcess, free_port

pytestmark = pytest.mark.timeout(60)
Message = dict[str, Any]


# -- the backoff policy -----------------------------------------------------------------

def test_backoff_doubles_from_initial_up_to_the_cap() -> None:
    backoff = Backoff(initial_s=0.2, max_s=10.0, random=lambda: 1.0)
    delays = [backoff.next_delay_s() for _ in range(9)]
    assert delays == pytest.approx([0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 10.0, 10.0, 10.0])
    assert backoff.attempts == 9


def test_backoff_jitter_is_full_uniform_below_the_ceiling() -> None:
    draws = iter([0.5, 0.0, 0.25, 0.999])
    backoff = Backoff(initial_s=1.0, max_s=4.0, random=lambda: next(draws))
    assert [backoff.next_delay_s() for _ in range(4)] == pytest.approx([0.5, 0.0, 1.0, 3.996])


def test_backoff_reset_starts_over_from_initial() -> None:
    backoff = Backoff(initial_s=0.2, max_s=10.0, random=lambda: 1.0)
    for _ in range(5):
        backoff.next_delay_s()
    assert backoff.ceiling_s() == 6.4
    backoff.reset()
    assert backoff.next_delay_s() == 0.2


def test_backoff_stays_capped_after_very_many_attempts() -> None:
    backoff = Backoff(initial_s=0.2, max_s=10.0, random=lambda: 1.0)
    for _ in range(10_000):
        assert backoff.next_delay_s() <= 10.0


def test_backoff_refuses_bounds_that_make_no_sense() -> None:
    for initial_s, max_s in ((0.0, 1.0), (-1.0, 1.0), (2.0, 1.0)):
        with pytest.raises(ValueError):
            Backoff(initial_s=initial_s, max_s=max_s)


def test_stream_url_follows_the_http_url() -> None:
    assert stream_url("http://127.0.0.1:8765") == "ws://127.0.0.1:8765/api/v1/stream"
    assert stream_url("https://seismo.example/") == "wss://seismo.example/api/v1/stream"


def test_docstring_examples_run() -> None:
    for module in (seismo.client.backoff, seismo.client.stream):
        failed, tried = doctest.testmod(module)
        assert tried > 0 and failed == 0


# -- REST round trips -------------------------------------------------------------------

def test_sync_client_round_trip(server: ServerProcess) -> None:
    now = int(time.time() * 1000)
    with Client(server.url) as seismo:
        assert seismo.health()["status"] == "ok"
        reply = seismo.push(
            series=[{"metric": "cl_sync_temp", "labels": {"room": "a"},
                     "timestamps": [now - 2000, now - 1000], "values": [20.0, 21.0]}],
            samples=[{"metric": "cl_sync_temp", "labels": {"room": "b"}, "value": 5.5},
                     {"metric": "bad-name", "value": 1}])
        assert (reply["accepted"], reply["rejected"]) == (3, 1)
        assert "bad-name" in reply["errors"][0]["reason"]

        latest = {s["labels"]["room"]: s["value"] for s in seismo.query("cl_sync_temp", "1h")}
        assert latest == {"a": 21.0, "b": 5.5}
        ranged = seismo.query_range('cl_sync_temp{room="a"}', start="now-1h", step="1h",
                                    agg="max")
        [bucket] = ranged["series"]
        assert max(v for v in bucket["values"] if v is not None) == 21.0
        assert ranged["step_ms"] == 3_600_000
        names = sorted(s["labels"]["room"] for s in seismo.series("cl_sync_temp"))
        assert names == ["a", "b"]

        one = seismo.push_events({"type": "cl_sync_deploy", "source": "ci",
                                  "attributes": {"version": "1.0"}})
        many = seismo.push_events([{"type": "cl_sync_deploy", "source": "ci"},
                                   {"type": "cl_sync_deploy", "source": "cd"}])
        assert (one["accepted"], many["accepted"]) == (1, 2)
        found = seismo.events(type="cl_sync_deploy")
        assert len(found) == 3
        assert found[-1]["attributes"] == {"version": "1.0"}  # newest first
        assert [e["source"] for e in seismo.events(type="cl_sync_deploy", source="cd")] == ["cd"]


async def test_async_client_round_trip(server: ServerProcess) -> None:
    async with AsyncClient(server.url) as seismo:
        assert (await seismo.health())["status"] == "ok"
        reply = await seismo.push(series=[{"metric": "cl_async_load", "labels": {"h": "x"},
                                           "values": [1.0, 2.0, 3.0]}])
        assert reply == {"accepted": 3, "rejected": 0, "errors": []}
        [latest] = await seismo.query("cl_async_load", window="1h")
        assert latest["labels"] == {"h": "x"}
        assert latest["window"]["count"] == 1  # no timestamps: all three are "now"
        ranged = await seismo.query_range("cl_async_load", start="now-10m", step="1m",
                                          group_by=["h"])
        assert [s["labels"] for s in ranged["series"]] == [{"h": "x"}]
        assert [s["metric"] for s in await seismo.series("cl_async_load")] == ["cl_async_load"]
        stored = await seismo.push_events({"type": "cl_async_incident", "severity": "high"})
        assert stored["events"][0]["severity"] == "high"
        [event] = await seismo.events(type="cl_async_incident", start="now-1h", limit=5)
        assert event["id"] == stored["events"][0]["id"]


def test_errors_are_seismo_exceptions(server: ServerProcess) -> None:
    with Client(server.url) as seismo:
        with pytest.raises(InvalidInput) as bad:
            seismo.query("cl_err{", window="5m")
        assert bad.value.message.startswith("HTTP 400: bad selector")
        with pytest.raises(InvalidInput) as window:
            seismo.query("cl_err", window="soon")
        assert window.value.field == "window"
        with pytest.raises(InvalidInput) as event:
            seismo.push_events({"source": "no type"})
        assert "type" in event.value.message


async def test_unreachable_server_is_one_clear_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with Client(url) as seismo, pytest.raises(SeismoError) as sync_error:
        seismo.health()
    assert sync_error.value.message.startswith(f"cannot reach seismo at {url}")
    async with AsyncClient(url) as aseismo:
        with pytest.raises(SeismoError) as async_error:
            await aseismo.health()
    assert async_error.value.message.startswith(f"cannot reach seismo at {url}")


# -- subscribe() ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def stream_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Heartbeats every 0.5 s, so that idle detection is tested in a second."""
    env = {"SEISMO_STREAM__HEARTBEAT_S": "0.5"}
    srv = ServerProcess(tmp_path_factory.mktemp("client-stream") / "data", "--no-collector",
                        env=env)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
async def aclient(stream_server: ServerProcess) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(stream_server.url) as c:
        yield c


def quick() -> Backoff:
    """A backoff that waits a few milliseconds, so reconnects are fast."""
    return Backoff(initial_s=0.01, max_s=0.05)


async def take(sub: Subscription, n: int, timeout_s: float = 10.0) -> list[Message]:
    got: list[Message] = []
    async with asyncio.timeout(timeout_s):
        async for message in sub:
            got.append(message)
            if len(got) == n:
                break
    return got


def values_of(messages: list[Message]) -> list[float]:
    return [v for m in messages for s in m["series"] for v in s["values"]]


async def push_one(seismo: AsyncClient, metric: str, value: float, **labels: str) -> None:
    reply = await seismo.push(samples=[{"metric": metric, "labels": labels, "value": value}])
    assert reply["accepted"] == 1, reply


async def test_subscribe_yields_only_what_the_selector_matches(aclient: AsyncClient) -> None:
    # Pushed before subscribing: `since=0` replays them from the buffer; then live.
    await push_one(aclient, "cl_sel_cpu", 1.0, host="a")
    await push_one(aclient, "cl_sel_cpu", 2.0, host="b")
    await push_one(aclient, "cl_sel_mem", 3.0, host="a")
    async with aclient.subscribe("samples", selector='cl_sel_cpu{host="a"}', since=0) as sub:
        [replayed] = await take(sub, 1)
        await push_one(aclient, "cl_sel_cpu", 4.0, host="b")
        await push_one(aclient, "cl_sel_cpu", 5.0, host="a")
        [live] = await take(sub, 1)
    for message in (replayed, live):
        assert message["type"] == message["topic"] == "samples"
        assert [(s["metric"], s["labels"]) for s in message["series"]] == [
            ("cl_sel_cpu", {"host": "a"})]
    assert values_of([replayed, live]) == [1.0, 5.0]
    assert sub.last_seq == live["seq"] > replayed["seq"]
    assert sub.connection is None


async def test_reconnect_and_resume_loses_nothing(aclient: AsyncClient) -> None:
    retries: list[Exception] = []
    backoff = quick()
    sub = aclient.subscribe("samples", selector="cl_resume_cpu", backoff=backoff,
                            on_retry=lambda error, delay_s: retries.append(error))
    async with sub:
        first = asyncio.create_task(take(sub, 3))
        await asyncio.sleep(0)
        async with asyncio.timeout(5):
            while sub.resume_seq() is None:  # subscribed: what follows is live
                await asyncio.sleep(0.01)
        for i in range(3):
            await push_one(aclient, "cl_resume_cpu", float(i))
        before = await first

        assert sub.connection is not None
        sub.connection.transport.abort()  # the TCP connection dies under the client
        for i in range(3, 8):
            await push_one(aclient, "cl_resume_cpu", float(i))
        after = await take(sub, 5)

    got = before + after
    assert values_of(got) == [float(i) for i in range(8)]
    seqs = [m["seq"] for m in got]
    assert seqs == sorted(set(seqs))  # increasing, no duplicates
    assert len(retries) == 1
    assert backoff.attempts == 0  # reset once subscribed again


async def test_silence_past_the_idle_timeout_reconnects(aclient: AsyncClient) -> None:
    # Heartbeats come every 0.5 s: with 2 s nothing is idle, with 0.2 s it is.
    retries: list[Exception] = []
    retried = asyncio.Event()

    def on_retry(error: Exception, delay_s: float) -> None:
        retries.append(error)
        retried.set()

    async with aclient.subscribe("samples", selector="cl_idle", idle_timeout_s=0.2,
                                 backoff=quick(), on_retry=on_retry) as sub:
        waiting = asyncio.create_task(take(sub, 1))
        async with asyncio.timeout(5):
            await retried.wait()
            while sub.connection is None:
                await asyncio.sleep(0.01)
        await push_one(aclient, "cl_idle", 1.0)
        [message] = await waiting
    assert values_of([message]) == [1.0]
    assert isinstance(retries[0], TimeoutError)
    assert "nothing received for 0.2 s" in str(retries[0])

    quiet: list[Exception] = []
    async with aclient.subscribe("samples", selector="cl_idle", since=message["seq"],
                                 idle_timeout_s=2.0, on_retry=lambda e, d: quiet.append(e)
                                 ) as sub:
        waiting = asyncio.create_task(take(sub, 1))
        await asyncio.sleep(2.5)
        await push_one(aclient, "cl_idle", 2.0)
        assert values_of(await waiting) == [2.0]
    assert quiet == []


@pytest.mark.parametrize(("topic", "filters", "field"), [
    ("samples", {"selector": "cl_bad{"}, "selector"),
    ("samples", {}, "selector"),
    ("weather", {}, "topic"),
    ("events", {"colour": "red"}, "colour"),
])
async def test_a_refused_subscription_raises_instead_of_retrying(
        aclient: AsyncClient, topic: str, filters: dict[str, Any], field: str) -> None:
    retries: list[Exception] = []
    sub = aclient.subscribe(topic, on_retry=lambda e, d: retries.append(e), **filters)
    with pytest.raises(InvalidInput) as refused:
        await take(sub, 1, timeout_s=5)
    assert refused.value.field == field
    assert retries == []
    assert sub.connection is None
    with pytest.raises(StopAsyncIteration):
        await sub.__anext__()


async def test_events_topic_with_filters(aclient: AsyncClient) -> None:
    await aclient.push_events([{"type": "cl_stream_deploy", "source": "ci"},
                               {"type": "cl_stream_other", "source": "ci"},
                               {"type": "cl_stream_deploy", "source": "cd"}])
    async with aclient.subscribe("events", since=0, type=["cl_stream_deploy"],
                                 source="cd") as sub:
        [message] = await take(sub, 1)
    assert message["type"] == "event"
    assert (message["event"]["type"], message["event"]["source"]) == ("cl_stream_deploy", "cd")


async def test_an_unreachable_server_is_retried_with_backoff() -> None:
    retries: list[tuple[Exception, float]] = []
    backoff = Backoff(initial_s=0.01, max_s=0.04, random=lambda: 1.0)
    async with AsyncClient(f"http://127.0.0.1:{free_port()}") as seismo:
        sub = seismo.subscribe("stats", backoff=backoff,
                               on_retry=lambda e, d: retries.append((e, d)))
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(1.0):
                await sub.__anext__()
    assert len(retries) >= 4
    assert all(isinstance(error, OSError) for error, _ in retries)
    assert [delay for _, delay in retries[:4]] == pytest.approx([0.01, 0.02, 0.04, 0.04])


async def test_a_server_restart_is_a_gap_then_the_stream_goes_on(
        fresh_server: ServerProcess) -> None:
    fresh_server.start()
    seismo = AsyncClient(fresh_server.url)
    async with seismo, seismo.subscribe("samples", selector="cl_restart", since=0,
                                        backoff=quick()) as sub:
        for i in range(3):
            await push_one(seismo, "cl_restart", float(i))
        before = await take(sub, 3)
        await asyncio.to_thread(fresh_server.stop)
        await asyncio.to_thread(fresh_server.start)
        await push_one(seismo, "cl_restart", 3.0)
        gap, after = await take(sub, 2)
    assert values_of(before) == [0.0, 1.0, 2.0]
    assert (gap["type"], gap["reason"]) == ("gap", "restart")
    assert values_of([after]) == [3.0]
    assert after["seq"] == 1


# -- auth close codes, from a stand-in server that refuses every stream -----------------

@pytest.fixture
async def refusing_server() -> AsyncIterator[tuple[str, list[str | None]]]:
    """A WebSocket server that closes like seismo without (4401) or with (4403) a token."""
    seen: list[str | None] = []
    codes = itertools.cycle([4401, 4403])

    async def refuse(connection: ServerConnection) -> None:
        seen.append(connection.request.headers.get("Authorization")
                    if connection.request else None)
        await connection.close(next(codes), "not allowed")

    async with serve(refuse, "127.0.0.1", 0) as ws_server:
        port = next(iter(ws_server.sockets)).getsockname()[1]
        yield f"http://127.0.0.1:{port}", seen


async def test_close_codes_4401_and_4403_raise_and_do_not_retry(
        refusing_server: tuple[str, list[str | None]]) -> None:
    url, seen = refusing_server
    retries: list[Exception] = []
    async with AsyncClient(url, token="s3cret") as seismo:
        with pytest.raises(Unauthorized) as no:
            await take(seismo.subscribe("stats", on_retry=lambda e, d: retries.append(e)), 1)
        with pytest.raises(Forbidden):
            await take(seismo.subscribe("stats", on_retry=lambda e, d: retries.append(e)), 1)
    assert "4401" in no.value.message
    assert (no.value.status, Forbidden.status) == (401, 403)
    assert seen == ["Bearer s3cret", "Bearer s3cret"]
    assert retries == []


async def test_a_real_server_with_tokens(fresh_server: ServerProcess) -> None:
    created = subprocess.run(
        [sys.executable, "-m", "seismo", "token", "create", "--name", "cl-viewer", "--role",
         "viewer", "--data-dir", str(fresh_server.data_dir)],
        capture_output=True, text=True, timeout=30)
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip()
    fresh_server.start()
    for token in (None, "not-a-token"):
        async with AsyncClient(fresh_server.url, token=token) as stranger:
            with pytest.raises(Unauthorized) as refused:
                await take(stranger.subscribe("stats"), 1)
            assert "4401" in refused.value.message
            with pytest.raises(Unauthorized):
                await stranger.query("up")
    async with AsyncClient(fresh_server.url, token=secret) as viewer:
        [stats] = await take(viewer.subscribe("stats"), 1)
        assert stats["type"] == "stats"
        with pytest.raises(Forbidden) as forbidden:
            await viewer.push(samples=[{"metric": "up", "value": 1}])
        assert forbidden.value.message.startswith("HTTP 403: ")
