"""Alert rules: what a rule is, how one is read from YAML or JSON, and rule files.

A `Rule` is plain data: a parsed expression, an optional resolve expression (hysteresis),
`for`, `keep_firing_for`, severity, labels and annotation templates. `parse_rule` refuses a
bad rule naming the field and the reason; `load_rule_file` adds the line of the rule.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from seismo.alerting.expr import Absent, Comparison, Expr, Forecast, parse_expr
from seismo.config import parse_duration_s
from seismo.errors import InvalidInput
from seismo.notify.message import SEVERITIES
from seismo.notify.template import Template

MAX_RULES = 100_000
MAX_LABELS = 64
MAX_TEXT_CHARS = 4096
RULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_:.\-]{0,127}\Z")
LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}\Z")
RESERVED_LABELS = ("alertname", "severity")
"""Set from the rule's name and severity, not from `labels`."""
KEYS = ("name", "expr", "resolve", "for", "keep_firing_for", "severity", "labels",
        "annotations", "enabled")


@dataclass(frozen=True)
class Rule:
    """One alert rule; `source` says where it came from (a file path, or `api`)."""

    name: str
    expr: Expr
    resolve: Comparison | None = None
    for_ms: int = 0
    keep_firing_for_ms: int = 0
    severity: str = "medium"
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, Template] = field(default_factory=dict)
    enabled: bool = True
    source: str = "api"

    def to_dict(self) -> dict[str, Any]:
        """The rule as the API shows it: the same fields it was written with, canonical."""
        return {"name": self.name, "expr": str(self.expr),
                "resolve": None if self.resolve is None else str(self.resolve),
                "for": _duration(self.for_ms),
                "keep_firing_for": _duration(self.keep_firing_for_ms),
                "severity": self.severity, "labels": dict(self.labels),
                "annotations": {k: t.source for k, t in self.annotations.items()},
                "enabled": self.enabled, "source": self.source}

    def alert_labels(self, series_labels: Mapping[str, str]) -> dict[str, str]:
        """An alert's labels: the series' labels, the rule's labels, alertname, severity."""
        labels = dict(series_labels)
        labels.update(self.labels)
        labels["alertname"] = self.name
        labels["severity"] = self.severity
        return labels


def _duration(ms: int) -> str:
    if ms % 1000:
        return f"{ms}ms"
    return f"{ms // 1000}s"


def parse_rule(doc: Any, *, field_name: str = "rule", source: str = "api") -> Rule:
    """A rule from its YAML/JSON form; InvalidInput names the field (`rule.expr`) and why."""
    if not isinstance(doc, Mapping):
        raise InvalidInput("a rule must be an object with name and expr", field=field_name)
    unknown = sorted(set(doc) - set(KEYS))
    if unknown:
        raise InvalidInput(f"unknown key {unknown[0]!r}; a rule has {', '.join(KEYS)}",
                           field=f"{field_name}.{unknown[0]}")
    name = doc.get("name")
    if not isinstance(name, str) or not RULE_NAME.match(name):
        raise InvalidInput("name must be 1-128 characters: letters, digits, _ : . -, "
                           "starting with a letter or _", field=f"{field_name}.name")
    expr_text = doc.get("expr")
    if not isinstance(expr_text, str):
        raise InvalidInput("expr is required: a rule expression such as 'cpu_usage > 90'",
                           field=f"{field_name}.expr")
    expr = parse_expr(expr_text, field_name=f"{field_name}.expr")
    _check_supported(expr, f"{field_name}.expr")
    resolve = None
    if doc.get("resolve") is not None:
        if not isinstance(doc["resolve"], str):
            raise InvalidInput("resolve must be an expression string",
                               field=f"{field_name}.resolve")
        parsed = parse_expr(doc["resolve"], field_name=f"{field_name}.resolve")
        if not isinstance(parsed, Comparison) or not isinstance(expr, Comparison):
            raise InvalidInput("resolve needs comparisons on both sides (fire above X, "
                               "resolve below Y); absent() has no resolve",
                               field=f"{field_name}.resolve")
        _check_supported(parsed, f"{field_name}.resolve")
        if isinstance(parsed.operand, Forecast):
            raise InvalidInput("resolve cannot be a forecast(); resolve on the series itself "
                               "(disk_free > 1e9) or leave it out", field=f"{field_name}.resolve")
        resolve = parsed
    severity = doc.get("severity", "medium")
    if severity not in SEVERITIES:
        raise InvalidInput(f"severity must be one of {', '.join(SEVERITIES)}",
                           field=f"{field_name}.severity")
    enabled = doc.get("enabled", True)
    if not isinstance(enabled, bool):
        raise InvalidInput("enabled must be true or false", field=f"{field_name}.enabled")
    return Rule(
        name=name, expr=expr, resolve=resolve,
        for_ms=_parse_ms(doc.get("for"), f"{field_name}.for"),
        keep_firing_for_ms=_parse_ms(doc.get("keep_firing_for"), f"{field_name}.keep_firing_for"),
        severity=severity, labels=_parse_labels(doc.get("labels"), f"{field_name}.labels"),
        annotations=_parse_annotations(doc.get("annotations"), f"{field_name}.annotations"),
        enabled=enabled, source=source)


def _check_supported(expr: Expr, where: str) -> None:
    if isinstance(expr, Absent) and expr.selector.metric_name() is None:
        raise InvalidInput("absent() needs a metric name in its selector", field=where)


def _parse_ms(value: Any, where: str) -> int:
    if value is None:
        return 0
    try:
        seconds = parse_duration_s(value)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"not a duration like 30s, 5m or 1h: {exc}", field=where) from None
    if seconds < 0 or seconds > 10 * 365 * 86_400:
        raise InvalidInput("must be between 0s and 10y", field=where)
    return round(seconds * 1000)


def _parse_labels(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or len(value) > MAX_LABELS:
        raise InvalidInput(f"labels must be an object of up to {MAX_LABELS} name: value pairs",
                           field=where)
    labels = {}
    for key, text in value.items():
        if not isinstance(key, str) or not LABEL_NAME.match(key):
            raise InvalidInput("label names are letters, digits and _, not starting with a "
                               "digit", field=f"{where}.{key}")
        if key in RESERVED_LABELS:
            source = "name" if key == "alertname" else key
            raise InvalidInput(f"{key} is set from the rule's {source}", field=f"{where}.{key}")
        if not isinstance(text, str | int | float) or isinstance(text, bool):
            raise InvalidInput("label values are strings", field=f"{where}.{key}")
        if len(str(text)) > MAX_TEXT_CHARS:
            raise InvalidInput(f"longer than {MAX_TEXT_CHARS} characters", field=f"{where}.{key}")
        labels[key] = str(text)
    return labels


def _parse_annotations(value: Any, where: str) -> dict[str, Template]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or len(value) > MAX_LABELS:
        raise InvalidInput(f"annotations must be an object of up to {MAX_LABELS} templates",
                           field=where)
    out = {}
    for key, text in value.items():
        if not isinstance(key, str) or not LABEL_NAME.match(key):
            raise InvalidInput("annotation names are letters, digits and _",
                               field=f"{where}.{key}")
        if not isinstance(text, str) or len(text) > MAX_TEXT_CHARS:
            raise InvalidInput(f"must be text of up to {MAX_TEXT_CHARS} characters",
                               field=f"{where}.{key}")
        out[key] = Template(text, field=f"{where}.{key}")
    return out


def parse_rules(docs: Any, *, field_name: str = "rules", source: str = "config",
                lines: list[int] | None = None) -> list[Rule]:
    """A list of rules, names unique; errors name the index (and the line, when known)."""
    if docs is None:
        return []
    if not isinstance(docs, list):
        raise InvalidInput("rules must be a list of rule objects", field=field_name)
    if len(docs) > MAX_RULES:
        raise InvalidInput(f"more than {MAX_RULES} rules", field=field_name)
    rules: list[Rule] = []
    seen: set[str] = set()
    for i, doc in enumerate(docs):
        where = f"{field_name}[{i}]"
        try:
            rule = parse_rule(doc, field_name=where, source=source)
            if rule.name in seen:
                raise InvalidInput(f"a rule named {rule.name!r} is already defined above",
                                   field=f"{where}.name")
        except InvalidInput as exc:
            if lines is not None:
                exc.message = f"line {lines[i]}: {exc.message}"
                exc.detail = {**(exc.detail or {}), "line": lines[i]}
            raise
        seen.add(rule.name)
        rules.append(rule)
    return rules


def load_rule_file(path: Path) -> list[Rule]:
    """Rules of a YAML file with a top-level `rules:` list; errors carry the rule's line."""
    try:
        text = path.read_text()
        root = yaml.compose(text)
        doc = yaml.safe_load(text)
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror or exc}",
                           field="rule_file") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise InvalidInput(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}",
                           field="rule_file") from None
    if doc is None:
        return []
    if not isinstance(doc, dict) or set(doc) - {"rules"}:
        raise InvalidInput(f"{path}: a rule file holds one key, rules: [...]", field="rule_file")
    lines = None
    if isinstance(root, yaml.MappingNode):
        for key, value in root.value:
            if key.value == "rules" and isinstance(value, yaml.SequenceNode):
                lines = [item.start_mark.line + 1 for item in value.value]
    try:
        return parse_rules(doc.get("rules"), source=str(path), lines=lines)
    except InvalidInput as exc:
        exc.message = f"{path}: {exc.message}"
        raise
