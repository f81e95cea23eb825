"""Rule expressions: a small PromQL-like language parsed into a typed, printable AST.

`parse_expr('rate(errors_total[1m]) > 5')` gives a `Comparison`; `str()` prints it back
in canonical form. Series selectors are parsed by `seismo.query.selector`; the engine (issue
6) will evaluate these trees on every ingest batch, indexed by `metric_names()`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar

from seismo.detect.base import KINDS
from seismo.errors import InvalidInput
from seismo.query.selector import Selector, SelectorError, parse_selector

MAX_EXPR_CHARS = 4096
MAX_DURATION_MS = 10 * 365 * 86_400_000
"""Windows, `absent` durations and forecast horizons are at most ten years."""

COMPARISONS = (">", ">=", "<", "<=", "==", "!=")
AGGREGATIONS = ("avg", "min", "max", "sum", "count", "quantile")
PERCENTILES = {"p50": 0.5, "p95": 0.95, "p99": 0.99}
ANOMALY_KINDS = KINDS[1:]

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_DURATION = re.compile(r"[0-9]+(?:\.[0-9]+)?(?:ms|s|m|h|d|w|y)(?![a-zA-Z0-9_])")
_UNITS_MS = (("y", 31_536_000_000), ("w", 604_800_000), ("d", 86_400_000), ("h", 3_600_000),
             ("m", 60_000), ("s", 1000), ("ms", 1))
_WORD_START = re.compile(r"[a-zA-Z_]")
"""A number followed by a letter (`5m`, `1x`) is not a number."""


class ExprError(InvalidInput):
    """A rule expression that does not parse; `detail` holds `position` and `expr`."""


# --- the tree -------------------------------------------------------------------------


def format_selector(selector: Selector) -> str:
    """Print a selector canonically: `name{label="value", other=~"re"}`."""
    matchers = list(selector.matchers)
    name = ""
    if (matchers and matchers[0].label == "__name__" and matchers[0].op == "="
            and _NAME.fullmatch(matchers[0].value)):
        name = matchers.pop(0).value
    if not matchers:
        return name
    body = ", ".join(f"{m.label}{m.op}{_quote(m.value)}" for m in matchers)
    return f"{name}{{{body}}}"


def _quote(value: str) -> str:
    escaped = (value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
               .replace("\t", "\\t").replace("\r", "\\r"))
    return f'"{escaped}"'


def format_duration(ms: int) -> str:
    """Print milliseconds with the largest unit that divides them: 90000 → `90s`."""
    for unit, size in _UNITS_MS:
        if ms % size == 0:
            return f"{ms // size}{unit}"
    raise AssertionError("unreachable: every duration is a whole number of ms")


def format_number(value: float) -> str:
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _canonical(selector: Selector) -> Selector:
    return Selector(selector.matchers, format_selector(selector))


def _check_duration(ms: int, what: str) -> None:
    if not 1 <= ms <= MAX_DURATION_MS:
        raise ValueError(f"{what} must be between 1ms and 10y, not {ms} ms")


class _Node:
    """Selectors are stored in canonical form, so two spellings compare equal."""

    selector: Selector

    def __post_init__(self) -> None:
        object.__setattr__(self, "selector", _canonical(self.selector))

    def selectors(self) -> tuple[Selector, ...]:
        """Every series selector in the expression, left to right."""
        return (self.selector,)

    def metric_names(self) -> frozenset[str] | None:
        """Metric names the expression reads; None when a selector has no fixed name.

        A rule with None must be offered every ingest batch; the others only batches
        holding one of these metrics.
        """
        names = [s.metric_name() for s in self.selectors()]
        if any(n is None for n in names):
            return None
        return frozenset(n for n in names if n is not None)


@dataclass(frozen=True)
class Instant(_Node):
    """The latest sample of each selected series: `cpu_usage{host="a"}`."""

    selector: Selector

    def __str__(self) -> str:
        return self.selector.text


@dataclass(frozen=True)
class Rate(_Node):
    """Per-second rate of increase over a window: `rate(requests_total[1m])`."""

    selector: Selector
    window_ms: int

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_duration(self.window_ms, "window")

    def __str__(self) -> str:
        return f"rate({self.selector.text}[{format_duration(self.window_ms)}])"


@dataclass(frozen=True)
class OverTime(_Node):
    """A window aggregate: `avg_over_time(x[5m])`, `p95_over_time(x[5m])`.

    `agg` is one of AGGREGATIONS; `quantile` (0..1) is set exactly when agg is
    "quantile" (`p95_over_time` is `quantile_over_time(0.95, ...)`).
    """

    agg: str
    selector: Selector
    window_ms: int
    quantile: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_duration(self.window_ms, "window")
        if self.agg not in AGGREGATIONS:
            raise ValueError(f"unknown aggregation {self.agg!r}")
        if (self.agg == "quantile") != (self.quantile is not None):
            raise ValueError("quantile is set exactly when agg is 'quantile'")
        if self.quantile is not None and not 0 <= self.quantile <= 1:
            raise ValueError("quantile must be in 0..1")

    def __str__(self) -> str:
        window = f"{self.selector.text}[{format_duration(self.window_ms)}]"
        if self.quantile is None:
            return f"{self.agg}_over_time({window})"
        for name, q in PERCENTILES.items():
            if q == self.quantile:
                return f"{name}_over_time({window})"
        return f"quantile_over_time({format_number(self.quantile)}, {window})"


@dataclass(frozen=True)
class Anomaly(_Node):
    """The anomaly score (0..1) of each selected series, optionally of some kinds only."""

    selector: Selector
    kinds: tuple[str, ...] = ()
    """Empty means every kind; otherwise a subset of ANOMALY_KINDS in that order."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if unknown := set(self.kinds) - set(ANOMALY_KINDS):
            raise ValueError(f"unknown anomaly kinds {sorted(unknown)}")
        object.__setattr__(self, "kinds", tuple(k for k in ANOMALY_KINDS if k in self.kinds))

    def __str__(self) -> str:
        if not self.kinds:
            return f"anomaly({self.selector.text})"
        return f'anomaly({self.selector.text}, kinds="{",".join(self.kinds)}")'


@dataclass(frozen=True)
class Forecast(_Node):
    """The forecast over the next `horizon_ms`, fitted on a window of history; compared,
    true when the point forecast meets the threshold at any step (`forecast_rules.py`)."""

    selector: Selector
    window_ms: int
    horizon_ms: int

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_duration(self.window_ms, "window")
        _check_duration(self.horizon_ms, "horizon")

    def __str__(self) -> str:
        return (f"forecast({self.selector.text}[{format_duration(self.window_ms)}], "
                f"{format_duration(self.horizon_ms)})")


Term = Instant | Rate | OverTime


@dataclass(frozen=True)
class Ratio:
    """`numerator / denominator`, series matched on equal labels (an error rate)."""

    numerator: Term
    denominator: Term

    def selectors(self) -> tuple[Selector, ...]:
        return (self.numerator.selector, self.denominator.selector)

    def metric_names(self) -> frozenset[str] | None:
        left, right = self.numerator.metric_names(), self.denominator.metric_names()
        return None if left is None or right is None else left | right

    def __str__(self) -> str:
        return f"{self.numerator} / {self.denominator}"


Operand = Instant | Rate | OverTime | Anomaly | Forecast | Ratio


@dataclass(frozen=True)
class Comparison:
    """`operand op threshold`: true for each series where the comparison holds."""

    operand: Operand
    op: str
    threshold: float

    def __post_init__(self) -> None:
        if self.op not in COMPARISONS:
            raise ValueError(f"unknown comparison {self.op!r}")
        if not math.isfinite(self.threshold):
            raise ValueError("threshold must be a finite number")

    def selectors(self) -> tuple[Selector, ...]:
        return self.operand.selectors()

    def metric_names(self) -> frozenset[str] | None:
        return self.operand.metric_names()

    def __str__(self) -> str:
        return f"{self.operand} {self.op} {format_number(self.threshold)}"


@dataclass(frozen=True)
class Absent(_Node):
    """True when no selected series has had a sample for `for_ms`: `absent(x, 60s)`."""

    selector: Selector
    for_ms: int

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_duration(self.for_ms, "absent duration")

    def __str__(self) -> str:
        return f"absent({self.selector.text}, {format_duration(self.for_ms)})"


Expr = Comparison | Absent


# --- the parser -----------------------------------------------------------------------


def parse_expr(text: str, *, field_name: str = "expr") -> Expr:
    """Parse a rule expression, or raise ExprError naming the position and the reason.

    >>> e = parse_expr('avg_over_time(cpu_usage{host=~"web.*"}[5m]) >= 90')
    >>> str(e), sorted(e.metric_names() or ())
    ('avg_over_time(cpu_usage{host=~"web.*"}[5m]) >= 90', ['cpu_usage'])
    """
    return _Parser(text, field_name).parse()


_FUNCTIONS = ("rate", "absent", "anomaly", "forecast", "quantile_over_time",
              *(f"{agg}_over_time" for agg in (*AGGREGATIONS[:-1], *PERCENTILES)))


class _Parser:
    """Recursive descent over the text; `pos` is where the next token starts."""

    TERMS: ClassVar[str] = "a series selector, rate() or *_over_time()"

    def __init__(self, text: str, field_name: str) -> None:
        self.text = text
        self.pos = 0
        self.field_name = field_name

    def fail(self, reason: str, pos: int | None = None) -> ExprError:
        at = self.pos if pos is None else pos
        return ExprError(f"bad expression at position {at}: {reason}",
                         field=self.field_name, position=at, expr=self.text)

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def peek(self) -> str:
        self.skip_space()
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def expect(self, char: str, what: str) -> None:
        if self.peek() != char:
            raise self.fail(f"expected {what}")
        self.pos += 1

    def parse(self) -> Expr:
        if len(self.text) > MAX_EXPR_CHARS:
            raise self.fail(f"expression is longer than {MAX_EXPR_CHARS} characters",
                            MAX_EXPR_CHARS)
        if self.function_at() == "absent":
            absent = self.parse_absent()
            if self.peek():
                if self.text.startswith((*COMPARISONS, "="), self.pos):
                    raise self.fail("absent() is a condition on its own; remove the comparison")
                raise self.fail(f"unexpected {self.text[self.pos]!r}")
            return absent
        operand = self.parse_operand()
        op = self.parse_comparison()
        threshold = self.parse_number("a number to compare with")
        if self.peek():
            raise self.fail(f"unexpected {self.text[self.pos]!r}")
        return Comparison(operand, op, threshold)

    def function_at(self) -> str | None:
        """The function name at the current position if a '(' follows it, else None."""
        self.skip_space()
        name = _NAME.match(self.text, self.pos)
        if not name:
            return None
        after = name.end()
        while after < len(self.text) and self.text[after].isspace():
            after += 1
        if after < len(self.text) and self.text[after] == "(":
            if name.group() not in _FUNCTIONS:
                raise self.fail(f"unknown function {name.group()!r}; expected one of "
                                + ", ".join(_FUNCTIONS))
            return name.group()
        return None

    def call(self, name: str) -> None:
        """Step over `name (`."""
        self.skip_space()
        self.pos += len(name)
        self.expect("(", "'('")

    def parse_operand(self) -> Operand:
        left = self.parse_term_or_call()
        if self.peek() != "/":
            return left
        if not isinstance(left, Instant | Rate | OverTime):
            raise self.fail(f"only {self.TERMS} can be on either side of '/'")
        self.pos += 1
        self.skip_space()
        right_at = self.pos
        right = self.parse_term_or_call()
        if not isinstance(right, Instant | Rate | OverTime):
            raise self.fail(f"only {self.TERMS} can be on either side of '/'", right_at)
        if self.peek() == "/":
            raise self.fail("only one '/' is allowed")
        return Ratio(left, right)

    def parse_term_or_call(self) -> Operand:
        self.skip_space()
        start = self.pos
        name = self.function_at()
        if name is None:
            if self.peek() in ("", "{") or _NAME.match(self.text, self.pos):
                selector = self.parse_selector(
                    f"expected {self.TERMS}, absent(), anomaly() or forecast()")
                if self.peek() == "[":
                    raise self.fail("a range [..] needs a function around it: "
                                    "rate(x[1m]) or avg_over_time(x[5m])")
                return Instant(selector)
            raise self.fail(f"expected {self.TERMS}, absent(), anomaly() or forecast()")
        self.call(name)
        if name == "rate":
            selector, window = self.parse_range()
            self.expect(")", "')'")
            return Rate(selector, window)
        if name == "anomaly":
            return self.parse_anomaly()
        if name == "forecast":
            selector, window = self.parse_range()
            self.expect(",", "',' and a horizon: forecast(x[1h], 4h)")
            horizon = self.parse_duration()
            self.expect(")", "')'")
            return Forecast(selector, window, horizon)
        if name == "absent":
            raise self.fail("absent() is a condition on its own and cannot be compared "
                            "or divided", start)
        agg = name.removesuffix("_over_time")
        quantile: float | None = None
        if agg == "quantile":
            q_at = self.pos if self.peek() else len(self.text)
            quantile = self.parse_number("a quantile in 0..1")
            if not 0 <= quantile <= 1:
                raise self.fail("the quantile must be in 0..1", q_at)
            self.expect(",", "','")
        elif agg in PERCENTILES:
            agg, quantile = "quantile", PERCENTILES[agg]
        selector, window = self.parse_range()
        self.expect(")", "')'")
        return OverTime(agg, selector, window, quantile)

    def parse_absent(self) -> Absent:
        self.call("absent")
        selector = self.parse_selector("expected a series selector")
        if self.peek() == "[":
            raise self.fail("absent() takes a duration, not a range: absent(x, 60s)")
        self.expect(",", "',' and a duration: absent(x, 60s)")
        duration = self.parse_duration()
        self.expect(")", "')'")
        return Absent(selector, duration)

    def parse_anomaly(self) -> Anomaly:
        selector = self.parse_selector("expected a series selector")
        kinds: tuple[str, ...] = ()
        if self.peek() == ",":
            self.pos += 1
            self.skip_space()
            if not self.text.startswith("kinds", self.pos):
                raise self.fail("expected kinds=\"spike,drop\"")
            self.pos += len("kinds")
            self.expect("=", "'='")
            kinds = self.parse_kinds()
        self.expect(")", "')'")
        return Anomaly(selector, kinds)

    def parse_kinds(self) -> tuple[str, ...]:
        quote = self.peek()
        if quote not in ("\"", "'"):
            raise self.fail("expected a quoted list of kinds")
        end = self.text.find(quote, self.pos + 1)
        if end < 0:
            raise self.fail("unterminated string")
        kinds: list[str] = []
        at = self.pos + 1
        for part in self.text[self.pos + 1:end].split(","):
            kind = part.strip()
            if kind not in ANOMALY_KINDS:
                at += len(part) - len(part.lstrip())
                raise self.fail(f"unknown anomaly kind {kind!r}; expected one of "
                                + ", ".join(ANOMALY_KINDS), at)
            kinds.append(kind)
            at += len(part) + 1
        self.pos = end + 1
        return tuple(kinds)

    def parse_selector(self, missing: str) -> Selector:
        """Find where the selector ends, then hand that text to the selector parser."""
        self.skip_space()
        start = end = self.pos
        name = _NAME.match(self.text, start)
        if name:
            end = name.end()
        brace = end
        while brace < len(self.text) and self.text[brace].isspace():
            brace += 1
        if brace < len(self.text) and self.text[brace] == "{":
            end = self.closing_brace(brace)
        if end == start:
            raise self.fail(missing)
        try:
            selector = parse_selector(self.text[start:end], field_name=self.field_name)
        except SelectorError as err:
            reason = err.message.split(": ", 1)[1]
            raise self.fail(reason, start + int(err.detail["position"])) from None
        self.pos = end
        return selector

    def closing_brace(self, pos: int) -> int:
        """Position after the '}' closing the '{' at pos, skipping quoted strings."""
        pos += 1
        while pos < len(self.text):
            char = self.text[pos]
            if char == "}":
                return pos + 1
            if char in "\"'`":
                pos += 1
                while pos < len(self.text) and self.text[pos] != char:
                    pos += 2 if self.text[pos] == "\\" and char != "`" else 1
            pos += 1
        return len(self.text)

    def parse_range(self) -> tuple[Selector, int]:
        selector = self.parse_selector("expected a series selector")
        self.expect("[", "a range like [5m]")
        window = self.parse_duration()
        self.expect("]", "']'")
        return selector, window

    def parse_duration(self) -> int:
        self.skip_space()
        match = _DURATION.match(self.text, self.pos)
        if not match:
            raise self.fail("expected a duration like 30s, 5m or 1h")
        text = match.group()
        unit = text.lstrip("0123456789.")
        exact = Decimal(text[: len(text) - len(unit)]) * dict(_UNITS_MS)[unit]
        if exact != exact.to_integral_value():
            raise self.fail("a duration is a whole number of milliseconds")
        ms = int(exact)
        if not 1 <= ms <= MAX_DURATION_MS:
            raise self.fail("a duration must be between 1ms and 10y")
        self.pos = match.end()
        return ms

    def parse_comparison(self) -> str:
        self.skip_space()
        for op in (">=", "<=", "==", "!=", ">", "<"):
            if self.text.startswith(op, self.pos):
                self.pos += len(op)
                return op
        if self.pos >= len(self.text):
            raise self.fail("expected a comparison (>, >=, <, <=, ==, !=) and a number")
        reason = "expected a comparison (>, >=, <, <=, ==, !=)"
        if self.text[self.pos] in "/*+-":
            reason += "; the only arithmetic is one '/' between two series"
        raise self.fail(reason)

    def parse_number(self, what: str) -> float:
        self.skip_space()
        match = _NUMBER.match(self.text, self.pos)
        if not match or _WORD_START.match(self.text, match.end()):
            raise self.fail(f"expected {what}")
        value = float(match.group())
        if not math.isfinite(value):
            raise self.fail("number out of range")
        self.pos = match.end()
        return value
