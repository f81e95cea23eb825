"""Prometheus series selectors: `name{label="v", other=~"re.*", x!="y", z!~"r"}`.

Mirrors https://prometheus.io/docs/prometheus/latest/querying/basics/#time-series-selectors:
regexes are fully anchored, `__name__` is the metric name, a matcher that matches the
empty string also matches series without the label.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from seismo.errors import InvalidInput

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_OPS = ("=~", "!~", "!=", "=")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "`": "`"}


@dataclass(frozen=True)
class Matcher:
    label: str
    op: str
    value: str
    regex: re.Pattern[str] | None = field(default=None, compare=False)

    def matches(self, actual: str) -> bool:
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        assert self.regex is not None
        found = self.regex.fullmatch(actual) is not None
        return found if self.op == "=~" else not found


@dataclass(frozen=True)
class Selector:
    matchers: tuple[Matcher, ...]
    text: str = ""

    def metric_name(self) -> str | None:
        for m in self.matchers:
            if m.label == "__name__" and m.op == "=":
                return m.value
        return None

    def matches(self, metric: str, labels: Mapping[str, str]) -> bool:
        for m in self.matchers:
            actual = metric if m.label == "__name__" else labels.get(m.label, "")
            if not m.matches(actual):
                return False
        return True


class SelectorError(InvalidInput):
    pass


def parse_selector(text: str, *, field_name: str = "selector") -> Selector:
    """Parse a series selector, or raise SelectorError pointing at the position.

    >>> s = parse_selector('cpu{host=~"web.*", env!="dev"}')
    >>> s.matches("cpu", {"host": "web1", "env": "prod"}), s.matches("cpu", {"host": "db"})
    (True, False)
    """
    return _Parser(text, field_name).parse()


class _Parser:
    def __init__(self, text: str, field_name: str) -> None:
        self.text = text
        self.pos = 0
        self.field_name = field_name

    def fail(self, reason: str) -> SelectorError:
        return SelectorError(
            f"bad selector at position {self.pos}: {reason}",
            field=self.field_name, position=self.pos, selector=self.text,
        )

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def parse(self) -> Selector:
        matchers: list[Matcher] = []
        self.skip_space()
        name = _NAME.match(self.text, self.pos)
        if name:
            matchers.append(Matcher("__name__", "=", name.group()))
            self.pos = name.end()
            self.skip_space()
        if self.pos < len(self.text) and self.text[self.pos] == "{":
            self.pos += 1
            matchers.extend(self.parse_matchers())
        self.skip_space()
        if self.pos != len(self.text):
            raise self.fail(f"unexpected {self.text[self.pos]!r}")
        if not matchers:
            raise self.fail("expected a metric name or '{'")
        if all(m.matches("") for m in matchers):
            raise self.fail("selector must contain at least one matcher that is not empty")
        return Selector(tuple(matchers), self.text)

    def parse_matchers(self) -> list[Matcher]:
        out: list[Matcher] = []
        while True:
            self.skip_space()
            if self.pos < len(self.text) and self.text[self.pos] == "}":
                self.pos += 1
                return out
            label = _LABEL.match(self.text, self.pos)
            if not label:
                raise self.fail("expected a label name")
            self.pos = label.end()
            self.skip_space()
            op = next((o for o in _OPS if self.text.startswith(o, self.pos)), None)
            if op is None:
                raise self.fail("expected one of =, !=, =~, !~")
            self.pos += len(op)
            self.skip_space()
            value = self.parse_string()
            regex = None
            if op in ("=~", "!~"):
                try:
                    regex = re.compile(value)
                except re.error as exc:
                    raise self.fail(f"bad regex {value!r}: {exc}") from None
            out.append(Matcher(label.group(), op, value, regex))
            self.skip_space()
            if self.pos < len(self.text) and self.text[self.pos] == ",":
                self.pos += 1
            elif not (self.pos < len(self.text) and self.text[self.pos] == "}"):
                raise self.fail("expected ',' or '}'")

    def parse_string(self) -> str:
        if self.pos >= len(self.text) or self.text[self.pos] not in "\"'`":
            raise self.fail("expected a quoted string")
        quote = self.text[self.pos]
        self.pos += 1
        chars: list[str] = []
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch == quote:
                self.pos += 1
                return "".join(chars)
            if ch == "\\" and quote != "`" and self.pos + 1 < len(self.text):
                nxt = self.text[self.pos + 1]
                chars.append(_ESCAPES.get(nxt, "\\" + nxt))
                self.pos += 2
                continue
            chars.append(ch)
            self.pos += 1
        raise self.fail("unterminated string")
