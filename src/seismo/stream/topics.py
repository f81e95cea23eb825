"""Topics of the live stream: a per-topic seq, a bounded replay buffer and subscription filters.

`publish` may be called from any thread (the ingest writer publishes durable batches);
filters and rendering run on the event loop. Samples are kept as batches (numpy arrays)
and filtered with a per-selector boolean mask over series slots.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Mapping
from itertools import islice
from typing import Any, NamedTuple

import numpy as np

from seismo.errors import InvalidInput
from seismo.query.selector import Selector, parse_selector
from seismo.store.batch import Batch
from seismo.store.series import SeriesIndex
from seismo.stream.message import encode


class Entry(NamedTuple):
    seq: int
    item: Any
    size: int


class Filter:
    """Which items of a topic one subscription wants; `key` groups equal subscriptions."""

    key: str = ""

    def select(self, item: Any) -> Any | None:
        """The item, the part of it that matches, or None."""
        return item


class Topic:
    """A named stream of items with a bounded buffer of the newest ones (count and bytes)."""

    def __init__(self, name: str, message_type: str, *, max_messages: int,
                 max_bytes: int, filters: tuple[str, ...] = ()) -> None:
        self.name = name
        self.message_type = message_type
        self.filters = filters
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self.seq = 0
        self.published = 0  # items, for rates; samples topics count samples
        self._entries: deque[Entry] = deque()
        self._bytes = 0
        self._lock = threading.Lock()

    def publish(self, item: Any) -> int:
        """Append an item; return its seq. Thread-safe; drops the oldest past the bounds."""
        size = self.size_of(item)
        with self._lock:
            self.seq += 1
            self.published += self.count_of(item)
            self._entries.append(Entry(self.seq, item, size))
            self._bytes += size
            while len(self._entries) > 1 and (
                len(self._entries) > self.max_messages or self._bytes > self.max_bytes
            ):
                self._bytes -= self._entries.popleft().size
            return self.seq

    def after(self, seq: int, upto: int | None = None) -> tuple[int, list[Entry]]:
        """(first seq still held, entries with seq > `seq` and ≤ `upto`)."""
        with self._lock:
            first = self._entries[0].seq if self._entries else self.seq + 1
            start = max(0, seq + 1 - first)
            entries = list(islice(self._entries, start, None))
        if upto is not None:
            entries = [e for e in entries if e.seq <= upto]
        return first, entries

    def parse_filter(self, spec: Mapping[str, Any]) -> Filter:
        """A filter from the fields of a subscribe request; InvalidInput names a bad field."""
        return self._fields(spec)

    def _fields(self, spec: Mapping[str, Any]) -> FieldFilter:
        fields: dict[str, frozenset[str]] = {}
        for name, value in spec.items():
            if name not in self.filters:
                allowed = ", ".join(self.filters) or "none"
                raise InvalidInput(f"topic {self.name!r} has no filter {name!r} "
                                   f"(filters: {allowed})", field=name)
            if value is None:
                continue
            values = [value] if isinstance(value, str) else value
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                raise InvalidInput(f"{name} must be a string or a list of strings", field=name)
            if values:
                fields[name] = frozenset(values)
        return FieldFilter(fields)

    def render(self, seq: int, item: Any) -> dict[str, Any]:
        return {"type": self.message_type, "topic": self.name, "seq": seq,
                self.message_type: item}

    def size_of(self, item: Any) -> int:
        return len(encode(item))

    def count_of(self, item: Any) -> int:
        return 1


class FieldFilter(Filter):
    """Records whose fields have one of the given values (all fields must match)."""

    def __init__(self, fields: dict[str, frozenset[str]]) -> None:
        self.fields = fields
        self.key = encode({k: sorted(v) for k, v in sorted(fields.items())}).decode()

    def select(self, item: Any) -> Any | None:
        for name, values in self.fields.items():
            value = item.get(name, item.get(name + "s"))  # `detector` also matches `detectors`
            if isinstance(value, list):
                if not any(str(v) in values for v in value):
                    return None
            elif str(value) not in values:
                return None
        return item


class SeriesFilter(Filter):
    """Samples of the series a selector matches, as a mask over series slots."""

    def __init__(self, selector: Selector, index: SeriesIndex, text: str) -> None:
        self.selector = selector
        self.index = index
        self.key = text
        self._mask = np.zeros(0, dtype=bool)

    def _extend(self, upto: int) -> None:
        known = len(self._mask)
        new = np.fromiter(
            (self.selector.matches(self.index.info(s).metric, self.index.info(s).labels)
             for s in range(known, upto)),
            dtype=bool, count=upto - known,
        )
        self._mask = np.concatenate([self._mask, new])

    def select(self, item: Any) -> Batch | None:
        batch: Batch = item
        if len(batch) == 0:
            return None
        top = int(batch.slots.max()) + 1
        if top > len(self._mask):
            self._extend(max(top, len(self.index)))
        keep = self._mask[batch.slots]
        if keep.all():
            return batch
        if not keep.any():
            return None
        return Batch(batch.slots[keep], batch.sids[keep], batch.ts[keep], batch.values[keep])


class SamplesTopic(Topic):
    """Durable ingest batches; a subscription needs a series selector."""

    def __init__(self, index: SeriesIndex, *, max_messages: int, max_bytes: int) -> None:
        super().__init__("samples", "samples", max_messages=max_messages,
                         max_bytes=max_bytes, filters=("selector",))
        self.index = index

    def parse_filter(self, spec: Mapping[str, Any]) -> Filter:
        extra = set(spec) - {"selector"}
        if extra:
            name = sorted(extra)[0]
            raise InvalidInput(f"topic 'samples' has no filter {name!r} (filters: selector)",
                               field=name)
        text = spec.get("selector")
        if not isinstance(text, str) or not text.strip():
            raise InvalidInput("topic 'samples' needs a series selector, e.g. "
                               "cpu_usage{host=\"a\"}", field="selector")
        return SeriesFilter(parse_selector(text), self.index, text.strip())

    def render(self, seq: int, item: Any) -> dict[str, Any]:
        batch: Batch = item
        order = np.argsort(batch.slots, kind="stable")
        slots = batch.slots[order]
        ts = batch.ts[order]
        values = batch.values[order]
        cuts = (np.flatnonzero(np.diff(slots)) + 1).tolist()
        series = []
        for start, end in zip([0, *cuts], [*cuts, len(slots)], strict=True):
            info = self.index.info(int(slots[start]))
            series.append({"metric": info.metric, "labels": info.labels,
                           "timestamps": ts[start:end].tolist(),
                           "values": values[start:end].tolist()})
        return {"type": "samples", "topic": "samples", "seq": seq, "series": series}

    def size_of(self, item: Any) -> int:
        batch: Batch = item
        return 64 + 28 * len(batch)

    def count_of(self, item: Any) -> int:
        return len(item)


class RecordTopic(Topic):
    """Records as dicts (events, anomalies, alerts); an optional selector on their series."""

    def __init__(self, name: str, message_type: str, *, max_messages: int, max_bytes: int,
                 filters: tuple[str, ...] = (), by_series: bool = False,
                 counts: Callable[[Any], int] | None = None) -> None:
        super().__init__(name, message_type, max_messages=max_messages, max_bytes=max_bytes,
                         filters=filters + (("selector",) if by_series else ()))
        self.by_series = by_series
        self._counts = counts

    def count_of(self, item: Any) -> int:
        """How much an item adds to the topic's rate (an anomaly counts when it opens)."""
        return 1 if self._counts is None else self._counts(item)

    def parse_filter(self, spec: Mapping[str, Any]) -> Filter:
        if not self.by_series:
            return self._fields(spec)
        text = spec.get("selector")
        if text is not None and not isinstance(text, str):
            raise InvalidInput("selector must be a string", field="selector")
        selector = None if text is None else parse_selector(text)  # errors name `selector`
        fields = self._fields({k: v for k, v in spec.items() if k != "selector"})
        if selector is None or text is None:
            return fields
        return RecordSeriesFilter(selector, fields, text.strip())


class RecordSeriesFilter(Filter):
    """Records about series (anomalies) that a selector matches, plus field filters."""

    def __init__(self, selector: Selector, fields: FieldFilter, text: str) -> None:
        self.selector = selector
        self.fields = fields
        self.key = text + fields.key

    def select(self, item: Any) -> Any | None:
        if not self.selector.matches(str(item.get("metric", "")), item.get("labels") or {}):
            return None
        return self.fields.select(item)


class ChangeTopic(RecordTopic):
    """Records whose message type is their own `change` field (sessions: start, update,
    end); the record goes out under the topic's `message_type` key."""

    def render(self, seq: int, item: Any) -> dict[str, Any]:
        return {"type": item["change"], "topic": self.name, "seq": seq,
                self.message_type: item}
