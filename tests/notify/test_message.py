"""The plain objects and the Alertmanager-compatible helpers (fingerprint, group key, times)."""

from __future__ import annotations

import doctest

import pytest

import seismo.notify.message
import seismo.notify.template
from seismo.notify import Alert, Notification, Reason, fingerprint_of, group_key, rfc3339
from tests.notify.samples import LABELS, alertmanager_sample, cpu_alert, cpu_notification


def test_docstring_examples_run() -> None:
    for module in (seismo.notify.message, seismo.notify.template):
        assert doctest.testmod(module).failed == 0


def test_fingerprint_and_group_key_are_alertmanagers() -> None:
    sample = alertmanager_sample()["firing"]
    assert fingerprint_of(LABELS) == sample["alerts"][0]["fingerprint"]
    assert group_key({"alertname": "BenchHigh"}) == sample["groupKey"]
    assert group_key({"b": 'x"y', "a": "1"}, '{}/{severity="critical"}') == (
        '{}/{severity="critical"}:{a="1", b="x\\"y"}'
    )


def test_fingerprint_ignores_label_order_and_separates_names_from_values() -> None:
    assert fingerprint_of({"a": "1", "b": "2"}) == fingerprint_of({"b": "2", "a": "1"})
    assert fingerprint_of({"a": "b"}) != fingerprint_of({"ab": ""})


@pytest.mark.parametrize(
    ("ts_ms", "text"),
    [
        (0, "1970-01-01T00:00:00Z"),
        (1795421405508, "2026-11-23T08:10:05.508Z"),
        (1795421405500, "2026-11-23T08:10:05.5Z"),
        (1795421405050, "2026-11-23T08:10:05.05Z"),
        (-1, "1969-12-31T23:59:59.999Z"),
        (None, "0001-01-01T00:00:00Z"),
    ],
)
def test_times_are_rfc3339_as_go_prints_them(ts_ms: int | None, text: str) -> None:
    assert rfc3339(ts_ms) == text


def test_group_status_common_labels_and_title() -> None:
    n = cpu_notification(cpu_alert("web-1", "critical"), cpu_alert("web-2", resolved=True))
    assert n.status == "firing"
    assert [a.labels["host"] for a in n.firing] == ["web-1"]
    assert [a.labels["host"] for a in n.resolved] == ["web-2"]
    assert n.common_labels == {"alertname": "HighCPU", "team": "infra"}
    assert n.common_annotations == {}
    assert n.severity == "critical"
    assert n.title == "[FIRING:1] HighCPU (infra)"


def test_resolved_group_title_and_severity() -> None:
    n = cpu_notification(cpu_alert("web-1", "low", resolved=True), reason=Reason.RESOLVED)
    assert n.status == "resolved"
    assert n.title == "[RESOLVED] HighCPU (web-1 low infra)"
    assert n.severity == "low"


def test_an_alert_status_is_firing_or_resolved() -> None:
    with pytest.raises(ValueError, match="firing"):
        Alert(fingerprint="x", status="pending", labels={})  # type: ignore[arg-type]


def test_an_empty_notification_has_no_common_labels() -> None:
    n = Notification("r", "{}:{}", {}, (), Reason.REPEAT)
    assert n.common_labels == {} and n.status == "resolved" and n.severity == ""
