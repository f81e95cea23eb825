"""A stream message: encoded to JSON once, framed for WebSocket once, sent to many clients.

The frame is a complete unmasked WebSocket text frame (RFC 6455 §5.2), so the same bytes
can be written to every subscriber's transport without going through a per-client codec.
"""

from __future__ import annotations

import struct
from typing import Any

import msgspec

_encoder = msgspec.json.Encoder()


def encode(obj: Any) -> bytes:
    return _encoder.encode(obj)


def ws_text_frame(payload: bytes) -> bytes:
    """One final, unmasked text frame holding `payload`.

    >>> ws_text_frame(b"hi")
    b'\\x81\\x02hi'
    """
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x81, n)
    elif n < 65536:
        header = struct.pack("!BBH", 0x81, 126, n)
    else:
        header = struct.pack("!BBQ", 0x81, 127, n)
    return header + payload


class Message:
    """One message to clients: its topic, seq, type and JSON payload; the frame is built once."""

    __slots__ = ("_frame", "payload", "seq", "topic", "type")

    def __init__(self, body: dict[str, Any]) -> None:
        self.topic: str | None = body.get("topic")
        self.seq: int | None = body.get("seq")
        self.type: str = body["type"]
        self.payload = encode(body)
        self._frame: bytes | None = None

    @classmethod
    def control(cls, type: str, topic: str | None = None, seq: int | None = None,
                **fields: Any) -> Message:
        return cls({"type": type, "topic": topic, "seq": seq, **fields})

    @property
    def frame(self) -> bytes:
        if self._frame is None:
            self._frame = ws_text_frame(self.payload)
        return self._frame

    def __len__(self) -> int:
        return len(self.payload)


class Bundle:
    """Messages of one topic, in seq order, that go to a client together: one write."""

    __slots__ = ("_frame", "messages")

    def __init__(self, messages: list[Message]) -> None:
        self.messages = messages
        self._frame: bytes | None = None

    @property
    def frame(self) -> bytes:
        """Every message's WebSocket frame, back to back (built once for all clients)."""
        if self._frame is None:
            self._frame = b"".join(m.frame for m in self.messages)
        return self._frame
