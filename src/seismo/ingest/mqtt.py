"""MQTT subscriber: messages on the configured topics become samples.

Each subscription maps a topic filter to a metric and labels, which may quote the
topic's wildcards: with `factory/+/power`, `<+1>` is the first `+` level (`<#>` is what
`#` matched). A payload is a plain number, or JSON: a number, `{"value": ..}` or the
field at the `value` path (`data.power`). Messages are batched (every flush_interval_s)
into the same validation and WAL as pushed samples. paho reconnects with backoff.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import deque
from typing import Any

import msgspec
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from seismo.config import Mqtt, MqttSubscription
from seismo.errors import SeismoError
from seismo.ingest.schema import SeriesIn

log = logging.getLogger(__name__)
_PLACEHOLDER = re.compile(r"<\+(\d+)>|<#>")


class PayloadError(ValueError):
    pass


def wildcards(topic_filter: str, topic: str) -> tuple[list[str], str] | None:
    """The levels matched by each `+` and by `#`, or None when the topic does not match."""
    pattern, levels = topic_filter.split("/"), topic.split("/")
    plus: list[str] = []
    for i, part in enumerate(pattern):
        if part == "#":
            return plus, "/".join(levels[i:])
        if i >= len(levels):
            return None
        if part == "+":
            plus.append(levels[i])
        elif part != levels[i]:
            return None
    return (plus, "") if len(levels) == len(pattern) else None


def fill(template: str, plus: list[str], rest: str) -> str:
    """`machine_<+1>` with the topic's wildcard levels put in."""
    def put(match: re.Match[str]) -> str:
        if match.group(1) is None:
            return rest
        n = int(match.group(1))
        return plus[n - 1] if 0 < n <= len(plus) else ""
    return _PLACEHOLDER.sub(put, template)


def _field(document: Any, path: str) -> Any:
    for key in path.split("."):
        if not isinstance(document, dict) or key not in document:
            raise PayloadError(f"payload has no field {path!r}")
        document = document[key]
    return document


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise PayloadError(f"{what} {value!r} is not a number")


def read_payload(payload: bytes, sub: MqttSubscription, now_ms: int) -> tuple[int, float]:
    """(timestamp ms, value) of one message; PayloadError when there is none."""
    text = payload.strip()
    try:
        return now_ms, float(text)
    except ValueError:
        pass
    try:
        document = msgspec.json.decode(text)
    except msgspec.DecodeError:
        raise PayloadError("payload is neither a number nor JSON") from None
    if sub.value:
        value = _number(_field(document, sub.value), f"field {sub.value!r}")
    elif isinstance(document, dict):
        value = _number(_field(document, "value"), "field 'value'")
    else:
        value = _number(document, "payload")
    ts = now_ms
    if sub.timestamp:
        stamp = _number(_field(document, sub.timestamp), f"field {sub.timestamp!r}")
        ts = int(stamp * 1000) if stamp < 1e11 else int(stamp)  # seconds or milliseconds
    return ts, value


class MqttSubscriber:
    """The background worker (start/stop) that subscribes and stores what arrives."""

    name = "mqtt"

    def __init__(self, engine: Any, settings: Mqtt) -> None:
        self.engine = engine
        self.settings = settings
        self._buffer: deque[tuple[str, tuple[tuple[str, str], ...], int, float]] = deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.received = self.dropped = self.refused = 0
        self.client = paho.Client(CallbackAPIVersion.VERSION2,
                                  client_id=settings.client_id or "")
        if settings.username:
            password = settings.password.get_secret_value()
            self.client.username_pw_set(settings.username, password or None)
        self.client.reconnect_delay_set(max(1, int(settings.reconnect_min_s)),
                                        max(1, int(settings.reconnect_max_s)))
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message

    @property
    def is_running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() \
            and not self._stop.is_set()

    @property
    def is_connected(self) -> bool:
        return bool(self.client.is_connected())

    def start(self) -> None:
        self._stop.clear()
        s = self.settings
        self.client.connect_async(s.host, s.port, keepalive=s.keepalive_s)
        self.client.loop_start()  # its own thread; reconnects with backoff
        self._thread = threading.Thread(target=self._run, name="seismo-mqtt", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.client.disconnect()
        self.client.loop_stop()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.flush()

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any,
                    properties: Any) -> None:
        if reason.is_failure:
            log.warning("mqtt: %s:%s refused the connection: %s", self.settings.host,
                        self.settings.port, reason)
            return
        for sub in self.settings.subscriptions:  # again after every reconnect
            client.subscribe(sub.topic, qos=sub.qos)

    def _on_message(self, client: paho.Client, userdata: Any, message: Any) -> None:
        topic = message.topic
        for sub in self.settings.subscriptions:
            found = wildcards(sub.topic, topic)
            if found is None:
                continue
            plus, rest = found
            try:
                ts, value = read_payload(message.payload, sub, time.time_ns() // 1_000_000)
            except PayloadError as exc:
                self.refused += 1
                self.engine.telemetry.samples_rejected.labels("mqtt_payload").inc()
                log.debug("mqtt: message on %s not stored: %s", topic, exc)
                return
            metric = fill(sub.metric, plus, rest)
            labels = tuple((k, fill(v, plus, rest)) for k, v in sub.labels.items())
            with self._lock:
                if len(self._buffer) >= self.settings.queue_samples:
                    self.dropped += 1  # drop the newest: the flush thread is behind
                    self.engine.telemetry.samples_rejected.labels("mqtt_overflow").inc()
                    return
                self._buffer.append((metric, labels, ts, value))
                self.received += 1
            return

    def _run(self) -> None:
        while not self._stop.wait(self.settings.flush_interval_s):
            self.flush()

    def flush(self) -> None:
        """Store everything buffered so far in one batch."""
        with self._lock:
            taken = list(self._buffer)
            self._buffer.clear()
        if not taken:
            return
        groups: dict[tuple[str, tuple[tuple[str, str], ...]],
                     tuple[list[int], list[float | None]]] = {}
        for metric, labels, ts, value in taken:
            group = groups.setdefault((metric, labels), ([], []))
            group[0].append(ts)
            group[1].append(value)
        series = [SeriesIn(metric=metric, labels=dict(labels), timestamps=stamps,
                           values=values) for (metric, labels), (stamps, values) in groups.items()]
        at_ms = time.time_ns() // 1_000_000
        try:
            self.engine.ingest_blocking(series, at_ms)
        except SeismoError as exc:
            log.warning("mqtt: %d samples not stored: %s", len(taken), exc.message)
