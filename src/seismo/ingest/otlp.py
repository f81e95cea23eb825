"""OTLP/HTTP metrics (`POST /v1/metrics`, protobuf or JSON) → ingest series.

Resource and data-point attributes become labels (dots and other characters → `_`);
gauges and non-monotonic sums keep their name; cumulative monotonic sums are counters
named `<name>_total`; histograms become `<name>_bucket{le}`, `<name>_sum`, `<name>_count`
and summaries `<name>{quantile}`, `_sum`, `_count`, as Prometheus exposes them.
Exponential histograms and points without a value are skipped and counted.
Spec: https://opentelemetry.io/docs/specs/otlp/ ; mapping after
https://opentelemetry.io/docs/specs/otel/compatibility/prometheus_and_openmetrics/
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)

from seismo.errors import InvalidInput
from seismo.ingest.influx import label_name, metric_name
from seismo.ingest.schema import SeriesIn

CUMULATIVE = 2  # AggregationTemporality
NO_RECORDED_VALUE = 1  # DataPointFlags


@dataclass
class Decoded:
    series: list[SeriesIn] = field(default_factory=list)
    samples: int = 0
    skipped: int = 0
    _groups: dict[tuple[str, tuple[tuple[str, str], ...]],
                  tuple[list[int], list[float | None]]] = field(default_factory=dict)

    def add(self, metric: str, labels: dict[str, str], ts_ms: int, value: float) -> None:
        if math.isnan(value):
            self.skipped += 1
            return
        key = (metric, tuple(labels.items()))
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = ([], [])
        group[0].append(ts_ms)
        group[1].append(value)
        self.samples += 1

    def finish(self) -> Decoded:
        self.series = [SeriesIn(metric=metric, labels=dict(labels), timestamps=stamps,
                                values=values)
                       for (metric, labels), (stamps, values) in self._groups.items()]
        self._groups = {}
        return self


def parse_request(body: bytes, content_type: str) -> Any:
    """The ExportMetricsServiceRequest of a protobuf or JSON body."""
    request = ExportMetricsServiceRequest()
    if content_type.split(";")[0].strip().lower() == "application/json":
        try:
            json_format.Parse(body.decode(), request, ignore_unknown_fields=True)
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"body is not UTF-8: {exc.reason} at byte {exc.start}",
                               field="body") from None
        except json_format.ParseError as exc:
            raise InvalidInput(f"body is not OTLP JSON: {exc}", field="body") from None
        return request
    try:
        request.ParseFromString(body)
    except DecodeError as exc:
        raise InvalidInput(f"body is not an OTLP protobuf ExportMetricsServiceRequest: {exc}",
                           field="body") from None
    return request


def reply(content_type: str, rejected: int, message: str) -> tuple[bytes, str]:
    """An ExportMetricsServiceResponse (with partial_success when points were rejected)."""
    response = ExportMetricsServiceResponse()
    if rejected:
        response.partial_success.rejected_data_points = rejected
        response.partial_success.error_message = message
    if content_type.split(";")[0].strip().lower() == "application/json":
        return json_format.MessageToJson(response).encode(), "application/json"
    return response.SerializeToString(), "application/x-protobuf"


def _text(value: Any) -> str | None:
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return str(value.string_value)
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    if kind == "int_value":
        return str(value.int_value)
    if kind == "double_value":
        return repr(value.double_value)
    return None  # arrays, maps and bytes are not label values


def _labels(attributes: Iterable[Any], base: dict[str, str]) -> dict[str, str]:
    labels = dict(base)
    for attribute in attributes:
        text = _text(attribute.value)
        if text is not None:
            labels[label_name(attribute.key)] = text
    return labels


def _ms(time_unix_nano: int, now_ms: int) -> int:
    return time_unix_nano // 1_000_000 if time_unix_nano else now_ms


def _number(point: Any) -> float:
    return float(point.as_int) if point.WhichOneof("value") == "as_int" else point.as_double


def decode(request: Any, now_ms: int) -> Decoded:
    """Flatten every data point of the request into samples."""
    out = Decoded()
    for resource_metrics in request.resource_metrics:
        base = _labels(resource_metrics.resource.attributes, {})
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                _metric(out, metric, base, now_ms)
    return out.finish()


def _metric(out: Decoded, metric: Any, base: dict[str, str], now_ms: int) -> None:
    name = metric_name(metric.name)
    kind = metric.WhichOneof("data")
    if kind in ("gauge", "sum"):
        data = getattr(metric, kind)
        if kind == "sum" and data.is_monotonic and \
                data.aggregation_temporality == CUMULATIVE and not name.endswith("_total"):
            name += "_total"
        for point in data.data_points:
            if point.flags & NO_RECORDED_VALUE or point.WhichOneof("value") is None:
                out.skipped += 1
                continue
            out.add(name, _labels(point.attributes, base), _ms(point.time_unix_nano, now_ms),
                    _number(point))
    elif kind == "histogram":
        for point in metric.histogram.data_points:
            if point.flags & NO_RECORDED_VALUE:
                out.skipped += 1
                continue
            labels = _labels(point.attributes, base)
            ts = _ms(point.time_unix_nano, now_ms)
            cumulative = 0
            bounds = [*point.explicit_bounds, math.inf]
            for bound, count in zip(bounds, point.bucket_counts, strict=False):
                cumulative += count
                le = "+Inf" if math.isinf(bound) else repr(float(bound))
                out.add(f"{name}_bucket", {**labels, "le": le}, ts, float(cumulative))
            if point.HasField("sum"):
                out.add(f"{name}_sum", labels, ts, point.sum)
            out.add(f"{name}_count", labels, ts, float(point.count))
    elif kind == "summary":
        for point in metric.summary.data_points:
            labels = _labels(point.attributes, base)
            ts = _ms(point.time_unix_nano, now_ms)
            for q in point.quantile_values:
                out.add(name, {**labels, "quantile": repr(float(q.quantile))}, ts, q.value)
            out.add(f"{name}_sum", labels, ts, point.sum)
            out.add(f"{name}_count", labels, ts, float(point.count))
    elif kind == "exponential_histogram":
        out.skipped += len(metric.exponential_histogram.data_points)
