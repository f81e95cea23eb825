"""A client that sends requests but never reads the replies: its backlog stays bounded
and it is cut off like any client that stays too slow (found by bench/chaos/consumers)."""

from __future__ import annotations

import asyncio

from seismo.config import Stream
from seismo.store.series import SeriesIndex
from seismo.stream import Hub, QueueSink


async def test_replies_a_client_never_reads_stay_bounded_and_it_is_cut_off() -> None:
    hub = Hub(Stream(client_queue_bytes=1000, heartbeat_s=0.05, client_timeout_s=0.3,
                     stats_interval_s=3600), SeriesIndex(10))
    await hub.start()
    try:
        unread, reader = QueueSink(), QueueSink()
        client, other = hub.attach(unread), hub.attach(reader)
        for _ in range(10_000):
            await hub.handle(client, '{"op": "ping"}')
        await hub.handle(other, '{"op": "ping"}')
        assert 1000 < unread.backlog_bytes() <= 1100  # not 10,000 pongs
        assert client.dropped_replies > 9_000
        assert (await reader.get()) is not None  # the other client is served as usual
        async with asyncio.timeout(5):
            while not unread.is_closed():
                await asyncio.sleep(0.02)
        assert not reader.is_closed()
    finally:
        await hub.stop()


async def test_a_client_that_drains_gets_its_replies_again() -> None:
    hub = Hub(Stream(client_queue_bytes=1000, heartbeat_s=3600, stats_interval_s=3600),
              SeriesIndex(10))
    await hub.start()
    try:
        sink = QueueSink()
        client = hub.attach(sink)
        for _ in range(100):
            await hub.handle(client, '{"op": "ping"}')
        while sink.backlog_bytes():
            await sink.get()
        client.send_gaps()  # what the hub's tending does once the backlog drained
        await hub.handle(client, '{"op": "ping"}')
        message = await sink.get()
        assert message is not None and message.type == "pong"
        assert client.lagging_since is None
    finally:
        await hub.stop()
