"""The insights API against a real server: jobs from posted events, findings, errors."""

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


def test_jobs_and_their_findings(api: httpx.Client) -> None:
    now = int(time.time() * 1000)
    events = []
    for i in range(6):  # exports take 10 min and succeed
        start = now - (10 - i) * 60 * MIN
        events += [
            {"type": "start", "source": "cron", "timestamp": start,
             "attributes": {"job_id": f"export-{i}", "job": "export", "region": "eu"}},
            {"type": "finish", "source": "cron", "timestamp": start + 10 * MIN,
             "attributes": {"job_id": f"export-{i}", "status": "success"}}]
    events += [
        {"type": "start", "source": "cron", "timestamp": now - 4 * MIN,
         "attributes": {"job_id": "export-now", "job": "export", "region": "eu"}},
        {"type": "start", "source": "cron", "timestamp": now - 45 * MIN,
         "attributes": {"job_id": "export-stuck", "job": "export", "region": "eu"}}]
    reply = api.post("/events", json={"events": events})
    assert reply.status_code == 200, reply.text
    jobs = api.get("/insights/jobs").json()
    assert jobs["finished"] == 6 and jobs["success_rate"] == 1.0
    by_id = {j["job_id"]: j for j in jobs["running"]}
    fresh = by_id["export-now"]
    assert fresh["estimate"]["expected_duration_s"] == pytest.approx(600)
    assert fresh["estimate"]["remaining_s"] == pytest.approx(360, abs=5)
    assert fresh["estimate"]["expected_finish_ms"] == now - 4 * MIN + 10 * MIN
    assert fresh["probability_model"] == "rate"  # one outcome only: no model to fit
    assert fresh["success_probability"] == pytest.approx(7 / 8)  # (6 + 1) / (6 + 2)
    assert by_id["export-stuck"]["estimate"]["overdue"]
    findings = api.get("/insights").json()["findings"]
    assert [(f["kind"], f["subject"]["job_id"]) for f in findings] == [
        ("job_overdue", "export-stuck")]
    assert findings[0]["risk"] == "high" and "45 min" in findings[0]["summary"]


@pytest.mark.parametrize(("params", "field"), [
    ({"limit": "0"}, "limit"), ({"limit": "many"}, "limit"), ({"selector": "x{"}, "selector")])
def test_bad_parameters_are_400_naming_the_field(api: httpx.Client, params: dict[str, str],
                                                  field: str) -> None:
    reply = api.get("/insights", params=params)
    assert reply.status_code == 400 and reply.json()["field"] == field, reply.text
