"""The one small protocol every channel module implements, and what they share.

A channel turns a `Notification` into the bytes its receiver expects (`payload`) and says
whether a failed delivery is worth retrying (`should_retry`). Sending, the outbox and
retries with backoff come later (issue 6); they will only see this protocol.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar, NamedTuple, Protocol

from seismo.notify.message import Notification

JSON = "application/json"

SEVERITY_COLOURS = {
    "critical": "#B71C1C",
    "high": "#E65100",
    "medium": "#F9A825",
    "low": "#1E88E5",
    "info": "#90A4AE",
}
"""Colour per severity (firing alerts); resolved alerts are `RESOLVED_COLOUR`."""
RESOLVED_COLOUR = "#2E7D32"
UNKNOWN_COLOUR = "#757575"


class Payload(NamedTuple):
    """What to send: a content type and the exact bytes (unpacks as a pair)."""

    content_type: str
    body: bytes


class Channel(Protocol):
    """Where notifications go (DESIGN.md): one module per kind under `seismo.notify`."""

    kind: ClassVar[str]

    @property
    def name(self) -> str: ...

    def payload(self, notification: Notification) -> Payload:
        """The request body for this notification."""
        ...

    def should_retry(self, status: int) -> bool:
        """Whether a delivery that got `status` back may succeed if tried again."""
        ...


def should_retry(status: int) -> bool:
    """HTTP: retry server errors, timeouts and rate limits; a 4xx will fail the same way."""
    return status >= 500 or status in (408, 425, 429)


def encode_json(document: Any) -> bytes:
    """Compact UTF-8 JSON, keys in the order given (as the receivers' own examples)."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def colour_of(status: str, severity: str) -> str:
    """The colour of an alert or a group: green once resolved, else by severity."""
    if status == "resolved":
        return RESOLVED_COLOUR
    return SEVERITY_COLOURS.get(severity, UNKNOWN_COLOUR)


def is_web_link(url: str) -> bool:
    """Only http(s) URLs become links; anything else (`javascript:`, empty) stays text."""
    return url.startswith(("http://", "https://"))


def clip(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, the last one an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def summary_of(annotations: Mapping[str, str], fallback: str) -> str:
    """The line that says what is wrong: `summary`, else `description`, else `fallback`."""
    return annotations.get("summary") or annotations.get("description") or fallback
