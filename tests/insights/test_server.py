"""The insights API against a real server: running sessions from posted events,
findings, errors."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.server import ServerProcess

pytestmark = pytest.mark.timeout(60)
MIN = 60_000


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    srv = ServerProcess(tmp_path_factory.mktemp("insights") / "data", "--no-collector",
                        env={"SEISMO_DETECT__ENABLED": "false"})
    srv.start()
    try:
        with httpx.Client(base_url=srv.url + "/api/v1", timeout=10) as client:
            yield client
    finally:
        srv.stop()


def test_running_sessions_and_their_findings(api: httpx.Client) -> None:
    now = int(time.time() * 1000)
    events = []
    for i in range(12):  # exports take 10 min and succeed
        start = now - (14 - i) * 60 * MIN
        events += [
            {"type": "session.start", "source": "cron", "timestamp": start,
             "attributes": {"session": f"export-{i}", "kind": "export", "region": "eu"}},
            {"type": "session.end", "source": "cron", "timestamp": start + 10 * MIN,
             "attributes": {"session": f"export-{i}", "status": "success"}}]
    events += [
        {"type": "session.start", "source": "cron", "timestamp": now - 4 * MIN,
         "attributes": {"session": "export-now", "kind": "export", "region": "eu"}},
        {"type": "session.start", "source": "cron", "timestamp": now - 45 * MIN,
         "attributes": {"session": "export-stuck", "kind": "export", "region": "eu"}},
        {"type": "step", "source": "cron", "timestamp": now - MIN,  # alive, not stale
         "attributes": {"session": "export-stuck"}}]
    reply = api.post("/events", json={"events": events})
    assert reply.status_code == 200, reply.text
    jobs = api.get("/insights/jobs").json()
    assert jobs["finished"] == 12 and jobs["success_rate"] == 1.0
    assert jobs["running_total"] == 2
    assert [s["id"] for s in jobs["running"]] == ["export-stuck", "export-now"]
    fresh = jobs["running"][1]["prediction"]
    assert fresh["completion"]["expected_duration_s"] == pytest.approx(600)
    assert fresh["completion"]["remaining_s"] == pytest.approx(360, abs=5)
    assert fresh["completion"]["expected_end_ms"] == now - 4 * MIN + 10 * MIN
    assert fresh["model"] == "rate"  # one outcome only: no model to fit
    assert fresh["success_probability"] == pytest.approx(13 / 14)  # (12 + 1) / (12 + 2)
    assert jobs["running"][0]["prediction"]["overdue"]
    # the same predictions as the sessions API gives
    same = api.get("/sessions/export-now").json()["prediction"]
    for key in ("expected_duration_s", "expected_end_ms", "overdue_after_s", "based_on"):
        assert same["completion"][key] == fresh["completion"][key]
    findings = api.get("/insights").json()["findings"]
    assert [(f["kind"], f["subject"]["session"]) for f in findings] == [
        ("session_overdue", "export-stuck")]
    assert findings[0]["risk"] == "high" and "45 min" in findings[0]["summary"]


@pytest.mark.parametrize(("params", "field"), [
    ({"limit": "0"}, "limit"), ({"limit": "many"}, "limit"), ({"selector": "x{"}, "selector")])
def test_bad_parameters_are_400_naming_the_field(api: httpx.Client, params: dict[str, str],
                                                  field: str) -> None:
    reply = api.get("/insights", params=params)
    assert reply.status_code == 400 and reply.json()["field"] == field, reply.text
