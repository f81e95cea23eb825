"""Incidents: alerts close in time on a shared host/service/job correlate into one."""

from __future__ import annotations

import pytest

from seismo.alerting.incidents import Incidents
from seismo.errors import InvalidInput
from seismo.notify.message import Alert, fingerprint_of

T0 = 1_800_000_000_000
MIN = 60_000


def alert(name: str, at_ms: int, severity: str = "high", **labels: str) -> Alert:
    full = {"alertname": name, "severity": severity, **labels}
    return Alert(fingerprint_of(full), "firing", full, starts_at_ms=at_ms)


def resolved(a: Alert, at_ms: int) -> Alert:
    return Alert(a.fingerprint, "resolved", a.labels, starts_at_ms=a.starts_at_ms,
                 ends_at_ms=at_ms)


def test_alerts_on_one_host_within_the_window_are_one_incident() -> None:
    incidents = Incidents(window_ms=5 * MIN)
    cpu = alert("HighCPU", T0, host="web-1", job="api")
    mem = alert("HighMemory", T0 + 4 * MIN, severity="critical", host="web-1", job="node")
    other = alert("HighCPU", T0 + MIN, host="web-2")
    late = alert("DiskFull", T0 + 20 * MIN, host="web-1")
    first = incidents.observe(cpu)
    assert incidents.observe(mem) is first
    assert incidents.observe(other) is not first
    assert incidents.observe(late) is not first
    assert len(incidents) == 3
    assert first is not None
    doc = next(i for i in incidents.list() if i["id"] == first.id)
    assert doc["alerts"] == [cpu.fingerprint, mem.fingerprint]
    assert doc["status"] == "firing" and doc["firing"] == 2
    assert doc["started_ms"] == T0 and doc["last_ms"] == T0 + 4 * MIN
    assert doc["shared_labels"] == {"host": "web-1"}
    assert doc["alertnames"] == ["HighCPU", "HighMemory"] and doc["severity"] == "critical"


def test_an_alert_linking_two_incidents_merges_them() -> None:
    incidents = Incidents()
    a = incidents.observe(alert("A", T0, host="h1", service="checkout"))
    b = incidents.observe(alert("B", T0 + MIN, host="h2", service="search"))
    assert a is not b and a is not None and b is not None
    c = incidents.observe(alert("C", T0 + 2 * MIN, host="h1", service="search"))
    assert c is a and len(incidents) == 1
    [doc] = incidents.list()
    assert doc["id"] == a.id and len(doc["alerts"]) == 3 and doc["shared_labels"] == {
        "severity": "high"}


def test_status_follows_the_alerts() -> None:
    incidents = Incidents()
    a, b = alert("A", T0, host="h"), alert("B", T0 + MIN, host="h")
    incident = incidents.observe(a)
    incidents.observe(b)
    incidents.observe(resolved(a, T0 + 2 * MIN))
    assert incident is not None and incident.status == "firing"
    incidents.observe(resolved(b, T0 + 3 * MIN))
    assert incident.status == "resolved" and incident.last_ms == T0 + 3 * MIN
    assert incidents.list(status="firing") == []
    assert [i["id"] for i in incidents.list(status="resolved")] == [incident.id]
    # It fires again within the window: the incident reopens.
    assert incidents.observe(alert("A", T0 + 5 * MIN, host="h")) is incident
    assert incident.status == "firing"
    with pytest.raises(InvalidInput) as info:
        incidents.list(status="open")
    assert info.value.field == "status"


def test_changes_of_a_firing_alert_do_not_move_it() -> None:
    incidents = Incidents()
    a = alert("A", T0, host="h")
    incident = incidents.observe(a)
    assert incidents.observe(a) is incident and len(incidents) == 1
    assert incidents.observe(resolved(alert("Unknown", T0), T0)) is None


def test_an_alert_without_correlation_labels_stands_alone() -> None:
    incidents = Incidents()
    first = incidents.observe(alert("A", T0, team="x"))
    assert incidents.observe(alert("B", T0, team="x")) is not first
    narrow = Incidents(labels=("team",))
    assert narrow.observe(alert("A", T0, team="x")) is narrow.observe(alert("B", T0, team="x"))


def test_refiring_much_later_is_a_new_incident_and_history_stays() -> None:
    incidents = Incidents(window_ms=5 * MIN)
    a = alert("A", T0, host="h")
    old = incidents.observe(a)
    incidents.observe(resolved(a, T0 + MIN))
    new = incidents.observe(alert("A", T0 + 60 * MIN, host="h"))
    assert new is not old and old is not None and new is not None
    assert a.fingerprint in old.alerts and old.status == "resolved"
    assert new.status == "firing"
    assert [i["id"] for i in incidents.list()] == [new.id, old.id]  # most recent first


def test_resolved_incidents_are_bounded_oldest_first() -> None:
    incidents = Incidents(window_ms=MIN, max_resolved=5)
    kept = incidents.observe(alert("Firing", T0, host="keep"))
    for i in range(10):
        a = alert("A", T0 + i * 10 * MIN, host=f"h{i}")
        incidents.observe(a)
        incidents.observe(resolved(a, T0 + i * 10 * MIN + 1))
    assert len(incidents) == 6
    assert kept is not None and incidents.get(kept.id) is kept
    assert {i["shared_labels"]["host"] for i in incidents.list(status="resolved")} == \
        {f"h{i}" for i in range(5, 10)}
    assert len(incidents.list(limit=2)) == 2
