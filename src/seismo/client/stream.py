"""A subscription to one topic of the live stream (`/api/v1/stream`, docs/stream.md).

It reconnects by itself with backoff and resumes after the last seq it yielded, so a
client loses nothing the server's replay buffer still holds; what it does lose arrives as
a `gap` message.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from types import TracebackType
from typing import Any

import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI, WebSocketException

from seismo.client.backoff import Backoff
from seismo.client.calls import auth_headers, error_for
from seismo.errors import Forbidden, InvalidInput, SeismoError, Unauthorized

Message = dict[str, Any]
CONTROL_TYPES = frozenset({"subscribed", "unsubscribed", "pong", "heartbeat"})
AUTH_CLOSE_CODES: dict[int, type[SeismoError]] = {4401: Unauthorized, 4403: Forbidden}
CLOSE_TIMEOUT_S = 2.0


def stream_url(url: str) -> str:
    """The WebSocket address of a server's stream: http → ws, https → wss.

    >>> stream_url("https://seismo.example.com/")
    'wss://seismo.example.com/api/v1/stream'
    """
    base = url.rstrip("/")
    for plain, ws in (("http://", "ws://"), ("https://", "wss://")):
        if base.startswith(plain):
            base = ws + base.removeprefix(plain)
    return base + "/api/v1/stream"


class Subscription:
    """An async iterator of one topic's messages; see `AsyncClient.subscribe`.

    `last_seq` is the seq of the last message yielded; `connection` is the current
    WebSocket connection, or None while (re)connecting.
    """

    def __init__(self, url: str, topic: str, filters: dict[str, Any], *,
                 token: str | None = None, since: int | None = None,
                 idle_timeout_s: float = 40.0, open_timeout_s: float = 30.0,
                 backoff: Backoff | None = None,
                 on_retry: Callable[[Exception, float], None] | None = None,
                 on_close: Callable[[Subscription], None] | None = None) -> None:
        self.url = stream_url(url)
        self.topic = topic
        self.filters = {k: v for k, v in filters.items() if v is not None}
        self.last_seq = since
        self.idle_timeout_s = idle_timeout_s
        self.open_timeout_s = open_timeout_s
        self.backoff = backoff or Backoff()
        self.connection: ClientConnection | None = None
        self._headers = auth_headers(token)
        self._on_retry = on_retry
        self._on_close = on_close
        self._start_seq: int | None = None  # the topic's seq when first subscribed
        self._closed = False

    def __aiter__(self) -> Subscription:
        return self

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    async def __anext__(self) -> Message:
        try:
            return await self._next()
        except SeismoError:
            await self.aclose()
            raise

    async def _next(self) -> Message:
        while not self._closed:
            try:
                if self.connection is None:
                    await self._open()
                assert self.connection is not None
                async with asyncio.timeout(self.idle_timeout_s):
                    raw = await self.connection.recv()
            except ConnectionClosed as exc:
                self._raise_if_refused(exc)
                await self._retry_after(exc)
                continue
            except TimeoutError as exc:
                silent = self.connection is not None  # open, but quiet past the heartbeats
                await self._retry_after(TimeoutError(
                    f"nothing received for {self.idle_timeout_s:g} s") if silent else exc)
                continue
            except (OSError, WebSocketException) as exc:
                await self._retry_after(exc)
                continue
            message = self._accept(raw)
            if message is not None:
                return message
        raise StopAsyncIteration

    async def aclose(self) -> None:
        """Stop: close the connection; the iterator ends."""
        self._closed = True
        await self._drop()
        if self._on_close is not None:
            self._on_close(self)

    def resume_seq(self) -> int | None:
        """The `since` of the next subscribe: after what was yielded, or what was current."""
        return self.last_seq if self.last_seq is not None else self._start_seq

    async def _open(self) -> None:
        try:
            # No size limit: the server bounds its messages, and a limit here would turn
            # one large batch into an endless reconnect-and-replay loop.
            connection = await connect(self.url, additional_headers=self._headers,
                                       open_timeout=self.open_timeout_s, max_size=None,
                                       close_timeout=CLOSE_TIMEOUT_S)
        except InvalidStatus as exc:
            raise self._refused(exc) from None
        except InvalidURI as exc:
            raise InvalidInput(f"bad server address {self.url!r}: {exc}", field="url") from None
        self.connection = connection
        request: dict[str, Any] = {"op": "subscribe", "topic": self.topic, **self.filters}
        since = self.resume_seq()
        if since is not None:
            request["since"] = since
        await connection.send(msgspec.json.encode(request).decode())

    def _accept(self, raw: str | bytes) -> Message | None:
        """The message if the caller should see it; control messages are handled here."""
        try:
            message = msgspec.json.decode(raw)
        except msgspec.DecodeError as exc:
            raise SeismoError(f"the server sent a message that is not JSON: {exc}") from None
        if not isinstance(message, dict):
            return None
        kind = message.get("type")
        if kind == "subscribed":
            self.backoff.reset()
            if self._start_seq is None and isinstance(message.get("seq"), int):
                self._start_seq = message["seq"]
            return None
        if kind == "error":  # the only request sent is the subscribe: retrying cannot help
            raise InvalidInput(str(message.get("error")), field=message.get("field"))
        if kind in CONTROL_TYPES or message.get("topic") != self.topic:
            return None
        seq = message.get("seq")
        if kind == "gap":
            if message.get("reason") == "restart":  # seqs start again from 1
                self.last_seq = self._start_seq = 0
            elif isinstance(message.get("to_seq"), int):
                self.last_seq = max(self.last_seq or 0, message["to_seq"])
            return message
        if isinstance(seq, int):
            if self.last_seq is not None and seq <= self.last_seq:
                return None  # already yielded before a reconnect
            self.last_seq = seq
        return message

    def _raise_if_refused(self, exc: ConnectionClosed) -> None:
        """Close codes 4401 and 4403 end the subscription: a retry would be refused too."""
        close = exc.rcvd
        if close is not None and close.code in AUTH_CLOSE_CODES:
            raise AUTH_CLOSE_CODES[close.code](
                f"stream closed with {close.code}: {close.reason or 'not allowed'}")

    def _refused(self, exc: InvalidStatus) -> Exception:
        """Handshake refused: 5xx, 408 and 429 are worth retrying, other statuses are not."""
        status = exc.response.status_code
        if status >= 500 or status in (408, 429):
            return exc
        body = exc.response.body or b""
        try:
            reply = msgspec.json.decode(body)
        except msgspec.DecodeError:
            reply = None
        if isinstance(reply, dict) and reply.get("error"):
            return error_for(status, str(reply["error"]), field=reply.get("field"))
        return error_for(status, body.decode(errors="replace").strip()[:200]
                         or exc.response.reason_phrase)

    async def _retry_after(self, error: Exception) -> None:
        await self._drop()
        if self._closed:  # closed by `aclose()` from another task: no retry
            return
        delay_s = self.backoff.next_delay_s()
        if self._on_retry is not None:
            self._on_retry(error, delay_s)
        await asyncio.sleep(delay_s)

    async def _drop(self) -> None:
        connection, self.connection = self.connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close()
