"""Fuzzing the query parsers: series selectors and PromQL never fail unhandled."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from seismo.query.promql import parse_promql
from seismo.query.selector import parse_selector
from tests.fuzz.strategies import FUZZ, grammar_text, refuses_cleanly

SELECTOR_PIECES = ["cpu", "{", "}", "job", "=", "!=", "=~", "!~", '"', "'", ",", "\\",
                   '"a"', '"(."', '".*"', '"[z-a]"', "__name__", " ", "\n", "é"]
PROMQL_PIECES = [
    *SELECTOR_PIECES, "rate(", "sum", " by ", " without ", "(", ")", "[5m]", "[1h:1m]",
    " offset ", "5m",
    "1e9", "0x1f", "Inf", "NaN", "+", "-", "*", "/", "%", "^", " and ", " or ", " unless ",
    " on(", " ignoring(", " group_left", " bool ", "==", ">", "<=", "@", " start()",
    "topk(", "quantile(", "histogram_quantile(", "label_replace(", "#", "`", "[", "]", ":",
    "9" * 30, "1y", "0s"]


@FUZZ
@given(grammar_text(SELECTOR_PIECES) | st.text(max_size=40))
def test_selector_parser_never_fails_unhandled(text: str) -> None:
    refuses_cleanly(lambda: parse_selector(text))


@FUZZ
@given(grammar_text(PROMQL_PIECES, max_size=16) | st.text(max_size=40))
def test_promql_parser_never_fails_unhandled(text: str) -> None:
    refuses_cleanly(lambda: parse_promql(text))
