"""The slow-drift detector: a creeping level is found, plain noise is not."""

from __future__ import annotations

import numpy as np

from seismo.detect import SlowDrift


def _scores(values: np.ndarray) -> np.ndarray:
    k, n = values.shape
    ts = np.tile(np.arange(n) * 60_000, k)
    score: np.ndarray = SlowDrift().update(np.repeat(np.arange(k), n), ts,
                                           values.ravel()).reshape(k, n)
    return score


def test_a_slow_ramp_is_found_and_plain_noise_is_not() -> None:
    rng = np.random.default_rng(5)
    values = 50 + rng.normal(0, 1, (21, 3000))
    values[0, 2000:] += 0.004 * np.arange(1000)  # 4 sigma over 1,000 samples
    score = _scores(values)
    found = np.flatnonzero(score[0] >= 0.5)
    assert len(found) and 2000 <= found[0] <= 2300
    # stated rate on plain noise: at most 1 sample in 1,000 at 0.5 or more
    assert (score[1:] >= 0.5).mean() <= 0.001
