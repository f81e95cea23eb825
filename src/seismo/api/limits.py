"""Limits on every request, before its route runs: body size, and requests per client.

A pure ASGI middleware just inside access control (it knows the caller's token). A
declared `Content-Length` over `limits.max_body_bytes` is refused with 413 before a byte
of the body is read; a body sent without one is cut off with the same 413 once it passes
the limit. Each client, its token or else its address, may make `limits.requests_per_s`
requests a second with bursts of `limits.request_burst`; past that it gets 429 with
`Retry-After`. Routes with a smaller body limit of their own (`api/body.py`) refuse sooner.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from seismo.api.access import refuse
from seismo.auth import Principal, RateLimiter
from seismo.config import Limits
from seismo.errors import TooLarge

UNLIMITED_PATHS: Final = frozenset({"/api/v1/health"})
"""A health probe must see the server as it is, not the prober's budget: never limited."""


def client_key(scope: Scope) -> tuple[str, object]:
    """Whose budget a request spends: its token's, else its remote address's."""
    principal: Principal | None = scope.get("state", {}).get("principal")
    if principal is not None and principal.token_id is not None:
        return "token", principal.token_id
    client = scope.get("client")
    return "address", client[0] if client else "unknown"


class RequestLimits:
    """ASGI middleware that enforces body size and request rate; see the module docstring."""

    def __init__(self, app: ASGIApp, limits: Limits,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.app = app
        self.max_body_bytes = limits.max_body_bytes
        self.rate = limits.requests_per_s
        self.limiter = RateLimiter(
            burst_s=limits.request_burst / self.rate if self.rate > 0 else 1.0, clock=clock)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if self.rate > 0 and scope["path"] not in UNLIMITED_PATHS:
            wait_s = self.limiter.take(client_key(scope), self.rate, 1.0)
            if wait_s > 0:
                retry_after = max(1, math.ceil(wait_s))
                await refuse(scope, receive, send, 429,
                             f"too many requests: at most {self.rate:g} a second per client "
                             f"(limits.requests_per_s); retry in {retry_after} s",
                             headers=[(b"retry-after", str(retry_after).encode())])
                return
        if scope["type"] == "http":
            declared = _content_length(scope)
            if declared is not None and declared > self.max_body_bytes:
                await refuse(scope, receive, send, 413,
                             f"body of {declared} bytes is over the limit of "
                             f"{self.max_body_bytes} (limits.max_body_bytes)",
                             field="body", limit=self.max_body_bytes)
                return
            receive = self._bounded(receive)
        await self.app(scope, receive, send)

    def _bounded(self, receive: Receive) -> Receive:
        """`receive` that raises TooLarge (a 413) once the body passes the limit."""
        size = 0

        async def bounded() -> Message:
            nonlocal size
            message = await receive()
            if message["type"] == "http.request":
                size += len(message.get("body", b""))
                if size > self.max_body_bytes:
                    raise TooLarge(f"body is over the limit of {self.max_body_bytes} bytes "
                                   "(limits.max_body_bytes)", field="body",
                                   limit=self.max_body_bytes)
            return message

        return bounded


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None
