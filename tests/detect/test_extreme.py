"""The new-extremes detector: a level beyond the series' range is news, noise records are not."""

from __future__ import annotations

import numpy as np

from seismo.detect import RangeExcess

STEP_MS = 60_000


def _scores(values: np.ndarray) -> np.ndarray:
    """Feed series (one per row) one round at a time; scores per series and sample."""
    detector = RangeExcess()
    k, n = values.shape
    slots = np.arange(k)
    out = np.empty((k, n))
    for i in range(n):
        out[:, i] = detector.step(slots, np.full(k, i * STEP_MS), values[:, i]).score
    return out


def test_a_value_beyond_the_range_scores_high_and_one_inside_scores_zero() -> None:
    rng = np.random.default_rng(2)
    values = 10 + np.sin(np.arange(600) / 20)[None, :] + rng.normal(0, 0.01, (2, 600))
    values[0, 500] = 13.0  # one unit above a range of 2
    values[1, 500] = 10.5  # inside the range
    score = _scores(values)
    assert score[0, 500] > 0.9
    assert score[1, 500] == 0.0


def test_records_of_plain_noise_rarely_score() -> None:
    rng = np.random.default_rng(4)
    score = _scores(rng.normal(50, 1, (200, 1000)))
    # stated rate: about 1 in 100,000 samples; the bound leaves room for chance
    assert (score[:, 100:] >= 0.5).mean() <= 1e-4
