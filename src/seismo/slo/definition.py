"""What an SLO is, and how one is read from seismo.yaml or a JSON body.

An `SLO` is plain data: an objective over an SLI (good/total or bad/total counters, a
latency threshold, or an up/down series) in a rolling window, plus how its burn-rate
alerts are raised. `parse_slo` refuses a bad definition naming the field (`slo.objective`)
and the reason.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from seismo.config import parse_duration_s
from seismo.errors import InvalidInput
from seismo.notify.message import SEVERITIES
from seismo.query.selector import Selector, parse_selector

MAX_SLOS = 10_000
MAX_LABELS = 64
MAX_TEXT_CHARS = 4096
MIN_WINDOW_MS = 3_600_000
MAX_WINDOW_MS = 366 * 86_400_000
SLO_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_:.\-]{0,127}\Z")
LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}\Z")
RESERVED_LABELS = ("alertname", "severity", "slo", "window", "type")
"""Set by seismo on the SLO's alerts, not from `labels`."""
KEYS = ("name", "objective", "window", "sli", "description", "labels", "alerting")
ALERTING_KEYS = ("page", "ticket", "severity_page", "severity_ticket")
SLI_SHAPES = ("{good, total}", "{bad, total}", "{latency, threshold_s, percentile?}",
              "{availability}")

SLIKind = Literal["ratio", "latency", "availability"]


@dataclass(frozen=True)
class SLI:
    """What counts as good. `selector` is the total (ratio), latency or up/down series."""

    kind: SLIKind
    selector: Selector
    good: Selector | None = None
    bad: Selector | None = None
    threshold_s: float | None = None
    percentile: float | None = None

    def to_dict(self) -> dict[str, Any]:
        if self.kind == "latency":
            doc: dict[str, Any] = {"latency": self.selector.text,
                                   "threshold_s": self.threshold_s}
            if self.percentile is not None:
                doc["percentile"] = self.percentile
            return doc
        if self.kind == "availability":
            return {"availability": self.selector.text}
        side = {"good": self.good.text} if self.good is not None else {
            "bad": self.bad.text if self.bad is not None else ""}
        return {**side, "total": self.selector.text}


@dataclass(frozen=True)
class SLO:
    """One service level objective; `source` says where it came from (`seismo.yaml`, `api`)."""

    name: str
    objective: float
    window_ms: int
    sli: SLI
    description: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    page: bool = True
    ticket: bool = True
    severity_page: str = "critical"
    severity_ticket: str = "medium"
    source: str = "api"

    @property
    def error_budget(self) -> float:
        """The share of events allowed to be bad: 1 - objective."""
        return 1.0 - self.objective

    @property
    def window(self) -> str:
        return format_duration(self.window_ms)

    def to_dict(self) -> dict[str, Any]:
        """The SLO as the API shows it: the fields it was written with, canonical."""
        return {"name": self.name, "objective": self.objective, "window": self.window,
                "sli": self.sli.to_dict(), "description": self.description,
                "labels": dict(self.labels),
                "alerting": {"page": self.page, "ticket": self.ticket,
                             "severity_page": self.severity_page,
                             "severity_ticket": self.severity_ticket},
                "source": self.source}


def format_duration(ms: int) -> str:
    """The largest whole unit: `30d`, `6h`, `5m`, `90s`, `1500ms`.

    >>> format_duration(30 * 86_400_000), format_duration(90_000)
    ('30d', '90s')
    """
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms % size == 0 and ms >= size:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def parse_slo(doc: Any, *, field: str = "slo", source: str = "api") -> SLO:
    """An SLO from its YAML/JSON form; InvalidInput names the field (`slo.sli.total`) and why.

    >>> slo = parse_slo({"name": "api-availability", "objective": 0.999, "window": "30d",
    ...                  "sli": {"availability": 'up{job="api"}'}})
    >>> round(slo.error_budget, 6), slo.window, slo.sli.kind
    (0.001, '30d', 'availability')
    """
    if not isinstance(doc, Mapping):
        raise InvalidInput("an SLO must be an object with name, objective, window and sli",
                           field=field)
    unknown = sorted(set(doc) - set(KEYS))
    if unknown:
        raise InvalidInput(f"unknown key {unknown[0]!r}; an SLO has {', '.join(KEYS)}",
                           field=f"{field}.{unknown[0]}")
    name = doc.get("name")
    if not isinstance(name, str) or not SLO_NAME.match(name):
        raise InvalidInput("name must be 1-128 characters: letters, digits, _ : . -, "
                           "starting with a letter or _", field=f"{field}.name")
    sli = _parse_sli(doc.get("sli"), f"{field}.sli")
    objective = doc.get("objective")
    if objective is None and sli.percentile is not None:
        objective = sli.percentile / 100
    if isinstance(objective, bool) or not isinstance(objective, int | float) \
            or not 0 < objective < 1:
        raise InvalidInput("objective must be a fraction between 0 and 1, exclusive, such as "
                           "0.999 for 99.9 %", field=f"{field}.objective")
    window_ms = _parse_window(doc.get("window", "30d"), f"{field}.window")
    description = doc.get("description", "")
    if not isinstance(description, str) or len(description) > MAX_TEXT_CHARS:
        raise InvalidInput(f"description must be a text of up to {MAX_TEXT_CHARS} characters",
                           field=f"{field}.description")
    alerting = doc.get("alerting") or {}
    if not isinstance(alerting, Mapping):
        raise InvalidInput("alerting must be an object: page, ticket, severity_page, "
                           "severity_ticket", field=f"{field}.alerting")
    unknown = sorted(set(alerting) - set(ALERTING_KEYS))
    if unknown:
        raise InvalidInput(f"unknown key {unknown[0]!r}; alerting has "
                           f"{', '.join(ALERTING_KEYS)}", field=f"{field}.alerting.{unknown[0]}")
    flags = {}
    for key in ("page", "ticket"):
        flags[key] = alerting.get(key, True)
        if not isinstance(flags[key], bool):
            raise InvalidInput(f"{key} must be true or false", field=f"{field}.alerting.{key}")
    severities = {}
    for key, default in (("severity_page", "critical"), ("severity_ticket", "medium")):
        severities[key] = alerting.get(key, default)
        if severities[key] not in SEVERITIES:
            raise InvalidInput(f"{key} must be one of {', '.join(SEVERITIES)}",
                               field=f"{field}.alerting.{key}")
    return SLO(name=name, objective=float(objective), window_ms=window_ms, sli=sli,
               description=description, labels=_parse_labels(doc.get("labels"), f"{field}.labels"),
               page=flags["page"], ticket=flags["ticket"], source=source, **severities)


def parse_slos(docs: Any, *, field: str = "slos", source: str = "api") -> list[SLO]:
    """A list of SLOs (`slos:` in seismo.yaml); names must be unique."""
    if not isinstance(docs, list):
        raise InvalidInput("slos must be a list of SLOs", field=field)
    if len(docs) > MAX_SLOS:
        raise InvalidInput(f"at most {MAX_SLOS} SLOs", field=field)
    slos: list[SLO] = []
    seen: set[str] = set()
    for i, doc in enumerate(docs):
        slo = parse_slo(doc, field=f"{field}[{i}]", source=source)
        if slo.name in seen:
            raise InvalidInput(f"SLO {slo.name!r} is defined twice", field=f"{field}[{i}].name")
        seen.add(slo.name)
        slos.append(slo)
    return slos


def _parse_sli(doc: Any, where: str) -> SLI:
    if not isinstance(doc, Mapping):
        raise InvalidInput(f"sli is required: one of {', '.join(SLI_SHAPES)}", field=where)
    keys = set(doc)
    if "latency" in keys:
        _only(keys, {"latency", "threshold_s", "percentile"}, where)
        threshold = doc.get("threshold_s")
        if isinstance(threshold, bool) or not isinstance(threshold, int | float) \
                or not 0 < threshold < 1e9:
            raise InvalidInput("threshold_s is required with latency: the slowest good "
                               "latency in seconds, more than 0", field=f"{where}.threshold_s")
        percentile = doc.get("percentile")
        if percentile is not None and (isinstance(percentile, bool) or not isinstance(
                percentile, int | float) or not 0 < percentile < 100):
            raise InvalidInput("percentile must be a number between 0 and 100, exclusive, "
                               "such as 95", field=f"{where}.percentile")
        return SLI("latency", _selector(doc, "latency", where), threshold_s=float(threshold),
                   percentile=None if percentile is None else float(percentile))
    if "availability" in keys:
        _only(keys, {"availability"}, where)
        return SLI("availability", _selector(doc, "availability", where))
    if "total" in keys or "good" in keys or "bad" in keys:
        _only(keys, {"good", "bad", "total"}, where)
        if ("good" in keys) == ("bad" in keys):
            raise InvalidInput("give one of good or bad, with total",
                               field=f"{where}.{'bad' if 'good' in keys else 'good'}")
        side = "good" if "good" in keys else "bad"
        if "total" not in keys:
            raise InvalidInput(f"total is required with {side}: a selector of the counter of "
                               "all events", field=f"{where}.total")
        counter = _selector(doc, side, where)
        return SLI("ratio", _selector(doc, "total", where),
                   good=counter if side == "good" else None,
                   bad=counter if side == "bad" else None)
    raise InvalidInput(f"sli must be one of {', '.join(SLI_SHAPES)}", field=where)


def _only(keys: set[Any], allowed: set[str], where: str) -> None:
    extra = sorted(str(k) for k in keys - allowed)
    if extra:
        raise InvalidInput(f"unknown key {extra[0]!r} in this sli; it has "
                           f"{', '.join(sorted(allowed))}", field=f"{where}.{extra[0]}")


def _selector(doc: Mapping[str, Any], key: str, where: str) -> Selector:
    text = doc.get(key)
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput(f"{key} must be a series selector such as "
                           "'http_requests_total{job=\"api\"}'", field=f"{where}.{key}")
    return parse_selector(text, field_name=f"{where}.{key}")


def _parse_window(value: Any, where: str) -> int:
    try:
        seconds = parse_duration_s(value)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"not a duration like 7d, 28d or 30d: {exc}", field=where) from None
    ms = round(seconds * 1000)
    if not MIN_WINDOW_MS <= ms <= MAX_WINDOW_MS:
        raise InvalidInput("window must be between 1h and 366d", field=where)
    return ms


def _parse_labels(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or len(value) > MAX_LABELS:
        raise InvalidInput(f"labels must be an object of up to {MAX_LABELS} name: value pairs",
                           field=where)
    labels = {}
    for key, text in value.items():
        if not isinstance(key, str) or not LABEL_NAME.match(key):
            raise InvalidInput(f"bad label name {key!r}", field=f"{where}.{key}")
        if key in RESERVED_LABELS:
            raise InvalidInput(f"label {key!r} is set by seismo on the SLO's alerts",
                               field=f"{where}.{key}")
        if not isinstance(text, str) or len(text) > MAX_TEXT_CHARS:
            raise InvalidInput(f"label {key!r} must be a text of up to {MAX_TEXT_CHARS} "
                               "characters", field=f"{where}.{key}")
        labels[key] = text
    return labels
