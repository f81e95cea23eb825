"""Sessions and jobs from events: how long a running job will take and if it will succeed.

The contract (docs/insights.md): an event of type `start` (`insights.job_start_type`)
with `attributes.job_id` starts a run; `finish` (`insights.job_finish_type`) with the same
`job_id` and `attributes.status` = `success` | `failure` ends it. The start event's other
attributes (strings, booleans, numbers) and its `source` are the job's features. A start
for a job id that is still running replaces that run (a retry); a finish with no running
job of its id is counted and ignored.

Completion time: the median (and 90th percentile) duration of the finished jobs that
share the most categorical features with the running one — at least
`insights.min_similar_jobs` of them. Success probability: a logistic regression
(`logistic.py`) on the features plus the recent success rate, once `insights.min_jobs`
finished jobs with both outcomes exist; before that, the smoothed success rate of the
similar jobs, (successes + 1) / (jobs + 2).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from seismo.insights.finding import Finding, duration_text
from seismo.insights.logistic import Logistic, fit_logistic
from seismo.store.events import Event

RESERVED = ("job_id", "status")
STATUSES = ("success", "failure")
HISTORY = 20  # finished jobs behind the "recent success rate" feature
MAX_CATEGORIES = 200  # one-hot columns kept (the most frequent key=value pairs)
MAX_RUNNING = 1000  # running jobs reported


@dataclass
class Job:
    job_id: str
    started_ms: int
    source: str
    categories: dict[str, str] = field(default_factory=dict)
    numbers: dict[str, float] = field(default_factory=dict)
    finished_ms: int | None = None
    status: str | None = None  # success, failure; None: running, or not said

    @property
    def duration_ms(self) -> int | None:
        return None if self.finished_ms is None else self.finished_ms - self.started_ms

    @property
    def attributes(self) -> dict[str, Any]:
        return {**self.categories, **self.numbers}


def collect(events: list[Event], start_type: str, finish_type: str) -> tuple[list[Job], int]:
    """Runs from start and finish events (any order); (jobs, finishes that matched none)."""
    running: dict[str, Job] = {}
    jobs: list[Job] = []
    unmatched = 0
    for event in sorted(events, key=lambda e: (e.timestamp, e.id or 0)):
        job_id = event.attributes.get("job_id")
        if not isinstance(job_id, str | int) or isinstance(job_id, bool) or job_id == "":
            continue
        job_id = str(job_id)
        if event.type == start_type:
            job = Job(job_id, event.timestamp, event.source)
            for key, value in event.attributes.items():
                if key in RESERVED:
                    continue
                if isinstance(value, bool):
                    job.categories[key] = str(value).lower()
                elif isinstance(value, int | float):
                    if np.isfinite(value):
                        job.numbers[key] = float(value)
                elif isinstance(value, str):
                    job.categories[key] = value
            if event.source:
                job.categories.setdefault("source", event.source)
            running[job_id] = job
            jobs.append(job)
        elif event.type == finish_type:
            found = running.pop(job_id, None)
            if found is None:
                unmatched += 1
                continue
            found.finished_ms = max(event.timestamp, found.started_ms)
            status = event.attributes.get("status")
            found.status = status if status in STATUSES else None
    return jobs, unmatched


def similar(job: Job, finished: list[Job], min_count: int) -> tuple[list[Job], int]:
    """The finished jobs sharing the most categorical features with `job` (at least
    `min_count` of them when there are that many), and how many features they share."""
    if not finished:
        return [], 0
    wanted = job.categories.items()
    scored = sorted(((sum(f.categories.get(k) == v for k, v in wanted), f) for f in finished),
                    key=lambda pair: (-pair[0], -(pair[1].finished_ms or 0)))
    best = scored[0][0]
    top = [f for matches, f in scored if matches == best]
    if len(top) < min_count:
        top = [f for _, f in scored[:min_count]]
    return top, best


class _Features:
    """Columns of the logistic model: one-hot key=value, numbers, recent success rate."""

    def __init__(self, jobs: list[Job]) -> None:
        counts = Counter((k, v) for j in jobs for k, v in j.categories.items())
        self.pairs = [p for p, _ in counts.most_common(MAX_CATEGORIES)]
        self.numbers = sorted({k for j in jobs for k in j.numbers})
        filled = {k: [j.numbers[k] for j in jobs if k in j.numbers] for k in self.numbers}
        self.fill = {k: float(np.mean(v)) for k, v in filled.items()}

    @property
    def names(self) -> list[str]:
        return [f"{k}={v}" for k, v in self.pairs] + self.numbers + ["recent_success_rate"]

    def row(self, job: Job, recent_rate: float) -> list[float]:
        return ([float(job.categories.get(k) == v) for k, v in self.pairs]
                + [job.numbers.get(k, self.fill[k]) for k in self.numbers] + [recent_rate])


def _recent_rate(outcomes: list[tuple[int, bool]], before_ms: int) -> float:
    """(successes + 1) / (n + 2) of the last HISTORY outcomes finished before `before_ms`."""
    times = [t for t, _ in outcomes]
    end = int(np.searchsorted(times, before_ms, side="left"))
    last = [ok for _, ok in outcomes[max(0, end - HISTORY):end]]
    return (sum(last) + 1) / (len(last) + 2)


def estimate(jobs: list[Job], now_ms: int, *, min_jobs: int,
             min_similar: int) -> dict[str, Any]:
    """Running jobs with their expected completion and success probability."""
    finished = [j for j in jobs if j.finished_ms is not None]
    labelled = [j for j in finished if j.status is not None]
    outcomes = sorted((j.finished_ms or 0, j.status == "success") for j in labelled)
    model: Logistic | None = None
    features: _Features | None = None
    if len(labelled) >= min_jobs and len({j.status for j in labelled}) == 2:
        features = _Features(labelled)
        x = np.array([features.row(j, _recent_rate(outcomes, j.started_ms)) for j in labelled])
        y = np.array([j.status == "success" for j in labelled], dtype=np.int64)
        model = fit_logistic(x, y)
    now_rate = _recent_rate(outcomes, now_ms + 1)
    running = sorted((j for j in jobs if j.finished_ms is None), key=lambda j: j.started_ms)
    reports = []
    for job in running[-MAX_RUNNING:]:
        peers, matched = similar(job, finished, min_similar)
        report: dict[str, Any] = {
            "job_id": job.job_id, "source": job.source, "started_ms": job.started_ms,
            "elapsed_s": round(max(0, now_ms - job.started_ms) / 1000, 3),
            "attributes": job.attributes, "estimate": None, "success_probability": None,
            "probability_model": None}
        if peers:
            durations = np.array([p.duration_ms or 0 for p in peers], dtype=np.float64) / 1000
            median, p90 = float(np.median(durations)), float(np.percentile(durations, 90))
            elapsed = report["elapsed_s"]
            report["estimate"] = {
                "expected_duration_s": round(median, 3), "p90_duration_s": round(p90, 3),
                "expected_finish_ms": job.started_ms + int(median * 1000),
                "remaining_s": round(max(0.0, median - elapsed), 3),
                "similar_jobs": len(peers), "matched_attributes": matched,
                "overdue": len(peers) >= min_similar and elapsed > p90}
        if model is not None and features is not None:
            p = model.predict(np.array([features.row(job, now_rate)]))[0]
            report.update(success_probability=round(float(p), 6),
                          probability_model="logistic")
        else:
            known = [p for p in peers if p.status is not None]
            if known:
                wins = sum(p.status == "success" for p in known)
                report.update(success_probability=round((wins + 1) / (len(known) + 2), 6),
                              probability_model="rate")
        reports.append(report)
    wins = sum(j.status == "success" for j in labelled)
    about: dict[str, Any] = {"kind": "rate", "trained_on": len(labelled)}
    if model is not None and features is not None:
        about = {"kind": "logistic", "trained_on": len(labelled),
                 "weights": {n: round(float(w), 6) for n, w in
                             zip(features.names, model.weights, strict=True)},
                 "intercept": round(model.intercept, 6)}
    return {"running": reports, "running_total": len(running), "finished": len(finished),
            "succeeded": wins, "failed": len(labelled) - wins,
            "success_rate": round(wins / len(labelled), 6) if labelled else None,
            "model": about}


def job_findings(report: dict[str, Any], min_similar: int) -> list[Finding]:
    """Findings for running jobs: overdue against similar jobs, or likely to fail."""
    out = []
    for job in report["running"]:
        subject = {"job_id": job["job_id"], "source": job["source"]}
        est = job["estimate"]
        if est is not None and est["overdue"]:
            elapsed, p90 = job["elapsed_s"], est["p90_duration_s"]
            out.append(Finding(
                kind="job_overdue", risk="high" if elapsed > 2 * p90 else "medium",
                summary=(f"Job {job['job_id']} has run {duration_text(elapsed)}; 90 % of "
                         f"the {est['similar_jobs']} most similar jobs finished within "
                         f"{duration_text(p90)} (median "
                         f"{duration_text(est['expected_duration_s'])})"),
                action="Check whether it is stuck (logs, locks, a slow dependency); stop and "
                       "retry it if it makes no progress.",
                subject=subject,
                numbers={"elapsed_s": elapsed, "p90_duration_s": p90,
                         "expected_duration_s": est["expected_duration_s"],
                         "similar_jobs": est["similar_jobs"]},
                score=elapsed / p90 if p90 > 0 else elapsed))
        p = job["success_probability"]
        trusted = job["probability_model"] == "logistic" or (
            est is not None and est["similar_jobs"] >= min_similar)
        if p is not None and p < 0.5 and trusted:
            out.append(Finding(
                kind="job_at_risk", risk="high" if p < 0.25 else "medium",
                summary=(f"Job {job['job_id']} will likely fail: estimated success "
                         f"probability {p:.0%} ({job['probability_model']} model on its "
                         "attributes and recent history)"),
                action="Look at why jobs like it failed recently (their finish events' "
                       "attributes); fix the cause or reschedule before it wastes its run.",
                subject=subject,
                numbers={"success_probability": p, "model": job["probability_model"],
                         "attributes": job["attributes"]},
                score=1 - p))
    return out
