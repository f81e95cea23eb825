"""Distribution drift between a reference sample and a current one, per feature.

Numeric: PSI on the reference's deciles, the two-sample Kolmogorov-Smirnov test, the
Jensen-Shannon distance (base 2, in [0, 1]) on the same bins, and the Wasserstein
distance divided by the reference's standard deviation (so it has no unit). Categorical:
Pearson's chi-square test on the two count vectors (with Cramér's V as its effect size),
PSI and Jensen-Shannon on the category shares. Each test's status is `ok`, `warn` or
`alert` against `Thresholds`; a feature's status is its worst test's.
References: Yurdakul, "Statistical properties of population stability index" (2018);
scipy.stats.ks_2samp, chi2_contingency, wasserstein_distance; scipy.spatial.distance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency, ks_2samp, wasserstein_distance

EPS = 1e-4  # share given to an empty bin, so PSI stays finite
BINS = 10
STATUS_ORDER = {"ok": 0, "warn": 1, "alert": 2}


@dataclass(frozen=True)
class Thresholds:
    psi_warn: float = 0.1
    psi_alert: float = 0.25
    ks_p_value: float = 0.01
    ks_min_statistic: float = 0.1
    js_warn: float = 0.1
    js_alert: float = 0.2
    wasserstein_warn: float = 0.1
    wasserstein_alert: float = 0.25
    chi2_p_value: float = 0.01
    chi2_min_cramers_v: float = 0.1


def _level(value: float, warn: float, alert: float) -> str:
    return "alert" if value >= alert else "warn" if value >= warn else "ok"


def _r(value: float) -> float | None:
    return round(float(value), 6) if math.isfinite(value) else None


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index of two share vectors: Σ (a − e) · ln(a / e)."""
    e, a = np.maximum(expected, EPS), np.maximum(actual, EPS)
    return float(np.sum((a - e) * np.log(a / e)))


def _shares(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total else counts.astype(np.float64)


def numeric(reference: np.ndarray, current: np.ndarray, t: Thresholds) -> dict[str, Any]:
    """Every numeric test of `current` against `reference` (NaNs dropped)."""
    ref, cur = reference[np.isfinite(reference)], current[np.isfinite(current)]
    if len(ref) == 0 or len(cur) == 0:
        return {"kind": "numeric", "status": "insufficient_data"}
    inner = np.unique(np.quantile(ref, np.linspace(0, 1, BINS + 1)[1:-1]))
    ref_bins = np.bincount(np.searchsorted(inner, ref, side="right"), minlength=len(inner) + 1)
    cur_bins = np.bincount(np.searchsorted(inner, cur, side="right"), minlength=len(inner) + 1)
    e, a = _shares(ref_bins), _shares(cur_bins)
    value_psi = psi(e, a)
    ks = ks_2samp(ref, cur)
    js = float(jensenshannon(e, a, base=2)) if len(e) > 1 else 0.0
    std = float(ref.std())
    w = wasserstein_distance(ref, cur)
    w_norm = w / std if std > 0 else (0.0 if w == 0 else math.inf)
    ks_alert = ks.pvalue < t.ks_p_value and ks.statistic >= t.ks_min_statistic
    tests = {
        "psi": {"value": _r(value_psi), "status": _level(value_psi, t.psi_warn, t.psi_alert)},
        "ks": {"statistic": _r(ks.statistic), "p_value": _r(ks.pvalue),
               "status": "alert" if ks_alert else "ok"},
        "jensen_shannon": {"value": _r(js), "status": _level(js, t.js_warn, t.js_alert)},
        "wasserstein": {"value": _r(w), "normalized": _r(w_norm),
                        "status": _level(w_norm, t.wasserstein_warn, t.wasserstein_alert)},
    }
    return {"kind": "numeric", "status": worst(tests), "tests": tests,
            "reference": {"count": len(ref), "mean": _r(ref.mean()), "std": _r(std)},
            "current": {"count": len(cur), "mean": _r(cur.mean()), "std": _r(cur.std())}}


def categorical(reference: np.ndarray, current: np.ndarray, t: Thresholds) -> dict[str, Any]:
    """Chi-square, PSI and Jensen-Shannon of category codes (NaN: missing, dropped)."""
    ref = reference[np.isfinite(reference)].astype(np.int64)
    cur = current[np.isfinite(current)].astype(np.int64)
    if len(ref) == 0 or len(cur) == 0:
        return {"kind": "categorical", "status": "insufficient_data"}
    k = int(max(ref.max(), cur.max())) + 1
    counts = np.stack([np.bincount(ref, minlength=k), np.bincount(cur, minlength=k)])
    counts = counts[:, counts.sum(axis=0) > 0]
    e, a = _shares(counts[0]), _shares(counts[1])
    value_psi = psi(e, a)
    js = float(jensenshannon(e, a, base=2)) if counts.shape[1] > 1 else 0.0
    if counts.shape[1] > 1:
        chi2, p_value, _, _ = chi2_contingency(counts, correction=False)
        cramers_v = math.sqrt(chi2 / (counts.sum() * (min(counts.shape) - 1)))
    else:
        chi2, p_value, cramers_v = 0.0, 1.0, 0.0
    chi2_alert = p_value < t.chi2_p_value and cramers_v >= t.chi2_min_cramers_v
    tests = {
        "chi2": {"statistic": _r(chi2), "p_value": _r(p_value), "cramers_v": _r(cramers_v),
                 "status": "alert" if chi2_alert else "ok"},
        "psi": {"value": _r(value_psi), "status": _level(value_psi, t.psi_warn, t.psi_alert)},
        "jensen_shannon": {"value": _r(js), "status": _level(js, t.js_warn, t.js_alert)},
    }
    return {"kind": "categorical", "status": worst(tests), "tests": tests,
            "reference": {"count": len(ref)}, "current": {"count": len(cur)}}


def worst(tests: dict[str, dict[str, Any]]) -> str:
    """The most severe status among tests (or features)."""
    statuses = [test["status"] for test in tests.values() if test["status"] in STATUS_ORDER]
    return max(statuses, key=STATUS_ORDER.__getitem__, default="ok")


def sample(values: np.ndarray, limit: int, seed: int = 0) -> np.ndarray:
    """At most `limit` rows, chosen at random (a fixed seed: the same answer twice)."""
    if len(values) <= limit:
        return values
    rows = np.random.default_rng(seed).choice(len(values), limit, replace=False)
    return values[np.sort(rows)]
