"""The stream hub: topics in, subscribers out; the one place that fans messages out.

Producers (the ingest writer thread, the event log, the detectors, later the alert
manager) call `publish` from any thread. One fan-out task on the event loop takes new
entries in seq order, renders each once per distinct filter and writes the same bytes
to every subscriber of that filter — entries that piled up meanwhile together, in one
write — yielding every 100 clients so new connections and requests are still served.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from seismo.config import Stream as StreamSettings
from seismo.errors import InvalidInput, Overloaded
from seismo.store.series import SeriesIndex
from seismo.stream.message import Bundle, Message
from seismo.stream.subscriber import Sink, Subscriber, Subscription
from seismo.stream.topics import ChangeTopic, Filter, RecordTopic, SamplesTopic, Topic

log = logging.getLogger(__name__)
YIELD_EVERY = 100
MAX_BUNDLE = 64  # topic messages sent to a client in one write


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class _Group:
    """Subscribers of one topic with the same filter: one render, one encoding."""

    filter: Filter
    subscribers: dict[Subscriber, None] = field(default_factory=dict)


class Hub:
    """Topics, subscribers and the tasks that serve them."""

    def __init__(self, settings: StreamSettings, index: SeriesIndex) -> None:
        self.settings = settings
        n, size = settings.buffer_messages, settings.buffer_bytes
        topics: list[Topic] = [
            SamplesTopic(index, max_messages=n, max_bytes=size),
            RecordTopic("events", "event", filters=("type", "source"), max_messages=n,
                        max_bytes=size),
            RecordTopic("anomalies", "anomaly", filters=("kind", "detector", "state"),
                        by_series=True, max_messages=n, max_bytes=size,
                        counts=lambda anomaly: int(anomaly.get("state") == "open")),
            RecordTopic("alerts", "alert", filters=("severity", "state", "rule"),
                        max_messages=n, max_bytes=size),
            RecordTopic("stats", "stats", max_messages=n, max_bytes=size),
            ChangeTopic("sessions", "session", filters=("kind", "state"),  # start/update/end
                        max_messages=n, max_bytes=size),
        ]
        self.topics = {t.name: t for t in topics}
        self.subscribers: dict[Subscriber, None] = {}
        self.stats_extra: Callable[[], dict[str, Any]] = dict
        self._groups: dict[str, dict[str, _Group]] = {name: {} for name in self.topics}
        self._delivered = dict.fromkeys(self.topics, 0)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup = asyncio.Event()
        self._wake_pending = False
        self._tasks: list[asyncio.Task[None]] = []
        self.sent = 0  # topic messages written to clients
        self._dropped_by_gone = 0

    # -- producers (any thread) ---------------------------------------------------------

    def publish(self, topic: str, item: Any) -> int:
        """Add an item to a topic; subscribers get it as soon as the loop runs. Thread-safe."""
        seq = self.topics[topic].publish(item)
        loop = self._loop
        if loop is not None and not self._wake_pending:
            self._wake_pending = True
            with contextlib.suppress(RuntimeError):  # a closed loop: the server is stopping
                loop.call_soon_threadsafe(self._wake)
        return seq

    def _wake(self) -> None:
        self._wake_pending = False
        self._wakeup.set()

    # -- life cycle ---------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wakeup = asyncio.Event()
        self._delivered = {name: t.seq for name, t in self.topics.items()}
        self._tasks = [asyncio.create_task(coro) for coro in
                       (self._fan_out(), self._tend(), self._publish_stats())]

    async def stop(self) -> None:
        self._loop = None
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    # -- clients ------------------------------------------------------------------------

    def attach(self, sink: Sink) -> Subscriber:
        """A new client; Overloaded when `max_clients` are connected."""
        if len(self.subscribers) >= self.settings.max_clients:
            raise Overloaded(f"{len(self.subscribers)} stream clients connected; "
                             "the limit is stream.max_clients", retry_after_s=5.0)
        subscriber = Subscriber(sink, self.settings.client_queue_bytes)
        self.subscribers[subscriber] = None
        return subscriber

    def detach(self, subscriber: Subscriber) -> None:
        for topic in list(subscriber.subscriptions):
            self._leave(subscriber, topic)
        if self.subscribers.pop(subscriber, False) is None:
            self._dropped_by_gone += subscriber.dropped

    @property
    def dropped(self) -> int:
        """Topic messages dropped for slow clients, since start."""
        return self._dropped_by_gone + sum(s.dropped for s in list(self.subscribers))

    async def handle(self, subscriber: Subscriber, raw: str | bytes) -> None:
        """Carry out one client message; a bad one gets an `error` message, nothing else."""
        topic: str | None = None
        try:
            body = self._decode(raw)
            op = body.get("op")
            name = body.get("topic")
            topic = name if isinstance(name, str) and name in self.topics else None
            if op == "ping":
                subscriber.send(Message.control("pong"))
            elif op == "subscribe":
                spec = {k: v for k, v in body.items() if k not in ("op", "topic", "since")}
                await self.subscribe(subscriber, body.get("topic"), spec, body.get("since"))
            elif op == "unsubscribe":
                name = self._topic(body.get("topic")).name
                self._leave(subscriber, name)
                subscriber.send(Message.control("unsubscribed", name, self.topics[name].seq))
            else:
                raise InvalidInput(f"unknown op {op!r}: use subscribe, unsubscribe or ping",
                                   field="op")
        except InvalidInput as exc:
            subscriber.send(Message.control("error", topic, None, error=exc.message,
                                            field=exc.field))

    def _decode(self, raw: str | bytes) -> dict[str, Any]:
        size = len(raw.encode() if isinstance(raw, str) else raw)
        if size > self.settings.max_message_bytes:
            raise InvalidInput(f"message is {size} bytes; the limit is "
                               f"{self.settings.max_message_bytes}", field="message")
        try:
            body = msgspec.json.decode(raw)
        except msgspec.DecodeError as exc:
            raise InvalidInput(f"message is not valid JSON: {exc}", field="message") from None
        if not isinstance(body, dict):
            raise InvalidInput("a message must be a JSON object with an 'op'", field="message")
        return body

    def _topic(self, name: Any) -> Topic:
        if not isinstance(name, str) or name not in self.topics:
            raise InvalidInput(f"unknown topic {name!r}: use {', '.join(self.topics)}",
                               field="topic")
        return self.topics[name]

    async def subscribe(self, subscriber: Subscriber, topic_name: Any,
                        spec: dict[str, Any], since: Any = None) -> None:
        """Subscribe (or re-subscribe with a new filter); with `since`, replay first."""
        topic = self._topic(topic_name)
        if since is not None and (isinstance(since, bool) or not isinstance(since, int)
                                  or since < 0):
            raise InvalidInput("since must be a non-negative integer seq", field="since")
        new_filter = topic.parse_filter(spec)
        self._leave(subscriber, topic.name)
        group = self._groups[topic.name].setdefault(new_filter.key, _Group(new_filter))
        group.subscribers[subscriber] = None
        delivered = self._delivered[topic.name]
        start = delivered if since is None else since
        if since is not None and since > topic.seq:  # a seq from before a server restart
            subscriber.send(Message.control("gap", topic.name, topic.seq, from_seq=None,
                                            to_seq=None, missed=None, reason="restart"))
            start = 0
        subscription = Subscription(topic.name, group.filter, last_seq=start)
        subscriber.subscriptions[topic.name] = subscription
        subscriber.send(Message.control("subscribed", topic.name, topic.seq))
        if since is not None:
            await self._replay(subscriber, topic, subscription)

    async def _replay(self, subscriber: Subscriber, topic: Topic, sub: Subscription) -> None:
        """Send buffered messages after `sub.last_seq`, then hand over to the live fan-out."""
        first, _ = topic.after(sub.last_seq, upto=sub.last_seq)
        if sub.last_seq + 1 < first:
            subscriber.send(Message.control(
                "gap", topic.name, topic.seq, from_seq=sub.last_seq + 1, to_seq=first - 1,
                missed=None, reason="expired"))
        sub.replaying = True
        try:
            while subscriber.subscriptions.get(topic.name) is sub:
                _, entries = topic.after(sub.last_seq, upto=self._delivered[topic.name])
                if not entries:
                    break
                for i, entry in enumerate(entries):
                    item = sub.filter.select(entry.item)
                    if item is not None:
                        message = Message(topic.render(entry.seq, item))
                        subscriber.deliver(Bundle([message]), replay=True)
                    sub.last_seq = max(sub.last_seq, entry.seq)
                    if i % YIELD_EVERY == YIELD_EVERY - 1:
                        await asyncio.sleep(0)
        finally:
            sub.replaying = False

    def recent(self, topic_name: Any, spec: dict[str, Any], since: Any = None,
               limit: int = 100) -> dict[str, Any]:
        """A topic's buffered messages, for request/response clients (REST, MCP).

        Without `since`: the newest `limit` messages that pass the filter. With `since`:
        the oldest `limit` messages after that seq; call again with the reply's `cursor`
        to go on. `gap` says when messages after `since` have already left the buffer
        (or `since` is from before a restart).
        """
        topic = self._topic(topic_name)
        if since is not None and (isinstance(since, bool) or not isinstance(since, int)
                                  or since < 0):
            raise InvalidInput("since must be a non-negative integer seq", field="since")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise InvalidInput("limit must be an integer from 1 to 1000", field="limit")
        selected = topic.parse_filter(spec)
        gap: dict[str, Any] | None = None
        if since is not None and since > topic.seq:
            gap = {"reason": "restart", "from_seq": None, "to_seq": None}
            since = 0
        first, entries = topic.after(0 if since is None else since)
        if since is not None and since + 1 < first and gap is None:
            gap = {"reason": "expired", "from_seq": since + 1, "to_seq": first - 1}
        messages: list[dict[str, Any]] = []
        cursor = topic.seq if since is None else since
        more = False
        ordered = entries if since is not None else reversed(entries)
        for entry in ordered:
            if len(messages) >= limit:
                more = since is not None
                break
            item = selected.select(entry.item)
            if item is not None:
                messages.append(topic.render(entry.seq, item))
            if since is not None:
                cursor = entry.seq
        if since is None:
            messages.reverse()
            cursor = entries[-1].seq if entries else cursor
        elif not more and entries:
            cursor = max(cursor, entries[-1].seq)
        return {"topic": topic.name, "seq": topic.seq, "first_seq": first, "cursor": cursor,
                "more": more, "gap": gap, "messages": messages}

    def _leave(self, subscriber: Subscriber, topic: str) -> None:
        sub = subscriber.subscriptions.pop(topic, None)
        if sub is None:
            return
        groups = self._groups[topic]
        group = groups.get(sub.filter.key)
        if group is not None:
            group.subscribers.pop(subscriber, None)
            if not group.subscribers:
                del groups[sub.filter.key]

    # -- tasks --------------------------------------------------------------------------

    async def _fan_out(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            for topic in self.topics.values():
                try:
                    await self._deliver_new(topic)
                except Exception:
                    log.exception("stream fan-out of %s failed; going on", topic.name)

    async def _deliver_new(self, topic: Topic) -> None:
        name = topic.name
        first, entries = topic.after(self._delivered[name])
        if self._delivered[name] + 1 < first:  # the buffer wrapped before fan-out got there
            lost_from, lost_to = self._delivered[name] + 1, first - 1
            for group in self._groups[name].values():
                for subscriber in group.subscribers:
                    subscriber.send(Message.control(
                        "gap", name, topic.seq, from_seq=lost_from, to_seq=lost_to,
                        missed=None, reason="overload"))
            self._delivered[name] = lost_to
        # Entries that piled up while the last round was going out leave together: one write
        # per client for all of them, so a busy fan-out catches up instead of falling behind.
        for start in range(0, len(entries), MAX_BUNDLE):
            chunk = entries[start:start + MAX_BUNDLE]
            self._delivered[name] = chunk[-1].seq
            for group in list(self._groups[name].values()):
                if not group.subscribers:
                    continue
                messages = []
                for entry in chunk:
                    item = group.filter.select(entry.item)
                    if item is not None:
                        messages.append(Message(topic.render(entry.seq, item)))
                if not messages:
                    continue
                bundle = Bundle(messages)
                for i, subscriber in enumerate(list(group.subscribers)):
                    self.sent += subscriber.deliver(bundle)
                    if i % YIELD_EVERY == YIELD_EVERY - 1:
                        await asyncio.sleep(0)

    async def _tend(self) -> None:
        """Heartbeats, gaps for clients that have drained, and cutting off stuck clients."""
        s = self.settings
        tick_s = min(1.0, s.heartbeat_s)
        next_beat = time.monotonic() + s.heartbeat_s
        while True:
            await asyncio.sleep(tick_s)
            now = time.monotonic()
            beat = now >= next_beat
            if beat:
                next_beat = now + s.heartbeat_s
            for i, subscriber in enumerate(list(self.subscribers)):
                self._tend_one(subscriber, now, beat)
                if i % YIELD_EVERY == YIELD_EVERY - 1:
                    await asyncio.sleep(0)

    def _tend_one(self, subscriber: Subscriber, now: float, beat: bool) -> None:
        if subscriber.sink.is_closed():
            return
        if (subscriber.lagging_since is not None
                and now - subscriber.lagging_since > self.settings.client_timeout_s):
            log.warning("stream client cut off: its backlog did not drain in %g s",
                        self.settings.client_timeout_s)
            subscriber.sink.abort()
            return
        subscriber.send_gaps(current_seq=lambda name: self.topics[name].seq)
        if beat and subscriber.sink.backlog_bytes() <= subscriber.max_backlog_bytes:
            seqs = {name: self.topics[name].seq for name in subscriber.subscriptions}
            subscriber.send(Message.control("heartbeat", ts=_now_ms(), seqs=seqs))

    async def _publish_stats(self) -> None:
        interval_s = self.settings.stats_interval_s
        counted = ("samples", "events", "anomalies", "alerts")
        last = {name: self.topics[name].published for name in counted}
        last_at = time.monotonic()
        while True:
            await asyncio.sleep(interval_s)
            now = time.monotonic()
            counts = {name: self.topics[name].published for name in counted}
            per_s = {name: (counts[name] - last[name]) / max(now - last_at, 1e-9)
                     for name in counted}
            last, last_at = counts, now
            try:
                extra = self.stats_extra()
            except Exception:
                log.exception("stats snapshot failed")
                extra = {}
            self.publish("stats", {
                "ts": _now_ms(),
                "ingest_samples_per_s": round(per_s["samples"], 3),
                "events_per_s": round(per_s["events"], 3),
                "anomalies_per_min": round(per_s["anomalies"] * 60, 3),
                "alert_transitions_per_min": round(per_s["alerts"] * 60, 3),
                "stream_clients": len(self.subscribers),
                **extra,
            })
