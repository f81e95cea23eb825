"""Routes and inhibit rules: which channels hear about an alert, and which alerts mute others.

Plain data read from `seismo.yaml` or the API (`routes:`, `inhibit_rules:`) by `parse_routes`
and `parse_inhibit_rules`, which refuse a bad key naming it (`routes[2].group_wait`). The
alert manager (`alerting/manager.py`) walks the routes; semantics mirror Alertmanager's
route tree flattened into an ordered list, and its `inhibit_rules`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from seismo.config import parse_duration_s
from seismo.errors import InvalidInput
from seismo.notify.message import SEVERITIES

LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}\Z")
ALL_LABELS = "..."
"""`group_by: ["..."]` groups by every label (Alertmanager's spelling)."""
DEFAULT_GROUP_WAIT_MS = 10_000
"""group_wait of a route that sets none, unless the group's first alert is critical (0)."""
DEFAULT_GROUP_INTERVAL_MS = 5 * 60_000
DEFAULT_REPEAT_INTERVAL_MS = 4 * 3600_000
MAX_DURATION_MS = 10 * 365 * 86_400_000
ROUTE_KEYS = ("match", "match_re", "channels", "group_by", "group_wait", "group_interval",
              "repeat_interval", "continue", "cooldown", "escalate")
ESCALATION_KEYS = ("after", "channels", "severity")
INHIBIT_KEYS = ("source_match", "source_match_re", "target_match", "target_match_re", "equal")


@dataclass(frozen=True)
class Matchers:
    """Equality and full-match regex matchers on labels; a missing label reads as ""."""

    match: Mapping[str, str] = field(default_factory=dict)
    match_re: Mapping[str, str] = field(default_factory=dict)
    _compiled: tuple[tuple[str, re.Pattern[str]], ...] = field(
        default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        compiled = tuple((k, re.compile(v)) for k, v in sorted(self.match_re.items()))
        object.__setattr__(self, "_compiled", compiled)

    def matches(self, labels: Mapping[str, str]) -> bool:
        for name, value in self.match.items():
            if labels.get(name, "") != value:
                return False
        return all(p.fullmatch(labels.get(name, "")) for name, p in self._compiled)

    @property
    def is_empty(self) -> bool:
        return not self.match and not self.match_re

    def __str__(self) -> str:
        """Alertmanager's form: `{service=~"api.*",severity="critical"}`, sorted by name."""
        parts = [(k, "=", v) for k, v in self.match.items()]
        parts += [(k, "=~", v) for k, v in self.match_re.items()]
        return "{" + ",".join(f"{k}{op}{json.dumps(v, ensure_ascii=False)}"
                              for k, op, v in sorted(parts)) + "}"


@dataclass(frozen=True)
class Escalation:
    """A firing alert nobody acknowledged `after_ms` after it started also goes to `channels`."""

    after_ms: int
    channels: tuple[str, ...]
    severity: str | None = None
    """When set, the escalated copy carries this `severity` label."""


@dataclass(frozen=True)
class Route:
    """One entry of `routes:`: which alerts, which channels, how they are grouped and timed."""

    match: Mapping[str, str] = field(default_factory=dict)
    match_re: Mapping[str, str] = field(default_factory=dict)
    channels: tuple[str, ...] = ()
    group_by: tuple[str, ...] = ("alertname",)
    group_wait_ms: int | None = None
    """None: seismo's default, 0 for a group whose first alert is critical, else 10 s."""
    group_interval_ms: int = DEFAULT_GROUP_INTERVAL_MS
    repeat_interval_ms: int = DEFAULT_REPEAT_INTERVAL_MS
    continue_: bool = False
    cooldown_ms: int = 0
    escalate: tuple[Escalation, ...] = ()
    _matchers: Matchers = field(default_factory=Matchers, init=False, repr=False,
                                compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_matchers", Matchers(self.match, self.match_re))

    def matches(self, labels: Mapping[str, str]) -> bool:
        return self._matchers.matches(labels)

    def group_labels(self, labels: Mapping[str, str]) -> dict[str, str]:
        """The labels that name an alert's group on this route (missing ones left out)."""
        if ALL_LABELS in self.group_by:
            return dict(sorted(labels.items()))
        return {k: labels[k] for k in sorted(self.group_by) if k in labels}

    def group_wait_for(self, severity: str) -> int:
        if self.group_wait_ms is not None:
            return self.group_wait_ms
        return 0 if severity == "critical" else DEFAULT_GROUP_WAIT_MS

    @property
    def key(self) -> str:
        """The route part of a group key, as Alertmanager: `{}/{severity="critical"}`."""
        return "{}/" + str(self._matchers)

    @property
    def identity(self) -> str:
        """What makes two configurations' routes the same route (groups survive a reload)."""
        return json.dumps([sorted(self.match.items()), sorted(self.match_re.items()),
                           self.channels, self.group_by])


@dataclass(frozen=True)
class InhibitRule:
    """While a firing alert matches the source side, alerts matching the target side with
    equal values of the `equal` labels are not notified (Alertmanager's `inhibit_rules`)."""

    source_match: Mapping[str, str] = field(default_factory=dict)
    source_match_re: Mapping[str, str] = field(default_factory=dict)
    target_match: Mapping[str, str] = field(default_factory=dict)
    target_match_re: Mapping[str, str] = field(default_factory=dict)
    equal: tuple[str, ...] = ()
    _source: Matchers = field(default_factory=Matchers, init=False, repr=False, compare=False)
    _target: Matchers = field(default_factory=Matchers, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_source", Matchers(self.source_match, self.source_match_re))
        object.__setattr__(self, "_target", Matchers(self.target_match, self.target_match_re))

    def is_source(self, labels: Mapping[str, str]) -> bool:
        return self._source.matches(labels)

    def is_target(self, labels: Mapping[str, str]) -> bool:
        return self._target.matches(labels)

    def equal_values(self, labels: Mapping[str, str]) -> tuple[str, ...]:
        """The values two alerts must share (a label missing on both counts as equal)."""
        return tuple(labels.get(name, "") for name in self.equal)


# -- parsing ------------------------------------------------------------------------------


def parse_routes(docs: Any, field: str = "routes", *,
                 known_channels: Collection[str] | None = None) -> list[Route]:
    """Routes from their YAML/JSON form; InvalidInput names the bad field and says why.

    `known_channels`, when given, refuses a route naming a channel that does not exist.
    """
    if docs is None:
        return []
    if not isinstance(docs, list):
        raise InvalidInput("routes must be a list of route objects", field=field)
    return [_parse_route(doc, f"{field}[{i}]", known_channels) for i, doc in enumerate(docs)]


def parse_inhibit_rules(docs: Any, field: str = "inhibit_rules") -> list[InhibitRule]:
    """Inhibit rules from their YAML/JSON form; InvalidInput names the bad field."""
    if docs is None:
        return []
    if not isinstance(docs, list):
        raise InvalidInput("inhibit_rules must be a list of objects", field=field)
    return [_parse_inhibit_rule(doc, f"{field}[{i}]") for i, doc in enumerate(docs)]


def _parse_route(doc: Any, where: str, known: Collection[str] | None) -> Route:
    _check_keys(doc, ROUTE_KEYS, "a route", where)
    group_wait = doc.get("group_wait")
    cont = doc.get("continue", False)
    if not isinstance(cont, bool):
        raise InvalidInput("continue must be true or false", field=f"{where}.continue")
    return Route(
        match=_parse_match(doc.get("match"), f"{where}.match"),
        match_re=_parse_match(doc.get("match_re"), f"{where}.match_re", regex=True),
        channels=_parse_channels(doc.get("channels", []), f"{where}.channels", known),
        group_by=_parse_group_by(doc.get("group_by", ["alertname"]), f"{where}.group_by"),
        group_wait_ms=None if group_wait is None else _parse_ms(group_wait, f"{where}.group_wait"),
        group_interval_ms=_parse_ms(doc.get("group_interval", DEFAULT_GROUP_INTERVAL_MS / 1000),
                                    f"{where}.group_interval", positive=True),
        repeat_interval_ms=_parse_ms(doc.get("repeat_interval",
                                             DEFAULT_REPEAT_INTERVAL_MS / 1000),
                                     f"{where}.repeat_interval", positive=True),
        continue_=cont,
        cooldown_ms=_parse_ms(doc.get("cooldown", 0), f"{where}.cooldown"),
        escalate=_parse_escalate(doc.get("escalate", []), f"{where}.escalate", known),
    )


def _parse_escalate(docs: Any, where: str,
                    known: Collection[str] | None) -> tuple[Escalation, ...]:
    if not isinstance(docs, list):
        raise InvalidInput("escalate must be a list of {after, channels, severity}", field=where)
    steps = []
    for i, doc in enumerate(docs):
        at = f"{where}[{i}]"
        _check_keys(doc, ESCALATION_KEYS, "an escalation", at)
        if "after" not in doc:
            raise InvalidInput("after is required: how long a firing alert may stay "
                               "unacknowledged, such as 15m", field=f"{at}.after")
        if "channels" not in doc:
            raise InvalidInput("channels is required: where to escalate to",
                               field=f"{at}.channels")
        severity = doc.get("severity")
        if severity is not None and severity not in SEVERITIES:
            raise InvalidInput(f"severity must be one of {', '.join(SEVERITIES)}",
                               field=f"{at}.severity")
        channels = _parse_channels(doc["channels"], f"{at}.channels", known)
        if not channels:
            raise InvalidInput("an escalation needs at least one channel", field=f"{at}.channels")
        steps.append(Escalation(_parse_ms(doc["after"], f"{at}.after", positive=True),
                                channels, severity))
    return tuple(steps)


def _parse_inhibit_rule(doc: Any, where: str) -> InhibitRule:
    _check_keys(doc, INHIBIT_KEYS, "an inhibit rule", where)
    rule = InhibitRule(
        source_match=_parse_match(doc.get("source_match"), f"{where}.source_match"),
        source_match_re=_parse_match(doc.get("source_match_re"), f"{where}.source_match_re",
                                     regex=True),
        target_match=_parse_match(doc.get("target_match"), f"{where}.target_match"),
        target_match_re=_parse_match(doc.get("target_match_re"), f"{where}.target_match_re",
                                     regex=True),
        equal=_parse_label_names(doc.get("equal", []), f"{where}.equal"),
    )
    # An empty side matches every alert: one such rule mutes everything, so say so.
    if not rule.source_match and not rule.source_match_re:
        raise InvalidInput("set source_match or source_match_re: an empty source matches "
                           "every alert", field=f"{where}.source_match")
    if not rule.target_match and not rule.target_match_re:
        raise InvalidInput("set target_match or target_match_re: an empty target matches "
                           "every alert", field=f"{where}.target_match")
    return rule


def _check_keys(doc: Any, keys: tuple[str, ...], what: str, where: str) -> None:
    if not isinstance(doc, Mapping):
        raise InvalidInput(f"{what} must be an object with keys {', '.join(keys)}", field=where)
    for key in doc:
        if key not in keys:
            raise InvalidInput(f"unknown key {key!r}; {what} has {', '.join(keys)}",
                               field=f"{where}.{key}")


def _parse_match(doc: Any, where: str, *, regex: bool = False) -> dict[str, str]:
    if doc is None:
        return {}
    if not isinstance(doc, Mapping):
        raise InvalidInput("must be an object of label name to value", field=where)
    match: dict[str, str] = {}
    for name, value in doc.items():
        if not isinstance(name, str) or not LABEL_NAME.match(name):
            raise InvalidInput(f"{name!r} is not a label name (letters, digits and _, not "
                               "starting with a digit)", field=f"{where}.{name}")
        if not isinstance(value, str):
            raise InvalidInput("a label value must be a string", field=f"{where}.{name}")
        if regex:
            try:
                re.compile(value)
            except re.error as exc:
                raise InvalidInput(f"bad regular expression: {exc}",
                                   field=f"{where}.{name}") from None
        match[name] = value
    return match


def _parse_channels(doc: Any, where: str, known: Collection[str] | None) -> tuple[str, ...]:
    if not isinstance(doc, list) or not all(isinstance(c, str) and c for c in doc):
        raise InvalidInput("channels must be a list of channel names", field=where)
    for i, name in enumerate(doc):
        if known is not None and name not in known:
            raise InvalidInput(f"no channel named {name!r}", field=f"{where}[{i}]")
    if len(set(doc)) != len(doc):
        raise InvalidInput("a channel is listed twice", field=where)
    return tuple(doc)


def _parse_group_by(doc: Any, where: str) -> tuple[str, ...]:
    if doc == [ALL_LABELS]:
        return (ALL_LABELS,)
    if isinstance(doc, list) and ALL_LABELS in doc:
        raise InvalidInput('"..." (every label) must be alone in group_by', field=where)
    return _parse_label_names(doc, where)


def _parse_label_names(doc: Any, where: str) -> tuple[str, ...]:
    if not isinstance(doc, list):
        raise InvalidInput("must be a list of label names", field=where)
    for i, name in enumerate(doc):
        if not isinstance(name, str) or not LABEL_NAME.match(name):
            raise InvalidInput(f"{name!r} is not a label name", field=f"{where}[{i}]")
    return tuple(dict.fromkeys(doc))


def _parse_ms(value: Any, where: str, *, positive: bool = False) -> int:
    if isinstance(value, bool):
        raise InvalidInput("not a duration like 30s, 5m or 1h", field=where)
    try:
        seconds = parse_duration_s(value)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"not a duration like 30s, 5m or 1h: {exc}", field=where) from None
    ms = round(seconds * 1000)
    if ms < 0 or ms > MAX_DURATION_MS:
        raise InvalidInput("must be between 0s and 10y", field=where)
    if positive and ms == 0:
        raise InvalidInput("must be more than 0s", field=where)
    return ms
