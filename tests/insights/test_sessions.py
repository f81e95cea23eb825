"""Findings on running sessions, from the sessions stage's predictions."""

from __future__ import annotations

from pathlib import Path

import pytest

from seismo.insights.sessions import session_findings
from seismo.store.events import Event
from tests.sessions.helpers import Clock, Harness

MIN = 60_000
NOW = 1_800_000_000_000


def finished(kind: str, count: int, minutes: float, failures: int = 0) -> list[Event]:
    """`count` finished sessions of `kind`, each `minutes` long; the first `failures` fail."""
    events = []
    at = NOW - 3 * 86_400_000
    for i in range(count):
        sid = f"{kind}-{i}"
        events += [Event("session.start", "ci", "info", "", {"session": sid, "kind": kind},
                         at),
                   Event("session.end", "ci", "info", "",
                         {"session": sid, "status": "failure" if i < failures else "success"},
                         at + int(minutes * MIN))]
        at += 60 * MIN
    return events


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    h = Harness(tmp_path / "state.db", Clock(NOW))
    h.add_many([*finished("etl", 20, 10), *finished("deploy", 12, 3, failures=10)])
    return h


def findings(h: Harness) -> dict[str, tuple[str, str, dict[str, object]]]:
    report = h.service.running()
    return {f.subject["session"]: (f.kind, f.risk, f.numbers)
            for f in session_findings(report["running"], h.settings.overdue_quantile)}


def test_an_overdue_session_is_a_finding(harness: Harness) -> None:
    harness.add("session.start", "etl-now", NOW - 4 * MIN, kind="etl")
    harness.add("session.start", "etl-stuck", NOW - 25 * MIN, kind="etl")
    found = findings(harness)
    assert set(found) == {"etl-stuck"}  # the one on time is no finding
    kind, risk, numbers = found["etl-stuck"]
    assert (kind, risk) == ("session_overdue", "high")  # 25 min > 2 × its 10 min limit
    assert numbers["elapsed_s"] == 1500 and numbers["overdue_after_s"] == 600
    report = harness.service.running()
    assert report["running_total"] == 2 and report["finished"] == 32
    assert [s["id"] for s in report["running"]] == ["etl-stuck", "etl-now"]  # urgent first
    fresh = report["running"][1]["prediction"]
    assert fresh["completion"]["expected_duration_s"] == 600
    assert fresh["completion"]["remaining_s"] == 360
    harness.close()


def test_a_session_likely_to_fail_is_a_finding(harness: Harness) -> None:
    harness.add("session.start", "deploy-now", NOW - MIN, kind="deploy")
    [(kind, risk, numbers)] = findings(harness).values()
    assert kind == "session_at_risk" and risk == "high"
    assert numbers["model"] == "rate"
    assert numbers["success_probability"] == pytest.approx(3 / 14, abs=1e-6)  # (2+1)/(12+2)
    harness.service.refresh()  # fits the logistic model: both outcomes are known
    [(kind, _, numbers)] = findings(harness).values()
    assert kind == "session_at_risk" and numbers["model"] == "logistic"
    assert isinstance(numbers["failure_risk"], float) and numbers["failure_risk"] > 0.5
    harness.close()


def test_calm_sessions_and_unknown_kinds_give_no_findings(harness: Harness) -> None:
    harness.add("session.start", "etl-now", NOW - 4 * MIN, kind="etl")
    harness.add("session.start", "new-1", NOW - 600 * MIN, kind="brand-new")
    harness.add("step", "new-1", NOW - MIN)  # still alive: not stale
    assert findings(harness) == {}
    assert harness.service.running()["running_total"] == 2
    harness.close()
