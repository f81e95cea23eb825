"""One client of the live stream: its subscriptions, its bounded backlog and its gaps.

A sink is where a client's bytes go: straight to a WebSocket connection's transport
(the same frame bytes for every client), or to a bounded queue that a sender drains
(Server-Sent Events). When a client's backlog passes the limit it is slow: its messages
are dropped, for it alone, and once it has drained it gets one `gap` per topic saying
exactly which seqs it missed.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from seismo.stream.message import Bundle, Message
from seismo.stream.topics import Filter


class Sink(Protocol):
    def write(self, message: Message) -> None: ...
    def write_bundle(self, bundle: Bundle) -> None: ...
    def backlog_bytes(self) -> int: ...
    def is_closed(self) -> bool: ...
    def abort(self) -> None: ...


class TransportSink:
    """Frames written to a WebSocket connection's asyncio transport; its buffer is the backlog."""

    def __init__(self, transport: asyncio.WriteTransport) -> None:
        self.transport = transport

    def write(self, message: Message) -> None:
        if not self.transport.is_closing():
            self.transport.write(message.frame)

    def write_bundle(self, bundle: Bundle) -> None:
        if not self.transport.is_closing():
            self.transport.write(bundle.frame)

    def backlog_bytes(self) -> int:
        return self.transport.get_write_buffer_size()

    def is_closed(self) -> bool:
        return self.transport.is_closing()

    def abort(self) -> None:
        """Drop the connection now: a close frame would wait behind the full buffer."""
        self.transport.abort()


class QueueSink:
    """A queue of messages that a sender task drains; bounded by the subscriber's limit."""

    def __init__(self) -> None:
        self._items: deque[Message] = deque()
        self._bytes = 0
        self._ready = asyncio.Event()
        self.closed = False

    def write(self, message: Message) -> None:
        if not self.closed:
            self._items.append(message)
            self._bytes += len(message)
            self._ready.set()

    def write_bundle(self, bundle: Bundle) -> None:
        for message in bundle.messages:
            self.write(message)

    def backlog_bytes(self) -> int:
        return self._bytes

    def is_closed(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True
        self._ready.set()

    abort = close

    async def get(self) -> Message | None:
        """The next message, or None once the sink is closed."""
        while not self._items:
            if self.closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        message = self._items.popleft()
        self._bytes -= len(message)
        return message


@dataclass
class Subscription:
    topic: str
    filter: Filter
    last_seq: int
    lost_from: int | None = None
    lost_to: int = 0
    lost_count: int = 0
    replaying: bool = False  # while the buffer is replayed, the live fan-out waits


class Subscriber:
    """A connected client; `deliver` never blocks and never buffers past `max_backlog_bytes`."""

    def __init__(self, sink: Sink, max_backlog_bytes: int) -> None:
        self.sink = sink
        self.max_backlog_bytes = max_backlog_bytes
        self.subscriptions: dict[str, Subscription] = {}
        self.lagging_since: float | None = None
        self.dropped = 0
        self.dropped_replies = 0

    def send(self, message: Message) -> None:
        """A reply or control message (not part of a topic): sent unless the backlog is
        past the limit. A client that sends requests but never reads the replies would
        otherwise grow it without bound; past the limit it counts as lagging instead, and
        is cut off if it does not drain in time."""
        if self.sink.backlog_bytes() > self.max_backlog_bytes:
            self.dropped_replies += 1
            if self.lagging_since is None:
                self.lagging_since = time.monotonic()
            return
        self.sink.write(message)

    def deliver(self, bundle: Bundle, *, replay: bool = False) -> int:
        """Send a topic's messages this client has not had, in one write; drop them if the
        client lags. Returns how many were sent."""
        first = bundle.messages[0]
        assert first.topic is not None and first.seq is not None
        sub = self.subscriptions.get(first.topic)
        if sub is None or (sub.replaying and not replay):
            return 0
        fresh = bundle
        if first.seq <= sub.last_seq:  # part of it went out already (a replay overlapped)
            fresh = Bundle([m for m in bundle.messages if m.seq is not None
                            and m.seq > sub.last_seq])
            if not fresh.messages:
                return 0
        last = fresh.messages[-1].seq
        assert last is not None
        sub.last_seq = last
        if self.sink.backlog_bytes() > self.max_backlog_bytes:
            if sub.lost_from is None:
                sub.lost_from = fresh.messages[0].seq
            sub.lost_to = last
            sub.lost_count += len(fresh.messages)
            self.dropped += len(fresh.messages)
            if self.lagging_since is None:
                self.lagging_since = time.monotonic()
            return 0
        if self.lagging_since is not None:
            self.send_gaps()
        self.sink.write_bundle(fresh)
        return len(fresh.messages)

    def send_gaps(self, *, current_seq: Callable[[str], int] | None = None) -> None:
        """Once the backlog has drained below half the limit, tell the client what it lost."""
        if self.lagging_since is None or self.sink.backlog_bytes() > self.max_backlog_bytes // 2:
            return
        for sub in self.subscriptions.values():
            if sub.lost_from is not None:
                seq = current_seq(sub.topic) if current_seq else sub.lost_to
                self.send(Message.control(
                    "gap", sub.topic, seq, from_seq=sub.lost_from, to_seq=sub.lost_to,
                    missed=sub.lost_count, reason="slow_client"))
                sub.lost_from, sub.lost_to, sub.lost_count = None, 0, 0
        self.lagging_since = None
