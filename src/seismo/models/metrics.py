"""Model quality over a set of predictions: classification, regression and latency metrics.

Pure functions on numpy arrays, vectorised, no per-row Python. They give what
scikit-learn's `sklearn.metrics` gives on the same data (tests/models check it):
precision, recall and F1 are binary (of the positive class) for two classes and macro
averages over the labels seen otherwise; AUC is the Mann-Whitney statistic, one-vs-rest
macro for more than two classes; MAPE is a fraction, with sklearn's epsilon for zeros.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import rankdata

Metrics = dict[str, float | None]


def _round(value: float) -> float | None:
    return None if not math.isfinite(value) else round(float(value), 6)


def binary_auc(positive: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve: P(score of a positive > score of a negative), ties half."""
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = rankdata(score)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def classification(pred: np.ndarray, actual: np.ndarray, *, n_classes: int,
                   positive: int | None, score: np.ndarray | None = None,
                   class_scores: np.ndarray | None = None) -> Metrics:
    """Accuracy, precision, recall, F1 and AUC of class codes `pred` against `actual`.

    `positive` is the positive class code of a binary model (None: multiclass, macro).
    `score` is P(positive) per row (binary AUC); `class_scores` rows × classes (macro AUC).
    """
    n = len(actual)
    if n == 0:
        return {"accuracy": None, "precision": None, "recall": None, "f1": None, "auc": None}
    p, a = pred.astype(np.int64), actual.astype(np.int64)
    k = max(n_classes, int(p.max()) + 1, int(a.max()) + 1)
    confusion = np.bincount(a * k + p, minlength=k * k).reshape(k, k)
    tp = np.diag(confusion).astype(np.float64)
    predicted, true = confusion.sum(axis=0), confusion.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(true > 0, tp / true, 0.0)
        f1 = np.where(precision + recall > 0,
                      2 * precision * recall / (precision + recall), 0.0)
    if positive is not None:
        chosen = np.array([positive])
    else:
        chosen = np.flatnonzero((predicted > 0) | (true > 0))
    out: Metrics = {"accuracy": _round(tp.sum() / n),
                    "precision": _round(precision[chosen].mean()),
                    "recall": _round(recall[chosen].mean()), "f1": _round(f1[chosen].mean())}
    auc = math.nan
    if positive is not None and score is not None:
        given = np.isfinite(score)
        if given.all():
            auc = binary_auc(a == positive, score)
    elif class_scores is not None and class_scores.shape[1] and \
            np.isfinite(class_scores).all():
        aucs = [binary_auc(a == c, class_scores[:, c])
                for c in range(class_scores.shape[1]) if 0 < (a == c).sum() < n]
        auc = float(np.mean(aucs)) if aucs else math.nan
    out["auc"] = _round(auc)
    return out


def regression(pred: np.ndarray, actual: np.ndarray) -> Metrics:
    """MAE, RMSE and MAPE (a fraction: 0.12 is 12 %) of `pred` against `actual`."""
    if len(actual) == 0:
        return {"mae": None, "rmse": None, "mape": None}
    error = pred - actual
    eps = np.finfo(np.float64).eps  # as sklearn.metrics.mean_absolute_percentage_error
    return {"mae": _round(np.abs(error).mean()),
            "rmse": _round(math.sqrt(np.square(error).mean())),
            "mape": _round((np.abs(error) / np.maximum(np.abs(actual), eps)).mean())}


def latency(latency_ms: np.ndarray) -> Metrics:
    """p50, p95 and p99 of the latencies given (NaN: not given)."""
    given = latency_ms[np.isfinite(latency_ms)]
    if len(given) == 0:
        return {"latency_p50_ms": None, "latency_p95_ms": None, "latency_p99_ms": None}
    p50, p95, p99 = np.percentile(given, [50, 95, 99])
    return {"latency_p50_ms": _round(p50), "latency_p95_ms": _round(p95),
            "latency_p99_ms": _round(p99)}


def quality(task: str, pred: np.ndarray, actual: np.ndarray, *, n_classes: int = 0,
            positive: int | None = None, score: np.ndarray | None = None,
            class_scores: np.ndarray | None = None) -> Metrics:
    """The task's metrics over the rows that have an outcome (actual not NaN)."""
    known = np.isfinite(actual)
    if task == "regression":
        return regression(pred[known], actual[known])
    return classification(
        pred[known], actual[known], n_classes=n_classes, positive=positive,
        score=None if score is None else score[known],
        class_scores=None if class_scores is None else class_scores[known])


def primary(task: str) -> tuple[str, int]:
    """The metric a drop is judged on, and its direction (+1: higher is better)."""
    return ("accuracy", 1) if task == "classification" else ("mae", -1)
