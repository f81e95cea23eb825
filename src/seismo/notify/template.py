"""Annotation templates: `{{ $value }}`, `{{ $labels.host }}`, `{{ $labels }}`, a few pipes.

The subset of Prometheus' alert templates that annotations use, parsed once when a rule is
loaded (a malformed template is refused naming the field and column) and rendered for every
alert. No eval, no Jinja: a template is literal text and substitutions, nothing else. A
variable with no value renders as empty text and is reported, so a typo shows up.

>>> t = Template("CPU {{ $value | humanize }}% on {{ $labels.host }}", field="summary")
>>> t.render({"host": "web-1"}, 1234.5)
Rendered(text='CPU 1.234k% on web-1', missing=())
>>> t.render({}, 93.0).missing
('$labels.host',)
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from seismo.errors import InvalidInput
from seismo.notify.message import format_labels, format_value

_LABEL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_VARIABLE = re.compile(r"\$[A-Za-z_][A-Za-z0-9_]*\Z")
_ALIASES = {".Value": "$value", ".Labels": "$labels"}


def humanize(value: float) -> str:
    """Metric prefixes, 4 significant digits (Prometheus' `humanize`): 1234567 -> `1.235M`."""
    if value == 0 or math.isnan(value) or math.isinf(value):
        return f"{value:.4g}"
    prefix = ""
    if abs(value) >= 1:
        for p in ("k", "M", "G", "T", "P", "E", "Z", "Y"):
            if abs(value) < 1000:
                break
            prefix, value = p, value / 1000
    else:
        for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
            if abs(value) >= 1:
                break
            prefix, value = p, value * 1000
    return f"{value:.4g}{prefix}"


def humanize_percentage(value: float) -> str:
    """A ratio as a percentage (Prometheus' `humanizePercentage`): 0.1234 -> `12.34%`."""
    return f"{value * 100:.4g}%"


FUNCTIONS: dict[str, Callable[[float], str]] = {
    "humanize": humanize,
    "humanizePercentage": humanize_percentage,
}
"""Functions a pipe may apply to `$value`."""


@dataclass(frozen=True)
class Rendered:
    """A rendered template and the variables that had no value (rendered as empty)."""

    text: str
    missing: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Action:
    variable: str
    """`$value`, `$labels`, `$labels.NAME` or an unknown `$NAME`."""
    functions: tuple[str, ...]


class Template:
    """A parsed annotation template; `InvalidInput` naming `field` if it is malformed."""

    def __init__(self, source: str, *, field: str = "template") -> None:
        self.source = source
        self.field = field
        self._parts = self._parse(source)

    def __repr__(self) -> str:
        return f"Template({self.source!r}, field={self.field!r})"

    def render(self, labels: Mapping[str, str], value: float | None = None,
               variables: Mapping[str, str] | None = None) -> Rendered:
        """Substitute the alert's labels and value, and `variables` (`{"$crosses_in": ...}`,
        set by forecast rules)."""
        out: list[str] = []
        missing: list[str] = []
        for part in self._parts:
            if isinstance(part, str):
                out.append(part)
                continue
            text = self._evaluate(part, labels, value)
            if text is None and variables and not part.functions:
                text = variables.get(part.variable)
            if text is None:
                missing.append(part.variable)
            else:
                out.append(text)
        return Rendered("".join(out), tuple(dict.fromkeys(missing)))

    @staticmethod
    def _evaluate(action: _Action, labels: Mapping[str, str], value: float | None) -> str | None:
        name = action.variable
        if name == "$labels":
            return format_labels(labels)
        if name.startswith("$labels."):
            return labels.get(name.removeprefix("$labels."))
        if name != "$value" or value is None:
            return None
        if action.functions:  # the parser allows one function, on $value only
            return FUNCTIONS[action.functions[0]](value)
        return format_value(value)

    def _parse(self, source: str) -> list[str | _Action]:
        parts: list[str | _Action] = []
        pos = 0
        trim_next = False
        while True:
            start = source.find("{{", pos)
            text = source[pos:] if start < 0 else source[pos:start]
            if trim_next:
                text = text.lstrip()
            if start < 0:
                parts.append(text)
                break
            end = source.find("}}", start + 2)
            if end < 0:
                raise self._error("'{{' is never closed by '}}'", start)
            inner = source[start + 2 : end]
            if inner.startswith("- ") or inner == "-":
                text, inner = text.rstrip(), inner[1:]
            trim_next = inner.endswith(" -")
            if trim_next:
                inner = inner[:-1]
            parts.append(text)
            parts.append(self._action(inner.strip(), start))
            pos = end + 2
        return [p for p in parts if p != ""]

    def _action(self, expression: str, column: int) -> _Action:
        if not expression:
            raise self._error("empty '{{ }}'", column)
        if "{{" in expression:
            raise self._error("'{{' inside '{{ }}'", column)
        operand, *pipes = [piece.strip() for piece in expression.split("|")]
        for alias, variable in _ALIASES.items():
            if operand == alias or operand.startswith(alias + "."):
                operand = variable + operand.removeprefix(alias)
        if operand.startswith("$labels."):
            name = operand.removeprefix("$labels.")
            if not _LABEL.match(name):
                raise self._error(f"{name!r} is not a label name", column)
        elif not _VARIABLE.match(operand):
            raise self._error(
                f"{operand!r} is not supported (use $value, $labels or $labels.NAME)", column
            )
        for function in pipes:
            if function not in FUNCTIONS:
                known = ", ".join(FUNCTIONS)
                raise self._error(f"unknown function {function!r} (known: {known})", column)
        if pipes and operand != "$value":
            raise self._error(f"functions apply to $value only, not {operand}", column)
        if len(pipes) > 1:
            raise self._error("only one function may follow $value", column)
        return _Action(operand, tuple(pipes))

    def _error(self, reason: str, index: int) -> InvalidInput:
        column = index + 1
        return InvalidInput(
            f"{self.field}: bad template at column {column}: {reason}",
            field=self.field,
            column=column,
        )


def render_annotations(
    annotations: Mapping[str, str],
    labels: Mapping[str, str],
    value: float | None = None,
    *,
    field: str = "annotations",
) -> tuple[dict[str, str], list[str]]:
    """Render every annotation; returns them and the missing variables as `KEY: $var`."""
    rendered: dict[str, str] = {}
    missing: list[str] = []
    for key, source in annotations.items():
        result = Template(source, field=f"{field}.{key}").render(labels, value)
        rendered[key] = result.text
        missing.extend(f"{key}: {variable}" for variable in result.missing)
    return rendered, missing
