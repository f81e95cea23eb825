"""What a notification is about: the `Alert` view a channel sees and the `Notification` it sends.

Plain objects built by the alert manager (issue 6) and read by every channel module; nothing
here knows JSON, HTTP or SMTP. Helpers mirror Alertmanager where receivers compare values:
label fingerprints, group keys and RFC 3339 times are byte-for-byte what Alertmanager sends.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Literal

AlertStatus = Literal["firing", "resolved"]

SEVERITIES = ("critical", "high", "medium", "low", "info")
"""Severities (DESIGN.md), most urgent first."""

ZERO_TIME = "0001-01-01T00:00:00Z"
"""Go's zero `time.Time`: what Alertmanager sends as `endsAt` while an alert still fires."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3
_MASK64 = 0xFFFFFFFFFFFFFFFF


class Reason(StrEnum):
    """Why a notification is sent (Alertmanager's notify pipeline, STYLE.md)."""

    FIRST = "first"
    """The group's first notification."""
    NEW_ALERTS = "new_alerts"
    """Alerts joined a group that was already notified."""
    RESOLVED = "resolved"
    """Alerts of the group resolved."""
    REPEAT = "repeat"
    """Nothing changed, but `repeat_interval` passed."""


@dataclass(frozen=True)
class Alert:
    """One alert as channels see it: labels identify it, annotations describe it."""

    fingerprint: str
    status: AlertStatus
    labels: Mapping[str, str]
    annotations: Mapping[str, str] = field(default_factory=dict)
    starts_at_ms: int = 0
    ends_at_ms: int | None = None
    """When it resolved (or is due to); `None` while unknown."""
    generator_url: str = ""
    value: float | None = None
    """The value that made the rule fire or resolve, when there is one."""

    def __post_init__(self) -> None:
        if self.status not in ("firing", "resolved"):
            raise ValueError(f"alert status must be 'firing' or 'resolved', not {self.status!r}")

    @property
    def is_firing(self) -> bool:
        return self.status == "firing"

    @property
    def alertname(self) -> str:
        return self.labels.get("alertname", "")

    @property
    def severity(self) -> str:
        return self.labels.get("severity", "")


@dataclass(frozen=True)
class Notification:
    """One message to one channel about one group of alerts, and the reason it is sent."""

    receiver: str
    """The channel's name (Alertmanager's `receiver`)."""
    group_key: str
    group_labels: Mapping[str, str]
    alerts: tuple[Alert, ...]
    reason: Reason
    ts_ms: int = 0
    """When the notification was made (ms since epoch)."""
    external_url: str = ""
    """Where seismo's dashboard is reachable, for links back."""

    @property
    def status(self) -> AlertStatus:
        """`firing` while any alert of the group fires, else `resolved` (as Alertmanager)."""
        return "firing" if any(a.is_firing for a in self.alerts) else "resolved"

    @property
    def firing(self) -> tuple[Alert, ...]:
        return tuple(a for a in self.alerts if a.is_firing)

    @property
    def resolved(self) -> tuple[Alert, ...]:
        return tuple(a for a in self.alerts if not a.is_firing)

    @property
    def common_labels(self) -> dict[str, str]:
        """Labels with the same value on every alert."""
        return common_pairs(a.labels for a in self.alerts)

    @property
    def common_annotations(self) -> dict[str, str]:
        """Annotations with the same value on every alert."""
        return common_pairs(a.annotations for a in self.alerts)

    @property
    def severity(self) -> str:
        """The most urgent known severity among firing alerts (all alerts once resolved)."""
        alerts = self.firing or self.alerts
        known = [SEVERITIES.index(a.severity) for a in alerts if a.severity in SEVERITIES]
        return SEVERITIES[min(known)] if known else ""

    @property
    def title(self) -> str:
        """Alertmanager's default title: `[FIRING:2] HighCPU (web-1 critical)`."""
        head = f"[{self.status.upper()}:{len(self.firing)}]" if self.firing else "[RESOLVED]"
        group = " ".join(v for _, v in sorted(self.group_labels.items()))
        common = self.common_labels
        extra = " ".join(v for k, v in sorted(common.items()) if k not in self.group_labels)
        text = f"{head} {group}".rstrip()
        return f"{text} ({extra})" if extra else text


def common_pairs(mappings: Iterable[Mapping[str, str]]) -> dict[str, str]:
    """The key/value pairs every mapping has, sorted by key (empty when there are none)."""
    common: dict[str, str] | None = None
    for mapping in mappings:
        if common is None:
            common = dict(mapping)
        else:
            common = {k: v for k, v in common.items() if mapping.get(k) == v}
    return dict(sorted((common or {}).items()))


def fingerprint_of(labels: Mapping[str, str]) -> str:
    """Alertmanager's fingerprint of a label set: FNV-1a 64 of sorted pairs, 16 hex digits.

    Mirrors `model.LabelSet.Fingerprint` in prometheus/common (0xff after names and values).

    >>> fingerprint_of({"alertname": "BenchHigh", "instance": "127.0.0.1:44745",
    ...                 "job": "exp", "severity": "critical"})
    '0515facf0ae64530'
    """
    h = _FNV_OFFSET
    for name in sorted(labels):
        for part in (name, labels[name]):
            for byte in part.encode():
                h = ((h ^ byte) * _FNV_PRIME) & _MASK64
            h = ((h ^ 0xFF) * _FNV_PRIME) & _MASK64
    return f"{h:016x}"


def format_labels(labels: Mapping[str, str]) -> str:
    """A label set as Prometheus prints it: `{alertname="HighCPU", host="a"}`, sorted."""
    pairs = (f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in sorted(labels.items()))
    return "{" + ", ".join(pairs) + "}"


def group_key(group_labels: Mapping[str, str], route_key: str = "{}") -> str:
    """Alertmanager's group key: the route's matchers, a colon, the group labels.

    >>> group_key({"alertname": "BenchHigh"})
    '{}:{alertname="BenchHigh"}'
    """
    return f"{route_key}:{format_labels(group_labels)}"


def rfc3339(ts_ms: int | None) -> str:
    """A time as Go's RFC 3339 (nano) in UTC, trailing zeros of the fraction dropped.

    `None` is the zero time Alertmanager sends for an unknown end.

    >>> rfc3339(1795421405508), rfc3339(1795421405000), rfc3339(None)
    ('2026-11-23T08:10:05.508Z', '2026-11-23T08:10:05Z', '0001-01-01T00:00:00Z')
    """
    if ts_ms is None:
        return ZERO_TIME
    seconds, ms = divmod(ts_ms, 1000)
    moment = _EPOCH + timedelta(seconds=seconds)
    fraction = f".{ms:03d}".rstrip("0") if ms else ""
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"


def format_value(value: float) -> str:
    """A sample value the way Prometheus templates print `$value`: shortest exact form."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return repr(value)
