"""The detector ensemble on synthetic series: kinds, delays, false positives, state."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seismo.detect import DetectConfig, Ensemble, Scores, rounds

STEP_MS = 60_000
N = 1300
AT = 1000  # where the anomalies start
NOISE_SERIES = 20


def _stream(ensemble: Ensemble, values: np.ndarray, step_ms: int = STEP_MS,
            rows: int = 50) -> list[Scores]:
    """Feed series (one per row of `values`) in batches of `rows` samples per series."""
    k, n = values.shape
    ts = 1_700_000_000_000 + step_ms * np.arange(n)
    parts = []
    for start in range(0, n, rows):
        width = min(rows, n - start)
        slots = np.repeat(np.arange(k), width)
        parts.append(ensemble.update(slots, np.tile(ts[start:start + width], k),
                                     values[:, start:start + width].ravel()))
    return parts


def _per_series(parts: list[Scores], k: int) -> tuple[np.ndarray, np.ndarray]:
    score = np.concatenate([p.score.reshape(k, -1) for p in parts], axis=1)
    kind = np.concatenate([p.kind_names().reshape(k, -1) for p in parts], axis=1)
    return score, kind


@pytest.fixture(scope="module")
def synthetic() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(7)
    names = ["spike", "drop", "level_shift", "trend_change"]
    values = 50 + rng.normal(0, 1, (len(names) + NOISE_SERIES, N))
    values[0, AT] += 12
    values[1, AT] -= 12
    values[2, AT:] += 4
    values[3, AT:] += 0.05 * np.arange(N - AT)
    score, kind = _per_series(_stream(Ensemble(), values), len(values))
    out = {name: (score[i], kind[i]) for i, name in enumerate(names)}
    out["noise"] = (score[len(names):], kind[len(names):])
    return out


@pytest.mark.parametrize(("name", "delay"), [("spike", 0), ("drop", 0), ("level_shift", 20),
                                             ("trend_change", 250)])
def test_injected_anomaly_is_found_with_its_kind(synthetic: dict[str, tuple[np.ndarray, ...]],
                                                 name: str, delay: int) -> None:
    score, kind = synthetic[name]
    threshold = DetectConfig().min_score
    assert not (score[:AT] >= threshold).any(), "an alarm before the anomaly"
    found = np.flatnonzero((score >= threshold) & (kind == name))
    assert len(found), f"no {name} found"
    assert AT <= found[0] <= AT + delay


def test_clean_noise_stays_below_the_threshold(synthetic: dict[str, tuple[np.ndarray, ...]]
                                               ) -> None:
    score, _ = synthetic["noise"]
    # stated false-positive rate: at most 1 sample in 1,000 above min_score
    assert (score >= DetectConfig().min_score).mean() <= 0.001


def test_clean_seasonal_series_stays_below_the_threshold() -> None:
    rng = np.random.default_rng(3)
    n, step_ms = 2000, 300_000  # 5-minute samples, about 7 days
    t = np.arange(n) * step_ms
    daily = 20 * np.sin(2 * np.pi * t / 86_400_000)
    values = 100 + daily + rng.normal(0, 1, (4, n))
    ensemble = Ensemble()
    score, _ = _per_series(_stream(ensemble, values, step_ms, rows=100), 4)
    assert (score >= DetectConfig().min_score).mean() <= 0.002
    assert ensemble.detectors["seasonal"].is_seasonal(np.arange(4)).tolist() == [1, 1, 1, 1]


def test_warm_up_scores_zero_also_for_a_series_appearing_mid_stream() -> None:
    config = DetectConfig(warmup=50)
    ensemble = Ensemble(config)
    rng = np.random.default_rng(1)
    for i in range(200):
        ensemble.update(np.array([0]), np.array([i * STEP_MS]), rng.normal(0, 1, 1))
    late = [ensemble.update(np.array([0, 9]), np.array([(200 + i) * STEP_MS] * 2),
                            np.array([rng.normal(), 1e6 * (-1) ** i])) for i in range(50)]
    assert all(r.score[1] == 0.0 for r in late)
    first = ensemble.update(np.array([3]), np.array([0]), np.array([5.0]))
    assert first.score[0] == 0.0 and first.kind[0] == 0


def test_a_batch_with_many_samples_per_series_equals_one_at_a_time() -> None:
    rng = np.random.default_rng(5)
    k, n = 3, 250
    values = rng.normal(10, 2, (k, n))
    values[1, 200] += 30
    slots = np.repeat(np.arange(k), n)
    ts = np.tile(np.arange(n) * STEP_MS, k)
    v = values.ravel()
    shuffle = rng.permutation(len(v))
    batched = Ensemble().update(slots[shuffle], ts[shuffle], v[shuffle])
    single = Ensemble()
    one = np.empty(len(v))
    for i in np.lexsort((slots, ts)):  # time order, series interleaved
        one[i] = single.update(slots[i:i + 1], ts[i:i + 1], v[i:i + 1]).score[0]
    assert np.array_equal(batched.score, one[shuffle])
    assert batched.score.max() > 0.5


def test_state_round_trip_continues_exactly() -> None:
    rng = np.random.default_rng(11)
    values = 50 + rng.normal(0, 1, (5, 900))
    values[2, 700] += 15
    values[3, 650:] += 5
    first, second = values[:, :600], values[:, 600:]
    kept = Ensemble()
    _stream(kept, first)
    restored = Ensemble()
    restored.from_bytes(kept.to_bytes())
    again = Ensemble()
    again.restore(kept.state())
    ts_offset = 600 * STEP_MS

    def tail(e: Ensemble) -> np.ndarray:
        slots = np.repeat(np.arange(5), 300)
        ts = 1_700_000_000_000 + ts_offset + np.tile(np.arange(300) * STEP_MS, 5)
        return e.update(slots, ts, second.ravel()).score

    expected = tail(kept)
    assert np.array_equal(tail(restored), expected)
    assert np.array_equal(tail(again), expected)
    assert expected.max() > 0.5


def test_restore_refuses_state_of_another_shape() -> None:
    a = Ensemble(DetectConfig(window=64))
    a.update(np.array([0]), np.array([0]), np.array([1.0]))
    with pytest.raises(ValueError, match="shape"):
        Ensemble().restore(a.state())


def test_rounds_take_one_sample_per_series_in_time_order() -> None:
    slots = np.array([1, 0, 1, 1, 0])
    ts = np.array([30, 5, 10, 20, 1])
    got = [sorted(zip(slots[r].tolist(), ts[r].tolist(), strict=True)) for r in rounds(slots, ts)]
    assert got == [[(0, 1), (1, 10)], [(0, 5), (1, 20)], [(1, 30)]]


finite = st.floats(allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 10**6), finite),
                min_size=1, max_size=40))
def test_scores_are_finite_and_in_unit_range(samples: list[tuple[int, int, float]]) -> None:
    ensemble = Ensemble(dataclasses.replace(DetectConfig(), warmup=0))
    slots, ts, values = (np.array(c) for c in zip(*samples, strict=True))
    for _ in range(2):
        out = ensemble.update(slots, ts.astype(np.int64), values.astype(np.float64))
        assert np.isfinite(out.score).all()
        assert ((out.score >= 0) & (out.score <= 1)).all()
        assert ((out.confidence >= 0) & (out.confidence <= 1)).all()
        ts = ts + 10**6


def test_nothing_is_reported_in_the_hold_off_after_an_anomaly() -> None:
    rng = np.random.default_rng(3)
    values = 50 + rng.normal(0, 1, (2, 900))
    values[:, 500] += 12  # the anomaly
    values[0, 540] += 40  # a bigger spike inside the hold-off: not reported
    values[1, 700] += 40  # the same spike after it: reported
    score, _ = _per_series(_stream(Ensemble(), values), 2)
    holdoff = DetectConfig().holdoff
    assert score[0, 500] >= DetectConfig().holdoff_after and score[1, 500] >= 0.6
    assert score[0, 501:501 + holdoff].max() == 0.0
    assert score[1, 700] >= 0.6


def test_a_much_stronger_anomaly_breaks_the_hold_off_of_a_weak_one() -> None:
    rng = np.random.default_rng(3)
    values = 50 + rng.normal(0, 1, (1, 900))
    values[0, 500] += 5  # a weak anomaly: reported, starts a hold-off
    values[0, 540] += 60  # far stronger, inside the hold-off: reported too
    score, _ = _per_series(_stream(Ensemble(), values), 1)
    assert DetectConfig().holdoff_after <= score[0, 500] < 0.8
    assert score[0, 540] >= 0.9
    assert score[0, 501:540].max() == 0.0


def test_a_spike_at_the_same_hour_every_day_is_news_less_often() -> None:
    rng = np.random.default_rng(0)
    k, n, step_ms = 16, 288 * 9, 300_000  # 5-minute samples, 9 days
    values = 50 + rng.normal(0, 1, (2 * k, n))
    days = range(2, 9)
    for i, day in enumerate(days):
        values[:k, day * 288 + 36] += 15  # 03:00 every day
        values[k:, day * 288 + 36 + 24 * i] += 15  # two hours later each day
    score, _ = _per_series(_stream(Ensemble(), values, step_ms, rows=288), 2 * k)
    threshold = DetectConfig().min_score
    same = sum(int((score[:k, day * 288 + 36] >= threshold).sum()) for day in days[1:])
    moving = sum(int((score[k:, day * 288 + 36 + 24 * i] >= threshold).sum())
                 for i, day in enumerate(days) if i)
    assert (score[:, 2 * 288:2 * 288 + 200].max(axis=1) >= threshold).all()  # day 2: news
    assert same <= moving / 2


def test_a_snapshot_without_hold_offs_still_loads() -> None:
    kept = Ensemble()
    kept.update(np.array([0, 1]), np.array([0, 0]), np.array([1.0, 2.0]))
    old = {k: a for k, a in kept.state().items() if k != "ensemble.reported"}
    restored = Ensemble()
    restored.restore(old)
    assert restored.update(np.array([0]), np.array([STEP_MS]), np.array([1.0])).score[0] == 0.0
