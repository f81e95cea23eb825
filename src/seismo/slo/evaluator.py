"""The SLO stage: SLIs from the store on a timer, error budgets, burn-rate alerts.

Every `slo.interval_s` one thread reads each SLO's SLI over its burn-rate windows and its
own window (`QueryEngine.window_totals`, one scan per selector), judges budget and alert
conditions (`burn.py`), tells the alert service the truth of each condition (so alerts
fire and resolve through the usual lifecycle) and writes the results back as series
(`slo_sli`, `slo_burn_rate`, `slo_error_budget_remaining`) through the ingestor.
SLOs come from `slos:` in seismo.yaml and from the API (kept in the state db).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from seismo.alerting.service import AlertService, alert_doc
from seismo.config import Settings, parse_duration_s
from seismo.errors import InvalidInput, NotFound, SeismoError
from seismo.query.engine import QueryEngine
from seismo.slo.burn import WINDOWS, Verdict, WindowSLI, judge, window_sli
from seismo.slo.definition import MAX_SLOS, SLO, parse_slo, parse_slos
from seismo.store.batch import Batch
from seismo.store.definitions import Definitions, check_put
from seismo.store.series import SeriesIndex, series_id

log = logging.getLogger(__name__)
ALERT_NAME = "SLOErrorBudgetBurn"
SOURCE = "slo"
KIND = "slo"  # of the definitions made over the API
SLI_METRIC = "slo_sli"
BURN_METRIC = "slo_burn_rate"
BUDGET_METRIC = "slo_error_budget_remaining"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def slo_alerts(service: AlertService) -> list[dict[str, Any]]:
    """The active alerts raised by SLOs, as the API shows alerts."""
    with service.lock:
        tracked = [t for t in service.evaluator.alerts.values() if t.source == SOURCE]
        docs = [alert_doc(t) for t in tracked]
    return [{"id": d["fingerprint"], **{k: d[k] for k in (
        "source", "labels", "annotations", "severity", "state", "value", "started_ms",
        "fired_ms")}} for d in docs]


@dataclass(frozen=True)
class Evaluation:
    """One SLO at one time: its SLI per window and the verdict."""

    slo: SLO
    at_ms: int
    windows: dict[str, WindowSLI]
    verdict: Verdict

    def to_dict(self) -> dict[str, Any]:
        v = self.verdict
        remaining = v.budget_remaining
        windows = {w: s.to_dict() for w, s in self.windows.items()}
        return {
            **self.slo.to_dict(),
            "status": v.status, "evaluated_ms": self.at_ms,
            "error_budget": round(self.slo.error_budget, 12),
            "budget_remaining": None if remaining is None else round(remaining, 9),
            "budget_consumed": None if remaining is None else round(1 - remaining, 9),
            "burn_rates": {w: doc["burn_rate"] for w, doc in windows.items()},
            "sli_by_window": {w: doc["sli"] for w, doc in windows.items()},
            "windows": windows,
            "conditions": [
                {"type": c.type, "window": c.window, "threshold": c.threshold,
                 "is_true": is_true, "long_burn_rate": _round(long),
                 "short_burn_rate": _round(short)}
                for c, is_true, long, short in v.conditions]}


class SLOEvaluator:
    """See the module docstring. `alerts` None: conditions are judged but not alerted."""

    def __init__(self, settings: Settings, query: QueryEngine, index: SeriesIndex, *,
                 alerts: AlertService | None = None,
                 write: Callable[[Batch], object] | None = None,
                 clock: Callable[[], int] = now_ms) -> None:
        self.settings = settings
        self.query = query
        self.index = index
        self.alerts = alerts
        self.write = write if settings.slo.write_series else None
        self.clock = clock
        self.lookback_ms = round(parse_duration_s(settings.slo.counter_lookback) * 1000)
        self.definitions = Definitions(Path(settings.data_dir) / "state.db")
        self.config_slos = parse_slos(settings.slos, source="seismo.yaml")
        self.results: dict[str, Evaluation] = {}
        self.evaluations = 0
        self.failures = 0
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- life cycle ---------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="seismo-slo", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.definitions.close()

    def _run(self) -> None:
        interval_s = self.settings.slo.interval_s
        while True:
            try:
                self.evaluate()
            except Exception:
                log.exception("SLO evaluation failed; will retry")
            if self._stop.wait(interval_s):
                return

    # -- definitions --------------------------------------------------------------------

    def slos(self) -> list[SLO]:
        """Every SLO: those of seismo.yaml, then those made over the API."""
        config = {s.name for s in self.config_slos}
        api = [parse_slo(doc, source="api") for doc in self.definitions.all(KIND)]
        return self.config_slos + [s for s in api if s.name not in config]

    def get(self, name: str) -> SLO:
        for slo in self.slos():
            if slo.name == name:
                return slo
        raise NotFound(f"no SLO {name!r}", field="name")

    def put(self, doc: Any, *, name: str | None = None) -> dict[str, Any]:
        """Create (`name` None) or replace an API SLO; evaluate it at once and return it."""
        slo = parse_slo(doc, source="api")
        existing = {s.name: s.source for s in self.slos()}
        exists = check_put("SLO", "slos", "slo", slo.name, name, existing, article="an")
        if not exists and len(existing) >= MAX_SLOS:
            raise InvalidInput(f"at most {MAX_SLOS} SLOs", field="slo")
        self.definitions.put(KIND, slo.name, dict(doc))
        if self.settings.slo.enabled:
            self.evaluate()
        return self.status(slo.name)

    def delete(self, name: str) -> None:
        """Delete an API SLO; its alerts resolve."""
        slo = self.get(name)
        if slo.source != "api":
            raise InvalidInput(f"SLO {name!r} is defined in {slo.source}; remove it there",
                               field="name")
        self.definitions.delete(KIND, name)
        with self._lock:
            self.results.pop(name, None)
        if self.settings.slo.enabled:
            self.evaluate()

    # -- status -------------------------------------------------------------------------

    def status(self, name: str) -> dict[str, Any]:
        """The SLO's last evaluation (evaluated now if it has none) and its active alerts."""
        slo = self.get(name)
        with self._lock:
            result = self.results.get(name)
            if result is None or result.slo != slo:
                result = self._evaluate_one(slo, self.clock())
        alerts = [a for a in self.active_alerts() if a["labels"].get("slo") == name]
        return {**result.to_dict(), "alerts": alerts}

    def list_status(self) -> list[dict[str, Any]]:
        """Every SLO with its last evaluation."""
        out = []
        for slo in self.slos():
            with self._lock:
                result = self.results.get(slo.name)
                if result is None or result.slo != slo:
                    result = self._evaluate_one(slo, self.clock())
            out.append(result.to_dict())
        return out

    # -- evaluation ---------------------------------------------------------------------

    def evaluate(self, at_ms: int | None = None) -> dict[str, Evaluation]:
        """Evaluate every SLO now: results, alert conditions, series. Returns the results."""
        with self._lock:
            at = self.clock() if at_ms is None else at_ms
            results: dict[str, Evaluation] = {}
            failed: set[str] = set()
            for slo in self.slos():
                try:
                    results[slo.name] = self._evaluate_one(slo, at)
                except SeismoError as exc:
                    self.failures += 1
                    failed.add(slo.name)
                    log.error("SLO %s not evaluated: %s", slo.name, exc.message)
            self.results = results
            self.evaluations += 1
            self._alert(results, failed)
            self._write(results, at)
            return results

    def _evaluate_one(self, slo: SLO, at_ms: int) -> Evaluation:
        names = [w for w, _ in WINDOWS]
        lengths = [ms for _, ms in WINDOWS]
        if slo.window not in names:
            names.append(slo.window)
            lengths.append(slo.window_ms)
        sli = slo.sli
        percentile: np.ndarray | None = None
        if sli.kind == "ratio":
            total_t = self.query.window_totals(sli.selector, at_ms, lengths, counter=True,
                                               lookback_ms=self.lookback_ms)
            counted = sli.good if sli.good is not None else sli.bad
            assert counted is not None
            part = self.query.window_totals(counted, at_ms, lengths, counter=True,
                                            lookback_ms=self.lookback_ms)
            total = np.nan_to_num(total_t.increase, nan=0.0)
            counted_inc = np.nan_to_num(part.increase, nan=0.0)
            good = counted_inc if sli.good is not None else total - counted_inc
        else:
            quantile = None if sli.percentile is None else sli.percentile / 100
            t = self.query.window_totals(
                sli.selector, at_ms, lengths,
                at_most=sli.threshold_s if sli.kind == "latency" else None,
                equal=1.0 if sli.kind == "availability" else None, quantile=quantile)
            total = t.count.astype(np.float64)
            good = t.matching.astype(np.float64)
            percentile = t.quantile if quantile is not None else None
        windows = {}
        for i, name in enumerate(names):
            p = None if percentile is None or np.isnan(percentile[i]) else float(percentile[i])
            windows[name] = window_sli(name, float(good[i]), float(total[i]), slo.objective, p)
        return Evaluation(slo, at_ms, windows, judge(windows, slo.window))

    def _alert(self, results: Mapping[str, Evaluation], failed: set[str]) -> None:
        """Tell the alert service each condition's truth; resolve alerts of SLOs (or
        conditions, severities, labels) that are no longer there. The alerts of an SLO
        that could not be evaluated (`failed`) stay as they are."""
        if self.alerts is None:
            return
        observed: set[tuple[tuple[str, str], ...]] = set()
        for result in results.values():
            slo = result.slo
            for condition, is_true, long, short in result.verdict.conditions:
                wanted = slo.page if condition.type == "page" else slo.ticket
                severity = slo.severity_page if condition.type == "page" else \
                    slo.severity_ticket
                labels = {**slo.labels, "slo": slo.name, "window": condition.window,
                          "type": condition.type}
                observed.add(_key({**labels, "alertname": ALERT_NAME, "severity": severity}))
                self._observe(labels, severity, _annotations(result, long, short, condition),
                              wanted and is_true, long)
        for alert in self.active_alerts():
            labels = dict(alert["labels"])
            if _key(labels) in observed or labels.get("slo") in failed:
                continue
            severity = labels.pop("severity", "")
            labels.pop("alertname", None)
            self._observe(labels, severity, alert.get("annotations", {}), False, None)

    def active_alerts(self) -> list[dict[str, Any]]:
        return [] if self.alerts is None else slo_alerts(self.alerts)

    def _observe(self, labels: dict[str, str], severity: str, annotations: dict[str, str],
                 is_true: bool, value: float | None) -> None:
        assert self.alerts is not None
        try:
            self.alerts.observe(SOURCE, ALERT_NAME, labels, severity, annotations, is_true,
                                value)
        except SeismoError as exc:  # too many active alerts: try again next time
            log.error("SLO alert %s not raised: %s", labels, exc.message)

    def _write(self, results: Mapping[str, Evaluation], at_ms: int) -> None:
        """Store the results as series, so that rules, detectors and charts can use them."""
        if self.write is None or not results:
            return
        slots: list[int] = []
        values: list[float] = []
        for result in results.values():
            name = result.slo.name
            points: list[tuple[str, dict[str, str], float | None]] = [
                (BUDGET_METRIC, {"slo": name}, result.verdict.budget_remaining)]
            for window, w in result.windows.items():
                points.append((SLI_METRIC, {"slo": name, "window": window}, w.sli))
                points.append((BURN_METRIC, {"slo": name, "window": window}, w.burn_rate))
            for metric, labels, value in points:
                if value is None:
                    continue
                slots.append(self.index.add(series_id(metric, labels), metric, labels,
                                            enforce_limit=False))
                values.append(value)
        if not slots:
            return
        s = np.asarray(slots, np.int64)
        batch = Batch(s.astype(np.int32), self.index.ids(s), np.full(len(s), at_ms, np.int64),
                      np.asarray(values, np.float64))
        try:
            self.write(batch)
        except SeismoError as exc:  # a full ingest queue: these points are skipped
            log.debug("SLO series not stored: %s", exc.message)


def _annotations(result: Evaluation, long: float | None, short: float | None,
                 condition: Any) -> dict[str, str]:
    slo = result.slo
    remaining = result.verdict.budget_remaining
    left = "unknown (no events yet)" if remaining is None else f"{remaining:.1%}"
    return {
        "summary": f"SLO {slo.name}: error budget burning {_times(long)} as fast as allowed "
                   f"over {condition.long} ({_times(short)} over {condition.short})",
        "description": (
            f"{condition.type} when the burn rate is over {condition.threshold:g} in both "
            f"{condition.long} and {condition.short}: burn rate {_times(long)} over "
            f"{condition.long}, {_times(short)} over {condition.short}. Objective "
            f"{slo.objective:.6g} over {slo.window}; error budget remaining {left}."
            + (f" {slo.description}" if slo.description else "")),
        "slo_status": result.verdict.status,
        "budget_remaining": "" if remaining is None else f"{remaining:.6g}",
    }


def _times(burn: float | None) -> str:
    return "n/a" if burn is None else f"{burn:.2f}x"


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 9)


def _key(labels: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))
