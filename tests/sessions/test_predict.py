"""Completion-time estimates and the success model on synthetic sessions of known law."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import stats

from seismo.sessions import OVERDUE_METRIC, RISK_METRIC
from seismo.sessions.predict import conditional_quantiles
from seismo.store.batch import Batch
from seismo.store.events import Event
from seismo.store.series import SeriesIndex
from tests.sessions.helpers import Clock, Harness

T0 = 1_700_000_000_000
MU, SIGMA = np.log(60.0), 0.5  # durations: lognormal, median 60 s


def finished_sessions(kind: str, durations: np.ndarray, start: int = T0) -> list[Event]:
    events = []
    for i, d in enumerate(durations):
        at = start + i * 10
        events += [Event("session.start", "t", "info", "", {"session": f"{kind}{i}",
                                                              "kind": kind}, at),
                   Event("session.end", "t", "info", "", {"session": f"{kind}{i}",
                                                            "status": "success"},
                         at + int(d * 1000))]
    return events


def test_conditional_median_of_lognormal_durations_within_8_percent(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    clock = Clock(T0 + 10_000_000)
    h = Harness(tmp_path / "state.db", clock)
    h.add_many(finished_sessions("job", rng.lognormal(MU, SIGMA, 3000)))
    law = stats.lognorm(s=SIGMA, scale=np.exp(MU))
    for elapsed in (0.0, 30.0, 60.0, 90.0, 120.0):
        start = clock.ms - int(elapsed * 1000)
        h.add("session.start", f"run{elapsed}", start, kind="job")
        p = h.service.get(f"run{elapsed}")["prediction"]
        truth = law.isf(law.sf(elapsed) / 2)  # the median of durations longer than elapsed
        got = p["completion"]["expected_duration_s"]
        assert abs(got - truth) / truth < 0.08, (elapsed, got, truth)
        assert p["completion"]["remaining_s"] == round(max(0.0, got - elapsed), 3)
        assert p["overdue"] is False  # p95 of the law is 137 s
    h.close()


def test_conditional_quantiles_need_enough_longer_durations() -> None:
    d = [float(v) for v in range(1, 11)]
    assert conditional_quantiles(d, 8.5) is None
    assert conditional_quantiles(d, 7.0, (0.5,)) == [9.0]


def _risky_sessions(rng: np.random.Generator, n: int) -> tuple[list[Event], np.ndarray]:
    """Success depends on kind, user and early errors: logit = base + user + -0.9·errors."""
    base = {"train": 1.5, "eval": 0.5, "deploy": -0.5}
    users = {"ana": 0.5, "bo": 0.0, "cy": -0.7}
    events: list[Event] = []
    truth = np.empty(n)
    for i in range(n):
        kind = rng.choice(list(base))
        user = rng.choice(list(users))
        errors = int(rng.poisson(0.8))
        p = 1 / (1 + np.exp(-(base[kind] + users[user] - 0.9 * errors)))
        truth[i] = p
        ok = rng.random() < p
        sid, at = f"s{i}", T0 + i * 100
        events.append(Event("session.start", "t", "info", "",
                            {"session": sid, "kind": kind, "user": user}, at))
        for j in range(errors):
            events.append(Event("tool_error", "t", "high", "", {"session": sid}, at + 1 + j))
        events.append(Event("session.end", "t", "info", "",
                            {"session": sid, "status": "success" if ok else "failure"},
                            at + 50_000))
    return events, truth


def test_success_model_is_calibrated_on_synthetic_sessions(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    h = Harness(tmp_path / "state.db", Clock(T0 + 10**9))
    events, truth = _risky_sessions(rng, 4000)
    h.add_many(events)
    h.service._refit(force=True)
    model = h.service.stats()["model"]
    assert model["kind"] == "logistic"
    cal = model["calibration"]
    ideal = float(np.mean(truth * (1 - truth)))  # the Brier score of the true probabilities
    assert cal["brier"] <= ideal + 0.01, (cal["brier"], ideal)
    assert cal["brier"] < cal["brier_base_rate"] - 0.02
    for b in cal["bins"]:
        if b["count"] >= 200:
            assert abs(b["mean_predicted"] - b["observed_rate"]) < 0.06, b
    # a new running session: its probability is close to the true one
    h.add("session.start", "new", T0 + 10**9 - 1000, kind="train", user="ana")
    p = h.service.get("new")["prediction"]
    true_p = 1 / (1 + np.exp(-2.0))
    assert p["model"] == "logistic" and abs(p["success_probability"] - true_p) < 0.06
    h.add("tool_error", "new", T0 + 10**9 - 900, severity="high")
    h.add("tool_error", "new", T0 + 10**9 - 800, severity="high")
    worse = h.service.get("new")["prediction"]["success_probability"]
    assert worse < p["success_probability"] - 0.15
    h.close()


def test_overdue_and_risk_series_are_written_and_reset_when_the_session_ends(
        tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    clock = Clock(T0 + 10_000_000)
    h = Harness(tmp_path / "state.db", clock)
    index = SeriesIndex(1000)
    written: list[Batch] = []
    h.service.index = index
    h.service.write = written.append
    h.add_many(finished_sessions("job", rng.lognormal(MU, SIGMA, 200)))
    h.add("session.start", "slow", clock.ms - 600_000, kind="job")  # 10 min: far past p95
    h.add("session.start", "fresh", clock.ms - 1000, kind="job")
    h.service.refresh()

    def values() -> dict[tuple[str, str], float]:
        batch = written[-1]
        out = {}
        for slot, value in zip(batch.slots.tolist(), batch.values.tolist(), strict=True):
            info = index.info(slot)
            out[(info.metric, info.labels["session"])] = value
        return out

    got = values()
    assert got[(OVERDUE_METRIC, "slow")] == 1.0 and got[(OVERDUE_METRIC, "fresh")] == 0.0
    assert got[(RISK_METRIC, "slow")] < 0.5  # every finished one succeeded
    assert index.info(int(written[-1].slots[0])).labels["kind"] == "job"
    h.add("session.end", "slow", clock.ms, status="failure")
    h.service.refresh()
    got = values()
    assert got[(OVERDUE_METRIC, "slow")] == 0.0 and got[(RISK_METRIC, "slow")] == 0.0
    h.close()
