"""Prediction and outcome records: the wire shapes, their validation, their durable bytes.

A request body is decoded once (msgspec), checked item by item, and turned into one
columnar batch (numpy arrays and label lists). The batch is what the record log stores
(msgpack, arrays as raw bytes) and what the in-memory table applies, at once and again
on replay after a restart. A bad item refuses the whole request, naming the field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np

from seismo.errors import InvalidInput

NUMERIC, CATEGORICAL = "numeric", "categorical"
MAX_ID_LENGTH = 256
MAX_LABEL_LENGTH = 256
Value = float | str | bool | None


class PredictionIn(msgspec.Struct, forbid_unknown_fields=True):
    id: str | int
    prediction: float | str | bool
    features: dict[str, Value] = msgspec.field(default_factory=dict)
    probability: float | dict[str, float] | None = None
    latency_ms: float | None = None
    timestamp: int | None = None


class PredictionsIn(msgspec.Struct, forbid_unknown_fields=True):
    """`{version, items: [...]}`, or one prediction's fields beside `version`."""

    version: str
    items: list[PredictionIn] | None = None
    id: str | int | None = None
    prediction: float | str | bool | None = None
    features: dict[str, Value] = msgspec.field(default_factory=dict)
    probability: float | dict[str, float] | None = None
    latency_ms: float | None = None
    timestamp: int | None = None


class OutcomeIn(msgspec.Struct, forbid_unknown_fields=True):
    id: str | int
    actual: float | str | bool


class OutcomesIn(msgspec.Struct, forbid_unknown_fields=True):
    """`{items: [{id, actual}]}`, or one outcome `{id, actual}`."""

    items: list[OutcomeIn] | None = None
    id: str | int | None = None
    actual: float | str | bool | None = None


def decode_predictions(raw: bytes) -> PredictionsIn:
    body = msgspec.json.decode(raw, type=PredictionsIn)
    if body.items is None:
        if body.id is None or body.prediction is None:
            raise InvalidInput("body needs 'items' (a list of predictions) or one prediction's "
                               "'id' and 'prediction'", field="items")
        body.items = [PredictionIn(body.id, body.prediction, body.features, body.probability,
                                   body.latency_ms, body.timestamp)]
    return body


def decode_outcomes(raw: bytes) -> list[OutcomeIn]:
    body = msgspec.json.decode(raw, type=OutcomesIn)
    if body.items is not None:
        return body.items
    if body.id is None or body.actual is None:
        raise InvalidInput("body needs 'items' (a list of outcomes) or one outcome's 'id' "
                           "and 'actual'", field="items")
    return [OutcomeIn(body.id, body.actual)]


def label_text(value: float | str | bool | int) -> str:
    """A class label as text: `true`, `1` (also for 1.0), `spam`.

    >>> [label_text(v) for v in (True, 1.0, 1, 2.5, "spam")]
    ['true', '1', '1', '2.5', 'spam']
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)  # a str, or an int from metadata


@dataclass
class PredictionBatch:
    """Validated predictions of one request, as columns."""

    version: str
    ids: list[str]
    ts: np.ndarray  # int64 ms
    labels: list[str] | None  # classification: predicted class labels
    values: np.ndarray | None  # regression: predicted values
    probability: np.ndarray  # float64, NaN: not given
    latency_ms: np.ndarray  # float64, NaN: not given
    numeric: dict[str, np.ndarray] = field(default_factory=dict)  # NaN: missing
    categorical: dict[str, list[str | None]] = field(default_factory=dict)
    class_probabilities: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class OutcomeBatch:
    ids: list[str]
    labels: list[str] | None  # classification
    values: np.ndarray | None  # regression

    def __len__(self) -> int:
        return len(self.ids)


def _check_id(value: str | int, field: str) -> str:
    text = value if isinstance(value, str) else str(value)
    if not text or len(text) > MAX_ID_LENGTH:
        raise InvalidInput(f"id must be 1-{MAX_ID_LENGTH} characters", field=field)
    return text


def _check_label(value: float | str | bool, field: str) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidInput("a class label must be finite", field=field)
    text = label_text(value)
    if not text or len(text) > MAX_LABEL_LENGTH:
        raise InvalidInput(f"a class label must be 1-{MAX_LABEL_LENGTH} characters",
                           field=field)
    return text


def _check_number(value: float | str | bool, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, float) or not math.isfinite(value):
        raise InvalidInput("a regression model's value must be a finite number", field=field)
    return value


def prepare_predictions(body: PredictionsIn, *, task: str, kinds: Mapping[str, str],
                        at_ms: int, oldest_ms: int, newest_ms: int, max_items: int,
                        max_features: int) -> tuple[PredictionBatch, dict[str, str]]:
    """Check every item; the columnar batch and the feature kinds it introduces."""
    items = body.items or []
    if not items:
        raise InvalidInput("items must not be empty", field="items")
    if len(items) > max_items:
        raise InvalidInput(f"{len(items)} items in one request; at most {max_items} "
                           "(models.max_items_per_request)", field="items")
    n = len(items)
    classify = task == "classification"
    ids: list[str] = [""] * n
    ts = np.empty(n, np.int64)
    probability = np.full(n, np.nan)
    latency = np.full(n, np.nan)
    labels: list[str] = []
    values = np.empty(n) if not classify else None
    found: dict[str, str] = {}  # kinds of features new to the model
    columns: dict[str, list[Value]] = {}
    class_probs: dict[str, list[float]] = {}
    for i, item in enumerate(items):
        where = f"items[{i}]"
        ids[i] = _check_id(item.id, where + ".id")
        if classify:
            labels.append(_check_label(item.prediction, where + ".prediction"))
        else:
            values[i] = _check_number(item.prediction, where + ".prediction")  # type: ignore[index]
        t = at_ms if item.timestamp is None else item.timestamp
        if t < oldest_ms or t > newest_ms:
            raise InvalidInput("timestamp is older than models.retention or too far in the "
                               "future (epoch milliseconds)", field=where + ".timestamp")
        ts[i] = t
        if item.latency_ms is not None:
            if not 0 <= item.latency_ms < 1e9:
                raise InvalidInput("latency_ms must be a non-negative number",
                                   field=where + ".latency_ms")
            latency[i] = item.latency_ms
        p = item.probability
        if isinstance(p, dict):
            if not classify:
                raise InvalidInput("class probabilities are for classification models",
                                   field=where + ".probability")
            for label, q in p.items():
                if not 0 <= q <= 1:
                    raise InvalidInput("a probability is between 0 and 1",
                                       field=f"{where}.probability.{label}")
                class_probs.setdefault(label, [math.nan] * n)[i] = q
        elif p is not None:
            if not 0 <= p <= 1:
                raise InvalidInput("probability must be between 0 and 1",
                                   field=where + ".probability")
            probability[i] = p
        for name, value in item.features.items():
            column = columns.get(name)
            if column is None:
                if not name or len(name) > MAX_LABEL_LENGTH:
                    raise InvalidInput(f"a feature name is 1-{MAX_LABEL_LENGTH} characters",
                                       field=where + ".features")
                column = columns[name] = [None] * n
            column[i] = value
    if len(set(ids)) != n:
        seen: set[str] = set()
        for i, text in enumerate(ids):
            if text in seen:
                raise InvalidInput(f"id {text!r} appears twice in this request",
                                   field=f"items[{i}].id")
            seen.add(text)
    numeric: dict[str, np.ndarray] = {}
    categorical: dict[str, list[str | None]] = {}
    for name, column in columns.items():
        kind = kinds.get(name) or found.get(name) or _kind_of(column)
        if name not in kinds:
            found[name] = kind
        if kind == NUMERIC:
            numeric[name] = _numeric_column(name, column, items)
        else:
            categorical[name] = _categorical_column(name, column, items)
    if len(kinds) + len(found) > max_features:
        raise InvalidInput(f"a model has at most {max_features} features "
                           "(models.max_features)", field="items[0].features")
    probs = {_check_label(label, "probability"): np.asarray(q) for label, q in
             class_probs.items()}
    batch = PredictionBatch(body.version, ids, ts, labels if classify else None, values,
                            probability, latency, numeric, categorical, probs)
    return batch, found


def _kind_of(column: list[Value]) -> str:
    first = next((v for v in column if v is not None), None)
    return NUMERIC if isinstance(first, float) and not isinstance(first, bool) else CATEGORICAL


def _numeric_column(name: str, column: list[Value], items: list[PredictionIn]) -> np.ndarray:
    if not set(map(type, column)) <= {float, type(None)}:
        i = next(i for i, v in enumerate(column) if isinstance(v, bool | str))
        raise InvalidInput(f"feature {name!r} is numeric for this model; got "
                           f"{column[i]!r}", field=f"items[{i}].features.{name}")
    out = np.array(column, dtype=np.float64)  # None → NaN: missing
    if np.isinf(out).any():
        i = int(np.flatnonzero(np.isinf(out))[0])
        raise InvalidInput(f"feature {name!r} must be finite", field=f"items[{i}].features.{name}")
    return out


def _categorical_column(name: str, column: list[Value],
                        items: list[PredictionIn]) -> list[str | None]:
    out: list[str | None] = []
    for i, v in enumerate(column):
        if v is None:
            out.append(None)
        elif isinstance(v, str | bool):
            text = label_text(v)
            if len(text) > MAX_LABEL_LENGTH:
                raise InvalidInput(f"a category is at most {MAX_LABEL_LENGTH} characters",
                                   field=f"items[{i}].features.{name}")
            out.append(text)
        else:
            raise InvalidInput(f"feature {name!r} is categorical for this model (strings or "
                               f"booleans); got {v!r}", field=f"items[{i}].features.{name}")
    return out


def prepare_outcomes(items: list[OutcomeIn], *, task: str, max_items: int) -> OutcomeBatch:
    if not items:
        raise InvalidInput("items must not be empty", field="items")
    if len(items) > max_items:
        raise InvalidInput(f"{len(items)} items in one request; at most {max_items} "
                           "(models.max_items_per_request)", field="items")
    ids = [_check_id(item.id, f"items[{i}].id") for i, item in enumerate(items)]
    if task == "classification":
        labels = [_check_label(item.actual, f"items[{i}].actual")
                  for i, item in enumerate(items)]
        return OutcomeBatch(ids, labels, None)
    values = np.array([_check_number(item.actual, f"items[{i}].actual")
                       for i, item in enumerate(items)])
    return OutcomeBatch(ids, None, values)


# -- durable bytes ----------------------------------------------------------------------

def _array(data: bytes, dtype: type) -> np.ndarray:
    return np.frombuffer(data, dtype=dtype).copy()


def encode_predictions(batch: PredictionBatch) -> bytes:
    return msgspec.msgpack.encode({
        "version": batch.version, "ids": batch.ids, "ts": batch.ts.tobytes(),
        "labels": batch.labels,
        "values": None if batch.values is None else batch.values.tobytes(),
        "probability": batch.probability.tobytes(), "latency_ms": batch.latency_ms.tobytes(),
        "numeric": {k: v.tobytes() for k, v in batch.numeric.items()},
        "categorical": batch.categorical,
        "class_probabilities": {k: v.tobytes() for k, v in batch.class_probabilities.items()},
    })


def decode_prediction_record(data: bytes) -> PredictionBatch:
    doc: dict[str, Any] = msgspec.msgpack.decode(data)
    return PredictionBatch(
        doc["version"], doc["ids"], _array(doc["ts"], np.int64), doc["labels"],
        None if doc["values"] is None else _array(doc["values"], np.float64),
        _array(doc["probability"], np.float64), _array(doc["latency_ms"], np.float64),
        {k: _array(v, np.float64) for k, v in doc["numeric"].items()},
        doc["categorical"],
        {k: _array(v, np.float64) for k, v in doc["class_probabilities"].items()})


def encode_outcomes(batch: OutcomeBatch) -> bytes:
    return msgspec.msgpack.encode({
        "ids": batch.ids, "labels": batch.labels,
        "values": None if batch.values is None else batch.values.tobytes()})


def decode_outcome_record(data: bytes) -> OutcomeBatch:
    doc: dict[str, Any] = msgspec.msgpack.decode(data)
    return OutcomeBatch(doc["ids"], doc["labels"],
                        None if doc["values"] is None else _array(doc["values"], np.float64))
