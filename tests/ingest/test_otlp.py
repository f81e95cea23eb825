"""OTLP metrics → samples: gauges, sums, histograms, summaries, attributes, JSON."""

from __future__ import annotations

import json

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

from seismo.errors import InvalidInput
from seismo.ingest.otlp import decode, parse_request

T_NS = 1_700_000_000_000_000_000


def request() -> ExportMetricsServiceRequest:
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    a = rm.resource.attributes.add(key="service.name")
    a.value.string_value = "shop"
    metrics = rm.scope_metrics.add().metrics
    g = metrics.add(name="queue.depth")
    p = g.gauge.data_points.add(time_unix_nano=T_NS, as_int=7)
    p.attributes.add(key="queue").value.string_value = "orders"
    s = metrics.add(name="requests")
    s.sum.is_monotonic = True
    s.sum.aggregation_temporality = 2
    s.sum.data_points.add(time_unix_nano=T_NS, as_double=12.0)
    u = metrics.add(name="in_flight")
    u.sum.aggregation_temporality = 2
    u.sum.data_points.add(time_unix_nano=T_NS, as_int=-2)
    h = metrics.add(name="latency")
    hp = h.histogram.data_points.add(time_unix_nano=T_NS, count=6, sum=3.5,
                                     explicit_bounds=[0.1, 1.0], bucket_counts=[1, 3, 2])
    hp.attributes.add(key="route").value.string_value = "/a"
    m = metrics.add(name="x")
    m.exponential_histogram.data_points.add(time_unix_nano=T_NS, count=1)
    return req


def flat(req: ExportMetricsServiceRequest) -> dict[tuple[str, tuple[tuple[str, str], ...]],
                                                   float | None]:
    decoded = decode(req, now_ms=0)
    assert decoded.skipped == 1  # the exponential histogram point
    return {(s.metric, tuple(sorted(s.labels.items()))): s.values[0] for s in decoded.series}


def test_mapping() -> None:
    got = flat(request())
    svc = ("service_name", "shop")
    assert got[("queue_depth", (("queue", "orders"), svc))] == 7.0
    assert got[("requests_total", (svc,))] == 12.0
    assert got[("in_flight", (svc,))] == -2.0
    route = ("route", "/a")
    assert got[("latency_bucket", (("le", "0.1"), route, svc))] == 1.0
    assert got[("latency_bucket", (("le", "1.0"), route, svc))] == 4.0
    assert got[("latency_bucket", (("le", "+Inf"), route, svc))] == 6.0
    assert got[("latency_sum", (route, svc))] == 3.5
    assert got[("latency_count", (route, svc))] == 6.0
    assert len(got) == 8
    series = decode(request(), now_ms=0).series
    assert {s.timestamps[0] for s in series if s.timestamps} == {T_NS // 1_000_000}


def test_json_body() -> None:
    body = json.dumps({"resourceMetrics": [{"resource": {"attributes": [
        {"key": "host.name", "value": {"stringValue": "h1"}}]},
        "scopeMetrics": [{"metrics": [{"name": "temp", "gauge": {"dataPoints": [
            {"timeUnixNano": str(T_NS), "asDouble": 21.5}]}}]}]}]}).encode()
    decoded = decode(parse_request(body, "application/json"), now_ms=0)
    assert [(s.metric, s.labels, s.values) for s in decoded.series] == [
        ("temp", {"host_name": "h1"}, [21.5])]


def test_malformed_bodies() -> None:
    with pytest.raises(InvalidInput, match="OTLP JSON"):
        parse_request(b'{"resourceMetrics": 5}', "application/json")
    with pytest.raises(InvalidInput, match="protobuf"):
        parse_request(b"\x0a\xff\xff\xff\x0f", "application/x-protobuf")


def test_json_body_b_x80_is_refused_as_not_utf8() -> None:
    """Found by tests/fuzz: a non-UTF-8 JSON body raised UnicodeDecodeError (a 500)."""
    with pytest.raises(InvalidInput, match="not UTF-8") as err:
        parse_request(b"\x80", "application/json")
    assert err.value.field == "body"
