"""A small L2-regularised logistic regression (numpy + scipy.optimize): the success model.

Minimises the mean log-loss plus `l2 / (2n) · |w|²` (the intercept is not penalised) with
L-BFGS and the analytic gradient; features are standardised first. Enough for a few
thousand sessions and a few hundred features; scikit-learn is not a runtime dependency.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit


@dataclass(frozen=True)
class Logistic:
    """A fitted model: `predict(X)` is P(y = 1 | x)."""

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    intercept: float

    def predict(self, x: np.ndarray) -> np.ndarray:
        z = ((x - self.mean) / self.scale) @ self.weights + self.intercept
        result: np.ndarray = expit(z)
        return result


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0) -> Logistic:
    """Fit on rows `x` (n × d) and labels `y` in {0, 1}.

    >>> x = np.array([[0.0], [0.0], [0.0], [1.0], [1.0], [1.0]])
    >>> model = fit_logistic(x, np.array([0, 0, 1, 1, 1, 1]))
    >>> p = model.predict(np.array([[0.0], [1.0]]))
    >>> bool(p[0] < 0.5 < p[1])
    True
    """
    n, d = x.shape
    mean = x.mean(axis=0) if n else np.zeros(d)
    scale = x.std(axis=0) if n else np.ones(d)
    scale = np.where(scale > 0, scale, 1.0)
    xs = (x - mean) / scale
    yf = y.astype(np.float64)

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[:d], theta[d]
        z = xs @ w + b
        # log(1 + e^z) - y·z, computed without overflow
        value = float(np.mean(np.logaddexp(0.0, z) - yf * z) + l2 / (2 * n) * (w @ w))
        residual = (expit(z) - yf) / n
        grad = np.empty(d + 1)
        grad[:d] = xs.T @ residual + l2 / n * w
        grad[d] = residual.sum()
        return value, grad

    result = minimize(loss, np.zeros(d + 1), jac=True, method="L-BFGS-B",
                      options={"maxiter": 500})
    theta = result.x
    return Logistic(mean=mean, scale=scale, weights=theta[:d], intercept=float(theta[d]))
