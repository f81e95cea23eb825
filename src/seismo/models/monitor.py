"""The model monitoring service: what REST, the client and the timer call.

It owns the registry, the record log and one in-memory table per model. Recording:
`prepare_*` checks a request body against the model (nothing is stored when it is bad),
`submit` queues the record; the log's writer makes it durable, then applies it. Reading:
`metrics`, `drift` and `compare` work on copies of a table's rows (numpy, vectorised).
The timer (`evaluation.py`) judges every version, writes series and raises alerts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import chi2_contingency, mannwhitneyu

from seismo.config import Models, parse_duration_s
from seismo.errors import InvalidInput
from seismo.models import drift as tests
from seismo.models import metrics
from seismo.models.journal import OUTCOMES, PREDICTIONS, Record, RecordLog
from seismo.models.records import (
    decode_outcome_record,
    decode_outcomes,
    decode_prediction_record,
    decode_predictions,
    encode_outcomes,
    encode_predictions,
    label_text,
    prepare_outcomes,
    prepare_predictions,
)
from seismo.models.registry import Model, Registry, check_registration
from seismo.models.table import ModelTable, View
from seismo.query.timeparse import parse_time_ms

log = logging.getLogger(__name__)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def thresholds_of(s: Models) -> tests.Thresholds:
    return tests.Thresholds(**{k: getattr(s, k) for k in tests.Thresholds.__dataclass_fields__})


class ModelService:
    """See the module docstring."""

    def __init__(self, settings: Models, db: Path, *,
                 clock: Callable[[], int] = now_ms) -> None:
        self.settings = settings
        self.clock = clock
        self.thresholds = thresholds_of(settings)
        self.retention_ms = int(parse_duration_s(settings.retention) * 1000)
        self.outcome_wait_ms = int(parse_duration_s(settings.outcome_wait) * 1000)
        self.registry = Registry(db, max_models=settings.max_models,
                                 max_versions=settings.max_versions)
        self.tables: dict[str, ModelTable] = {}
        self.log = RecordLog(db, self._apply, max_queued_rows=settings.queue_rows)
        self.replayed_rows = 0

    # -- life cycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Replay the record log into the tables, then take new records."""
        for seq, model, kind, received_ms, body in self.log.replay():
            if model not in self.registry.models:
                continue
            batch = (decode_prediction_record(body) if kind == PREDICTIONS
                     else decode_outcome_record(body))
            self._apply(Record(model, kind, received_ms, b"", batch, seq))
            self.replayed_rows += len(batch)
        self.expire()
        self.log.start()

    def stop(self) -> None:
        self.log.stop()
        self.registry.close()

    def table(self, name: str) -> ModelTable:
        table = self.tables.get(name)
        if table is None:
            s = self.settings
            table = self.tables[name] = ModelTable(
                self.registry.get(name).task, max_rows=s.max_rows_per_model,
                max_pending=s.max_pending_outcomes, max_categories=s.max_categories)
        return table

    def _apply(self, record: Record) -> dict[str, Any]:
        table = self.table(record.model)
        if record.kind == PREDICTIONS:
            reply = table.add_predictions(record.batch, record.seq)  # type: ignore[arg-type]
        else:
            reply = table.add_outcomes(record.batch, record.received_ms)  # type: ignore[arg-type]
        table.last_seq = record.seq
        return reply

    def expire(self) -> None:
        """Retention: drop old rows and outcomes that waited too long, and their records."""
        at = self.clock()
        for name, table in list(self.tables.items()):
            oldest = table.expire(at - self.retention_ms, at - self.outcome_wait_ms)
            before = table.last_seq + 1 if oldest is None else oldest
            self.log.delete(name, PREDICTIONS, before_seq=before)
            self.log.delete(name, OUTCOMES, before_seq=before,
                            received_before_ms=at - self.outcome_wait_ms)

    # -- registry -----------------------------------------------------------------------

    def register(self, body: Any) -> tuple[dict[str, Any], bool]:
        """Register a model version (`{name, version, task, metadata?}`); (reply, is_new)."""
        name, version, task, metadata = check_registration(body)
        row, created = self.registry.register(name, version, task, metadata, self.clock())
        return {"name": name, "task": task, **row.to_dict()}, created

    def list_models(self) -> list[dict[str, Any]]:
        return [self._summary(model) for model in self.registry.models.values()]

    def _summary(self, model: Model) -> dict[str, Any]:
        table = self.tables.get(model.name)
        return {"name": model.name, "task": model.task, "created_ms": model.created_ms,
                "versions": list(model.versions), "predictions": 0 if table is None
                else len(table)}

    def describe(self, name: str) -> dict[str, Any]:
        """A model, its versions with their totals, its features and classes."""
        model = self.registry.get(name)
        table = self.table(name)
        with table.lock:
            versions = [{**v.to_dict(),
                         "predictions_total": table.predictions_total.get(v.version, 0),
                         "outcomes_total": table.outcomes_total.get(v.version, 0)}
                        for v in model.versions.values()]
            return {**self._summary(model), "versions": versions,
                    "features": dict(table.kinds), "classes": list(table.classes),
                    "pending_outcomes": len(table.pending)}

    # -- recording ----------------------------------------------------------------------

    def prepare_predictions(self, name: str, raw: bytes) -> Record:
        """Check a predictions body against the model; the record to submit."""
        model = self.registry.get(name)
        body = decode_predictions(raw)
        self.registry.version(name, body.version)
        at = self.clock()
        table = self.table(name)
        batch, found = prepare_predictions(
            body, task=model.task, kinds=table.kinds, at_ms=at,
            oldest_ms=at - self.retention_ms, newest_ms=at + 600_000,
            max_items=self.settings.max_items_per_request,
            max_features=self.settings.max_features)
        with table.lock:  # a feature's kind is fixed by the first request that has it
            for feature, kind in found.items():
                table.kinds.setdefault(feature, kind)
        return Record(name, PREDICTIONS, at, encode_predictions(batch), batch)

    def prepare_outcomes(self, name: str, raw: bytes) -> Record:
        model = self.registry.get(name)
        batch = prepare_outcomes(decode_outcomes(raw), task=model.task,
                                 max_items=self.settings.max_items_per_request)
        return Record(name, OUTCOMES, self.clock(), encode_outcomes(batch), batch)

    def submit(self, record: Record) -> Future[dict[str, Any]]:
        """Queue a record; its future gives the reply once it is durable (Overloaded: full)."""
        return self.log.submit(record)

    def record(self, name: str, kind: str, raw: bytes, timeout_s: float = 30) -> dict[str, Any]:
        """Prepare, submit and wait: for callers without an event loop (tests, CLI)."""
        prepared = (self.prepare_predictions(name, raw) if kind == PREDICTIONS
                    else self.prepare_outcomes(name, raw))
        return self.submit(prepared).result(timeout=timeout_s)

    # -- reading ------------------------------------------------------------------------

    def positive_class(self, name: str, version: str) -> int | None:
        """The positive class code of a binary classifier; None for multiclass."""
        table = self.table(name)
        meta = self.registry.version(name, version).metadata
        classes = dict(table.classes)
        declared = meta.get("classes")
        if (len(declared) if isinstance(declared, list) else len(classes)) > 2:
            return None
        wanted = meta.get("positive_class")
        if wanted is not None:
            return classes.get(label_text(wanted))
        for label in ("1", "true"):
            if label in classes:
                return classes[label]
        return classes[sorted(classes)[-1]] if classes else None

    def quality(self, name: str, version: str, view: View) -> dict[str, Any]:
        """Every metric of a view: task metrics on the rows with outcomes, latency, volume."""
        table = self.table(name)
        n, labelled = len(view), int(np.isfinite(view.actual).sum())
        out: dict[str, Any] = {"predictions": n, "outcomes": labelled,
                               "outcome_coverage": round(labelled / n, 6) if n else None}
        if table.task == "classification":
            positive = self.positive_class(name, version)
            score = view.prob
            if positive is not None and view.class_probs.shape[1] > positive:
                score = np.where(np.isfinite(score), score, view.class_probs[:, positive])
            out.update(metrics.quality(
                "classification", view.pred, view.actual, n_classes=len(table.classes),
                positive=positive, score=score, class_scores=view.class_probs))
            out["positive_class"] = (None if positive is None
                                     else list(table.classes)[positive])
        else:
            out.update(metrics.quality("regression", view.pred, view.actual))
        out.update(metrics.latency(view.latency))
        return out

    def _window(self, window: str | None, end: str | None, field: str = "window"
                ) -> tuple[str, int, int]:
        text = window or self.settings.evaluation_window
        try:
            window_s = parse_duration_s(text)
        except ValueError as exc:
            raise InvalidInput(str(exc), field=field) from None
        if window_s <= 0:
            raise InvalidInput("window must be positive", field=field)
        at = self.clock()
        end_ms = parse_time_ms(end, now_ms=at, default=at, field="end")
        return text, end_ms - int(window_s * 1000), end_ms

    def metrics(self, name: str, version: str | None = None, window: str | None = None,
                end: str | None = None) -> dict[str, Any]:
        """Quality, latency and volume of a version over a window ending at `end` (now)."""
        v = self.registry.version(name, version)
        text, start_ms, end_ms = self._window(window, end)
        view = self.table(name).view(v.version, start_ms, end_ms)
        span_s = max(1e-3, (end_ms - start_ms) / 1000)
        return {"model": name, "version": v.version, "task": self.table(name).task,
                "window": text, "start_ms": start_ms, "end_ms": end_ms,
                **self.quality(name, v.version, view),
                "predictions_per_s": round(len(view) / span_s, 6)}

    def reference(self, name: str, version: str, reference: str | None) -> tuple[View,
                                                                                  dict[str, Any]]:
        """The drift reference: the version's first N predictions (`first`, `first:N`) or
        a time range `<start>..<end>` (epoch ms, `now-7d`)."""
        text = reference or "first"
        table = self.table(name)
        if text == "first" or text.startswith("first:"):
            count = self.settings.reference_predictions
            if text != "first":
                try:
                    count = int(text.split(":", 1)[1])
                except ValueError:
                    count = 0
                if count <= 0:
                    raise InvalidInput("reference first:N needs a positive N",
                                       field="reference")
            view = table.view(version, 0, 0, first=count)
            return view, {"kind": "first", "requested": count}
        start, sep, end = text.partition("..")
        if not sep:
            raise InvalidInput("reference is 'first', 'first:N' or '<start>..<end>' "
                               "(epoch ms or now-<duration>)", field="reference")
        at = self.clock()
        start_ms = parse_time_ms(start, now_ms=at, default=0, field="reference")
        end_ms = parse_time_ms(end, now_ms=at, default=at, field="reference")
        if end_ms <= start_ms:
            raise InvalidInput("reference range ends before it starts", field="reference")
        view = table.view(version, start_ms, end_ms)
        return view, {"kind": "range", "start_ms": start_ms, "end_ms": end_ms}

    def drift(self, name: str, version: str | None = None, window: str | None = None,
              reference: str | None = None) -> dict[str, Any]:
        """Each feature's and the predictions' drift from the reference, and the drop of the
        primary metric (accuracy; MAE for regression) against the reference's."""
        v = self.registry.version(name, version)
        text, start_ms, end_ms = self._window(window, None)
        table = self.table(name)
        ref, about = self.reference(name, v.version, reference)
        cur = table.view(v.version, start_ms, end_ms)
        if len(ref):
            about.update(start_ms=about.get("start_ms", int(ref.ts.min())),
                         end_ms=about.get("end_ms", int(ref.ts.max())))
        about["predictions"] = len(ref)
        enough = len(ref) >= self.settings.min_samples and len(cur) >= self.settings.min_samples
        limit = self.settings.max_drift_samples
        features: dict[str, Any] = {}
        with table.lock:
            names, kinds = list(table.feature_names), dict(table.kinds)
        classify = table.task == "classification"
        for j, feature in enumerate(names):
            features[feature] = self._compare_values(
                kinds[feature] == "numeric", ref.features[:, j] if j < ref.features.shape[1]
                else np.zeros(0), cur.features[:, j] if j < cur.features.shape[1]
                else np.zeros(0), enough, limit)
        prediction = self._compare_values(not classify, ref.pred, cur.pred, enough, limit)
        performance = self.performance(name, v.version, ref, cur)
        judged = [*features.values(), prediction]
        statuses = [f["status"] for f in judged if f["status"] in tests.STATUS_ORDER]
        status = (max(statuses, key=tests.STATUS_ORDER.__getitem__) if statuses
                  else "insufficient_data")
        return {"model": name, "version": v.version, "window": text,
                "current": {"predictions": len(cur), "start_ms": start_ms, "end_ms": end_ms},
                "reference": about, "status": status,
                "drifted": [f for f, d in features.items() if d["status"] == "alert"]
                + (["__prediction__"] if prediction["status"] == "alert" else []),
                "features": features, "prediction": prediction, "performance": performance}

    def _compare_values(self, is_numeric: bool, ref: np.ndarray, cur: np.ndarray,
                        enough: bool, limit: int) -> dict[str, Any]:
        if not enough:
            return {"kind": "numeric" if is_numeric else "categorical",
                    "status": "insufficient_data"}
        ref, cur = tests.sample(ref, limit), tests.sample(cur, limit, seed=1)
        return (tests.numeric(ref, cur, self.thresholds) if is_numeric
                else tests.categorical(ref, cur, self.thresholds))

    def performance(self, name: str, version: str, ref: View, cur: View) -> dict[str, Any]:
        """The primary metric now and in the reference, and its relative change."""
        task = self.table(name).task
        metric, direction = metrics.primary(task)
        before, after = self.quality(name, version, ref), self.quality(name, version, cur)
        out: dict[str, Any] = {"metric": metric, "reference": before[metric],
                               "current": after[metric], "relative_change": None,
                               "threshold": self.settings.accuracy_drop,
                               "status": "insufficient_data"}
        low = min(before["outcomes"], after["outcomes"]) < self.settings.min_samples
        if low or before[metric] is None or after[metric] is None or before[metric] == 0:
            return out
        change = (after[metric] - before[metric]) / abs(before[metric])
        out["relative_change"] = round(change, 6)
        worse = -change * direction  # > 0: worse than the reference
        out["status"] = "alert" if worse >= self.settings.accuracy_drop else "ok"
        return out

    def compare(self, name: str, a: str, b: str, window: str | None = None,
                end: str | None = None) -> dict[str, Any]:
        """Two versions over the same window: their metrics, b − a, and which is better."""
        va = self.registry.version(name, a, field="a").version
        vb = self.registry.version(name, b, field="b").version
        text, start_ms, end_ms = self._window(window, end)
        table = self.table(name)
        views = table.view(va, start_ms, end_ms), table.view(vb, start_ms, end_ms)
        ma, mb = (self.quality(name, v, view) for v, view in zip((va, vb), views, strict=True))
        difference = {k: round(mb[k] - ma[k], 6) for k in ma
                      if isinstance(ma[k], int | float) and isinstance(mb.get(k), int | float)
                      and k != "positive_class"}
        metric, direction = metrics.primary(table.task)
        p_value = self._difference_p_value(table.task, *views)
        better = None
        if ma[metric] is not None and mb[metric] is not None and ma[metric] != mb[metric]:
            better = va if (ma[metric] - mb[metric]) * direction > 0 else vb
        return {"model": name, "window": text, "start_ms": start_ms, "end_ms": end_ms,
                "a": {"version": va, **ma}, "b": {"version": vb, **mb},
                "difference": difference, "metric": metric, "better": better,
                "p_value": p_value,
                "significant": p_value is not None and p_value < 0.05}

    @staticmethod
    def _difference_p_value(task: str, a: View, b: View) -> float | None:
        """Chi-square on correct/wrong counts (classification) or Mann-Whitney U on the
        absolute errors (regression): how likely the difference is chance."""
        ka, kb = np.isfinite(a.actual), np.isfinite(b.actual)
        if ka.sum() < 2 or kb.sum() < 2:
            return None
        if task == "classification":
            ra, rb = a.pred[ka] == a.actual[ka], b.pred[kb] == b.actual[kb]
            table = np.array([[ra.sum(), (~ra).sum()], [rb.sum(), (~rb).sum()]])
            if (table.sum(axis=0) == 0).any():
                return 1.0
            return round(float(chi2_contingency(table)[1]), 6)
        ea, eb = np.abs(a.pred[ka] - a.actual[ka]), np.abs(b.pred[kb] - b.actual[kb])
        return round(float(mannwhitneyu(ea, eb).pvalue), 6)
