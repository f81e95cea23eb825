"""Half-Space Trees over a short feature window, vectorised across series.

Each sample becomes four features in 0..1 (level, change, recent mean and recent spread,
each against the series' own slow statistics). Random half-space trees, shared by all series,
cut that space; every series counts, per leaf, how many of its samples fell there during
the previous window of `window` samples (the reference mass). A sample landing where the
reference window had little mass is anomalous. Counting only leaf masses (not every node's)
keeps the state to trees × 2^depth counters per series. Reference: Tan, Ting & Liu, "Fast
Anomaly Detection for Streaming Data", IJCAI 2011; river's `anomaly.HalfSpaceTrees`.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from seismo.detect.base import OUTLIER, PATTERN_CHANGE, RoundDetector, Spec, Step

FEATURES = 4
SLOW = 0.01
FAST = 0.1
RATIO_HALF = 0.1  # leaf mass, relative to a uniform spread, that scores 0.5


def _build_trees(trees: int, depth: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random half-space trees: (feature, threshold) per internal node, heap order."""
    rng = np.random.default_rng(seed)
    nodes = (1 << depth) - 1
    feature = np.zeros((trees, nodes), dtype=np.int64)
    threshold = np.zeros((trees, nodes))
    for t in range(trees):
        # workspace: a random point's range doubled, as in the paper, around [0, 1]
        sq = rng.uniform(0.0, 1.0, FEATURES)
        half = np.maximum(sq, 1.0 - sq)
        lo, hi = sq - half, sq + half
        stack = [(0, lo.copy(), hi.copy())]
        while stack:
            node, nlo, nhi = stack.pop()
            if node >= nodes:
                continue
            q = int(rng.integers(FEATURES))
            mid = (nlo[q] + nhi[q]) / 2
            feature[t, node], threshold[t, node] = q, mid
            left_hi = nhi.copy()
            left_hi[q] = mid
            right_lo = nlo.copy()
            right_lo[q] = mid
            stack.append((2 * node + 1, nlo, left_hi))
            stack.append((2 * node + 2, right_lo, nhi))
    return feature, threshold


class HalfSpaceTrees(RoundDetector):
    """Streaming Half-Space Trees on per-series feature windows."""

    name: ClassVar[str] = "hst"

    def __init__(self, trees: int = 16, depth: int = 5, window: int = 256,
                 sensitivity: float = 1.0, seed: int = 42) -> None:
        self.trees = trees
        self.depth = depth
        self.window = window
        self.sensitivity = sensitivity
        self.feature, self.threshold = _build_trees(trees, depth, seed)
        self.leaves = 1 << depth
        spec: Spec = {
            "reference": ((trees, self.leaves), np.uint16, 0),
            "latest": ((trees, self.leaves), np.uint16, 0),
            "filled": ((), np.int64, 0),  # samples in `latest`
            "has_reference": ((), np.bool_, False),
            "mean": ((), np.float64, 0.0),
            "dev": ((), np.float64, 0.0),
            "fast": ((), np.float64, 0.0),
            "fast_dev": ((), np.float64, 0.0),
            "prev": ((), np.float64, 0.0),
            "count": ((), np.int64, 0),
        }
        super().__init__(spec)

    def _features(self, slots: np.ndarray, values: np.ndarray) -> np.ndarray:
        s = self.s
        mean, dev, fast = s["mean"][slots], s["dev"][slots], s["fast"][slots]
        sigma = np.maximum(1.2533 * dev, 1e-9 + 1e-6 * np.abs(mean))
        f = np.empty((len(slots), FEATURES))
        f[:, 0] = (values - mean) / sigma
        f[:, 1] = (values - s["prev"][slots]) / sigma
        f[:, 2] = (fast - mean) / sigma
        f[:, 3] = np.log((s["fast_dev"][slots] + sigma * 1e-3) / (dev + sigma * 1e-3))
        f = np.clip(f * self.sensitivity, -50.0, 50.0)
        return 1.0 / (1.0 + np.exp(-f / 2.0))

    def _leaves(self, u: np.ndarray) -> np.ndarray:
        """Leaf index (k, trees) of each sample in each tree."""
        # flat indices into the raveled arrays: np.take is much cheaper than 2-d fancy indexing
        k = len(u)
        nodes = self.leaves - 1
        tree_base = (np.arange(self.trees) * nodes)[None, :]
        row_base = (np.arange(k) * FEATURES)[:, None]
        feature, threshold, flat_u = self.feature.ravel(), self.threshold.ravel(), u.ravel()
        node = np.zeros((k, self.trees), dtype=np.int64)
        for _ in range(self.depth):
            at = tree_base + node
            right = np.take(flat_u, row_base + np.take(feature, at)) > np.take(threshold, at)
            node = 2 * node + 1 + right
        return node - nodes

    def step(self, slots: np.ndarray, ts: np.ndarray, values: np.ndarray) -> Step:
        s = self.s
        s.ensure(int(slots.max()))
        count = s["count"][slots]
        u = self._features(slots, values)
        leaf = self._leaves(u)
        # flat cell index (slot, tree, leaf) into the raveled (contiguous) count arrays
        cells = ((slots[:, None] * self.trees + np.arange(self.trees)[None, :]) * self.leaves
                 + leaf)
        mass = np.take(s["reference"].reshape(-1), cells).astype(np.float64)
        ratio = mass.mean(axis=1) * self.leaves / self.window
        score = np.where(s["has_reference"][slots], 1.0 / (1.0 + (ratio / RATIO_HALF) ** 2), 0.0)
        level = np.abs(u[:, 0] - 0.5) > np.abs(u[:, 3] - 0.5)
        kind = np.where(level, OUTLIER, PATTERN_CHANGE).astype(np.int8)
        mean = s["mean"][slots]
        sigma = np.maximum(1.2533 * s["dev"][slots], 1e-9 + 1e-6 * np.abs(mean))
        expected = np.where(count > 0, mean, values)

        # learn: count the sample into the latest window; a full window becomes the reference
        latest = s["latest"].reshape(-1)  # a view: the arrays are contiguous
        latest[cells] += np.uint16(1)  # cells are distinct: one sample per slot per round
        filled = s["filled"][slots] + 1
        full = filled >= self.window
        if full.any():
            fs = slots[full]
            s["reference"][fs] = s["latest"][fs]
            s["latest"][fs] = 0
            s["has_reference"][fs] = True
            filled[full] = 0
        s["filled"][slots] = filled
        rate = np.maximum(1.0 / (count + 1.0), SLOW)
        first = count == 0
        resid = values - mean
        clipped = np.where(first, resid, np.clip(resid, -6 * sigma, 6 * sigma))
        s["dev"][slots] = np.where(first, 0.0, s["dev"][slots] + rate * (np.abs(clipped)
                                                                         - s["dev"][slots]))
        s["mean"][slots] = mean + rate * clipped
        fast = np.where(first, values, s["fast"][slots])
        s["fast_dev"][slots] = s["fast_dev"][slots] + FAST * (np.abs(values - fast)
                                                              - s["fast_dev"][slots])
        s["fast"][slots] = fast + FAST * (values - fast)
        s["prev"][slots] = values
        s["count"][slots] = count + 1
        return Step(score, expected, sigma, kind)
