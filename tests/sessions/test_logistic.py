"""The success model's logistic regression on its own: it learns what separates outcomes."""

from __future__ import annotations

import doctest

import numpy as np

from seismo.sessions import logistic
from seismo.sessions.logistic import fit_logistic


def test_logistic_regression_learns_a_separating_feature() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (400, 3))
    y = (x[:, 0] * 2 - x[:, 1] + rng.normal(0, 0.5, 400) > 0).astype(np.int64)
    model = fit_logistic(x, y)
    predicted = model.predict(x) > 0.5
    assert (predicted == y).mean() > 0.85
    assert model.weights[0] > 0 > model.weights[1] and abs(model.weights[2]) < 0.5
    assert model.predict(np.array([[3.0, -3.0, 0.0]]))[0] > 0.95


def test_docstring_examples_run() -> None:
    failed, tried = doctest.testmod(logistic)
    assert tried > 0 and failed == 0
