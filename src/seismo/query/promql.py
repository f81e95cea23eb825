"""A PromQL subset: text → typed AST, for the Prometheus query API (`api/prometheus.py`).

Grammar and precedence follow https://prometheus.io/docs/prometheus/latest/querying/;
series selectors are parsed by `query/selector.py`. Anything outside the subset is refused
with a message naming the construct; `query/promql_eval.py` evaluates the tree.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from seismo.errors import InvalidInput
from seismo.query.selector import Selector, SelectorError, parse_selector


class PromQLError(InvalidInput):
    """A query Prometheus' API answers with `bad_data` (400) or `execution` (422)."""

    def __init__(self, message: str, *, error_type: str = "bad_data") -> None:
        super().__init__(message, field="query")
        self.error_type = error_type
        self.status = 400 if error_type == "bad_data" else 422


# Value types: scalar, instant vector, range vector.
SCALAR, VECTOR, MATRIX = "scalar", "vector", "matrix"
TYPE_NAMES = {SCALAR: "scalar", VECTOR: "instant vector", MATRIX: "range vector"}


@dataclass(frozen=True)
class Number:
    value: float
    type: str = SCALAR


@dataclass(frozen=True)
class VectorSelector:
    selector: Selector
    offset_ms: int = 0
    type: str = VECTOR


@dataclass(frozen=True)
class MatrixSelector:
    vector: VectorSelector
    range_ms: int
    type: str = MATRIX


@dataclass(frozen=True)
class Call:
    func: str
    args: tuple[Expr, ...]
    type: str


@dataclass(frozen=True)
class Aggregate:
    op: str
    expr: Expr
    param: Expr | None
    grouping: tuple[str, ...]
    without: bool
    type: str = VECTOR


@dataclass(frozen=True)
class Unary:
    expr: Expr
    type: str


@dataclass(frozen=True)
class Binary:
    op: str
    lhs: Expr
    rhs: Expr
    return_bool: bool
    on: bool  # match on `labels` only; else ignoring `labels` (and the metric name)
    labels: tuple[str, ...]
    type: str


Expr = Number | VectorSelector | MatrixSelector | Call | Aggregate | Unary | Binary

# Function name → argument types (a trailing "?" marks optional ones) and result type.
FUNCTIONS: dict[str, tuple[tuple[str, ...], str]] = {
    **{name: ((MATRIX,), VECTOR) for name in (
        "rate", "irate", "increase", "delta", "idelta", "avg_over_time", "min_over_time",
        "max_over_time", "sum_over_time", "count_over_time", "last_over_time",
        "stddev_over_time", "stdvar_over_time")},
    "quantile_over_time": ((SCALAR, MATRIX), VECTOR),
    **{name: ((VECTOR,), VECTOR) for name in (
        "abs", "ceil", "floor", "exp", "ln", "log2", "log10", "sqrt", "sgn", "sort",
        "sort_desc")},
    "round": ((VECTOR, SCALAR + "?"), VECTOR),
    "clamp": ((VECTOR, SCALAR, SCALAR), VECTOR),
    "clamp_min": ((VECTOR, SCALAR), VECTOR),
    "clamp_max": ((VECTOR, SCALAR), VECTOR),
    "histogram_quantile": ((SCALAR, VECTOR), VECTOR),
    "time": ((), SCALAR),
    "vector": ((SCALAR,), VECTOR),
    "scalar": ((VECTOR,), SCALAR),
}
AGGREGATIONS = ("sum", "avg", "min", "max", "count", "stddev", "stdvar", "group",
                "topk", "bottomk", "quantile")
_UNSUPPORTED_AGGREGATIONS = ("count_values", "limitk", "limit_ratio")
_PARAM_AGGREGATIONS = ("topk", "bottomk", "quantile")

# Binary operators by precedence, lowest first; `^` is right-associative.
_PRECEDENCE = {"or": 1, "and": 2, "unless": 2, "==": 3, "!=": 3, "<=": 3, "<": 3,
               ">=": 3, ">": 3, "+": 4, "-": 4, "*": 5, "/": 5, "%": 5, "atan2": 5, "^": 6}
COMPARISONS = ("==", "!=", "<=", "<", ">=", ">")
SET_OPERATORS = ("and", "or", "unless")
_SUPPORTED_OPS = ("+", "-", "*", "/", "%", "^", *COMPARISONS, *SET_OPERATORS)

_DURATION = re.compile(r"(?:\d+(?:ms|[smhdwy]))+")
_DURATION_PART = re.compile(r"(\d+)(ms|[smhdwy])")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000,
            "w": 604_800_000, "y": 31_536_000_000}
_NUMBER = re.compile(r"0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_SYMBOLS = ("==", "!=", "<=", ">=", "=~", "!~", "+", "-", "*", "/", "%", "^", "<", ">",
            "(", ")", "[", "]", ",", ":", "@", "=")


@dataclass(frozen=True)
class _Token:
    kind: str  # num, dur, str, id, sym, braces, eof
    text: str
    pos: int


def parse_duration_ms(text: str) -> int:
    """Milliseconds of a Prometheus duration such as `5m`, `1h30m` or `250ms`.

    >>> parse_duration_ms("1m30s")
    90000
    """
    if not _DURATION.fullmatch(text):
        raise PromQLError(f"bad duration {text!r}")
    return sum(int(n) * _UNIT_MS[unit] for n, unit in _DURATION_PART.findall(text))


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        ch = text[pos]
        if ch.isspace():
            pos += 1
        elif ch == "#":  # a comment runs to the end of the line
            end = text.find("\n", pos)
            pos = len(text) if end < 0 else end
        elif ch in "\"'`":
            end = _string_end(text, pos)
            tokens.append(_Token("str", text[pos:end], pos))
            pos = end
        elif ch == "{":
            end = pos + 1
            while end < len(text) and text[end] != "}":
                end = _string_end(text, end) if text[end] in "\"'`" else end + 1
            if end >= len(text):
                raise PromQLError(f"unclosed '{{' at position {pos}")
            tokens.append(_Token("braces", text[pos:end + 1], pos))
            pos = end + 1
        elif (m := _DURATION.match(text, pos)) and not (
                m.end() < len(text) and (text[m.end()].isalnum() or text[m.end()] in "._")):
            tokens.append(_Token("dur", m.group(), pos))
            pos = m.end()
        elif m := _NUMBER.match(text, pos):
            tokens.append(_Token("num", m.group(), pos))
            pos = m.end()
        elif m := _IDENT.match(text, pos):
            tokens.append(_Token("id", m.group(), pos))
            pos = m.end()
        else:
            sym = next((s for s in _SYMBOLS if text.startswith(s, pos)), None)
            if sym is None:
                raise PromQLError(f"unexpected character {ch!r} at position {pos}")
            tokens.append(_Token("sym", sym, pos))
            pos += len(sym)
    tokens.append(_Token("eof", "", len(text)))
    return tokens


def _string_end(text: str, pos: int) -> int:
    quote, end = text[pos], pos + 1
    while end < len(text) and text[end] != quote:
        end += 2 if text[end] == "\\" and quote != "`" else 1
    if end >= len(text):
        raise PromQLError(f"unterminated string at position {pos}")
    return end + 1


def parse_promql(text: str) -> Expr:
    """The typed AST of a PromQL expression, or PromQLError naming what is wrong.

    >>> parse_promql("sum by (job) (rate(http_requests_total[5m]))").type
    'vector'
    """
    if not text.strip():
        raise PromQLError("empty query")
    return _Parser(text).parse()


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0

    @property
    def tok(self) -> _Token:
        return self.tokens[self.i]

    def take(self) -> _Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def is_sym(self, sym: str) -> bool:
        return self.tok.kind == "sym" and self.tok.text == sym

    def expect(self, sym: str) -> None:
        if not self.is_sym(sym):
            raise self.fail(f"expected {sym!r}")
        self.i += 1

    def fail(self, reason: str) -> PromQLError:
        found = self.tok.text or "end of input"
        return PromQLError(f"parse error at position {self.tok.pos}: {reason}, found {found!r}")

    def parse(self) -> Expr:
        expr = self.binary(0)
        if self.tok.kind != "eof":
            raise self.fail("unexpected input")
        return expr

    def operator(self) -> str | None:
        tok = self.tok
        if tok.kind == "sym" and tok.text in _PRECEDENCE:
            return tok.text
        if tok.kind == "id" and tok.text.lower() in ("and", "or", "unless", "atan2"):
            return tok.text.lower()
        return None

    def binary(self, min_prec: int) -> Expr:
        lhs = self.unary()
        while (op := self.operator()) is not None and _PRECEDENCE[op] > min_prec:
            self.take()
            if op not in _SUPPORTED_OPS:
                raise PromQLError(f"operator {op} is not supported")
            return_bool = self.keyword("bool")
            on, labels = self.matching()
            if self.tok.kind == "id" and self.tok.text.lower() in ("group_left", "group_right"):
                raise PromQLError(f"{self.tok.text.lower()} (many-to-one matching) "
                                  "is not supported")
            # `^` is right-associative: its right side may hold another `^`.
            rhs = self.binary(_PRECEDENCE[op] - (1 if op == "^" else 0))
            lhs = _binary(op, lhs, rhs, return_bool, on, labels)
        return lhs

    def keyword(self, word: str) -> bool:
        if self.tok.kind == "id" and self.tok.text.lower() == word:
            self.i += 1
            return True
        return False

    def matching(self) -> tuple[bool, tuple[str, ...]]:
        if self.keyword("on"):
            return True, self.label_list()
        if self.keyword("ignoring"):
            return False, self.label_list()
        return False, ()

    def label_list(self) -> tuple[str, ...]:
        self.expect("(")
        names: list[str] = []
        while not self.is_sym(")"):
            if self.tok.kind != "id":
                raise self.fail("expected a label name")
            names.append(self.take().text)
            if not self.is_sym(")"):
                self.expect(",")
        self.take()
        return tuple(names)

    def unary(self) -> Expr:
        if self.is_sym("-") or self.is_sym("+"):
            sign = self.take().text
            operand = self.binary(_PRECEDENCE["^"] - 1)  # -a^b is -(a^b)
            if operand.type not in (SCALAR, VECTOR):
                raise PromQLError("unary expression only allowed on expressions of type "
                                  "scalar or instant vector")
            if sign == "+":
                return operand
            if isinstance(operand, Number):
                return Number(-operand.value)
            return Unary(operand, operand.type)
        return self.postfix(self.primary())

    def primary(self) -> Expr:
        tok = self.tok
        if tok.kind == "num":
            self.take()
            return Number(float(int(tok.text, 16)) if tok.text[:2].lower() == "0x"
                          else float(tok.text))
        if tok.kind == "dur":
            raise self.fail("unexpected duration")
        if tok.kind == "str":
            raise PromQLError("string literals are not supported")
        if self.is_sym("("):
            self.take()
            inner = self.binary(0)
            self.expect(")")
            return inner
        if tok.kind == "braces":
            self.take()
            return self.selector(tok.text)
        if tok.kind != "id":
            raise self.fail("expected an expression")
        name = tok.text
        following = self.tokens[self.i + 1]
        opens = following.kind == "sym" and following.text == "("
        grouping = following.kind == "id" and following.text.lower() in ("by", "without")
        if name.lower() in AGGREGATIONS + _UNSUPPORTED_AGGREGATIONS and (opens or grouping):
            return self.aggregate(name.lower())
        if opens:
            return self.call(name)
        self.take()
        if name.lower() in ("inf", "nan"):
            return Number(math.inf if name.lower() == "inf" else math.nan)
        if following.kind == "braces":
            self.take()
            return self.selector(name + following.text)
        return self.selector(name)

    def selector(self, text: str) -> VectorSelector:
        try:
            return VectorSelector(parse_selector(text, field_name="query"))
        except SelectorError as exc:
            raise PromQLError(f"in {text!r}: {exc.message}") from None

    def postfix(self, expr: Expr) -> Expr:
        if self.is_sym("["):
            start = self.tok.pos
            self.take()
            if self.tok.kind != "dur":
                raise self.fail("expected a duration in '[...]'")
            range_ms = parse_duration_ms(self.take().text)
            if self.is_sym(":") or self.tok.text.startswith(":"):  # `:1m` lexes as a name
                raise PromQLError("subqueries (expr[range:step]) are not supported")
            self.expect("]")
            if not isinstance(expr, VectorSelector) or expr.offset_ms:
                raise PromQLError(f"ranges only allowed for vector selectors (position {start})")
            expr = MatrixSelector(expr, range_ms)
        if self.keyword("offset"):
            negative = self.is_sym("-")
            if negative:
                self.take()
            if self.tok.kind != "dur":
                raise self.fail("expected a duration after offset")
            offset_ms = parse_duration_ms(self.take().text) * (-1 if negative else 1)
            if isinstance(expr, VectorSelector):
                expr = VectorSelector(expr.selector, offset_ms)
            elif isinstance(expr, MatrixSelector):
                expr = MatrixSelector(VectorSelector(expr.vector.selector, offset_ms),
                                      expr.range_ms)
            else:
                raise PromQLError("offset modifier must be preceded by a selector")
        if self.is_sym("@"):
            raise PromQLError("the @ modifier is not supported")
        return expr

    def aggregate(self, op: str) -> Aggregate:
        self.take()
        if op in _UNSUPPORTED_AGGREGATIONS:
            raise PromQLError(f"aggregation {op} is not supported")
        without, seen = False, False
        grouping: tuple[str, ...] = ()
        if self.tok.kind == "id" and self.tok.text.lower() in ("by", "without"):
            without = self.take().text.lower() == "without"
            grouping, seen = self.label_list(), True
        self.expect("(")
        param = None
        if op in _PARAM_AGGREGATIONS:
            param = self.binary(0)
            if param.type != SCALAR:
                raise PromQLError(f"expected type scalar in aggregation parameter of {op}")
            self.expect(",")
        expr = self.binary(0)
        self.expect(")")
        if not seen and self.tok.kind == "id" and self.tok.text.lower() in ("by", "without"):
            without = self.take().text.lower() == "without"
            grouping = self.label_list()
        if expr.type != VECTOR:
            raise PromQLError(f"expected type instant vector in aggregation expression, "
                              f"got {TYPE_NAMES[expr.type]}")
        return Aggregate(op, expr, param, grouping, without)

    def call(self, name: str) -> Call:
        self.take()
        if name not in FUNCTIONS:
            raise PromQLError(f"function {name} is not supported")
        self.expect("(")
        args: list[Expr] = []
        while not self.is_sym(")"):
            args.append(self.binary(0))
            if not self.is_sym(")"):
                self.expect(",")
        self.take()
        wanted, result = FUNCTIONS[name]
        required = [t for t in wanted if not t.endswith("?")]
        if not len(required) <= len(args) <= len(wanted):
            raise PromQLError(f"wrong number of arguments for function {name}: "
                              f"expected {len(wanted)}, got {len(args)}")
        for arg, kind in zip(args, wanted, strict=False):
            if arg.type != kind.rstrip("?"):
                raise PromQLError(f"expected type {TYPE_NAMES[kind.rstrip('?')]} in call to "
                                  f"function {name}, got {TYPE_NAMES[arg.type]}")
        return Call(name, tuple(args), result)


def _binary(op: str, lhs: Expr, rhs: Expr, return_bool: bool, on: bool,
            labels: tuple[str, ...]) -> Binary:
    if MATRIX in (lhs.type, rhs.type):
        raise PromQLError("binary expression must contain only scalar and instant vector types")
    if op in SET_OPERATORS and SCALAR in (lhs.type, rhs.type):
        raise PromQLError(f"set operator {op} not allowed in binary scalar expression")
    if return_bool and op not in COMPARISONS:
        raise PromQLError("bool modifier can only be used on comparison operators")
    both_scalar = lhs.type == rhs.type == SCALAR
    if op in COMPARISONS and both_scalar and not return_bool:
        raise PromQLError("comparisons between scalars must use BOOL modifier")
    if (on or labels) and SCALAR in (lhs.type, rhs.type):
        raise PromQLError("vector matching only allowed between instant vectors")
    return Binary(op, lhs, rhs, return_bool, on, labels, SCALAR if both_scalar else VECTOR)
