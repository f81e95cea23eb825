"""Job estimates from crafted start/finish events: durations of similar jobs, success odds."""

from __future__ import annotations

import random
from typing import Any

import pytest

from seismo.insights.jobs import collect, estimate, job_findings
from seismo.store.events import Event

MIN = 60_000
NOW = 1_800_000_000_000
DURATIONS = {False: (2.0, 2.5, 3.0), True: (20.0, 21.0, 22.0)}  # minutes, by size


def history(count: int = 40) -> list[Event]:
    """Small nightly jobs take 2–3 min and succeed; large ones 20–22 min and mostly fail."""
    rng = random.Random(5)
    events = []
    at = NOW - 3 * 86_400_000
    for i in range(count):
        large = rng.random() < 0.5
        job_id = f"run-{i}"
        minutes = DURATIONS[large][i % 3]
        ok = rng.random() < (0.2 if large else 0.95)
        events.append(Event("start", "ci", attributes={
            "job_id": job_id, "pipeline": "nightly", "size": "large" if large else "small",
            "rows": 1e6 if large else 1e4}, timestamp=at))
        events.append(Event("finish", "ci", attributes={
            "job_id": job_id, "status": "success" if ok else "failure"},
            timestamp=at + int(minutes * MIN)))
        at += 60 * MIN
    return events


def running(job_id: str, size: str, minutes_ago: float) -> Event:
    return Event("start", "ci", attributes={"job_id": job_id, "pipeline": "nightly",
                                            "size": size, "rows": 1e6 if size == "large"
                                            else 1e4},
                 timestamp=NOW - int(minutes_ago * MIN))


def report_of(events: list[Event]) -> dict[str, Any]:
    jobs, _ = collect(events, "start", "finish")
    return estimate(jobs, NOW, min_jobs=10, min_similar=3)


def test_estimates_for_running_jobs() -> None:
    report = report_of([*history(), running("big-now", "large", 5),
                        running("small-now", "small", 1)])
    assert report["finished"] == 40 and report["running_total"] == 2
    assert report["model"]["kind"] == "logistic"
    jobs = {j["job_id"]: j for j in report["running"]}
    big, small = jobs["big-now"], jobs["small-now"]
    larges = [e for e in history() if e.attributes.get("size") == "large"]
    # the similar jobs are exactly the large ones: all their categorical attributes match
    assert big["estimate"]["similar_jobs"] == len(larges)
    assert big["estimate"]["matched_attributes"] == 3  # pipeline, size, source
    assert big["estimate"]["expected_duration_s"] == pytest.approx(21 * 60)
    assert big["estimate"]["remaining_s"] == pytest.approx(16 * 60)
    assert big["estimate"]["p90_duration_s"] == pytest.approx(22 * 60)
    assert not big["estimate"]["overdue"]
    assert small["estimate"]["expected_duration_s"] == pytest.approx(2.5 * 60)
    assert big["success_probability"] < 0.35 < 0.8 < small["success_probability"]
    assert big["probability_model"] == "logistic"
    findings = job_findings(report, 3)
    assert [(f.kind, f.subject["job_id"]) for f in findings] == [("job_at_risk", "big-now")]


def test_an_overdue_job_is_a_finding() -> None:
    report = report_of([*history(), running("stuck", "small", 30)])
    [job] = report["running"]
    assert job["estimate"]["overdue"] and job["elapsed_s"] == 1800
    [finding] = job_findings(report, 3)
    assert finding.kind == "job_overdue" and finding.risk == "high"  # > 2× the p90


def test_few_jobs_fall_back_to_the_smoothed_rate_and_calm_jobs_give_nothing() -> None:
    events = [*history()[:8], running("next", "small", 1)]  # 4 finished jobs
    report = report_of(events)
    assert report["model"]["kind"] == "rate"
    [job] = report["running"]
    assert job["probability_model"] == "rate"
    assert 0 < job["success_probability"] < 1
    calm = [e for e in history() if e.attributes.get("size") != "large"]
    ids = {e.attributes["job_id"] for e in calm}
    calm += [e for e in history() if e.type == "finish" and e.attributes["job_id"] in ids]
    assert job_findings(report_of([*calm, running("ok", "small", 1)]), 3) == []


def test_contract_edge_cases() -> None:
    events = [
        Event("finish", "ci", attributes={"job_id": "ghost", "status": "success"},
              timestamp=NOW - MIN),
        Event("start", "ci", attributes={"job_id": "a", "flag": True, "tags": ["x"]},
              timestamp=NOW - 10 * MIN),
        Event("start", "ci", attributes={"job_id": "a"}, timestamp=NOW - 5 * MIN),  # a retry
        Event("finish", "ci", attributes={"job_id": "a", "status": "weird"},
              timestamp=NOW - 4 * MIN),
        Event("start", "ci", attributes={"no_id": 1}, timestamp=NOW - MIN),
    ]
    jobs, unmatched = collect(events, "start", "finish")
    assert unmatched == 1
    assert [(j.job_id, j.finished_ms, j.status) for j in jobs] == [
        ("a", None, None), ("a", NOW - 4 * MIN, None)]
    assert jobs[0].categories == {"flag": "true", "source": "ci"}
