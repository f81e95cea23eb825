"""Fuzzing rule expressions and rule documents: only InvalidInput, never a crash."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from seismo.alerting.expr import parse_expr
from seismo.alerting.rules import KEYS, parse_rule
from tests.fuzz.strategies import FUZZ, grammar_text, json_values, refuses_cleanly

EXPR_PIECES = [
    "cpu", "{job=\"a\"}", "{", "}", "rate(", "avg_over_time(", "quantile_over_time(",
    "max_over_time(", "absent(", "anomaly(", "forecast(", "kinds=\"spike,drop\"", "kinds=",
    "[5m]", "[0s]", "[99999999999y]", "5m", "60s", "1ms", ")", "(", ",", "/", " > ", ">=",
    "<", "==", "!=", "90", "-1e308", "1e999", "0.5", "2", "nan", "inf", '"', " ", "\\"]

rule_docs = st.fixed_dictionaries(
    {},
    optional={
        "name": st.sampled_from(["high_cpu", "", "1x", "a" * 200]) | json_values,
        "expr": grammar_text(EXPR_PIECES) | json_values,
        "resolve": grammar_text(EXPR_PIECES) | json_values,
        "for": st.sampled_from(["5m", "0s", "-1s", "1y", "99999999999y", "x"]) | json_values,
        "keep_firing_for": st.sampled_from(["5m", "bad"]) | json_values,
        "severity": st.sampled_from(["low", "critical", "loud"]) | json_values,
        "enabled": json_values,
        "labels": json_values,
        "annotations": st.dictionaries(st.text(max_size=8),
                                       st.sampled_from(["{{ $value }}", "{{", "{{ .x }}",
                                                        "{% for %}", "{{ $labels.job }}"])
                                       | json_values, max_size=3) | json_values,
    },
)


@FUZZ
@given(grammar_text(EXPR_PIECES) | st.text(max_size=40))
def test_expr_parser_never_fails_unhandled(text: str) -> None:
    refuses_cleanly(lambda: parse_expr(text))


@FUZZ
@given(rule_docs | json_values)
def test_rule_parser_never_fails_unhandled(doc: Any) -> None:
    refuses_cleanly(lambda: parse_rule(doc))


def test_rule_keys_are_the_fuzzed_keys() -> None:
    assert set(KEYS) >= {"name", "expr", "resolve", "for", "severity", "labels"}
