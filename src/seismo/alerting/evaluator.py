"""The rule evaluator: every ingest batch is checked against the rules that select its series.

Rules are indexed by (rule, series) pairs, built once per new series (a rule index by
metric name and one equality matcher, not a scan of all rules) and kept sorted by series
slot, so a batch finds its pairs with one lookup. Threshold rules on the latest value are
compared for all pairs of a batch at once (numpy); Python only runs for pairs whose
condition is true or that already have an alert. Window rules read `SeriesWindows`;
anomaly rules are driven by the detectors' anomaly records; `absent()`, `for` and
`keep_firing_for` advance on `tick`, and forecast rules are refitted there (at most every
`forecast_interval_ms` per series, never per batch; `forecast_rules.py`). Plain object, no
threads: the caller serialises calls (the runner holds `lock`).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from seismo.alerting.expr import (
    Absent,
    Anomaly,
    Comparison,
    Forecast,
    Instant,
    OverTime,
    Rate,
    Ratio,
)
from seismo.alerting.forecast_rules import outlooks
from seismo.alerting.rules import Rule
from seismo.alerting.state import Alert, AlertState, Episode, Transition, fingerprint
from seismo.alerting.windows import SeriesWindows, window_value
from seismo.errors import InvalidInput, NotFound, Overloaded
from seismo.store.anomalies import Anomaly as AnomalyRecord
from seismo.store.batch import Batch
from seismo.store.series import SeriesIndex

log = logging.getLogger(__name__)
MAX_ACTIVE_ALERTS = 100_000
MAX_RESOLVED_KEPT = 10_000
# Comparison operators as (greater, equal, less) outcomes that make them true.
OUTCOMES = {">": (1, 0, 0), ">=": (1, 1, 0), "<": (0, 0, 1), "<=": (0, 1, 1),
            "==": (0, 1, 0), "!=": (1, 0, 1)}
INSTANT, WINDOW, RATIO, ANOMALY, ABSENT, FORECAST = range(6)
FORECAST_INTERVAL_MS = 60_000
FORECAST_FITS_PER_TICK = 64
"""Series forecast in one tick at most (~30 ms); the others wait for the next ticks."""


def compare(values: np.ndarray, ops: Iterable[str] | str, thresholds: np.ndarray | float
            ) -> np.ndarray:
    """`values op threshold` element-wise, one op per element (or one for all); NaN is false.

    >>> compare(np.array([1.0, 5.0, np.nan]), [">", "<=", ">"], np.array([2.0, 5.0, 0.0])).tolist()
    [False, True, False]
    """
    ops_list = [ops] * len(values) if isinstance(ops, str) else list(ops)
    bits = np.array([OUTCOMES[op] for op in ops_list], dtype=bool).reshape(len(values), 3)
    return _compare_bits(values, bits, thresholds)


def _compare_bits(values: np.ndarray, bits: np.ndarray, thresholds: np.ndarray | float
                  ) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        result: np.ndarray = ((bits[:, 0] & (values > thresholds))
                              | (bits[:, 1] & (values == thresholds))
                              | (bits[:, 2] & (values < thresholds)))
    return result


@dataclass(eq=False)
class Tracked:
    """An alert the evaluator holds: the state machine plus what it was raised from."""

    alert: Alert
    rule: Rule | None
    """None for a custom alert (`POST /alerts`)."""
    slot: int | None
    sid: int | None
    annotations: dict[str, str] = field(default_factory=dict)
    templates: Mapping[str, Any] = field(default_factory=dict)
    ends_at_ms: int | None = None
    """A custom alert resolves by itself at this time, unless posted again."""
    source: str = "rule"
    """What raises it: `rule`, `custom` (the API), or another stage (`slo`, `model`)."""
    pairs: set[tuple[int, int | None]] = field(default_factory=set)
    """The evaluator's (rule index, series slot) keys that lead to this alert."""
    variables: dict[str, str] = field(default_factory=dict)
    """Template variables besides $value and $labels (a forecast's `$crosses_in`)."""

    @property
    def fingerprint(self) -> str:
        return self.alert.fingerprint

    @property
    def labels(self) -> Mapping[str, str]:
        return self.alert.labels


    def render(self) -> None:
        """Fill annotation templates with the alert's labels and last value."""
        if self.templates:
            self.annotations = {k: t.render(self.labels, self.alert.value, self.variables).text
                                for k, t in self.templates.items()}


Change = Callable[[Tracked, Transition], None]


@dataclass
class _Compiled:
    """A rule as the evaluator runs it."""

    rule: Rule
    kind: int
    bits: np.ndarray  # (greater, equal, less) outcomes of the comparison
    threshold: float
    resolve_bits: np.ndarray | None = None
    resolve_threshold: float = 0.0
    loaded_ms: int = 0
    selectors: tuple[Any, ...] = ()
    absent_slots: list[int] = field(default_factory=list)
    ratio_sides: dict[tuple[tuple[str, str], ...], list[int | None]] = field(default_factory=dict)
    forecast_slots: list[int] = field(default_factory=list)
    fitted_ms: dict[int, int] = field(default_factory=dict)
    """Forecast rules: when each series was last forecast."""
    next_fit_ms: int = 0


def _kind(rule: Rule) -> int:
    expr = rule.expr
    if isinstance(expr, Absent):
        return ABSENT
    operand = expr.operand
    if isinstance(operand, Instant):
        return INSTANT
    if isinstance(operand, Rate | OverTime):
        return WINDOW
    if isinstance(operand, Ratio):
        return RATIO
    if isinstance(operand, Anomaly):
        return ANOMALY
    if isinstance(operand, Forecast):
        return FORECAST
    raise InvalidInput(f"rule {rule.name!r}: this expression cannot be evaluated", field="expr")


def _bits(op: str) -> np.ndarray:
    return np.array([OUTCOMES[op]], dtype=bool)


def _terms(rule: Rule) -> list[Any]:
    """Every operand term of a rule's expressions (a ratio's two sides separately)."""
    operands = [rule.expr.operand] if isinstance(rule.expr, Comparison) else []
    if rule.resolve is not None:
        operands.append(rule.resolve.operand)
    return [t for o in operands
            for t in ((o.numerator, o.denominator) if isinstance(o, Ratio) else (o,))]


def _label_key(labels: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


class Evaluator:
    """Rules, the alerts they raised, and custom alerts; see the module docstring."""

    def __init__(self, index: SeriesIndex, latest: Callable[[], tuple[np.ndarray, np.ndarray]],
                 *, clock: Callable[[], int], on_change: Change | None = None,
                 max_active: int = MAX_ACTIVE_ALERTS,
                 forecast_interval_ms: int = FORECAST_INTERVAL_MS) -> None:
        self.index = index
        self.latest = latest
        self.clock = clock
        self.on_change = on_change
        self.max_active = max_active
        self.forecast_interval_ms = forecast_interval_ms
        self.forecast_fits_per_tick = FORECAST_FITS_PER_TICK
        self.forecast_fits = 0
        self.lock = threading.RLock()
        self.rules: list[_Compiled] = []
        self.alerts: dict[str, Tracked] = {}
        """Active alerts (pending, firing, acknowledged) by fingerprint."""
        self.windows = SeriesWindows()
        self.refused_alerts = 0
        self._by_pair: dict[tuple[int, int | None], Tracked] = {}  # (rule index, slot)
        self._resolved: OrderedDict[str, Tracked] = OrderedDict()
        self._pair_rule = np.empty(0, np.int32)
        self._pair_slot = np.empty(0, np.int32)
        self._pair_alerted = np.empty(0, bool)  # the pair leads to an active alert
        self._offsets = np.zeros(1, np.int64)  # pairs of slot s: offsets[s]:offsets[s+1]
        self._rule_kind = np.empty(0, np.int8)  # per rule, for vectorised lookups by pair
        self._rule_bits = np.empty((0, 3), bool)
        self._rule_threshold = np.empty(0)
        self._by_metric: dict[str, list[int]] = {}
        self._by_label: dict[tuple[str, str, str], list[int]] = {}
        self._nameless: list[int] = []
        self._forecast_rules: list[int] = []  # indices of forecast rules, for tick

    # -- rules --------------------------------------------------------------------------

    def set_rules(self, rules: list[Rule]) -> None:
        """Replace the rule set. Alerts of rules that are gone, changed or disabled resolve."""
        with self.lock:
            now = self.clock()
            old = {c.rule.name: c for c in self.rules}
            compiled = []
            for rule in rules:
                if not rule.enabled:
                    continue
                previous = old.get(rule.name)
                c = _Compiled(rule, _kind(rule), np.zeros((1, 3), bool), 0.0, loaded_ms=now,
                              selectors=rule.expr.selectors())
                if isinstance(rule.expr, Comparison):
                    c.bits, c.threshold = _bits(rule.expr.op), rule.expr.threshold
                if rule.resolve is not None:
                    c.resolve_bits = _bits(rule.resolve.op)
                    c.resolve_threshold = rule.resolve.threshold
                if previous is not None and previous.rule.expr == rule.expr:
                    c.loaded_ms = previous.loaded_ms
                compiled.append(c)
            keep = {c.rule.name: c.rule for c in compiled}
            for tracked in list(self.alerts.values()):
                if tracked.rule is None:
                    continue
                new_rule = keep.get(tracked.rule.name)
                if new_rule is None or new_rule.expr != tracked.rule.expr:
                    self._end(tracked, "rule removed or changed")
                elif new_rule != tracked.rule:
                    tracked.rule = new_rule
                    tracked.templates = new_rule.annotations
                    tracked.alert.for_ms = new_rule.for_ms
                    tracked.alert.keep_firing_for_ms = new_rule.keep_firing_for_ms
            previous_rules = self.rules
            self.rules = compiled
            self._forecast_rules = [i for i, c in enumerate(compiled) if c.kind == FORECAST]
            self._rule_kind = np.array([c.kind for c in compiled], np.int8)
            self._rule_bits = (np.concatenate([c.bits for c in compiled]) if compiled
                               else np.empty((0, 3), bool))
            self._rule_threshold = np.array([c.threshold for c in compiled], np.float64)
            self._index_rules()
            self._rebuild_pairs(previous_rules)

    def _index_rules(self) -> None:
        self._by_metric, self._by_label, self._nameless = {}, {}, []
        for i, c in enumerate(self.rules):
            for selector in c.rule.expr.selectors():
                name = selector.metric_name()
                if name is None:
                    self._nameless.append(i)
                    continue
                eq = next((m for m in selector.matchers
                           if m.op == "=" and m.label != "__name__" and m.value), None)
                if eq is None:
                    self._by_metric.setdefault(name, []).append(i)
                else:
                    self._by_label.setdefault((name, eq.label, eq.value), []).append(i)

    def _rules_for(self, metric: str, labels: Mapping[str, str],
                   only: set[int] | None = None) -> list[int]:
        """Indices of the rules (of `only`, if given) whose selectors match this series."""
        candidates = set(self._by_metric.get(metric, ()))
        candidates.update(self._nameless)
        for label, value in labels.items():
            candidates.update(self._by_label.get((metric, label, value), ()))
        if only is not None:
            candidates &= only
        return sorted(i for i in candidates
                      if any(s.matches(metric, labels) for s in self.rules[i].selectors))

    def _rebuild_pairs(self, previous: list[_Compiled]) -> None:
        """Re-pair rules and series after a rule change, matching only new or changed rules
        against the series (a rule whose expressions are unchanged keeps its pairs)."""
        known = len(self._offsets) - 1
        same: dict[tuple[Any, Any], list[int]] = {}
        for i, c in enumerate(previous):
            same.setdefault((c.rule.expr, c.rule.resolve), []).append(i)
        remap = np.full(len(previous) + 1, -1, np.int32)
        fresh: list[int] = []
        for i, c in enumerate(self.rules):
            twins = same.get((c.rule.expr, c.rule.resolve))
            j = twins.pop() if twins else None
            if j is None:
                fresh.append(i)
            else:
                remap[j] = i
                old = previous[j]
                c.absent_slots, c.ratio_sides = old.absent_slots, old.ratio_sides
                c.forecast_slots, c.fitted_ms = old.forecast_slots, old.fitted_ms
        kept = remap[self._pair_rule] if len(self._pair_rule) else np.empty(0, np.int32)
        rules, slots = [kept[kept >= 0]], [self._pair_slot[kept >= 0]]
        if fresh:
            only = set(fresh)
            new_rules, new_slots = [], []
            for slot in range(known):
                info = self.index.info(slot)
                for i in self._rules_for(info.metric, info.labels, only):
                    self._attach(i, slot, info.metric, info.labels)
                    new_rules.append(i)
                    new_slots.append(slot)
            rules.append(np.asarray(new_rules, np.int32))
            slots.append(np.asarray(new_slots, np.int32))
        pair_rule, pair_slot = np.concatenate(rules), np.concatenate(slots)
        order = np.lexsort((pair_rule, pair_slot))
        self._pair_rule, self._pair_slot = pair_rule[order], pair_slot[order]
        self._pair_alerted = np.zeros(len(order), bool)
        self._offsets = np.searchsorted(self._pair_slot, np.arange(known + 1)).astype(np.int64)
        self.windows.horizon_ms.clear()  # recomputed: a removed rule's windows are dropped
        needs_window = np.array([any(isinstance(t, Rate | OverTime | Forecast)
                                     for t in _terms(c.rule))
                                 for c in self.rules] + [False], bool)
        for r, slot in zip(self._pair_rule[needs_window[self._pair_rule]].tolist(),
                           self._pair_slot[needs_window[self._pair_rule]].tolist(), strict=True):
            info = self.index.info(slot)
            self._keep_windows(r, slot, info.metric, info.labels)
        self.windows.forget(set(self.windows.horizon_ms))
        self._by_pair = {}
        names = {c.rule.name: i for i, c in enumerate(self.rules)}
        for tracked in self.alerts.values():
            tracked.pairs.clear()
            if tracked.rule is not None and tracked.rule.name in names:
                self._pair(names[tracked.rule.name], tracked.slot, tracked)
        self._extend(len(self.index))

    def _extend(self, slots: int) -> None:
        """Add the pairs of series that appeared since the last call (slots only grow)."""
        known = len(self._offsets) - 1
        if slots <= known:
            return
        rules, pair_slots, counts = [], [], []
        for slot in range(known, slots):
            info = self.index.info(slot)
            found = self._rules_for(info.metric, info.labels)
            counts.append(len(found))
            for i in found:
                rules.append(i)
                pair_slots.append(slot)
                self._attach(i, slot, info.metric, info.labels)
        self._pair_rule = np.concatenate([self._pair_rule, np.asarray(rules, np.int32)])
        self._pair_slot = np.concatenate([self._pair_slot, np.asarray(pair_slots, np.int32)])
        self._pair_alerted = np.concatenate([self._pair_alerted, np.zeros(len(rules), bool)])
        self._offsets = np.concatenate(
            [self._offsets, self._offsets[-1] + np.cumsum(np.asarray(counts, np.int64))])

    def _attach(self, i: int, slot: int, metric: str, labels: Mapping[str, str]) -> None:
        """Per-kind bookkeeping for a new (rule, series) pair."""
        c = self.rules[i]
        if c.kind == ABSENT:
            c.absent_slots.append(slot)
        elif c.kind == FORECAST:
            c.forecast_slots.append(slot)
            c.next_fit_ms = 0
        elif c.kind == RATIO:
            ratio = cast(Ratio, cast(Comparison, c.rule.expr).operand)
            sides = c.ratio_sides.setdefault(_label_key(labels), [None, None])
            for side, term in enumerate((ratio.numerator, ratio.denominator)):
                if term.selector.matches(metric, labels):
                    sides[side] = slot
        self._keep_windows(i, slot, metric, labels)

    def _keep_windows(self, i: int, slot: int, metric: str, labels: Mapping[str, str]) -> None:
        """Keep the recent samples of this series that rule i's windows read."""
        for term in _terms(self.rules[i].rule):
            if (isinstance(term, Rate | OverTime | Forecast)
                    and term.selector.matches(metric, labels)):
                self.windows.keep(slot, term.window_ms)

    # -- evaluation ---------------------------------------------------------------------

    def on_batch(self, batch: Batch) -> None:
        """Evaluate every rule that selects a series of this (durable) batch."""
        if len(batch) == 0:
            return
        with self.lock:
            self._extend(len(self.index))
            if len(self._pair_rule) == 0:
                return
            self.windows.append(batch.slots.astype(np.int64), batch.ts, batch.values)
            slots = np.unique(batch.slots)
            slots = slots[slots < len(self._offsets) - 1]
            starts, ends = self._offsets[slots], self._offsets[slots + 1]
            counts = ends - starts
            if not counts.sum():
                return
            pairs = np.repeat(starts - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
            self._evaluate_pairs(pairs, end_ms=None)

    def _evaluate_pairs(self, pairs: np.ndarray, end_ms: int | None) -> None:
        rule_of, slot_of = self._pair_rule[pairs], self._pair_slot[pairs]
        kinds = self._rule_kind[rule_of]
        last_ts, last_values = self.latest()
        instant = kinds == INSTANT
        if instant.any():
            # All threshold rules of the batch at once; Python only where it is true or an
            # alert exists.
            rules, slots = rule_of[instant], slot_of[instant]
            values = last_values[slots]
            true = _compare_bits(values, self._rule_bits[rules], self._rule_threshold[rules])
            for k in np.flatnonzero(true | self._pair_alerted[pairs[instant]]).tolist():
                self._observe(int(rules[k]), int(slots[k]), bool(true[k]), float(values[k]),
                              end_ms=None)
        windowed = (kinds == WINDOW) | (kinds == RATIO)
        for r, s in zip(rule_of[windowed].tolist(), slot_of[windowed].tolist(), strict=True):
            self._evaluate_one(r, s, end_ms if end_ms is not None else int(last_ts[s]))

    def _evaluate_one(self, r: int, slot: int, end_ms: int) -> None:
        c = self.rules[r]
        value = self._operand_value(cast(Comparison, c.rule.expr).operand, r, slot, end_ms)
        if value is None:
            return
        true = bool(_compare_bits(np.array([value]), c.bits, c.threshold)[0])
        self._observe(r, slot, true, value, end_ms=end_ms)

    def _operand_value(self, operand: Any, r: int, slot: int, end_ms: int) -> float | None:
        if isinstance(operand, Instant):
            return float(self.latest()[1][slot])
        if isinstance(operand, Rate | OverTime):
            return window_value(operand, self.windows, slot, end_ms)
        if isinstance(operand, Ratio):
            num_slot, den_slot = self.rules[r].ratio_sides.get(
                _label_key(self.index.info(slot).labels), (None, None))
            if num_slot is None or den_slot is None:
                return None
            num = self._operand_value(operand.numerator, r, num_slot, end_ms)
            den = self._operand_value(operand.denominator, r, den_slot, end_ms)
            if num is None or den is None or den == 0:
                return None
            return num / den
        return None

    def _alert_slot(self, r: int, slot: int) -> int:
        """The series an alert of rule r is about: a ratio's numerator side."""
        c = self.rules[r]
        if c.kind == RATIO:
            sides = c.ratio_sides.get(_label_key(self.index.info(slot).labels))
            if sides is not None and sides[0] is not None:
                return sides[0]
        return slot

    def _observe(self, r: int, slot: int | None, true: bool, value: float | None, *,
                 end_ms: int | None, score: float | None = None,
                 variables: dict[str, str] | None = None) -> None:
        c = self.rules[r]
        if slot is not None:
            slot = self._alert_slot(r, slot)
        tracked = self._by_pair.get((r, slot))
        if tracked is not None and c.resolve_bits is not None and tracked.alert.is_active:
            # Hysteresis: once raised, the alert stays until the resolve condition holds.
            assert c.rule.resolve is not None
            resolve = c.rule.resolve.operand
            if isinstance(resolve, Anomaly):
                held = score
            else:
                assert slot is not None  # absent() rules have no resolve
                end = end_ms if end_ms is not None else int(self.latest()[0][slot])
                held = self._operand_value(resolve, r, slot, end)
            if held is None or np.isnan(held):
                return
            true = not bool(_compare_bits(np.array([held]), c.resolve_bits,
                                          c.resolve_threshold)[0])
        if tracked is None:
            if not true:
                return
            tracked = self._open(r, slot)
            if tracked is None:
                return
        if variables is not None:
            tracked.variables = variables
        tracked.alert.observe(true, value)

    def _open(self, r: int, slot: int | None) -> Tracked | None:
        if len(self.alerts) >= self.max_active:
            self.refused_alerts += 1
            if self.refused_alerts == 1 or self.refused_alerts % 1000 == 0:
                log.warning("%d active alerts: new ones are refused (%d so far)",
                            self.max_active, self.refused_alerts)
            return None
        rule = self.rules[r].rule
        if slot is None:  # absent(): the selector's equality matchers, as Prometheus
            series_labels = {m.label: m.value for m in cast(Absent, rule.expr).selector.matchers
                             if m.op == "=" and m.label != "__name__"}
            sid = None
        else:
            info = self.index.info(slot)
            series_labels, sid = info.labels, info.id
        labels = rule.alert_labels(series_labels)
        fp = fingerprint(rule.name, labels)
        tracked = self.alerts.get(fp) or self._resolved.pop(fp, None)
        if tracked is not None:  # the rule may have changed since this alert last fired
            self.alerts[fp] = tracked
            tracked.rule, tracked.templates, tracked.slot = rule, rule.annotations, slot
            tracked.alert.for_ms = rule.for_ms
            tracked.alert.keep_firing_for_ms = rule.keep_firing_for_ms
        else:
            tracked = self._track(Alert(rule.name, labels, self.clock, for_ms=rule.for_ms,
                                        keep_firing_for_ms=rule.keep_firing_for_ms),
                                  rule, slot, sid)
        self._pair(r, slot, tracked)
        return tracked

    def _pair(self, r: int, slot: int | None, tracked: Tracked) -> None:
        self._by_pair[(r, slot)] = tracked
        tracked.pairs.add((r, slot))
        self._mark(r, slot, True)

    def _mark(self, r: int, slot: int | None, alerted: bool) -> None:
        if slot is None or slot + 1 >= len(self._offsets):
            return
        lo, hi = self._offsets[slot], self._offsets[slot + 1]
        found = np.flatnonzero(self._pair_rule[lo:hi] == r)
        self._pair_alerted[lo + found] = alerted

    def _track(self, alert: Alert, rule: Rule | None, slot: int | None, sid: int | None
               ) -> Tracked:
        tracked = Tracked(alert, rule, slot, sid, templates=rule.annotations if rule else {})
        alert.on_transition = lambda t, tr=tracked: self._changed(tr, t)
        self.alerts[alert.fingerprint] = tracked
        return tracked

    def _changed(self, tracked: Tracked, transition: Transition) -> None:
        tracked.render()
        if transition.to_state is AlertState.RESOLVED:
            # Kept a while (bounded) so that firing again continues its episode count.
            self.alerts.pop(tracked.fingerprint, None)
            for key in tracked.pairs:
                self._by_pair.pop(key, None)
                self._mark(*key, False)
            tracked.pairs.clear()
            self._resolved[tracked.fingerprint] = tracked
            while len(self._resolved) > MAX_RESOLVED_KEPT:
                self._resolved.popitem(last=False)
        if self.on_change is not None:
            self.on_change(tracked, transition)

    def _end(self, tracked: Tracked, reason: str) -> None:
        alert = tracked.alert
        if alert.is_active:
            alert.resolve(by="seismo", comment=reason)

    # -- anomalies, time ----------------------------------------------------------------

    def on_anomaly(self, anomaly: AnomalyRecord) -> None:
        """Anomaly rules follow the detectors' records: true while one is open and scores."""
        with self.lock:
            slot = self.index.slot_of_id(anomaly.sid)
            if slot is None:
                return
            self._extend(len(self.index))
            lo, hi = self._offsets[slot], self._offsets[slot + 1]
            for r in self._pair_rule[lo:hi].tolist():
                c = self.rules[r]
                if c.kind != ANOMALY:
                    continue
                kinds = c.rule.expr.operand.kinds
                score = anomaly.score if anomaly.state == "open" and (
                    not kinds or anomaly.kind in kinds) else 0.0
                true = bool(_compare_bits(np.array([score]), c.bits, c.threshold)[0])
                self._observe(r, slot, true, anomaly.score, end_ms=None, score=score)

    def tick(self) -> None:
        """Let time pass: `for`, `keep_firing_for`, windows sliding, absent(), custom ends."""
        with self.lock:
            now = self.clock()
            self._extend(len(self.index))
            for tracked in list(self.alerts.values()):
                if tracked.rule is None and tracked.ends_at_ms is not None \
                        and now >= tracked.ends_at_ms:
                    tracked.alert.observe(False)
                else:
                    tracked.alert.tick()
            window_pairs = [(r, s) for (r, s), t in self._by_pair.items()
                            if s is not None and self.rules[r].kind in (WINDOW, RATIO)]
            for r, s in window_pairs:
                self._evaluate_one(r, s, now)
            last_ts = self.latest()[0]
            for r, c in enumerate(self.rules):
                if c.kind == ABSENT:
                    newest = max((int(last_ts[s]) for s in c.absent_slots), default=0)
                    newest = max(newest, c.loaded_ms)
                    absent = cast(Absent, c.rule.expr)
                    self._observe(r, None, now - newest >= absent.for_ms, None,
                                  end_ms=now)
            self._refit_forecasts(now)

    def _refit_forecasts(self, now: int) -> None:
        """Forecast the series of forecast rules not forecast for `forecast_interval_ms`,
        longest-waiting first, at most `forecast_fits_per_tick` of them, and observe."""
        due: list[tuple[int, int, int]] = []  # (last fit, rule, slot)
        for r in self._forecast_rules:
            c = self.rules[r]
            if now < c.next_fit_ms:
                continue
            waiting = len(due)
            next_fit = now + self.forecast_interval_ms
            for slot in c.forecast_slots:
                fitted = c.fitted_ms.get(slot)
                if fitted is None or now - fitted >= self.forecast_interval_ms:
                    due.append((-1 if fitted is None else fitted, r, slot))
                else:
                    next_fit = min(next_fit, fitted + self.forecast_interval_ms)
            # Due series are looked at again next tick: some may not fit in this one.
            c.next_fit_ms = now if len(due) > waiting else next_fit
        if not due:
            return
        due.sort()
        chosen: dict[int, list[int]] = {}
        for _, r, slot in due[: self.forecast_fits_per_tick]:
            chosen.setdefault(r, []).append(slot)
        for r, slots in chosen.items():
            c = self.rules[r]
            expr = cast(Comparison, c.rule.expr)
            found = outlooks(cast(Forecast, expr.operand), expr.op, expr.threshold,
                             self.windows, slots, now, self.latest()[0])
            self.forecast_fits += len(slots)
            for slot in slots:
                c.fitted_ms[slot] = now
            for slot, outlook in found.items():
                if outlook is None:
                    self._observe(r, slot, False, None, end_ms=now)
                else:
                    self._observe(r, slot, outlook.is_true, outlook.value, end_ms=now,
                                  variables=outlook.variables(now))

    # -- people -------------------------------------------------------------------------

    def get(self, fp: str) -> Tracked:
        tracked = self.alerts.get(fp)
        if tracked is None:
            raise NotFound(f"no active alert {fp!r}", field="id")
        return tracked

    def acknowledge(self, fp: str, by: str, comment: str = "") -> Tracked:
        with self.lock:
            tracked = self.get(fp)
            tracked.alert.acknowledge(by, comment)
            return tracked

    def resolve(self, fp: str, by: str, comment: str = "") -> Tracked:
        with self.lock:
            tracked = self.get(fp)
            tracked.alert.resolve(by, comment)
            return tracked

    def raise_alert(self, name: str, labels: Mapping[str, str], annotations: Mapping[str, str],
                    severity: str, ends_at_ms: int | None) -> Tracked:
        """A custom alert: fires now; posting it again refreshes it (dedup by fingerprint)."""
        tracked = self.observe("custom", name, labels, severity, annotations, True)
        assert tracked is not None
        tracked.ends_at_ms = ends_at_ms
        return tracked

    def observe(self, source: str, name: str, labels: Mapping[str, str], severity: str,
                annotations: Mapping[str, str], is_true: bool, value: float | None = None,
                *, for_ms: int = 0) -> Tracked | None:
        """An alert condition judged outside the rules (an SLO's burn rate, a model's drift):
        the alert `name` + `labels` goes through the same lifecycle as a rule's. Returns
        the alert, or None when the condition is false and no alert is active."""
        with self.lock:
            full = {**labels, "alertname": name, "severity": severity}
            fp = fingerprint(name, full)
            tracked = self.alerts.get(fp)
            if tracked is None:
                if not is_true:
                    return None
                if len(self.alerts) >= self.max_active:
                    raise Overloaded(f"{self.max_active} alerts are active", retry_after_s=60)
                tracked = self._resolved.pop(fp, None)
                if tracked is None:
                    tracked = self._track(Alert(name, full, self.clock, for_ms=for_ms),
                                          None, None, None)
                    tracked.source = source
                self.alerts[fp] = tracked
            tracked.annotations = dict(annotations)
            tracked.alert.observe(is_true, value)
            return tracked

    def remember_resolved(self, rows: Iterable[tuple[dict[str, Any], Episode]]) -> None:
        """Keep alerts that had resolved before a restart (oldest first; the newest
        `MAX_RESOLVED_KEPT`), so that firing again continues their episode count."""
        with self.lock:
            for row, episode in rows:
                fp = row["fingerprint"]
                if fp in self.alerts:
                    continue
                alert = Alert(row["labels"]["alertname"], row["labels"], self.clock)
                alert.restore(AlertState.RESOLVED, episode, row["value"])
                sid = row["sid"]
                tracked = Tracked(alert, None, None if sid is None else
                                  self.index.slot_of_id(int(sid)), sid,
                                  annotations=dict(row["annotations"]), source=row["source"])
                alert.on_transition = lambda t, tr=tracked: self._changed(tr, t)
                self._resolved[fp] = tracked
                self._resolved.move_to_end(fp)
                while len(self._resolved) > MAX_RESOLVED_KEPT:
                    self._resolved.popitem(last=False)

    def restore(self, tracked_alerts: Iterable[tuple[dict[str, Any], Episode]]
                ) -> list[Tracked]:
        """Put back active alerts from durable history (after a restart); return them.

        An alert of a rule that no longer exists is resolved at once."""
        restored = []
        with self.lock:
            names = {c.rule.name: i for i, c in enumerate(self.rules)}
            for row, episode in tracked_alerts:
                r = names.get(row["rule"]) if row["source"] == "rule" else None
                rule = None if r is None else self.rules[r].rule
                alert = Alert(row["labels"]["alertname"], row["labels"], self.clock,
                              for_ms=rule.for_ms if rule else 0,
                              keep_firing_for_ms=rule.keep_firing_for_ms if rule else 0)
                alert.restore(AlertState(row["state"]), episode, row["value"])
                slot = None if row["sid"] is None else self.index.slot_of_id(int(row["sid"]))
                tracked = self._track(alert, rule, slot, row["sid"])
                tracked.source = row["source"]
                tracked.annotations = dict(row["annotations"])
                tracked.ends_at_ms = row["ends_at_ms"]
                restored.append(tracked)
                if row["source"] == "rule" and rule is None:
                    self._end(tracked, "rule removed while seismo was stopped")
                elif r is not None:
                    self._pair(r, slot, tracked)
        return restored
