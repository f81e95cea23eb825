"""SLO definitions: what is accepted, and every bad field refused with its name and reason."""

from __future__ import annotations

from typing import Any

import pytest

from seismo.errors import InvalidInput
from seismo.slo import parse_slo, parse_slos

GOOD: dict[str, Any] = {
    "name": "api-errors", "objective": 0.99, "window": "30d",
    "sli": {"good": 'http_requests_total{job="api", code!~"5.."}',
            "total": 'http_requests_total{job="api"}'},
    "description": "error rate under 1 %", "labels": {"team": "api"},
    "alerting": {"page": True, "ticket": False, "severity_page": "high"},
}


def with_(**changes: Any) -> dict[str, Any]:
    doc = {**GOOD, **changes}
    return {k: v for k, v in doc.items() if v is not ...}


def test_a_good_slo_round_trips() -> None:
    slo = parse_slo(GOOD)
    assert (slo.name, slo.objective, slo.window_ms, slo.sli.kind) == (
        "api-errors", 0.99, 30 * 86_400_000, "ratio")
    assert (slo.page, slo.ticket, slo.severity_page, slo.severity_ticket) == (
        True, False, "high", "medium")
    doc = slo.to_dict()
    assert parse_slo({k: v for k, v in doc.items() if k != "source"}) == slo


def test_every_sli_shape() -> None:
    latency = parse_slo(with_(objective=..., sli={"latency": "rt_seconds", "threshold_s": 2,
                                                  "percentile": 95}))
    assert (latency.sli.kind, latency.objective, latency.sli.threshold_s) == (
        "latency", 0.95, 2.0)  # no objective: the percentile gives it
    assert parse_slo(with_(objective=0.999, sli={"latency": "rt", "threshold_s": 0.3})
                     ).objective == 0.999
    assert parse_slo(with_(sli={"availability": 'up{job="api"}'})).sli.kind == "availability"
    bad = parse_slo(with_(sli={"bad": "errors_total", "total": "requests_total"})).sli
    assert (bad.kind, bad.good, bad.bad is not None) == ("ratio", None, True)
    assert parse_slo(with_(window=...)).window == "30d"  # the default
    assert parse_slo(with_(window="1w")).window == "7d"


@pytest.mark.parametrize(("doc", "field", "reason"), [
    (with_(objective=1), "slo.objective", "between 0 and 1"),
    (with_(objective=99.9), "slo.objective", "0.999 for 99.9 %"),
    (with_(objective="0.99"), "slo.objective", "fraction"),
    (with_(objective=True), "slo.objective", "fraction"),
    (with_(objective=...), "slo.objective", "fraction"),
    (with_(name="no spaces"), "slo.name", "letters, digits"),
    (with_(name=...), "slo.name", "1-128 characters"),
    (with_(window="soon"), "slo.window", "not a duration"),
    (with_(window="5m"), "slo.window", "between 1h and 366d"),
    (with_(sli=...), "slo.sli", "sli is required"),
    (with_(sli={"good": "a"}), "slo.sli.total", "total is required"),
    (with_(sli={"good": "a", "bad": "b", "total": "c"}), "slo.sli.bad", "one of good or bad"),
    (with_(sli={"total": "c"}), "slo.sli.good", "one of good or bad"),
    (with_(sli={"good": "a{", "total": "c"}), "slo.sli.good", "expected a label name"),
    (with_(sli={"good": "", "total": "c"}), "slo.sli.good", "series selector"),
    (with_(sli={"latency": "rt"}), "slo.sli.threshold_s", "threshold_s is required"),
    (with_(sli={"latency": "rt", "threshold_s": -1}), "slo.sli.threshold_s", "more than 0"),
    (with_(sli={"latency": "rt", "threshold_s": 1, "percentile": 100}),
     "slo.sli.percentile", "between 0 and 100"),
    (with_(sli={"latency": "rt", "threshold_s": 1, "total": "x"}), "slo.sli.total",
     "unknown key"),
    (with_(sli={"uptime": "up"}), "slo.sli", "must be one of"),
    (with_(labels={"slo": "x"}), "slo.labels.slo", "set by seismo"),
    (with_(labels={"bad-name": "x"}), "slo.labels.bad-name", "bad label name"),
    (with_(alerting={"page": "yes"}), "slo.alerting.page", "true or false"),
    (with_(alerting={"severity_page": "urgent"}), "slo.alerting.severity_page", "one of"),
    (with_(alerting={"pager": True}), "slo.alerting.pager", "unknown key"),
    (with_(description=3), "slo.description", "text"),
    (with_(target=0.9), "slo.target", "unknown key 'target'"),
    ("api-errors", "slo", "must be an object"),
])
def test_a_bad_slo_is_refused_naming_the_field(doc: Any, field: str, reason: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_slo(doc)
    assert caught.value.field == field
    assert reason in caught.value.message


def test_a_list_needs_unique_names() -> None:
    assert [s.name for s in parse_slos([GOOD, with_(name="b")])] == ["api-errors", "b"]
    with pytest.raises(InvalidInput) as caught:
        parse_slos([GOOD, GOOD])
    assert caught.value.field == "slos[1].name" and "defined twice" in caught.value.message
    with pytest.raises(InvalidInput) as caught:
        parse_slos([GOOD, with_(objective=2)])
    assert caught.value.field == "slos[1].objective"


def test_docstring_examples_run() -> None:
    import doctest

    from seismo.slo import burn, definition

    for module in (burn, definition):
        failed, tried = doctest.testmod(module)
        assert tried > 0 and failed == 0
