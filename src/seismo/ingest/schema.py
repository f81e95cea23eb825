"""Wire shapes of `POST /api/v1/ingest`, decoded once with msgspec."""

from __future__ import annotations

from typing import Annotated

import msgspec

# Epoch milliseconds; the bound keeps every arithmetic on them inside int64.
TimestampMs = Annotated[int, msgspec.Meta(ge=0, le=2**62)]


class SeriesIn(msgspec.Struct, forbid_unknown_fields=True):
    """Columnar form: one series, many points."""

    metric: str
    values: list[float | None]
    labels: dict[str, str] = {}
    timestamps: list[TimestampMs] | None = None


class SampleIn(msgspec.Struct, forbid_unknown_fields=True):
    """Row form: one sample."""

    metric: str
    value: float | None
    labels: dict[str, str] = {}
    timestamp: TimestampMs | None = None


class IngestBody(msgspec.Struct, forbid_unknown_fields=True):
    series: list[SeriesIn] | None = None
    samples: list[SampleIn] | None = None


class EventIn(msgspec.Struct, forbid_unknown_fields=True):
    type: str
    source: str = ""
    severity: str = "info"
    message: str = ""
    attributes: dict[str, object] = {}
    timestamp: TimestampMs | None = None


class EventsBody(msgspec.Struct, forbid_unknown_fields=True):
    events: list[EventIn]


_ingest_decoder = msgspec.json.Decoder(IngestBody)


def decode_ingest(body: bytes) -> IngestBody:
    return _ingest_decoder.decode(body)


def decode_events(body: bytes) -> list[EventIn]:
    """One event object, or `{"events": [...]}`."""
    raw = msgspec.json.decode(body)
    if isinstance(raw, dict) and "events" in raw:
        return msgspec.convert(raw, EventsBody).events
    return [msgspec.convert(raw, EventIn)]
