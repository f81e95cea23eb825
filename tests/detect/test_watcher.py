"""The detection stage: batches in, one anomaly record per incident out, state kept by id."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from seismo.detect import DetectConfig
from seismo.detect.watcher import Watcher, WatchRule
from seismo.query.selector import parse_selector
from seismo.store.anomalies import Anomaly, AnomalyLog
from seismo.store.batch import Batch
from seismo.store.series import SeriesIndex

CONFIG = DetectConfig(warmup=60)


def batch_of(index: SeriesIndex, rows: dict[tuple[str, str], np.ndarray], t0: int) -> Batch:
    """Every series' values at 1 s steps from t0, interleaved like a collector would send."""
    slots, ts, values = [], [], []
    for (metric, host), vals in rows.items():
        slot = index.slot_for(metric, {"host": host})
        slots.append(np.full(len(vals), slot, np.int32))
        ts.append(t0 + 1000 * np.arange(len(vals), dtype=np.int64))
        values.append(np.asarray(vals, dtype=np.float64))
    s, t, v = np.concatenate(slots), np.concatenate(ts), np.concatenate(values)
    order = np.argsort(t, kind="stable")
    return Batch(s[order], index.ids(s[order]), t[order], v[order])


@pytest.fixture
def log(tmp_path: Path) -> AnomalyLog:
    anomalies = AnomalyLog(tmp_path / "state.db")
    yield anomalies  # type: ignore[misc]
    anomalies.close()


def noise(n: int, seed: int) -> np.ndarray:
    return 50 + np.random.default_rng(seed).normal(0, 1, n)


def test_a_run_of_anomalous_points_is_one_anomaly_that_closes(log: AnomalyLog) -> None:
    index = SeriesIndex(100)
    published: list[Anomaly] = []
    watcher = Watcher(index, log, default=CONFIG, publish=published.append, quiet_samples=5,
                      max_rounds=100)
    values = noise(400, 1)
    values[300:304] = [90, 95, 92, 94]  # one incident, four points
    for start in range(0, 400, 25):
        watcher.process(batch_of(index, {("latency", "a"): values[start:start + 25]},
                                 1_000_000 + start * 1000))
    found = log.query()
    assert len(found) == 1
    anomaly = found[0]
    assert anomaly.kind == "spike" and anomaly.state == "closed"
    assert anomaly.start_ms == 1_000_000 + 300_000
    assert anomaly.points >= 1 and anomaly.actual >= 90
    assert anomaly.lower is not None and anomaly.upper is not None
    assert anomaly.lower < anomaly.expected < anomaly.upper < 90  # type: ignore[operator]
    assert [a.state for a in published] == ["open", "closed"]
    [(_, scored, flagged)] = watcher.rates([0])
    assert scored == 400 and 1 <= flagged <= 6


def test_clean_noise_opens_nothing_and_rules_can_switch_series_off(log: AnomalyLog) -> None:
    index = SeriesIndex(100)
    rules = [WatchRule(parse_selector('latency{host="muted"}'), None)]
    watcher = Watcher(index, log, default=CONFIG, rules=rules)
    muted = noise(300, 3)
    muted[200] = 1000
    for start in range(0, 300, 30):
        watcher.process(batch_of(index, {("latency", "clean"): noise(300, 2)[start:start + 30],
                                         ("latency", "muted"): muted[start:start + 30]},
                                 start * 1000))
    assert log.query() == []
    slot = index.slot_for("latency", {"host": "muted"})
    assert watcher.rates([slot]) == [(slot, 0, 0)]


def test_state_survives_a_restart_even_when_slots_change(tmp_path: Path,
                                                         log: AnomalyLog) -> None:
    names = [("cpu", f"h{i}") for i in range(5)]
    data = {name: noise(400, i) for i, name in enumerate(names)}
    data[names[3]][350] = 80

    def run(watcher: Watcher, index: SeriesIndex, start: int, end: int) -> None:
        for s in range(start, end, 50):
            watcher.process(batch_of(index, {n: v[s:s + 50] for n, v in data.items()},
                                     s * 1000))

    straight = Watcher(SeriesIndex(100), AnomalyLog(tmp_path / "a.db"), default=CONFIG,
                       max_rounds=100)
    run(straight, straight.index, 0, 400)
    expected = straight.anomalies.query()
    assert len(expected) == 1

    path = tmp_path / "detect" / "state.npz"
    first = Watcher(SeriesIndex(100), log, default=CONFIG, state_path=path, max_rounds=100)
    run(first, first.index, 0, 300)
    first.snapshot()
    reordered = SeriesIndex(100)  # after a restart series may get other slots
    for metric, host in reversed(names):
        reordered.slot_for(metric, {"host": host})
    second = Watcher(reordered, log, default=CONFIG, state_path=path, max_rounds=100)
    second.restore()
    run(second, reordered, 300, 400)
    [got] = log.query()
    assert (got.start_ms, got.kind, got.labels) == (expected[0].start_ms, expected[0].kind,
                                                    expected[0].labels)
    assert got.score == pytest.approx(expected[0].score)


def test_the_thread_scores_offered_batches_and_skips_past_its_queue(log: AnomalyLog) -> None:
    index = SeriesIndex(100)
    watcher = Watcher(index, log, default=CONFIG, queue_samples=100)
    watcher.start()
    try:
        watcher.offer(batch_of(index, {("x", "a"): noise(80, 1)}, 0))
        watcher.offer(batch_of(index, {("x", "a"): noise(80, 2)}, 80_000))  # may not fit
        assert watcher.drain(10)
        assert int(watcher.scored.sum()) + watcher.skipped_samples == 160
    finally:
        watcher.stop()


def test_a_backfill_scores_only_the_newest_points_of_each_series(log: AnomalyLog) -> None:
    index = SeriesIndex(100)
    watcher = Watcher(index, log, default=CONFIG, max_rounds=16)
    watcher.process(batch_of(index, {("x", "a"): noise(1000, 1), ("x", "b"): noise(5, 2)}, 0))
    a, b = index.slot_for("x", {"host": "a"}), index.slot_for("x", {"host": "b"})
    assert watcher.rates([a, b]) == [(a, 16, 0), (b, 5, 0)]
    assert watcher.skipped_samples == 1000 - 16
