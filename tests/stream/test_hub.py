"""The hub as a plain object: topics, filters, replay, gaps, on a real event loop."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import numpy as np
import pytest

from seismo.config import Stream
from seismo.store.batch import Batch
from seismo.store.series import SeriesIndex
from seismo.stream import Hub, Message
from seismo.stream.message import Bundle


class ListSink:
    """Where a test subscriber's messages go; `backlog` pretends a full socket."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.backlog = 0
        self.aborted = False

    def write(self, message: Message) -> None:
        self.messages.append(json.loads(message.payload))

    def write_bundle(self, bundle: Bundle) -> None:
        for message in bundle.messages:
            self.write(message)

    def backlog_bytes(self) -> int:
        return self.backlog

    def is_closed(self) -> bool:
        return self.aborted

    def abort(self) -> None:
        self.aborted = True

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == kind]


def make_batch(index: SeriesIndex, rows: list[tuple[str, dict[str, str], float]]) -> Batch:
    slots = np.array([index.slot_for(m, labels) for m, labels, _ in rows], dtype=np.int32)
    return Batch(slots, index.ids(slots), np.arange(len(rows), dtype=np.int64) + 1000,
                 np.array([v for _, _, v in rows]))


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


@pytest.fixture
async def hub() -> Any:
    h = Hub(Stream(buffer_messages=5, client_queue_bytes=1000, heartbeat_s=3600,
                   stats_interval_s=3600), SeriesIndex(1000))
    await h.start()
    yield h
    await h.stop()


async def test_samples_are_filtered_by_selector_and_grouped_by_series(hub: Hub) -> None:
    index = hub.topics["samples"].index  # type: ignore[attr-defined]
    sink = ListSink()
    sub = hub.attach(sink)
    await hub.handle(sub, json.dumps({"op": "subscribe", "topic": "samples",
                                      "selector": 'cpu{host="a"}'}))
    hub.publish("samples", make_batch(index, [("cpu", {"host": "a"}, 1.0),
                                              ("cpu", {"host": "b"}, 2.0),
                                              ("cpu", {"host": "a"}, 3.0)]))
    hub.publish("samples", make_batch(index, [("cpu", {"host": "b"}, 4.0)]))
    await settle()
    samples = sink.of_type("samples")
    assert [m["seq"] for m in samples] == [1]
    assert samples[0]["series"] == [{"metric": "cpu", "labels": {"host": "a"},
                                     "timestamps": [1000, 1002], "values": [1.0, 3.0]}]


async def test_since_replays_the_buffer_and_reports_what_expired(hub: Hub) -> None:
    for i in range(8):
        hub.publish("events", {"type": "deploy" if i % 2 else "error", "n": i})
    await settle()
    sink = ListSink()
    sub = hub.attach(sink)
    await hub.subscribe(sub, "events", {"type": "deploy"}, since=1)
    gap = sink.of_type("gap")[0]
    assert (gap["from_seq"], gap["to_seq"], gap["reason"]) == (2, 3, "expired")
    assert [m["seq"] for m in sink.of_type("event")] == [4, 6, 8]
    hub.publish("events", {"type": "deploy", "n": 8})
    await settle()
    assert [m["seq"] for m in sink.of_type("event")] == [4, 6, 8, 9]


async def test_a_seq_from_before_a_restart_replays_everything_held(hub: Hub) -> None:
    hub.publish("events", {"type": "x"})
    await settle()
    sink = ListSink()
    await hub.subscribe(hub.attach(sink), "events", {}, since=500)
    assert sink.of_type("gap")[0]["reason"] == "restart"
    assert [m["seq"] for m in sink.of_type("event")] == [1]


async def test_a_slow_client_loses_messages_alone_and_gets_one_gap(hub: Hub) -> None:
    slow, fast = ListSink(), ListSink()
    for sink in (slow, fast):
        await hub.subscribe(hub.attach(sink), "events", {})
    slow.backlog = 5000
    for i in range(4):
        hub.publish("events", {"type": "x", "n": i})
        await settle()
    slow.backlog = 0
    hub.publish("events", {"type": "x", "n": 4})
    await settle()
    assert [m["seq"] for m in fast.of_type("event")] == [1, 2, 3, 4, 5]
    gap = slow.of_type("gap")
    assert [(g["from_seq"], g["to_seq"], g["missed"], g["reason"]) for g in gap] == [
        (1, 4, 4, "slow_client")]
    assert [m["seq"] for m in slow.of_type("event")] == [5]
    assert slow.messages.index(gap[0]) < slow.messages.index(slow.of_type("event")[0])


async def test_bad_messages_get_errors_naming_the_field(hub: Hub) -> None:
    sink = ListSink()
    sub = hub.attach(sink)
    for raw, field in [("{not json", "message"), ("[1]", "message"),
                       ('{"op": "jump"}', "op"), ('{"op": "subscribe", "topic": "x"}', "topic"),
                       ('{"op": "subscribe", "topic": "samples"}', "selector"),
                       ('{"op": "subscribe", "topic": "samples", "selector": "a{"}', "selector"),
                       ('{"op": "subscribe", "topic": "events", "since": -1}', "since"),
                       ('{"op": "subscribe", "topic": "events", "colour": "red"}', "colour"),
                       ('{"op": "subscribe", "topic": "events", "type": [1]}', "type"),
                       ("x" * 70_000, "message")]:
        await hub.handle(sub, raw)
        assert sink.messages[-1]["type"] == "error", raw[:40]
        assert sink.messages[-1]["field"] == field, raw[:40]
    assert sub.subscriptions == {}


async def test_resubscribing_replaces_the_filter_and_unsubscribe_stops(hub: Hub) -> None:
    sink = ListSink()
    sub = hub.attach(sink)
    await hub.subscribe(sub, "events", {"type": "a"})
    await hub.subscribe(sub, "events", {"type": "b"})
    hub.publish("events", {"type": "a"})
    hub.publish("events", {"type": "b"})
    await settle()
    assert [m["event"]["type"] for m in sink.of_type("event")] == ["b"]
    await hub.handle(sub, '{"op": "unsubscribe", "topic": "events"}')
    hub.publish("events", {"type": "b"})
    await settle()
    assert len(sink.of_type("event")) == 1
    assert sink.of_type("unsubscribed")[0]["topic"] == "events"


async def test_publishing_from_another_thread_reaches_subscribers(hub: Hub) -> None:
    sink = ListSink()
    await hub.subscribe(hub.attach(sink), "events", {})
    await asyncio.to_thread(hub.publish, "events", {"type": "from-thread"})
    async with asyncio.timeout(5):
        while not sink.of_type("event"):
            await asyncio.sleep(0.01)


async def test_heartbeats_go_out_and_a_client_stuck_too_long_is_cut_off() -> None:
    hub = Hub(Stream(heartbeat_s=0.05, client_timeout_s=0.2, client_queue_bytes=1000,
                     stats_interval_s=3600), SeriesIndex(10))
    await hub.start()
    try:
        live, stuck = ListSink(), ListSink()
        for sink in (live, stuck):
            await hub.subscribe(hub.attach(sink), "events", {})
        stuck.backlog = 10_000
        hub.publish("events", {"type": "x"})
        async with asyncio.timeout(5):
            while not stuck.aborted or len(live.of_type("heartbeat")) < 2:
                await asyncio.sleep(0.02)
        assert live.of_type("heartbeat")[-1]["seqs"] == {"events": 1}
        assert not live.aborted and not stuck.of_type("heartbeat")
    finally:
        await hub.stop()


async def test_messages_that_piled_up_go_to_a_client_in_one_write(hub: Hub) -> None:
    writes: list[bytes] = []

    class Transportish(ListSink):
        def write_bundle(self, bundle: Bundle) -> None:
            writes.append(bundle.frame)
            super().write_bundle(bundle)

    sink = Transportish()
    await hub.subscribe(hub.attach(sink), "events", {})
    for i in range(3):  # published while the fan-out task is not running
        hub.publish("events", {"type": "x", "n": i})
    await settle()
    assert [m["seq"] for m in sink.of_type("event")] == [1, 2, 3]
    assert len(writes) == 1 and writes[0].count(b"\x81") >= 3


@pytest.mark.parametrize("raw", ['{"op": "ping", "topic": []}',
                                 '{"op": "subscribe", "topic": {}}',
                                 '{"op": "unsubscribe", "topic": [1]}'])
async def test_topic_list_or_object_gets_an_error_not_a_crash(hub: Hub, raw: str) -> None:
    """Found by tests/fuzz: an unhashable topic raised TypeError out of `handle`."""
    sink = ListSink()
    sub = hub.attach(sink)
    await hub.handle(sub, raw)
    if '"ping"' in raw:
        assert sink.messages[-1]["type"] == "pong"
    else:
        assert (sink.messages[-1]["type"], sink.messages[-1]["field"]) == ("error", "topic")
