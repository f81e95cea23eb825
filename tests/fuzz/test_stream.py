"""Fuzzing WebSocket client messages: a bad one gets an `error` message, never a crash."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from seismo.config import Stream
from seismo.store.series import SeriesIndex
from seismo.stream import Hub
from tests.fuzz.strategies import FUZZ, json_values
from tests.stream.test_hub import ListSink

FILTER_KEYS = ["selector", "type", "source", "severity", "kind", "detector", "state", "rule"]
messages = st.fixed_dictionaries(
    {"op": st.sampled_from(["subscribe", "unsubscribe", "ping", "nope"]) | json_values},
    optional={
        "topic": st.sampled_from(["samples", "events", "anomalies", "alerts", "stats",
                                  "sessions", "x"]) | json_values,
        "since": st.integers(-2, 10**20) | json_values,
        **{key: st.sampled_from(['{job="a"}', "cpu", "{", "spike"]) | json_values
           for key in FILTER_KEYS},
    },
)


def _encode(message: Any) -> str:
    return json.dumps(message, allow_nan=True)


@FUZZ
@given(st.lists(messages.map(_encode) | json_values.map(_encode) | st.text(max_size=30)
                | st.binary(max_size=30), min_size=1, max_size=4))
def test_client_messages_never_fail_unhandled(raws: list[str | bytes]) -> None:
    async def run() -> list[dict[str, Any]]:
        hub = Hub(Stream(buffer_messages=5, client_queue_bytes=100_000, heartbeat_s=3600,
                         stats_interval_s=3600), SeriesIndex(100))
        sink = ListSink()
        subscriber = hub.attach(sink)
        for raw in raws:
            await hub.handle(subscriber, raw)  # raises nothing: errors become messages
        hub.detach(subscriber)
        return sink.messages

    for message in asyncio.run(run()):
        if message["type"] == "error":
            assert message["error"]
