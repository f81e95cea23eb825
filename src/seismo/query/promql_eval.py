"""Evaluates a PromQL AST (`query/promql.py`) at every step of a range, with numpy.

An instant vector is a `Vectors`: one label set per series and a (series × steps) array,
NaN where a series has no value at a step; a scalar is one value per step. Each selector's
raw samples are read once through the QueryEngine (DuckDB) over [start - window, end].
Semantics mirror Prometheus' engine: 5 m lookback, extrapolated rate/increase, one-to-one
vector matching (https://prometheus.io/docs/prometheus/latest/querying/operators/).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from seismo.config import Limits
from seismo.query.engine import QueryEngine
from seismo.query.promql import (
    COMPARISONS,
    SET_OPERATORS,
    Aggregate,
    Binary,
    Call,
    Expr,
    MatrixSelector,
    Number,
    PromQLError,
    Unary,
    VectorSelector,
    parse_promql,
)
from seismo.query.promql_funcs import (
    AGGREGATORS,
    RANGE_FUNCTIONS,
    SeriesSamples,
    bucket_quantiles,
    topk,
    windows,
)

LOOKBACK_MS = 300_000
Labels = dict[str, str]
NAME = "__name__"


@dataclass
class Vectors:
    labels: list[Labels]
    values: np.ndarray  # float64 (series × steps); NaN: no value at that step


@dataclass
class RawMatrix:
    """A range vector at one instant (an instant query of `x[5m]`): raw samples."""

    labels: list[Labels]
    samples: list[SeriesSamples]


Value = Vectors | np.ndarray | RawMatrix


def _without_name(labels: Labels) -> Labels:
    return {k: v for k, v in labels.items() if k != NAME}


class Evaluator:
    """Evaluates one parsed query over steps start_ms, start_ms + step_ms, ..., end_ms."""

    def __init__(self, engine: QueryEngine, limits: Limits, start_ms: int, end_ms: int,
                 step_ms: int) -> None:
        if end_ms < start_ms:
            raise PromQLError("end timestamp must not be before start time")
        if step_ms <= 0:
            raise PromQLError("zero or negative query resolution step widths are not "
                              "accepted. Try a positive integer")
        count = (end_ms - start_ms) // step_ms + 1
        if count > limits.max_points_per_series:
            raise PromQLError(
                f"exceeded maximum resolution of {limits.max_points_per_series:,} points per "
                "timeseries. Try decreasing the query resolution (?step=XX)")
        self.engine = engine
        self.limits = limits
        self.steps = start_ms + step_ms * np.arange(count, dtype=np.int64)

    def evaluate(self, expr: Expr) -> Value:
        """The value of `expr` at every step; a RawMatrix only for a bare range selector."""
        if isinstance(expr, MatrixSelector):
            labels, samples = self.fetch(expr.vector, expr.range_ms)
            edge = int(self.steps[0]) - expr.vector.offset_ms - expr.range_ms
            inside = [SeriesSamples(s.ts[s.ts > edge], s.values[s.ts > edge]) for s in samples]
            return RawMatrix(labels, inside)  # the window is (t - range, t], as elsewhere
        return self.eval(expr)

    # -- dispatch ---------------------------------------------------------------------

    def eval(self, expr: Expr) -> Vectors | np.ndarray:
        if isinstance(expr, Number):
            return np.full(len(self.steps), expr.value)
        if isinstance(expr, VectorSelector):
            return self.instant_selector(expr)
        if isinstance(expr, Unary):
            inner = self.eval(expr.expr)
            if isinstance(inner, Vectors):
                return Vectors([_without_name(x) for x in inner.labels], -inner.values)
            return -inner
        if isinstance(expr, Binary):
            return self.binary(expr)
        if isinstance(expr, Aggregate):
            return self.aggregate(expr)
        if isinstance(expr, Call):
            return self.call(expr)
        raise PromQLError("range vectors are only allowed as function arguments")

    def vectors(self, expr: Expr) -> Vectors:
        value = self.eval(expr)
        assert isinstance(value, Vectors), "the parser checked the types"
        return value

    def scalar(self, expr: Expr) -> np.ndarray:
        value = self.eval(expr)
        assert isinstance(value, np.ndarray), "the parser checked the types"
        return value

    # -- selectors --------------------------------------------------------------------

    def fetch(self, vs: VectorSelector, window_ms: int) -> tuple[list[Labels],
                                                                   list[SeriesSamples]]:
        """Labels and samples of the selected series over [first step - window, last]."""
        index = self.engine.store.index
        slots = index.select(vs.selector)
        if len(slots) * len(self.steps) > self.limits.max_points_per_query:
            raise PromQLError(
                f"{len(slots)} series × {len(self.steps)} steps exceeds the limit of "
                f"{self.limits.max_points_per_query} points per query; narrow the selector "
                "or increase step", error_type="execution")
        start = int(self.steps[0]) - vs.offset_ms - window_ms
        end = int(self.steps[-1]) - vs.offset_ms
        slot_col, ts, values = self.engine.samples(slots, start, end)
        bounds = np.searchsorted(slot_col, np.array(slots, np.int64), side="left")
        ends = np.searchsorted(slot_col, np.array(slots, np.int64), side="right")
        labels, samples = [], []
        for slot, lo, hi in zip(slots, bounds.tolist(), ends.tolist(), strict=True):
            info = index.info(slot)
            labels.append({NAME: info.metric, **info.labels})
            samples.append(SeriesSamples(ts[lo:hi], values[lo:hi]))
        return labels, samples

    def instant_selector(self, vs: VectorSelector) -> Vectors:
        labels, samples = self.fetch(vs, LOOKBACK_MS)
        out = np.full((len(labels), len(self.steps)), np.nan)
        at = self.steps - vs.offset_ms
        for row, s in enumerate(samples):
            lo, hi = windows(s.ts, at, LOOKBACK_MS)
            present = hi > lo
            out[row, present] = s.values[hi[present] - 1]
        return Vectors(labels, out)

    # -- functions --------------------------------------------------------------------

    def call(self, expr: Call) -> Vectors | np.ndarray:
        name, args = expr.func, expr.args
        if name in RANGE_FUNCTIONS:
            ms = args[-1]
            assert isinstance(ms, MatrixSelector)
            param = self.scalar(args[0]) if len(args) == 2 else None
            labels, samples = self.fetch(ms.vector, ms.range_ms)
            at = self.steps - ms.vector.offset_ms
            out = np.full((len(labels), len(self.steps)), np.nan)
            for row, s in enumerate(samples):
                out[row] = RANGE_FUNCTIONS[name](s, at, ms.range_ms, param)
            keep_name = name == "last_over_time"
            return _unique(Vectors(labels if keep_name else
                                   [_without_name(x) for x in labels], out))
        if name == "time":
            return self.steps / 1000.0
        if name == "vector":
            return Vectors([{}], self.scalar(args[0])[None, :].copy())
        if name == "scalar":
            cells = self.vectors(args[0]).values
            present = ~np.isnan(cells)
            one = present.sum(axis=0) == 1
            picked = np.where(present, cells, 0.0).sum(axis=0)
            return np.where(one, picked, np.nan)
        if name == "histogram_quantile":
            return self.histogram_quantile(self.scalar(args[0]), self.vectors(args[1]))
        if name in ("sort", "sort_desc"):  # a range query's series have no order
            return self.vectors(args[0])
        v = self.vectors(args[0])
        scalars = [self.scalar(a) for a in args[1:]]
        with np.errstate(all="ignore"):
            values = _SIMPLE[name](v.values, *scalars)
        return _unique(Vectors([_without_name(x) for x in v.labels], values))

    def histogram_quantile(self, q: np.ndarray, v: Vectors) -> Vectors:
        groups: dict[tuple[tuple[str, str], ...], list[tuple[float, int]]] = {}
        for row, labels in enumerate(v.labels):
            try:
                le = float(labels.get("le", ""))
            except ValueError:
                continue  # a series without a parseable `le` is no bucket
            key = tuple(sorted((k, x) for k, x in labels.items() if k not in (NAME, "le")))
            groups.setdefault(key, []).append((le, row))
        out_labels, rows = [], []
        for key, buckets in groups.items():
            buckets.sort()
            les = np.array([b for b, _ in buckets])
            counts = v.values[[r for _, r in buckets]]
            out_labels.append(dict(key))
            rows.append(bucket_quantiles(q, les, counts))
        return Vectors(out_labels, np.array(rows).reshape(len(rows), len(self.steps)))

    # -- aggregations -----------------------------------------------------------------

    def aggregate(self, expr: Aggregate) -> Vectors:
        v = self.vectors(expr.expr)
        param = None if expr.param is None else self.scalar(expr.param)
        groups: dict[tuple[tuple[str, str], ...], list[int]] = {}
        drop = {*expr.grouping, NAME}
        for row, labels in enumerate(v.labels):
            if expr.without:
                key = tuple(sorted((k, x) for k, x in labels.items() if k not in drop))
            else:
                key = tuple((k, labels[k]) for k in sorted(set(expr.grouping)) if labels.get(k))
            groups.setdefault(key, []).append(row)
        if expr.op in ("topk", "bottomk"):
            assert param is not None
            keep = np.zeros(v.values.shape, bool)
            for rows in groups.values():
                keep[rows] = topk(v.values[rows], param, expr.op == "bottomk")
            values = np.where(keep, v.values, np.nan)
            return Vectors(v.labels, values)
        out_labels, out_rows = [], []
        for key, rows in groups.items():
            out_labels.append(dict(key))
            out_rows.append(AGGREGATORS[expr.op](v.values[rows], param))
        return Vectors(out_labels, np.array(out_rows).reshape(len(out_rows), len(self.steps)))

    # -- binary operators -------------------------------------------------------------

    def binary(self, expr: Binary) -> Vectors | np.ndarray:
        lhs, rhs = self.eval(expr.lhs), self.eval(expr.rhs)
        if expr.op in SET_OPERATORS:
            assert isinstance(lhs, Vectors) and isinstance(rhs, Vectors)
            return self.set_operation(expr, lhs, rhs)
        op, comparison = _OPS[expr.op], expr.op in COMPARISONS
        if isinstance(lhs, np.ndarray) and isinstance(rhs, np.ndarray):
            with np.errstate(all="ignore"):
                result = op(lhs, rhs)
            return result.astype(np.float64)
        if isinstance(lhs, Vectors) and isinstance(rhs, Vectors):
            return self.vector_match(expr, lhs, rhs)
        vec = lhs if isinstance(lhs, Vectors) else rhs
        assert isinstance(vec, Vectors)
        left = lhs.values if isinstance(lhs, Vectors) else lhs[None, :]
        right = rhs.values if isinstance(rhs, Vectors) else rhs[None, :]
        with np.errstate(all="ignore"):
            result = op(left, right)
        if comparison:
            present = ~np.isnan(vec.values)
            values = (np.where(result & present, 1.0, np.where(present, 0.0, np.nan))
                      if expr.return_bool else np.where(result, vec.values, np.nan))
        else:
            values = np.where(np.isnan(vec.values), np.nan, result)
        dropped = not comparison or expr.return_bool
        labels = [_without_name(x) for x in vec.labels] if dropped else vec.labels
        return _unique(Vectors(labels, values))

    def set_operation(self, expr: Binary, lhs: Vectors, rhs: Vectors) -> Vectors:
        """`and`, `or`, `unless`: many-to-many, by signature, at each step."""
        signature = _signature(expr)

        def presence(v: Vectors) -> dict[tuple[tuple[str, str], ...], np.ndarray]:
            found: dict[tuple[tuple[str, str], ...], np.ndarray] = {}
            for labels, row in zip(v.labels, v.values, strict=True):
                sig = signature(labels)
                found[sig] = found.get(sig, False) | ~np.isnan(row)
            return found

        nowhere = np.zeros(len(self.steps), bool)
        if expr.op == "or":
            left = presence(lhs)
            kept = [np.where(left.get(signature(labels), nowhere), np.nan, row)
                    for labels, row in zip(rhs.labels, rhs.values, strict=True)]
            added = np.array(kept).reshape(len(kept), len(self.steps))
            values = np.concatenate([lhs.values, added])
            return _unique(Vectors(lhs.labels + rhs.labels, values))
        right = presence(rhs)
        wanted = expr.op == "and"
        rows = [np.where(right.get(signature(labels), nowhere) == wanted, row, np.nan)
                for labels, row in zip(lhs.labels, lhs.values, strict=True)]
        return Vectors(lhs.labels, np.array(rows).reshape(len(rows), len(self.steps)))

    def vector_match(self, expr: Binary, lhs: Vectors, rhs: Vectors) -> Vectors:
        """One-to-one matching on all labels but the name, `on(...)` or `ignoring(...)`."""
        signature = _signature(expr)

        right: dict[tuple[tuple[str, str], ...], list[int]] = {}
        for row, labels in enumerate(rhs.labels):
            right.setdefault(signature(labels), []).append(row)
        matched: dict[tuple[tuple[str, str], ...], np.ndarray] = {}
        for sig, rows in right.items():
            present = ~np.isnan(rhs.values[rows])
            if (present.sum(axis=0) > 1).any():
                raise PromQLError(
                    f"found duplicate series for the match group {dict(sig)} on the right "
                    "hand-side of the operation; many-to-many matching not allowed: matching "
                    "labels must be unique on one side", error_type="execution")
            matched[sig] = np.where(present, rhs.values[rows], 0.0).sum(axis=0)
            matched[sig][~present.any(axis=0)] = np.nan
        op, comparison = _OPS[expr.op], expr.op in COMPARISONS
        out_labels, out_rows = [], []
        seen: dict[tuple[tuple[str, str], ...], np.ndarray] = {}
        for row, labels in enumerate(lhs.labels):
            sig = signature(labels)
            if sig not in matched:
                continue
            left, other = lhs.values[row], matched[sig]
            both = ~np.isnan(left) & ~np.isnan(other)
            if sig in seen and (both & seen[sig]).any():
                raise PromQLError(
                    f"multiple matches for labels {dict(sig)}: many-to-one matching must be "
                    "explicit (group_left/group_right)", error_type="execution")
            seen[sig] = both | seen.get(sig, False)
            with np.errstate(all="ignore"):
                result = op(left, other)
            if comparison and expr.return_bool:
                values = np.where(both, result.astype(np.float64), np.nan)
            elif comparison:
                values = np.where(both & result, left, np.nan)
            else:
                values = np.where(both, result, np.nan)
            if expr.on:
                out = {k: v for k, v in labels.items() if k in expr.labels}
            else:
                out = {k: v for k, v in labels.items() if k not in expr.labels}
                if not comparison or expr.return_bool:
                    out.pop(NAME, None)
            out_labels.append(out)
            out_rows.append(values)
        return _unique(Vectors(out_labels,
                               np.array(out_rows).reshape(len(out_rows), len(self.steps))))


def _signature(expr: Binary) -> Callable[[Labels], tuple[tuple[str, str], ...]]:
    """The labels two series are matched on: all but the name, `on(...)`, `ignoring(...)`."""

    def signature(labels: Labels) -> tuple[tuple[str, str], ...]:
        if expr.on:
            return tuple(sorted((k, v) for k, v in labels.items() if k in expr.labels))
        return tuple(sorted((k, v) for k, v in labels.items()
                            if k != NAME and k not in expr.labels))

    return signature


def _unique(v: Vectors) -> Vectors:
    """Merge rows with the same label set; an error where two have a value at one step."""
    keys = [tuple(sorted(x.items())) for x in v.labels]
    if len(set(keys)) == len(keys):
        return v
    rows: dict[tuple[tuple[str, str], ...], int] = {}
    out_labels: list[Labels] = []
    out = np.full((len(set(keys)), v.values.shape[1]), np.nan)
    for row, key in enumerate(keys):
        target = rows.setdefault(key, len(rows))
        if target == len(out_labels):
            out_labels.append(v.labels[row])
        here = ~np.isnan(v.values[row])
        if (here & ~np.isnan(out[target])).any():
            raise PromQLError("vector cannot contain metrics with the same labelset",
                              error_type="execution")
        out[target, here] = v.values[row, here]
    return Vectors(out_labels, out)


def _round(v: np.ndarray, to: np.ndarray | None = None) -> np.ndarray:
    inverse = 1.0 / (1.0 if to is None else to)
    result: np.ndarray = np.floor(v * inverse + 0.5) / inverse
    return result


_SIMPLE: dict[str, Callable[..., np.ndarray]] = {
    "abs": np.abs, "ceil": np.ceil, "floor": np.floor, "exp": np.exp, "ln": np.log,
    "log2": np.log2, "log10": np.log10, "sqrt": np.sqrt, "sgn": np.sign, "round": _round,
    "clamp_min": np.maximum, "clamp_max": np.minimum,  # NaN (no value) stays NaN
    "clamp": lambda v, lo, hi: np.where(lo > hi, np.nan, np.minimum(np.maximum(v, lo), hi)),
}
_OPS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "+": np.add, "-": np.subtract, "*": np.multiply, "/": np.true_divide, "%": np.fmod,
    "^": np.power, "==": np.equal, "!=": np.not_equal, "<": np.less, "<=": np.less_equal,
    ">": np.greater, ">=": np.greater_equal,
}



def run_promql(engine: QueryEngine, limits: Limits, text: str, start_ms: int, end_ms: int,
               step_ms: int, *, instant: bool = False) -> tuple[np.ndarray, Value]:
    """Parse and evaluate a PromQL query: (the step timestamps in ms, its value). Only an
    `instant` query may be a bare range selector (its value: the raw samples)."""
    expr = parse_promql(text)
    if isinstance(expr, MatrixSelector) and not instant:
        raise PromQLError('invalid expression type "range vector" for range query, '
                          "must be Scalar or instant Vector")
    evaluator = Evaluator(engine, limits, start_ms, end_ms, step_ms)
    return evaluator.steps, evaluator.evaluate(expr)
