"""The model monitor's timer: judge every version, write series, raise and resolve alerts.

Every `models.evaluation_interval_s` each version with predictions held is judged over
`models.evaluation_window`: its metrics and drift become ordinary series (`model_accuracy`,
`model_latency_p95_ms`, `model_drift_psi{feature=...}`, ...) written through the ingest
path like the detectors' band series, so rules, anomaly detection and the dashboard see
them; and `ModelAccuracyDrop`, `ModelDrift`, `ModelLatencyHigh` go through the alert
lifecycle (`AlertService.observe`), true or false each time, so they also resolve.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from seismo.errors import SeismoError
from seismo.models.monitor import ModelService
from seismo.store.batch import Batch
from seismo.store.series import SeriesIndex, series_id

log = logging.getLogger(__name__)
SOURCE = "model"
PREDICTION_FEATURE = "__prediction__"  # the `feature` label of drift on the predictions
QUALITY_SERIES = ("accuracy", "precision", "recall", "f1", "auc", "mae", "rmse", "mape",
                  "latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "outcome_coverage",
                  "predictions_per_s")
DRIFT_SERIES = {"psi": ("psi", "value"), "ks_statistic": ("ks", "statistic"),
                "ks_p_value": ("ks", "p_value"), "js": ("jensen_shannon", "value"),
                "wasserstein": ("wasserstein", "normalized"),
                "chi2_p_value": ("chi2", "p_value")}
STATUS_VALUE = {"ok": 0.0, "warn": 1.0, "alert": 2.0}


class Observe(Protocol):
    def __call__(self, source: str, name: str, labels: dict[str, str], severity: str,
                 annotations: dict[str, str], is_true: bool,
                 value: float | None = None) -> None: ...


class Evaluation:
    """See the module docstring. `write` is the ingestor's `enqueue`; `observe` is
    `AlertService.observe` (None: alerting is off)."""

    def __init__(self, service: ModelService, *, index: SeriesIndex | None = None,
                 write: Callable[[Batch], object] | None = None,
                 observe: Observe | None = None) -> None:
        self.service = service
        self.index = index
        self.write = write
        self.observe = observe
        self._slots: dict[tuple[str, tuple[tuple[str, str], ...]], int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.rounds = 0

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="seismo-models-eval",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self.service.settings.evaluation_interval_s):
            try:
                self.run_once()
            except Exception:
                log.exception("model evaluation failed; will retry")

    def run_once(self) -> list[dict[str, Any]]:
        """Judge every version now; apply retention. The judgments (for tests and logs)."""
        self.service.expire()
        judgments = []
        points: list[tuple[str, dict[str, str], float]] = []
        for name in list(self.service.registry.models):
            table = self.service.table(name)
            for version in list(table.versions):
                judgment = self.judge(name, version)
                judgments.append(judgment)
                points += self.series_of(judgment)
        self._write(points)
        self.rounds += 1
        return judgments

    def judge(self, name: str, version: str) -> dict[str, Any]:
        """One version's metrics and drift, and its alerts observed."""
        s = self.service.settings
        quality = self.service.metrics(name, version)
        drift = self.service.drift(name, version)
        table = self.service.table(name)
        judgment = {"model": name, "version": version, "metrics": quality, "drift": drift,
                    "predictions_total": table.predictions_total.get(version, 0),
                    "outcomes_total": table.outcomes_total.get(version, 0)}
        labels = {"model": name, "version": version}
        idle = quality["predictions"] == 0  # nothing to judge: every alert resolves
        perf = drift["performance"]
        if idle or perf["status"] in ("ok", "alert"):
            change = perf["relative_change"]
            self._observe("ModelAccuracyDrop", labels, s.accuracy_severity,
                          not idle and perf["status"] == "alert", change, {
                              "summary": f"{perf['metric']} of {name} {version} moved "
                                         f"{_percent(change)} against its reference "
                                         f"({perf['reference']} → {perf['current']})",
                              "metric": perf["metric"]})
        if idle or drift["status"] in ("ok", "warn", "alert"):
            top = max((f["tests"]["psi"]["value"] or 0.0 for f in
                       [*drift["features"].values(), drift["prediction"]] if "tests" in f),
                      default=0.0)
            self._observe("ModelDrift", labels, s.drift_severity,
                          not idle and drift["status"] == "alert", top, {
                              "summary": f"{name} {version}: drift in "
                                         f"{', '.join(drift['drifted']) or 'nothing'}",
                              "features": ", ".join(drift["drifted"])})
        p95 = quality["latency_p95_ms"]
        if idle or p95 is not None:
            self._observe("ModelLatencyHigh", labels, s.latency_severity,
                          not idle and p95 > s.latency_p95_ms, p95, {
                              "summary": f"p95 latency of {name} {version} is {p95} ms "
                                         f"(threshold {s.latency_p95_ms:g} ms)"})
        return judgment

    def _observe(self, alert: str, labels: dict[str, str], severity: str, is_true: bool,
                 value: float | None, annotations: dict[str, str]) -> None:
        if self.observe is None:
            return
        try:
            self.observe(SOURCE, alert, labels, severity, annotations, is_true, value)
        except SeismoError as exc:  # too many active alerts: counted and logged there
            log.warning("model alert %s not raised: %s", alert, exc)

    @staticmethod
    def series_of(judgment: dict[str, Any]) -> list[tuple[str, dict[str, str], float]]:
        """The (metric, labels, value) points of one judgment."""
        labels = {"model": judgment["model"], "version": judgment["version"]}
        quality, drift = judgment["metrics"], judgment["drift"]
        points = [("model_predictions_total", labels, float(judgment["predictions_total"])),
                  ("model_outcomes_total", labels, float(judgment["outcomes_total"]))]
        for key in QUALITY_SERIES:
            if isinstance(quality.get(key), int | float):
                points.append((f"model_{key}", labels, float(quality[key])))
        change = drift["performance"]["relative_change"]
        if change is not None:
            points.append(("model_performance_change", labels, float(change)))
        if drift["status"] in STATUS_VALUE:
            points.append(("model_drift_status", labels, STATUS_VALUE[drift["status"]]))
        for feature, result in [*drift["features"].items(),
                                (PREDICTION_FEATURE, drift["prediction"])]:
            for metric, (test, key) in DRIFT_SERIES.items():
                value = result.get("tests", {}).get(test, {}).get(key)
                if value is not None:
                    points.append((f"model_drift_{metric}", {**labels, "feature": feature},
                                   float(value)))
        return points

    def _write(self, points: list[tuple[str, dict[str, str], float]]) -> None:
        if not points or self.write is None or self.index is None or \
                not self.service.settings.write_series:
            return
        slots = np.empty(len(points), np.int32)
        for i, (metric, labels, _) in enumerate(points):
            key = (metric, tuple(sorted(labels.items())))
            slot = self._slots.get(key)
            if slot is None:
                slot = self._slots[key] = self.index.add(series_id(metric, labels), metric,
                                                         labels, enforce_limit=False)
            slots[i] = slot
        values = np.array([value for _, _, value in points])
        ts = np.full(len(points), self.service.clock(), np.int64)
        try:
            self.write(Batch(slots, self.index.ids(slots), ts, values))
        except SeismoError as exc:  # a full ingest queue: this round's points are skipped
            log.debug("model series not stored: %s", exc)


def _percent(change: float | None) -> str:
    return "n/a" if change is None else f"{change * 100:+.1f} %"
