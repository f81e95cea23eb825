"""The webhook channel sends what Alertmanager sends, key for key (../shared/formats)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from seismo.notify import Webhook
from tests.notify.samples import (
    alertmanager_sample,
    cpu_alert,
    cpu_notification,
    sample_notification,
)

RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z\Z")


def _sent(channel: Webhook, notification: Any) -> dict[str, Any]:
    payload = channel.payload(notification)
    assert payload.content_type == "application/json"
    document: dict[str, Any] = json.loads(payload.body)
    return document


@pytest.mark.parametrize("state", ["firing", "resolved"])
def test_payload_equals_alertmanagers_own(state: str) -> None:
    expected = alertmanager_sample()[state]
    sent = _sent(Webhook("hook"), sample_notification(resolved=state == "resolved"))
    assert sent == expected
    # same keys in the same order, at the top and in each alert
    assert list(sent) == list(expected)
    assert list(sent["alerts"][0]) == list(expected["alerts"][0])


def _shape(value: Any) -> Any:
    """The JSON types of a document: dicts by key, lists by their first element."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return type(value).__name__


def test_a_seismo_group_has_the_same_keys_types_and_time_format() -> None:
    expected = alertmanager_sample()["firing"]
    sent = _sent(Webhook("oncall"), cpu_notification())
    assert list(sent) == list(expected)
    for key in ("receiver", "status", "externalURL", "version", "groupKey", "truncatedAlerts"):
        assert type(sent[key]) is type(expected[key]), key
    for key in ("groupLabels", "commonLabels", "commonAnnotations"):
        assert all(isinstance(v, str) for v in sent[key].values()), key
    for alert in sent["alerts"]:
        assert list(alert) == list(expected["alerts"][0])
        assert _shape(alert)["startsAt"] == "str"
        assert RFC3339.match(alert["startsAt"]) and RFC3339.match(alert["endsAt"])
        assert alert["endsAt"] == "0001-01-01T00:00:00Z"
    assert sent["version"] == "4"
    assert sent["commonLabels"] == {"alertname": "HighCPU", "team": "infra"}
    assert sent["commonAnnotations"] == {}
    assert [a["labels"]["host"] for a in sent["alerts"]] == ["web-1", "web-2"]
    assert sent["alerts"][0]["annotations"] == {"summary": "CPU 95% on web-1"}


def test_labels_are_sorted_like_go_marshals_maps() -> None:
    sent = _sent(Webhook("oncall"), cpu_notification())
    assert list(sent["alerts"][0]["labels"]) == ["alertname", "host", "severity", "team"]


def test_a_resolved_alert_in_a_firing_group_carries_its_end() -> None:
    n = cpu_notification(cpu_alert("web-1"), cpu_alert("web-2", resolved=True))
    sent = _sent(Webhook("oncall"), n)
    assert sent["status"] == "firing"
    assert [a["status"] for a in sent["alerts"]] == ["firing", "resolved"]
    assert sent["alerts"][0]["endsAt"] == "0001-01-01T00:00:00Z"
    assert sent["alerts"][1]["endsAt"] == "2026-11-23T08:11:05.508Z"


def test_max_alerts_truncates_and_counts_what_was_left_out() -> None:
    n = cpu_notification(*(cpu_alert(f"web-{i}") for i in range(5)))
    sent = _sent(Webhook("oncall", max_alerts=2), n)
    assert len(sent["alerts"]) == 2 and sent["truncatedAlerts"] == 3
    # common labels are computed over every alert, as Alertmanager does before truncating
    assert "host" not in sent["commonLabels"]
    assert _sent(Webhook("oncall"), n)["truncatedAlerts"] == 0
