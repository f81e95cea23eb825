"""Routes and inhibit rules: parsing, defaults, matching, and errors that name the field."""

from __future__ import annotations

from typing import Any

import pytest

from seismo.alerting.routes import (
    Escalation,
    InhibitRule,
    Route,
    parse_inhibit_rules,
    parse_routes,
)
from seismo.errors import InvalidInput


def test_a_route_reads_every_key() -> None:
    [route] = parse_routes([{
        "match": {"severity": "critical"}, "match_re": {"host": "web-.*"},
        "channels": ["oncall", "slack"], "group_by": ["alertname", "host"],
        "group_wait": "0s", "group_interval": "1m", "repeat_interval": "2h",
        "continue": True, "cooldown": "10m",
        "escalate": [{"after": "15m", "channels": ["manager"], "severity": "critical"}],
    }])
    assert route == Route(match={"severity": "critical"}, match_re={"host": "web-.*"},
                          channels=("oncall", "slack"), group_by=("alertname", "host"),
                          group_wait_ms=0, group_interval_ms=60_000,
                          repeat_interval_ms=7_200_000, continue_=True, cooldown_ms=600_000,
                          escalate=(Escalation(900_000, ("manager",), "critical"),))


def test_defaults_follow_alertmanager_and_severity() -> None:
    [route] = parse_routes([{"channels": ["oncall"]}])
    assert route.group_by == ("alertname",) and route.group_wait_ms is None
    assert route.group_wait_for("critical") == 0
    assert route.group_wait_for("high") == 10_000
    assert route.group_interval_ms == 300_000 and route.repeat_interval_ms == 4 * 3600_000
    assert not route.continue_ and route.cooldown_ms == 0 and route.escalate == ()
    assert parse_routes([{"channels": [], "group_wait": "30s"}])[0].group_wait_for("critical") \
        == 30_000
    assert parse_routes(None) == [] and parse_inhibit_rules(None) == []


def test_matching_is_equality_and_full_match_regex() -> None:
    route = Route(match={"team": "infra"}, match_re={"host": "web-[0-9]+"})
    assert route.matches({"team": "infra", "host": "web-12"})
    assert not route.matches({"team": "infra", "host": "xweb-12"})  # anchored
    assert not route.matches({"team": "infra", "host": "web-12x"})
    assert not route.matches({"team": "db", "host": "web-1"})
    assert not route.matches({"team": "infra"})
    assert Route().matches({"anything": "x"})
    # A missing label reads as "", as in Alertmanager.
    assert Route(match={"env": ""}).matches({"host": "a"})
    assert Route(match_re={"env": "prod|"}).matches({})


def test_group_by_picks_labels_and_dots_mean_every_label() -> None:
    labels = {"alertname": "HighCPU", "host": "a", "severity": "high"}
    assert Route(group_by=("host", "alertname")).group_labels(labels) == \
        {"alertname": "HighCPU", "host": "a"}
    assert Route(group_by=("cluster",)).group_labels(labels) == {}
    [route] = parse_routes([{"group_by": ["..."]}])
    assert route.group_labels(labels) == labels


def test_route_key_is_alertmanagers() -> None:
    route = Route(match={"severity": "critical"}, match_re={"host": "web.*"})
    assert route.key == '{}/{host=~"web.*",severity="critical"}'
    assert Route().key == "{}/{}"


@pytest.mark.parametrize(("doc", "field", "reason"), [
    ({"chanels": ["a"]}, "routes[0].chanels", "unknown key 'chanels'"),
    ({"group_wait": "soon"}, "routes[0].group_wait", "not a duration"),
    ({"group_wait": -1}, "routes[0].group_wait", "not a duration"),
    ({"group_wait": True}, "routes[0].group_wait", "not a duration"),
    ({"group_interval": "0s"}, "routes[0].group_interval", "more than 0s"),
    ({"repeat_interval": "0"}, "routes[0].repeat_interval", "more than 0s"),
    ({"cooldown": "20y"}, "routes[0].cooldown", "between 0s and 10y"),
    ({"continue": "yes"}, "routes[0].continue", "true or false"),
    ({"match": ["severity"]}, "routes[0].match", "object"),
    ({"match": {"severity": 1}}, "routes[0].match.severity", "string"),
    ({"match": {"1x": "a"}}, "routes[0].match.1x", "label name"),
    ({"match_re": {"host": "web("}}, "routes[0].match_re.host", "regular expression"),
    ({"channels": "oncall"}, "routes[0].channels", "list of channel names"),
    ({"channels": ["a", "a"]}, "routes[0].channels", "twice"),
    ({"group_by": "alertname"}, "routes[0].group_by", "list of label names"),
    ({"group_by": ["alertname", "..."]}, "routes[0].group_by", "alone"),
    ({"group_by": ["host-name"]}, "routes[0].group_by[0]", "label name"),
    ({"escalate": {"after": "1m"}}, "routes[0].escalate", "list"),
    ({"escalate": [{"channels": ["b"]}]}, "routes[0].escalate[0].after", "required"),
    ({"escalate": [{"after": "1m"}]}, "routes[0].escalate[0].channels", "required"),
    ({"escalate": [{"after": "1m", "channels": []}]}, "routes[0].escalate[0].channels",
     "at least one"),
    ({"escalate": [{"after": "0s", "channels": ["b"]}]}, "routes[0].escalate[0].after",
     "more than 0s"),
    ({"escalate": [{"after": "1m", "channels": ["b"], "severity": "urgent"}]},
     "routes[0].escalate[0].severity", "one of critical"),
    ({"escalate": [{"after": "1m", "channels": ["b"], "to": "x"}]},
     "routes[0].escalate[0].to", "unknown key"),
    ("oncall", "routes[0]", "must be an object"),
])
def test_a_bad_route_names_the_field(doc: Any, field: str, reason: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_routes([doc])
    assert info.value.field == field
    assert reason in info.value.message


def test_errors_count_routes_from_the_callers_field() -> None:
    with pytest.raises(InvalidInput) as info:
        parse_routes([{"channels": ["a"]}, {"channels": ["a"]}, {"group_wait": "x"}],
                     field="config.routes")
    assert info.value.field == "config.routes[2].group_wait"
    with pytest.raises(InvalidInput) as info:
        parse_routes({"channels": ["a"]})
    assert info.value.field == "routes"


def test_known_channels_refuses_a_typo() -> None:
    docs = [{"channels": ["oncall", "slak"]}]
    with pytest.raises(InvalidInput) as info:
        parse_routes(docs, known_channels={"oncall", "slack"})
    assert info.value.field == "routes[0].channels[1]" and "'slak'" in info.value.message
    with pytest.raises(InvalidInput) as info:
        parse_routes([{"escalate": [{"after": "1m", "channels": ["boss"]}]}],
                     known_channels={"oncall"})
    assert info.value.field == "routes[0].escalate[0].channels[0]"


def test_inhibit_rules_parse_and_match() -> None:
    [rule] = parse_inhibit_rules([{
        "source_match": {"severity": "critical"}, "target_match_re": {"severity": "high|medium"},
        "equal": ["host", "cluster"]}])
    assert rule == InhibitRule(source_match={"severity": "critical"},
                               target_match_re={"severity": "high|medium"},
                               equal=("host", "cluster"))
    assert rule.is_source({"severity": "critical"}) and not rule.is_source({"severity": "high"})
    assert rule.is_target({"severity": "medium"}) and not rule.is_target({"severity": "low"})
    assert rule.equal_values({"host": "a"}) == ("a", "")


@pytest.mark.parametrize(("doc", "field", "reason"), [
    ({"target_match": {"a": "b"}}, "inhibit_rules[0].source_match", "empty source"),
    ({"source_match": {"a": "b"}}, "inhibit_rules[0].target_match", "empty target"),
    ({"source_match": {"a": "b"}, "target_match": {"a": "c"}, "equals": ["x"]},
     "inhibit_rules[0].equals", "unknown key"),
    ({"source_match": {"a": "b"}, "target_match": {"a": "c"}, "equal": "host"},
     "inhibit_rules[0].equal", "list of label names"),
    ({"source_match_re": {"a": "("}, "target_match": {"a": "c"}},
     "inhibit_rules[0].source_match_re.a", "regular expression"),
    (["x"], "inhibit_rules[0]", "must be an object"),
])
def test_a_bad_inhibit_rule_names_the_field(doc: Any, field: str, reason: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_inhibit_rules([doc])
    assert info.value.field == field
    assert reason in info.value.message
