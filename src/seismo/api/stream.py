"""The live stream at the edge: WebSocket `/api/v1/stream` and Server-Sent Events.

Both hand a sink to the hub and feed it the client's requests; the hub does the rest.
On uvicorn a WebSocket's sink is its connection's transport (captured by
`CaptureTransport`), so a broadcast is one frame written to every client's socket.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, WebSocket
from fastapi.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from seismo.engine import Engine
from seismo.errors import InvalidInput, Overloaded
from seismo.stream import Hub, Message, QueueSink, TransportSink
from seismo.stream.subscriber import Sink, Subscriber

TRANSPORT_KEY = "seismo.transport"
CLOSE_TRY_LATER = 1013
CONTROL_TYPES = frozenset({"subscribed", "unsubscribed", "pong", "heartbeat", "error", "gap"})
SSE_FILTERS = ("selector", "type", "source", "severity", "kind", "detector", "state", "rule")


class CaptureTransport:
    """Outermost ASGI middleware: remember a WebSocket connection's transport in its scope."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            protocol = getattr(send, "__self__", None)
            transport = getattr(protocol, "transport", None)
            if (type(protocol).__module__.startswith("uvicorn.protocols.websockets")
                    and hasattr(transport, "get_write_buffer_size")):
                scope[TRANSPORT_KEY] = transport
        await self.app(scope, receive, send)


def build_stream_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1")

    @router.websocket("/stream")
    async def stream(websocket: WebSocket) -> None:
        """Subscribe to samples, events, anomalies, alerts and stats (docs/stream.md)."""
        hub: Hub = websocket.app.state.engine.hub
        await websocket.accept()
        transport: asyncio.WriteTransport | None = websocket.scope.get(TRANSPORT_KEY)
        queue: QueueSink | None = None
        sink: Sink
        if transport is not None:
            sink = TransportSink(transport)
        else:
            sink = queue = QueueSink()
        try:
            subscriber = hub.attach(sink)
        except Overloaded as exc:
            await websocket.close(CLOSE_TRY_LATER, exc.message[:120])
            return
        sender = None if queue is None else asyncio.create_task(_send_queued(websocket, queue))
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                text = message.get("text")
                await hub.handle(subscriber, text if text is not None else
                                 message.get("bytes") or b"")
        finally:
            hub.detach(subscriber)
            if queue is not None and sender is not None:
                queue.close()
                sender.cancel()

    @router.get("/stream/sse", tags=["stream"], response_class=Response, responses={
        200: {"content": {"text/event-stream": {}},
              "description": "one SSE event per message; see docs/stream.md"}})
    async def stream_sse(
        request: Request,
        topic: Annotated[list[str], Query(description="samples, events, anomalies, alerts, "
                                                      "stats, sessions; repeat for several")],
        selector: Annotated[str | None, Query(description="series selector")] = None,
        type: Annotated[list[str] | None, Query(description="events: event types")] = None,
        source: Annotated[list[str] | None, Query(description="events: sources")] = None,
        severity: Annotated[list[str] | None, Query(description="alerts: severities")] = None,
        kind: Annotated[list[str] | None, Query(description="anomalies: kinds")] = None,
        detector: Annotated[list[str] | None, Query()] = None,
        state: Annotated[list[str] | None, Query(description="alerts: states")] = None,
        rule: Annotated[list[str] | None, Query(description="alerts: rule names")] = None,
        since: Annotated[int | None, Query(ge=0, description="resume after this seq")] = None,
        last_event_id: Annotated[str | None, Header(description="resume cursor")] = None,
    ) -> Response:
        """The stream as Server-Sent Events; resumes every topic from `Last-Event-ID`."""
        engine: Engine = request.app.state.engine
        hub = engine.hub
        given = {"selector": selector, "type": type, "source": source, "severity": severity,
                 "kind": kind, "detector": detector, "state": state, "rule": rule}
        cursor = _sse_since(topic, since, last_event_id)
        for name in SSE_FILTERS:
            if given[name] is not None and not any(
                    name in hub.topics[t].filters for t in topic if t in hub.topics):
                raise InvalidInput(f"no chosen topic has a filter {name!r}", field=name)
        sink = QueueSink()
        subscriber = hub.attach(sink)
        try:
            for name in dict.fromkeys(topic):
                filters = hub.topics[name].filters if name in hub.topics else ()
                spec = {k: v for k, v in given.items() if k in filters and v is not None}
                await hub.subscribe(subscriber, name, spec, cursor.get(name))
        except BaseException:
            hub.detach(subscriber)
            raise
        return EventStream(hub, subscriber, sink, cursor)

    @router.get("/stream/recent", tags=["stream"])
    def stream_recent(
        request: Request,
        topic: Annotated[str, Query(description="samples, events, anomalies, alerts, stats, "
                                                     "sessions")],
        since: Annotated[int | None, Query(ge=0, description="messages after this seq; "
                                                  "absent: the newest")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        selector: Annotated[str | None, Query(description="series selector")] = None,
        type: Annotated[list[str] | None, Query(description="events: event types")] = None,
        source: Annotated[list[str] | None, Query(description="events: sources")] = None,
        severity: Annotated[list[str] | None, Query(description="alerts: severities")] = None,
        kind: Annotated[list[str] | None, Query(description="anomalies: kinds")] = None,
        detector: Annotated[list[str] | None, Query()] = None,
        state: Annotated[list[str] | None, Query(description="alerts, anomalies: states")]
        = None,
        rule: Annotated[list[str] | None, Query(description="alerts: rule names")] = None,
    ) -> dict[str, Any]:
        """A topic's buffered messages after a cursor (or the newest): the stream for
        clients that poll. Reply `{topic, seq, first_seq, cursor, more, gap, messages}`."""
        hub: Hub = request.app.state.engine.hub
        given = {"selector": selector, "type": type, "source": source, "severity": severity,
                 "kind": kind, "detector": detector, "state": state, "rule": rule}
        return hub.recent(topic, {k: v for k, v in given.items() if v is not None}, since,
                          limit)

    return router


async def _send_queued(websocket: WebSocket, queue: QueueSink) -> None:
    """Fallback sender for servers whose transport we cannot reach."""
    with contextlib.suppress(Exception):
        while (message := await queue.get()) is not None:
            await websocket.send_text(message.payload.decode())


def _sse_since(topics: list[str], since: int | None,
               last_event_id: str | None) -> dict[str, int]:
    """Per-topic resume points from `since` (one topic) or a `Last-Event-ID` cursor."""
    if since is not None:
        if len(set(topics)) != 1:
            raise InvalidInput("since needs exactly one topic; use Last-Event-ID for several",
                               field="since")
        return {topics[0]: since}
    cursor: dict[str, int] = {}
    for part in (last_event_id or "").split(";"):
        if not part.strip():
            continue
        name, _, seq = part.strip().partition("=")
        if not seq.isdigit():
            raise InvalidInput(f"bad cursor part {part!r}: use topic=seq;topic=seq",
                               field="Last-Event-ID")
        cursor[name] = int(seq)
    return cursor


class EventStream(Response):
    """A `text/event-stream` response fed from one subscriber's queue until it disconnects."""

    media_type = "text/event-stream"

    def __init__(self, hub: Hub, subscriber: Subscriber, sink: QueueSink,
                 cursor: dict[str, int]) -> None:
        self.status_code = 200
        self.background = None
        self.raw_headers = [(b"content-type", b"text/event-stream; charset=utf-8"),
                            (b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]
        self.hub = hub
        self.subscriber = subscriber
        self.sink = sink
        self.cursor = {t: seq for t, seq in cursor.items() if t in subscriber.subscriptions}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": self.raw_headers})
        gone = asyncio.create_task(_disconnect(receive))
        try:
            await send({"type": "http.response.body", "body": b"retry: 2000\n\n",
                        "more_body": True})
            while True:
                getter = asyncio.create_task(self.sink.get())
                await asyncio.wait({getter, gone}, return_when=asyncio.FIRST_COMPLETED)
                if not getter.done():
                    getter.cancel()
                    break
                message = getter.result()
                if message is None:
                    break
                await send({"type": "http.response.body", "body": self._event(message),
                            "more_body": True})
        except OSError:
            pass
        finally:
            gone.cancel()
            self.sink.close()
            self.hub.detach(self.subscriber)

    def _event(self, message: Message) -> bytes:
        head = b""
        if message.type not in CONTROL_TYPES and message.topic and message.seq:
            self.cursor[message.topic] = message.seq
            head = ("id: " + ";".join(f"{t}={s}" for t, s in self.cursor.items())
                    + "\n").encode()
        return head + b"event: " + message.type.encode() + b"\ndata: " + message.payload + b"\n\n"


async def _disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
