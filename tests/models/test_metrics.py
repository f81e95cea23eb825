"""Model metrics against scikit-learn's on the same data."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as sk

from seismo.models import metrics


def test_binary_classification_matches_sklearn() -> None:
    rng = np.random.default_rng(7)
    actual = rng.integers(0, 2, 5000)
    score = np.clip(actual * 0.3 + rng.normal(0.35, 0.25, 5000), 0, 1).round(2)  # ties too
    pred = (score > 0.5).astype(int)
    got = metrics.classification(pred.astype(float), actual.astype(float), n_classes=2,
                                 positive=1, score=score)
    assert got["accuracy"] == pytest.approx(sk.accuracy_score(actual, pred), abs=1e-6)
    assert got["precision"] == pytest.approx(sk.precision_score(actual, pred), abs=1e-6)
    assert got["recall"] == pytest.approx(sk.recall_score(actual, pred), abs=1e-6)
    assert got["f1"] == pytest.approx(sk.f1_score(actual, pred), abs=1e-6)
    assert got["auc"] == pytest.approx(sk.roc_auc_score(actual, score), abs=1e-6)


def test_binary_with_positive_class_zero_and_no_predicted_positives() -> None:
    actual = np.array([0, 1, 1, 0, 1, 1])
    pred = np.array([1, 1, 1, 1, 1, 1])
    got = metrics.classification(pred.astype(float), actual.astype(float), n_classes=2,
                                 positive=0)
    assert got["precision"] == sk.precision_score(actual, pred, pos_label=0, zero_division=0)
    assert got["recall"] == sk.recall_score(actual, pred, pos_label=0) == 0.0
    assert got["f1"] == 0.0 and got["auc"] is None


def test_multiclass_macro_matches_sklearn() -> None:
    rng = np.random.default_rng(11)
    n, k = 4000, 4
    actual = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) + 1.5 * np.eye(k)[actual]
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    pred = proba.argmax(axis=1)
    got = metrics.classification(pred.astype(float), actual.astype(float), n_classes=k,
                                 positive=None, class_scores=proba)
    assert got["accuracy"] == pytest.approx(sk.accuracy_score(actual, pred), abs=1e-6)
    for name, fn in (("precision", sk.precision_score), ("recall", sk.recall_score),
                     ("f1", sk.f1_score)):
        assert got[name] == pytest.approx(fn(actual, pred, average="macro"), abs=1e-6), name
    assert got["auc"] == pytest.approx(
        sk.roc_auc_score(actual, proba, multi_class="ovr", average="macro"), abs=1e-6)


def test_regression_matches_sklearn_including_zeros_in_mape() -> None:
    rng = np.random.default_rng(3)
    actual = rng.normal(50, 20, 3000)
    actual[:5] = 0.0
    pred = actual + rng.normal(0, 5, 3000)
    got = metrics.regression(pred, actual)
    assert got["mae"] == pytest.approx(sk.mean_absolute_error(actual, pred), rel=1e-6)
    assert got["rmse"] == pytest.approx(np.sqrt(sk.mean_squared_error(actual, pred)), rel=1e-6)
    assert got["mape"] == pytest.approx(
        sk.mean_absolute_percentage_error(actual, pred), rel=1e-6)


def test_quality_uses_only_rows_with_outcomes_and_latency_percentiles() -> None:
    pred = np.array([1.0, 0.0, 1.0, 1.0])
    actual = np.array([1.0, np.nan, 0.0, np.nan])
    got = metrics.quality("classification", pred, actual, n_classes=2, positive=1)
    assert got["accuracy"] == 0.5
    latency = np.array([1.0, 2.0, np.nan, 4.0, 10.0])
    got = metrics.latency(latency)
    assert got["latency_p50_ms"] == np.percentile([1, 2, 4, 10], 50)
    assert got["latency_p99_ms"] == pytest.approx(np.percentile([1, 2, 4, 10], 99))
    assert metrics.latency(np.array([np.nan]))["latency_p95_ms"] is None
