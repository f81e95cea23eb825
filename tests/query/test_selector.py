"""Series selectors: the parser, matching semantics, and errors that point at the problem."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seismo.errors import InvalidInput
from seismo.query.selector import Matcher, Selector, SelectorError, parse_selector


def matchers(text: str) -> list[tuple[str, str, str]]:
    return [(m.label, m.op, m.value) for m in parse_selector(text).matchers]


@pytest.mark.parametrize(("text", "expected"), [
    ("cpu", [("__name__", "=", "cpu")]),
    ("  cpu  ", [("__name__", "=", "cpu")]),
    ("node:cpu_seconds:rate5m", [("__name__", "=", "node:cpu_seconds:rate5m")]),
    ("_x9", [("__name__", "=", "_x9")]),
    ("cpu{}", [("__name__", "=", "cpu")]),
    ("cpu { }", [("__name__", "=", "cpu")]),
    ('{__name__="cpu"}', [("__name__", "=", "cpu")]),
    ('cpu{host="a"}', [("__name__", "=", "cpu"), ("host", "=", "a")]),
    ('cpu{host!="a"}', [("__name__", "=", "cpu"), ("host", "!=", "a")]),
    ('cpu{host=~"a.*"}', [("__name__", "=", "cpu"), ("host", "=~", "a.*")]),
    ('cpu{host!~"a.*"}', [("__name__", "=", "cpu"), ("host", "!~", "a.*")]),
    ('cpu { host = "a" , env != "dev" , }',
     [("__name__", "=", "cpu"), ("host", "=", "a"), ("env", "!=", "dev")]),
    ('cpu{host="a",}', [("__name__", "=", "cpu"), ("host", "=", "a")]),
    ("cpu{host='a'}", [("__name__", "=", "cpu"), ("host", "=", "a")]),
    ("cpu{host=`a`}", [("__name__", "=", "cpu"), ("host", "=", "a")]),
    ('{job="api",path=~"/v1/.*"}', [("job", "=", "api"), ("path", "=~", "/v1/.*")]),
    ('{env="prod"}', [("env", "=", "prod")]),
])
def test_valid_selectors(text: str, expected: list[tuple[str, str, str]]) -> None:
    selector = parse_selector(text)
    assert matchers(text) == expected
    assert selector.text == text


@pytest.mark.parametrize(("text", "value"), [
    (r'x{a="say \"hi\""}', 'say "hi"'),
    (r'x{a="tab\there"}', "tab\there"),
    (r'x{a="line\nbreak\r"}', "line\nbreak\r"),
    (r'x{a="back\\slash"}', "back\\slash"),
    (r"x{a='it\'s'}", "it's"),
    (r'x{a="it\'s"}', "it's"),
    (r'x{a="`"}', "`"),
    (r"x{a='\"'}", '"'),
    # Unknown escapes keep their backslash, so regex escapes pass through to the regex.
    (r'x{a=~"\d+\.\d+"}', r"\d+\.\d+"),
    # Backticks are raw: no escapes at all.
    (r"x{a=`C:\new\d`}", r"C:\new\d"),
    ('x{a="ünïcødé ✓"}', "ünïcødé ✓"),
    ('x{a="a,b}c{d"}', "a,b}c{d"),
])
def test_string_escapes(text: str, value: str) -> None:
    assert parse_selector(text).matchers[-1].value == value


def test_metric_name_of_a_selector() -> None:
    assert parse_selector("cpu").metric_name() == "cpu"
    assert parse_selector('{__name__="cpu", a="b"}').metric_name() == "cpu"
    assert parse_selector('{__name__=~"cpu|mem"}').metric_name() is None
    assert parse_selector('{job="x"}').metric_name() is None


@pytest.mark.parametrize(("text", "series", "expected"), [
    ("cpu", ("cpu", {}), True),
    ("cpu", ("cpu", {"host": "a"}), True),
    ("cpu", ("cpu_total", {}), False),
    ('cpu{host="a"}', ("cpu", {"host": "a", "env": "x"}), True),
    ('cpu{host="a"}', ("cpu", {"host": "ab"}), False),
    ('cpu{host!="a"}', ("cpu", {"host": "b"}), True),
    ('cpu{host!="a"}', ("cpu", {}), True),
    # Regexes are anchored at both ends.
    ('cpu{host=~"web"}', ("cpu", {"host": "web1"}), False),
    ('cpu{host=~"web"}', ("cpu", {"host": "aweb"}), False),
    ('cpu{host=~"web.*"}', ("cpu", {"host": "web1"}), True),
    ('cpu{host=~"a|b"}', ("cpu", {"host": "b"}), True),
    ('cpu{host=~"a|b"}', ("cpu", {"host": "ab"}), False),
    ('cpu{host!~"web.*"}', ("cpu", {"host": "db1"}), True),
    ('cpu{host!~"web.*"}', ("cpu", {"host": "web1"}), False),
    ('cpu{host!~"web"}', ("cpu", {"host": "web1"}), True),
    # A missing label is the empty string.
    ('cpu{env=""}', ("cpu", {}), True),
    ('cpu{env=""}', ("cpu", {"env": "prod"}), False),
    ('cpu{env=~".*"}', ("cpu", {}), True),
    ('cpu{env=~"prod|"}', ("cpu", {}), True),
    ('cpu{env=~".+"}', ("cpu", {}), False),
    ('cpu{env!=""}', ("cpu", {}), False),
    ('cpu{env!=""}', ("cpu", {"env": "x"}), True),
    ('cpu{env!~".+"}', ("cpu", {}), True),
    # __name__ is the metric name, with every operator.
    ('{__name__=~"cpu|mem"}', ("mem", {}), True),
    ('{__name__=~"cpu|mem"}', ("disk", {}), False),
    ('{__name__!="cpu", job="x"}', ("mem", {"job": "x"}), True),
    ('{__name__!="cpu", job="x"}', ("cpu", {"job": "x"}), False),
    ('cpu{__name__="mem"}', ("cpu", {}), False),
])
def test_matching(text: str, series: tuple[str, dict[str, str]], expected: bool) -> None:
    assert parse_selector(text).matches(*series) is expected


@pytest.mark.parametrize(("text", "position", "reason"), [
    ("", 0, "expected a metric name or '{'"),
    ("   ", 3, "expected a metric name or '{'"),
    ("{}", 2, "expected a metric name or '{'"),
    ("9cpu", 0, "unexpected '9'"),
    ("cpu}", 3, "unexpected '}'"),
    ("cpu mem", 4, "unexpected 'm'"),
    ('cpu{host="a"}x', 13, "unexpected 'x'"),
    ("cpu{", 4, "expected a label name"),
    ('cpu{="a"}', 4, "expected a label name"),
    ('cpu{9a="b"}', 4, "expected a label name"),
    ('cpu{a:b="c"}', 5, "expected one of =, !=, =~, !~"),
    ("cpu{host}", 8, "expected one of =, !=, =~, !~"),
    ('cpu{host=="a"}', 9, "expected a quoted string"),
    ('cpu{host<"a"}', 8, "expected one of =, !=, =~, !~"),
    ("cpu{host=a}", 9, "expected a quoted string"),
    ("cpu{host=", 9, "expected a quoted string"),
    ('cpu{host="a}', 12, "unterminated string"),
    ('cpu{host="a\\"}', 14, "unterminated string"),
    ("cpu{host='a\"}", 13, "unterminated string"),
    ('cpu{host="a"', 12, "expected ',' or '}'"),
    ('cpu{host="a" env="b"}', 13, "expected ',' or '}'"),
    ('cpu{host="a";env="b"}', 12, "expected ',' or '}'"),
    ('cpu{host="a",,}', 13, "expected a label name"),
    ('{host=""}', 9, "selector must contain at least one matcher that is not empty"),
    ('{host=~".*"}', 12, "selector must contain at least one matcher that is not empty"),
    ('{host!~".+", env=""}', 20, "selector must contain at least one matcher that is not empty"),
])
def test_bad_selectors_name_the_position(text: str, position: int, reason: str) -> None:
    with pytest.raises(SelectorError) as caught:
        parse_selector(text, field_name="match[]")
    err = caught.value
    assert isinstance(err, InvalidInput) and err.status == 400
    assert err.detail == {"position": position, "selector": text}
    assert err.field == "match[]"
    assert err.message == f"bad selector at position {position}: {reason}"


@pytest.mark.parametrize("text", ['cpu{host=~"("}', 'cpu{host!~"a[b"}', 'cpu{host=~"*"}'])
def test_bad_regex_is_refused_with_the_regex_in_the_message(text: str) -> None:
    with pytest.raises(SelectorError, match="bad regex") as caught:
        parse_selector(text)
    value_start = text.index('"')
    position = caught.value.detail["position"]
    # The position lies on the quoted regex.
    assert value_start <= position <= len(text) - 1


def test_matcher_equality_ignores_the_compiled_regex() -> None:
    assert parse_selector('x{a=~"b"}') == Selector(
        (Matcher("__name__", "=", "x"), Matcher("a", "=~", "b", re.compile("b"))), 'x{a=~"b"}'
    )


label_names = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,8}", fullmatch=True)
label_values = st.text(max_size=12)


def quote(value: str, quote_char: str) -> str:
    escaped = value.replace("\\", "\\\\").replace(quote_char, "\\" + quote_char)
    return quote_char + escaped + quote_char


@settings(max_examples=200, deadline=None)
@given(
    st.from_regex(r"[a-zA-Z_:][a-zA-Z0-9_:]{0,10}", fullmatch=True),
    st.lists(st.tuples(label_names, st.sampled_from(["=", "!="]), label_values,
                       st.sampled_from(['"', "'"])), max_size=4),
    st.sampled_from(["", " ", "  \t"]),
)
def test_any_well_formed_selector_parses_back_to_its_matchers(
    name: str, parts: list[tuple[str, str, str, str]], space: str
) -> None:
    body = ("," + space).join(f"{label}{space}{op}{space}{quote(value, q)}"
                              for label, op, value, q in parts)
    text = f"{space}{name}{space}{{{space}{body}{space}}}{space}"
    assert matchers(text) == [("__name__", "=", name)] + [
        (label, op, value) for label, op, value, _ in parts
    ]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=30))
def test_the_parser_only_ever_raises_selector_error(text: str) -> None:
    try:
        selector = parse_selector(text)
    except SelectorError as err:
        assert 0 <= err.detail["position"] <= len(text)
    else:
        assert selector.matchers
        assert not all(m.matches("") for m in selector.matchers)
