"""Rule expressions: what parses, how it prints back, and errors that point at the problem."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seismo.alerting import (
    Absent,
    Anomaly,
    Comparison,
    Expr,
    ExprError,
    Forecast,
    Instant,
    Operand,
    OverTime,
    Rate,
    Ratio,
    parse_expr,
)
from seismo.alerting.expr import ANOMALY_KINDS, COMPARISONS, MAX_DURATION_MS, MAX_EXPR_CHARS
from seismo.errors import InvalidInput
from seismo.query.selector import Matcher, Selector, parse_selector


@pytest.mark.parametrize(("text", "canonical"), [
    ('cpu_usage{host=~"web.*"} > 90', 'cpu_usage{host=~"web.*"} > 90'),
    ("  cpu_usage>90.5  ", "cpu_usage > 90.5"),
    ("cpu { host = 'a' , env != `dev` , } <= -3", 'cpu{host="a", env!="dev"} <= -3'),
    ('{__name__="cpu", host="a"} == 0', 'cpu{host="a"} == 0'),
    ('{job="api"} != 1e3', '{job="api"} != 1000'),
    ("x >= .5", "x >= 0.5"),
    ("x < 1e-5", "x < 1e-05"),
    ("rate(requests_total[1m]) > 5", "rate(requests_total[1m]) > 5"),
    ("rate ( x [ 60s ] ) > 5", "rate(x[1m]) > 5"),
    ("avg_over_time(x[5m]) > 2", "avg_over_time(x[5m]) > 2"),
    ("min_over_time(x[300000ms]) > 2", "min_over_time(x[5m]) > 2"),
    ("max_over_time(x[1.5h]) > 2", "max_over_time(x[90m]) > 2"),
    ("sum_over_time(x[7d]) > 2", "sum_over_time(x[1w]) > 2"),
    ("count_over_time(x[90s]) < 1", "count_over_time(x[90s]) < 1"),
    ("p50_over_time(x[1m]) > 1", "p50_over_time(x[1m]) > 1"),
    ("p99_over_time(latency_s[5m]) > 0.3", "p99_over_time(latency_s[5m]) > 0.3"),
    ("quantile_over_time(0.95, x[5m]) > 1", "p95_over_time(x[5m]) > 1"),
    ("quantile_over_time(0.9, x[5m]) > 1", "quantile_over_time(0.9, x[5m]) > 1"),
    ("absent(heartbeat, 60s)", "absent(heartbeat, 1m)"),
    ('absent(up{job="db"}, 1500ms)', 'absent(up{job="db"}, 1500ms)'),
    ("anomaly(x) > 0.8", "anomaly(x) > 0.8"),
    ("anomaly(x, kinds='drop, spike') >= 0.5", 'anomaly(x, kinds="spike,drop") >= 0.5'),
    ("errors_total / requests_total > 0.01", "errors_total / requests_total > 0.01"),
    ("rate(errors_total[5m]) / rate(requests_total[5m]) > 0.01",
     "rate(errors_total[5m]) / rate(requests_total[5m]) > 0.01"),
    ("sum_over_time(a[1h])/count_over_time(b[1h])>1",
     "sum_over_time(a[1h]) / count_over_time(b[1h]) > 1"),
    ("forecast(disk_free[1h], 4h) < 0", "forecast(disk_free[1h], 4h) < 0"),
    # A metric may be named like a function when no '(' follows.
    ('rate{a="b"} > 1', 'rate{a="b"} > 1'),
    ('x{a="say \\"hi\\"", b=~"\\\\d+"} > 1', 'x{a="say \\"hi\\"", b=~"\\\\d+"} > 1'),
])
def test_valid_expressions_print_back_canonically(text: str, canonical: str) -> None:
    expr = parse_expr(text)
    assert str(expr) == canonical
    assert parse_expr(canonical) == expr


def sel(text: str) -> Selector:
    return parse_selector(text)


@pytest.mark.parametrize(("text", "tree"), [
    ('cpu{host="a"} > 90', Comparison(Instant(sel('cpu{host="a"}')), ">", 90.0)),
    ("rate(x[1m]) > 5", Comparison(Rate(sel("x"), 60_000), ">", 5.0)),
    ("p95_over_time(x[5m]) > 1", Comparison(OverTime("quantile", sel("x"), 300_000, 0.95),
                                            ">", 1.0)),
    ("avg_over_time(x[5m]) > 1", Comparison(OverTime("avg", sel("x"), 300_000), ">", 1.0)),
    ("absent(x, 60s)", Absent(sel("x"), 60_000)),
    ('anomaly(x, kinds="spike") > 0.8', Comparison(Anomaly(sel("x"), ("spike",)), ">", 0.8)),
    ("a / rate(b[1m]) < 2", Comparison(Ratio(Instant(sel("a")), Rate(sel("b"), 60_000)),
                                       "<", 2.0)),
    ("forecast(d[1h], 4h) < 0", Comparison(Forecast(sel("d"), 3_600_000, 14_400_000),
                                           "<", 0.0)),
])
def test_the_tree(text: str, tree: Expr) -> None:
    assert parse_expr(text) == tree


def test_two_spellings_of_one_selector_are_one_tree() -> None:
    assert parse_expr("cpu{ host = 'a' } > 1") == parse_expr('{__name__="cpu",host="a"} > 1')
    assert Instant(sel("cpu {a='b'}")).selector.text == 'cpu{a="b"}'


@pytest.mark.parametrize(("text", "names"), [
    ("cpu > 1", {"cpu"}),
    ('{__name__="cpu", a="b"} > 1', {"cpu"}),
    ("rate(errors[1m]) / rate(requests[1m]) > 0.1", {"errors", "requests"}),
    ("absent(heartbeat, 1m)", {"heartbeat"}),
    ('anomaly(x{a="b"}) > 0.5', {"x"}),
    # No fixed metric name: the rule has to see every batch.
    ('{job="api"} > 1', None),
    ('{__name__=~"cpu|mem"} > 1', None),
    ('errors / {__name__=~"req.*"} > 1', None),
])
def test_metric_names_for_the_rule_index(text: str, names: set[str] | None) -> None:
    expected = None if names is None else frozenset(names)
    assert parse_expr(text).metric_names() == expected


def test_selectors_left_to_right() -> None:
    expr = parse_expr("a / rate(b[1m]) > 1")
    assert [s.text for s in expr.selectors()] == ["a", "b"]


@pytest.mark.parametrize(("text", "position", "reason"), [
    ("", 0, "expected a series selector, rate() or *_over_time(), absent(), anomaly() or "
            "forecast()"),
    ("> 5", 0, "expected a series selector, rate() or *_over_time(), absent(), anomaly() or "
               "forecast()"),
    ("5 < x", 0, "expected a series selector, rate() or *_over_time(), absent(), anomaly() "
                 "or forecast()"),
    ("x", 1, "expected a comparison (>, >=, <, <=, ==, !=) and a number"),
    ("x >", 3, "expected a number to compare with"),
    ("x > y", 4, "expected a number to compare with"),
    ("x > 5m", 4, "expected a number to compare with"),
    ("x > 1e999", 4, "number out of range"),
    ("x = 1", 2, "expected a comparison (>, >=, <, <=, ==, !=)"),
    ("x => 1", 2, "expected a comparison (>, >=, <, <=, ==, !=)"),
    ("x + 1 > 2", 2, "expected a comparison (>, >=, <, <=, ==, !=); the only arithmetic is "
                     "one '/' between two series"),
    ("x > 1 and y > 2", 6, "unexpected 'a'"),
    ("x > 1)", 5, "unexpected ')'"),
    ("sum(x) > 1", 0, "unknown function 'sum'; expected one of rate, absent, anomaly, "
                      "forecast, quantile_over_time, avg_over_time, min_over_time, "
                      "max_over_time, sum_over_time, count_over_time, p50_over_time, "
                      "p95_over_time, p99_over_time"),
    ("x[5m] > 1", 1, "a range [..] needs a function around it: rate(x[1m]) or "
                     "avg_over_time(x[5m])"),
    ("rate(x) > 1", 6, "expected a range like [5m]"),
    ("rate(x[5]) > 1", 7, "expected a duration like 30s, 5m or 1h"),
    ("rate(x[5min]) > 1", 7, "expected a duration like 30s, 5m or 1h"),
    ("rate(x[0s]) > 1", 7, "a duration must be between 1ms and 10y"),
    ("rate(x[11y]) > 1", 7, "a duration must be between 1ms and 10y"),
    ("rate(x[0.5ms]) > 1", 7, "a duration is a whole number of milliseconds"),
    ("rate(x[1m] > 1", 11, "expected ')'"),
    ("rate(x[1m > 1", 10, "expected ']'"),
    ("rate([1m]) > 1", 5, "expected a series selector"),
    ("quantile_over_time(x[1m]) > 1", 19, "expected a quantile in 0..1"),
    ("quantile_over_time(1.5, x[1m]) > 1", 19, "the quantile must be in 0..1"),
    ("quantile_over_time(0.5 x[1m]) > 1", 23, "expected ','"),
    ("absent(x, 1m) > 0", 14, "absent() is a condition on its own; remove the comparison"),
    ("absent(x, 1m) x", 14, "unexpected 'x'"),
    ("absent(x)", 8, "expected ',' and a duration: absent(x, 60s)"),
    ("absent(x[1m])", 8, "absent() takes a duration, not a range: absent(x, 60s)"),
    ("absent(x, 1m", 12, "expected ')'"),
    ("anomaly(x, kinds=\"spike,bogus\") > 1", 24,
     "unknown anomaly kind 'bogus'; expected one of spike, drop, level_shift, "
     "trend_change, outlier, pattern_change"),
    ("anomaly(x, kinds=\"none\") > 1", 18,
     "unknown anomaly kind 'none'; expected one of spike, drop, level_shift, "
     "trend_change, outlier, pattern_change"),
    ("anomaly(x, kinds=spike) > 1", 17, "expected a quoted list of kinds"),
    ("anomaly(x, kinds=\"spike) > 1", 17, "unterminated string"),
    ("anomaly(x, spike) > 1", 11, 'expected kinds="spike,drop"'),
    ("forecast(x[1h]) < 0", 14, "expected ',' and a horizon: forecast(x[1h], 4h)"),
    ("x / y / z > 1", 6, "only one '/' is allowed"),
    ("anomaly(x) / y > 1", 11,
     "only a series selector, rate() or *_over_time() can be on either side of '/'"),
    ("x / anomaly(y) > 1", 4,
     "only a series selector, rate() or *_over_time() can be on either side of '/'"),
    ("x / forecast(y[1h], 1h) > 1", 4,
     "only a series selector, rate() or *_over_time() can be on either side of '/'"),
    ("x / absent(y, 1m) > 1", 4,
     "absent() is a condition on its own and cannot be compared or divided"),
    ("x / > 1", 4, "expected a series selector, rate() or *_over_time(), absent(), anomaly() "
                   "or forecast()"),
    # Selector errors keep the selector parser's reason, at their place in the expression.
    ('rate(x{a="b}[1m]) > 1', 21, "unterminated string"),
    ("x{a} > 1", 3, "expected one of =, !=, =~, !~"),
    ('x{a="b" c="d"} > 1', 8, "expected ',' or '}'"),
    ('y / {a=""} > 1', 10, "selector must contain at least one matcher that is not empty"),
    ('avg_over_time({a=~".*"}[1m]) > 1', 23,
     "selector must contain at least one matcher that is not empty"),
])
def test_bad_expressions_name_the_position_and_reason(text: str, position: int,
                                                      reason: str) -> None:
    with pytest.raises(ExprError) as caught:
        parse_expr(text)
    err = caught.value
    assert isinstance(err, InvalidInput) and err.status == 400
    assert err.field == "expr"
    assert err.detail == {"position": position, "expr": text}
    assert err.message == f"bad expression at position {position}: {reason}"


def test_bad_regex_points_into_the_selector() -> None:
    with pytest.raises(ExprError, match="bad regex") as caught:
        parse_expr('rate(x{a=~"("}[1m]) > 1')
    assert 11 <= caught.value.detail["position"] <= 14


def test_the_field_name_is_the_caller_s() -> None:
    with pytest.raises(ExprError) as caught:
        parse_expr("cpu <", field_name="resolve")
    assert caught.value.field == "resolve"
    assert caught.value.to_dict()["field"] == "resolve"


def test_length_is_bounded() -> None:
    fits = "x > 1" + " " * (MAX_EXPR_CHARS - 5)
    assert isinstance(parse_expr(fits), Comparison)
    with pytest.raises(ExprError) as caught:
        parse_expr(fits + "1")
    assert caught.value.detail["position"] == MAX_EXPR_CHARS
    assert "longer than 4096 characters" in caught.value.message


def test_trees_refuse_values_the_parser_would_refuse() -> None:
    with pytest.raises(ValueError, match="window"):
        Rate(sel("x"), 0)
    with pytest.raises(ValueError, match="quantile"):
        OverTime("avg", sel("x"), 1000, 0.5)
    with pytest.raises(ValueError, match="aggregation"):
        OverTime("median", sel("x"), 1000)
    with pytest.raises(ValueError, match="kinds"):
        Anomaly(sel("x"), ("none",))
    with pytest.raises(ValueError, match="finite"):
        Comparison(Instant(sel("x")), ">", float("nan"))
    with pytest.raises(ValueError, match="comparison"):
        Comparison(Instant(sel("x")), "=", 1.0)


# --- property: print, parse again, get the same tree ----------------------------------

REGEXES = ["web.*", "a|b", r"\d+\.\d+", "(?i)prod", "[a-z]{2,3}", ".+", 'say "hi"', "\\\\"]
names = st.from_regex(r"[a-zA-Z_:][a-zA-Z0-9_:]{0,10}", fullmatch=True)
label_names = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,8}", fullmatch=True)
plain_matchers = st.builds(Matcher, label_names, st.sampled_from(["=", "!="]),
                           st.text(max_size=8))
regex_matchers = st.builds(
    lambda label, op, value: Matcher(label, op, value, re.compile(value)),
    label_names, st.sampled_from(["=~", "!~"]),
    st.one_of(st.sampled_from(REGEXES), st.text(max_size=6).map(re.escape)),
)
any_matchers = st.lists(st.one_of(plain_matchers, regex_matchers), max_size=3)


@st.composite
def selectors(draw: st.DrawFn) -> Selector:
    rest = draw(any_matchers)
    if draw(st.booleans()):
        first = Matcher("__name__", "=", draw(names))
    else:  # no metric name: a label matcher that cannot match the empty string leads
        first = Matcher(draw(label_names), "=", draw(st.text(min_size=1, max_size=8)))
    return Selector((first, *rest))


durations = st.integers(1, MAX_DURATION_MS)
terms = st.one_of(
    st.builds(Instant, selectors()),
    st.builds(Rate, selectors(), durations),
    st.builds(OverTime, st.sampled_from(["avg", "min", "max", "sum", "count"]),
              selectors(), durations),
    st.builds(OverTime, st.just("quantile"), selectors(), durations,
              st.one_of(st.sampled_from([0.5, 0.95, 0.99]), st.floats(0, 1))),
)
operands: st.SearchStrategy[Operand] = st.one_of(
    terms,
    st.builds(Anomaly, selectors(),
              st.lists(st.sampled_from(ANOMALY_KINDS), unique=True).map(tuple)),
    st.builds(Forecast, selectors(), durations, durations),
    st.builds(Ratio, terms, terms),
)
exprs: st.SearchStrategy[Expr] = st.one_of(
    st.builds(Comparison, operands, st.sampled_from(COMPARISONS),
              st.floats(allow_nan=False, allow_infinity=False)),
    st.builds(Absent, selectors(), durations),
)


@settings(max_examples=200, deadline=None)
@given(exprs)
def test_printing_then_parsing_gives_the_same_tree(expr: Expr) -> None:
    text = str(expr)
    again = parse_expr(text)
    assert again == expr
    assert str(again) == text
    assert again.metric_names() == expr.metric_names()


@settings(max_examples=300, deadline=None)
@given(st.one_of(
    st.text(max_size=40),
    st.lists(st.sampled_from(["rate(", "x", "[1m]", ")", " > ", "1", "/", "{a=\"b\"}",
                              "absent(", ", 1m", "anomaly(", "p95_over_time(", ",", "'"]),
             max_size=10).map("".join),
))
def test_the_parser_only_ever_raises_expr_error(text: str) -> None:
    try:
        expr = parse_expr(text)
    except ExprError as err:
        assert 0 <= err.detail["position"] <= len(text)
        assert err.message.startswith(f"bad expression at position {err.detail['position']}: ")
    else:
        assert parse_expr(str(expr)) == expr


def test_the_examples_in_docs_alerting_md_run() -> None:
    import doctest
    from pathlib import Path

    doc = Path(__file__).resolve().parents[2] / "docs" / "alerting.md"
    failed, tried = doctest.testfile(str(doc), module_relative=False)
    assert tried > 0 and failed == 0
    for line in doc.read_text().splitlines():
        if line.startswith("bad expression at position") and "#" in line:
            message, example = (part.strip() for part in line.split("#", 1))
            with pytest.raises(ExprError) as caught:
                parse_expr(example)
            assert caught.value.message == message
