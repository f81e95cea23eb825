"""Drift tests: a shifted distribution is flagged by each test, an unshifted one is not."""

from __future__ import annotations

import numpy as np
import pytest

from seismo.models import drift

T = drift.Thresholds()


@pytest.fixture
def samples() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(2024)
    return {"ref": rng.normal(0, 1, 5000), "same": rng.normal(0, 1, 5000),
            "shifted": rng.normal(0.8, 1, 5000), "wider": rng.normal(0, 2.5, 5000)}


@pytest.mark.parametrize("test", ["psi", "ks", "jensen_shannon", "wasserstein"])
def test_each_numeric_test_flags_a_shift_and_not_the_same_distribution(
        samples: dict[str, np.ndarray], test: str) -> None:
    same = drift.numeric(samples["ref"], samples["same"], T)
    shifted = drift.numeric(samples["ref"], samples["shifted"], T)
    assert same["tests"][test]["status"] == "ok", same["tests"][test]
    assert shifted["tests"][test]["status"] == "alert", shifted["tests"][test]
    assert same["status"] == "ok" and shifted["status"] == "alert"


def test_a_change_of_spread_is_drift_too(samples: dict[str, np.ndarray]) -> None:
    wider = drift.numeric(samples["ref"], samples["wider"], T)
    assert wider["tests"]["psi"]["status"] == "alert"
    assert wider["tests"]["ks"]["p_value"] < 0.01


def test_values_are_what_scipy_gives(samples: dict[str, np.ndarray]) -> None:
    from scipy.stats import ks_2samp, wasserstein_distance

    got = drift.numeric(samples["ref"], samples["shifted"], T)["tests"]
    ks = ks_2samp(samples["ref"], samples["shifted"])
    assert got["ks"]["statistic"] == pytest.approx(ks.statistic, abs=1e-6)
    w = wasserstein_distance(samples["ref"], samples["shifted"])
    assert got["wasserstein"]["value"] == pytest.approx(w, abs=1e-6)
    assert got["wasserstein"]["normalized"] == pytest.approx(w / samples["ref"].std(), abs=1e-6)


def test_psi_of_known_shares() -> None:
    # Σ (a − e) ln(a / e) for e = (0.5, 0.5), a = (0.25, 0.75)
    expected = -0.25 * np.log(0.5) + 0.25 * np.log(1.5)
    assert drift.psi(np.array([0.5, 0.5]), np.array([0.25, 0.75])) == pytest.approx(expected)


def test_categorical_chi_square_flags_a_changed_mix_and_not_the_same_one() -> None:
    rng = np.random.default_rng(5)
    ref = rng.choice(4, 4000, p=[0.4, 0.3, 0.2, 0.1]).astype(float)
    same = rng.choice(4, 4000, p=[0.4, 0.3, 0.2, 0.1]).astype(float)
    changed = rng.choice(4, 4000, p=[0.1, 0.2, 0.3, 0.4]).astype(float)
    ok = drift.categorical(ref, same, T)
    bad = drift.categorical(ref, changed, T)
    assert ok["status"] == "ok" and ok["tests"]["chi2"]["p_value"] > 0.01
    assert bad["tests"]["chi2"]["status"] == "alert" and bad["tests"]["psi"]["status"] == "alert"
    assert bad["status"] == "alert"


def test_a_new_category_counts_as_drift() -> None:
    ref = np.zeros(1000)
    cur = np.concatenate([np.zeros(600), np.ones(400)])
    assert drift.categorical(ref, cur, T)["status"] == "alert"


def test_thresholds_are_configurable(samples: dict[str, np.ndarray]) -> None:
    lax = drift.Thresholds(psi_warn=5, psi_alert=10, ks_min_statistic=0.9, js_warn=0.9,
                           js_alert=0.95, wasserstein_warn=5, wasserstein_alert=10)
    assert drift.numeric(samples["ref"], samples["shifted"], lax)["status"] == "ok"


def test_empty_samples_are_insufficient_data() -> None:
    assert drift.numeric(np.array([np.nan]), np.ones(10), T)["status"] == "insufficient_data"
